"""A user-defined type (Lua for shmgr, the same class in Python for the CPython
reference) with and without an exposed list, used through AutoProxy."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from multiprocessing.managers import MakeProxyType, RemoteError  # noqa: E402


class Pair(object):
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def get_x(self):
        return self.x

    def set_x(self, v):
        self.x = v


class OpenPair(Pair):
    def _hidden(self):
        return 'hidden'


def py_setup(M):
    M.register('Pair', Pair, exposed=('get_x',))
    M.register('OpenPair', OpenPair)


def main():
    with harness.server(harness.conf('pair.lua'), py_setup) as srv:
        m = harness.client_manager(srv, ['Pair', 'OpenPair'])
        p = m.Pair(3, 4)
        harness.eq(p.get_x(), 3, 'Pair(3, 4).get_x()')
        harness.eq(tuple(type(p)._exposed_), ('get_x',), 'exposed list the client got from create')

        # set_x is not exposed: the AutoProxy has no such method ...
        harness.raises(AttributeError, lambda: p.set_x, what='p.set_x on the proxy')
        # ... and the server refuses it when asked directly
        e = harness.raises(RemoteError, p._callmethod, 'set_x', (5,), what="_callmethod('set_x')")
        if e is not None:
            text = str(e)
            harness.check("'set_x'" in text and 'not in exposed' in text,
                          "refusal names 'set_x' and says 'not in exposed': %r" % text)
        harness.eq(p.get_x(), 3, 'get_x() after the refused set_x (state unchanged, conn in sync)')

        # a client whose proxy type claims more than the server exposes is
        # still refused by the server
        greedy = MakeProxyType('GreedyPairProxy', ('get_x', 'set_x'))
        m2 = harness.client_manager(srv, [('Pair', {'proxytype': greedy})])
        p2 = m2.Pair(1, 2)
        e = harness.raises(RemoteError, p2.set_x, 9, what='set_x via a proxy type claiming it')
        if e is not None:
            harness.check("'set_x'" in str(e), 'refusal names set_x: %r' % str(e))
        harness.eq(p2.get_x(), 1, 'get_x() after set_x refused to the greedy proxy')

        # str() asks the server for __repr__; repr() is local.  Neither fails.
        s = str(p)
        harness.check(isinstance(s, str) and "'__str__()' failed" not in s,
                      'str(proxy) answered by the server: %r' % s)
        r = repr(p)
        harness.check(isinstance(r, str) and 'Pair' in r, 'repr(proxy): %r' % r)

        # _getvalue() sends '#GETVALUE'.  CPython's server pickles the object
        # itself, so a Python client gets a copy of the Pair.  A Lua table is
        # no Python object and cannot honestly become a Pair instance, so for
        # shmgr we only require a clean answer (a value or a RemoteError) with
        # the connection left in sync.
        try:
            v = p._getvalue()
        except RemoteError as e:
            v = e
            harness.check(srv.backend != 'cpython', 'cpython _getvalue() raised %r' % e)
        except Exception as e:
            v = e
            harness.fail('_getvalue() raised %s: %s (want a value or RemoteError)'
                         % (type(e).__name__, e))
        if srv.backend == 'cpython':
            harness.check(type(v) is Pair and (v.x, v.y) == (3, 4),
                          'cpython _getvalue() returns a copy of the Pair: %r' % v)
            if type(v) is Pair:
                v.set_x(100)
                harness.eq(p.get_x(), 3, 'changing the _getvalue() copy leaves the shared object')
        else:
            harness.note('shmgr _getvalue() of a Lua object gave %r' % (v,))
        harness.eq(p.get_x(), 3, 'get_x() after _getvalue()')

        # values go into a Lua object and come back exactly
        for x in ['a str \u00e9\u4e2d', b'\x00bytes\xff', (1, 'two', [3.0, None]), [1, [2]],
                  {'k': (1, 2), 3: b'v'}, 2 ** 70, -2 ** 63, 1.5, True, None, frozenset([1, 2])]:
            got = m.Pair(x, 0).get_x()
            harness.check(type(got) is type(x) and got == x,
                          'Pair(%r, 0).get_x() round trip: got %r (%s)' % (x, got, type(got).__name__))

        # no exposed list: public methods (not starting with '_') are exposed
        op = m.OpenPair(5, 6)
        harness.eq(sorted(type(op)._exposed_), ['get_x', 'set_x'], 'OpenPair exposed methods')
        op.set_x({'new': [1, 2]})
        harness.eq(op.get_x(), {'new': [1, 2]}, 'OpenPair set_x then get_x')
        e = harness.raises(RemoteError, op._callmethod, '_hidden', what="_callmethod('_hidden')")
        if e is not None:
            harness.check("'_hidden'" in str(e), 'refusal names _hidden: %r' % str(e))
        harness.eq(op.get_x(), {'new': [1, 2]}, 'OpenPair still served after refusal')

        # two objects are independent
        a, b = m.OpenPair(1, 0), m.OpenPair(2, 0)
        a.set_x('A')
        harness.eq((a.get_x(), b.get_x()), ('A', 2), 'two OpenPair objects are independent')
        harness.check(a._token.id != b._token.id, 'distinct idents: %r %r' % (a._token.id, b._token.id))
    harness.done()


if __name__ == '__main__':
    main()
