"""Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Barrier and
Queue.shutdown through stock SyncManager proxies: every method, Python's
exceptions and messages, blocking with timeouts across processes, arrival
order, and what a client killed while holding a lock or waiting leaves behind.

Against CPython's server the reference for a message is what a local
threading object of this very interpreter says (the server runs it); against
shmgr it is Python 3.13's wording."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pickle  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import RemoteError, SyncManager  # noqa: E402

SHMGR = harness.BACKEND == 'shmgr'
PY = sys.version_info[:2]

# what shmgr exposes: the 3.14 superset, so that every client version finds what it calls
EXPOSED = {
    'Event': ('clear', 'is_set', 'set', 'wait'),
    'Lock': ('acquire', 'locked', 'release'),
    'RLock': ('acquire', 'locked', 'release'),
    'Semaphore': ('acquire', 'release'),
    'BoundedSemaphore': ('acquire', 'release'),
    'Condition': ('acquire', 'locked', 'notify', 'notify_all', 'release', 'wait'),
    'Barrier': ('__getattribute__', 'abort', 'reset', 'wait'),
}


# --------------------------------------------------------------------------
# Helpers

def local_exc(func):
    """What func (on a local threading object) raises, or None."""
    try:
        func()
    except Exception as e:
        return e
    return None


def want_exc(shmgr_exc, local):
    """The exception a remote call must raise: shmgr_exc (3.13's class and
    message) against shmgr, what local() raises here against CPython's server."""
    return shmgr_exc if SHMGR else local_exc(local)


def expect_exc(func, want, what):
    """func() must raise exactly want (same class, same args); want None: must
    not raise."""
    if want is None:
        try:
            func()
        except Exception as e:
            harness.fail('%s: raised %s: %s, want no exception' % (what, type(e).__name__, e))
        return
    e = harness.raises(Exception, func, what=what)
    if e is not None:
        harness.check(type(e) is type(want) and e.args == want.args,
                      '%s: got %s%r, want %s%r' % (what, type(e).__name__, e.args, type(want).__name__, want.args))


def expect_remote(func, want, what):
    """func() (a create or an unexposed method) must raise RemoteError whose
    text ends with the line Python prints for want; want None: no exception."""
    if want is None:
        try:
            func()
        except Exception as e:
            harness.fail('%s: raised %s: %s, want no exception' % (what, type(e).__name__, e))
        return
    e = harness.raises(RemoteError, func, what=what)
    if e is not None:
        line = '%s: %s' % (type(want).__name__, want)
        harness.check(line in str(e), '%s: RemoteError without %r: %s' % (what, line, e))


def timed(func, *args):
    t0 = time.time()
    try:
        r = func(*args)
    except Exception as e:
        r = e
    return r, time.time() - t0


def about(dt, secs, what, slack=2.0):
    harness.check(secs * 0.75 <= dt < secs + slack, '%s took %.3f s, want about %g' % (what, dt, secs))


def norm_repr(text):
    """A repr without what differs between two objects in the same state."""
    text = re.sub(r'0x[0-9a-f]+', '0x?', text)
    return re.sub(r'owner=\d+', 'owner=?', text)


def expect_repr(proxy, shmgr_text, local, what):
    """str(proxy) (the server's repr) is shmgr_text (3.13's, addresses as 0x?)
    against shmgr, or repr(local), an object in the same state, against CPython."""
    want = shmgr_text if SHMGR else norm_repr(repr(local))
    harness.eq(norm_repr(str(proxy)), want, what)


PRELUDE = r'''import sys, time, threading, harness
from multiprocessing.managers import SyncManager, Token
m = harness.sync_manager(harness.from_env())
def _proxy(typeid, ident):
    ptype = SyncManager._registry[typeid][-1]
    return ptype(Token(typeid, m.address, ident), 'pickle', manager=m, authkey=m._authkey)
objs = [_proxy(t, i) for t, i in zip(sys.argv[1::2], sys.argv[2::2])]
for _o in objs:
    str(_o)  # the connection is up before READY
def say(*a):
    print(*a)
    sys.stdout.flush()
def trap(f, *a):
    try:
        return f(*a)
    except Exception as e:
        return '%s%r' % (type(e).__name__, e.args)
say("READY")
'''


def child(srv, objs, body):
    """A child process with its own typed proxies `objs` to the given
    objects, which runs body (Python source) after printing READY."""
    args = []
    for o in objs:
        args += [o._token.typeid, o._token.id]
    c = harness.Child(srv, code=PRELUDE + body, args=args)
    c.expect('READY', 30)
    return c


def cond_waiters(c):
    """How many wait() calls are parked on a Condition proxy (from its repr)."""
    m = re.search(r', (\d+)\)>$', str(c))
    return int(m.group(1)) if m else -1


def settle():
    """Let a request a child just sent reach the server."""
    time.sleep(0.4)


# --------------------------------------------------------------------------
# The tests

def test_exposed(srv, m):
    for typeid, shmgr_exposed in sorted(EXPOSED.items()):
        ptype = SyncManager._registry[typeid][-1]
        harness.check(set(ptype._exposed_) <= set(shmgr_exposed),
                      '%s: this client (%s) calls %r, not all exposed by shmgr' % (typeid, ptype.__name__,
                                                                                  ptype._exposed_))
        args = (2,) if typeid == 'Barrier' else ()
        p = getattr(m, typeid)(*args)
        reply = harness.raw_call(srv, None, 'get_methods', (p._token,))
        want = shmgr_exposed if SHMGR else tuple(ptype._exposed_)
        harness.check(reply[0] == '#RETURN' and sorted(reply[1]) == sorted(want),
                      '%s exposed: got %r, want %r' % (typeid, reply, want))


