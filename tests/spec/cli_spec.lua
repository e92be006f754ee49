-- tests/spec/cli_spec.lua: the command line, start-up, signals, the authkey and the config,
-- as an operator sees them: exit codes, messages, the "listening on" lines, working clients.
local S = require "support"
local client = require "shmgr.client"

-- A manager call that works (true) or fails (false, why).
local function serves(address, key)
  local m = client.manager(address, key)
  local ok, err = pcall(m.call, m, "dummy")
  return ok, tostring(err)
end

local function tcp_port(address) return tonumber(address:match(":(%d+)$")) end

-- Whether a file (of any kind: a socket too) exists.
local function exists(path) return os.execute("test -e " .. S.quote(path)) == true end

describe("shmgr's command line", function()
  it("--help prints the usage on stdout and exits 0", function()
    local rc, out = S.run("--help")
    assert.are.equal(0, rc)
    assert.matches("usage: shmgr", out, 1, true)
    assert.matches("--listen", out, 1, true)
    assert.matches("--config", out, 1, true)
  end)

  it("--version prints 'shmgr 0.1.0' and exits 0", function()
    local rc, out = S.run("--version")
    assert.are.equal(0, rc)
    assert.are.equal("shmgr 0.1.0", out:match("^(.-)%s*$"))
  end)

  it("an option without its value exits 2 with a message naming it", function()
    local rc, _, err = S.run("--config")
    assert.are.equal(2, rc)
    assert.matches("--config", err, 1, true)
  end)

  it("an unknown option exits 2 with a message naming it", function()
    local rc, out, err = S.run("--frobnicate")
    assert.are.equal(2, rc)
    assert.matches("--frobnicate", err, 1, true)
    assert.are.equal("", out)
  end)
end)

