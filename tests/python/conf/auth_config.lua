-- tests/python/conf/auth_config.lua: the authkey set in the config, which
-- wins over SHMGR_AUTHKEY from the environment.
listen = { "127.0.0.1:0" }
authkey = "key-from-config"
