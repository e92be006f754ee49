-- tests/python/conf/counter.lua: a Lua counter that many clients increment at once.
listen = { "127.0.0.1:0" }

shmgr.register("Counter", function()
  return { n = 0,
           incr = function(self, by) self.n = self.n + (by or 1) return self.n end,
           get = function(self) return self.n end }
end)