def test_lock(srv, m):
    lk = m.Lock()
    local = threading.Lock()
    harness.eq(norm_repr(str(lk)), '<unlocked _thread.lock object at 0x?>', 'str(Lock) unlocked')
    harness.eq(lk.acquire(), True, 'Lock.acquire()')
    harness.eq(norm_repr(str(lk)), '<locked _thread.lock object at 0x?>', 'str(Lock) locked')
    harness.eq(lk.acquire(False), False, 'Lock.acquire(False) when locked')
    r, dt = timed(lk.acquire, True, 0.3)
    harness.eq(r, False, 'Lock.acquire(True, 0.3) when locked')
    about(dt, 0.3, 'Lock.acquire(True, 0.3)')
    harness.eq(lk.acquire(True, 0), False, 'Lock.acquire(True, 0) when locked')
    harness.eq(lk.release(), None, 'Lock.release()')
    expect_exc(lk.release, RuntimeError('release unlocked lock'), 'Lock.release() when unlocked')
    with lk:
        harness.eq(lk.acquire(False), False, 'Lock held inside `with`')
    harness.eq(lk.acquire(True, 0), True, 'Lock free after `with`, acquire(True, 0)')
    lk.release()
    harness.eq(lk.acquire(timeout=5), True, 'Lock.acquire(timeout=5) when free')
    lk.release()

    # argument checks of _thread's acquire, through the wire
    cm = lk._callmethod
    expect_exc(lambda: cm('acquire', (False, 1)),
               want_exc(ValueError("can't specify a timeout for a non-blocking call"), lambda: local.acquire(False, 1)),
               'Lock.acquire(False, 1)')
    expect_exc(lambda: cm('acquire', (True, -2)),
               want_exc(ValueError('timeout value must be a non-negative number'), lambda: local.acquire(True, -2)),
               'Lock.acquire(True, -2)')
    expect_exc(lambda: cm('acquire', (True, 'x')),
               want_exc(TypeError("'str' object cannot be interpreted as an integer"),
                        lambda: local.acquire(True, 'x')),
               "Lock.acquire(True, 'x')")
    expect_exc(lambda: cm('acquire', (True, float('nan'))),
               want_exc(ValueError('Invalid value NaN (not a number)'), lambda: local.acquire(True, float('nan'))),
               'Lock.acquire(True, nan)')
    expect_exc(lambda: cm('acquire', (1, 2, 3)),
               want_exc(TypeError('acquire() takes at most 2 arguments (3 given)'), lambda: local.acquire(1, 2, 3)),
               'Lock.acquire(1, 2, 3)')
    expect_exc(lambda: cm('acquire', (), {'bogus': 1}),
               want_exc(TypeError("acquire() got an unexpected keyword argument 'bogus'"),
                        lambda: local.acquire(bogus=1)),
               'Lock.acquire(bogus=1)')
    harness.eq(cm('acquire', (False, -1)), True, 'Lock.acquire(False, -1): -1 is "no timeout"')
    expect_exc(lambda: cm('release', (1,)),
               want_exc(TypeError('lock.release() takes no arguments (1 given)'), lambda: local.release(1)),
               'Lock.release(1)')
    lk.release()

    # locked(): exposed by shmgr (3.14's AcquirerProxy calls it); CPython <= 3.13 servers
    # expose only acquire and release, whatever the object has
    if SHMGR:
        harness.eq(cm('locked'), False, 'Lock.locked() when free')
        lk.acquire()
        harness.eq(cm('locked'), True, 'Lock.locked() when held')
        lk.release()
    else:
        harness.note('note: Lock.locked() is not exposed by CPython %d.%d\'s server (AcquirerProxy '
                     'exposes acquire and release until 3.14): RemoteError expected' % PY)
        harness.raises(RemoteError, cm, 'locked', what='Lock.locked() on CPython\'s server')

    # contention between processes
    c = child(srv, [lk], 'lk = objs[0]\nlk.acquire()\nsay("HELD")\ntime.sleep(0.8)\nlk.release()\nsay("FREED")\n'
                         'time.sleep(30)\n')
    c.expect('HELD', 10)
    r, dt = timed(lk.acquire, True, 0.2)
    harness.eq(r, False, 'acquire(True, 0.2) while another process holds the Lock')
    r, dt = timed(lk.acquire)
    harness.eq(r, True, 'acquire() blocks until the other process releases')
    harness.check(0.2 <= dt < 5, 'acquire() blocked %.3f s for the other process (want about 0.6)' % dt)
    # a Lock may be released by another process than the one that took it
    c2 = child(srv, [lk], 'say("RELEASE", trap(objs[0].release))\n')
    harness.eq(c2.expect('RELEASE', 10), 'RELEASE None', 'another process releases this process\'s Lock')
    harness.eq(lk.acquire(False), True, 'Lock free after another process released it')
    c2.wait()
    c.kill()
    lk.release()
    # A takes it, B (this process) releases A's take and takes it itself; A dies: B's take
    # stands (A's was given back by B's release, so nothing is released on A's behalf)
    a = child(srv, [lk], 'say("HELD", objs[0].acquire())\ntime.sleep(30)\n')
    a.expect('HELD', 10)
    lk.release()
    harness.eq(lk.acquire(False), True, 'Lock taken by this process after it released the other\'s take')
    a.kill()
    time.sleep(0.3)
    box = harness.run_thread(lk.acquire, False)
    box['done'].wait(10)
    harness.eq(box.get('result'), False, 'Lock still held after the process whose take was released died')
    lk.release()

    # mutual exclusion between connections (threads: one connection each)
    inside = [0]
    bad = []

    def worker():
        for _ in range(20):
            with lk:
                inside[0] += 1
                if inside[0] != 1:
                    bad.append(inside[0])
                time.sleep(0.001)
                inside[0] -= 1

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    harness.check(not bad and not any(t.is_alive() for t in ts), 'Lock excludes 4 threads: %r' % bad)


