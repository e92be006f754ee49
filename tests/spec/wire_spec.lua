-- tests/spec/wire_spec.lua: the wire as a client sees it on raw connections: the handshake
-- in every digest form, the framing and its limits, malformed requests, the replies.
local S = require "support"
local client = require "shmgr.client"
local wire = require "shmgr.wire"
local socket = require "socket"

local KEY = "secret"

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

-- A raw connection (no handshake yet) that gives up reading after `timeout` s.
local function open(srv, timeout)
  local c = assert(client.open(srv.address, timeout or 5))
  finally(function() c:close() end)
  return c
end

-- Read the server's challenge; return the payload after "#CHALLENGE#".
local function server_challenge(c)
  local msg = assert(c:recv_frame())
  assert.are.equal("#CHALLENGE#", msg:sub(1, 11))
  return msg:sub(12)
end

-- A full handshake with answer(payload) -> bytes as our answer and a 20-byte legacy
-- challenge of our own; returns the connection ready for requests.
local function authed(srv, timeout)
  local c = open(srv, timeout)
  local payload = server_challenge(c)
  assert(c:send_frame(wire.hmac("md5", KEY, payload)))
  assert.are.equal("#WELCOME#", c:recv_frame())
  local ours = random_bytes(20)
  assert(c:send_frame("#CHALLENGE#" .. ours))
  assert.are.equal(wire.hmac("md5", KEY, ours), c:recv_frame())
  assert(c:send_frame("#WELCOME#"))
  return c
end

-- The next frame decoded: kind, result, protocol. nil, why when there is none.
local function reply(c)
  local bytes, err = c:recv_frame()
  if not bytes then return nil, err end
  local msg, proto = wire.loads(bytes)
  assert(msg, proto)
  return msg[1], msg[2], proto
end

local function request(ident, method, args, kwds)
  return wire.dumps(wire.tuple(ident == nil and wire.None or ident, method, wire.tuple(table.unpack(args or {})),
                               wire.dict(kwds or {})))
end

-- The connection ends (EOF) without another frame.
local function assert_closed(c)
  local frame, err = c:recv_frame()
  assert.is_nil(frame, "expected the connection to be closed, got a frame: " .. tostring(frame))
  assert.are.equal("closed", err)
end

-- Another client is served.
local function assert_serving(srv)
  assert.is_nil(srv:manager():call("dummy"))
end

