-- tests/python/conf/keep_locks.lua: CPython's behaviour for what a vanished client held.
listen = { "127.0.0.1:0" }
lock_policy = "keep"