def test_lock_order(srv, m):
    if not SHMGR:
        harness.skip_part('Lock waiters served in arrival order',
                          "CPython's Lock promises no order (the OS scheduler picks the thread)")
        return
    lk = m.Lock()
    lk.acquire()
    kids = []
    for i in range(3):
        kids.append(child(srv, [lk], 'lk = objs[0]\nlk.acquire()\nsay("GOT")\ntime.sleep(0.3)\nlk.release()\n'
                                     'time.sleep(30)\n'))
        settle()
    lk.release()
    for i, k in enumerate(kids):
        k.expect('GOT', 10)
        for later in kids[i + 1:]:
            harness.eq(later.poll_line(0.05), None, 'a later Lock waiter got it before waiter %d' % i)
    for k in kids:
        k.kill()


def test_rlock(srv, m):
    r = m.RLock()
    local = threading.RLock()
    harness.eq(norm_repr(str(r)), '<unlocked _thread.RLock object owner=? count=0 at 0x?>', 'str(RLock) free')
    harness.eq((r.acquire(), r.acquire(), r.acquire(False)), (True, True, True), 'RLock acquired 3 times')
    harness.eq(norm_repr(str(r)), '<locked _thread.RLock object owner=? count=3 at 0x?>', 'str(RLock) held 3 times')
    harness.eq((r.release(), r.release(), r.release()), (None, None, None), 'RLock released 3 times')
    expect_exc(r.release, RuntimeError('cannot release un-acquired lock'), 'RLock.release() when free')
    with r:
        with r:
            harness.eq(norm_repr(str(r)), '<locked _thread.RLock object owner=? count=2 at 0x?>', 'nested `with RLock`')
    expect_exc(lambda: r._callmethod('acquire', (False, 1)),
               want_exc(ValueError("can't specify a timeout for a non-blocking call"), lambda: local.acquire(False, 1)),
               'RLock.acquire(False, 1)')
    expect_exc(lambda: r._callmethod('release', (1,)),
               want_exc(TypeError('RLock.release() takes no arguments (1 given)'), lambda: local.release(1)),
               'RLock.release(1)')

    # another connection (a thread) does not own it
    r.acquire()
    box = harness.run_thread(lambda: (r.acquire(False), r.acquire(True, 0.2)))
    box['done'].wait(10)
    harness.eq(box.get('result'), (False, False), 'RLock held by another connection: acquire(False), acquire(True, 0.2)')
    box = harness.run_thread(r.release)
    box['done'].wait(10)
    e = box.get('error')
    harness.check(type(e) is RuntimeError and e.args == ('cannot release un-acquired lock',),
                  'RLock.release() by a thread that does not own it: %r' % (e,))
    if SHMGR:
        harness.eq(r._callmethod('locked'), True, 'RLock.locked() when held')
    else:
        harness.note('note: RLock.locked() is not exposed by CPython %d.%d\'s server (new in 3.14)' % PY)
    r.release()
    if SHMGR:
        harness.eq(r._callmethod('locked'), False, 'RLock.locked() when free')

    # across processes: B cannot release A's RLock, and waits for it
    c = child(srv, [r], 'r = objs[0]\nr.acquire(); r.acquire()\nsay("HELD")\ntime.sleep(0.8)\n'
                        'r.release(); r.release()\nsay("FREED")\ntime.sleep(30)\n')
    c.expect('HELD', 10)
    expect_exc(r.release, RuntimeError('cannot release un-acquired lock'), "releasing another process's RLock")
    harness.eq(r.acquire(True, 0.1), False, "acquire(True, 0.1) of another process's RLock")
    ok, dt = timed(r.acquire)
    harness.eq(ok, True, 'RLock.acquire() once the other process released both levels')
    c.expect('FREED', 10)
    c2 = child(srv, [r], 'say("RELEASE", trap(objs[0].release))\n')
    harness.eq(c2.expect('RELEASE', 10), "RELEASE RuntimeError('cannot release un-acquired lock',)",
               "another process releases our RLock")
    c2.wait()
    r.release()
    c.kill()


