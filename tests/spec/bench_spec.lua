-- tests/spec/bench_spec.lua: shmgr-bench, the load generator, against a real shmgr: every
-- workload does what it says and the server ends as it began; bad options and a wrong key
-- are refused clearly; 10,000 connections and 10,000 parked waiters work; a million items
-- cross one queue between 128 connections and none is lost or doubled; --typeid runs the queue
-- workloads on a registered typeid's queue (a durable one here) and a bad one is refused clearly.
local S = require "support"

-- Run ./shmgr-bench with args (a string); returns exit code, stdout, stderr.
local function bench(args, seconds)
  local dir = S.tmpdir()
  os.execute(string.format("timeout %d ./shmgr-bench %s >%s/out 2>%s/err; echo $? >%s/rc",
    seconds or 60, args, dir, dir, dir))
  local rc, out, err = tonumber(S.read(dir .. "/rc")), S.read(dir .. "/out"), S.read(dir .. "/err")
  os.execute("rm -rf " .. S.quote(dir))
  return rc, out, err
end

-- A number field of the one-line JSON report (nil when absent or null).
local function field(json, name) return tonumber(json:match('"' .. name .. '": (%-?[%d.]+)')) end
local function flag(json, name) return json:match('"' .. name .. '": (%a+)') end

-- The open-file limit this process may reach (its children raise theirs to it).
local function fd_limit()
  local p = io.popen("sh -c 'ulimit -Hn'")
  local n = p:read("a")
  p:close()
  return n:match("unlimited") and math.huge or tonumber(n) or 0
end

describe("shmgr-bench", function()
  local srv
  before_each(function()
    srv = S.start{}
    assert.is_nil(srv.failed)
  end)
  after_each(function() srv:stop() end)

  local function run(args, seconds)
    return bench(string.format("-a %s -k secret -p %d --json %s", srv.address, srv.pid, args), seconds)
  end

  for _, w in ipairs{ "queue", "dict", "list", "create" } do
    it("runs exactly -n operations of the " .. w .. " workload, measures the server, and leaves no object behind", function()
      local m = srv:manager()
      local before = m:call("number_of_objects")
      local rc, out, err = run("-w " .. w .. " -c 4 -n 300")
      assert.are.equal(0, rc, err)
      assert.are.equal("true", flag(out, "ok"), out)
      assert.are.equal(0, field(out, "errors"))
      assert.are.equal(300, field(out, "ops"))
      assert.are.equal(4, field(out, "served")) -- every connection did some of them
      assert.is_true(field(out, "p50_us") > 0 and field(out, "p50_us") <= field(out, "p99_us"))
      assert.is_true(field(out, "p99_us") <= field(out, "p999_us"))
      assert.is_true(field(out, "server_cpu_us_per_op") >= 0)
      assert.is_true(field(out, "server_rss_kb") > 0)
      assert.are.equal(before, m:call("number_of_objects"))
    end)
  end

  it("runs for -d seconds", function()
    local rc, out, err = run("-w queue -c 2 -d 0.5")
    assert.are.equal(0, rc, err)
    local secs = field(out, "seconds")
    assert.is_true(secs >= 0.45 and secs < 5, out) -- its clock and the loop's may part by a tick
    assert.is_true(field(out, "ops") > 0)
  end)

  it("idle: holds the connections, then each one answers a call", function()
    local rc, out, err = run("-w idle -c 200")
    assert.are.equal(0, rc, err)
    assert.are.equal(200, field(out, "served"))
    assert.is_true(field(out, "rss_after_kb") >= field(out, "rss_before_kb"))
    assert.is_not_nil(field(out, "bytes_per_conn"))
  end)

  it("fill: every item put is in the queue", function()
    local rc, out, err = run("-w fill -c 4 --items 20000")
    assert.are.equal(0, rc, err)
    assert.are.equal(20000, field(out, "qsize"))
    assert.is_not_nil(field(out, "bytes_per_item"))
  end)

  it("objects: every dict created is counted by the server", function()
    local m = srv:manager()
    local before = m:call("number_of_objects")
    local rc, out, err = run("-w objects -c 8 --items 500")
    assert.are.equal(0, rc, err)
    assert.are.equal(500, field(out, "objects"))
    assert.are.equal(before + 500, m:call("number_of_objects")) -- kept, as proxies would keep them
  end)

  it("park: waiters are woken in the order they arrived", function()
    local rc, out, err = run("-w park -c 500")
    assert.are.equal(0, rc, err)
    assert.are.equal(500, field(out, "woken"))
    assert.are.equal(500, field(out, "in_order"))
  end)

  it("10,000 connections are held, served and closed without error; 10,000 parked waiters wake in order", function()
    if fd_limit() < 10100 then -- the server and the load generator each need one file a connection
      return pending("needs an open-file hard limit of 10,100 (ulimit -Hn is " .. fd_limit() .. ")")
    end
    local rc, out, err = run("-w idle -c 10000", 120)
    assert.are.equal(0, rc, err)
    assert.are.equal(10000, field(out, "served"), out)
    rc, out, err = run("-w queue -c 10000 -d 3", 120)
    assert.are.equal(0, rc, err)
    assert.are.equal(10000, field(out, "served"), out)
    rc, out, err = run("-w park -c 10000", 120)
    assert.are.equal(0, rc, err)
    assert.are.equal(10000, field(out, "in_order"), out)
    assert.is_true(srv:manager():call("number_of_objects") >= 0) -- still serving
  end)

  it("transfer: 1,000,000 items through one queue, 64 producers and 64 consumers, each item exactly once", function()
    local rc, out, err = run("-w transfer -c 128 --items 1000000 --timeout 600", 660)
    assert.are.equal(0, rc, err)
    assert.are.equal(1000000, field(out, "received"), out)
    assert.are.equal(0, field(out, "duplicates"))
    assert.are.equal(0, field(out, "missing"))
    assert.are.equal(1, srv:manager():call("number_of_objects")) -- the queue, nothing else
  end)

  it("with a wrong authkey, says so and exits 1", function()
    local rc, out = bench(string.format("-a %s -k wrong --json -w queue -n 10", srv.address))
    assert.are.equal(1, rc)
    assert.are.equal("false", flag(out, "ok"))
    assert.matches("authkey", out, 1, true)
  end)
end)

