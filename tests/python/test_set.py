"""The built-in set (registered by Python 3.14's SyncManager with SetProxy). No client
here is 3.14, so the script makes that proxy class itself (MakeProxyType with 3.14's
exposed list) and calls every method through it, comparing with the same call on a local
set. CPython's server gets the same registration (typeid 'set', callable set) so that it
is the reference on every version."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

from multiprocessing.managers import MakeProxyType, SyncManager  # noqa: E402

SET_314 = ('__and__', '__class_getitem__', '__contains__', '__iand__', '__ior__', '__isub__', '__iter__', '__ixor__',
           '__len__', '__or__', '__rand__', '__ror__', '__rsub__', '__rxor__', '__sub__', '__xor__', '__ge__', '__gt__',
           '__le__', '__lt__', 'add', 'clear', 'copy', 'difference', 'difference_update', 'discard', 'intersection',
           'intersection_update', 'isdisjoint', 'issubset', 'issuperset', 'pop', 'remove', 'symmetric_difference',
           'symmetric_difference_update', 'union', 'update')

SetProxy = MakeProxyType('SetProxy', SET_314)


def py_setup(M):
    M.register('set', set, SetProxy)


BIG = 2 ** 70
BASE = [1, 'a', (1, 2), None, 2.5, b'x', frozenset([1]), BIG, 'h\u00e9', False]


def ops():
    out = []

    def op(name, *args):
        out.append(('%s%r' % (name, args), name, args))

    for x in [1, 1.0, True, 'a', 'zz', (1, 2), (1.0, 2), [1], {1}, {2}, frozenset([1]), None, BIG, float(BIG), 0,
              0.0, {}, (1, [2]), bytearray(b'x')]:
        for name in ['__contains__', 'remove', 'discard', 'add']:
            op(name, x)
    others = [{1, 'zz'}, frozenset([1.0, 'a']), set(), frozenset(), set(BASE), set(BASE) | {99}, {1}, {1.0},
              {True, 'h\u00e9'}, [1], 5, {1: 2}, None, 'a']
    for x in others:
        for name in ['__and__', '__or__', '__sub__', '__xor__', '__rand__', '__ror__', '__rsub__', '__rxor__',
                     '__iand__', '__ior__', '__isub__', '__ixor__', '__le__', '__lt__', '__ge__', '__gt__']:
            op(name, x)
    iterables = [{1}, [1, 'zz'], 'ab', {1: 2, 'a': 3}, [[1]], 5, range(3), frozenset(), set(BASE), (1.0, True),
                 iter([1, 'q']), b'\x01', [1, [2]]]
    for name in ['union', 'update', 'intersection', 'intersection_update', 'difference', 'difference_update']:
        op(name)
        for x in iterables:
            op(name, x)
        op(name, [1], {'a'})
        op(name, {1, 'a'}, ['a', 'zz'], (None,))
        op(name, [2], 5)
    for name in ['isdisjoint', 'issubset', 'issuperset', 'symmetric_difference', 'symmetric_difference_update']:
        for x in iterables + [[99], ['a', 99, [1]]]:
            op(name, x)
    for name in ['copy', 'clear', '__len__']:
        op(name)
    # arguments the way C methods count them
    for name, args in [('add', ()), ('add', (1, 2)), ('remove', ()), ('discard', (1, 2)), ('__contains__', ()),
                       ('pop', (1,)), ('clear', (1,)), ('copy', (1,)), ('isdisjoint', ()), ('issubset', (1, 2)),
                       ('symmetric_difference', ()), ('__len__', (1,)), ('__and__', ()), ('__le__', (1, 2)),
                       ('__iter__', (1,)), ('__ior__', ())]:
        op(name, *args)
    return out


def test_methods(m):
    remote = m.set()
    n = 0
    early_stop = sys.version_info >= (3, 11) or harness.BACKEND == 'cpython'
    for label, name, args in ops():
        if name == 'issuperset' and not early_stop and not isinstance(args[0], (set, frozenset, dict)):
            # 3.11 made issuperset stop at the first member missing, before an unhashable one
            continue
        remote.clear()
        remote.update(BASE)
        local = set(BASE)
        S.check('set.' + label, lambda: remote._callmethod(name, args), lambda: getattr(local, name)(*args))
        harness.check(S.same(remote._getvalue(), local),
                      'set.%s: contents after: %r, want %r' % (label, remote._getvalue(), local))
        n += 1
    for kwds_name in ['union', 'update', 'add']:
        remote.clear()
        S.check('set.%s(x=1)' % kwds_name, lambda: remote._callmethod(kwds_name, (), {'x': 1}),
                lambda: getattr(set(), kwds_name)(x=1))
    harness.note('set: %d method calls compared with a local set' % n)
    if not early_stop:
        harness.skip_part('issuperset(iterable) compared', 'Python %d.%d builds a set of the iterable first; '
                          "3.11+ (and shmgr, as 3.13) stop at the first member missing" % sys.version_info[:2])


def test_unordered(m, srv):
    """What depends on the order of a set's members: compared as sets."""
    remote = m.set(BASE)
    got = remote._callmethod('__iter__')
    harness.eq(type(got).__name__, 'list_iterator', "iter(s): 3.14's server pickles a set_iterator as iter([...])")
    items = list(got)
    harness.check(len(items) == len(BASE) and set(items) == set(BASE), 'iter(s) yields the members: %r' % items)
    popped = []
    while True:
        try:
            popped.append(remote.pop())
        except KeyError as e:
            harness.eq(e.args, ('pop from an empty set',), 'pop() on an empty set')
            break
        if len(popped) > len(BASE):
            harness.fail('pop() never ends')
            break
    harness.check(len(popped) == len(BASE) and set(popped) == set(BASE), 'pop() takes each member once: %r' % popped)
    remote.update(BASE)
    text = str(remote)
    harness.check(text.startswith('{') and len(text) == len(repr(set(BASE))),
                  'str(s) is a set display of the members: %s' % text)
    harness.eq(str(m.set()), 'set()', 'str(empty set)')
    harness.eq(str(m.set([1])), '{1}', 'str of one member')
    if srv.backend == 'shmgr':
        harness.skip_part('order of iteration, pop() and repr', "shmgr keeps members in insertion order, CPython in "
                          "its hash table's order (for str, random per process)")
    # values travel in and out exactly
    for v in [frozenset([(1, 2), 'x']), (1, (2, 3)), 2 ** 100, -0.0, 'h\u00e9', b'\x00\xff']:
        r = m.set([v])
        harness.check(S.same(r._getvalue(), {v}), 'set([%r]) round trip: %r' % (v, r._getvalue()))


