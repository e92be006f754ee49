-- tests/python/conf/max_memory_clients.lua: issue 14's acceptance test (test_max_memory.py):
-- 32 clients put 50 MB each into one queue under a 512 MiB limits.max_memory; a request that
-- does not fit waits half a second for room.
listen = { "127.0.0.1:0" }
limits = { max_memory = 512 * 1024 * 1024, memory_wait = 0.5 }

local q = shmgr.Queue()
shmgr.register("get_queue", function() return q end)
