-- tests/python/conf/max_memory.lua: a 64 MiB limits.max_memory (memory_wait left at its default,
-- 2 s), metrics, and a Lua type whose method grows a table, for test_max_memory.py.
listen = { "127.0.0.1:0" }
metrics_listen = "127.0.0.1:0"
limits = { max_memory = 64 * 1024 * 1024 }

shmgr.register("Bag", function()
  return {
    t = {},
    -- appends n small tables to its own table; returns how many it holds
    grow = function(self, n)
      local t = self.t
      for i = 1, n do t[#t + 1] = { i } end
      return #t
    end,
    count = function(self) return #self.t end,
    item = function(self, i) return self.t[i][1] end,
  }
end)
