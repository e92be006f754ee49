-- test_shared_memory_manager.py: built-in typeids only; a metrics page to read shmgr_tracked_segments from
metrics_listen = "127.0.0.1:0"