describe("shmgr-bench --typeid, on a durable queue", function()
  -- the config of the bench's durable cells (bench/run.py), and a typeid that is no queue
  local config = [[
log_level = "info"
data_dir = "data"
durability = "process"
local jobs = shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = false, maxsize = 0 }
shmgr.register("get_jobs", function() return jobs end)
shmgr.register("get_pair", function() return { x = 1, get_x = function(self) return self.x end } end,
  { exposed = { "get_x" } })
]]
  local srv
  before_each(function()
    srv = S.start{ config = config, files = { ["data/.keep"] = "" } }
    assert.is_nil(srv.failed)
  end)
  after_each(function() srv:stop() end)

  local function run(args, seconds)
    return bench(string.format("-a %s -k secret -p %d --json %s", srv.address, srv.pid, args), seconds)
  end

  -- One number the sqlite3 shell reads from the stopped server's store.
  local function sql(query)
    local p = io.popen(string.format("sqlite3 -readonly %s %s", S.quote(srv.dir .. "/data/shmgr.db"), S.quote(query)))
    local out = p:read("a")
    p:close()
    return tonumber(out:match("%-?%d+"))
  end

  it("runs exactly -n operations on the queue get_jobs returns, and leaves it empty, in memory and in the store", function()
    local m = srv:manager()
    local before = m:call("number_of_objects")
    local rc, out, err = run("--typeid get_jobs -w queue -c 4 -n 1000")
    assert.are.equal(0, rc, err)
    assert.are.equal("true", flag(out, "ok"), out)
    assert.matches('"typeid": "get_jobs"', out, 1, true)
    assert.are.equal(0, field(out, "errors"))
    assert.are.equal(1000, field(out, "ops"))
    assert.are.equal(2000, field(out, "calls")) -- a put and a get each, none after the last op
    assert.are.equal(4, field(out, "served"))
    assert.is_true(field(out, "server_cpu_us_per_op") >= 0)
    assert.are.equal(before, m:call("number_of_objects")) -- the create's reference given back
    local jobs = m:create("get_jobs")
    assert.are.equal(0, jobs:qsize())
    jobs:_release()
    -- SIGTERM: the store commits, says how much it did, and holds no item; the 1000 puts are
    -- 1000 unfinished tasks of the JoinableQueue (the bench calls no task_done)
    os.execute("kill -TERM " .. srv.pid)
    assert.are.equal(0, srv:wait(5), srv:log())
    local commits, changes, failed = srv:log():match("store: closed after (%d+) commits carrying (%d+) changes %((%d+) commits failed%)")
    assert.is_not_nil(commits, srv:log())
    assert.are.equal("0", failed)
    assert.is_true(tonumber(commits) >= 2 and tonumber(commits) <= 2001, commits) -- at start, then 1 to 2000 turns
    assert.is_true(tonumber(changes) >= 2000, changes)
    assert.are.equal(0, sql("SELECT count(*) FROM items"))
    assert.are.equal(1000, sql("SELECT count FROM objects WHERE name = 'jobs'"))
  end)

  it("transfer: every item through the durable queue exactly once", function()
    local rc, out, err = run("--typeid get_jobs -w transfer -c 8 --items 20000", 120)
    assert.are.equal(0, rc, err)
    assert.are.equal(20000, field(out, "received"), out)
    assert.are.equal(0, field(out, "duplicates"))
    assert.are.equal(0, field(out, "missing"))
  end)

  it("a typeid the server does not know, or one that returns no queue, is an error that names it (exit 1)", function()
    local m = srv:manager()
    local before = m:call("number_of_objects")
    local rc, out, err = run("--typeid get_nope -w queue -n 10")
    assert.are.equal(1, rc, err)
    assert.are.equal("false", flag(out, "ok"), out)
    assert.matches("--typeid get_nope: create('get_nope')", out, 1, true)
    assert.matches("KeyError", out, 1, true)
    rc, out, err = run("--typeid get_pair -w queue -n 10")
    assert.are.equal(1, rc, err)
    assert.matches("--typeid get_pair: create('get_pair'): what it returns is not a queue (it exposes no put())", out, 1, true)
    assert.are.equal(before, m:call("number_of_objects")) -- the pair it made is let go
    assert.are.equal(0, m:create("get_jobs"):qsize())
  end)
