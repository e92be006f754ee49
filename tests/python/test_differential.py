"""Random call sequences made the same way against CPython's own server and against shmgr,
compared reply by reply: what a stock client sees must be the same, but for the differences
docs/differences.md lists (each one skipped here by name, with its reason).

Both servers run at once: CPython's is this interpreter's own SyncManager server, so the
reference is the same version as the client. Every built-in type a SyncManager serves is
driven through methods both servers expose, with arguments drawn from a pool of values of
every kind (ints small and big, floats, nan, bools, None, str, bytes, tuples, lists, dicts,
slices, negative indices, wrong types, extra or keyword arguments). Calls that could block
are made so that they cannot (block=False, timeout 0 or less). A reply is a result (same
value, same type, recursively) or an exception (same class; the same message with a 3.13
client, the wording shmgr answers in; classes only with older clients, whose servers word
some messages differently: a difference docs/differences.md lists). After the first difference in a
type's sequence, that sequence stops (the states differ from then on) and the calls that
led there are printed to replay it.

SHMGR_DIFF_SEED replays a seed; SHMGR_DIFF_STEPS sets the calls per type (default 250)."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics  # noqa: E402

import gc  # noqa: E402
import random  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import BaseProxy, RemoteError  # noqa: E402

PY = sys.version_info[:2]
EXACT_MESSAGES = PY >= semantics.EMULATED
STEPS = int(os.environ.get('SHMGR_DIFF_STEPS', '250'))
SEED = int(os.environ.get('SHMGR_DIFF_SEED') or random.SystemRandom().randrange(1 << 30))

NAN = float('nan')
POOL = [0, 1, -1, 2, 3, -4, 7, 100, 2 ** 63 - 1, 2 ** 63, -2 ** 64, 2 ** 100,
        0.0, -0.0, 1.5, -2.25, 1e300, NAN, float('inf'), True, False, None,
        '', 'a', 'b', 'key', 'x', 'y', u'\u00e9t\u00e9', b'', b'x', bytearray(b'ab'),
        (), (1,), (1, 'a'), [], [1, 2], [[1], 'a'], {}, {'a': 1}, {1: [2]}, frozenset([1]), set([2]),
        slice(None), slice(1, 3), slice(-2, None), slice(None, None, -1), slice(0, 5, 2), slice(1, 2, 0),
        slice('a', 2)]

# Documented differences (docs/differences.md, "Where shmgr differs"), as (type, method, predicate on
# args and kwds) with the reason; a call matching one is not made (the two states would
# part), and is counted as not compared.
DOCUMENTED = [
    ('list', 'sort', lambda a, k: 'key' in k,
     'list.sort(key=...) is refused: the key is client code'),
    ('list', 'sort', lambda a, k: True,
     'sort of values Python orders but shmgr keeps as recipes, or of nan-holding lists: '
     'covered by test_list.py against a local list'),
    # (CPython's own Semaphore.release(n) notifies n times: with n = 2**63 its server hangs)
    ('Semaphore', 'release', lambda a, k: any(isinstance(x, float) or (isinstance(x, int) and abs(x) >= 2 ** 20)
                                              for x in a + tuple(k.values())),
     'a Semaphore counts in 64-bit integers: release(2.5) and release(2**100) are refused'),
    ('BoundedSemaphore', 'release', lambda a, k: any(isinstance(x, float) or (isinstance(x, int) and x >= 2 ** 20)
                                                     for x in a + tuple(k.values())),
     'a Semaphore counts in 64-bit integers: release(1.5) within the bound is refused'),
    ('*', '*', lambda a, k: PY < (3, 12) and any(has_slice(x) for x in a + tuple(k.values())),
     'a slice is hashable as since 3.12, for every client'),
    ('*Semaphore', 'release', lambda a, k: PY < (3, 9) and (a or k),
     "methods take 3.13's arguments for every client: release(n) is new in 3.9"),
    ('Condition', 'notify', lambda a, k: PY < (3, 9) and (a or k),
     "3.13's methods for every client: notify(n) looks at n only while there are waiters since 3.9"),
]


def has_slice(v):
    if isinstance(v, slice):
        return True
    if isinstance(v, (tuple, list, frozenset, set)):
        return any(has_slice(x) for x in v)
    if isinstance(v, dict):
        return any(has_slice(x) for x in v) or any(has_slice(x) for x in v.values())
    return False


def documented(tname, method, args, kwds):
    for t, m, pred, why in DOCUMENTED:
        if (t == '*' or tname.endswith(t.lstrip('*'))) and m in ('*', method) and pred(args, kwds):
            return why
    return None


def pick(rng):
    v = rng.choice(POOL)
    if isinstance(v, (list, dict, set, bytearray)):
        v = type(v)(v)  # a fresh one each time: the servers get equal values, never shared
    return v


def random_args(rng, lo=0, hi=3):
    return tuple(pick(rng) for _ in range(rng.randint(lo, hi)))


# Per type: how to make one (the same for both servers), and the calls a step may make:
# (method, function(rng) -> (args, kwds)). Calls that could block are given arguments
# under which they cannot.
def nonblocking_timeout(rng):
    """A queue timeout under which get/put cannot wait (NaN would wait for ever: on CPython's
    server its thread spins, shmgr parks the call; test_queue.py covers it)."""
    return rng.choice([0, -1, 0.0, -0.5, 'x', 2 ** 70, 1e300])


TYPES = {
    'list': (lambda m: m.list([1, 'a', 2.5, (1, 2)]), None),
    'dict': (lambda m: m.dict({'a': 1, 2: 'b', (1,): [3]}), None),
    'Namespace': (lambda m: m.Namespace(x=1, y='b'), None),
    'Value': (lambda m: m.Value('i', 3), None),
    'Array': (lambda m: m.Array('i', [1, 2, 3, 4]), None),
    'Queue': (lambda m: m.Queue(3), [
        ('put', lambda r: ((pick(r), False), {})),
        ('put', lambda r: ((pick(r), True, nonblocking_timeout(r)), {})),
        ('put_nowait', lambda r: ((pick(r),), {})),
        ('get', lambda r: ((False,), {})),
        ('get', lambda r: ((True, nonblocking_timeout(r)), {})),
        ('get', lambda r: ((), {'block': False})),
        ('get_nowait', lambda r: ((), {})),
        ('qsize', lambda r: (random_args(r, 0, 1), {})),
        ('empty', lambda r: ((), {})),
        ('full', lambda r: ((), {})),
    ]),
    'JoinableQueue': (lambda m: m.JoinableQueue(), [
        ('put', lambda r: ((pick(r), False), {})),
        ('get', lambda r: ((False,), {})),
        ('task_done', lambda r: (random_args(r, 0, 1), {})),
        ('qsize', lambda r: ((), {})),
    ]),
    'Event': (lambda m: m.Event(), [
        ('set', lambda r: ((), {})),
        ('clear', lambda r: ((), {})),
        ('is_set', lambda r: (random_args(r, 0, 1), {})),
        ('wait', lambda r: ((nonblocking_timeout(r),), {})),
    ]),
    'Lock': (lambda m: m.Lock(), [
        ('acquire', lambda r: ((False,), {})),
        ('acquire', lambda r: ((), {'blocking': False})),
        ('acquire', lambda r: ((True, r.choice([0, -2, 0.0, NAN, 'x', 2 ** 70])), {})),
        ('acquire', lambda r: ((False, r.choice([1, -1, 0.5])), {})),
        ('release', lambda r: (random_args(r, 0, 1), {})),
    ]),
    'RLock': (lambda m: m.RLock(), [
        ('acquire', lambda r: ((False,), {})),
        ('acquire', lambda r: ((True, r.choice([0, -2, NAN, 'x'])), {})),
        ('release', lambda r: ((), {})),
    ]),
    'Semaphore': (lambda m: m.Semaphore(2), [
        ('acquire', lambda r: ((False,), {})),
        ('acquire', lambda r: ((True, r.choice([0, -1, 0.0])), {})),
        ('acquire', lambda r: ((False, 1), {})),
        ('release', lambda r: (random_args(r, 0, 1), {})),
    ]),
    'BoundedSemaphore': (lambda m: m.BoundedSemaphore(2), [
        ('acquire', lambda r: ((False,), {})),
        ('release', lambda r: (random_args(r, 0, 1), {})),
        ('release', lambda r: ((), {})),
    ]),
    'Condition': (lambda m: m.Condition(), [
        ('acquire', lambda r: ((False,), {})),
        ('release', lambda r: ((), {})),
        ('notify', lambda r: (random_args(r, 0, 1), {})),
        ('notify_all', lambda r: ((), {})),
        ('wait', lambda r: ((r.choice([0, -1, 0.0, NAN, 'x']),), {})),
    ]),
    'Barrier': (lambda m: m.Barrier(1), [
        ('wait', lambda r: (r.choice([(), (0.5,), (None,)]), {})),
        ('abort', lambda r: ((), {})),
        ('reset', lambda r: ((), {})),
        ('__getattribute__', lambda r: ((r.choice(['parties', 'n_waiting', 'broken', 'x', 1]),), {})),
    ]),
}


def generic_calls(methods):
    """Calls of any of methods with random arguments (0-3 positional, now and then a
    keyword): for containers, whose methods never block."""
    def one(rng):
        m = rng.choice(methods)
        if m in ('__mul__', '__rmul__', '__imul__'):  # a small factor: the list must not explode
            return m, (rng.choice([-1, 0, 1, 2, 3, 'x', 1.5, None, 2 ** 63, -2 ** 64]),), {}
        kwds = {}
        if rng.random() < 0.1:
            kwds[rng.choice(['key', 'reverse', 'default', 'x'])] = pick(rng)
        return m, random_args(rng), kwds
    return one


def exposed_of(srv, proxy):
    """The methods srv exposes for proxy's object (the get_methods server method)."""
    return set(harness.raw_call(srv, None, 'get_methods', (proxy._token,))[1])


