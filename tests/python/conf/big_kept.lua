-- tests/python/conf/big_kept.lua: max_memory 160 MiB, for test_big_values.py's buffer kept for
-- the next large frame, and given back when the room runs out.
listen = { "127.0.0.1:0" }
limits = { max_memory = 160 * 1024 * 1024, memory_wait = 0.2 }
