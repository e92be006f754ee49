-- tests/python/conf/lua_values.lua: a Lua type that keeps, walks and makes values, for
-- test_lua_values.py: values from clients through Lua and back, tables made in Lua (shared,
-- cyclic, sparse), and methods that fail in ways that once stopped the server.
listen = { "127.0.0.1:0" }
limits = { lua_memory = 16 * 1024 * 1024 }

shmgr.register("Keeper", function()
  return {
    put = function(self, v) self.v = v end,
    get = function(self) return self.v end,
    -- the keys of a dict, walked with pairs
    keys = function(self, d)
      local ks = shmgr.list()
      for k in pairs(d) do ks[#ks + 1] = k end
      return ks
    end,
    same = function(self, a, b) return a == b end,
    -- tables made in Lua
    shared = function(self)
      local t = { 1, 2 }
      return { t, t }
    end,
    doubled = function(self, n)
      local t = { "leaf" }
      for _ = 1, n do t = { t, t } end
      return t
    end,
    cyclic = function(self)
      local t = {}
      t[1] = t
      return t
    end,
    sparse = function(self) return { nil, 2, 3, nil, [5] = 5 } end,
    collide = function(self) return { [1] = "one", [true] = "true" } end,
    -- what a metatable says is not what the table holds
    meta = function(self)
      return setmetatable({ 1, 2 }, { __len = function() error("__len ran") end })
    end,
    -- an error object whose __tostring fails too
    bad_error = function(self)
      error(setmetatable({}, { __tostring = function() error("__tostring ran") end }))
    end,
    count = function(self, ...) return select("#", ...) end,
    -- finalizers that use a value and a Queue whose own finalizers ran first
    finalizers = function(self, v)
      for _ = 1, 200 do
        local holder = setmetatable({}, { __gc = function(t)
          pcall(function() return t.q:qsize(), tostring(t.q), #t.v, tostring(t.v) end)
        end })
        holder.q, holder.v = shmgr.Queue(), shmgr.tuple(v, v)
      end
      local junk = {}
      for i = 1, 20000 do junk[i] = { i } end -- the collector runs meanwhile
      return "done"
    end,
    fill = function(self, n) -- storing into a list looks for a cycle in what is stored, not in the list
      local l = shmgr.list()
      for i = 1, n do l[#l + 1] = shmgr.tuple(i) end
      return #l
    end,
  }
end)

-- fills Lua's memory and keeps it: every call after fails until the object goes
shmgr.register("Hog", function()
  return {
    fill = function(self) -- small pieces, so that hardly a byte is left when it fails
      while true do self.t = { self.t, "piece" .. tostring(self.t) } end
    end,
    ping = function(self) return "pong" end,
  }
end)
