-- tests/spec/support.lua: start real shmgr processes for specs, and run the binary.
local socket = require "socket"

local S = {}

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
S.read = read

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
S.write = write

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
S.quote = sh_quote

--- A fresh temporary folder.
function S.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. sh_quote(p)))
  return p
end

--- Run ./shmgr with args (a string) to the end, at most `seconds`; env is a prefix such as
--- "SHMGR_AUTHKEY=x". Returns exit code, stdout, stderr.
function S.run(args, env, seconds)
  local dir = S.tmpdir()
  local cmd = string.format("%s timeout %d ./shmgr %s >%s/out 2>%s/err; echo $? >%s/rc",
    env or "env -u SHMGR_AUTHKEY", seconds or 5, args, dir, dir, dir)
  os.execute(cmd)
  local rc = tonumber(read(dir .. "/rc"))
  local out, err = read(dir .. "/out"), read(dir .. "/err")
  os.execute("rm -rf " .. sh_quote(dir))
  return rc, out, err
end

local Server = {}
Server.__index = Server

--- Start ./shmgr in the background. opts: config (text of the config), listen (list of
--- addresses; default {"127.0.0.1:0"}), authkey (default "secret"; false for none),
--- files (name -> text, written beside the config). Waits for every "listening on" line.
function S.start(opts)
  opts = opts or {}
  local dir = S.tmpdir()
  for name, text in pairs(opts.files or {}) do write(dir .. "/" .. name, text) end
  write(dir .. "/conf.lua", opts.config or "")
  local listen = opts.listen or { "127.0.0.1:0" }
  local args = {}
  for _, a in ipairs(listen) do args[#args + 1] = "--listen " .. sh_quote((a:gsub("DIR", dir))) end
  local key = opts.authkey == nil and "secret" or opts.authkey
  local env = key and ("SHMGR_AUTHKEY=" .. sh_quote(key)) or "env -u SHMGR_AUTHKEY"
  os.execute(string.format("(%s sh -c 'echo $$ >%s/pid; exec ./shmgr --config %s/conf.lua %s' 2>%s/log; echo $? >%s/rc) &",
    env, dir, dir, table.concat(args, " "), dir, dir))
  local self = setmetatable({ dir = dir, authkey = key or "", addresses = {} }, Server)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local log = read(dir .. "/log") or ""
    local found = {}
    for a in log:gmatch("listening on (%S+)") do found[#found + 1] = a end
    if #found == #listen then
      self.addresses = found
      self.address = found[1]
      self.pid = tonumber(read(dir .. "/pid"))
      return self
    end
    if read(dir .. "/rc") then break end
    socket.sleep(0.02)
  end
  self.failed = read(dir .. "/log")
  self.rc = tonumber(read(dir .. "/rc"))
  return self
end

--- What the server wrote on stderr so far.
function Server:log() return read(self.dir .. "/log") or "" end

--- The exit code once the process has ended (waits up to `seconds`), else nil.
function Server:wait(seconds)
  local deadline = socket.gettime() + (seconds or 5)
  repeat
    local rc = read(self.dir .. "/rc")
    if rc then return tonumber(rc) end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

--- Stop with SIGTERM (SIGKILL after 5 s); returns the exit code.
function Server:stop()
  if self.pid and not read(self.dir .. "/rc") then os.execute("kill -TERM " .. self.pid .. " 2>/dev/null") end
  local rc = self:wait(5)
  if not rc and self.pid then
    os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    rc = self:wait(2)
  end
  os.execute("rm -rf " .. sh_quote(self.dir))
  return rc
end

--- A manager (shmgr.client) for this server.
function Server:manager(opts)
  return require("shmgr.client").manager(self.address, self.authkey, opts)
end

return S
