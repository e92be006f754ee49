"""The built-in dict through a stock SyncManager client (DictProxy): every method, with
keys of every kind (1 == 1.0 == True, big ints, unhashable ones), compared with the same
call on a local dict; iteration through the shared Iterator; the 3.14 methods."""

import collections
import gc
import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

from multiprocessing.managers import RemoteError  # noqa: E402

# What CPython 3.14's DictProxy exposes (create adds '__iter__' again, from method_to_typeid).
DICT_314 = ('__contains__', '__delitem__', '__getitem__', '__ior__', '__iter__', '__len__', '__or__',
            '__reversed__', '__ror__', '__setitem__', 'clear', 'copy', 'fromkeys', 'get', 'items', 'keys', 'pop',
            'popitem', 'setdefault', 'update', 'values')


def py_setup(M):
    # expose 3.14's methods on the reference server too (those its dict has)
    M.register('dict', dict, exposed=DICT_314, method_to_typeid={'__iter__': 'Iterator'})


BIG = 2 ** 70
BASE = {'a': 1, 2: 'b', (1, 2): [3], None: None, 1.5: 2.5, b'k': b'v', 'h\u00e9': {'n': 1}, BIG: 'big',
        frozenset([1]): 'fs', True: 'true', -0.0: 'zero'}

# dict methods newer than some clients' Python: a local stand-in with the same meaning
def _one(f):
    def wrapper(d, *args):
        if len(args) != 1:  # as the slot wrapper counts
            raise TypeError('expected 1 argument, got %d' % len(args))
        return f(d, args[0])
    return wrapper


FALLBACK = {
    '__or__': _one(lambda d, x: NotImplemented if not isinstance(x, dict) else dict(list(d.items()) + list(x.items()))),
    '__ror__': _one(lambda d, x: NotImplemented if not isinstance(x, dict) else dict(list(x.items()) + list(d.items()))),
    '__ior__': _one(lambda d, x: (d.update(x), d)[1]),
}

def local_call(d, name, args, kwds):
    f = getattr(d, name, None)
    if f is None:
        return FALLBACK[name](d, *args, **kwds)
    r = f(*args, **kwds)
    if name in ('keys', 'values', 'items'):
        return list(r)  # managers.py pickles dict views as lists
    return r


def ops():
    out = []

    def op(name, *args, **kwds):
        label = '%s%r' % (name, args) + ('%r' % kwds if kwds else '')
        out.append((label, name, args, kwds))

    keys = ['a', 2, 2.0, (1, 2), None, 1.5, b'k', 'zz', 'h\u00e9', BIG, float(BIG), frozenset([1]), {1},
            True, 1, 1.0, 0, 0.0, False, -0.0, [1], {1: 2}, (1, [2]), bytearray(b'k'), 'k', ()]
    for k in keys:
        op('__getitem__', k)
        op('__contains__', k)
        op('__delitem__', k)
        op('get', k)
        op('get', k, 'dflt')
        op('pop', k)
        op('pop', k, 'dflt')
        op('setdefault', k)
        op('setdefault', k, [k])
        op('__setitem__', k, 'set')
    op('__len__')
    op('popitem')
    for name in ['keys', 'values', 'items', 'copy', 'clear']:
        op(name)
    for a, kw in [(({'a': 5, 'z': 6},), {}), (([('x', 1), ('y', 2)],), {}), ((['ab', 'cd'],), {}), (([1],), {}),
                  (([(1, 2, 3)],), {}), (([[1]],), {}), ((5,), {}), (({},), {}), ((), {'q': 1, 'a': 'kw'}),
                  (({'a': 1},), {'b': 2}), (([('a', 1)],), {'a': 2}), ((iter([('i', 1)]),), {}), (((),), {}),
                  (([([1], 2)],), {}), ((collections.OrderedDict([('o', 1), ('a', 2)]),), {}),
                  ((collections.Counter('abca'),), {}), ((collections.defaultdict(list, {'dd': [1]}),), {}),
                  (([('k', 1), 'xy', (5, 6)],), {}), (({1: 'one', 1.0: 'float one'},), {}), ((None,), {})]:
        op('update', *a, **kw)
    for a in [('ab',), ('ab', 5), ([1, 2, 2],), ([[1]],), (5,), ({'x': 1},), (range(3), None), ((),), ('',)]:
        op('fromkeys', *a)
    for x in [{'a': 0, 'n': 1}, {}, [('a', 1)], 5, None, {True: 'T'}]:
        op('__or__', x)
        op('__ror__', x)
        op('__ior__', x)
    op('__ior__', [1])
    op('__ior__', ['ab'])
    # arguments the way C methods count them
    for name, args, kwds in [('get', (), {}), ('get', (1, 2, 3), {}), ('get', (1,), {'default': 2}), ('pop', (), {}),
                             ('pop', (1, 2, 3), {}), ('update', (1, 2), {}), ('keys', (1,), {}), ('popitem', (1,), {}),
                             ('__getitem__', (), {}), ('__getitem__', (1, 2), {}), ('__setitem__', (1,), {}),
                             ('__delitem__', (), {}), ('fromkeys', (), {}), ('fromkeys', (1, 2, 3), {}),
                             ('clear', (), {'x': 1}), ('copy', (1,), {}), ('setdefault', (), {'x': 1}),
                             ('__len__', (1,), {}), ('__contains__', (), {}), ('__or__', (), {}),
                             ('values', (), {'x': 1}), ('items', (1, 2), {})]:
        op(name, *args, **kwds)
    return out


