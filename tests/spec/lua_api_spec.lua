-- tests/spec/lua_api_spec.lua: types written in Lua, as a client sees them: exposed methods,
-- shared getters, errors and raised exceptions, values in and out, blocking on built-ins,
-- method_to_typeid, the sandbox and its limits.
local S = require "support"
local wire = require "shmgr.wire"
local socket = require "socket"

-- The line of the first line of `text` containing `needle` (plain).
local function line_of(text, needle)
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if line:find(needle, 1, true) then return n end
  end
  error("no line with " .. needle)
end

local remote_error = S.remote_error

-- The text of a RemoteError: an #ERROR's first argument, or a #TRACEBACK's text.
local function message(e)
  if e.kind == "#ERROR" then return tostring(e.args and e.args[1]) end
  return tostring(e.text)
end

local CONFIG = [[
types = { "types/x.lua", "types/probe.lua", "types/a.lua", "types/b.lua" }

shmgr.register("T", function()
  return { data = 1, zeta = function(self) return "z" end, alpha = function(self) return "a" end,
           Mid = function(self) return "M" end, _hidden = function(self) return "h" end }
end)

shmgr.register("R", function()
  return { a = function(self) return "a" end, b = function(self) return "b" end }
end, { exposed = { "a" } })

shmgr.register("Fail", function()
  return {
    boom = function(self) error("boom") end,
    bad = function(self) shmgr.raise("ValueError", "bad") end,
    empty = function(self) shmgr.raise("queue.Empty") end,
    mine = function(self) shmgr.raise("mymod.MyError", 1, "two") end,
  }
end)

shmgr.register("Box", function()
  return {
    store = function(self, x) self.x = x end,
    fetch = function(self) return self.x end,
    kind = function(self, x) return shmgr.kind(x) end,
    mathtype = function(self, x) return math.type(x) end,
    luatype = function(self, x) return type(x) end,
    first = function(self, x) return x[1] end,
    len = function(self, x) return #x end,
    get = function(self, x, k) return x[k] end,
    append = function(self, x, v) x[#x + 1] = v return x end,
    seq = function(self) return { 1, "two", 3.5 } end,
    map = function(self) return { a = 1, [2] = "b" } end,
    badutf8 = function(self) return "\xff\xfe" end,
    utf8 = function(self) return "h\u{e9}llo \u{2603}" end,
    kinds = function(self)
      return { int = shmgr.kind(1), float = shmgr.kind(1.0), str = shmgr.kind("\u{e9}"),
               bytes = shmgr.kind("\xff"), list = shmgr.kind({ 1, 2 }), dict = shmgr.kind({ a = 1 }),
               tuple = shmgr.kind(shmgr.tuple(1)), none = shmgr.kind(nil), bool = shmgr.kind(true),
               set = shmgr.kind(shmgr.set{ 1 }), frozenset = shmgr.kind(shmgr.frozenset{ 1 }),
               made_bytes = shmgr.kind(shmgr.bytes("abc")), made_list = shmgr.kind(shmgr.list{}),
               made_dict = shmgr.kind(shmgr.dict{}), made_none = shmgr.kind(shmgr.None) }
    end,
    made = function(self) return shmgr.tuple(1, shmgr.list{ 2 }, shmgr.dict{ k = shmgr.None }, shmgr.bytes("b")) end,
    made_int_keys = function(self) return shmgr.dict{ [1] = 2, [2] = "x" } end,
    ping = function(self) return "pong" end,
    repr = function(self, x) return tostring(x) end,
    items = function(self, x)
      local r = {}
      for k, v in pairs(x) do r[#r + 1] = tostring(k) .. "=" .. tostring(v) end
      table.sort(r)
      return table.concat(r, " ")
    end,
  }
end)

shmgr.register("W", function()
  local q = shmgr.Queue()
  return {
    take = function(self) return q:get() end,
    give = function(self, x) q:put(x) end,
    size = function(self) return q:qsize() end,
  }
end)

local never = shmgr.Queue()
shmgr.register("Blocker", function() return { x = never:get() } end)

shmgr.register("Counter", nil)
shmgr.register("Coll", function()
  return {
    iter = function(self)
      local i = 0
      return { next = function(s) i = i + 1 return i end }
    end,
    size = function(self) return 0 end,
  }
end, { method_to_typeid = { iter = "Counter" } })

shmgr.register("Wrapped", function(t)
  return { get = function(self) return t.v end }
end)
shmgr.register("Maker", function()
  return { make = function(self, v) return { v = v } end }
end, { method_to_typeid = { make = "Wrapped" } })
]]

local X = [[
-- types/x.lua: a type in a type script of its own

shmgr.register("XFail", function()
  return {
    boom = function(self) error("boom") end,
  }
end)
]]

local PROBE = [[
shmgr.register("Probe", function()
  return {
    globals = function(self)
      return { io = type(io), os_execute = type(os.execute), load = type(load),
               loadstring = type(loadstring), dofile = type(dofile), loadfile = type(loadfile),
               package = type(package), debug = type(debug), collectgarbage = type(collectgarbage),
               os_getenv = type(os.getenv), os_exit = type(os.exit), os_remove = type(os.remove),
               os_time = type(os.time), os_clock = type(os.clock), string = type(string),
               table = type(table), math = type(math), utf8 = type(utf8), pcall = type(pcall),
               setmetatable = type(setmetatable) }
    end,
    require_shmgr = function(self) return require("shmgr") == shmgr end,
    require_os = function(self)
      local ok = pcall(require, "os")
      return ok
    end,
    say = function(self, text) print("probe says", text) end,
    finalizer = function(self)
      local ok, err = pcall(setmetatable, {}, { __gc = function() while true do end end })
      local plain = pcall(setmetatable, {}, { __index = {} })
      return ok, tostring(err), plain
    end,
    metatables = function(self)
      local changed = pcall(function() getmetatable(shmgr.None).__gc = nil end)
      return getmetatable(shmgr.None), getmetatable(shmgr.Queue()), changed
    end,
  }
end)
]]

local A = [[
string.upper = function() return "hacked" end
shmgr.register("A", function()
  return { up = function(self, s) return string.upper(s) end }
end)
]]

local B = [[
shmgr.register("B", function()
  return { up = function(self, s) return string.upper(s) end,
           up_method = function(self, s) return s:upper() end }
end)
]]

describe("Lua types", function()
  local srv, m
  setup(function()
    srv = S.start{ config = CONFIG, files = { ["types/x.lua"] = X, ["types/probe.lua"] = PROBE,
                                              ["types/a.lua"] = A, ["types/b.lua"] = B } }
    assert(not srv.failed, srv.failed)
    m = srv:manager()
  end)
  teardown(function()
    m:close()
    srv:stop()
  end)

  describe("exposed methods", function()
    it("a constructor returning a table makes an object", function()
      local t = m:create("T")
      assert.are.equal("a", t:alpha())
      assert.are.equal("z", t:zeta())
      t:_release()
    end)

    it("by default: the public function fields, sorted; no _ ones, no data fields", function()
      local r = m:call("create", "T")
      assert.are.equal("tuple", wire.kind(r))
      assert.are.equal("str", wire.kind(r[1]))
      assert.are.equal("('Mid', 'alpha', 'zeta')", wire.repr(r[2]))
      m:call("decref", r[1])
    end)

    it("a _ method and a data field cannot be called", function()
      local t = m:create("T")
      local e = remote_error(t._call, t, "_hidden", {})
      assert.are.equal("#TRACEBACK", e.kind)
      assert.matches("not in exposed", e.text, 1, true)
      e = remote_error(t._call, t, "data", {})
      assert.are.equal("#TRACEBACK", e.kind)
      t:_release()
    end)

    it("the exposed option restricts them", function()
      local r = m:call("create", "R")
      assert.are.equal("('a',)", wire.repr(r[2]))
      local p = m:proxy(r[1], r[2])
      assert.are.equal("a", p:a())
      local e = remote_error(p._call, p, "b", {})
      assert.are.equal("#TRACEBACK", e.kind)
      assert.matches("not in exposed", e.text, 1, true)
      p:_release()
    end)

    it("get_methods names the exposed methods", function()
      local r = m:call("create", "T")
      -- Token('T', ('127.0.0.1', 5000), ident), pickled as Python does (without FRAME)
      local token = wire.loads("\x80\x04" ..
        "\x8c\x18multiprocessing.managers\x8c\x05Token\x93)\x81" ..
        "\x8c\x01T\x8c\x09127.0.0.1M\x88\x13\x86" .. string.pack("s1", r[1]):gsub("^", "\x8c") .. "\x87b.")
      assert.is_truthy(token, "the hand-made Token pickle did not load")
      assert.are.equal("('Mid', 'alpha', 'zeta')", wire.repr(m:call("get_methods", token)))
      m:call("decref", r[1])
    end)
  end)

  describe("errors", function()
    it("error('boom') in the config reaches the client as RuntimeError('conf.lua:N: boom')", function()
      local f = m:create("Fail")
      local e = remote_error(f.boom, f)
      assert.are.equal("#ERROR", e.kind)
      assert.are.equal("builtins.RuntimeError", e.name)
      local want = ("conf.lua:%d: boom"):format(line_of(CONFIG, 'error("boom")'))
      assert.are.equal(want, message(e):sub(1, #want))
      f:_release()
    end)

    it("error('boom') in a type script cites it by its config name, types/x.lua:N:", function()
      local f = m:create("XFail")
      local e = remote_error(f.boom, f)
      assert.are.equal("#ERROR", e.kind)
      assert.are.equal("builtins.RuntimeError", e.name)
      local want = ("types/x.lua:%d: boom"):format(line_of(X, 'error("boom")'))
      assert.are.equal(want, message(e):sub(1, #want))
      f:_release()
    end)

    it("shmgr.raise('ValueError', 'bad') raises exactly ValueError('bad')", function()
      local f = m:create("Fail")
      local e = remote_error(f.bad, f)
      assert.are.equal("#ERROR", e.kind)
      assert.are.equal("builtins.ValueError", e.name)
      assert.are.equal("('bad',)", wire.repr(e.args))
      f:_release()
    end)

    it("shmgr.raise('queue.Empty') raises queue.Empty()", function()
      local f = m:create("Fail")
      local e = remote_error(f.empty, f)
      assert.are.equal("#ERROR", e.kind)
      assert.are.equal("queue.Empty", e.name)
      assert.are.equal("()", wire.repr(e.args))
      f:_release()
    end)

    it("shmgr.raise works with any module.Name and any arguments", function()
      local f = m:create("Fail")
      local e = remote_error(f.mine, f)
      assert.are.equal("#ERROR", e.kind)
      assert.are.equal("mymod.MyError", e.name)
      assert.are.equal("(1, 'two')", wire.repr(e.args))
      f:_release()
    end)

    it("keyword arguments to a Lua method get a TypeError", function()
      local b = m:create("Box")
      local e = remote_error(b._call, b, "store", { 1 }, { extra = 2 })
      assert.are.equal("#ERROR", e.kind)
      assert.are.equal("builtins.TypeError", e.name)
      assert.are.equal("pong", b:ping())
      b:_release()
    end)
  end)

  describe("values", function()
    local box
    before_each(function() box = m:create("Box") end)
    after_each(function() box:_release() end)

    local function big(sign)
      -- Python's pickle of 2**70 (or -2**70): LONG1 with 9 bytes, little-endian
      return assert(wire.loads("\x80\x04\x8a\x09" .. ("\0"):rep(8) .. (sign < 0 and "\xc0" or "\x40") .. "."))
    end

    local cases = {
      { "None", function() return nil end, "NoneType" },
      { "True", function() return true end, "bool" },
      { "False", function() return false end, "bool" },
      { "an int", function() return 42 end, "int" },
      { "a negative int", function() return -7 end, "int" },
      { "math.maxinteger", function() return math.maxinteger end, "int" },
      { "math.mininteger", function() return math.mininteger end, "int" },
      { "a big int (2**70)", function() return big(1) end, "int" },
      { "a negative big int (-2**70)", function() return big(-1) end, "int" },
      { "the float 1.0", function() return 1.0 end, "float" },
      { "the float 0.1", function() return 0.1 end, "float" },
      { "the float -0.0", function() return -0.0 end, "float" },
      { "an infinite float", function() return math.huge end, "float" },
      { "a str with UTF-8", function() return "h\u{e9}llo \u{2603} \u{1D11E}" end, "str" },
      { "an empty str", function() return "" end, "str" },
      { "invalid UTF-8 (goes as bytes)", function() return "\xff\xfe\0x" end, "bytes" },
      { "bytes", function() return wire.bytes("a\0b") end, "bytes" },
      { "a tuple", function() return wire.tuple(1, "a", wire.None) end, "tuple" },
      { "the empty tuple", function() return wire.tuple() end, "tuple" },
      { "a list", function() return wire.list{ 1, "a", 2.5 } end, "list" },
      { "nested dicts", function() return wire.dict{ a = wire.dict{ b = wire.list{ 1, 2 } }, c = wire.tuple(3) } end, "dict" },
      { "a dict with int and tuple keys", function() return wire.dict{ [1] = "one", [0] = "zero" } end, "dict" },
      { "a set", function() return wire.set{ 1, 2, "x" } end, "set" },
      { "a frozenset", function() return wire.frozenset{ 1, 2 } end, "frozenset" },
    }
    for _, case in ipairs(cases) do
      it("round-trip: " .. case[1], function()
        local v = case[2]()
        assert.are.equal(case[3], wire.kind(v))
        box:store("something else")
        box:store(v)
        local got = box:fetch()
        assert.are.equal(case[3], wire.kind(got))
        assert.are.equal(wire.repr(v), wire.repr(got))
        assert.are.equal(case[3], box:kind(v)) -- what the Lua type sees
      end)
    end

    it("1.0 arrives in Lua as a float and goes back as a float", function()
      assert.are.equal("float", box:mathtype(1.0))
      assert.are.equal("integer", box:mathtype(1))
      box:store(1.0)
      local got = box:fetch()
      assert.are.equal("float", math.type(got))
      assert.are.equal("1.0", wire.repr(got))
    end)

    it("str arrives as a Lua string; tuples, lists, dicts and bytes as shmgr.value", function()
      assert.are.equal("string", box:luatype("abc"))
      assert.are.equal("nil", box:luatype(nil))
      assert.are.equal("number", box:luatype(2))
      assert.are.equal("boolean", box:luatype(false))
      assert.are.equal("userdata", box:luatype(wire.tuple(1)))
      assert.are.equal("userdata", box:luatype(wire.list{ 1 }))
      assert.are.equal("userdata", box:luatype(wire.dict{ a = 1 }))
      assert.are.equal("userdata", box:luatype(wire.bytes("x")))
    end)

    it("a value reads like a table in Lua: v[1], #v, v[key]", function()
      assert.are.equal("a", box:first(wire.tuple("a", "b")))
      assert.are.equal(2, box:len(wire.tuple("a", "b")))
      assert.are.equal(3, box:len(wire.list{ 1, 2, 3 }))
      assert.are.equal(1, box:get(wire.dict{ k = 1 }, "k"))
    end)

    it("tostring(v) in Lua is Python's repr", function()
      for _, v in ipairs{ wire.tuple(1, "a"), wire.list{ 1.0 }, wire.dict{ k = wire.None }, wire.bytes("b"),
                          wire.set{ 3 } } do
        assert.are.equal(wire.repr(v), box:repr(v))
      end
    end)

    it("pairs(v) in Lua walks tuples, dicts and sets", function()
      assert.are.equal("1=a 2=b", box:items(wire.tuple("a", "b")))
      assert.are.equal("a=1 b=[2]", box:items(wire.dict{ a = 1, b = wire.list{ 2 } }))
      assert.are.equal("7=true", box:items(wire.set{ 7 }))
    end)

    it("a list can be changed in place in Lua", function()
      local got = box:append(wire.list{ 1 }, "x")
      assert.are.equal("list", wire.kind(got))
      assert.are.equal("[1, 'x']", wire.repr(got))
    end)

    it("a tuple stays a tuple and a list a list", function()
      box:store(wire.tuple(1, 2))
      assert.are.equal("(1, 2)", wire.repr(box:fetch()))
      box:store(wire.list{ 1, 2 })
      assert.are.equal("[1, 2]", wire.repr(box:fetch()))
    end)

    it("a Lua sequence arrives as a list, another table as a dict", function()
      local seq = box:seq()
      assert.are.equal("list", wire.kind(seq))
      assert.are.equal("[1, 'two', 3.5]", wire.repr(seq))
      local map = box:map()
      assert.are.equal("dict", wire.kind(map))
      assert.are.equal(1, map.a)
      assert.are.equal("b", map[2])
      assert.are.equal(2, #map)
    end)

    it("a Lua string that is valid UTF-8 arrives as str, else as bytes", function()
      local s = box:utf8()
      assert.are.equal("str", wire.kind(s))
      assert.are.equal("h\u{e9}llo \u{2603}", s)
      local b = box:badutf8()
      assert.are.equal("bytes", wire.kind(b))
      assert.are.equal("b'\\xff\\xfe'", wire.repr(b))
    end)

    it("shmgr.tuple/list/dict/bytes/None make what Lua has no form for", function()
      assert.are.equal("(1, [2], {'k': None}, b'b')", wire.repr(box:made()))
      assert.are.equal("{1: 2, 2: 'x'}", wire.repr(box:made_int_keys())) -- a sequence table keeps its keys
    end)

    it("shmgr.kind names the Python type", function()
      local k = box:kinds()
      local want = { int = "int", float = "float", str = "str", bytes = "bytes", list = "list",
                     dict = "dict", tuple = "tuple", none = "NoneType", bool = "bool", set = "set",
                     frozenset = "frozenset", made_bytes = "bytes", made_list = "list",
                     made_dict = "dict", made_none = "NoneType" }
      for name, kind in pairs(want) do assert.are.equal(kind, k[name], name) end
    end)
  end)

  describe("blocking", function()
    -- Send a call on m's serving connection without waiting for the answer.
    local function send_call(mgr, ident, method, ...)
      local req = wire.dumps(wire.tuple(ident, method, wire.tuple(...), wire.dict{}))
      assert(mgr.serving:send_frame(req))
    end

    it("a method calling q:get() on an empty queue waits until another client puts", function()
      local ma = srv:manager()
      local w = ma:create("W")
      finally(function() w:_release() ma:close() end)
      assert.are.equal(0, w:size()) -- opens ma's serving connection
      send_call(ma, w._ident, "take")
      ma.serving.sock:settimeout(0.2)
      local early, why = ma.serving:recv_frame()
      assert.is_nil(early, "take answered before anything was put")
      assert.are.equal("timeout", why)
      ma.serving.sock:settimeout(5)
      local mb = srv:manager()
      finally(function() mb:close() end)
      local other = mb:proxy(w._ident, { "give", "size", "take" })
      assert.is_nil(other:give(42))
      local msg = wire.loads(assert(ma.serving:recv_frame()))
      assert.are.equal("#RETURN", msg[1])
      assert.are.equal(42, msg[2])
      assert.are.equal(0, other:size())
    end)

    it("a waiting caller that disconnects loses nothing: a later put's item stays in the queue", function()
      local ma = srv:manager()
      local w = ma:create("W")
      finally(function() w:_release() end)
      assert.are.equal(0, w:size())
      send_call(ma, w._ident, "take")
      ma.serving.sock:settimeout(0.2)
      assert.is_nil(ma.serving:recv_frame())
      ma:close()
      socket.sleep(0.2) -- let the server see the disconnection first
      local mb = srv:manager()
      finally(function() mb:close() end)
      local other = mb:proxy(w._ident, { "give", "size", "take" })
      other:give(7)
      assert.are.equal(1, other:size())
      assert.are.equal(7, other:take())
    end)

    it("a constructor that calls a blocking get fails with 'would block'", function()
      local e = remote_error(m.create, m, "Blocker")
      assert.matches("would block", message(e), 1, true)
      assert.is_nil(m:call("dummy"))
    end)
  end)

  describe("method_to_typeid", function()
    it("shares what the method returns as a new object (#PROXY) whose methods work", function()
      local r = m:call("create", "Coll")
      local exposed = {}
      for _, name in pairs(r[2]) do exposed[name] = true end
      assert.is_true(exposed.iter)
      local c = m:proxy(r[1], r[2])
      local before = m:call("number_of_objects")
      local it = c:iter()
      assert.are.equal("table", type(it))
      assert.is_string(it._ident)
      assert.are_not.equal(c._ident, it._ident)
      assert.are.equal(before + 1, m:call("number_of_objects"))
      assert.are.equal(1, it:next())
      assert.are.equal(2, it:next())
      it:_release()
      c:_release()
    end)

    it("a target typeid with a constructor is called with the returned value", function()
      local mk = m:create("Maker")
      local w = mk:make(5)
      assert.are.equal("table", type(w))
      assert.are.equal(5, w:get())
      w:_release()
      mk:_release()
    end)

    it("the #PROXY reply carries the exposed methods and a Token of the typeid", function()
      local c = m:create("Coll")
      local conn = m.serving
      local req = wire.dumps(wire.tuple(c._ident, "iter", wire.tuple(), wire.dict{}))
      assert(conn:send_frame(req))
      local msg = wire.loads(assert(conn:recv_frame()))
      assert.are.equal("#PROXY", msg[1])
      assert.are.equal("('next',)", wire.repr(msg[2][1]))
      local typeid, ident = wire.token(msg[2][2])
      assert.are.equal("Counter", typeid)
      m:call("decref", ident)
      c:_release()
    end)
  end)

  describe("the sandbox of a type script", function()
    it("has no io, os.execute, load, loadstring, dofile, package, debug, collectgarbage", function()
      local p = m:create("Probe")
      finally(function() p:_release() end)
      local g = p:globals()
      for _, name in ipairs{ "io", "os_execute", "load", "loadstring", "dofile", "loadfile", "package", "debug",
                             "collectgarbage", "os_getenv", "os_exit", "os_remove" } do
        assert.are.equal("nil", g[name], name)
      end
      for _, name in ipairs{ "os_time", "os_clock", "pcall", "setmetatable" } do
        assert.are.equal("function", g[name], name)
      end
      for _, name in ipairs{ "string", "table", "math", "utf8" } do
        assert.are.equal("table", g[name], name)
      end
    end)

    it("the metatables of values and shared objects cannot be had or changed: getmetatable names them", function()
      local p = m:create("Probe")
      finally(function() p:_release() end)
      local t = p:metatables()
      assert.are.equal("shmgr.value", t[1])
      assert.are.equal("shmgr.object", t[2])
      assert.is_false(t[3])
    end)

    it("setmetatable refuses __gc (a finalizer would run outside the instruction limit)", function()
      local p = m:create("Probe")
      finally(function() p:_release() end)
      local t = p:finalizer()
      assert.is_false(t[1])
      assert.matches("__gc is not available", t[2])
      assert.is_true(t[3])
    end)

    it("require 'shmgr' works and require 'os' fails", function()
      local p = m:create("Probe")
      finally(function() p:_release() end)
      assert.is_true(p:require_shmgr())
      assert.is_false(p:require_os())
    end)

    it("each script has its own string table: changing string.upper in one does not affect another", function()
      local a, b = m:create("A"), m:create("B")
      finally(function() a:_release() b:_release() end)
      assert.are.equal("hacked", a:up("abc"))
      assert.are.equal("ABC", b:up("abc"))
      assert.are.equal("ABC", b:up_method("abc"))
    end)

    it("print writes a log line 'lua: ...' with its arguments and nothing else", function()
      local p = m:create("Probe")
      finally(function() p:_release() end)
      p:say("hello-from-spec")
      assert.is_truthy(S.poll(function() return srv:log():find("lua: probe says\thello-from-spec\n", 1, true) end, 3),
        "no such line in the log:\n" .. srv:log())
    end)
  end)
end)

describe("a getter typeid returning the same shmgr.Queue()", function()
  local srv, m
  setup(function()
    srv = S.start{ config = 'local shared = shmgr.Queue()\nshmgr.register("get_shared", function() return shared end)\n' }
    assert(not srv.failed, srv.failed)
    m = srv:manager()
  end)
  teardown(function() srv:stop() end)

  it("gives the same ident on every create, counted once, and again after all decrefs", function()
    assert.are.equal(0, m:call("number_of_objects"))
    local r1 = m:call("create", "get_shared")
    local r2 = m:call("create", "get_shared")
    assert.are.equal(r1[1], r2[1])
    assert.are.equal(1, m:call("number_of_objects"))
    local exposed = wire.repr(r1[2])
    for _, name in ipairs{ "get", "put", "qsize" } do assert.matches("'" .. name .. "'", exposed, 1, true) end
    local q = m:proxy(r1[1], r1[2])
    q:put("kept")
    m:call("decref", r1[1])
    m:call("decref", r1[1])
    assert.are.equal(0, m:call("number_of_objects"))
    local r3 = m:call("create", "get_shared")
    assert.are.equal(r1[1], r3[1])
    assert.are.equal(1, m:call("number_of_objects"))
    assert.are.equal("kept", m:proxy(r3[1], r3[2]):get()) -- the Lua upvalue kept the queue
    m:close()
  end)
end)

describe("built-ins made in Lua", function()
  local srv, m
  setup(function()
    srv = S.start{ config = [[
local bounded = shmgr.new("Queue", 1)
local joinable = shmgr.JoinableQueue()
shmgr.register("get_bounded", function() return bounded end)
shmgr.register("get_joinable", function() return joinable end)
shmgr.register("Maker", function()
  return {
    make = function(self, typeid) local ok, err = pcall(shmgr.new, typeid) return ok and "made" or tostring(err) end,
  }
end)
]] }
    assert(not srv.failed, srv.failed)
    m = srv:manager()
  end)
  teardown(function() m:close() srv:stop() end)

  it("shmgr.new(typeid, ...) passes the arguments to the constructor", function()
    local q = m:create("get_bounded")
    q:put(1)
    local e = S.remote_error(q._call, q, "put", { 2, false }, {})
    assert.are.equal("queue.Full", e.name) -- maxsize 1 came through
    q:_release()
  end)

  it("a constructor per built-in typeid: shmgr.JoinableQueue()", function()
    local q = m:create("get_joinable")
    q:put("x")
    assert.are.equal("x", q:get())
    assert.is_nil(q:task_done())
    q:_release()
  end)

  it("shmgr.new of an unknown or Lua-typed typeid fails with a message", function()
    local maker = m:create("Maker")
    assert.matches("'nope' is not a built%-in typeid", maker:make("nope"))
    assert.matches("'Maker' is not a built%-in typeid", maker:make("Maker"))
    assert.matches("cannot run a Pool", maker:make("Pool"))
    maker:_release()
  end)
end)

describe("the Lua limits", function()
  local srv, m
  setup(function()
    srv = S.start{ config = [[
limits = { lua_instructions = 100000, lua_memory = 8 * 1024 * 1024 }
shmgr.register("Runaway", function()
  return {
    spin = function(self) while true do end end,
    hog = function(self) local s = "x" for i = 1, 40 do s = s .. s end return #s end,
    ping = function(self) return "pong" end,
  }
end)
]] }
    assert(not srv.failed, srv.failed)
    m = srv:manager()
  end)
  teardown(function()
    m:close()
    srv:stop()
  end)

  it("an infinite loop fails with RuntimeError naming the instruction limit; the server still answers", function()
    local r = m:create("Runaway")
    local t0 = socket.gettime()
    local e = remote_error(r.spin, r)
    assert.is_true(socket.gettime() - t0 < 5)
    assert.are.equal("#ERROR", e.kind)
    assert.are.equal("builtins.RuntimeError", e.name)
    assert.matches("instruction", message(e), 1, true)
    assert.are.equal("pong", r:ping())
    assert.is_nil(srv:manager():call("dummy"))
    r:_release()
  end)

  it("a method building a huge string fails with a memory error; the server still answers", function()
    local r = m:create("Runaway")
    local e = remote_error(r.hog, r)
    assert.are.equal("#ERROR", e.kind)
    assert.matches("memory", message(e), 1, true)
    assert.are.equal("pong", r:ping())
    local again = m:create("Runaway")
    assert.are.equal("pong", again:ping())
    again:_release()
    r:_release()
  end)
end)
