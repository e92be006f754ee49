-- tests/python/conf/park_stress.lua: test_park_stress.py's server. A Hub holds a fresh set of
-- built-ins (handed out through getters as shared objects) and Lua methods that wait on one of
-- them and then wake another: a wait that ends in a timeout and a wake-up from inside it.
lock_policy = os.getenv("SHMGR_STRESS_LOCK_POLICY") or "release"

-- typeids without a constructor: a getter's built-in object is shared as it is
for _, t in ipairs({ "HubEvent", "HubLock", "HubRLock", "HubSemaphore", "HubQueue", "HubCondition",
                     "HubBarrier" }) do
  shmgr.register(t, nil)
end

-- a built-in's exception as the method's answer: "!" .. its class name
local function outcome(ok, r)
  if ok then return r end
  local s = tostring(r)
  return "!" .. (s:match("([%w_]+)%(") or s)
end

shmgr.register("Hub", function(parties, maxsize, semvalue, bounded)
  local h = {
    _ev = shmgr.Event(), _lk = shmgr.Lock(), _rl = shmgr.RLock(), _sem = (bounded and shmgr.BoundedSemaphore or shmgr.Semaphore)(semvalue),
    _q = shmgr.Queue(maxsize), _cv = shmgr.Condition(), _bar = shmgr.Barrier(parties),
  }
  function h.event(self) return self._ev end
  function h.lock(self) return self._lk end
  function h.rlock(self) return self._rl end
  function h.semaphore(self) return self._sem end
  function h.queue(self) return self._q end
  function h.condition(self) return self._cv end
  function h.barrier(self) return self._bar end
  local ops = {
    ev_wait = function(t) return h._ev:wait(t) end,
    lock_acquire = function(t) return h._lk:acquire(true, t or -1) end,
    sem_acquire = function(t) return h._sem:acquire(true, t) end,
    -- one unit, then (answered, at once) another
    sem_acquire2 = function(t) h._sem:acquire(); return h._sem:acquire(true, t) end,
    q_get = function(t) return h._q:get(true, t) end,
    q_put = function(t) return h._q:put("lua", true, t) end,
    bar_wait = function(t) return h._bar:wait(t) end,
    -- a pass, then a wait on the next one (answered, it waits again at once)
    bar_wait2 = function(t) h._bar:wait(); return h._bar:wait(t) end,
    -- three waits, clearing the Event after the first two
    ev_wait3 = function(t)
      h._ev:wait(t); h._ev:clear(); h._ev:wait(t); h._ev:clear()
      return h._ev:wait(t)
    end,
    -- take the condition's lock (waiting for it), notify every waiter, give it back
    cond_notify = function()
      h._cv:acquire()
      h._cv:notify_all()
      h._cv:release()
      return true
    end,
    cond_wait = function(t)
      h._cv:acquire()
      local ok, r = pcall(h._cv.wait, h._cv, t)
      h._cv:release()
      if not ok then error(r, 0) end
      return r
    end,
  }
  local wakes = {
    ev_set = function() h._ev:set() end,
    lock_release = function() h._lk:release() end,
    sem_release = function() h._sem:release() end,
    q_put = function() h._q:put("woken", false) end,
    bar_abort = function() h._bar:abort() end,
    cond_notify_all = function() h._cv:acquire(); h._cv:notify_all(); h._cv:release() end,
  }
  -- wait with ops[op](t), then (whatever its answer) wake[wake]() if given: its answer, or
  -- "!" and the class of the exception it raised
  function h.wait_then(self, op, t, wake)
    local ok, r = pcall(ops[op], t)
    if wake and wake ~= "" then wakes[wake]() end
    return outcome(ok, r)
  end
  return h
end, { method_to_typeid = { event = "HubEvent", lock = "HubLock", rlock = "HubRLock",
                            semaphore = "HubSemaphore", queue = "HubQueue", condition = "HubCondition",
                            barrier = "HubBarrier" } })
