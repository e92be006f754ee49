-- tests/python/conf/release_locks.lua: what a vanished client held is given back (not the default).
listen = { "127.0.0.1:0" }
lock_policy = "release"
