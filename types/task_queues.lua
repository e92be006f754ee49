-- types/task_queues.lua: the classic remote queues of Python's documentation: two shared
-- queues, each handed out by a getter typeid. Every call returns the same queue, so every
-- client sees the same one (same ident), as with CPython's `register('get_task_queue',
-- callable=lambda: queue)`.
--
--   class QueueManager(BaseManager): pass
--   QueueManager.register('get_task_queue')
--   m = QueueManager(address=('127.0.0.1', 50000), authkey=b'...'); m.connect()
--   m.get_task_queue().put(1)

local tasks = shmgr.Queue()
local results = shmgr.Queue()

shmgr.register("get_task_queue", function() return tasks end)
shmgr.register("get_result_queue", function() return results end)
