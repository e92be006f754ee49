"""The built-in Array (managers.Array, an array.array) through a stock SyncManager client
(ArrayProxy): every typecode, items at the edges of their C types, indexes and slices,
the constructor's checks, repr and _getvalue(), compared with a local array.array."""

import array
import os
import sys
import warnings
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

from multiprocessing.managers import Array  # noqa: E402

warnings.simplefilter('ignore', DeprecationWarning)  # 'u' is deprecated from 3.13

TYPECODES = 'bBhHiIlLqQfdu' + ('w' if sys.version_info >= (3, 13) else '')
INITIAL = {'u': 'h\u00e9\U0001f600', 'w': 'w\u00e9'}
NUMBERS = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 65535, 65536, 2 ** 31 - 1,
           2 ** 31, -2 ** 31, -2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1,
           2 ** 64 - 1, 2 ** 64, 2 ** 70, -2 ** 70, 10 ** 400, -10 ** 400, 2 ** 1023 * 2 - 2 ** 970, 2 ** 1024,
           True, False, 1.5, -0.0, 0.1, 1e38, 3.5e38, 1e300, float('inf'), float('-inf'), 'x', '\u00e9',
           '\U0001f600', 'xy', '', None, b'a', [1]]


def initial(tc):
    return INITIAL.get(tc, [1, 2, 3, 4, 5])


def test_items(m):
    n = 0
    for tc in TYPECODES:
        init = initial(tc)
        remote = m.Array(tc, init)
        local = array.array(tc, init)
        harness.check(S.same(remote._getvalue(), local), 'Array(%r, %r) _getvalue(): %r' % (tc, init, remote._getvalue()))
        harness.eq(len(remote), len(local), 'len of Array(%r)' % tc)
        harness.eq(str(remote), repr(local), 'str(Array(%r, %r))' % (tc, init))
        for i in [0, -1, 2, len(local), -len(local) - 1, True, 2 ** 70, 'a', 1.0, None,
                  slice(None), slice(1, None, 2), slice(None, None, -1), slice(5, 1), slice(None, None, 0), slice('a', 2)]:
            S.check('Array(%r)[%r]' % (tc, i), lambda: remote[i], lambda: local[i])
            n += 1
        for v in NUMBERS:
            for i in [0, -1]:
                S.check('Array(%r)[%r] = %r' % (tc, i, v), lambda: remote.__setitem__(i, v),
                        lambda: local.__setitem__(i, v))
                n += 1
            harness.check(S.same(remote._getvalue(), local), 'Array(%r) after [0] = %r: %r, want %r'
                          % (tc, v, remote._getvalue(), local))
        other = 'ld'[tc == 'l'] if tc not in 'uw' else 'b'
        for i, v in [(5, 1), (-6, 1), ('a', 1), (2 ** 70, 1), (slice(1, 3), array.array(tc, local[:1])),
                     (slice(None), array.array(tc, local[::-1])), (slice(None, None, 2), array.array(tc, local[:3])),
                     (slice(None, None, 2), array.array(tc, local[:1])), (slice(None, None, -2), array.array(tc)),
                     (slice(1, 3), list(local[:1])), (slice(1, 3), array.array(other, [1])),
                     (slice(4, 1), array.array(tc, local[:2])), (slice(None, None, 0), array.array(tc))]:
            S.check('Array(%r)[%r] = %r' % (tc, i, v), lambda: remote.__setitem__(i, v), lambda: local.__setitem__(i, v))
            harness.check(S.same(remote._getvalue(), local), 'Array(%r) after [%r] = %r: %r, want %r'
                          % (tc, i, v, remote._getvalue(), local))
            n += 1
        for name, args in [('__len__', (1,)), ('__getitem__', ()), ('__setitem__', (1,)), ('__getitem__', (1, 2))]:
            S.check('Array(%r).%s%r' % (tc, name, args), lambda: remote._callmethod(name, args),
                    lambda: getattr(local, name)(*args))
    harness.note('Array: %d item calls compared with a local array.array' % n)


def test_constructor(m):
    cases = [('i', [1, 2]), ('i', (1,)), ('i', []), ('i', b'\x01\x00\x00\x00'), ('i', bytearray(4)), ('i', b'abc'),
             ('z', []), ('z', 5), (5, []), ('ii', []), ('', []), ('i', 'ab'), ('u', 'ab'), ('u', ['a', 'b']), ('u', [1]),
             ('u', b'a\x00\x00\x00'), ('i', array.array('d', [1.0])), ('d', array.array('i', [1])),
             ('i', array.array('i', [7, 8])), ('i', array.array('u', 'a')), ('i', range(3)), ('i', 5), ('b', [200]),
             ('B', [1, -1]), ('f', [1e300, 0.1]), ('d', [1, 2 ** 70, True]), ('i', {1: 2}), ('i', iter([4, 5])),
             ('q', [2 ** 63 - 1, -2 ** 63]), ('Q', [2 ** 64 - 1]), ('L', [2 ** 63]), ('u', '\U0001f600x'), ('i', None)]
    for tc, init in cases:
        try:  # first: the local call would consume an iterator
            got = ('ok', m.Array(tc, init)._getvalue())
        except Exception as e:
            got = ('raise', e)
        try:
            want = ('ok', array.array(tc, init))
        except Exception as e:
            want = ('raise', e)
        what = 'Array(%r, %r)' % (tc, init)
        if want[0] == 'ok':
            harness.check(got[0] == 'ok' and S.same(got[1], want[1]), '%s: got %r, want %r' % (what, got[1], want[1]))
        elif got[0] == 'ok':
            harness.fail('%s: got %r, want %r' % (what, got[1], want[1]))
        else:
            S.remote_error_names(what, got[1], want[1])
    for args, kwds in [((), {}), (('i',), {}), (('i', [1], True, 4), {}), (('i', [1]), {'x': 1}),
                       (('i',), {'sequence': [1], 'lock': False})]:
        try:
            want = ('ok', Array(*args, **kwds))
        except Exception as e:
            want = ('raise', e)
        try:
            got = ('ok', m.Array(*args, **kwds)._getvalue())
        except Exception as e:
            got = ('raise', e)
        what = 'Array(*%r, **%r)' % (args, kwds)
        if want[0] == 'ok':
            harness.check(got[0] == 'ok' and S.same(got[1], want[1]), '%s: got %r, want %r' % (what, got[1], want[1]))
        else:
            S.remote_error_names(what, got[1], want[1])


def test_big_items(m):
    """Item values beyond 32 bits and float rounding, read back through the proxy."""
    for tc, vals in [('L', [2 ** 64 - 1, 2 ** 63]), ('Q', [2 ** 64 - 1]), ('q', [-2 ** 63]), ('f', [0.1, 1 / 3.0, 3.4e38]),
                     ('d', [0.1, 2 ** 70, 5e-324])]:
        remote = m.Array(tc, vals)
        local = array.array(tc, vals)
        harness.check(S.same([remote[i] for i in range(len(vals))], local.tolist()),
                      'Array(%r, %r) items: %r' % (tc, vals, [remote[i] for i in range(len(vals))]))


def main():
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        S.check_exposed(srv, m.Array('i', []), ('__len__', '__getitem__', '__setitem__'))
        test_items(m)
        test_constructor(m)
        test_big_items(m)
        if sys.version_info < (3, 13):
            harness.skip_part("typecode 'w'", 'Python %d.%d has no array typecode w (new in 3.13)' % sys.version_info[:2])
    harness.done()


if __name__ == '__main__':
    main()
