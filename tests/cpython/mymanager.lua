-- tests/cpython/mymanager.lua: the types of test._test_multiprocessing's own managers, in Lua,
-- for own_managers.py. The tests register them with Python callables the server would call:
--
--   MyManager.register('Foo', callable=FooBar)                  -- exposed: f, g (its public methods)
--   MyManager.register('Bar', callable=FooBar, exposed=('f', '_h'))
--   MyManager.register('baz', callable=baz, proxytype=IteratorProxy)   -- a generator; exposed
--                                                                 -- (__next__,), IteratorProxy's
--   QueueManager.register('get_queue', callable=get_queue)     -- one shared queue.Queue
--
-- Here the same typeids, with the same exposed methods and answers.

-- FooBar: f() returns 'f()', g() raises ValueError, _h() returns '_h()'.
local function FooBar()
  return {
    f = function(self) return "f()" end,
    g = function(self) shmgr.raise("ValueError") end,
    _h = function(self) return "_h()" end,
  }
end

shmgr.register("Foo", FooBar, { exposed = { "f", "g" } })
shmgr.register("Bar", FooBar, { exposed = { "f", "_h" } })

-- baz(): a generator of i*i for i in 0..9; its proxy calls __next__ until StopIteration.
shmgr.register("baz", function()
  local i = 0
  return {
    __next__ = function(self)
      if i >= 10 then shmgr.raise("StopIteration") end
      i = i + 1
      return (i - 1) * (i - 1)
    end,
  }
end, { exposed = { "__next__" } })

-- get_queue(): the one queue every client shares.
local queue = shmgr.Queue()
shmgr.register("get_queue", function() return queue end)