CALL_LIMIT = 30.0  # seconds: a call that takes longer hangs its server (none should)
_current = [None, 0.0]


def watchdog():
    while True:
        time.sleep(1)
        what, since = _current
        if what and time.time() - since > CALL_LIMIT:
            harness.fail('seed %d: %s did not answer within %g s' % (SEED, what, CALL_LIMIT))
            harness.done()


def reply(proxy, method, args, kwds, server):
    """What a stock client sees: ('return', value) or ('raise', class, message)."""
    _current[:] = ['%s: %s(*%r, **%r)' % (server, method, args, kwds), time.time()]
    try:
        r = proxy._callmethod(method, args, kwds)
    except RemoteError as e:
        lines = [ln for ln in str(e).strip().strip('-').strip().splitlines() if ln.strip()]
        return ('remote', lines[-1] if lines else '')
    except Exception as e:
        return ('raise', type(e), str(e))
    finally:
        _current[0] = None
    if isinstance(r, BaseProxy):
        return ('proxy', r._token.typeid)
    if hasattr(r, '__next__') and iter(r) is r:  # an iterator returned by value: its items
        return ('iter', type(r).__name__, list(r))
    return ('return', r)


def same_reply(a, b):
    if a[0] != b[0]:
        return False
    if a[0] == 'return':
        return harness.same(a[1], b[1])
    if a[0] == 'iter':
        return a[1] == b[1] and harness.same(a[2], b[2])
    if a[0] == 'proxy':
        return a[1] == b[1]
    if a[0] == 'remote':
        return a[1].split(':')[0] == b[1].split(':')[0] and (not EXACT_MESSAGES or a[1] == b[1])
    return a[1] is b[1] and (not EXACT_MESSAGES or a[2] == b[2])


