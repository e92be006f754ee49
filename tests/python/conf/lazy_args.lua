-- tests/python/conf/lazy_args.lua: a small limits.max_objects, so that evaluating an
-- iterable argument reaches its step limit quickly.
listen = { "127.0.0.1:0" }
limits = { max_objects = 100000 }