def test_semaphore(srv, m):
    s = m.Semaphore(2)
    local = threading.Semaphore(2)
    expect_repr(s, '<threading.Semaphore at 0x?: value=2>', threading.Semaphore(2), 'str(Semaphore(2))')
    harness.eq((s.acquire(), s.acquire(False)), (True, True), 'Semaphore(2) acquired twice')
    harness.eq(s.acquire(False), False, 'Semaphore at 0: acquire(False)')
    r, dt = timed(s.acquire, True, 0.3)
    harness.eq(r, False, 'Semaphore at 0: acquire(True, 0.3)')
    about(dt, 0.3, 'Semaphore acquire(True, 0.3)')
    harness.eq(s.acquire(True, 0), False, 'Semaphore at 0: acquire(True, 0)')
    harness.eq(s.acquire(True, -1), False, 'Semaphore at 0: acquire(True, -1) (Python: no wait)')
    expect_exc(lambda: s.acquire(False, 1),
               want_exc(ValueError("can't specify timeout for non-blocking acquire"), lambda: local.acquire(False, 1)),
               'Semaphore.acquire(False, 1)')
    expect_exc(lambda: s.acquire(True, 'x'),
               want_exc(TypeError("unsupported operand type(s) for +: 'float' and 'str'"),
                        lambda: threading.Semaphore(0).acquire(True, 'x')),
               "Semaphore.acquire(True, 'x') at 0")
    s.release()
    harness.eq(s.acquire(True, 'x'), True, "Semaphore.acquire(True, 'x') when it need not wait")
    s.release()
    s.release()
    if PY >= (3, 9) or SHMGR:
        harness.eq(s._callmethod('release', (3,)), None, 'Semaphore.release(3)')
        harness.eq([s.acquire(False) for _ in range(6)], [True] * 5 + [False], 'Semaphore at 5 after release(3)')
        expect_exc(lambda: s._callmethod('release', (0,)), ValueError('n must be one or more'), 'Semaphore.release(0)')
        expect_exc(lambda: s._callmethod('release', ('x',)),
                   want_exc(TypeError("'<' not supported between instances of 'str' and 'int'"),
                            lambda: local.release('x')),
                   "Semaphore.release('x')")
        for _ in range(5):
            s.release()
    else:
        harness.skip_part('Semaphore.release(n)', 'new in Python 3.9; this is %d.%d' % PY)
    expect_remote(lambda: m.Semaphore(-1),
                  want_exc(ValueError('semaphore initial value must be >= 0'), lambda: threading.Semaphore(-1)),
                  'Semaphore(-1)')
    harness.raises(RemoteError, s._callmethod, 'locked', what='Semaphore.locked() (not exposed)')

    # blocked acquires in other processes are served in arrival order
    z = m.Semaphore(0)
    kids = []
    for i in range(3):
        kids.append(child(srv, [z], 'say("GOT", objs[0].acquire(True, 20))\ntime.sleep(30)\n'))
        settle()
    for i, k in enumerate(kids):
        z.release()
        harness.eq(k.expect('GOT', 10), 'GOT True', 'Semaphore waiter %d woken by a release' % i)
        for later in kids[i + 1:]:
            harness.eq(later.poll_line(0.05), None, 'a later Semaphore waiter got it before waiter %d' % i)
    for k in kids:
        k.kill()

    b = m.BoundedSemaphore(1)
    expect_repr(b, '<threading.BoundedSemaphore at 0x?: value=1/1>', threading.BoundedSemaphore(1),
                'str(BoundedSemaphore(1))')
    expect_exc(b.release, ValueError('Semaphore released too many times'), 'BoundedSemaphore.release() at its bound')
    harness.eq(b.acquire(), True, 'BoundedSemaphore.acquire()')
    harness.eq(b.acquire(False), False, 'BoundedSemaphore at 0: acquire(False)')
    harness.eq(b.release(), None, 'BoundedSemaphore.release()')
    expect_exc(b.release, ValueError('Semaphore released too many times'), 'BoundedSemaphore released twice')
    if PY >= (3, 9) or SHMGR:
        b2 = m.BoundedSemaphore(3)
        b2.acquire()
        expect_exc(lambda: b2._callmethod('release', (2,)), ValueError('Semaphore released too many times'),
                   'BoundedSemaphore(3).release(2) after one acquire')
        harness.eq(b2._callmethod('release', (1,)), None, 'BoundedSemaphore(3).release(1) after one acquire')


def test_event(srv, m):
    e = m.Event()
    expect_repr(e, '<threading.Event at 0x?: unset>', threading.Event(), 'str(Event) unset')
    harness.eq(e.is_set(), False, 'Event.is_set() fresh')
    r, dt = timed(e.wait, 0.3)
    harness.eq(r, False, 'Event.wait(0.3) unset')
    about(dt, 0.3, 'Event.wait(0.3)')
    harness.eq(e.wait(0), False, 'Event.wait(0) unset')
    harness.eq(e.wait(-1), False, 'Event.wait(-1) unset')
    expect_exc(lambda: e.wait('x'),
               want_exc(TypeError("'>' not supported between instances of 'str' and 'int'"),
                        lambda: threading.Event().wait('x')),
               "Event.wait('x')")
    kids = [child(srv, [e], 'say("WOKE", objs[0].wait())\ntime.sleep(30)\n') for _ in range(2)]
    timer = child(srv, [e], 'say("TIMED", objs[0].wait(0.3))\n')
    harness.eq(timer.expect('TIMED', 10), 'TIMED False', 'Event.wait(0.3) in another process times out')
    for k in kids:
        harness.eq(k.poll_line(0.1), None, 'Event.wait() returns before set()')
    harness.eq(e.set(), None, 'Event.set()')
    for i, k in enumerate(kids):
        harness.eq(k.expect('WOKE', 10), 'WOKE True', 'Event.wait() in process %d woken by set()' % i)
    harness.eq((e.is_set(), e.wait(), e.wait(0)), (True, True, True), 'set Event: is_set(), wait(), wait(0)')
    ev = threading.Event()
    ev.set()
    expect_repr(e, '<threading.Event at 0x?: set>', ev, 'str(Event) set')
    harness.eq(e.clear(), None, 'Event.clear()')
    harness.eq((e.is_set(), e.wait(0.05)), (False, False), 'cleared Event')
    for k in kids:
        k.kill()
    timer.wait()