describe("listening", function()
  it("on 127.0.0.1:0 prints the real port, and a client connects to it", function()
    local srv = S.start{}
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.matches("^127%.0%.0%.1:%d+$", srv.address)
    assert.matches("listening on " .. srv.address, srv:log(), 1, true) -- on stderr
    assert.are.equal("", srv:stdout())
    local port = tcp_port(srv.address)
    assert.is_true(port > 0 and port < 65536)
    assert.is_true(serves("127.0.0.1:" .. port, "secret"))
  end)

  it("on two addresses (TCP and a Unix socket) prints two lines and serves both", function()
    local srv = S.start{ listen = { "127.0.0.1:0", "unix:DIR/s.sock" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.are.equal(2, #srv.addresses)
    local lines = select(2, srv:log():gsub("listening on ", ""))
    assert.are.equal(2, lines)
    assert.matches("^127%.0%.0%.1:%d+$", srv.addresses[1])
    assert.are.equal("unix:" .. srv.dir .. "/s.sock", srv.addresses[2])
    assert.is_true(serves(srv.addresses[1], "secret"))
    assert.is_true(serves(srv.addresses[2], "secret"))
  end)

  it("makes the Unix socket file mode 0600 and removes it after SIGTERM", function()
    local srv = S.start{ listen = { "unix:DIR/s.sock" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    local path = srv.dir .. "/s.sock"
    local p = io.popen("stat -c %a " .. S.quote(path))
    local mode = p:read("a"):match("%d+")
    p:close()
    assert.are.equal("600", mode)
    assert.is_true(exists(path))
    os.execute("kill -TERM " .. srv.pid)
    assert.are.equal(0, srv:wait(5))
    assert.is_false(exists(path))
  end)

  it("gives the Unix socket file the config's unix_mode", function()
    local srv = S.start{ listen = { "unix:DIR/s.sock" }, config = 'unix_mode = "0660"\n' }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    local p = io.popen("stat -c %a " .. S.quote(srv.dir .. "/s.sock"))
    local mode = p:read("a"):match("%d+")
    p:close()
    assert.are.equal("660", mode)
  end)

  it("replaces a stale Unix socket file", function()
    local dir = S.tmpdir()
    finally(function() os.execute("rm -rf " .. S.quote(dir)) end)
    -- a socket file left by a process that ended without removing it
    local unix = require "socket.unix"
    local old = (unix.stream or unix)()
    assert(old:bind(dir .. "/stale.sock"))
    old:close()
    assert.is_true(os.execute("test -S " .. S.quote(dir .. "/stale.sock")) == true)
    local srv = S.start{ listen = { "unix:" .. dir .. "/stale.sock" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.is_true(serves("unix:" .. dir .. "/stale.sock", "secret"))
  end)

  it("fails with a message for a bad listen address", function()
    local srv = S.start{ listen = { "nonsense" } }
    finally(function() srv:stop() end)
    assert.are.equal(1, srv.rc)
    assert.matches("nonsense", srv.failed, 1, true)
  end)
end)

describe("stopping", function()
  it("SIGTERM exits 0", function()
    local srv = S.start{}
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    os.execute("kill -TERM " .. srv.pid)
    assert.are.equal(0, srv:wait(5))
  end)

  it("SIGINT exits 0", function()
    local srv = S.start{}
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    os.execute("kill -INT " .. srv.pid)
    assert.are.equal(0, srv:wait(5))
  end)

  it("SIGTERM exits 0 at once while calls are waiting (they fail with EOFError saying why) and a handshake is half done", function()
    local srv = S.start{}
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    local m = srv:manager()
    local q = m:create("Queue")
    assert.are.equal(0, q:qsize())
    local wire = require "shmgr.wire"
    assert(m.serving:send_frame(wire.dumps(wire.tuple(q._ident, "get", wire.tuple(), wire.dict{}))))
    local half = assert(client.open(srv.address))
    assert(half:recv_frame()) -- the challenge, left unanswered
    os.execute("kill -TERM " .. srv.pid)
    assert.are.equal(0, srv:wait(3))
    local reply = wire.loads(assert(m.serving:recv_frame()))
    assert.are.equal("#ERROR", reply[1])
    assert.are.equal("builtins.EOFError", wire.opaque_name(reply[2]))
    assert.are.equal("shmgr is stopping: SIGTERM", wire.args(reply[2])[1])
    assert.is_nil((m.serving:recv_frame()))
    half:close()
    m:close()
  end)

  it("a client's shutdown request exits 0 and removes the Unix socket file", function()
    local srv = S.start{ listen = { "127.0.0.1:0", "unix:DIR/s.sock" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.is_nil(srv:manager():call("shutdown"))
    assert.are.equal(0, srv:wait(5))
    assert.is_false(exists(srv.dir .. "/s.sock"))
  end)
end)

describe("the authkey", function()
  it("without any key, refuses 0.0.0.0 (exit 1, naming SHMGR_AUTHKEY)", function()
    local srv = S.start{ authkey = false, listen = { "0.0.0.0:0" } }
    finally(function() srv:stop() end)
    assert.are.equal(1, srv.rc)
    assert.matches("SHMGR_AUTHKEY", srv.failed, 1, true)
    assert.matches("0.0.0.0", srv.failed, 1, true)
  end)

  it("without any key, serves 127.0.0.1 with a warning and the empty key", function()
    local srv = S.start{ authkey = false }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.matches("warn", srv:log(), 1, true)
    assert.matches("authkey", srv:log(), 1, true)
    assert.is_true(serves(srv.address, ""))
    assert.is_false(serves(srv.address, "secret"))
  end)

  it("without any key, serves the IPv6 loopback [::1]", function()
    local srv = S.start{ authkey = false, listen = { "[::1]:0" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.matches("^%[::1%]:%d+$", srv.address)
    assert.is_true(serves(srv.address, ""))
  end)

  it("without any key, refuses [::] as it refuses 0.0.0.0", function()
    local srv = S.start{ authkey = false, listen = { "[::]:0" } }
    finally(function() srv:stop() end)
    assert.are.equal(1, srv.rc)
    assert.matches("SHMGR_AUTHKEY", srv.failed, 1, true)
  end)

  it("with SHMGR_AUTHKEY, listens on 0.0.0.0:0", function()
    local srv = S.start{ authkey = "envkey", listen = { "0.0.0.0:0" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.matches("^0%.0%.0%.0:%d+$", srv.address)
    assert.is_true(serves("127.0.0.1:" .. tcp_port(srv.address), "envkey"))
  end)

  it("from the config (authkey) wins over SHMGR_AUTHKEY", function()
    local srv = S.start{ authkey = "envkey", config = 'authkey = "k2"\n' }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.is_true(serves(srv.address, "k2"))
    assert.is_false(serves(srv.address, "envkey"))
  end)

  it("from authkey_file, relative to the config, with its trailing newline dropped", function()
    local srv = S.start{ authkey = "envkey", config = 'authkey_file = "keys/the.key"\n',
                         files = { ["keys/the.key"] = "filekey\n" } }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.is_true(serves(srv.address, "filekey"))
    assert.is_false(serves(srv.address, "filekey\n"))
    assert.is_false(serves(srv.address, "envkey"))
  end)

  it("a missing authkey_file stops the server with a message naming it", function()
    local srv = S.start{ config = 'authkey_file = "no-such.key"\n' }
    finally(function() srv:stop() end)
    assert.are.equal(1, srv.rc)
    assert.matches("no-such.key", srv.failed, 1, true)
  end)
end)

describe("the config", function()
  local function fails_with(opts, ...)
    local srv = S.start(opts)
    local rc, log = srv.rc, srv.failed or srv:log()
    srv:stop()
    assert.are.equal(1, rc, "exit code; the server said: " .. tostring(log))
    for _, text in ipairs{ ... } do assert.matches(text, log, 1, true) end
    return log
  end

  it("listens on the config's listen when there is no --listen", function()
    local dir = S.tmpdir()
    finally(function() os.execute("rm -rf " .. S.quote(dir)) end)
    local srv = S.start{ listen = {}, config = 'listen = "unix:' .. dir .. '/from-config.sock"\n' }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.are.equal("unix:" .. dir .. "/from-config.sock", srv.address)
    assert.is_true(serves(srv.address, "secret"))
  end)

  it("--listen overrides the config's listen", function()
    local dir = S.tmpdir()
    finally(function() os.execute("rm -rf " .. S.quote(dir)) end)
    local srv = S.start{ config = 'listen = { "unix:' .. dir .. '/from-config.sock" }\n' }
    finally(function() srv:stop() end)
    assert.is_nil(srv.failed)
    assert.are.equal(1, #srv.addresses)
    assert.matches("^127%.0%.0%.1:%d+$", srv.address)
    assert.is_false(exists(dir .. "/from-config.sock"))
    assert.is_true(serves(srv.address, "secret"))
  end)

  it("a syntax error stops the server (exit 1, file name and line)", function()
    fails_with({ config = 'log_level = "info"\nlisten = {\n' }, "conf.lua:3:")
  end)

  it("an unknown limit name stops the server", function()
    fails_with({ config = "limits = { max_mesage = 5 }\n" }, "max_mesage")
  end)

  for _, case in ipairs{
    { "max_connections = -1", "limits.max_connections must be a non-negative integer" },
    { "max_auth_failures = 2.5", "limits.max_auth_failures must be a non-negative integer" },
    { 'send_timeout = "soon"', "limits.send_timeout must be a non-negative number of seconds" },
    { "idle_timeout = -3", "limits.idle_timeout must be a non-negative number of seconds" },
    { "handshake_timeout = false", "limits.handshake_timeout must be a non-negative number of seconds" },
  } do
    it("limits = { " .. case[1] .. " } stops the server, saying what is wrong", function()
      fails_with({ config = "limits = { " .. case[1] .. " }\n" }, case[2])
    end)
  end

  it("a lock_policy other than release or keep stops the server", function()
    fails_with({ config = 'lock_policy = "drop"\n' }, 'lock_policy must be "release" or "keep"')
  end)

  it("a unix_mode that is not an octal string stops the server", function()
    fails_with({ config = "unix_mode = 600\n" }, "unix_mode must be an octal string")
  end)

  it("listen = 5 stops the server", function()
    fails_with({ listen = {}, config = "listen = 5\n" }, "listen")
  end)

  it("a missing config file stops the server", function()
    local rc, _, err = S.run("--config /nonexistent/shmgr.conf.lua --listen 127.0.0.1:0", "SHMGR_AUTHKEY=x")
    assert.are.equal(1, rc)
    assert.matches("/nonexistent/shmgr.conf.lua", err, 1, true)
  end)

  it("a type script that does not exist stops the server", function()
    fails_with({ config = 'types = { "types/missing.lua" }\n' }, "missing.lua")
  end)

  it("a type script calling io.open stops the server (sandbox: no io)", function()
    local log = fails_with({ config = 'types = { "x.lua" }\n', files = { ["x.lua"] = 'local f = io.open("/etc/passwd")\n' } },
      "x.lua:1:")
    assert.matches("%f[%w]io%f[%W]", log)
  end)

  it("registering the built-in Queue again stops the server", function()
    fails_with({ config = 'shmgr.register("Queue", function() return {} end)\n' }, "Queue")
  end)

  it("registering the built-in JoinableQueue again stops the server", function()
    fails_with({ config = 'shmgr.register("JoinableQueue", function() return {} end)\n' }, "JoinableQueue")
  end)

  it("a limit of the wrong kind stops the server", function()
    fails_with({ config = 'limits = { max_message = "big" }\n' }, "max_message")
  end)

  it("a config that would wait (get on an empty queue) stops the server", function()
    fails_with({ config = 'local q = shmgr.Queue()\nlocal x = q:get()\n' }, "would block")
  end)
end)
