"""Arguments that are lazy iterators: zip, enumerate, reversed, range, iter() of every
container, filter(None, ...), the itertools that pickle (count, repeat, islice, chain), fresh,
partly consumed, exhausted, empty and nested, given to every method that iterates an argument
(list(), extend, +=, slice assignment, dict(), update, |=, fromkeys, set() and the set methods,
Array()) and compared with the same call on a local object; stored as they are by Queue.put
and Namespace. CPython's server unpickles and runs them; shmgr evaluates their recipes as
data. What shmgr refuses (map, filter with a function, a class's __iter__: code it does not
run; what never ends or cannot fit) is checked on shmgr only, and working on CPython's."""

import array
import collections
import enum
import gc
import itertools
import os
import pickle
import sys
import warnings
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

from multiprocessing.managers import MakeProxyType, RemoteError, SyncManager  # noqa: E402
from multiprocessing.reduction import ForkingPickler  # noqa: E402

warnings.simplefilter('ignore', DeprecationWarning)  # 3.12+ warns when itertools objects are pickled

SHMGR = harness.BACKEND == 'shmgr'
LIMIT = 4 * 100000  # steps: 4 x limits.max_objects in conf/lazy_args.lua
SET_314 = ('__and__', '__contains__', '__iand__', '__ior__', '__isub__', '__iter__', '__ixor__', '__len__', '__or__',
           '__rand__', '__ror__', '__rsub__', '__rxor__', '__sub__', '__xor__', '__ge__', '__gt__', '__le__', '__lt__',
           'add', 'clear', 'copy', 'difference', 'difference_update', 'discard', 'intersection', 'intersection_update',
           'isdisjoint', 'issubset', 'issuperset', 'pop', 'remove', 'symmetric_difference',
           'symmetric_difference_update', 'union', 'update')
DICT_314 = ('__contains__', '__delitem__', '__getitem__', '__ior__', '__iter__', '__len__', '__or__',
            '__reversed__', '__ror__', '__setitem__', 'clear', 'copy', 'fromkeys', 'get', 'items', 'keys', 'pop',
            'popitem', 'setdefault', 'update', 'values')
SetProxy = MakeProxyType('SetProxy', SET_314)


