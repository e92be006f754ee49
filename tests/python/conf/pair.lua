-- tests/python/conf/pair.lua: the Pair type shmgr ships (only get_x exposed), and one
-- without an exposed list.
listen = { "127.0.0.1:0" }
types = { "../../../types/pair.lua" }

-- no exposed list: every function field not starting with "_" is exposed
shmgr.register("OpenPair", function(x, y)
  return { x = x, y = y,
           get_x = function(self) return self.x end,
           set_x = function(self, v) self.x = v end,
           _hidden = function(self) return "hidden" end }
end)
