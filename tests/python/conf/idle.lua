-- tests/python/conf/idle.lua: an authenticated connection that sends nothing for 1 s is closed.
listen = { "127.0.0.1:0" }
limits = { idle_timeout = 1 }
