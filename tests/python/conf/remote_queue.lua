-- tests/python/conf/remote_queue.lua: the classic remote-queue example of the
-- multiprocessing docs; the same two queues for every caller of the getters.
listen = { "127.0.0.1:0" }
local tasks, results = shmgr.Queue(), shmgr.Queue()
shmgr.register("get_task_queue", function() return tasks end)
shmgr.register("get_result_queue", function() return results end)
