-- tests/python/conf/ops.lua: what test_cli.py inspects: a named queue, a slow Lua method, locks given back.
listen = { "127.0.0.1:0" }
lock_policy = "release"
slowlog_threshold = 5 -- ms
log_level = "debug"

local jobs = shmgr.JoinableQueue{ name = "jobs", redeliver = true }
shmgr.register("get_jobs", function() return jobs end)

-- spin() keeps the loop busy for at least ms milliseconds: a slow call
shmgr.register("Spinner", function()
  return { spin = function(self, ms)
             local t = os.clock()
             while (os.clock() - t) * 1000 < ms do end
             return ms
           end }
end)
