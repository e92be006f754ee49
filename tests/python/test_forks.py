"""The managers of two forks of multiprocessing, connected to a running server: multiprocess
(Debian's python3-multiprocess: pickles with dill, so closures and lambdas travel) and billiard
(Debian's python3-billiard, Celery's fork, based on an older multiprocessing). Each uses every
SyncManager type (Queue, JoinableQueue, Event, Lock, RLock, Semaphore, BoundedSemaphore,
Condition, Barrier, list, dict, Namespace, Value, Array) as the stdlib's threading and queue
objects behave, with their exceptions; a proxy stored in a dict keeps its object alive after
the client's own proxy is gone; the object count returns to where it was. With multiprocess,
closures, lambdas, recursive functions and a class defined here go through a Queue, list, dict,
Namespace and Value and work when fetched, here and in another process. Needs the forks for
this Python (Debian's packages serve /usr/bin/python3 only); skips the ones it lacks.

With SHMGR_TEST_SERVER=cpython the closures are not sent: CPython's own server cannot unpickle
dill's pickles of them (they name __builtin__.__main__)."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import array  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import queue  # noqa: E402
import threading  # noqa: E402


def fork(name):
    try:
        return importlib.import_module(name), importlib.import_module(name + '.managers')
    except ImportError:
        return None


def settle(m, want, what):
    harness.wait_until(lambda: (gc.collect(), m._number_of_objects())[1] == want, 5)
    harness.eq(m._number_of_objects(), want, what)


def attempt(what, fn):
    try:
        fn()
    except Exception as e:
        harness.fail('%s: %s: %s' % (what, type(e).__name__, str(e).strip()[-300:]))


def sync_types(tag, m):
    """Every SyncManager type through the fork's own proxies."""
    q = m.Queue(2)
    q.put(1)
    q.put('two')
    harness.eq((q.qsize(), q.full(), q.empty()), (2, True, False), '%s Queue sizes' % tag)
    harness.raises(queue.Full, q.put, 3, True, 0.05, what='%s Queue.put on a full queue' % tag)
    harness.eq((q.get(), q.get_nowait()), (1, 'two'), '%s Queue.get in order' % tag)
    harness.raises(queue.Empty, q.get, True, 0.05, what='%s Queue.get(timeout) on an empty queue' % tag)
    harness.raises(queue.Empty, q.get_nowait, what='%s Queue.get_nowait on an empty queue' % tag)

    jq = m.JoinableQueue()
    jq.put({'job': 1})
    harness.eq(jq.get(), {'job': 1}, '%s JoinableQueue.get' % tag)
    jq.task_done()
    jq.join()
    harness.raises(ValueError, jq.task_done, what='%s JoinableQueue.task_done once too often' % tag)

    e = m.Event()
    harness.eq((e.is_set(), e.wait(0.05)), (False, False), '%s Event unset' % tag)
    e.set()
    harness.eq((e.is_set(), e.wait(), e.wait(0.05)), (True, True, True), '%s Event set' % tag)
    e.clear()
    harness.eq(e.is_set(), False, '%s Event cleared' % tag)

    lock = m.Lock()
    harness.eq((lock.acquire(), lock.acquire(False), lock.acquire(True, 0.05)), (True, False, False),
               '%s Lock held once' % tag)
    lock.release()
    harness.raises(RuntimeError, lock.release, what='%s Lock.release unlocked' % tag)
    with lock:
        harness.eq(lock.acquire(False), False, '%s Lock held by with' % tag)
    harness.eq(lock.acquire(False), True, '%s Lock free after with' % tag)
    lock.release()

    rl = m.RLock()
    harness.eq((rl.acquire(), rl.acquire(), rl.release(), rl.release()), (True, True, None, None),
               '%s RLock twice' % tag)
    harness.raises(RuntimeError, rl.release, what='%s RLock.release not held' % tag)

    sem = m.Semaphore(2)
    harness.eq((sem.acquire(), sem.acquire(), sem.acquire(True, 0.05)), (True, True, False),
               '%s Semaphore(2)' % tag)
    sem.release()
    harness.eq(sem.acquire(False), True, '%s Semaphore after release' % tag)

    bs = m.BoundedSemaphore(1)
    bs.acquire()
    bs.release()
    harness.raises(ValueError, bs.release, what='%s BoundedSemaphore released too often' % tag)

    cond = m.Condition()
    with cond:
        harness.eq(cond.wait(0.05), False, '%s Condition.wait times out' % tag)
        cond.notify()
        cond.notify_all()
        harness.eq(cond.wait_for(lambda: 42, 0.05), 42, '%s Condition.wait_for' % tag)
    harness.raises(RuntimeError, cond.notify, what='%s Condition.notify without the lock' % tag)

    b = m.Barrier(2, timeout=5)
    harness.eq((b.parties, b.n_waiting, b.broken), (2, 0, False), '%s Barrier attributes' % tag)
    box = harness.run_thread(b.wait)
    me = b.wait()
    box['done'].wait(5)
    harness.eq(sorted([me, box.get('result')]), [0, 1], '%s Barrier passed by two threads' % tag)
    b.abort()
    harness.eq(b.broken, True, '%s Barrier.abort breaks it' % tag)
    harness.raises(threading.BrokenBarrierError, b.wait, what='%s Barrier.wait when broken' % tag)
    b.reset()
    harness.eq(b.broken, False, '%s Barrier.reset' % tag)

    lst = m.list([3, 1, 2])
    lst.append(4)
    lst.extend([5])
    lst += [6]
    lst.sort()
    harness.eq((lst[0], lst[-1], len(lst), lst.index(3), lst.count(6)), (1, 6, 6, 2, 1), '%s list' % tag)
    attempt('%s list slices (dill names slice by dill._dill._load_type)' % tag,
            lambda: harness.eq((lst[1:3], lst[::-2]), ([2, 3], [6, 4, 2]), '%s list slices' % tag))
    harness.eq((lst.pop(), lst.pop(0)), (6, 1), '%s list.pop' % tag)
    lst.insert(0, 'x')
    lst.remove(2)
    lst.reverse()
    harness.eq(lst._getvalue(), [5, 4, 3, 'x'], '%s list after insert, remove, reverse' % tag)
    harness.raises(IndexError, lambda: lst[10], what='%s list index out of range' % tag)

    d = m.dict(a=1)
    d['b'] = 2
    d.update(c=3)
    harness.eq((d['a'], d.get('z', 0), len(d), 'b' in d, sorted(d.keys()), sorted(d.values())),
               (1, 0, 3, True, ['a', 'b', 'c'], [1, 2, 3]), '%s dict' % tag)
    harness.eq((d.pop('a'), d.setdefault('d', 4), d.copy()), (1, 4, {'b': 2, 'c': 3, 'd': 4}),
               '%s dict.pop, setdefault, copy' % tag)
    harness.raises(KeyError, lambda: d['nope'], what='%s dict missing key' % tag)
    del d['b']
    harness.eq(sorted(d.items()), [('c', 3), ('d', 4)], '%s dict after del' % tag)

    ns = m.Namespace(x=1)
    ns.y = 'two'
    harness.eq((ns.x, ns.y), (1, 'two'), '%s Namespace' % tag)
    del ns.x
    harness.raises(AttributeError, lambda: ns.x, what='%s Namespace deleted attribute' % tag)

    v = m.Value('i', 3)
    v.value = 4
    harness.eq((v.value, v.get()), (4, 4), '%s Value' % tag)
    v.set(5)
    harness.eq(v.value, 5, '%s Value.set' % tag)

    a = m.Array('i', [1, 2, 3])
    a[0] = 9
    harness.eq((list(a), len(a), a[2]), ([9, 2, 3], 3, 3), '%s Array' % tag)
    attempt('%s Array slice' % tag, lambda: harness.eq(a[0:2], array.array('i', [9, 2]), '%s Array slice' % tag))
    harness.raises(IndexError, lambda: a[5], what='%s Array index out of range' % tag)


