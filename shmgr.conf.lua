-- shmgr.conf.lua: the default configuration of shmgr. It is Lua, run in a sandbox
-- before the server starts; the settings are the globals it leaves behind.
-- `./shmgr --config FILE` reads another file; `--listen ADDR` replaces `listen`.
-- SIGHUP (`systemctl reload shmgr`) reads it again: log_level, limits, lock_policy,
-- slowlog_threshold and the authkey change at once; the rest is logged as needing a restart
-- (docs/operations.md, "Reload (SIGHUP)").

-- Where to listen: "HOST:PORT" (port 0 picks a free port; the real one is logged) or
-- "unix:PATH" (a socket file created with unix_mode). A string or a list of them.
listen = { "127.0.0.1:50000" }

-- The authkey. Never write it here: shmgr reads, in this order,
--   authkey = "..."            -- a string (for tests only)
--   authkey_file = "path"      -- a file holding the key (trailing newline dropped),
--                              -- relative to this file's folder
-- and else the environment variable SHMGR_AUTHKEY. Python clients pass the same bytes
-- as `authkey=`. Without any key shmgr serves loopback and Unix sockets only, with an
-- empty key, and refuses other addresses.
-- authkey_file = "/etc/shmgr/authkey"

-- Permissions of Unix socket files, as an octal string.
unix_mode = "0600"

-- Permissions of the shared memory segments (in /dev/shm) that hold SharedValue,
-- SharedStruct and SharedArray objects, as an octal string: who on this host may map them
-- (docs/shared-memory.md). "0600": processes of shmgr's own user; "0660": its group too.
shm_mode = "0600"

-- What happens to the Locks, RLocks, Semaphores and Conditions a client holds when its
-- connection closes (it crashed, was killed, or forgot). Logged either way.
--   "keep"     (the default) they stay held, as on CPython's server: a Lock or Semaphore can
--              still be released by another client (Python lets any thread release them, and
--              programs hand a lock from one process to another that way), an RLock or
--              Condition never again. A worker that dies inside `with lock:` blocks the others.
--   "release"  they are given back and the next waiter gets them: a dead worker cannot block
--              the others, but a lock acquired by one process and released later by another
--              (after the first has exited) is then released twice: the second release fails
--              with RuntimeError('release unlocked lock').
lock_policy = "keep"

-- Durable queues (docs/durability.md): a queue declared with durable = true is kept in an
-- SQLite database under data_dir (a directory that must exist, relative to this file's
-- folder): a restart or a crash of the server loses none of its items. durability is
-- "process" (a change whose reply went out survives the server being killed) or "power"
-- (it also survives a power cut: synced to the disk at each commit). redeliver = true (durable
-- or not) puts the items a client got back at the head of the queue if its connection closes
-- before its task_done(): a worker that dies loses no task.
--   data_dir = "data"
--   durability = "process"
--   local jobs = shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = true, maxsize = 0 }
--   shmgr.register("get_jobs", function() return jobs end)

-- How much to log on stderr: "debug", "info", "warn" or "error".
log_level = "info"

-- Calls that keep the server busy longer than this many milliseconds (not counting time
-- parked, waiting for a lock or an item) go to the slowlog (`shmgr-cli slowlog`) and the log
-- at "warn". 0 turns the slowlog off.
slowlog_threshold = 10

-- Prometheus metrics: with an address here, GET /metrics on it answers in Prometheus' text
-- format (docs/operations.md). Keep it on loopback or a private network: it needs no key.
-- Port 0 picks a free port (the log says which: "metrics on HOST:PORT"). At most 64 HTTP
-- clients at once; one silent for 10 s is dropped.
-- metrics_listen = "127.0.0.1:9150"

-- Limits. Each has a default; set only what you want to change.
limits = {
  -- bytes in one request. Past it that call fails (RemoteError naming max_message) and the
  -- rest of the request is skipped; the connection goes on. 2 GiB, the most a 4-byte frame
  -- header can say, lets a program send the big arrays it sends to CPython's server (which
  -- has no limit): what bounds the memory clients can hand over is max_memory, below.
  max_message       = 2 * 1024 * 1024 * 1024,
  -- bytes the server may hold (stored values, buffered requests and replies, Lua, shared
  -- memory) before calls that add data (put, append, __setitem__, create, a Lua method that
  -- grows its state) fail with MemoryError; calls that read or remove go on, so consumers can
  -- drain and producers retry. Default: half the memory of the machine (or of its cgroup);
  -- 0: no limit. A request over 64 KiB that does not fit waits memory_wait seconds for room,
  -- reading nothing more from that client, then is refused (MemoryError) and skipped.
  -- max_memory     = 512 * 1024 * 1024,
  memory_wait       = 2,
  handshake_timeout = 10,               -- seconds a new connection has to authenticate
  max_depth         = 1000,             -- nesting of containers in one request
  max_objects       = 10 * 1024 * 1024, -- values in one request (and 4 x as many steps evaluating an iterable argument)
  lua_instructions  = 10000000,         -- Lua instructions per method call (0: no limit)
  lua_memory        = 256 * 1024 * 1024, -- bytes for all Lua state (0: no limit)
  max_connections   = 65536,            -- open connections at once; more are told so and closed
  send_timeout      = 60,               -- seconds a client may leave its replies unread (0: forever)
  max_auth_failures = 10,               -- failed handshakes a minute from one TCP address before it is turned away (0: no limit;
                                        -- loopback and Unix sockets are not counted: local processes share them)
  idle_timeout      = 0,                -- seconds a connection may send nothing before it is closed (0: never;
                                        -- stock proxies keep quiet connections and do not reconnect)
  max_store_bytes   = 0,                -- bytes the durable store may grow to (0: as the disk allows)
}

-- Type scripts to load, relative to this file's folder. Each registers typeids with
-- shmgr.register(typeid, constructor, options); see docs/lua-types.md. The built-in typeids
-- (Queue, JoinableQueue) exist whatever is loaded here.
types = {
  "types/task_queues.lua", -- get_task_queue / get_result_queue: the classic remote queues
  "types/pair.lua",        -- Pair: a Lua type with an exposed list
}