def show(r):
    if r[0] == 'raise':
        return '%s(%r)' % (r[1].__name__, r[2])
    return '%s %r' % r


def drive(tname, make, calls, ref_m, shm_m, ref_srv, shm_srv, rng):
    """One type's sequence; returns (calls compared, calls skipped as documented)."""
    ref, shm = make(ref_m), make(shm_m)
    both = sorted(exposed_of(ref_srv, ref) & exposed_of(shm_srv, shm))
    if calls is None:
        step = generic_calls(both)
    else:
        usable = [c for c in calls if c[0] in both]
        if not usable:
            harness.fail('%s: none of its methods is exposed by both servers' % tname)
            return 0, 0

        def step(r):
            method, argf = r.choice(usable)
            args, kwds = argf(r)
            return method, args, kwds
    done, skipped, history = 0, 0, []
    for _ in range(STEPS):
        method, args, kwds = step(rng)
        if documented(tname, method, args, kwds):
            skipped += 1
            continue
        history.append('%s(*%r, **%r)' % (method, args, kwds))
        a, b = reply(ref, method, args, kwds, "CPython's server"), reply(shm, method, args, kwds, 'shmgr')
        done += 1
        if not same_reply(a, b):
            harness.fail('%s (seed %d, call %d): %s\n  CPython: %s\n  shmgr:   %s\n  calls so far:\n    %s'
                         % (tname, SEED, len(history), history[-1], show(a), show(b),
                            '\n    '.join(history[-12:])))
            break
    del ref, shm
    return done, skipped


def main():
    if harness.BACKEND == 'cpython':
        harness.skip('compares shmgr with CPython\'s server itself (run it with the shmgr backend)')
    harness.note('seed %d (SHMGR_DIFF_SEED=%d replays it), %d calls per type, messages compared %s'
                 % (SEED, SEED, STEPS, 'exactly' if EXACT_MESSAGES else
                    'by class only (this %d.%d client\'s server words some messages unlike 3.13\'s, '
                    'as docs/differences.md says)' % PY))
    rng = random.Random(SEED)
    t = threading.Thread(target=watchdog)
    t.daemon = True
    t.start()
    total = skipped = 0
    with harness.server(backend='cpython') as ref_srv, harness.server(backend='shmgr') as shm_srv:
        ref_m, shm_m = harness.sync_manager(ref_srv), harness.sync_manager(shm_srv)
        for tname in sorted(TYPES):
            make, calls = TYPES[tname]
            n, s = drive(tname, make, calls, ref_m, shm_m, ref_srv, shm_srv, random.Random(rng.random()))
            total += n
            skipped += s
        harness.check(shm_srv.alive(), 'shmgr is alive')
        gc.collect()
        harness.check(harness.wait_until(lambda: shm_m._number_of_objects() == 0),
                      'shmgr: every object released (%d left: %s)' % (shm_m._number_of_objects(), shm_m._debug_info()))
    harness.note('%d calls compared, %d not compared (documented differences)' % (total, skipped))
    harness.done()


if __name__ == '__main__':
    main()