class Bag(object):
    """A class of the client's with __iter__: CPython's server (forked from this script) can
    import it and run its code; shmgr does not."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


class Color(enum.Enum):
    """A class that is iterable by code (EnumMeta.__iter__)."""
    R = 1
    G = 2


def py_setup(M):
    M.register('set', set, SetProxy)
    M.register('dict', dict, exposed=DICT_314, method_to_typeid={'__iter__': 'Iterator'})


def used(it, n):
    """it after n items were taken, as a client sends a partly consumed iterator."""
    for _ in range(n):
        next(it)
    return it


def lattice(it, depth):
    """zip(z, z) of zip(y, y) of ..., depth deep: one iterator reached by 2**depth paths."""
    for _ in range(depth):
        it = zip(it, it)
    return it


L = [1, 'a', (2, 3), None, 2.5, 'h\u00e9']
N = [3, 1, 2]
P = [('a', 1), ('b', 2), (3, 'c')]
D = {'a': 1, 2: 'b', (3,): None}
BIG = 2 ** 64


def iterables():
    """(label, factory): each call of factory makes the same lazy object afresh."""
    out = [
        ('zip', lambda: zip('abc', N)), ('zip of 3', lambda: zip(N, 'xyz', L)), ('zip uneven', lambda: zip(N, 'ab')),
        ('zip()', lambda: zip()), ('zip empty', lambda: zip([], N)), ('zip used', lambda: used(zip(N, 'abc'), 1)),
        ('zip pairs', lambda: zip(P, N)),
        ('enumerate', lambda: enumerate('abc')), ('enumerate start', lambda: enumerate(L, 5)),
        ('enumerate negative', lambda: enumerate('ab', -3)), ('enumerate big', lambda: enumerate('abc', BIG - 2)),
        ('enumerate used', lambda: used(enumerate(N, 10), 2)), ('enumerate empty', lambda: enumerate([])),
        ('reversed list', lambda: reversed(L)), ('reversed list used', lambda: used(reversed(L), 2)),
        ('reversed list done', lambda: used(reversed(N), 3)), ('reversed tuple', lambda: used(reversed(tuple(L)), 1)),
        ('reversed str', lambda: used(reversed('h\u00e9llo'), 1)), ('reversed range', lambda: used(reversed(range(1, 10, 2)), 1)),
        ('reversed tuple done', lambda: used(reversed((1, 2)), 2)),
        ('range', lambda: range(5)), ('range step', lambda: range(2, 20, 3)), ('range negative', lambda: range(10, -10, -4)),
        ('range empty', lambda: range(5, 1)), ('range low', lambda: range(-2 ** 63, -2 ** 63 + 3)),
        ('range high', lambda: range(2 ** 63 - 3, 2 ** 63)), ('range big', lambda: range(BIG, BIG + 3)),
        ('range big down', lambda: range(2 ** 70, 2 ** 70 - 7, -3)), ('range across', lambda: range(2 ** 63 - 2, 2 ** 63 + 2)),
        ('range wide', lambda: range(-2 ** 63, 2 ** 63 - 1, 2 ** 62)),
        ('iter range', lambda: iter(range(1, 10, 2))), ('iter range used', lambda: used(iter(range(1, 10, 2)), 2)),
        ('iter range done', lambda: used(iter(range(2)), 2)), ('iter range negative used', lambda: used(iter(range(10, -10, -4)), 2)),
        ('iter range big used', lambda: used(iter(range(BIG, BIG + 9, 2)), 2)),
        ('iter list', lambda: iter(L)), ('iter list used', lambda: used(iter(L), 2)), ('iter list done', lambda: used(iter(N), 3)),
        ('iter tuple used', lambda: used(iter(tuple(L)), 1)), ('iter str used', lambda: used(iter('h\u00e9llo \u20ac'), 1)),
        ('iter bytes used', lambda: used(iter(b'abc'), 1)), ('iter bytearray used', lambda: used(iter(bytearray(b'xyz')), 2)),
        ('iter dict used', lambda: used(iter(D), 1)), ('iter keys', lambda: iter(D.keys())),
        ('iter values used', lambda: used(iter(D.values()), 1)), ('iter items', lambda: iter(D.items())),
        ('iter set', lambda: iter({1, 'a', (2,)})), ('iter frozenset used', lambda: used(iter(frozenset(N)), 1)),
        ('iter array used', lambda: used(iter(array.array('i', N)), 1)), ('iter deque used', lambda: used(iter(collections.deque(L)), 2)),
        ('iter deque maxlen', lambda: iter(collections.deque(N, maxlen=2))), ('iter iter', lambda: iter(iter('ab'))),
        ('reversed deque', lambda: used(reversed(collections.deque(N)), 1)),
        ('reversed dict', lambda: reversed(D)), ('reversed items', lambda: used(reversed(D.items()), 1)),
        ('nested', lambda: zip(enumerate(reversed('abc')), iter(range(3)))),
        ('nested used', lambda: enumerate(zip(N, used(iter('xyzw'), 1)), 1)),
        ('zip of zips', lambda: zip(zip(N, N), enumerate(L), reversed(range(4)))),
        ('shared', lambda: (lambda i: zip(i, i))(iter(range(7)))),
        ('shared twice', lambda: (lambda i: zip(i, enumerate(i)))(iter('abcdef'))),
        ('shared lattice', lambda: lattice(iter(range(3)), 40)), ('shared str', lambda: zip(*['h\u00e9llo'] * 50)),
        ('shared deque', lambda: (lambda d: itertools.chain(d, d, reversed(d)))(collections.deque(N))),
        ('filter None', lambda: filter(None, [0, 1, '', 'a', None, [], [0], 0.0, 2.5, (), b'', BIG])),
        ('count', lambda: zip('abc', itertools.count(5))), ('count step', lambda: zip('abc', itertools.count(BIG, -3))),
        ('count float', lambda: zip('abcd', itertools.count(0.5, 0.25))), ('count used', lambda: zip('ab', used(itertools.count(), 3))),
        ('repeat', lambda: itertools.repeat('x', 3)), ('repeat none', lambda: itertools.repeat('x', 0)),
        ('repeat used', lambda: used(itertools.repeat(L, 3), 1)), ('repeat zipped', lambda: zip('abc', itertools.repeat(7))),
        ('islice', lambda: itertools.islice(range(20), 3, 15, 4)), ('islice used', lambda: used(itertools.islice(range(20), 2, None, 3), 2)),
        ('islice stop', lambda: itertools.islice('abcdef', 2)), ('islice count', lambda: itertools.islice(itertools.count(), 5)),
        ('islice done', lambda: used(itertools.islice([1], 1), 1)),
        ('chain', lambda: itertools.chain([1, 2], 'ab', range(2))), ('chain used', lambda: used(itertools.chain(N, 'ab', P), 4)),
        ('chain empty', lambda: itertools.chain()), ('chain done', lambda: used(itertools.chain([1]), 1)),
        ('from_iterable', lambda: itertools.chain.from_iterable([[1], (2, 3), 'ab'])),
        ('from_iterable used', lambda: used(itertools.chain.from_iterable([N, iter('xyz'), enumerate('q')]), 4)),
        ('chain not iterable', lambda: itertools.chain([1, 2], 5, [3])),
    ]
    if sys.version_info >= (3, 10):
        out += [('zip strict', lambda: zip(N, 'abc', strict=True)), ('zip strict short', lambda: zip(N, 'ab', strict=True)),
                ('zip strict long', lambda: zip('ab', N, strict=True)), ('zip strict 3', lambda: zip(N, N, 'ab', strict=True)),
                ('zip strict used', lambda: used(zip(N, 'abc', strict=True), 1))]
    else:
        harness.skip_part('zip(strict=True)', 'new in Python 3.10')
    kept = []
    for label, make in out:  # what this Python can make and pickle
        try:
            ForkingPickler.dumps(make())
        except Exception as e:
            harness.note('skip: %s: Python %d.%d cannot send it (%s)' % ((label,) + sys.version_info[:2] + (e,)))
            continue
        kept.append((label, make))
    return kept


def outcome_of(fn):
    try:
        return ('return', fn())
    except Exception as e:
        return ('raise', e)


def construct(what, remote, local):
    """A constructor through create: an error comes back as a RemoteError naming it."""
    want = outcome_of(local)
    got = outcome_of(remote)
    if want[0] == 'raise':
        if harness.check(got[0] == 'raise', '%s: returned %r, want %r raised' % (what, got[1], want[1])):
            S.remote_error_names(what, got[1], want[1])
        return
    if got[0] == 'raise':
        return harness.fail('%s: raised %r, want %r' % (what, got[1], want[1]))
    harness.check(S.same(got[1]._getvalue(), want[1]), '%s: %r, want %r' % (what, got[1]._getvalue(), want[1]))


def test_constructors(m, things):
    for label, make in things:
        construct('list(%s)' % label, lambda: m.list(make()), lambda: list(make()))
        construct('dict(%s)' % label, lambda: m.dict(make()), lambda: dict(make()))
        construct('set(%s)' % label, lambda: m.set(make()), lambda: set(make()))
        construct('Array(i, %s)' % label, lambda: m.Array('i', make()), lambda: array.array('i', make()))


def contents(what, remote, local):
    harness.check(S.same(remote._getvalue(), local), '%s: contents after: %r, want %r' % (what, remote._getvalue(), local))


def test_list(m, things):
    base = [0, 'z', 9]
    remote = m.list()
    for label, make in things:
        for name, args in [('extend', ()), ('__setitem__', (slice(1, 2),)), ('__setitem__', (slice(None, None, 2),)),
                           ('__setitem__', (slice(3, 0, -1),))]:
            what = 'list.%s%r(%s)' % (name, args, label)
            remote[:] = base
            local = list(base)
            S.check(what, lambda: remote._callmethod(name, args + (make(),)), lambda: getattr(local, name)(*(args + (make(),))))
            contents(what, remote, local)
        remote[:] = base  # l += x: ListProxy.__iadd__ calls extend
        local = list(base)
        try:
            local += make()
        except Exception:
            pass
        try:
            remote += make()
        except Exception:
            pass
        contents('list += %s' % label, remote, local)


def test_dict(m, things):
    base = {'z': 0, 1: 'one'}
    remote = m.dict()
    for label, make in things:
        calls = [('update', lambda r: r.update(make()), lambda l: l.update(make())),
                 ('fromkeys', lambda r: r._callmethod('fromkeys', (make(),)), lambda l: dict.fromkeys(make())),
                 ('fromkeys value', lambda r: r._callmethod('fromkeys', (make(), 7)), lambda l: dict.fromkeys(make(), 7))]
        if sys.version_info >= (3, 9):  # CPython returns the dict itself; compared by contents
            calls.append(('|=', lambda r: (r._callmethod('__ior__', (make(),)), None)[1],
                          lambda l: (l.__ior__(make()), None)[1]))
        for name, rcall, lcall in calls:
            what = 'dict %s(%s)' % (name, label)
            remote.clear()
            remote.update(base)
            local = dict(base)
            S.check(what, lambda: rcall(remote), lambda: lcall(local))
            contents(what, remote, local)


def test_set(m, things):
    base = {1, 'a', 'zz', (2, 3)}
    remote = m.set()
    early_stop = sys.version_info >= (3, 11) or not SHMGR
    names = ['update', 'union', 'intersection', 'intersection_update', 'difference', 'difference_update',
             'symmetric_difference', 'symmetric_difference_update', 'issubset', 'isdisjoint', '__or__', '__ior__',
             '__and__', '__le__']
    if early_stop:
        names.append('issuperset')
    for label, make in things:
        for name in names:
            what = 'set.%s(%s)' % (name, label)
            remote.clear()
            remote.update(base)
            local = set(base)
            S.check(what, lambda: remote._callmethod(name, (make(),)), lambda: getattr(local, name)(make()))
            contents(what, remote, local)
        what = 'set.update(%s, %s)' % (label, label)  # two of them in one call, each evaluated apart
        remote.clear()
        local = set()
        S.check(what, lambda: remote.update(make(), make()), lambda: local.update(make(), make()))
        contents(what, remote, local)
    if not early_stop:
        harness.skip_part('issuperset(iterator) compared', 'Python %d.%d builds a set of the iterable first; '
                          '3.11+ (and shmgr, as 3.13) stop at the first member missing' % sys.version_info[:2])


def test_kept_as_is(m, things):
    """Queue.put and Namespace store what they are given: the iterator comes back, in its state."""
    q = m.Queue()
    for label, make in things:
        q.put(make())
        got = q.get()
        want = pickle.loads(ForkingPickler.dumps(make()))  # what any server gives back: the pickled form
        harness.eq(type(got).__name__, type(want).__name__, 'Queue.put(%s) gives back its type' % label)
        harness.check(S.same(S.outcome(lambda: list(got)), S.outcome(lambda: list(want))),
                      'Queue.put(%s) gives back its items' % label)
    ns = m.Namespace(z=zip('ab', N), r=used(iter(range(5)), 2))
    harness.eq(list(ns.z), [('a', 3), ('b', 1)], 'Namespace(z=zip(...)).z')
    harness.eq(list(ns.r), [2, 3, 4], 'Namespace(r=iter(range(5)) used 2).r')


def test_proxies(m):
    """Proxies of the server's own objects in lazy arguments: CPython's server rebuilds them
    as proxies of itself and iterates those; a shared Iterator is consumed as it goes."""
    import multiprocessing
    if multiprocessing.current_process().authkey != harness.DEFAULT_AUTHKEY:
        harness.fail('the script must set its process key before the server starts (see main)')
    p = m.list([1, 2, 3])
    d = m.dict({'a': 1, 'b': 2, 'c': 3})
    for label, make, want in [
            ('zip(list proxy, str)', lambda: zip(p, 'xyz'), [(1, 'x'), (2, 'y'), (3, 'z')]),
            ('iter(list proxy) used', lambda: used(iter(p), 1), [2, 3]),
            ('enumerate(list proxy)', lambda: enumerate(p, 1), [(1, 1), (2, 2), (3, 3)]),
            ('chain(list proxy, itself)', lambda: itertools.chain(p, p), [1, 2, 3, 1, 2, 3]),
            ('zip(dict proxy, list proxy)', lambda: zip(d, p), [('a', 1), ('b', 2), ('c', 3)])]:
        construct('list(%s)' % label, lambda: m.list(make()), lambda: want)
    it = iter(d)  # an IteratorProxy: the server's own key iterator
    harness.eq(next(it), 'a', 'next(iter(dict proxy))')
    construct('list(zip(dict iterator proxy, str))', lambda: m.list(zip(it, 'q')), lambda: [('b', 'q')])
    harness.eq(S.outcome(lambda: next(it)), ('raise', StopIteration, ()),
               'the dict iterator after zip took its items (zip took one more than it used)')


def shmgr_error(what, e, cls, text):
    """On shmgr: e is a cls with message text (a RemoteError ending so, from a constructor)."""
    if isinstance(e, RemoteError):
        last = [ln.strip() for ln in str(e).splitlines() if ln.strip() and ln.strip('-')][-1]
        return harness.eq(last, '%s: %s' % (cls.__name__, text), what)
    harness.check(isinstance(e, cls) and e.args == (text,), '%s: raised %r, want %s(%r)' % (what, e, cls.__name__, text))


REFUSE = "shmgr does not run client code: cannot iterate a '%s' object%s; pass a list instead"


def test_refused(m):
    """Code shmgr does not run: refused with a TypeError naming it; nothing changes and the
    connection goes on. On CPython's server the same calls work."""
    cases = [
        ('map', lambda: map(int, ['1', '2']), [1, 2], REFUSE % ('map', ' (map with function int)')),
        ('map of 2', lambda: map(pow, [2, 3], [2, 2]), [4, 9], REFUSE % ('map', ' (map with function pow)')),
        ('filter', lambda: filter(str.isdigit, ['1', 'a', '2']), ['1', '2'],
         REFUSE % ('filter', ' (filter with function str.isdigit)')),
        ('iter(f, sentinel)', lambda: iter(int, 0), [], REFUSE % ('callable_iterator', ' (iter with function int)')),
        ('starmap', lambda: itertools.starmap(pow, [(2, 3)]), [8],
         REFUSE % ('itertools.starmap', ' (starmap with function pow)')),
        ('takewhile', lambda: itertools.takewhile(bool, [1, 0, 2]), [1],
         REFUSE % ('itertools.takewhile', ' (takewhile with function bool)')),
        ('product', lambda: itertools.product('ab', [1]), [('a', 1), ('b', 1)], REFUSE % ('itertools.product', '')),
        ('class with __iter__', lambda: Bag([1, 2]), [1, 2], REFUSE % ('Bag', '')),
        ('an Enum class', lambda: Color, [Color.R, Color.G],
         'shmgr does not run client code: cannot iterate __main__.Color; pass a list instead'),
        ('nested map', lambda: zip('ab', map(str, [1, 2])), [('a', '1'), ('b', '2')],
         REFUSE % ('map', ' (map with function str)')),
        ('chained map', lambda: itertools.chain([1], map(abs, [-2])), [1, 2], REFUSE % ('map', ' (map with function abs)')),
        ('filter None of an object', lambda: filter(None, [0, Bag([])]), None,
         "shmgr does not run client code: cannot tell whether a 'Bag' object is true, as filter(None, ...) must; "
         "pass a list instead"),
    ]
    lst = m.list([0])
    d = m.dict({'k': 1})
    s = m.set([1])
    for label, make, want, text in cases:
        if want is None and not SHMGR:
            continue  # a Bag is true on CPython: no list to compare with
        for what, call, check_after in [
                ('list(%s)' % label, lambda: m.list(make())._getvalue(), None),
                ('list.extend(%s)' % label, lambda: lst.extend(make()), lambda: lst._getvalue() == [0]),
                ('dict.fromkeys(%s)' % label, lambda: d._callmethod('fromkeys', (make(),)), None),
                ('set.update(%s)' % label, lambda: s.update(make()), lambda: s._getvalue() == {1})]:
            if SHMGR:
                try:
                    call()
                    harness.fail('%s: not refused' % what)
                except Exception as e:
                    shmgr_error(what, e, TypeError, text)
                if check_after:
                    harness.check(check_after(), '%s: the object is unchanged' % what)
            elif what.startswith('list(') and want is not None:
                harness.eq(call(), want, '%s on CPython' % what)
        lst[:] = [0]
        s.clear()
        s.add(1)
        lst.append(5)  # the connection is in sync: the next call gets its own reply
        harness.eq(lst._getvalue(), [0, 5], 'after %s: the list goes on' % label)
        lst[:] = [0]