def empty_ops():
    out = []
    for label, name, args in [('pop([1])', 'pop', ([1],)), ('pop([1], 5)', 'pop', ([1], 5)), ('popitem()', 'popitem', ()),
                              ('pop("a")', 'pop', ('a',)), ('get([1])', 'get', ([1],)), ('__getitem__([1])', '__getitem__', ([1],)),
                              ('__delitem__([1])', '__delitem__', ([1],)), ('keys()', 'keys', ())]:
        out.append((label, name, args, {}))
    return out


def new_in(name):
    """The Python version that first has dict.<name> (None: all we test)."""
    return {'__or__': (3, 9), '__ror__': (3, 9), '__ior__': (3, 9), '__reversed__': (3, 8)}.get(name)


def run(m, base, todo):
    remote = m.dict()
    n = 0
    skipped = set()
    for label, name, args, kwds in todo:
        since = new_in(name)
        if since and sys.version_info < since and harness.BACKEND == 'cpython':
            skipped.add(name)
            continue
        remote.clear()
        remote.update(base)
        local = dict(base)
        # DictProxy.__ior__ (3.14) returns the proxy: ask for the server's own answer
        fn = (lambda: remote._callmethod(name, args, kwds)) if name == '__ior__' else S.call(remote, name, args, kwds)
        S.check('dict.' + label, fn, lambda: local_call(local, name, args, kwds))
        harness.check(S.same(remote._getvalue(), local),
                      'dict.%s: contents after: %r, want %r' % (label, remote._getvalue(), local))
        n += 1
    for name in sorted(skipped):
        harness.skip_part('dict.%s' % name, "CPython %d.%d's dict has no %s (new in %d.%d)"
                          % (sys.version_info[:2] + (name,) + new_in(name)))
    return n


def test_methods(m):
    n = run(m, BASE, ops()) + run(m, {}, empty_ops())
    harness.note('dict: %d method calls compared with a local dict' % n)
    # reversed(d): CPython pickles its reverse key iterator as iter([keys, last first])
    d = m.dict(BASE)
    if sys.version_info >= (3, 8) or harness.BACKEND == 'shmgr':
        got = S.call(d, '__reversed__')()
        harness.eq((type(got).__name__, list(got)), ('list_iterator', list(reversed(list(BASE)))), 'd.__reversed__()')
        got = S.call(m.dict(), '__reversed__')()
        harness.eq(list(got), [], 'reversed(empty dict)')
    else:
        harness.skip_part('dict.__reversed__', "CPython %d.%d's dict has none (new in 3.8)" % sys.version_info[:2])