def nested(tag, m):
    """A proxy stored in a dict holds its object, as in CPython's server, after the client's
    own proxy is gone (the server must know the fork's RebuildProxy)."""
    base = m._number_of_objects()
    d = m.dict()
    inner = m.list([1, 2])
    d['inner'] = inner
    del inner
    gc.collect()
    try:
        harness.eq(d['inner'][1], 2, "%s a stored proxy's object after the client dropped its proxy" % tag)
    except Exception as e:
        harness.fail('%s a stored proxy: %s: %s' % (tag, type(e).__name__, e))
    del d
    settle(m, base, '%s objects back to %d once the dict is gone' % (tag, base))


# ---- multiprocess: functions travel ----

def adder(n):
    return lambda y: y + n


def make_rec():
    def rec(n):
        return 1 if n <= 1 else n * rec(n - 1)
    return rec


class Tally(object):
    def __init__(self, start):
        self.total = start

    def add(self, n):
        self.total += n
        return self


FUNCS = [('closure', lambda: adder(10), 'f(5)', 15),
         ('lambda', lambda: (lambda x: x * 2), 'f(21)', 42),
         ('recursive closure', make_rec, 'f(5)', 120),
         ('class defined here', lambda: Tally, 'f(1).add(2).total', 3),
         ('instance', lambda: Tally(7), 'f.add(1).total', 8)]

