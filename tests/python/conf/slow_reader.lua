-- tests/python/conf/slow_reader.lua: a client that leaves its replies unread is dropped after 2 s.
listen = { "127.0.0.1:0" }
limits = { send_timeout = 2 }
