-- tests/spec/client_spec.lua: the Lua client (lua/shmgr/client.lua) against shmgr, over TCP and
-- over a Unix socket: queues, their exceptions and timeouts, both handshake forms.
local S = require "support"
local client = require "shmgr.client"
local socket = require "socket"

local remote_error = S.remote_error

describe("the Lua client", function()
  local srv
  setup(function()
    srv = S.start{ listen = { "127.0.0.1:0", "unix:DIR/s.sock" } }
    assert(not srv.failed, srv.failed)
  end)
  teardown(function() srv:stop() end)

  for i, transport in ipairs{ "TCP", "a Unix socket" } do
    describe("over " .. transport, function()
      local m
      before_each(function() m = client.manager(srv.addresses[i], "secret") end)
      after_each(function() m:close() end)

      it("creates a Queue, puts and gets", function()
        local q = m:create("Queue")
        assert.is_nil(q:put(42))
        assert.is_nil(q:put("two"))
        assert.are.equal(2, q:qsize())
        assert.are.equal(42, q:get())
        assert.are.equal("two", q:get())
        assert.is_true(q:empty())
        q:_release()
      end)

      it("get(True, 0.2) on an empty queue raises queue.Empty after about 0.2 s", function()
        local q = m:create("Queue")
        finally(function() q:_release() end)
        local t0 = socket.gettime()
        local e = remote_error(q._call, q, "get", { true, 0.2 })
        local took = socket.gettime() - t0
        assert.are.equal("#ERROR", e.kind)
        assert.are.equal("queue.Empty", e.name)
        assert.is_true(took >= 0.15 and took < 1.5, "raised after " .. took .. " s")
      end)

      it("get(timeout=0.2) as a keyword argument raises queue.Empty after about 0.2 s", function()
        local q = m:create("Queue")
        finally(function() q:_release() end)
        local t0 = socket.gettime()
        local e = remote_error(q._call, q, "get", {}, { timeout = 0.2 })
        local took = socket.gettime() - t0
        assert.are.equal("queue.Empty", e.name)
        assert.is_true(took >= 0.15 and took < 1.5, "raised after " .. took .. " s")
      end)

      it("put_nowait on a full Queue(1) raises queue.Full", function()
        local q = m:create("Queue", 1)
        finally(function() q:_release() end)
        q:put_nowait("a")
        assert.is_true(q:full())
        local e = remote_error(q.put_nowait, q, "b")
        assert.are.equal("#ERROR", e.kind)
        assert.are.equal("queue.Full", e.name)
        assert.are.equal("a", q:get_nowait())
      end)

      it("works in the legacy handshake mode (Python <= 3.11)", function()
        local legacy = client.manager(srv.addresses[i], "secret", { legacy = true })
        finally(function() legacy:close() end)
        local q = legacy:create("Queue")
        q:put(1)
        assert.are.equal(1, q:get())
        q:_release()
      end)

      it("fails to connect with the wrong key", function()
        local bad = client.manager(srv.addresses[i], "wrong")
        local ok, err = pcall(bad.call, bad, "dummy")
        assert.is_false(ok)
        assert.matches("authentication failed", tostring(err), 1, true)
      end)

      it("releases what it created: number_of_objects goes back", function()
        local before = m:call("number_of_objects")
        local q = m:create("Queue")
        assert.are.equal(before + 1, m:call("number_of_objects"))
        q:_release()
        assert.are.equal(before, m:call("number_of_objects"))
      end)
    end)
  end
end)