def test_syntax(m):
    d = m.dict(a=1, b=[2])
    d['c'] = 3
    del d['a']
    harness.eq((d['b'], 'c' in d, 'a' in d, len(d)), ([2], True, False, 2), "d[k], k in d, len(d)")
    harness.eq((d.keys(), d.values(), d.items()), (['b', 'c'], [[2], 3], [('b', [2]), ('c', 3)]),
               'keys(), values(), items() come back as lists (managers.py reduces views to lists)')
    harness.eq((type(d.keys()), type(d.items()[0])), (list, tuple), 'types of keys() and of an item')
    harness.eq(list(d), ['b', 'c'], 'list(d) through the Iterator')
    harness.eq(str(d), "{'b': [2], 'c': 3}", 'str(d) is the server-side repr')
    e = harness.raises(KeyError, lambda: d['zz'], what="d['zz']")
    if e is not None:
        harness.eq(e.args, ('zz',), 'KeyError carries the key')
    e = harness.raises(KeyError, lambda: d[(1, 'k')], what='d[(1, "k")]')
    if e is not None:
        harness.eq(e.args, ((1, 'k'),), 'KeyError carries a tuple key as is')
    e = harness.raises(TypeError, lambda: d[[1]], what='d[[1]]')
    if e is not None:
        harness.eq(str(e), "unhashable type: 'list'", 'unhashable key message')
    e = harness.raises(KeyError, m.dict().popitem, what='popitem() on empty')
    if e is not None:
        harness.eq(e.args, ('popitem(): dictionary is empty',), 'popitem() message')
    d2 = m.dict()
    for i in range(100):
        d2[i] = i
    harness.eq([d2.popitem() for _ in range(3)], [(99, 99), (98, 98), (97, 97)], 'popitem is LIFO')
    d2[1.0] = 'float'
    d2[True] = 'bool'
    harness.eq((d2[1], type(list(d2)[1])), ('bool', int), 'equal keys keep the first form, take the last value')
    harness.eq(str(m.dict({1: 'x', 'q': [1, (2,)], None: b'\x00'})), repr({1: 'x', 'q': [1, (2,)], None: b'\x00'}),
               'repr of mixed keys')
    # hashes agree with Python's: float(2**70) finds the int key
    d3 = m.dict({2 ** 70: 'i', 0.5: 'h', (1, 2): 't', 'k': 's', b'k': 'b', frozenset([1, 2]): 'f'})
    harness.eq([d3[k] for k in [float(2 ** 70), 0.5, (1.0, 2), 'k', b'k', frozenset([2.0, 1])]],
               ['i', 'h', 't', 's', 'b', 'f'], 'lookups with equal keys of other types')


def settled(m, want, what):
    gc.collect()
    harness.wait_until(lambda: (gc.collect(), m._number_of_objects())[1] == want, 5)
    harness.eq(m._number_of_objects(), want, what)


