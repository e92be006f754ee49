-- tests/python/conf/shared_value.lua: SharedValue and SharedStruct made by Lua, at load time and
-- in a type's constructor, read and written by Lua methods, for test_shared_value.py.
listen = { "127.0.0.1:0" }

local greeting = shmgr.SharedValue("256p", "hello")
shmgr.register("get_greeting", function() return greeting end)

shmgr.register("Struct", nil) -- what Point.struct hands out: the SharedStruct itself
shmgr.register("Point", function(x, y)
  local p = shmgr.SharedStruct("<hh", { x, y })
  local text = shmgr.SharedValue("8s", "h\u{e9}llo")
  return {
    get = function(self) return p:get() end,
    move = function(self, dx, dy)
      local t = p:get() -- a tuple: reads like a table
      p:set({ t[1] + dx, t[2] + dy })
      return p:get()
    end,
    set_tuple = function(self, a, b) p:set(shmgr.tuple(a, b)) end,
    -- a Lua error carrying the Python exception, and nothing changed
    bad = function(self, v)
      local ok, err = pcall(function() p:set({ v, 0 }) end)
      return ok and "no error" or tostring(err)
    end,
    bad_scalar = function(self)
      local ok, err = pcall(function() p:set(5) end)
      return ok and "no error" or tostring(err)
    end,
    bad_table = function(self)
      local ok, err = pcall(function() p:set({ a = 1 }) end)
      return ok and "no error" or tostring(err)
    end,
    text = function(self) return text:get() end,
    set_text = function(self, s) text:set(s) return text:get() end,
    info = function(self) return p:shm_info() end,
    show = function(self) return tostring(p) end,
    struct = function(self) return p end,
  }
end, { method_to_typeid = { struct = "Struct" } })