CHILD = r'''
import sys, dill, multiprocess
import harness
srv = harness.from_env()
multiprocess.current_process().authkey = srv.authkey
q = dill.loads(bytes.fromhex(sys.argv[1]))
for expr in sys.argv[2:]:
    f = q.get(timeout=10)
    try:
        print('result %r' % (eval(expr, {'f': f}),))
    except Exception as e:
        print('result %s: %s' % (type(e).__name__, e))
    sys.stdout.flush()
'''


def functions(srv, m):
    q = m.Queue()
    lst = m.list()
    d = m.dict()
    ns = m.Namespace()
    v = m.Value('O', None)
    places = [('Queue', lambda f: q.put(f), lambda: q.get(timeout=5)),
              ('list', lambda f: lst.append(f), lambda: lst[-1]),
              ('dict', lambda f: d.__setitem__('f', f), lambda: d['f']),
              ('Namespace', lambda f: setattr(ns, 'f', f), lambda: ns.f),
              ('Value', lambda f: v.set(f), lambda: v.value)]
    for name, make, expr, want in FUNCS:
        for place, put, get in places:
            put(make())
            try:
                got = eval(expr, {'f': get()})
            except Exception as e:
                got = '%s: %s' % (type(e).__name__, e)
            harness.eq(got, want, 'multiprocess: %s through %s, used here' % (name, place))
    # another process, where none of these is defined, takes them from a queue
    import dill
    for name, make, expr, want in FUNCS:
        q.put(make())
    child = harness.Child(srv, code=CHILD, args=[dill.dumps(q).hex()] + [f[2] for f in FUNCS])
    for name, make, expr, want in FUNCS:
        line = child.expect('result ', timeout=20)
        harness.eq(line, 'result %r' % (want,), 'multiprocess: %s through a Queue, used in another process' % name)
    child.wait()


def main():
    forks = [(name, fork(name)) for name in ('multiprocess', 'billiard')]
    missing = [name for name, f in forks if f is None]
    if len(missing) == len(forks):
        harness.skip('neither multiprocess nor billiard is installed for this Python '
                     '(Debian: python3-multiprocess, python3-billiard, for /usr/bin/python3)')
    for name in missing:
        harness.skip_part(name, 'not installed for this Python')
    for name, f in forks:  # before the server starts: CPython's, forked from here, inherits it
        if f is not None:  # (it unpickles a fork's proxy with the fork, which then connects back)
            f[0].current_process().authkey = harness.DEFAULT_AUTHKEY
    with harness.server() as srv:
        for name, f in forks:
            if f is None:
                continue
            mp, managers = f
            mp.current_process().authkey = srv.authkey
            m = managers.SyncManager(address=srv.address, authkey=srv.authkey)
            m.connect()
            base = m._number_of_objects()
            sync_types(name, m)
            settle(m, base, '%s: objects back to %d after the sync types' % (name, base))
            nested(name, m)
            if name == 'multiprocess':
                if srv.backend == 'cpython':
                    harness.skip_part('multiprocess functions', "CPython's own server cannot unpickle "
                                      "dill's pickles of them (__builtin__.__main__)")
                else:
                    functions(srv, m)
            settle(m, base, '%s: objects back to %d' % (name, base))
    harness.done()


if __name__ == '__main__':
    main()
