"""The built-in Namespace through a stock SyncManager client (NamespaceProxy): attributes
set, read and deleted, the special names object.__getattribute__ knows, repr and
_getvalue(), compared with a local multiprocessing.managers.Namespace."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

from multiprocessing.managers import Namespace  # noqa: E402

BASE = {'a': 1, 'b': 'x', 'nested': [1, {'k': (2,)}], '_private': 3, 'h\u00e9': 2.5}


def as_plain(v):
    """A Namespace as (type name, its __dict__); a bound method as what it is bound to."""
    if isinstance(v, Namespace):
        return ('Namespace', dict(vars(v)))
    if callable(v) and hasattr(v, '__self__') and not isinstance(v, type):
        owner = v.__self__
        return ('bound', getattr(v, '__name__', None), as_plain(owner) if isinstance(owner, Namespace) else owner)
    return v


def ops():
    out = []
    names = ['a', 'b', 'zz', 'nested', '_private', 'h\u00e9', '__dict__', '__class__', '__module__', '__doc__',
             '__weakref__', '__repr__', '__eq__', '__init_subclass__', '__new__', '__reduce_ex__', 5, None]
    for n in names:
        out.append(('__getattribute__', (n,)))
    for n, v in [('c', 1), ('a', [2]), ('__dict__', {'q': 1, 'r': [2]}), ('__dict__', 5), ('__dict__', {}),
                 ('__class__', 5), ('__class__', Namespace), ('__weakref__', 1), (5, 1), ('_p', 2),
                 ('__module__', 'mine'), ('__repr__', 'shadowed')]:
        out.append(('__setattr__', (n, v)))
    for n in ['a', 'zz', '__dict__', '__class__', '__weakref__', 5, '_private', '__module__']:
        out.append(('__delattr__', (n,)))
    for name, args in [('__getattribute__', ()), ('__getattribute__', ('a', 'b')), ('__setattr__', ('a',)),
                       ('__setattr__', ()), ('__delattr__', ()), ('__delattr__', ('a', 'b'))]:
        out.append((name, args))
    return out


def test_methods(m):
    remote = m.Namespace()
    n = 0
    old_del = sys.version_info < (3, 11) and harness.BACKEND == 'shmgr'
    for name, args in ops():
        remote._callmethod('__setattr__', ('__dict__', BASE))
        local = Namespace(**BASE)
        label = 'Namespace.%s%r' % (name, args)
        if name == '__getattribute__' and args and args[0] == '__new__' and sys.version_info < (3, 7):
            continue  # 3.6 cannot pickle object.__new__ back (its __reduce__ came in 3.7)
        got = S.outcome(lambda: as_plain(remote._callmethod(name, args)))
        want = S.outcome(lambda: as_plain(getattr(local, name)(*args)))
        if old_del and name == '__delattr__' and args and want[0] == 'raise' and want[2] == (args[0],):
            # before 3.11 deleting a missing attribute raised AttributeError(name)
            want = ('raise', AttributeError, ("'Namespace' object has no attribute %r" % args[0],))
        S.compare(label, got, want)
        harness.check(S.same(as_plain(remote._getvalue()), as_plain(local)),
                      '%s: contents after: %r, want %r' % (label, vars(remote._getvalue()), vars(local)))
        n += 1
    harness.note('Namespace: %d calls compared with a local Namespace' % n)
    if old_del:
        harness.skip_part("deleting a missing attribute, as Python %d.%d says it" % sys.version_info[:2],
                          "shmgr answers as 3.11+ servers: \"'Namespace' object has no attribute 'zz'\"")


def test_proxy(m):
    n = m.Namespace(a=1, b=[2])
    harness.eq((n.a, n.b), (1, [2]), 'n.a, n.b')
    n.c = {'k': 'v'}
    del n.a
    harness.eq(n.c, {'k': 'v'}, 'n.c = ...')
    e = harness.raises(AttributeError, lambda: n.a, what='n.a after del n.a')
    if e is not None:
        harness.eq(str(e), "'Namespace' object has no attribute 'a'", 'AttributeError message')
    harness.eq(str(n), "Namespace(b=[2], c={'k': 'v'})", 'str(n) is the server-side repr')
    v = n._getvalue()
    harness.check(type(v) is Namespace and vars(v) == {'b': [2], 'c': {'k': 'v'}}, '_getvalue(): %r' % (v,))
    for kw in [{}, {'z': 1, 'a': 2, 'a_b': 3, '_hidden': 4, 'A': 5}, {'x\u00e9': 'y', 'x': None}]:
        harness.eq(str(m.Namespace(**kw)), repr(Namespace(**kw)), 'repr of Namespace(**%r)' % kw)
        got = m.Namespace(**kw)._getvalue()
        harness.check(type(got) is Namespace and vars(got) == kw, '_getvalue() of Namespace(**%r): %r' % (kw, got))
    try:
        Namespace(1)
    except TypeError as e:
        want = e
    try:
        m.Namespace(1)
        harness.fail('m.Namespace(1) did not fail')
    except Exception as e:
        S.remote_error_names('m.Namespace(1)', e, want)


def main():
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        S.check_exposed(srv, m.Namespace(), ('__getattribute__', '__setattr__', '__delattr__'))
        test_methods(m)
        test_proxy(m)
    harness.done()


if __name__ == '__main__':
    main()
