-- lua/shmgr/client.lua: a Lua client for managers servers (shmgr, or CPython's own): the
-- framing, the mutual handshake, server methods, and proxies of shared objects.
--
--   local client = require "shmgr.client"
--   local m = client.manager("127.0.0.1:50000", "secret")
--   local q = m:create("Queue")
--   q:put(42); print(q:get())     --> 42
--   q:_release()
--
-- Values go through shmgr.wire (the server's own codec): Lua values where natural,
-- wire.tuple / wire.list / wire.dict / wire.bytes / wire.None where Lua has no form.
-- A failed call raises an error table: { kind = "#ERROR" | "#TRACEBACK" | ...,
-- name = "builtins.KeyError", args = {...}, text = "..." } that prints as a message.
local socket = require "socket"
local wire = require "shmgr.wire"

local M = { wire = wire, timeout = 10 }

local RemoteError = {}
RemoteError.__index = RemoteError
RemoteError.__tostring = function(e)
  if e.kind == "#ERROR" then return e.name .. ": " .. wire.repr(e.value) end
  return e.kind .. ": " .. tostring(e.text)
end
M.RemoteError = RemoteError

-- ---- one connection: frames and the handshake ----

local Conn = {}
Conn.__index = Conn

--- Open a socket to address ("HOST:PORT" or "unix:PATH"); no handshake yet.
function M.open(address, timeout)
  local sock, ok, err
  local path = address:match("^unix:(.*)$")
  if path then
    local unix = require "socket.unix"
    sock = (unix.stream or unix)()
    ok, err = sock:connect(path)
  else
    local host, port = address:match("^%[?(.-)%]?:(%d+)$")
    if not host then return nil, "bad address " .. address end
    sock = socket.tcp()
    ok, err = sock:connect(host, tonumber(port))
    if ok then sock:setoption("tcp-nodelay", true) end
  end
  if not ok then sock:close() return nil, err end
  sock:settimeout(timeout or M.timeout)
  return setmetatable({ sock = sock, address = address }, Conn)
end

--- Send raw bytes as they are (framing included by the caller).
function Conn:send_raw(bytes)
  local ok, err = self.sock:send(bytes)
  if not ok then return nil, err end
  return true
end

--- Send one frame: the 4-byte big-endian length, then the payload.
function Conn:send_frame(payload)
  return self:send_raw(string.pack(">i4", #payload) .. payload)
end

--- Receive one frame (short or large form). Returns the payload, or nil and "closed" /
--- "timeout" / another error.
function Conn:recv_frame()
  local head, err = self.sock:receive(4)
  if not head then return nil, err end
  local n = string.unpack(">i4", head)
  if n == -1 then
    local big
    big, err = self.sock:receive(8)
    if not big then return nil, err end
    n = string.unpack(">I8", big)
  end
  if n == 0 then return "" end
  return self.sock:receive(n)
end

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

--- The managers' handshake as a client: answer the server's challenge, then challenge
--- it. legacy = true answers and challenges like Python <= 3.11 (20-byte challenge, raw
--- HMAC-MD5). Returns true, or nil and why.
function Conn:handshake(authkey, legacy)
  local msg, err = self:recv_frame()
  if not msg then return nil, "no challenge: " .. tostring(err) end
  if msg:sub(1, 11) ~= "#CHALLENGE#" then return nil, "expected a challenge" end
  local payload = msg:sub(12)
  -- a 3.11 client answers with a raw HMAC-MD5 of the whole payload, whatever its form
  self:send_frame(legacy and wire.hmac("md5", authkey, payload) or wire.answer(authkey, payload))
  local reply = self:recv_frame()
  if reply ~= "#WELCOME#" then return nil, "authentication failed: " .. tostring(reply) end
  local ours = legacy and random_bytes(20) or ("{sha256}" .. random_bytes(40))
  self:send_frame("#CHALLENGE#" .. ours)
  local theirs = self:recv_frame()
  if not theirs then return nil, "no answer to our challenge" end
  if not wire.check(authkey, ours, theirs) then
    self:send_frame("#FAILURE#")
    return nil, "the server's answer was wrong"
  end
  self:send_frame("#WELCOME#")
  return true
end

--- Send a request (ident or nil, method, args list, kwds table) and read the reply.
--- Returns kind, result (kind "#RETURN", "#ERROR", ...), or nil, error.
function Conn:request(ident, method, args, kwds)
  args = args or {}
  local req = wire.tuple(ident == nil and wire.None or ident, method,
                         wire.tuple(table.unpack(args, 1, args.n or #args)), wire.dict(kwds or {}))
  local ok, err = self:send_frame(wire.dumps(req))
  if not ok then return nil, err end
  local reply
  reply, err = self:recv_frame()
  if not reply then return nil, err end
  local msg, perr = wire.loads(reply)
  if not msg then return nil, perr end
  return msg[1], msg[2]
end

function Conn:close() self.sock:close() end

-- ---- a manager: server methods on fresh connections, proxies on one serving connection ----

local Manager = {}
Manager.__index = Manager

--- A manager for the server at address with authkey (a string of bytes).
function M.manager(address, authkey, opts)
  opts = opts or {}
  return setmetatable({ address = address, authkey = authkey, legacy = opts.legacy }, Manager)
end

local function check(kind, result)
  if kind == "#RETURN" then return result end
  if kind == nil then error(setmetatable({ kind = "closed", text = tostring(result) }, RemoteError), 3) end
  local e = { kind = kind, value = result }
  if kind == "#ERROR" then
    e.name = wire.opaque_name(result)
    e.args = wire.args(result)
  else
    e.text = result
  end
  error(setmetatable(e, RemoteError), 3)
end

--- Connect and authenticate a new connection. Returns the connection or raises.
function Manager:connection()
  local c, err = M.open(self.address)
  if not c then error("cannot connect to " .. self.address .. ": " .. tostring(err), 2) end
  local ok
  ok, err = c:handshake(self.authkey, self.legacy)
  if not ok then c:close() error(err, 2) end
  return c
end

--- Call a server method (create, incref, number_of_objects, ...) on a fresh connection,
--- as Python's dispatch() does. Returns the result or raises a RemoteError.
function Manager:call(method, ...)
  local c = self:connection()
  local kind, result = c:request(nil, method, table.pack(...), {})
  c:close()
  return check(kind, result)
end

local Proxy = {}

--- Create a shared object of typeid; returns its proxy.
function Manager:create(typeid, ...)
  local r = self:call("create", typeid, ...)
  return self:proxy(r[1], r[2])
end

--- A proxy for ident (already counted for us) with the exposed method names.
function Manager:proxy(ident, exposed)
  local names = {}
  for _, m in pairs(exposed or {}) do names[m] = true end
  return setmetatable({ _manager = self, _ident = ident, _exposed = names }, Proxy)
end

--- Call method on ident over this manager's serving connection.
function Manager:callmethod(ident, method, args, kwds)
  if not self.serving then
    local c = self:connection()
    check(c:request(nil, "accept_connection", { "lua" }, {}))
    self.serving = c
  end
  local kind, result = self.serving:request(ident, method, args, kwds)
  if kind == "#PROXY" then -- a new shared object, counted once for us
    local _, ident = wire.token(result[2])
    return self:proxy(ident, result[1])
  end
  return check(kind, result)
end

function Manager:close()
  if self.serving then self.serving:close() self.serving = nil end
end

Proxy.__index = function(p, name)
  if rawget(Proxy, name) then return Proxy[name] end
  return function(self, ...)
    return self._manager:callmethod(self._ident, name, table.pack(...), {})
  end
end

--- Call a method by name with keyword arguments: p:_call("get", {true}, {timeout = 1}).
function Proxy._call(p, method, args, kwds) return p._manager:callmethod(p._ident, method, args, kwds) end
--- Drop this proxy's reference (decref on a fresh connection).
function Proxy._release(p) if p._ident then p._manager:call("decref", p._ident) p._ident = nil end end

return M
