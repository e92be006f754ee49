-- tests/python/conf/lua_errors.lua: a Lua type whose methods fail in each way
-- a type can.  test_lua_errors.py finds the line of error("boom") itself.
listen = { "127.0.0.1:0" }

shmgr.register("Failing", function(fail_in_ctor)
  if fail_in_ctor then error("ctor boom") end
  return {
    boom = function(self) error("boom") end,
    bad = function(self) shmgr.raise("ValueError", "bad") end,
    empty = function(self) shmgr.raise("queue.Empty") end,
    echo = function(self, x) return x end,
    spin = function(self) while true do end end,
  }
end)
