-- tests/python/conf/nested.lua: a Lua type that stores any value, proxies included.
listen = { "127.0.0.1:0" }

shmgr.register("Box", function()
  return {
    store = function(self, v) self.v = v end,
    fetch = function(self) return self.v end,
  }
end)