def test_not_iterable(m):
    """What is not iterable at all: Python's own TypeError, from either server."""
    lst = m.list([0])
    for x in [5, 2.5, None, 1j, 2 ** 70, int, ValueError('x')]:
        construct('list(%r)' % (x,), lambda: m.list(x), lambda: list(x))
        S.check('list.extend(%r)' % (x,), lambda: lst.extend(x), lambda: [0].extend(x))
        S.check('list[1:] = %r' % (x,), lambda: lst.__setitem__(slice(1, None), x),
                lambda: [0].__setitem__(slice(1, None), x))
    harness.eq(lst._getvalue(), [0], 'the list after them')


def test_limits(m):
    """What cannot fit ends in MemoryError at once (CPython: MemoryError, or a server that
    hangs filling its memory: shmgr-only there). The script's shmgr has limits.max_objects
    = LIMIT, so that the steps up to it take no time."""
    try:
        m.list(range(10 ** 12))
        harness.fail('list(range(10**12)) did not fail')
    except RemoteError as e:
        line = [ln for ln in str(e).splitlines() if ln.strip() and ln.strip('-')][-1]
        harness.check(line.startswith('MemoryError'), 'list(range(10**12)): %s, want MemoryError' % line)
        if SHMGR:
            harness.eq(line, "MemoryError: 'range' object too large for shmgr: evaluating an iterable argument may take "
                       "at most %d steps (4 x limits.max_objects)" % LIMIT, 'list(range(10**12)): the message')
    if not SHMGR:
        harness.skip_part('endless iterables', "CPython's server would fill its memory until killed")
        return
    lst = m.list([0])
    for label, make in [('count()', lambda: itertools.count()), ('repeat(x)', lambda: itertools.repeat('x')),
                        ('zip(range(10**12), count())', lambda: zip(range(10 ** 12), itertools.count())),
                        ('enumerate(repeat(1))', lambda: enumerate(itertools.repeat(1))),
                        ('repeat(0, 10**9)', lambda: itertools.repeat(0, 10 ** 9)),
                        ('chain of repeats', lambda: itertools.chain.from_iterable(itertools.repeat(range(1000), 10 ** 6))),
                        ('islice(count(), 10**12, None)', lambda: itertools.islice(itertools.count(), 10 ** 12, None))]:
        try:
            lst.extend(make())
            harness.fail('extend(%s) did not fail' % label)
        except MemoryError as e:
            harness.check('limits.max_objects' in str(e), 'extend(%s): %s' % (label, e))
        except Exception as e:
            harness.fail('extend(%s): raised %r, want MemoryError' % (label, e))
        harness.eq(lst._getvalue(), [0], 'extend(%s) changed nothing' % label)
    harness.eq(len(m.list(range(LIMIT))), LIMIT, 'list(range(LIMIT)): as many steps as the limit')
    try:  # a str is split into characters for typecode 'u' too
        m.Array('u', 'x' * (LIMIT + 1))
        harness.fail("Array('u', str of LIMIT + 1) did not fail")
    except RemoteError as e:
        harness.check('MemoryError' in str(e) and 'limits.max_objects' in str(e), "Array('u', str of LIMIT + 1): %s" % e)
    harness.eq(len(m.list(enumerate(range(LIMIT // 2)))), LIMIT // 2, 'enumerate(range(LIMIT / 2)): two steps each')
    for label, make in [('range(LIMIT + 1)', lambda: range(LIMIT + 1)), ('str of LIMIT + 1', lambda: 'x' * (LIMIT + 1)),
                        ('enumerate(range(LIMIT / 2 + 1))', lambda: enumerate(range(LIMIT // 2 + 1)))]:
        try:
            lst.extend(make())
            harness.fail('extend(%s) did not fail' % label)
        except MemoryError as e:
            harness.check('limits.max_objects' in str(e), 'extend(%s): %s' % (label, e))
    # a chain whose source yields the chain itself (CPython's chain_next would recurse until its stack overflows)
    c = itertools.chain()
    c.__setstate__((iter([c]),))
    try:
        lst.extend(c)
        harness.fail('extend(a chain that yields itself) did not fail')
    except Exception as e:
        shmgr_error('extend(a chain that yields itself)', e, RecursionError,
                    'an iterator in the argument yields itself or is nested too deep')
    deep = iter([1])
    for _ in range(150):
        deep = zip(deep)
    try:
        lst.extend(deep)
        harness.fail('extend(zip 150 deep) did not fail')
    except Exception as e:
        shmgr_error('extend(zip 150 deep)', e, RecursionError, 'iterators nested more than 100 deep in an argument')
    harness.eq(lst._getvalue(), [0], 'the list after them')


def with_protocol(proto, fn):
    """fn() with this client pickling its requests in protocol proto."""
    saved = ForkingPickler.__dict__['dumps']
    ForkingPickler.dumps = classmethod(lambda cls, obj, protocol=None: saved.__func__(cls, obj, proto))
    try:
        fn()
    finally:
        ForkingPickler.dumps = saved


def test_protocols(m, things):
    remote = m.list()
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        def run():
            for label, make in things:
                what = 'list.extend(%s) in protocol %d' % (label, proto)
                del remote[:]
                local = []
                S.check(what, lambda: remote.extend(make()), lambda: local.extend(make()))
                contents(what, remote, local)
        with_protocol(proto, run)


def main():
    import multiprocessing
    # CPython's server (forked from here) rebuilds a proxy of its own objects as a client of
    # itself, with its process key: the key its clients use, as a manager's start() sets it
    multiprocessing.current_process().authkey = harness.DEFAULT_AUTHKEY
    with harness.server(harness.conf('lazy_args.lua'), py_setup=py_setup) as srv:
        m = harness.client_manager(srv, [('set', {'proxytype': SetProxy})], base=SyncManager)
        base = m._number_of_objects()
        things = iterables()
        test_constructors(m, things)
        test_list(m, things)
        test_dict(m, things)
        test_set(m, things)
        test_kept_as_is(m, things)
        test_proxies(m)
        test_refused(m)
        test_not_iterable(m)
        test_limits(m)
        test_protocols(m, things)
        gc.collect()
        harness.wait_until(lambda: (gc.collect(), m._number_of_objects())[1] == base, 5)
        harness.eq(m._number_of_objects(), base, 'every object released')
    harness.done()


if __name__ == '__main__':
    main()