def test_condition(srv, m):
    c = m.Condition()
    expect_repr(c, '<Condition(<unlocked _thread.RLock object owner=? count=0 at 0x?>, 0)>', threading.Condition(),
                'str(Condition) fresh')
    expect_exc(c.wait, RuntimeError('cannot wait on un-acquired lock'), 'Condition.wait() without the lock')
    expect_exc(c.notify, RuntimeError('cannot notify on un-acquired lock'), 'Condition.notify() without the lock')
    expect_exc(c.notify_all, RuntimeError('cannot notify on un-acquired lock'), 'Condition.notify_all() without it')
    expect_exc(c.release, RuntimeError('cannot release un-acquired lock'), 'Condition.release() without the lock')
    with c:
        r, dt = timed(c.wait, 0.3)
        harness.eq(r, False, 'Condition.wait(0.3) not notified')
        about(dt, 0.3, 'Condition.wait(0.3)')
        harness.eq(c.wait(0), False, 'Condition.wait(0)')
        harness.eq(c.notify(), None, 'Condition.notify() with nobody waiting')
        harness.eq(c.notify_all(), None, 'Condition.notify_all() with nobody waiting')
        harness.eq(c.acquire(False), True, 'Condition.acquire(False) by its owner (an RLock)')
        c.release()
        if SHMGR:
            harness.eq(c._callmethod('locked'), True, 'Condition.locked() when held (3.14)')
    if SHMGR:
        harness.eq(c._callmethod('locked'), False, 'Condition.locked() when free (3.14)')
    else:
        harness.note('note: Condition.locked() is not exposed by CPython %d.%d\'s server (new in 3.14)' % PY)
    expect_exc(c.release, RuntimeError('cannot release un-acquired lock'), 'Condition released after `with`')

    # notify wakes the longest waiter of another process; notify_all the rest
    body = ('c = objs[0]\nwith c:\n    say("WAITING")\n    r = c.wait(20)\n    say("WOKE", r)\n'
            '    time.sleep(0.2)\nsay("OUT")\ntime.sleep(30)\n')
    kids = []
    for i in range(3):
        kids.append(child(srv, [c], body))
        kids[-1].expect('WAITING', 10)
        harness.wait_until(lambda: cond_waiters(c) == i + 1, 5)
    harness.eq(cond_waiters(c), 3, 'three Condition waiters parked')
    with c:
        c.notify()
        time.sleep(0.3)
        harness.eq(kids[0].poll_line(0), None, 'a notified waiter answers only once it has the lock again')
    harness.eq(kids[0].expect('WOKE', 10), 'WOKE True', 'notify() wakes the first waiter')
    for k in kids[1:]:
        harness.eq(k.poll_line(0.2), None, 'notify() wakes only one waiter')
    kids[0].expect('OUT', 10)
    with c:
        c.notify_all()
    for i, k in enumerate(kids[1:]):
        harness.eq(k.expect('WOKE', 10), 'WOKE True', 'notify_all() wakes waiter %d' % (i + 1))
    for k in kids[1:]:
        k.expect('OUT', 10)  # out of `with c` (CPython would keep a dead holder's lock)
    for k in kids:
        k.kill()

    # notify(n)
    kids = []
    for i in range(3):
        kids.append(child(srv, [c], body))
        kids[-1].expect('WAITING', 10)
        harness.wait_until(lambda: cond_waiters(c) == i + 1, 5)
    with c:
        c._callmethod('notify', (2,))
    harness.eq([k.expect('WOKE', 10) for k in kids[:2]], ['WOKE True'] * 2, 'notify(2) wakes the first two')
    harness.eq(kids[2].poll_line(0.3), None, 'notify(2) leaves the third waiting')
    with c:
        c._callmethod('notify', (5,))
    harness.eq(kids[2].expect('WOKE', 10), 'WOKE True', 'notify(5) with one waiter')
    for k in kids:
        k.expect('OUT', 10)  # out of `with c` (CPython would keep a dead holder's lock)
        k.kill()

    # wait() gives up every level of the RLock and takes them all back
    c.acquire()
    c.acquire()
    box = {}

    def waiter():
        box['r'] = c.wait(20)

    # the same connection cannot both wait and notify: the waiter is this thread's
    # connection only if it runs here, so the notifier is another thread
    def notifier():
        ok = c.acquire(True, 10)
        c.notify()
        c.release()
        return ok

    nb = harness.run_thread(notifier)
    waiter()
    nb['done'].wait(10)
    harness.eq(nb.get('result'), True, 'another connection acquires the Condition while its owner waits')
    harness.eq(box.get('r'), True, 'wait() notified by another connection')
    harness.eq((c.release(), c.release()), (None, None), 'both RLock levels held again after wait()')
    expect_exc(c.release, RuntimeError('cannot release un-acquired lock'), 'no third level after wait()')

    # a waiter whose time is up answers only once it holds the lock again
    c.acquire()
    k = child(srv, [c], 'c = objs[0]\nc.acquire()\nsay("GOT")\ntime.sleep(1.0)\nc.release()\nsay("FREED")\n'
                        'time.sleep(30)\n')
    settle()
    r, dt = timed(c.wait, 0.2)
    harness.eq(r, False, 'Condition.wait(0.2) times out')
    harness.check(0.8 <= dt < 5, 'the timed-out wait(0.2) returned after %.3f s: it waits for the lock, which '
                  'another process holds for 1 s' % dt)
    harness.eq(k.expect('FREED', 10), 'FREED', 'the other process had the lock meanwhile')
    harness.eq(c.release(), None, 'the lock is held again after a timed-out wait()')
    k.kill()

    # wait_for (the proxy loops on wait)
    flag = m.Event()
    w = child(srv, [c, flag], 'c, flag = objs\nwith c:\n    say("WAITING")\n'
                              '    say("DONE", c.wait_for(flag.is_set, 20))\n')
    w.expect('WAITING', 10)
    harness.wait_until(lambda: cond_waiters(c) == 1, 5)
    with c:
        c.notify_all()  # woken, predicate still false: waits again
    time.sleep(0.3)
    harness.eq(w.poll_line(0), None, 'wait_for() waits again while its predicate is false')
    harness.wait_until(lambda: cond_waiters(c) == 1, 5)
    flag.set()
    with c:
        c.notify_all()
    harness.eq(w.expect('DONE', 10), 'DONE True', 'wait_for() returns once the predicate holds')
    w.wait()
    with c:
        r, dt = timed(c.wait_for, lambda: False, 0.3)
    harness.eq(r, False, 'wait_for(false predicate, 0.3)')
    about(dt, 0.3, 'wait_for(false predicate, 0.3)')

    if SHMGR:
        e = harness.raises(RemoteError, m.Condition, m.Lock(), what='Condition(Lock proxy)')
        harness.check(e is not None and 'makes its own lock' in str(e), 'Condition(lock) refused, saying why: %s' % e)
    else:
        harness.skip_part('Condition(lock) refused', "CPython's server makes a Condition over the Lock given")
    harness.eq(m.Condition(None).acquire(False), True, 'Condition(None) makes its own lock')


