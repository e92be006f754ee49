-- tests/python/conf/park_timers.lua: a Lua method that waits on a built-in with a timeout,
-- then wakes others (test_park_timers.py: a wake-up made when a timeout ends).
local gate = shmgr.Event()
local bell = shmgr.Event()

shmgr.register("get_bell", function() return bell end)
shmgr.register("Ringer", function()
  return {
    -- wait on the gate (never set) for t seconds, then ring the bell: the bell's waiters
    -- whose own timeouts ended in the same loop turn are woken by this
    wait_then_ring = function(self, t)
      local got = gate:wait(t)
      bell:set()
      return got
    end,
  }
end)
