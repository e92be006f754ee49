-- tests/python/conf/xmlrpc.lua: what test_xmlrpc.py's py_setup makes on CPython's server: one
-- shared queue, and a queue holding values XML-RPC cannot carry (or carries changed).
listen = { "127.0.0.1:0" }
local q = shmgr.Queue()
shmgr.register("get_queue", function() return q end)
local values = shmgr.Queue()
values:put(1 << 40)               -- past XML-RPC's 32 bits
values:put(shmgr.dict{[2] = 3})   -- a key that is not a str
values:put(shmgr.set{1, 2})       -- no XML-RPC type
values:put(shmgr.tuple(1, 2))     -- goes as an array: a list on the client
values:put(shmgr.bytes("ab"))     -- goes as base64: an xmlrpc.client.Binary on the client
shmgr.register("get_values", function() return values end)
limits = { max_message = 4 * 1024 * 1024, max_objects = 50000 }
