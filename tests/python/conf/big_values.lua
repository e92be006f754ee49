-- tests/python/conf/big_values.lua: a small max_message (1 MiB) for test_big_values.py, so that
-- requests on either side of it are quick to send.
listen = { "127.0.0.1:0" }
limits = { max_message = 1024 * 1024 }
