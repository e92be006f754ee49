-- tests/python/conf/framing.lua: small limits for the framing tests.
listen = { "127.0.0.1:0" }
limits = { max_message = 65536, handshake_timeout = 1 }