def test_barrier(srv, m):
    b = m.Barrier(3)
    harness.eq((b.parties, b.n_waiting, b.broken), (3, 0, False), 'Barrier(3) parties, n_waiting, broken')
    expect_repr(b, '<threading.Barrier at 0x?: waiters=0/3>', threading.Barrier(3), 'str(Barrier(3))')
    expect_exc(lambda: b._callmethod('__getattribute__', ('x',)),
               AttributeError("'Barrier' object has no attribute 'x'"), "Barrier.__getattribute__('x')")
    body = 'b = objs[0]\nsay("INDEX", trap(b.wait, 20))\ntime.sleep(30)\n'
    kids = []
    for i in range(2):
        kids.append(child(srv, [b], body))
        harness.wait_until(lambda: b.n_waiting == i + 1, 5)
    harness.eq(b.n_waiting, 2, 'Barrier.n_waiting with two processes waiting')
    if SHMGR or 'waiters=' in repr(threading.Barrier(3)):
        harness.check('waiters=2/3>' in str(b), 'str(Barrier) with 2 of 3 waiting: %s' % b)
    mine = b.wait(20)
    idx = [mine] + [int(k.expect('INDEX', 10).split()[1]) for k in kids]
    harness.eq(sorted(idx), [0, 1, 2], 'Barrier(3) wait() indices of 3 processes')
    harness.eq(mine, 2, 'the last party to arrive gets index parties-1')
    harness.eq((b.n_waiting, b.broken), (0, False), 'Barrier after it tripped')
    for k in kids:
        k.kill()

    # a timeout breaks it for every waiter
    b = m.Barrier(3)
    k = child(srv, [b], body)
    harness.wait_until(lambda: b.n_waiting == 1, 5)
    r, dt = timed(b.wait, 0.3)
    harness.check(type(r) is threading.BrokenBarrierError and r.args == (), 'Barrier.wait(0.3) times out: %r' % (r,))
    about(dt, 0.3, 'Barrier.wait(0.3)')
    harness.eq(k.expect('INDEX', 10), 'INDEX BrokenBarrierError()', 'the other waiter gets BrokenBarrierError')
    harness.eq((b.broken, b.n_waiting), (True, 0), 'broken after a timeout')
    r, dt = timed(b.wait)
    harness.check(type(r) is threading.BrokenBarrierError and dt < 2, 'wait() on a broken Barrier: %r' % (r,))
    local = threading.Barrier(3)
    local.abort()
    expect_repr(b, '<threading.Barrier at 0x?: broken>', local, 'str(broken Barrier)')
    harness.eq(b.reset(), None, 'Barrier.reset()')
    harness.eq(b.broken, False, 'not broken after reset()')
    k.kill()

    # abort and reset while a process waits
    b = m.Barrier(2)
    for action, broken in (('abort', True), ('reset', False)):
        k = child(srv, [b], body)
        harness.wait_until(lambda: b.n_waiting == 1, 5)
        harness.eq(getattr(b, action)(), None, 'Barrier.%s()' % action)
        harness.eq(k.expect('INDEX', 10), 'INDEX BrokenBarrierError()', '%s() breaks the waiting process out' % action)
        harness.eq(b.broken, broken, 'Barrier.broken after %s() with a waiter' % action)
        k.kill()
    k = child(srv, [b], body)
    harness.wait_until(lambda: b.n_waiting == 1, 5)
    harness.eq(b.wait(10), 1, 'Barrier(2) works again after reset()')
    harness.eq(k.expect('INDEX', 10), 'INDEX 0', 'first arrival after reset() gets 0')
    k.kill()

    # the default timeout, a zero timeout, the last arrival that does not wait
    b = m.Barrier(2, timeout=0.3)
    r, dt = timed(b.wait)
    harness.check(type(r) is threading.BrokenBarrierError, 'Barrier(2, timeout=0.3).wait(): %r' % (r,))
    about(dt, 0.3, 'Barrier default timeout')
    b = m.Barrier(2)
    r, dt = timed(b.wait, 0)
    harness.check(type(r) is threading.BrokenBarrierError and dt < 2, 'Barrier.wait(0): %r' % (r,))
    harness.eq(m.Barrier(1).wait(0), 0, 'Barrier(1).wait(0): the last party never waits')
    expect_exc(lambda: m.Barrier(2).wait('x'),
               want_exc(TypeError("unsupported operand type(s) for +: 'float' and 'str'"),
                        lambda: threading.Barrier(2).wait('x')),
               "Barrier.wait('x')")
    expect_remote(lambda: m.Barrier(0), want_exc(ValueError('parties must be > 0'), lambda: threading.Barrier(0)),
                  'Barrier(0)')
    if SHMGR:
        e = harness.raises(RemoteError, m.Barrier, 2, len, what='Barrier(2, action)')
        harness.check(e is not None and 'action' in str(e), 'Barrier action refused, saying why: %s' % e)
    else:
        harness.skip_part('Barrier action refused', "CPython's server runs the action")