def test_iterator(srv, m):
    gc.collect()
    base = m._number_of_objects()
    d = m.dict([('x', 1), ('y', 2), ('z', 3)])
    it = iter(d)
    harness.eq(type(it).__name__, 'IteratorProxy', 'iter(d) is an IteratorProxy (#PROXY of typeid Iterator)')
    harness.eq(m._number_of_objects(), base + 2, 'the iterator is a shared object of its own')
    harness.eq(next(it), 'x', 'next(it)')
    harness.eq(list(it._getvalue()), ['y', 'z'], "it._getvalue(): the keys still to come, as iter([...])")
    harness.eq(list(it), ['y', 'z'], 'the rest')
    harness.raises(StopIteration, lambda: next(it), what='next() after the end')
    harness.raises(StopIteration, lambda: next(it), what='next() after the end, again')
    harness.eq(list(it._getvalue()), [], '_getvalue() of an exhausted iterator')
    # the dict changes size while iterated: RuntimeError, for good
    it = iter(d)
    next(it)
    d['w'] = 4
    for i in range(2):
        e = harness.raises(RuntimeError, lambda: next(it), what='next() after the dict grew (%d)' % i)
        if e is not None:
            harness.eq(e.args, ('dictionary changed size during iteration',), 'RuntimeError message')
    del d['w']
    e = harness.raises(RuntimeError, lambda: next(it), what='next() once the size is back')
    # same size, other keys: CPython notices when more keys come than it expected
    d2 = m.dict(a=1, b=2)
    it = iter(d2)
    harness.eq(next(it), 'a', 'first key')
    del d2['a']
    d2['c'] = 3
    local = {'a': 1, 'b': 2}
    lit = iter(local)
    next(lit)
    del local['a']
    local['c'] = 3
    S.check('next() after a key was replaced', lambda: next(it), lambda: next(lit))
    if sys.version_info >= (3, 8) or srv.backend == 'cpython':
        S.check('next() after a key was replaced, again', lambda: next(it), lambda: next(lit))
    else:  # 3.8 began to count the keys an iterator still expects
        e = harness.raises(RuntimeError, lambda: next(it), what='next() after a key was replaced, again')
        harness.eq(e and e.args, ('dictionary keys changed during iteration',), 'as 3.8+ servers say')
    it2 = iter(m.dict())
    harness.raises(StopIteration, lambda: next(it2), what='next() over an empty dict')
    # IteratorProxy also lists send, throw and close, which a dict iterator does not have
    it3 = iter(m.dict(a=1))
    for name, args in [('send', (None,)), ('throw', (ValueError,)), ('close', ())]:
        # CPython's server fails getattr, then finds no fallback of that name: a #TRACEBACK
        # (RemoteError) whose last line is the KeyError of that search
        e = harness.raises(RemoteError, getattr(it3, name), *args, what='it.%s()' % name)
        if e is not None:
            last = str(e).strip().strip('-').strip().splitlines()[-1]
            harness.eq(last, "KeyError: '%s'" % name, 'it.%s(): the traceback\'s last line' % name)
    harness.eq(next(it3), 'a', 'the iterator still works after those')
    e = harness.raises(TypeError, lambda: it3._callmethod('__next__', (1,)), what='__next__(1)')
    if e is not None:
        harness.eq(str(e), 'expected 0 arguments, got 1', '__next__(1) message')
    harness.check(str(it3).startswith('<dict_keyiterator object at 0x'), 'str(iterator): %s' % it3)
    del it, it2, it3, lit, d, d2, e  # e: its traceback holds a proxy method's frame
    settled(m, base, 'iterators and dicts released')


def test_constructor(m):
    for args, kwds in [((), {}), (({'a': 1},), {}), (([('a', 1), ('b', 2)],), {}), ((), {'x': 1, 'y': [2]}),
                       (({'a': 1},), {'a': 2}), ((['ab'],), {})]:
        harness.eq(m.dict(*args, **kwds).copy(), dict(*args, **kwds), 'm.dict(*%r, **%r)' % (args, kwds))
    for args, kwds in [((5,), {}), ((1, 2), {}), (([1],), {}), (([(1, 2, 3)],), {}), (({}, {}), {}), (([[[1], 2]],), {})]:
        try:
            dict(*args, **kwds)
            want = None
        except Exception as e:
            want = e
        try:
            m.dict(*args, **kwds)
            harness.fail('m.dict(*%r) did not fail' % (args,))
        except Exception as e:
            S.remote_error_names('m.dict(*%r, **%r)' % (args, kwds), e, want)


def test_exposed(srv, m):
    # 3.14's DictProxy methods, then '__iter__' again from method_to_typeid, as CPython's create
    S.check_exposed(srv, m.dict(), DICT_314 + ('__iter__',))
    S.check_exposed(srv, iter(m.dict()), ('__next__', 'send', 'throw', 'close'))


def main():
    with harness.server(py_setup=py_setup) as srv:
        m = harness.sync_manager(srv)
        base = m._number_of_objects()
        test_methods(m)
        test_syntax(m)
        test_iterator(srv, m)
        test_constructor(m)
        test_exposed(srv, m)
        settled(m, base, 'every dict released')
    harness.done()


if __name__ == '__main__':
    main()
