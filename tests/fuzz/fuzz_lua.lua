-- tests/fuzz/fuzz_lua.lua: the Lua half of fuzz_lua.c, loaded as the server loads a config:
-- one type, Probe, whose methods use a value the ways Lua types do (store it, return it, nest
-- it in tables, walk it through the shmgr.value API, copy and change it, pass it through
-- built-ins) and build values of their own from a program of small numbers.
local None = shmgr.None

-- A value for a table slot: nil (Python's None) cannot stand in a Lua table.
local function keep(x)
  if x == nil then return None end
  return x
end

local CONTAINERS = { list = true, tuple = true, dict = true, set = true, frozenset = true }

-- A copy of x made only through the shmgr.value API: # and [i] for sequences, pairs for
-- dicts and sets, the constructors to rebuild. Leaves (bytes, big ints, opaque objects,
-- bytearrays, odd strs) are kept as they are. Lua cannot see that two children are one
-- object, so shared structure is walked once per path: the instruction limit ends that.
local function copy(x, depth)
  if type(x) ~= "userdata" then return x end
  local kind = shmgr.kind(x)
  if not CONTAINERS[kind] then return x end
  if depth > 64 then error("walk: deeper than 64") end
  if kind == "list" or kind == "tuple" then
    local items, n = {}, #x
    for i = 1, n do items[i] = keep(copy(x[i], depth + 1)) end
    local seen = 0 -- pairs must visit the same items, None included
    for i, item in pairs(x) do
      seen = seen + 1
      if i ~= seen or item == nil then error("BUG: pairs broke off at " .. tostring(i)) end
    end
    if seen ~= n then error("BUG: pairs saw " .. seen .. " of " .. n) end
    if kind == "tuple" then return shmgr.tuple(table.unpack(items, 1, n)) end
    return shmgr.list(items)
  elseif kind == "dict" then
    local d, n = shmgr.dict(), 0
    for k, v in pairs(x) do
      n = n + 1
      d[copy(k, depth + 1)] = keep(copy(v, depth + 1))
    end
    if n ~= #x then error("BUG: pairs saw " .. n .. " of " .. #x .. " keys") end
    return d
  else
    local members = {}
    for k, present in pairs(x) do
      if present ~= true then error("BUG: a set member without true") end
      members[#members + 1] = keep(copy(k, depth + 1))
    end
    if #members ~= #x then error("BUG: pairs saw " .. #members .. " of " .. #x .. " members") end
    if kind == "set" then return shmgr.set(members) end
    return shmgr.frozenset(members)
  end
end

-- ---- values built in Lua ----

local FLOATS = { 0.5, -0.0, 1 / 0, -1 / 0, 0 / 0, 2.0 ^ 53, 1e300, 3.0 }
local function trap() error("a metamethod ran") end
local HOSTILE = { __len = trap, __index = trap, __newindex = trap, __pairs = trap, __eq = trap }
-- a finalizer that uses what its table holds, whose own finalizers may have run already
local WATCH = {
  __gc = function(t)
    for _, x in next, t do
      if type(x) == "userdata" then
        pcall(tostring, x)
        pcall(function() return #x, x[1], x == x end)
        pcall(shmgr.kind, x)
        pcall(function() return x:qsize() end) -- a shared object's handle
      end
    end
  end,
}

-- Run prog (a tuple of small ints) as a stack machine that builds Lua values: tables with
-- sequences, holes, odd keys, shared parts and cycles, metatables, and shmgr.value userdata.
-- Returns the stack (a table). Every step that can fail runs under pcall.
local function build(prog)
  local st, pc, n = {}, 1, #prog
  local function arg()
    local b = prog[pc] or 0
    pc = pc + 1
    return b
  end
  local function push(x) st[#st + 1] = x end
  local function pop()
    local x = st[#st]
    if x == nil then return None end
    st[#st] = nil
    return x
  end
  local function top() return st[#st] end
  local ops = {
    function() push(arg() - 128) end,                                        -- small int
    function() push(({ math.maxinteger, math.mininteger, 1 << 40, -(1 << 53) })[arg() % 4 + 1]) end,
    function() push(FLOATS[arg() % #FLOATS + 1]) end,
    function()                                                                -- a string, maybe not UTF-8
      local len, chars = arg() % 8, {}
      for i = 1, len do chars[i] = string.char(arg() % 256) end
      push(table.concat(chars))
    end,
    function() push(arg() % 2 == 1) end,
    function() push(None) end,
    function() push({}) end,
    function()                                                                -- append to the table below
      local v, t = pop(), top()
      if type(t) == "table" then rawset(t, rawlen(t) + 1, v)
      elseif type(t) == "userdata" then pcall(function() t[#t + 1] = v end) end
    end,
    function()                                                                -- t[k] = v
      local v, k, t = pop(), pop(), top()
      if type(t) == "table" and k == k then rawset(t, k, v)
      elseif type(t) == "userdata" then pcall(function() t[k] = v end) end
    end,
    function() if #st > 0 then push(top()) end end,                          -- dup: shared
    function() if #st > 1 then st[#st], st[#st - 1] = st[#st - 1], st[#st] end end,
    function() pop() end,
    function() local x = pop() push({ x, x }) end,                           -- doubling
    function()                                                                -- a cycle
      local t = top()
      if type(t) == "table" then rawset(t, rawlen(t) + 1, t)
      elseif type(t) == "userdata" then pcall(function() t[#t + 1] = t end) end
    end,
    function()                                                                -- shmgr.tuple(...)
      local k, items = arg() % 4, {}
      for i = k, 1, -1 do items[i] = pop() end
      local ok, t = pcall(shmgr.tuple, table.unpack(items, 1, k))
      push(ok and t or None)
    end,
    function() local ok, x = pcall(shmgr.list, top()) if ok then push(x) end end,
    function() local ok, x = pcall(shmgr.dict, top()) if ok then push(x) end end,
    function() local ok, x = pcall(shmgr.set, top()) if ok then push(x) end end,
    function() local ok, x = pcall(shmgr.frozenset, top()) if ok then push(x) end end,
    function() push(shmgr.bytes(string.rep(string.char(arg() % 256), arg() % 4))) end,
    function()                                                                -- a hole: t[#t + 2] = v
      local v, t = pop(), top()
      if type(t) == "table" then rawset(t, rawlen(t) + 2, v) end
    end,
    function() local t = top() if type(t) == "table" then setmetatable(t, HOSTILE) end end,
    function() local t = top() if type(t) == "table" then rawset(t, rawlen(t), nil) end end,
    function()                                                                -- nest deep
      local x = pop()
      for _ = 1, arg() % 64 * 4 do x = { x } end
      push(x)
    end,
    function() pcall(shmgr.kind, top()) end,                                  -- convert in Lua
    function()                                                                -- read a userdata
      local t = top()
      if type(t) == "userdata" then
        local ok, x = pcall(function() for _, item in pairs(t) do return item end end)
        if ok and x ~= nil then push(x) end
      end
    end,
    function() push(prog) end,                                                -- a tuple from Python
    function()                                                                -- a finalizer
      local t = top()
      if type(t) == "table" and getmetatable(t) == nil then pcall(setmetatable, t, WATCH) end -- refused
    end,
    function()                                                                -- keys 2, 3, 5: Lua's #
      local b, a = pop(), pop()                                               -- says 3, and 3 keys
      push({ nil, a, b, nil, [5] = b })
    end,
    function()                                                                -- a Queue's handle
      local ok, t = pcall(setmetatable, {}, WATCH)                             -- whose finalizer runs
      if not ok then t = {} end                                               -- before the table's
      t.q = shmgr.Queue()                                                     -- (__gc is refused now)
      t.q:put(top())
    end,
    function()                                                                -- tamper with the
      local x = top()                                                         -- metatable of a value
      pcall(function() getmetatable(x).__gc = nil end)
      pcall(function() getmetatable(x).__index = nil end)
    end,
  }
  while pc <= n do
    local op = ops[arg() % #ops + 1]
    op()
  end
  return st
end

-- The shape of a built value as lx_to must convert it, for fuzz_lua.c to check against what
-- came out: "L<id>:<n>;" a table that is a sequence (its keys exactly 1..n; then its items),
-- "D<id>:<n>;" any other table (then key and value of each entry, in next's order),
-- "R<id>;" a table met again, "U<id>;" a userdata (the same id: the same object),
-- "b;" "i;" "f;" "s;" a boolean, integer, float, string. Raw access only, like lx_to.
local function signature(x)
  local out, ids, nid = {}, {}, 0
  local function walk(v)
    local t = type(v)
    if t == "table" then
      if ids[v] then out[#out + 1] = "R" .. ids[v] .. ";" return end
      nid = nid + 1
      ids[v] = nid
      local count, max = 0, 0
      for k in next, v do
        count = count + 1
        if math.type(k) == "integer" and k > max then max = k end
      end
      local seq = max == count -- integer keys >= 1 only, and as many as the largest
      for k in next, v do
        if math.type(k) ~= "integer" or k < 1 then seq = false end
      end
      out[#out + 1] = (seq and "L" or "D") .. nid .. ":" .. count .. ";"
      if seq then
        for i = 1, count do walk(rawget(v, i)) end
      else
        for k, item in next, v do
          walk(k)
          walk(item)
        end
      end
    elseif t == "userdata" then
      if not ids[v] then nid = nid + 1 ids[v] = nid end
      out[#out + 1] = "U" .. ids[v] .. ";"
    elseif t == "boolean" then out[#out + 1] = "b;"
    elseif t == "number" then out[#out + 1] = math.type(v) == "integer" and "i;" or "f;"
    elseif t == "string" then out[#out + 1] = "s;"
    else out[#out + 1] = "?;" end
  end
  walk(x)
  return table.concat(out)
end

-- Does back (what the built value became after a pickle round trip, pushed into Lua again)
-- hold what the Lua value a held? Tables by their entries, userdata by their repr.
local function same(a, b, seen)
  local t = type(a)
  if t == "table" then
    if seen[a] then return true end
    seen[a] = true
    if type(b) ~= "userdata" then return false, "a table came back as a " .. type(b) end
    local count, max = 0, 0
    for k in next, a do
      count = count + 1
      if math.type(k) == "integer" and k > max then max = k end
    end
    local seq = max == count
    for k in next, a do
      if math.type(k) ~= "integer" or k < 1 then seq = false end
    end
    local kind = shmgr.kind(b)
    if kind ~= (seq and "list" or "dict") or #b ~= count then
      return false, "a table of " .. count .. " came back as a " .. kind .. " of " .. #b
    end
    for k, item in next, a do
      local ok, why = same(item, b[k], seen)
      if not ok then return false, why end
    end
    return true
  elseif t == "userdata" then
    if b == nil and shmgr.kind(a) == "NoneType" then return true end
    if a == b then return true end -- else NaN or a cycle, maybe: the reprs tell (up to 1 MiB)
    if tostring(a) ~= tostring(b) then return false, tostring(a) .. " came back as " .. tostring(b) end
    return true
  elseif t == "number" then
    if math.type(a) ~= math.type(b) then return false, "a number changed its type" end
    if a ~= a then return b ~= b, "NaN" end
    return a == b and 1 / a == 1 / b, "a number changed"
  elseif t == "string" and type(b) == "userdata" then -- not UTF-8: bytes
    return tostring(shmgr.bytes(a)) == tostring(b), "a string changed"
  end
  return a == b, "a " .. t .. " changed"
end

shmgr.register("Probe", function()
  return {
    echo = function(self, v) return v end,
    twice = function(self, v) return v, v end,
    nest = function(self, v)
      local x = keep(v)
      return { x, { x, x } }
    end,
    field = function(self, v)
      self.slot = keep(v)
      self.log = self.log or {}
      self.log[#self.log + 1] = self.slot
      return self.slot
    end,
    fetch = function(self) return self.log end,
    kind = function(self, v) return shmgr.kind(v) end,
    repr = function(self, v) -- a userdata's tostring is its repr; natural values have their own
      if type(v) == "userdata" then return tostring(v) end
    end,
    eq = function(self, a, b) return a == b end,
    copy = function(self, v) return copy(v, 0) end,
    -- a copy changed: a list (from a list or tuple) or dict that also holds itself under key
    grow = function(self, v, key)
      local kind = shmgr.kind(v)
      if kind == "list" or kind == "tuple" then
        local c = shmgr.list()
        for i, item in pairs(v) do c[i] = item end
        c[#c + 1] = c
        return c
      elseif kind == "dict" then
        local c = shmgr.dict()
        for k, item in pairs(v) do c[k] = keep(item) end
        c[key] = c
        return c
      end
      return v
    end,
    -- v itself changed: a list or dict that holds itself; and for [d, o] a dict d holding
    -- as a key an object o that holds d
    inplace = function(self, v, key)
      local kind = shmgr.kind(v)
      if kind == "list" then
        local d, o = v[1], v[2]
        v[#v + 1] = v
        if type(d) == "userdata" and shmgr.kind(d) == "dict" and o ~= nil then
          pcall(function() d[o] = true end) -- o may be unhashable
        end
      elseif kind == "dict" then
        v[key] = v
      end
    end,
    -- through built-in objects and back
    relay = function(self, v)
      local q = shmgr.Queue()
      q:put(v)
      local d = shmgr.new("dict")
      d:__setitem__("k", q:get())
      return d:__getitem__("k")
    end,
    build = function(self, prog)
      self.built = build(prog)
      return self.built, signature(self.built)
    end,
    compare = function(self, back)
      local ok, why = same(self.built, back, {})
      return ok or why
    end,
  }
end)
