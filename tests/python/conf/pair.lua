-- tests/python/conf/pair.lua: Lua types with and without an exposed list.
listen = { "127.0.0.1:0" }

-- only get_x is callable by clients
shmgr.register("Pair", function(x, y)
  return { x = x, y = y,
           get_x = function(self) return self.x end,
           set_x = function(self, v) self.x = v end }
end, { exposed = { "get_x" } })

-- no exposed list: every function field not starting with "_" is exposed
shmgr.register("OpenPair", function(x, y)
  return { x = x, y = y,
           get_x = function(self) return self.x end,
           set_x = function(self, v) self.x = v end,
           _hidden = function(self) return "hidden" end }
end)
