"""Values through a Lua type and back (tests/python/conf/lua_values.lua): what a client
sends comes back as it went in, shared structure included; a Lua method can walk it (a
dict with a None key too) and compare it (shared structure 40 levels deep); tables made
in Lua keep their shape (shared, cyclic, sparse) or are refused with a clear error; and
methods that fail in odd ways (a metatable, a failing __tostring, too many arguments,
Lua's memory full) fail alone: the server goes on serving."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import collections  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import decimal  # noqa: E402
import fractions  # noqa: E402
from multiprocessing.managers import RemoteError  # noqa: E402

CONF = harness.conf('lua_values.lua')
DEEP = 40  # levels of a structure holding the same part twice: 2**40 paths through it


class Keeper(object):
    """The CPython stand-in for the Lua type (the parts both servers can do)."""

    def put(self, v):
        self.v = v

    def get(self):
        return self.v

    def keys(self, d):
        return list(d)

    def same(self, a, b):
        return a == b


def py_setup(M):
    M.register('Keeper', Keeper)


def doubled_dict(n):
    d = {'leaf': None}
    for _ in range(n):
        d = {'a': d, 'b': d}
    return d


def values():
    shared = [1, 'two']
    cyclic = []
    cyclic.append(cyclic)
    ba = bytearray(b'ba')
    return {
        'shared': [shared, shared, (shared,)],
        'cyclic': cyclic,
        'cyclic dict': {'k': cyclic},
        'bytearray twice': [ba, ba],
        'big ints': [2 ** 64, -2 ** 200],
        'opaque': [datetime.datetime(2026, 12, 1, 6, 0), decimal.Decimal('1.5'),
                   fractions.Fraction(1, 3), collections.OrderedDict(a=shared)],
        'None and friends': (None, True, 0, -0.0, '', b'', '\ud800'),
        'None key': {None: 1, 'a': 2, (1, None): 3},
    }


def check_round_trips(k):
    for what, v in values().items():
        k.put(v)
        got = k.get()
        harness.eq(repr(got), repr(v), '%s: put then get' % what)
        harness.eq(type(got), type(v), '%s: the same type back' % what)
    k.put(values()['shared'])
    got = k.get()
    harness.check(got[0] is got[1] and got[2][0] is got[0],
                  'a list held three times comes back as one list held three times')
    k.put(values()['cyclic'])
    got = k.get()
    harness.check(got[0] is got, 'a list holding itself still does')
    k.put(values()['bytearray twice'])
    got = k.get()
    harness.check(got[0] is got[1], 'a bytearray held twice comes back as one')


def main():
    with harness.server(CONF, py_setup) as srv:
        m = harness.client_manager(srv, ['Keeper', 'Hog'])
        k = m.Keeper()
        check_round_trips(k)

        # pairs() over a dict with a None key: every key is seen (it stopped at None)
        d = {'a': 1, None: 2, 'b': 3}
        harness.eq(sorted(k.keys(d), key=repr), sorted(d, key=repr), 'every key of a dict with a None key')

        if srv.backend == 'cpython':
            harness.skip_part('== on shared structure', "CPython's own == follows every path "
                              'through a dict holding the same dict twice: 2**40 comparisons')
        else:
            # == between two equal values that share their parts 40 levels deep (it never ended)
            harness.eq(k.same(doubled_dict(DEEP), doubled_dict(DEEP)), True,
                       '== of two 40-level dicts each holding the same dict twice')
            harness.eq(k.same(doubled_dict(DEEP), doubled_dict(DEEP - 1)), False,
                       '== of two such dicts of different depths')
            sm = harness.sync_manager(srv)
            lst = sm.list([doubled_dict(DEEP)])
            harness.eq(lst.count(doubled_dict(DEEP)), 1, 'a built-in list counts such a dict once')
            harness.eq(k.same([1, 2], [1, 2]), True, 'served after the comparisons')

    if harness.BACKEND == 'cpython':
        harness.skip_part('tables made in Lua', 'Lua types are shmgr\'s')
        harness.done()
        return

    with harness.server(CONF) as srv:
        m = harness.client_manager(srv, ['Keeper', 'Hog'])
        k = m.Keeper()

        # a Lua table held twice is one list held twice (it came back as two copies)
        r = k.shared()
        harness.eq(r, [[1, 2], [1, 2]], 'shared(): the content')
        harness.check(r[0] is r[1], 'shared(): one list held twice')

        # shared tables 40 levels deep convert once, not once per path (it never ended)
        r = k.doubled(DEEP)
        depth, node = 0, r
        while isinstance(node, list) and len(node) == 2:
            harness.check(node[0] is node[1], 'doubled(): level %d holds one list twice' % depth)
            node, depth = node[0], depth + 1
            if depth > DEEP:
                break
        harness.eq((depth, node), (DEEP, ['leaf']), 'doubled(40): 40 levels, then the leaf')

        # a table holding itself is a list holding itself (it was refused as too deep)
        r = k.cyclic()
        harness.check(isinstance(r, list) and len(r) == 1 and r[0] is r, 'cyclic(): a list holding itself: %r' % (r,))

        # keys 2, 3 and 5: a dict, not [None, 2, 3] (5 was lost)
        harness.eq(k.sparse(), {2: 2, 3: 3, 5: 5}, 'sparse(): {nil, 2, 3, nil, [5] = 5}')

        # keys 1 and true are one key in Python: an error, not one of them dropped
        e = harness.raises(ValueError, k.collide, what='collide(): keys 1 and true')
        if e is not None:
            harness.check('equal in Python' in str(e), 'collide(): the message says why: %r' % str(e))

        # these stopped the server (a Lua error raised outside any protected call)
        harness.eq(k.meta(), [1, 2], 'meta(): the table as it is; its __len does not run')
        e = harness.raises(RuntimeError, k.bad_error, what='bad_error(): an error object whose __tostring fails')
        if e is not None:
            harness.check('error object is a table value' in str(e), 'bad_error(): the message: %r' % str(e))
        harness.eq(k._callmethod('count', (None,) * 1000), 1000, 'count() with 1000 arguments')
        e = harness.raises(RuntimeError, k._callmethod, 'count', (None,) * 1000001,
                           what='count() with 1,000,001 arguments (more than a Lua stack holds)')
        if e is not None:
            harness.check('too many arguments' in str(e), 'too many arguments: the message: %r' % str(e))
        # a finalizer (__gc) ran inside the collector, out of the instruction limit's reach, and
        # could reach a value or Queue whose own finalizer had run (the server: SIGSEGV); scripts
        # cannot set one now
        e = harness.raises(RuntimeError, k.finalizers, [1], what='finalizers(): a table with __gc')
        if e is not None:
            harness.check('__gc is not available' in str(e), 'finalizers(): the message: %r' % str(e))
        harness.eq(k.same([1], [1]), True, 'served after the odd failures')

        # filling a list from Lua, item by item, is linear (16,000 items took a minute)
        harness.eq(k.fill(100000), 100000, 'fill(100000): a list of 100,000 tuples made in Lua')

        # Lua's memory full: the method fails, the server does not stop (the traceback for
        # the log could not be made: the server aborted)
        n = m._number_of_objects()
        hog = m.Hog()
        try:
            hog.fill()
            harness.fail('fill() returned')
        except RuntimeError as e:
            harness.check('not enough memory' in str(e), 'fill(): the message: %r' % str(e))
        for _ in range(3):  # each call needs memory it may not get: an error, not a crash
            try:
                hog.ping()
            except RuntimeError as e:
                harness.check('memory' in str(e), 'ping() with the memory full: %r' % str(e))
        del hog
        gc.collect()  # the exception's traceback and the proxy's frames make a cycle
        harness.eq(m._number_of_objects(), n, 'the object holding the memory is gone')
        harness.eq(k.same([1], [1]), True, 'served once the object holding the memory is gone')
        m2 = harness.client_manager(srv, ['Keeper'])
        harness.eq(m2.Keeper().same((1,), (1,)), True, 'a new client is served')
    harness.done()


if __name__ == '__main__':
    main()