def test_getvalue(m):
    for typeid, args, local in (('Lock', (), threading.Lock()), ('RLock', (), threading.RLock()),
                                ('Semaphore', (), threading.Semaphore()),
                                ('BoundedSemaphore', (), threading.BoundedSemaphore()),
                                ('Event', (), threading.Event()), ('Condition', (), threading.Condition()),
                                ('Barrier', (2,), threading.Barrier(2))):
        p = getattr(m, typeid)(*args)
        want = want_exc(TypeError("cannot pickle '%s' object" % ('_thread.RLock' if 'RLock' in typeid
                                                                 or typeid == 'Condition' else '_thread.lock')),
                        lambda: pickle.dumps(local))
        e = harness.raises(RemoteError, p._getvalue, what='%s._getvalue()' % typeid)
        if e is not None:
            harness.check('Unserializable' in str(e) and str(want) in str(e),
                          '%s._getvalue(): %r, want #UNSERIALIZABLE naming %r' % (typeid, str(e), str(want)))


def test_killed_holders():
    """lock_policy = "release" (shmgr only): what a killed client held is given back."""
    if not SHMGR:
        harness.skip_part('a client killed while holding a lock',
                          "CPython's server keeps what a dead client held forever (its handler thread "
                          "owns the lock); shmgr's lock_policy \"release\" gives it back")
        harness.skip_part('a killed Condition waiter and notify()',
                          "CPython's server leaves the dead client's thread waiting, and notify() goes to it")
        return
    with harness.server(harness.conf('release_locks.lua')) as srv:
        killed_holders(srv, harness.sync_manager(srv))


def killed_holders(srv, m):
    hold = 'say("HELD", %s)\ntime.sleep(60)\n'
    for typeid, args, take in (('Lock', (), 'objs[0].acquire()'),
                               ('RLock', (), '[objs[0].acquire(), objs[0].acquire()]'),
                               ('Semaphore', (1,), 'objs[0].acquire()'),
                               ('BoundedSemaphore', (1,), 'objs[0].acquire()'),
                               ('Condition', (), '[objs[0].acquire(), objs[0].acquire()]')):
        p = getattr(m, typeid)(*args)
        k = child(srv, [p], hold % take)
        k.expect('HELD', 10)
        harness.eq(p.acquire(False), False, '%s held by the child' % typeid)
        box = harness.run_thread(p.acquire, True, 20)
        time.sleep(0.3)
        k.kill()
        harness.check(box['done'].wait(10) and box.get('result') is True,
                      '%s: a blocked acquire() gets it when the holder is killed: %r' % (typeid, box))

    # a killed waiter does not swallow a notify meant for another
    c = m.Condition()
    body = 'c = objs[0]\nwith c:\n    say("WAITING")\n    say("WOKE", c.wait(20))\ntime.sleep(30)\n'
    dead = child(srv, [c], body)
    dead.expect('WAITING', 10)
    harness.wait_until(lambda: cond_waiters(c) == 1, 5)
    live = child(srv, [c], body)
    live.expect('WAITING', 10)
    harness.wait_until(lambda: cond_waiters(c) == 2, 5)
    dead.kill()
    harness.wait_until(lambda: cond_waiters(c) == 1, 5)
    harness.eq(cond_waiters(c), 1, 'the killed waiter left the Condition')
    with c:
        c.notify()
    harness.eq(live.expect('WOKE', 10), 'WOKE True', 'notify() goes to the waiter still alive')
    live.kill()

    # a killed Barrier waiter takes its arrival back
    b = m.Barrier(2)
    dead = child(srv, [b], 'say("INDEX", objs[0].wait(30))\n')
    harness.wait_until(lambda: b.n_waiting == 1, 5)
    dead.kill()
    harness.wait_until(lambda: b.n_waiting == 0, 5)
    harness.eq(b.n_waiting, 0, 'a killed Barrier waiter no longer counts')
    k = child(srv, [b], 'say("INDEX", objs[0].wait(30))\n')
    harness.wait_until(lambda: b.n_waiting == 1, 5)
    harness.eq(b.wait(10), 1, 'the Barrier trips with the live parties')
    harness.eq(k.expect('INDEX', 10), 'INDEX 0', 'the live waiter gets index 0')
    k.kill()


