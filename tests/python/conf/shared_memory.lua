-- tests/python/conf/shared_memory.lua: Shared* objects made by Lua, at load time (before the
-- server listens: their segments are renamed after its address) and in a type's constructor.
listen = { "127.0.0.1:0" }

local loaded = shmgr.SharedArray("d", {0.5, 1.5, 2.5})
shmgr.register("get_loaded", function() return loaded end)

shmgr.register("Counts", nil) -- what Tally.counts hands out: the SharedArray itself
shmgr.register("Tally", function(n)
  local zeros = {}
  for i = 1, n do zeros[i] = 0 end
  local counts = shmgr.SharedArray("q", zeros)
  return {
    incr = function(self, i)
      counts:__setitem__(i, counts:__getitem__(i) + 1)
      return counts:__getitem__(i)
    end,
    total = function(self)
      local t = 0
      for _, x in ipairs(counts:tolist()) do t = t + x end
      return t
    end,
    counts = function(self) return counts end,
    bad = function(self)
      local ok, err = pcall(function() counts:__setitem__(0, 1.5) end)
      return ok and "no error" or tostring(err)
    end,
  }
end, { method_to_typeid = { counts = "Counts" } })
