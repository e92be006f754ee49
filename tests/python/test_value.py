"""The built-in Value through a stock SyncManager client (ValueProxy): get, set, the value
property, any typecode and any value (managers.Value checks neither), repr, _getvalue(),
and the argument errors, compared with a local multiprocessing.managers.Value."""

import datetime
import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

from multiprocessing.managers import Value  # noqa: E402


def plain(v):
    return ('Value', v._typecode, v._value) if isinstance(v, Value) else v


def test_values(m):
    for tc, val in [('i', 5), ('d', 1.5), ('c', b'x'), ('u', 'h\u00e9'), ('zz', [1, {'a': (2,)}]), (7, None),
                    ('i', 2 ** 100), ('b', True), (None, datetime.date(2020, 2, 29))]:
        remote = m.Value(tc, val)
        local = Value(tc, val)
        harness.check(S.same(remote.get(), local.get()), 'Value(%r, %r).get(): %r' % (tc, val, remote.get()))
        harness.check(S.same(remote.value, val), 'Value(%r, %r).value' % (tc, val))
        if not isinstance(val, datetime.date):  # shmgr prints objects it only keeps as pickles otherwise
            harness.eq(str(remote), repr(local), 'str(Value(%r, %r))' % (tc, val))
        got = remote._getvalue()
        harness.check(S.same(plain(got), plain(local)), '_getvalue() of Value(%r, %r): %r' % (tc, val, plain(got)))
        for new in ['s', [1, [2]], None, -0.0, b'']:
            harness.eq(remote.set(new), None, 'set(%r) returns None' % (new,))
            local.set(new)
            harness.check(S.same(remote.get(), new), 'get() after set(%r)' % (new,))
        remote.value = 'by property'
        harness.eq(remote.get(), 'by property', 'v.value = x')
    harness.eq(m.Value('i', 1, lock=False).get(), 1, 'Value(..., lock=False)')
    harness.eq(m.Value(typecode='i', value=3).get(), 3, 'Value by keywords')
    v = m.Value('i', 1)
    v._callmethod('set', (), {'value': 9})
    harness.eq(v.get(), 9, 'set(value=9)')


def test_errors(m):
    remote = m.Value('i', 1)
    local = Value('i', 1)
    for name, args, kwds in [('get', (1,), {}), ('get', (), {'x': 1}), ('set', (), {}), ('set', (1, 2), {}),
                             ('set', (), {'x': 1}), ('set', (1,), {'value': 2})]:
        S.check('Value.%s(*%r, **%r)' % (name, args, kwds), lambda: remote._callmethod(name, args, kwds),
                lambda: getattr(local, name)(*args, **kwds))
    for args, kwds in [((), {}), (('i',), {}), (('i', 1, 2, 3), {}), (('i', 1), {'x': 1}), ((), {'lock': 1})]:
        try:
            Value(*args, **kwds)
            want = None
        except TypeError as e:
            want = e
        try:
            m.Value(*args, **kwds)
            harness.fail('m.Value(*%r, **%r) did not fail' % (args, kwds))
        except Exception as e:
            S.remote_error_names('m.Value(*%r, **%r)' % (args, kwds), e, want)


def main():
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        S.check_exposed(srv, m.Value('i', 1), ('get', 'set'))
        test_values(m)
        test_errors(m)
    harness.done()


if __name__ == '__main__':
    main()
