-- types/pair.lua: a user-defined type in a few lines: a constructor returning a table of
-- methods. Only get_x is exposed, so set_x cannot be called remotely (as with CPython's
-- `register('Pair', Pair, exposed=('get_x',))`).

shmgr.register("Pair", function(x, y)
  return {
    x = x,
    y = y,
    get_x = function(self) return self.x end,
    set_x = function(self, v) self.x = v end,
  }
end, { exposed = { "get_x" } })