def test_class_getitem(m):
    if sys.version_info < (3, 9):
        harness.skip_part('set.__class_getitem__', 'Python %d.%d has no types.GenericAlias to receive'
                          % sys.version_info[:2])
        return
    remote = m.set()
    for arg in [int, (int, str), 'x']:
        S.check('set.__class_getitem__(%r)' % (arg,), lambda: remote._callmethod('__class_getitem__', (arg,)),
                lambda: set.__class_getitem__(arg))


def test_constructor(m):
    for args in [(), ([1, 2, 2],), ('abca',), ({'a': 1},), (range(3),), (frozenset([1]),)]:
        harness.check(S.same(m.set(*args)._getvalue(), set(*args)), 'm.set(*%r)' % (args,))
    for args, kwds in [((5,), {}), ((1, 2), {}), (([[1]],), {}), ((), {'x': 1})]:
        try:
            set(*args, **kwds)
            want = None
        except Exception as e:
            want = e
        try:
            m.set(*args, **kwds)
            harness.fail('m.set(*%r, **%r) did not fail' % (args, kwds))
        except Exception as e:
            S.remote_error_names('m.set(*%r, **%r)' % (args, kwds), e, want)


def main():
    with harness.server(py_setup=py_setup) as srv:
        m = harness.client_manager(srv, [('set', {'proxytype': SetProxy})], base=SyncManager)
        base = m._number_of_objects()
        test_methods(m)
        test_unordered(m, srv)
        test_class_getitem(m)
        test_constructor(m)
        S.check_exposed(srv, m.set(), SET_314)
        import gc
        gc.collect()
        harness.wait_until(lambda: (gc.collect(), m._number_of_objects())[1] == base, 5)
        harness.eq(m._number_of_objects(), base, 'every set released')
    harness.done()


if __name__ == '__main__':
    main()