def test_queue_shutdown(srv, m):
    q = m.Queue()
    # a blocking call's timeout is checked even when it need not wait (queue.py's order)
    q.put(1)
    e = harness.raises(ValueError, q.get, True, -1, what='Queue.get(True, -1) with an item')
    if e is not None:
        harness.eq(e.args, ("'timeout' must be a non-negative number",), 'Queue.get(True, -1) message')
    harness.eq(q.get(False, -1), 1, 'Queue.get(False, -1): no timeout check when not blocking')
    b = m.Queue(2)
    harness.raises(ValueError, b.put, 1, True, -1, what='Queue(2).put(x, True, -1)')
    harness.eq(q.put(2, True, -1), None, 'Queue().put(x, True, -1): unbounded, no timeout check')
    q.get()

    if PY < (3, 13):
        harness.skip_part('Queue.shutdown', 'new in Python 3.13 (queue.ShutDown); this client is %d.%d' % PY)
        return
    ShutDown = queue.ShutDown
    q.put('a')
    q.put('b')
    getter_q = m.Queue()
    g = child(srv, [getter_q], 'say("GOT", trap(objs[0].get, True, 20))\n')
    full = m.Queue(1)
    full.put('x')
    p = child(srv, [full], 'say("PUT", trap(objs[0].put, "y", True, 20))\n')
    settle()
    harness.eq(getter_q.shutdown(), None, 'shutdown() of a queue with a parked getter')
    harness.eq(g.expect('GOT', 10), 'GOT ShutDown()', 'a parked get() raises ShutDown')
    full.shutdown()
    harness.eq(p.expect('PUT', 10), 'PUT ShutDown()', 'a parked put() raises ShutDown')
    harness.eq(full.get(), 'x', 'get() after shutdown() while items remain')
    harness.raises(ShutDown, full.get_nowait, what='get_nowait() of an empty queue after shutdown()')
    g.wait()
    p.wait()

    q.shutdown()
    e = harness.raises(ShutDown, q.put, 'c', what='put() after shutdown()')
    if e is not None:
        harness.check(type(e) is ShutDown and e.args == (), 'exactly queue.ShutDown(): %r' % e)
    harness.raises(ShutDown, q.put_nowait, 'c', what='put_nowait() after shutdown()')
    harness.eq([q.get(), q.get(False)], ['a', 'b'], 'items left are still got after shutdown()')
    harness.raises(ShutDown, q.get, what='get() of an empty queue after shutdown()')
    harness.raises(ShutDown, q.get, True, 5, what='get(True, 5) of an empty queue after shutdown()')

    jq = m.JoinableQueue()
    for i in range(3):
        jq.put(i)
    harness.eq(jq.get(), 0, 'JoinableQueue get before an immediate shutdown')
    box = harness.run_thread(jq.join)
    harness.check(not box['done'].wait(0.3), 'join() waits with 3 tasks unfinished')
    jq.shutdown(immediate=True)
    harness.eq(jq.qsize(), 0, 'shutdown(immediate=True) empties the queue')
    harness.check(not box['done'].wait(0.3), 'join() still waits: one task was got and is not done')
    harness.raises(ShutDown, jq.get, what='get() after shutdown(immediate=True)')
    jq.task_done()
    harness.check(box['done'].wait(5) and 'error' not in box, 'join() returns after the last task_done(): %r' % box)
    harness.raises(ValueError, jq.task_done, what='task_done() after immediate shutdown drained the rest')


def test_keep_policy(srv, m):
    """The default lock_policy "keep": what a killed client held stays held, as on CPython's
    server, and a Lock or Semaphore may still be released by another client, as Python
    lets any thread release them (CPython's own test_lock and test_bounded_semaphore do)."""
    lk, rl, sem = m.Lock(), m.RLock(), m.BoundedSemaphore(2)
    k = child(srv, [lk, rl, sem], 'objs[0].acquire()\nobjs[1].acquire()\nobjs[1].acquire()\n'
                                  'objs[2].acquire()\nsay("HELD")\ntime.sleep(60)\n')
    k.expect('HELD', 10)
    kept = srv.log().count('kept (lock_policy = "keep")') if SHMGR else 0
    k.kill()
    if SHMGR:
        harness.wait_until(lambda: srv.log().count('kept (lock_policy = "keep")') >= kept + 3, 10)
        harness.eq(srv.log().count('kept (lock_policy = "keep")') - kept, 3, 'the log says each was kept')
    harness.eq(lk.acquire(True, 0.5), False, "keep: the killed client's Lock is still held")
    harness.eq(lk.release(), None, 'keep: another client releases the Lock')
    harness.eq(lk.acquire(False), True, 'keep: and then takes it')
    lk.release()
    harness.eq(rl.acquire(True, 0.5), False, "keep: the killed client's RLock is still held")
    e = harness.raises(RuntimeError, rl.release, what="keep: release() of a dead client's RLock")
    if e is not None:
        harness.eq(e.args, ('cannot release un-acquired lock',), 'keep: RLock release message')
    harness.eq([sem.acquire(False), sem.acquire(False)], [True, False], "keep: one unit of the semaphore is held")
    harness.eq([sem.release(), sem.release()], [None, None], 'keep: both units released by another client')
    harness.raises(ValueError, sem.release, what='keep: a third release of BoundedSemaphore(2)')


def main():
    test_killed_holders()
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        test_exposed(srv, m)
        test_lock(srv, m)
        test_lock_order(srv, m)
        test_rlock(srv, m)
        test_semaphore(srv, m)
        test_event(srv, m)
        test_condition(srv, m)
        test_barrier(srv, m)
        test_getvalue(m)
        test_keep_policy(srv, m)
        test_queue_shutdown(srv, m)
        lk = m.Lock()
        harness.eq(lk.acquire(False), True, 'server serves after all of the above')
    harness.done()


if __name__ == '__main__':
    main()
