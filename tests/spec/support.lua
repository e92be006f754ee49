-- tests/spec/support.lua: start real shmgr processes for specs, and run the binary.
local socket = require "socket"

local S = {}

-- the server binary: ./shmgr, or another build of it (make sanitize, make valgrind)
local BIN = os.getenv("SHMGR_BIN") or "./shmgr"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
S.read = read

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
S.write = write

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
S.quote = sh_quote

--- A fresh temporary folder.
function S.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. sh_quote(p)))
  return p
end

--- Run ./shmgr with args (a string) to the end, at most `seconds`; env is a prefix such as
--- "SHMGR_AUTHKEY=x". Returns exit code, stdout, stderr.
function S.run(args, env, seconds)
  local dir = S.tmpdir()
  local cmd = string.format("%s timeout %d %s %s >%s/out 2>%s/err; echo $? >%s/rc",
    env or "env -u SHMGR_AUTHKEY", seconds or 5, BIN, args, dir, dir, dir)
  os.execute(cmd)
  local rc = tonumber(read(dir .. "/rc"))
  local out, err = read(dir .. "/out"), read(dir .. "/err")
  os.execute("rm -rf " .. sh_quote(dir))
  return rc, out, err
end

--- Call fn(...), expect it to raise a RemoteError (shmgr.client's error table); return it.
function S.remote_error(fn, ...)
  local assert = require "luassert" -- busted's assert lives in the specs' environment, not here
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected an error, the call returned " .. tostring(e))
  assert.are.equal("table", type(e), "not a RemoteError: " .. tostring(e))
  return e
end

local Server = {}
Server.__index = Server

--- Call fn every 20 ms until it returns a true value (returned) or `seconds` pass (nil).
function S.poll(fn, seconds)
  local deadline = socket.gettime() + (seconds or 5)
  repeat
    local r = fn()
    if r then return r end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

--- Start ./shmgr in the background (stderr to :log(), stdout to :stdout()). opts: config (text of the config), listen (list of
--- addresses; default {"127.0.0.1:0"}; an empty list passes no --listen), authkey (default
--- "secret"; false for none), files (name -> text, written beside the config; a name may
--- hold folders, "types/x.lua"), expect (how many "listening on" lines to wait for;
--- default #listen, at least 1). Waits for those lines.
function S.start(opts)
  opts = opts or {}
  local dir = S.tmpdir()
  for name, text in pairs(opts.files or {}) do
    local sub = name:match("^(.*)/[^/]*$")
    if sub then assert(os.execute("mkdir -p " .. sh_quote(dir .. "/" .. sub))) end
    write(dir .. "/" .. name, text)
  end
  write(dir .. "/conf.lua", opts.config or "")
  local listen = opts.listen or { "127.0.0.1:0" }
  local args = {}
  for _, a in ipairs(listen) do args[#args + 1] = "--listen " .. sh_quote((a:gsub("DIR", dir))) end
  local key = opts.authkey == nil and "secret" or opts.authkey
  local env = key and ("SHMGR_AUTHKEY=" .. sh_quote(key)) or "env -u SHMGR_AUTHKEY"
  os.execute(string.format("(%s sh -c 'echo $$ >%s/pid; exec %s --config %s/conf.lua %s' >%s/out 2>%s/log; echo $? >%s/rc) &",
    env, dir, BIN, dir, table.concat(args, " "), dir, dir, dir))
  local self = setmetatable({ dir = dir, authkey = key or "", addresses = {} }, Server)
  local expect = opts.expect or math.max(#listen, 1)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local log = read(dir .. "/log") or ""
    local found = {}
    for a in log:gmatch("listening on (%S+)") do found[#found + 1] = a end
    if #found == expect then
      self.addresses = found
      self.address = found[1]
      self.pid = tonumber(read(dir .. "/pid"))
      return self
    end
    if (read(dir .. "/rc") or ""):match("%d") then break end
    socket.sleep(0.02)
  end
  self.pid = tonumber(read(dir .. "/pid")) -- so that stop() ends one that hangs
  self.rc = self:wait(1)
  self.failed = read(dir .. "/log")
  return self
end

--- What the server wrote on stderr so far.
function Server:log() return read(self.dir .. "/log") or "" end

--- What the server wrote on stdout so far.
function Server:stdout() return read(self.dir .. "/out") or "" end

--- The exit code once the process has ended (waits up to `seconds`), else nil.
function Server:wait(seconds)
  local deadline = socket.gettime() + (seconds or 5)
  repeat
    local rc = tonumber((read(self.dir .. "/rc") or ""):match("%d+"))
    if rc then return rc end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

--- Stop with SIGTERM (SIGKILL after 5 s); returns the exit code. A second call returns
--- the same code and signals nothing.
function Server:stop()
  if self.stopped then return self.exit_code end
  self.stopped = true
  if self.pid and not self:wait(0) then os.execute("kill -TERM " .. self.pid .. " 2>/dev/null") end
  local rc = self:wait(5)
  if not rc and self.pid then
    os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    rc = self:wait(2)
  end
  os.execute("rm -rf " .. sh_quote(self.dir))
  self.exit_code = rc
  return rc
end

--- A manager (shmgr.client) for this server.
function Server:manager(opts)
  return require("shmgr.client").manager(self.address, self.authkey, opts)
end

return S
