-- tests/python/conf/conn_limits.lua: room for three connections at once.
listen = { "127.0.0.1:0" }
limits = { max_connections = 3 }