describe("the wire", function()
  local srv
  setup(function()
    srv = S.start{ config = "limits = { max_message = 65536, handshake_timeout = 1, max_depth = 10, max_objects = 100 }\n" }
    assert(not srv.failed, srv.failed)
  end)
  teardown(function() srv:stop() end)

  describe("handshake, the server's challenge", function()
    it("is the first frame: 59 bytes, #CHALLENGE#{sha256} and 40 random bytes", function()
      local a, b = open(srv), open(srv)
      local ma, mb = a:recv_frame(), b:recv_frame()
      assert.are.equal(59, #ma)
      assert.are.equal("#CHALLENGE#{sha256}", ma:sub(1, 19))
      assert.are.equal("#CHALLENGE#{sha256}", mb:sub(1, 19))
      assert.are_not.equal(ma:sub(20), mb:sub(20))
    end)

    local forms = {
      { "a raw HMAC-MD5 (legacy, Python <= 3.11)", function(p) return wire.hmac("md5", KEY, p) end },
      { "{sha256} + HMAC-SHA256", function(p) return "{sha256}" .. wire.hmac("sha256", KEY, p) end },
      { "{sha384} + HMAC-SHA384", function(p) return "{sha384}" .. wire.hmac("sha384", KEY, p) end },
      { "{sha3_256} + HMAC-SHA3-256", function(p) return "{sha3_256}" .. wire.hmac("sha3-256", KEY, p) end },
      { "{md5} + HMAC-MD5", function(p) return "{md5}" .. wire.hmac("md5", KEY, p) end },
    }
    for _, f in ipairs(forms) do
      it("welcomes " .. f[1], function()
        local c = open(srv)
        local payload = server_challenge(c)
        assert(c:send_frame(f[2](payload)))
        assert.are.equal("#WELCOME#", c:recv_frame())
      end)
    end

    it("answers a wrong answer with #FAILURE#, then EOF, and still serves a good client", function()
      local c = open(srv)
      local payload = server_challenge(c)
      assert(c:send_frame("{sha256}" .. wire.hmac("sha256", "not the key", payload)))
      assert.are.equal("#FAILURE#", c:recv_frame())
      assert_closed(c)
      assert_serving(srv)
    end)

    it("answers a raw MD5 answer under the wrong key with #FAILURE#", function()
      local c = open(srv)
      local payload = server_challenge(c)
      assert(c:send_frame(wire.hmac("md5", "wrong", payload)))
      assert.are.equal("#FAILURE#", c:recv_frame())
      assert_closed(c)
    end)

    it("takes a handshake frame of exactly 256 bytes (a wrong answer: #FAILURE#)", function()
      local c = open(srv)
      server_challenge(c)
      assert(c:send_frame(("a"):rep(256)))
      assert.are.equal("#FAILURE#", c:recv_frame())
    end)

    it("closes on a handshake frame longer than 256 bytes", function()
      local c = open(srv)
      server_challenge(c)
      assert(c:send_frame(("a"):rep(300)))
      assert_closed(c)
    end)

    it("closes a connection that sends nothing after handshake_timeout (1 s)", function()
      local t0 = socket.gettime()
      local c = open(srv, 10)
      server_challenge(c)
      assert_closed(c)
      local took = socket.gettime() - t0
      assert.is_true(took > 0.5 and took < 5, "closed after " .. took .. " s")
    end)
  end)

  it("an authenticated connection is not closed by handshake_timeout", function()
    local c = authed(srv)
    assert(c:send_frame(request(nil, "accept_connection", { "idle" })))
    assert.are.equal("#RETURN", (reply(c)))
    socket.sleep(1.3)
    local q = srv:manager():create("Queue")
    finally(function() q:_release() end)
    assert(c:send_frame(request(q._ident, "qsize")))
    local kind, n = reply(c)
    assert.are.equal("#RETURN", kind)
    assert.are.equal(0, n)
  end)

  describe("handshake, the client's challenge", function()
    local function welcomed()
      local c = open(srv)
      local payload = server_challenge(c)
      assert(c:send_frame(wire.answer(KEY, payload)))
      assert.are.equal("#WELCOME#", c:recv_frame())
      return c
    end

    it("a 20-byte challenge is answered with a raw 16-byte HMAC-MD5", function()
      local c = welcomed()
      local ours = random_bytes(20)
      assert(c:send_frame("#CHALLENGE#" .. ours))
      local answer = c:recv_frame()
      assert.are.equal(16, #answer)
      assert.are.equal(wire.hmac("md5", KEY, ours), answer)
      assert(c:send_frame("#WELCOME#"))
      assert(c:send_frame(request(nil, "dummy")))
      assert.are.equal("#RETURN", (reply(c)))
    end)

    it("a {sha256} challenge is answered with {sha256} and 32 bytes of HMAC-SHA256", function()
      local c = welcomed()
      local ours = "{sha256}" .. random_bytes(40)
      assert(c:send_frame("#CHALLENGE#" .. ours))
      local answer = c:recv_frame()
      assert.are.equal(40, #answer)
      assert.are.equal("{sha256}" .. wire.hmac("sha256", KEY, ours), answer)
      assert.is_true(wire.check(KEY, ours, answer))
      assert(c:send_frame("#WELCOME#"))
      assert(c:send_frame(request(nil, "dummy")))
      assert.are.equal("#RETURN", (reply(c)))
    end)

    it("a challenge shorter than 20 bytes closes the connection", function()
      local c = welcomed()
      assert(c:send_frame("#CHALLENGE#" .. random_bytes(10)))
      assert_closed(c)
    end)

    it("a challenge with an unknown {digest} closes the connection", function()
      local c = welcomed()
      assert(c:send_frame("#CHALLENGE#{whirl}" .. random_bytes(40)))
      assert_closed(c)
    end)

    it("a client that rejects the server's answer is closed", function()
      local c = welcomed()
      assert(c:send_frame("#CHALLENGE#" .. random_bytes(20)))
      assert(c:recv_frame())
      assert(c:send_frame("#FAILURE#"))
      assert_closed(c)
    end)
  end)

  describe("framing", function()
    it("serves a request in the large length form (-1 and 8 bytes)", function()
      local c = authed(srv)
      local req = request(nil, "dummy")
      assert(c:send_raw(string.pack(">i4I8", -1, #req) .. req))
      local kind, result = reply(c)
      assert.are.equal("#RETURN", kind)
      assert.is_nil(result)
    end)

    it("answers a request above max_message with #TRACEBACK naming it, then EOF", function()
      local c = authed(srv)
      local body = ("a"):rep(70000)
      assert(c:send_raw(string.pack(">i4", #body) .. body))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("max_message", text, 1, true)
      assert_closed(c)
      assert_serving(srv)
    end)

    it("answers a length-only request above max_message at once, and drops it after a 10 s stall", function()
      -- docs/big-values.md: the rest is skipped as it comes; a client that stops sending it for
      -- 10 s is disconnected
      local c = authed(srv, 15)
      assert(c:send_raw(string.pack(">i4I8", -1, 1 << 40)))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("max_message", text, 1, true)
      local t0 = os.time()
      assert_closed(c)
      assert.is_true(os.time() - t0 >= 8, "closed after the stall, not at once")
      assert_serving(srv)
    end)

    it("serves a request of exactly max_message bytes and refuses one byte more", function()
      local q = srv:manager():create("Queue")
      finally(function() q:_release() end)
      local function put(text) return request(q._ident, "put", { text }) end
      local n = 65536 - #put("")
      for _ = 1, 5 do n = n + (65536 - #put(("a"):rep(n))) end
      assert.are.equal(65536, #put(("a"):rep(n)))
      local c = authed(srv)
      assert(c:send_frame(request(nil, "accept_connection", { "spec" })))
      assert.are.equal("#RETURN", (reply(c)))
      assert(c:send_frame(put(("a"):rep(n))))
      assert.are.equal("#RETURN", (reply(c)))
      assert(c:send_frame(put(("a"):rep(n + 1))))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("max_message", text, 1, true)
      -- the refused request's bytes were skipped: the connection is in step and serves on
      assert(c:send_frame(request(q._ident, "qsize")))
      local k2, size = reply(c)
      assert.are.equal("#RETURN", k2)
      assert.are.equal(1, size)
      assert(c:send_frame(put("b")))
      assert.are.equal("#RETURN", (reply(c)))
      assert.are.equal(2, q:qsize())
    end)

    it("closes on a negative length other than -1", function()
      local c = authed(srv)
      assert(c:send_raw(string.pack(">i4", -5)))
      assert_closed(c)
      assert_serving(srv)
    end)
  end)

  describe("requests", function()
    it("garbage that is no pickle gets #TRACEBACK with UnpicklingError, then EOF", function()
      local c = authed(srv)
      assert(c:send_frame("this is not a pickle"))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("UnpicklingError", text, 1, true)
      assert_closed(c)
    end)

    it("garbage on an accept_connection connection gets the error and the connection stays usable", function()
      local q = srv:manager():create("Queue")
      local c = authed(srv)
      assert(c:send_frame(request(nil, "accept_connection", { "spec" })))
      local kind, result = reply(c)
      assert.are.equal("#RETURN", kind)
      assert.is_nil(result)
      assert(c:send_frame("\x80\x04garbage"))
      local text
      kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("UnpicklingError", text, 1, true)
      assert(c:send_frame(request(q._ident, "put", { 5 })))
      assert.are.equal("#RETURN", (reply(c)))
      assert(c:send_frame(request(q._ident, "qsize")))
      kind, result = reply(c)
      assert.are.equal("#RETURN", kind)
      assert.are.equal(1, result)
      q:_release()
    end)

    it("a request nested deeper than max_depth gets #TRACEBACK; the connection goes on", function()
      local q = srv:manager():create("Queue")
      finally(function() q:_release() end)
      local v = 1
      for _ = 1, 20 do v = wire.list{ v } end
      local e = select(2, pcall(q.put, q, v))
      assert.are.equal("#TRACEBACK", e.kind)
      assert.matches("deeper", e.text, 1, true)
      q:put("ok") -- the same serving connection
      assert.are.equal(1, q:qsize())
    end)

    it("a request with more than max_objects values gets #TRACEBACK; the connection goes on", function()
      local q = srv:manager():create("Queue")
      finally(function() q:_release() end)
      local items = {}
      for i = 1, 200 do items[i] = i end
      local e = select(2, pcall(q.put, q, wire.list(items)))
      assert.are.equal("#TRACEBACK", e.kind)
      assert.matches("100", e.text, 1, true)
      q:put("ok")
      assert.are.equal(1, q:qsize())
    end)

    it("serves requests pickled at protocols 0, 2 and 3 (older clients), replying at protocol 4", function()
      local forms = {
        ["0"] = "(NVdummy\n(t(dt.",
        ["2"] = "\x80\x02(NX\x05\x00\x00\x00dummy)}t.",
        ["3"] = "\x80\x03(NX\x05\x00\x00\x00dummy)}t.",
      }
      for proto, bytes in pairs(forms) do
        local c = authed(srv)
        assert(c:send_frame(bytes))
        local answer = assert(c:recv_frame())
        assert.are.equal("\x80\x04", answer:sub(1, 2), "protocol " .. proto)
        assert.are.equal("#RETURN", wire.loads(answer)[1], "protocol " .. proto)
      end
    end)

    it("a 3-tuple gets #TRACEBACK 'not enough values to unpack (expected 4, got 3)'", function()
      local c = authed(srv)
      assert(c:send_frame(wire.dumps(wire.tuple(wire.None, "dummy", wire.tuple()))))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("not enough values to unpack (expected 4, got 3)", text, 1, true)
    end)

    it("(None, 'bogus', (), {}) gets #TRACEBACK \"'bogus' unrecognized\"", function()
      local c = authed(srv)
      assert(c:send_frame(request(nil, "bogus")))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("'bogus' unrecognized", text, 1, true)
    end)

    it("incref of an unknown ident gets #TRACEBACK with KeyError", function()
      local c = authed(srv)
      assert(c:send_frame(request(nil, "incref", { "no-such-ident" })))
      local kind, text = reply(c)
      assert.are.equal("#TRACEBACK", kind)
      assert.matches("KeyError", text, 1, true)
    end)

    it("serves one request per fresh connection, then EOF", function()
      local c = authed(srv)
      assert(c:send_frame(request(nil, "number_of_objects")))
      local kind, n = reply(c)
      assert.are.equal("#RETURN", kind)
      assert.are.equal("integer", math.type(n))
      assert_closed(c)
    end)

    it("dummy returns None", function()
      local c = authed(srv)
      assert(c:send_frame(request(nil, "dummy")))
      local kind, result = reply(c)
      assert.are.equal("#RETURN", kind)
      assert.is_nil(result)
    end)

    it("replies at protocol 4 to a protocol-4 request", function()
      local c = authed(srv)
      assert(c:send_frame(wire.dumps(wire.tuple(wire.None, "dummy", wire.tuple(), wire.dict{}), 4)))
      local bytes = assert(c:recv_frame())
      assert.are.equal("\x80\x04", bytes:sub(1, 2))
    end)

    it("replies at protocol 5 to a protocol-5 request", function()
      local c = authed(srv)
      assert(c:send_frame(wire.dumps(wire.tuple(wire.None, "dummy", wire.tuple(), wire.dict{}), 5)))
      local bytes = assert(c:recv_frame())
      assert.are.equal("\x80\x05", bytes:sub(1, 2))
      assert.are.equal("#RETURN", wire.loads(bytes)[1])
    end)
  end)
end)
