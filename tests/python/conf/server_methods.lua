-- tests/python/conf/server_methods.lua: one queue shared through a getter,
-- for refcount and number_of_objects checks.
listen = { "127.0.0.1:0" }
local shared = shmgr.Queue()
shmgr.register("get_shared_queue", function() return shared end)
