-- tests/python/conf/remote_queue.lua: the classic remote queues, from the script shmgr ships.
listen = { "127.0.0.1:0" }
types = { "../../../types/task_queues.lua" }
