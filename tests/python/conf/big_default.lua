-- tests/python/conf/big_default.lua: no limits at all, for test_big_values.py's large value under
-- the default max_message (2 GiB) and max_memory (half the machine's memory).
listen = { "127.0.0.1:0" }
