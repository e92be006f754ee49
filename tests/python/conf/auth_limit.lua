-- tests/python/conf/auth_limit.lua: an address that fails the handshake three times is turned away.
listen = { "127.0.0.1:0" }
limits = { max_auth_failures = 3, handshake_timeout = 1 }