end)

describe("shmgr-bench's options", function()
  it("--help prints the usage and exits 0", function()
    local rc, out = bench("--help")
    assert.are.equal(0, rc)
    assert.matches("usage: shmgr-bench", out, 1, true)
  end)

  for _, case in ipairs{
    { "-a 127.0.0.1:1 -c 0", "-c wants a number from 1 to 10000, not '0'" },
    { "-a 127.0.0.1:1 -c 10001", "-c wants a number from 1 to 10000" },
    { "-a 127.0.0.1:1 -d soon", "-d wants a number" },
    { "-a 127.0.0.1:1 -w teleport", "unknown workload 'teleport'" },
    { "-w queue", "-a ADDR is required" },
    { "-a nowhere", "bad address 'nowhere'" },
    { "-a 127.0.0.1:1 extra", "unexpected argument 'extra'" },
    { "-a 127.0.0.1:1 -w transfer -c 1", "transfer needs -c 2 or more" },
    { "-a 127.0.0.1:1 -w dict --typeid get_jobs", "--typeid applies to the workloads on one queue (queue, idle, fill, park, transfer), not dict" },
    { "-a 127.0.0.1:1 -w create --typeid get_jobs", "--typeid applies to the workloads on one queue" },
    { "-a 127.0.0.1:1 --typeid ''", "--typeid wants a typeid registered on the server, not an empty string" },
    { "-a 127.0.0.1:1 --typeid 'get jobs'", "--typeid wants a typeid, not 'get jobs'" },
  } do
    it("refuses '" .. case[1] .. "' with exit 2 and a message", function()
      local rc, out, err = bench(case[1])
      assert.are.equal(2, rc)
      assert.matches(case[2], err, 1, true)
      assert.are.equal("", out)
    end)
  end

  it("a server that is not there is an error (exit 1), not a hang", function()
    local rc, out, err = bench("-a 127.0.0.1:1 -w queue -n 10")
    assert.are.equal(1, rc)
    assert.matches("refused", out .. err, 1, true)
  end)
end)
