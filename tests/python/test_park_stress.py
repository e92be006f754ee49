"""A randomized stress test of every parked-call path, checked against Python's own objects.

Each step is a scenario on a fresh set of objects (a Hub of tests/python/conf/park_stress.lua
holds one of each built-in and Lua methods that wait on one and wake another): Barrier passes,
timeouts, abort/reset, Event, Lock/RLock/(Bounded)Semaphore, Condition, Queue/JoinableQueue
get/put/join/task_done/shutdown, and Lua methods whose wait times out and then wakes others.
Every operation is issued by an actor, a thread with its own connections, and the same
operation is applied to a model: the same Hub written in Python (the reference server's
type too) over threading/queue objects, driven by actor threads of its own, in lock step.
After an operation the driver waits until the server has handled it (on shmgr: its request
was sent, then two round trips on another connection) and until the model's thread has
answered or is waiting, then compares what each side answered, or that both still wait.

shmgr-only parts (skipped, with a note, against CPython's server):
- timeouts that end in one loop turn: the server is stopped (SIGSTOP) while deadlines pass
  and a wake-up is sent, then continued; each answer must be one Python could give;
- clients (child processes) killed while parked or while holding a lock: shmgr takes a dead
  client's call back (docs/differences.md, "Where shmgr differs"), which the model does by not running it;
- FIFO order of wake-ups where Python leaves the order open (which Lock waiter wins).

After every step the server must be alive and number_of_objects() back at its baseline.
SHMGR_STRESS_SEED replays a run (the seed is printed first); SHMGR_STRESS_STEPS sets the
number of steps, SHMGR_STRESS_SECONDS bounds the time (the steps after it are not run),
SHMGR_STRESS_ONLY=sc_event (or another sc_ function) runs only that scenario."""

from __future__ import print_function

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import gc  # noqa: E402
import pickle  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import OrderedDict  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402
from multiprocessing.managers import (AcquirerProxy, AutoProxy, BarrierProxy, ConditionProxy,  # noqa: E402
                                      EventProxy, SyncManager)

SHMGR = harness.BACKEND == 'shmgr'
PY = sys.version_info[:2]
SHORT = 0.2          # a timeout meant to expire
LONG = 60.0          # a timeout meant to be woken first
DEADLINE = 20.0      # longest wait for any answer before the step fails
HUB_TYPES = {'HubEvent': EventProxy, 'HubLock': AcquirerProxy, 'HubRLock': AcquirerProxy,
             'HubSemaphore': AcquirerProxy, 'HubQueue': AutoProxy, 'HubCondition': ConditionProxy,
             'HubBarrier': BarrierProxy}
HUB_M2T = {'event': 'HubEvent', 'lock': 'HubLock', 'rlock': 'HubRLock', 'semaphore': 'HubSemaphore',
           'queue': 'HubQueue', 'condition': 'HubCondition', 'barrier': 'HubBarrier'}


class StepFailed(Exception):
    """A step cannot go on (an answer never came): the run stops after reporting it."""


# --------------------------------------------------------------------------
# The model: the Python twin of park_stress.lua's Hub (CPython's server runs it too)

if hasattr(queue.Queue, 'shutdown'):
    ModelQueue = queue.Queue
else:
    class ShutDown(Exception):
        """queue.ShutDown of Python 3.13."""

    class ModelQueue(queue.Queue):
        """Python 3.13's queue.Queue (put, get and shutdown as 3.13 has them) on an older
        Python: shmgr's Queue has shutdown for every client, and the model must too."""

        def __init__(self, maxsize=0):
            queue.Queue.__init__(self, maxsize)
            self.is_shutdown = False

        def put(self, item, block=True, timeout=None):
            with self.not_full:
                if self.is_shutdown:
                    raise ShutDown
                if self.maxsize > 0:
                    if not block:
                        if self._qsize() >= self.maxsize:
                            raise queue.Full
                    elif timeout is None:
                        while self._qsize() >= self.maxsize:
                            self.not_full.wait()
                            if self.is_shutdown:
                                raise ShutDown
                    else:
                        endtime = time.monotonic() + timeout
                        while self._qsize() >= self.maxsize:
                            remaining = endtime - time.monotonic()
                            if remaining <= 0.0:
                                raise queue.Full
                            self.not_full.wait(remaining)
                            if self.is_shutdown:
                                raise ShutDown
                self._put(item)
                self.unfinished_tasks += 1
                self.not_empty.notify()

        def get(self, block=True, timeout=None):
            with self.not_empty:
                if self.is_shutdown and not self._qsize():
                    raise ShutDown
                if not block:
                    if not self._qsize():
                        raise queue.Empty
                elif timeout is None:
                    while not self._qsize():
                        self.not_empty.wait()
                        if self.is_shutdown and not self._qsize():
                            raise ShutDown
                else:
                    endtime = time.monotonic() + timeout
                    while not self._qsize():
                        remaining = endtime - time.monotonic()
                        if remaining <= 0.0:
                            raise queue.Empty
                        self.not_empty.wait(remaining)
                        if self.is_shutdown and not self._qsize():
                            raise ShutDown
                item = self._get()
                self.not_full.notify()
                return item

        def shutdown(self, immediate=False):
            with self.mutex:
                self.is_shutdown = True
                if immediate:
                    while self._qsize():
                        self._get()
                        if self.unfinished_tasks > 0:
                            self.unfinished_tasks -= 1
                    self.all_tasks_done.notify_all()
                self.not_empty.notify_all()
                self.not_full.notify_all()

class PyHub(object):
    def __init__(self, parties, maxsize, semvalue, bounded):
        self._ev = threading.Event()
        self._lk = threading.Lock()
        self._rl = threading.RLock()
        self._sem = (threading.BoundedSemaphore if bounded else threading.Semaphore)(semvalue)
        self._q = ModelQueue(maxsize)
        self._cv = threading.Condition()
        self._bar = threading.Barrier(parties)

    def event(self): return self._ev
    def lock(self): return self._lk
    def rlock(self): return self._rl
    def semaphore(self): return self._sem
    def queue(self): return self._q
    def condition(self): return self._cv
    def barrier(self): return self._bar

    def _cond_wait(self, t):
        with self._cv:
            return self._cv.wait(t)

    def _cond_notify_all(self):
        with self._cv:
            self._cv.notify_all()

    def wait_then(self, op, t, wake):
        ops = {'ev_wait': lambda: self._ev.wait(t),
               'lock_acquire': lambda: self._lk.acquire(True, -1 if t is None else t),
               'sem_acquire': lambda: self._sem.acquire(True, t),
               'sem_acquire2': lambda: (self._sem.acquire(), self._sem.acquire(True, t))[1],
               'q_get': lambda: self._q.get(True, t),
               'q_put': lambda: self._q.put('lua', True, t),
               'bar_wait': lambda: self._bar.wait(t),
               'bar_wait2': lambda: (self._bar.wait(), self._bar.wait(t))[1],
               'ev_wait3': lambda: (self._ev.wait(t), self._ev.clear(), self._ev.wait(t), self._ev.clear(),
                                    self._ev.wait(t))[4],
               'cond_wait': lambda: self._cond_wait(t),
               'cond_notify': lambda: self._cond_notify_all() or True}
        wakes = {'ev_set': self._ev.set, 'lock_release': self._lk.release, 'sem_release': self._sem.release,
                 'q_put': lambda: self._q.put('woken', False), 'bar_abort': self._bar.abort,
                 'cond_notify_all': self._cond_notify_all}
        try:
            r = ops[op]()
        except Exception as e:
            r = '!' + type(e).__name__
        if wake:
            wakes[wake]()
        return r


def py_setup(M):
    M.register('Hub', PyHub, method_to_typeid=HUB_M2T)
    for t, p in HUB_TYPES.items():
        M.register(t, None, p, create_method=False)


class StressManager(SyncManager):
    pass


StressManager.register('Hub', method_to_typeid=HUB_M2T)
for _t, _p in HUB_TYPES.items():
    StressManager.register(_t, proxytype=_p, create_method=False)


# --------------------------------------------------------------------------
# Actors

_tls = threading.local()
_orig_send = Connection.send


def _send(self, obj):
    """Connection.send that tells the actor when its request is on the wire."""
    _orig_send(self, obj)
    ev = getattr(_tls, 'sent', None)
    if ev is not None and isinstance(obj, tuple) and len(obj) == 4 and obj[1] not in (
            'accept_connection', 'incref', 'decref'):
        ev.set()


Connection.send = _send


def result_of(fn):
    """('ok', value) or ('err', the exception's class name)."""
    try:
        return ('ok', fn())
    except AttributeError as e:
        # a client before 3.13 cannot load queue.ShutDown: it raises this instead
        return ('err', 'ShutDown' if "'ShutDown'" in str(e) else 'AttributeError')
    except Exception as e:
        return ('err', type(e).__name__)


class Actor(object):
    """A thread that runs one call at a time (its proxies' connections are its own)."""

    def __init__(self, name):
        self.name = name
        self.jobs = queue.Queue()
        self.box = None
        t = threading.Thread(target=self._loop, name=name)
        t.daemon = True
        t.start()

    def _loop(self):
        while True:
            fn, box = self.jobs.get()
            if fn is None:
                return
            _tls.sent = box['sent']
            box['result'] = result_of(fn)
            del fn   # its proxies must not outlive the step
            _tls.sent = None
            box['sent'].set()
            box['done'].set()

    def start(self, fn, what):
        if self.box is not None and not self.box['done'].is_set():
            raise StepFailed('%s: %s started while %s still runs' % (self.name, what, self.box['what']))
        box = {'sent': threading.Event(), 'done': threading.Event(), 'what': what}
        self.box = box
        self.jobs.put((fn, box))
        return box

    def busy(self):
        return self.box is not None and not self.box['done'].is_set()


def parked_model(obj):
    """How many threads wait inside a model object, where Python lets us see it."""
    if isinstance(obj, threading.Barrier):
        return obj._count
    for name in ('_waiters',):
        if hasattr(obj, name):
            return len(getattr(obj, name))
    n = 0
    for attr in ('_cond', 'not_empty', 'not_full', 'all_tasks_done'):
        c = getattr(obj, attr, None)
        if c is not None:
            n += len(c._waiters)
    return n


# --------------------------------------------------------------------------
# The world: a server, its model, actors on both sides

class World(object):
    def __init__(self, srv, rng, policy):
        self.srv = srv
        self.rng = rng
        self.policy = policy
        self.m = harness.client_manager(srv, base=StressManager)
        self.probe = self.m.Event()
        self.sa = [Actor('S%d' % i) for i in range(6)]   # server side
        self.ma = [Actor('M%d' % i) for i in range(6)]   # model side
        self.log = []
        self.children = []

    # -- one operation on both sides

    def sync(self, box):
        """Wait until the server has handled the request box's actor sent."""
        if not box['sent'].wait(DEADLINE):
            raise StepFailed('%s: request never sent' % box['what'])
        if SHMGR:
            # a Unix socket: the bytes were in the server's socket when send returned, so the
            # loop turn that answers the first probe has read them; the second is a margin
            self.probe.is_set()
            self.probe.is_set()
        else:
            time.sleep(0.05)

    def settle(self, box, mobj):
        """Wait until the model's call has answered or waits inside mobj."""
        if mobj is None:
            box['done'].wait(0.05)
            return
        before = box.get('parked_before', 0)
        deadline = time.time() + 2.0
        while not box['done'].is_set() and parked_model(mobj) <= before and time.time() < deadline:
            time.sleep(0.002)

    def op(self, i, sfn, mfn, what, mobj=None, mi=None):
        """Actor i does sfn() on the server and mfn() on the model (actor mi, default i);
        mobj: the model object it may wait in. Returns the two boxes."""
        mi = i if mi is None else mi
        self.log.append(what)
        before = parked_model(mobj) if mobj is not None else 0
        s = self.sa[i].start(sfn, what)
        m = self.ma[mi].start(mfn, what)
        m['parked_before'] = before
        self.sync(s)
        self.settle(m, mobj)
        return s, m

    def sop(self, i, sfn, what):
        """Server only (a part the model does not take part in)."""
        self.log.append(what)
        s = self.sa[i].start(sfn, what)
        self.sync(s)
        return s

    def answer(self, box, timeout=DEADLINE):
        if not box['done'].wait(timeout):
            raise StepFailed('%s: no answer within %gs' % (box['what'], timeout))
        return box['result']

    def same(self, s, m, what=None):
        """Both answered, the same."""
        rs, rm = self.answer(s), self.answer(m)
        harness.eq(rs, rm, '%s: server vs Python' % (what or s['what']))
        return rs

    def now(self, i, sfn, mfn, what, mobj=None):
        """An operation that answers at once on both sides, the same."""
        s, m = self.op(i, sfn, mfn, what, mobj)
        return self.same(s, m)

    def waiting(self, boxes, what):
        """Each (server, model) pair still waits (a reply in flight gets a moment)."""
        for s, m in boxes:
            sd = s['done'].wait(0.02)
            md = m['done'].is_set()
            if sd != md:  # one answered: give the other a moment to answer too
                (m if sd else s)['done'].wait(1.0)
                sd, md = s['done'].is_set(), m['done'].is_set()
            if sd or md:
                harness.check(sd == md, '%s: %s: server %s, Python %s' % (
                    what, s['what'], s.get('result', 'waits'), m.get('result', 'waits')))
                if sd and md:
                    harness.eq(s['result'], m['result'], '%s: %s' % (what, s['what']))
                return False
        return True

    # -- server control

    def paused(self, seconds, during=None):
        """Stop the server while seconds pass (shmgr only); during() runs while it is stopped."""
        os.kill(self.srv.pid, signal.SIGSTOP)
        try:
            if during is not None:
                during()
            time.sleep(seconds)
        finally:
            os.kill(self.srv.pid, signal.SIGCONT)

    def paused_call(self, seconds, i, proxy, fn, what):
        """Stop the server while seconds pass, and meanwhile actor i sends fn() (a call of
        proxy's, connected first: a handshake would wait for the stopped server); its box."""
        self.answer(self.sa[i].start(lambda: hasattr(proxy._tls, 'connection') or proxy._connect(),
                                     what + ': connect'))
        box = []

        def during():
            box.append(self.sa[i].start(fn, what))
            if not box[0]['sent'].wait(DEADLINE):
                raise StepFailed(what + ': never sent')
        self.paused(seconds, during)
        return box[0]

    def child(self, proxy, method, args, what):
        """A child process that calls proxy.method(*args) and prints 'sent' once its
        request is on the wire (then 'got ...'); returns it once the server handled it."""
        code = (
            'import pickle, sys, multiprocessing\n'
            'import harness, test_park_stress as t\n'
            'srv = harness.from_env()\n'
            'multiprocessing.current_process().authkey = srv.authkey\n'
            'cls, token, exposed = pickle.loads(bytes.fromhex(sys.argv[1]))\n'
            # no incref: a killed client could never give it back (CPython's server would keep
            # the object for ever too), and number_of_objects must return to its baseline
            'p = cls(token, "pickle", authkey=srv.authkey, exposed=exposed, incref=False)\n'
            'p._callmethod("__repr__")\n'   # connect first: 'sent' must mean the call
            'args = pickle.loads(bytes.fromhex(sys.argv[3]))\n'
            't._tls.sent = t.Notice()\n'
            'print("got %r" % (t.result_of(lambda: getattr(p, sys.argv[2])(*args)),))\n'
            'sys.stdout.flush()\n'
            'import time; time.sleep(600)\n')   # alive (holding what it got) until killed
        cls = AutoProxy if getattr(proxy, '_isauto', False) else type(proxy)
        spec = pickle.dumps((cls, proxy._token, proxy._exposed_ if cls is AutoProxy else None))
        c = harness.Child(self.srv, code=code, args=[spec.hex(), method, pickle.dumps(args).hex()])
        self.children.append(c)
        self.log.append(what)
        if c.expect('sent', timeout=DEADLINE) is None:
            raise StepFailed('%s: the child never sent its call' % what)
        self.probe.is_set()
        self.probe.is_set()
        return c

    def kill(self, c):
        c.kill()
        self.probe.is_set()   # its end of stream is read in the turn that answers this
        self.probe.is_set()

    def close(self):
        for c in self.children:
            c.kill()


class Notice(object):
    """For a child: prints 'sent' when its call is on the wire."""

    def set(self):
        print('sent')
        sys.stdout.flush()


# --------------------------------------------------------------------------
# Scenarios: each makes a Hub, runs a random sequence on it, and leaves nothing waiting

def make_hub(w, parties=3, maxsize=0, semvalue=0, bounded=False):
    sh = w.m.Hub(parties, maxsize, semvalue, bounded)
    return sh, PyHub(parties, maxsize, semvalue, bounded)


def t_choice(rng, short_ok=True):
    """A timeout for a wait meant to be woken (None or long), or SHORT."""
    return rng.choice([None, LONG, SHORT] if short_ok else [None, LONG])


def sc_barrier(w, rng):
    parties = rng.randint(2, 4)
    sh, mh = make_hub(w, parties=parties)
    sb, mb = sh.barrier(), mh.barrier()
    se, me = sh.event(), mh.event()
    for p in range(rng.randint(1, 4)):
        kinds = ['full', 'timeout', 'abort', 'reset', 'lua']
        if SHMGR:
            kinds += ['kill', 'same_turn', 'same_turn_full']
        kind = rng.choice(kinds)
        what = 'barrier(%d) pass %d %s' % (parties, p, kind)
        k = rng.randint(1, parties - 1)
        boxes = []
        if kind in ('full', 'kill'):
            dead, before = None, -1
            if kind == 'kill':   # a child waits, then some parties (not all), then it is killed
                dead = w.child(*rng.choice([(sb, 'wait', (LONG,)), (sh, 'wait_then', ('bar_wait', LONG, 'ev_set'))]),
                               what=what + ': a child (or its Lua method) waits')
                harness.eq(sb.n_waiting, 1, what + ': the child is waiting')
                before = rng.randint(0, parties - 2)
            for i in range(parties):
                if i == before and dead is not None:
                    w.kill(dead)   # its arrival is taken back: the parties behind it move up one index
                    dead = None
                t = t_choice(rng, short_ok=False)
                boxes.append(w.op(i, lambda t=t: sb.wait(t), lambda t=t: mb.wait(t), '%s: A%d wait(%s)' % (what, i, t), mb))
                if i < parties - 1:
                    w.waiting(boxes, what)
            for s, m in boxes:
                w.same(s, m)
        elif kind in ('timeout', 'lua'):
            for i in range(k - 1):
                boxes.append(w.op(i, lambda: sb.wait(), lambda: mb.wait(), '%s: A%d wait()' % (what, i), mb))
            ev_waiters = []
            if kind == 'lua':
                # a Lua method's wait breaks the barrier when its time is up, then sets the Event
                for j in range(rng.randint(0, 2)):
                    i = 4 + j
                    ev_waiters.append(w.op(i, lambda: se.wait(), lambda: me.wait(), '%s: A%d event wait' % (what, i), me))
                s, m = w.op(k - 1, lambda: sh.wait_then('bar_wait', SHORT, 'ev_set'),
                            lambda: mh.wait_then('bar_wait', SHORT, 'ev_set'), '%s: lua bar_wait' % what, mb)
            else:
                s, m = w.op(k - 1, lambda: sb.wait(SHORT), lambda: mb.wait(SHORT), '%s: wait(SHORT)' % what, mb)
            boxes.append((s, m))
            for s, m in boxes + ev_waiters:
                w.same(s, m)
            w.now(5, lambda: sb.broken, lambda: mb.broken, what + ': broken')
            w.now(5, lambda: sb.wait(), lambda: mb.wait(), what + ': wait on a broken barrier')
            w.now(5, sb.reset, mb.reset, what + ': reset')
            if kind == 'lua':
                w.now(5, se.clear, me.clear, what + ': clear')
        elif kind in ('abort', 'reset'):
            for i in range(k):
                t = t_choice(rng, short_ok=False)
                boxes.append(w.op(i, lambda t=t: sb.wait(t), lambda t=t: mb.wait(t), '%s: A%d wait(%s)' % (what, i, t), mb))
            w.now(5, lambda: sb.n_waiting, lambda: mb.n_waiting, what + ': n_waiting')
            w.now(5, getattr(sb, kind), getattr(mb, kind), what + ': ' + kind)
            for s, m in boxes:
                w.same(s, m)
            w.now(5, lambda: (sb.broken, sb.n_waiting), lambda: (mb.broken, mb.n_waiting), what + ': after')
            if kind == 'abort':
                w.now(5, lambda: sb.wait(0), lambda: mb.wait(0), what + ': wait after abort')
                w.now(5, sb.reset, mb.reset, what + ': reset')
        elif kind in ('same_turn', 'same_turn_full'):
            # shmgr only: the model is not driven; the barrier is reset on both sides after
            full = kind == 'same_turn_full'
            n = parties - 1 if full else k
            sboxes = [w.sop(i, lambda i=i: sb.wait(SHORT + 0.01 * i), '%s: A%d wait(short)' % (what, i))
                      for i in range(n)]
            last = []
            if full:   # the last arrival comes in the same turn as the deadlines
                last.append(w.paused_call(SHORT + 0.3, n, sb, lambda: sb.wait(LONG), what + ': last arrival'))
            else:
                w.paused(SHORT + 0.3)
            got = [w.answer(s) for s in sboxes + last]
            passed = [r for r in got if r[0] == 'ok']
            if passed:   # the arrival was handled first: one full pass
                harness.eq(sorted(r[1] for r in got if r[0] == 'ok'), list(range(parties)),
                           what + ': a pass gives each party an index')
            harness.check(not passed or len(passed) == len(got),
                          '%s: each party passed or each saw it broken, not a mix: %r' % (what, got))
            for r in got:
                harness.check(r[0] == 'ok' or r == ('err', 'BrokenBarrierError'), '%s: answer %r' % (what, r))
            w.now(5, sb.reset, mb.reset, what + ': reset')
        w.now(5, lambda: (sb.broken, sb.n_waiting), lambda: (mb.broken, mb.n_waiting), what + ': at the end')
    return [sh, sb, se]


def sc_event(w, rng):
    sh, mh = make_hub(w, semvalue=0)
    se, me = sh.event(), mh.event()
    ss, ms = sh.semaphore(), mh.semaphore()
    parked = {}   # actor -> boxes
    for n in range(rng.randint(3, 10)):
        free = [i for i in range(5) if i not in parked]
        kinds = ['wait', 'wait', 'set', 'clear', 'is_set', 'short', 'lua']
        if SHMGR:
            kinds += ['kill', 'same_turn']
        kind = rng.choice(kinds)
        what = 'event op %d %s' % (n, kind)
        if kind == 'wait' and free:
            i = rng.choice(free)
            t = t_choice(rng, short_ok=False)
            s, m = w.op(i, lambda t=t: se.wait(t), lambda t=t: me.wait(t), '%s: A%d wait(%s)' % (what, i, t), me)
            if not w.waiting([(s, m)], what):
                continue
            parked[i] = (s, m)
        elif kind == 'short' and free:
            i = rng.choice(free)
            w.same(*w.op(i, lambda: se.wait(SHORT), lambda: me.wait(SHORT), what, me))
        elif kind == 'set':
            w.now(5, se.set, me.set, what)
            for s, m in parked.values():
                w.same(s, m)
            parked.clear()
        elif kind == 'clear':
            w.now(5, se.clear, me.clear, what)
        elif kind == 'is_set':
            w.now(5, se.is_set, me.is_set, what)
        elif kind == 'lua' and len(free) >= 2:
            # a Lua method waits on the Event (woken or timed out), then releases the semaphore
            # another actor waits on
            i = rng.choice(free)
            setter = [x for x in free if x != i][0]
            t = rng.choice([SHORT, LONG])
            j = 5
            sw = w.op(j, lambda: ss.acquire(True, LONG), lambda: ms.acquire(True, LONG), what + ': sem waiter', ms)
            s, m = w.op(i, lambda t=t: sh.wait_then('ev_wait', t, 'sem_release'),
                        lambda t=t: mh.wait_then('ev_wait', t, 'sem_release'), '%s: lua ev_wait(%s)' % (what, t), me)
            if t == LONG and w.waiting([(s, m)], what):
                w.now(setter, se.set, me.set, what + ': set')
                for b in parked.values():
                    w.same(*b)
                parked.clear()
            w.same(s, m)
            w.same(*sw)
        elif kind == 'kill' and free:
            c = w.child(*rng.choice([(se, 'wait', (LONG,)), (sh, 'wait_then', ('ev_wait', LONG, 'sem_release'))]),
                        what=what + ': a child (or its Lua method) waits')
            w.kill(c)
        elif kind == 'same_turn':
            # parked short waiters and a set() in the same loop turn: True or False each
            k = rng.randint(1, 3)
            if parked:
                w.now(5, se.set, me.set, what + ': first wake the others')
                for b in parked.values():
                    w.same(*b)
                parked.clear()
            w.now(5, se.clear, me.clear, what + ': clear')
            sboxes, semw = [], None
            if rng.random() < 0.5:   # the first to time out may be a Lua method that then releases
                semw = w.sop(4, lambda: ss.acquire(True, LONG), what + ': A4 waits on the semaphore')
                sboxes.append(w.sop(3, lambda: sh.wait_then('ev_wait', SHORT - 0.01, 'sem_release'),
                                    what + ': A3 lua ev_wait(short), then release'))
            sboxes += [w.sop(i, lambda i=i: se.wait(SHORT + 0.01 * i), '%s: A%d wait(short)' % (what, i))
                       for i in range(k)]
            st = [w.paused_call(SHORT + 0.3, 5, se, se.set, what + ': set')]
            for s in sboxes:
                r = w.answer(s)
                harness.check(r in (('ok', True), ('ok', False)), '%s: answer %r' % (what, r))
            harness.eq(w.answer(st[0]), ('ok', None), what + ': set answered')
            if semw is not None:
                harness.eq(w.answer(semw), ('ok', True), what + ': the Lua method released the semaphore')
            me.set()
    w.now(5, se.set, me.set, 'event: the end')
    for b in parked.values():
        w.same(*b)
    return [sh, se, ss]


def resolve(w, parked, what, grace=0.03):
    """parked: OrderedDict actor -> (server box, model box) of calls that waited. Give answers
    in flight a moment; each call answered on both sides is compared and taken out. Returns
    [(actor, result)] in the order the calls parked."""
    time.sleep(grace)
    out = []
    for i in list(parked):
        s, m = parked[i]
        sd, md = s['done'].is_set(), m['done'].is_set()
        if sd != md:
            (m if sd else s)['done'].wait(1.0)
            sd, md = s['done'].is_set(), m['done'].is_set()
        if sd != md:
            raise StepFailed('%s: %s: server %s, Python %s' % (
                what, s['what'], s.get('result', 'still waits'), m.get('result', 'still waits')))
        if sd:
            harness.eq(s['result'], m['result'], '%s: %s' % (what, s['what']))
            out.append((i, s['result']))
            del parked[i]
    return out


def sc_lock(w, rng):
    kind = rng.choice(['Lock', 'RLock', 'Semaphore', 'BoundedSemaphore'])
    sem = kind in ('Semaphore', 'BoundedSemaphore')
    semvalue = rng.randint(0, 2) if kind == 'Semaphore' else rng.randint(1, 2)
    sh, mh = make_hub(w, semvalue=semvalue, bounded=kind == 'BoundedSemaphore')
    getter = {'Lock': 'lock', 'RLock': 'rlock'}.get(kind, 'semaphore')
    sl, ml = getattr(sh, getter)(), getattr(mh, getter)()
    mobj = ml if sem else None
    what0 = '%s(%s)' % (kind, semvalue if sem else '')
    held = {}                # actor -> takes (Python's Lock wakes its waiters in arrival order here:
    parked = OrderedDict()   # lock step, futex queues; shmgr promises that order)
    st = {'val': semvalue if sem else 1, 'dead_rlock': False}

    def took(i, r):
        if r == ('ok', True):
            held[i] = held.get(i, 0) + 1
            st['val'] -= 1 if (sem or kind == 'Lock' or held[i] == 1) else 0

    def settle(what):
        for i, r in resolve(w, parked, what):
            took(i, r)

    def holders():
        return [i for i in held if held[i]]

    def gave(i):
        held[i] -= 1
        if sem or kind == 'Lock' or held[i] == 0:
            st['val'] += 1

    def acquire(i, t, what, nonblocking=False, lua=False):
        if lua:
            op = 'lock_acquire' if kind == 'Lock' else 'sem_acquire'
            sf, mf = (lambda: sh.wait_then(op, t, '')), (lambda: mh.wait_then(op, t, ''))
        elif nonblocking:
            sf, mf = (lambda: sl.acquire(False)), (lambda: ml.acquire(False))
        else:
            tt = t if sem else (-1 if t is None else t)
            sf, mf = (lambda: sl.acquire(True, tt)), (lambda: ml.acquire(True, tt))
        s, m = w.op(i, sf, mf, '%s: A%d %sacquire(%s)' % (what, i, 'lua ' if lua else '', t), mobj)
        if w.waiting([(s, m)], what):
            parked[i] = (s, m)
            if t == SHORT:
                w.answer(s), w.answer(m)
                settle(what + ': its time is up')
        else:
            took(i, w.answer(s))

    def release(i, what, n=1):
        if n > 1:
            sf, mf = (lambda: sl._callmethod('release', (n,))), (lambda: ml.release(n))
        else:
            sf, mf = sl.release, ml.release
        r = w.now(i, sf, mf, what, mobj)
        return r == ('ok', None)

    for n in range(rng.randint(4, 14)):
        idle = [i for i in range(5) if not w.sa[i].busy() and not w.ma[i].busy() and i not in parked]
        free = [i for i in idle if not held.get(i)]
        choices = ['acquire', 'acquire', 'release', 'short', 'nonblocking', 'bad_release']
        if kind in ('Lock', 'Semaphore'):
            choices.append('lua')
        if SHMGR:
            choices += ['kill_waiter', 'kill_holder', 'same_turn']
        if sem and PY >= (3, 9):
            choices.append('release_n')
        if kind == 'RLock':
            choices.append('recurse')
        c = rng.choice(choices)
        what = '%s op %d %s' % (what0, n, c)
        if os.environ.get('SHMGR_STRESS_DEBUG') and sem:
            w.log.append('state: %s / Python value %d, held %r' % (sl._callmethod('__repr__'), ml._value, held))
        if c in ('acquire', 'short', 'nonblocking', 'lua') and free:
            i = rng.choice(free)
            t = SHORT if c == 'short' or st['dead_rlock'] else t_choice(rng, short_ok=False)
            if c == 'lua':
                t = rng.choice([SHORT, LONG])
            acquire(i, t, what, nonblocking=c == 'nonblocking', lua=c == 'lua')
        elif c in ('release', 'release_n') and (holders() or (sem and parked)):
            # the owner releases an RLock; anyone may release a Lock or Semaphore (actor 5 does)
            h = holders()
            if kind == 'RLock':
                i = h[0]
            else:
                i = 5
            k = rng.randint(2, 3) if c == 'release_n' else 1
            if kind == 'BoundedSemaphore' and st['val'] + k > semvalue:
                k = 1
            if release(i, what, k):
                for _ in range(k):
                    if h:
                        gave(h[0])
                        h = holders()
                    else:
                        st['val'] += 1
            settle(what)
        elif c == 'recurse' and holders() and not st['dead_rlock']:
            i = holders()[0]
            harness.eq(w.now(i, sl.acquire, ml.acquire, '%s: A%d again' % (what, i)), ('ok', True), what)
            held[i] += 1
        elif c == 'bad_release':
            if kind == 'Lock' and not holders():
                w.now(5, sl.release, ml.release, what)
            elif kind == 'RLock' and free:
                w.now(free[0], sl.release, ml.release, what)
            elif kind == 'BoundedSemaphore' and st['val'] == semvalue:
                w.now(5, sl.release, ml.release, what)
        elif c == 'kill_waiter' and st['val'] <= 0 and not st['dead_rlock']:
            lua = {'Lock': 'lock_acquire', 'Semaphore': 'sem_acquire'}.get(kind)
            w.kill(w.child(*rng.choice([(sl, 'acquire', (True, LONG))] +
                                       ([(sh, 'wait_then', (lua, LONG, ''))] if lua else [])),
                           what=what + ': a child (or its Lua method) waits'))
            w.now(5, lambda: None, lambda: None, what + ': its call is taken back (model: never made)')
        elif c == 'kill_holder' and st['val'] > 0 and not parked and not st['dead_rlock']:
            c = w.child(sl, 'acquire', (), what + ': a child acquires')
            if c.expect('got', timeout=DEADLINE) != "got ('ok', True)":
                harness.fail('%s: the child did not get it: %s' % (what, c.output()))
            # the model's ghost (actor 5) takes it in the child's place
            harness.eq(w.now(5, lambda: True, ml.acquire, what + ': the model takes it too'), ('ok', True), what)
            st['val'] -= 1
            for j in [x for x in free if x != 5][:rng.randint(0, 2)]:
                if st['dead_rlock']:
                    break
                acquire(j, t_choice(rng, short_ok=False) if w.policy == 'release' or kind != 'RLock' else SHORT,
                        what + ': waits behind it')
            w.kill(c)
            if w.policy == 'release':   # what the dead client held is given back
                w.now(5, lambda: None, ml.release, what + ': the model gives it back')
                st['val'] += 1
            elif kind == 'RLock':       # kept: owned by nobody alive, a new client must not own it
                st['dead_rlock'] = True
                for _ in range(2):
                    sa, ma = Actor('S-new'), Actor('M-new')
                    s, m = sa.start(lambda: sl.acquire(True, SHORT), what + ': a new client tries'), \
                        ma.start(lambda: ml.acquire(True, SHORT), what + ': a new client tries')
                    w.same(s, m)
                    s, m = sa.start(sl.release, what + ': a new client releases'), \
                        ma.start(ml.release, what + ': a new client releases')
                    w.same(s, m)
                    sa.jobs.put((None, None)), ma.jobs.put((None, None))
            else:                       # kept: anyone may still release a Lock or Semaphore
                release(5, what + ': released in the dead child\'s place')
                st['val'] += 1
            settle(what)
        elif c == 'same_turn' and not parked and len(holders()) == 1 and held[holders()[0]] == 1 \
                and st['val'] == 0:
            # the holder's release and the waiters' deadlines end in one loop turn (server only;
            # the model then takes the same holder)
            h = holders()[0]
            ws = [i for i in free if i != h][:rng.randint(1, 3)]
            sboxes = [w.sop(i, lambda i=i: sl.acquire(True, SHORT + 0.01 * i), '%s: A%d acquire(short)' % (what, i))
                      for i in ws]
            ri = h if kind == 'RLock' else 5
            rel = [w.paused_call(SHORT + 0.3, ri, sl, sl.release, what + ': release')]
            got = [w.answer(s) for s in sboxes]
            harness.eq(w.answer(rel[0]), ('ok', None), what + ': release')
            won = [i for i, r in zip(ws, got) if r == ('ok', True)]
            harness.check(len(won) <= 1 and all(r in (('ok', True), ('ok', False)) for r in got),
                          '%s: answers %r' % (what, got))
            w.now(h if kind == 'RLock' else 5, lambda: None, ml.release, what + ': the model releases too')
            gave(h)
            for i in won:
                w.now(i, lambda: True, lambda: ml.acquire(False), what + ': the model takes the winner\'s')
                took(i, ('ok', True))
    # the end: give back every take, so that every waiter answers
    for _ in range(60):
        settle('%s: the end' % what0)
        h = holders()
        if not parked and not h:
            break
        if h:
            i = h[0] if kind == 'RLock' else 5
            if release(i, '%s: the end: release' % what0):
                gave(h[0])
        elif sem:
            if release(5, '%s: the end: release' % what0):
                st['val'] += 1
        else:
            time.sleep(0.05)   # short waits run out
    harness.check(not parked, '%s: waiters left at the end' % what0)
    return [sh, sl]


def sc_condition(w, rng):
    """Waiters, notify(n) (n above the number waiting too), notify_all, a waiter whose time is
    up while another holds the lock, RLock levels across wait. Python lets waiters notified
    together take the lock in any order: the model's actor threads are then renamed so that
    the model's winner plays the server's (all waiters hold the same number of levels)."""
    sh, mh = make_hub(w)
    sc, mc = sh.condition(), mh.condition()
    se, me = sh.event(), mh.event()
    levels = rng.randint(1, 3)
    what0 = 'Condition(levels %d)' % levels
    mm = {i: i for i in range(6)}   # logical actor -> model actor
    st = {'owner': None}
    cvwait = []                     # logical actors waiting on the condition, in order
    lockq = OrderedDict()           # logical actor -> boxes: waiting for the lock (or notified)
    boxes = {}                      # logical actor -> boxes of its wait() / acquire()
    acquirers = set()               # those in lockq that called acquire (not wait)

    def op(i, sf, mf, what):
        return w.op(i, sf, mf, what, mi=mm[i])

    def take_levels(i, what):
        """i holds one level: take the rest."""
        for _ in range(levels - 1):
            harness.eq(w.same(*op(i, sc.acquire, mc.acquire, '%s: A%d level' % (what, i))), ('ok', True), what)

    def handover(what):
        """The lock was freed: the first of lockq on each side (FIFO on shmgr; Python: any of
        those notified together, or the longest blocked acquirer) gets it."""
        if not lockq:
            st['owner'] = None
            return
        time.sleep(0.03)
        deadline = time.time() + DEADLINE
        while time.time() < deadline:
            sdone = [i for i in lockq if lockq[i][0]['done'].is_set()]
            mdone = [i for i in lockq if lockq[i][1]['done'].is_set()]
            if sdone and mdone:
                break
            time.sleep(0.005)
        time.sleep(0.03)
        sdone = [i for i in lockq if lockq[i][0]['done'].is_set()]
        mdone = [i for i in lockq if lockq[i][1]['done'].is_set()]
        if len(sdone) != 1 or len(mdone) != 1:
            raise StepFailed('%s: one caller must get the lock: server %s, Python %s' % (what, sdone, mdone))
        x, y = sdone[0], mdone[0]
        if SHMGR:
            harness.eq(x, list(lockq)[0], '%s: the longest waiter gets the lock (shmgr)' % what)
        if x != y:   # rename: y's model thread now plays x (and x's plays y)
            if (x in acquirers) != (y in acquirers):
                raise StepFailed('%s: server gave the lock to A%d, Python to A%d' % (what, x, y))
            lockq[x], lockq[y] = (lockq[x][0], lockq[y][1]), (lockq[y][0], lockq[x][1])
            mm[x], mm[y] = mm[y], mm[x]
        s, m = lockq.pop(x)
        harness.eq(s['result'], m['result'], '%s: A%d answer' % (what, x))
        st['owner'] = x
        if x in acquirers:   # a notified waiter has its levels back; an acquirer takes them
            acquirers.discard(x)
            take_levels(x, what)

    def free_actors():
        return [i for i in range(5) if i not in lockq and i not in cvwait and i != st['owner']]

    for n in range(rng.randint(4, 14)):
        choices = ['acquire', 'wait', 'wait', 'notify', 'notify_all', 'release', 'short', 'short_held', 'lua',
                   'bad']
        if SHMGR:
            choices += ['kill_lua', 'same_turn']
        c = rng.choice(choices)
        what = '%s op %d %s' % (what0, n, c)
        free = free_actors()
        owner = st['owner']
        if c == 'acquire' and free:
            i = rng.choice(free)
            s, m = op(i, sc.acquire, mc.acquire, '%s: A%d acquire' % (what, i))
            if owner is None:
                harness.eq(w.same(s, m), ('ok', True), what)
                st['owner'] = i
                take_levels(i, what)
            elif w.waiting([(s, m)], what):
                lockq[i] = (s, m)
                acquirers.add(i)
        elif c == 'wait' and owner is not None:
            t = t_choice(rng, short_ok=False)
            s, m = op(owner, lambda: sc.wait(t), lambda: mc.wait(t), '%s: A%d wait(%s)' % (what, owner, t))
            w.waiting([(s, m)], what)
            cvwait.append(owner)
            boxes[owner] = (s, m)
            handover(what)
        elif c in ('notify', 'notify_all') and owner is not None:
            k = rng.randint(0, 4)
            if c == 'notify':
                # a 3.6 ConditionProxy's notify takes no n: the method itself does
                sf, mf = (lambda: sc._callmethod('notify', (k,))), (lambda: mc.notify(k))
                moved = cvwait[:k]
            else:
                sf, mf = sc.notify_all, mc.notify_all
                moved = cvwait[:]
            harness.eq(w.same(*op(owner, sf, mf, '%s(%s)' % (what, k))), ('ok', None), what)
            for i in moved:
                cvwait.remove(i)
                lockq[i] = boxes.pop(i)
            w.waiting(list(lockq.values()), what + ': the notified wait for the lock')
        elif c == 'release' and owner is not None:
            for lv in range(levels):
                harness.eq(w.same(*op(owner, sc.release, mc.release, '%s: A%d release' % (what, owner))),
                           ('ok', None), what)
                if lv < levels - 1:
                    w.waiting(list(lockq.values()), what)
            handover(what)
        elif c == 'short' and owner is not None and not lockq:
            # its time is up while the lock is free: False, with the lock (and its levels) back
            harness.eq(w.same(*op(owner, lambda: sc.wait(SHORT), lambda: mc.wait(SHORT), what)), ('ok', False), what)
        elif c == 'short_held' and owner is not None and not lockq and free:
            # its time is up while another holds the lock: it waits for the lock, then False
            j = rng.choice(free)
            s, m = op(owner, lambda: sc.wait(SHORT), lambda: mc.wait(SHORT), '%s: A%d wait(SHORT)' % (what, owner))
            harness.eq(w.same(*op(j, sc.acquire, mc.acquire, '%s: A%d acquire' % (what, j))), ('ok', True), what)
            time.sleep(SHORT + 0.15)
            w.waiting([(s, m)], what + ': timed out, waits for the lock')
            harness.eq(w.same(*op(j, sc.release, mc.release, '%s: A%d release' % (what, j))), ('ok', None), what)
            harness.eq(w.same(s, m), ('ok', False), what)
        elif c == 'bad' and free:
            # wait, notify and release without the lock: RuntimeError
            i = rng.choice(free)
            f = rng.choice(['wait', 'notify', 'release'])
            w.same(*op(i, getattr(sc, f), getattr(mc, f), '%s: A%d %s' % (what, i, f)))
        elif c == 'lua' and owner is None and not lockq and not cvwait and len(free) >= 3:
            # a Lua method waits on the condition (its time up, or notified), then sets the Event
            # another actor waits on
            i, j, k = free[:3]
            t = rng.choice([SHORT, LONG])
            ev = op(j, lambda: se.wait(LONG), lambda: me.wait(LONG), what + ': event waiter')
            lua = op(i, lambda: sh.wait_then('cond_wait', t, 'ev_set'), lambda: mh.wait_then('cond_wait', t, 'ev_set'),
                     '%s: A%d lua cond_wait(%s)' % (what, i, t))
            if t == LONG:
                w.waiting([lua, ev], what)
                for f in ('acquire', 'notify', 'release'):
                    w.same(*op(k, getattr(sc, f), getattr(mc, f), '%s: A%d %s' % (what, k, f)))
            w.same(*lua)
            w.same(*ev)
            w.same(*op(k, se.clear, me.clear, what + ': clear'))
        elif c == 'kill_lua' and owner is None and not lockq:
            # a client killed while its Lua method waits on the condition: it never takes a notify
            w.kill(w.child(sh, 'wait_then', ('cond_wait', LONG, 'ev_set'), what + ': a child\'s Lua method waits'))
        elif c == 'same_turn' and owner is None and not lockq and not cvwait and len(free) >= 2:
            # waiters whose deadlines pass while a holder's notify comes: server only, each answers
            # True or False and gets the lock in turn (the model is not driven)
            ws = free[:rng.randint(1, min(3, len(free) - 1))]
            h = [i for i in free if i not in ws][0]
            sbox = {}
            for i in ws:
                harness.eq(w.answer(w.sop(i, sc.acquire, what + ': acquire')), ('ok', True), what)
                sbox[i] = w.sop(i, lambda i=i: sc.wait(SHORT + 0.01 * i), '%s: A%d wait(short)' % (what, i))
            harness.eq(w.answer(w.sop(h, sc.acquire, what + ': holder acquires')), ('ok', True), what)
            f = rng.choice(['notify_all', 'notify'])
            nt = [w.paused_call(SHORT + 0.3, h, sc, getattr(sc, f), what + ': ' + f)]
            harness.eq(w.answer(nt[0]), ('ok', None), what + ': notify')
            harness.eq(w.answer(w.sop(h, sc.release, what + ': holder releases')), ('ok', None), what)
            left = dict(sbox)
            deadline = time.time() + DEADLINE
            while left and time.time() < deadline:
                for i in list(left):
                    if left[i]['done'].is_set():
                        r = left.pop(i)['result']
                        harness.check(r in (('ok', True), ('ok', False)), '%s: A%d answer %r' % (what, i, r))
                        harness.eq(w.answer(w.sop(i, sc.release, what + ': release')), ('ok', None), what)
                time.sleep(0.01)
            if left:
                raise StepFailed('%s: waiters never answered' % what)
    # the end: wake everyone; each takes the lock in turn and gives it back
    for _ in range(60):
        if st['owner'] is None and not lockq and not cvwait:
            break
        if st['owner'] is None and not lockq:
            i = free_actors()[0]
            harness.eq(w.same(*op(i, sc.acquire, mc.acquire, what0 + ': the end: acquire')), ('ok', True), what0)
            st['owner'] = i
            take_levels(i, what0)
        if st['owner'] is None:
            handover(what0 + ': the end')
            continue
        o = st['owner']
        harness.eq(w.same(*op(o, sc.notify_all, mc.notify_all, what0 + ': the end: notify_all')), ('ok', None), what0)
        for i in cvwait:
            lockq[i] = boxes.pop(i)
        del cvwait[:]
        for _ in range(levels):
            harness.eq(w.same(*op(o, sc.release, mc.release, what0 + ': the end: release')), ('ok', None), what0)
        handover(what0 + ': the end')
    harness.check(st['owner'] is None and not lockq and not cvwait, what0 + ': waiters left at the end')
    return [sh, sc, se]


def sc_queue(w, rng):
    """Queue / JoinableQueue: get, put on a full queue, join, task_done, timeouts, shutdown
    (3.13: the model needs it), and a Lua method whose get ends (item or Empty) and then puts."""
    maxsize = rng.randint(0, 2)
    sh, mh = make_hub(w, maxsize=maxsize)
    sq, mq = sh.queue(), mh.queue()
    what0 = 'Queue(%d)' % maxsize
    parked = OrderedDict()
    st = {'items': 0, 'unfinished': 0, 'shut': False}
    counter = [0]

    def item():
        counter[0] += 1
        return counter[0]

    def settle(what):
        for i, r in resolve(w, parked, what):
            pass

    def idle():
        return [i for i in range(5) if i not in parked and not w.sa[i].busy() and not w.ma[i].busy()]

    def start(i, sf, mf, what, short=False):
        s, m = w.op(i, sf, mf, what, mq)
        if w.waiting([(s, m)], what):
            parked[i] = (s, m)
            if short:
                w.answer(s), w.answer(m)
        settle(what)

    for n in range(rng.randint(4, 16)):
        choices = ['get', 'get', 'put', 'put', 'short_get', 'short_put', 'nowait', 'join', 'task_done',
                   'qsize', 'lua']
        if SHMGR:
            choices += ['kill_get', 'kill_put', 'kill_join', 'same_turn']
        choices.append('shutdown')
        c = rng.choice(choices)
        what = '%s op %d %s' % (what0, n, c)
        free = idle()
        if not free:
            break
        i = rng.choice(free)
        if c == 'get':
            t = t_choice(rng, short_ok=False)
            start(i, lambda: sq.get(True, t), lambda: mq.get(True, t), '%s: A%d get(%s)' % (what, i, t))
        elif c == 'put':
            x, t = item(), t_choice(rng, short_ok=False)
            start(i, lambda: sq.put(x, True, t), lambda: mq.put(x, True, t), '%s: A%d put(%d, %s)' % (what, i, x, t))
        elif c == 'short_get':
            start(i, lambda: sq.get(True, SHORT), lambda: mq.get(True, SHORT), '%s: A%d' % (what, i), short=True)
        elif c == 'short_put':
            x = item()
            start(i, lambda: sq.put(x, True, SHORT), lambda: mq.put(x, True, SHORT), '%s: A%d' % (what, i), short=True)
        elif c == 'nowait':
            x = item()
            f = rng.choice([(lambda: sq.get_nowait(), lambda: mq.get_nowait()),
                            (lambda: sq.put_nowait(x), lambda: mq.put_nowait(x))])
            start(i, f[0], f[1], '%s: A%d' % (what, i))
        elif c == 'join':
            start(i, sq.join, mq.join, '%s: A%d join' % (what, i))
        elif c == 'task_done':
            start(5, sq.task_done, mq.task_done, what)
        elif c == 'qsize':
            w.now(5, lambda: (sq.qsize(), sq.empty(), sq.full()), lambda: (mq.qsize(), mq.empty(), mq.full()), what)
        elif c == 'lua':
            # the Lua method's get answers (an item, or Empty when its time is up), then it sets
            # the Event (a put into the same queue would race a woken putter in Python)
            t = rng.choice([SHORT, LONG, None])
            start(i, lambda: sh.wait_then('q_get', t, 'ev_set'), lambda: mh.wait_then('q_get', t, 'ev_set'),
                  '%s: A%d lua q_get(%s)' % (what, i, t), short=t == SHORT)
        elif c == 'shutdown':
            imm = rng.random() < 0.5
            w.now(5, lambda: sq._callmethod('shutdown', (imm,)), lambda: mq.shutdown(imm), '%s(%s)' % (what, imm))
            settle(what)
            st['shut'] = True
            break   # every later call would raise ShutDown
        elif c in ('kill_get', 'kill_put', 'kill_join'):
            # a client killed while it waits: its call is taken back (an item it would have had
            # goes to the next getter, an item it brought never enters)
            m = {'kill_get': ('get', (True, LONG)), 'kill_put': ('put', ('dead', True, LONG)),
                 'kill_join': ('join', ())}[c]
            via = sq
            if rng.random() < 0.5 and c != 'kill_join':   # the child's Lua method waits instead
                via, m = sh, ('wait_then', ({'kill_get': 'q_get', 'kill_put': 'q_put'}[c], LONG, 'ev_set'))
            if st['shut'] or not {'kill_get': mq.empty, 'kill_put': mq.full,
                                  'kill_join': lambda: mq.unfinished_tasks > 0}[c]():
                continue   # it would not wait
            ch = w.child(via, m[0], m[1], what + ': a child calls ' + m[0])
            line = ch.poll_line(0.05)
            harness.check(line is None, '%s: the child did not wait: %s' % (what, line))
            w.kill(ch)
            settle(what)
        elif c == 'same_turn' and not parked and mq.qsize() == 0 and len(free) >= 2:
            # getters' deadlines and a put in one loop turn (server only): at most one getter
            # has the item, else it is queued; the model then gets to the same state
            ws = free[:rng.randint(1, min(3, len(free) - 1))]
            p = [x for x in free if x not in ws][0]
            sboxes = [w.sop(j, lambda j=j: sq.get(True, SHORT + 0.01 * j), '%s: A%d get(short)' % (what, j))
                      for j in ws]
            x = item()
            pt = [w.paused_call(SHORT + 0.3, p, sq, lambda: sq.put(x), what + ': put')]
            got = [w.answer(s) for s in sboxes]
            harness.eq(w.answer(pt[0]), ('ok', None), what + ': put')
            won = [r for r in got if r == ('ok', x)]
            harness.check(len(won) <= 1 and all(r in (('ok', x), ('err', 'Empty')) for r in got),
                          '%s: answers %r' % (what, got))
            harness.eq(sq.qsize(), 1 - len(won), what + ': the item is had or queued')
            mq.put(x)
            if won:
                mq.get()
    # the end: shut down (3.13) or feed and drain until nothing waits
    for _ in range(60):
        settle(what0 + ': the end')
        if not parked:
            break
        if rng.random() < 0.2:
            w.now(5, lambda: sq._callmethod('shutdown', (True,)), lambda: mq.shutdown(True), what0 + ': the end: shutdown')
            continue
        ws = set(' '.join(parked[i][0]['what'] for i in parked).split())
        getters = any('get' in x for x in ws)
        if getters and mq.empty() and not getattr(mq, 'is_shutdown', False):
            x = item()
            w.now(5, lambda: sq.put(x, False), lambda: mq.put(x, False), what0 + ': the end: put')
        elif not mq.empty():
            w.now(5, lambda: sq.get(False), lambda: mq.get(False), what0 + ': the end: get')
        elif mq.unfinished_tasks:
            w.now(5, sq.task_done, mq.task_done, what0 + ': the end: task_done')
        else:
            time.sleep(0.05)
    harness.check(not parked, what0 + ': waiters left at the end')
    w.now(5, lambda: sh.event().is_set(), lambda: mh.event().is_set(), what0 + ': the Lua methods set the Event')
    return [sh, sq]


SCENARIOS = [sc_barrier, sc_event, sc_lock, sc_lock, sc_condition, sc_queue, sc_queue]


def regressions(w):
    """Deterministic cases of what the random steps found."""
    sh, mh = make_hub(w)
    sc, se = sh.condition(), sh.event()
    # A waiter's release of the Condition's lock lets a Lua method waiting for that lock run at
    # once (inside the wait call): its notify must find the waiter already waiting, as in
    # Python, where wait() adds the waiter before it releases the lock.
    harness.eq(w.answer(w.sa[0].start(sc.acquire, 'A0 acquire')), ('ok', True), 'cv: A0 acquires')
    lua = w.sop(1, lambda: sh.wait_then('cond_notify', None, ''), 'A1 lua cond_notify (waits for the lock)')
    harness.check(not lua['done'].wait(0.1), 'cv: the Lua method waits for the lock')
    waiter = w.sop(0, lambda: sc.wait(3), 'A0 wait(3)')
    harness.eq(w.answer(lua), ('ok', True), 'cv: the Lua method notified')
    harness.eq(w.answer(waiter), ('ok', True), 'cv: the waiter was notified by the Lua method')
    harness.eq(w.answer(w.sa[0].start(sc.release, 'A0 release')), ('ok', None), 'cv: A0 releases')
    # The same with a Lua method as the waiter: it is answered inside its own wait call (the
    # notifier gives the lock back at once), before its coroutine could yield.
    harness.eq(w.answer(w.sa[0].start(sc.acquire, 'A0 acquire')), ('ok', True), 'cv: A0 acquires')
    lw = w.sop(1, lambda: sh.wait_then('cond_wait', 3, ''), 'A1 lua cond_wait (waits for the lock)')
    ln = w.sop(2, lambda: sh.wait_then('cond_notify', None, ''), 'A2 lua cond_notify (waits for the lock)')
    harness.eq(w.answer(w.sa[0].start(sc.release, 'A0 release')), ('ok', None), 'cv: A0 releases')
    harness.eq(w.answer(ln), ('ok', True), 'cv: the Lua notifier')
    harness.eq(w.answer(lw), ('ok', True), 'cv: the Lua waiter was notified')
    # A wake-up answers the waiters of the moment only, though one of them (a Lua method) waits
    # again at once and another wakes the object's waiters anew while the first wake-up is
    # still answering. Event: A1's third wait has no set left to see (there are two: A0's and
    # A2's), so it ends False in every order Python's threads could take.
    l1 = w.sop(1, lambda: sh.wait_then('ev_wait3', 1.0, ''), 'A1 lua ev_wait3(1)')
    l2 = w.sop(2, lambda: sh.wait_then('ev_wait', None, 'ev_set'), 'A2 lua ev_wait, then set')
    a3 = w.sop(3, lambda: se.wait(), 'A3 wait()')
    harness.eq(w.answer(w.sa[0].start(se.set, 'A0 set')), ('ok', None), 'event: set')
    harness.eq(w.answer(l2), ('ok', True), 'event: A2 (lua) woken')
    harness.eq(w.answer(a3), ('ok', True), 'event: A3 woken')
    harness.eq(w.answer(l1), ('ok', False), 'event: A1 (lua) has no set left for its last wait')
    # Barrier(4): A1 (Lua) passes and waits again at once, A2 (Lua) passes and aborts; A3
    # passed too, A1's second wait can only end broken (in Python, whatever the order).
    sh4 = w.m.Hub(4, 0, 0, False)
    sb = sh4.barrier()
    l1 = w.sop(1, lambda: sh4.wait_then('bar_wait2', 5, ''), 'A1 lua bar_wait2(5)')
    l2 = w.sop(2, lambda: sh4.wait_then('bar_wait', None, 'bar_abort'), 'A2 lua bar_wait, then abort')
    a3 = w.sop(3, lambda: sb.wait(), 'A3 wait()')
    harness.eq(w.answer(w.sa[0].start(sb.wait, 'A0 wait')), ('ok', 3), 'barrier: the last arrival')
    harness.eq(w.answer(l2), ('ok', 1), 'barrier: A2 (lua) passed')
    harness.check(w.answer(a3) in (('ok', 2), ('err', 'BrokenBarrierError')), 'barrier: A3 passed or broken')
    harness.eq(w.answer(l1), ('ok', '!BrokenBarrierError'), 'barrier: A1 (lua) waits anew and is aborted')
    if SHMGR:
        # Semaphore(0) with A1 (a Lua method: acquire, then acquire again at once) and A2
        # waiting; release(2) gives one unit to each, in arrival order: A1's second acquire
        # waits behind A2 (shmgr's promise; Python leaves the order open).
        ss = sh.semaphore()
        l1 = w.sop(1, lambda: sh.wait_then('sem_acquire2', 0.5, ''), 'A1 lua sem_acquire2(0.5)')
        a2 = w.sop(2, lambda: ss.acquire(True, 5), 'A2 acquire(5)')
        harness.eq(w.answer(w.sa[0].start(lambda: ss._callmethod('release', (2,)), 'A0 release(2)')), ('ok', None),
                   'semaphore: release(2)')
        harness.eq(w.answer(a2), ('ok', True), 'semaphore: A2 has the second unit')
        harness.eq(w.answer(l1), ('ok', False), 'semaphore: A1 (lua) acquiring again waits behind A2')
        del ss
    if SHMGR and w.policy == 'keep':
        # An RLock kept for a dead client (lock_policy "keep") is owned by nobody alive: a new
        # connection (which malloc may place where the dead one was) must not own it.
        sr = sh.rlock()
        c = w.child(sr, 'acquire', (), 'a child acquires the RLock')
        harness.eq(c.expect('got'), "got ('ok', True)", 'rlock: the child has it')
        w.kill(c)
        for k in range(3):
            a = Actor('new client %d' % k)
            harness.eq(w.answer(a.start(lambda: sr.acquire(True, SHORT), 'acquire')), ('ok', False),
                       'rlock kept for a dead client: a new client cannot take it')
            harness.eq(w.answer(a.start(sr.release, 'release')), ('err', 'RuntimeError'),
                       'rlock kept for a dead client: a new client cannot release it')
            a.jobs.put((None, None))
        del sr
    return [sh, sc, se]


def stop_while_waiting(w, rng):
    """SIGTERM with calls parked on every kind of object, Lua methods among them: each fails
    with EOFError and the server exits 0 (shmgr only: CPython's server just dies)."""
    sh = w.m.Hub(3, 1, 0, False)
    objs = dict((k, getattr(sh, k)()) for k in ('event', 'lock', 'rlock', 'semaphore', 'queue', 'condition',
                                                  'barrier'))
    w.answer(w.sa[5].start(objs['lock'].acquire, 'A5 lock'))
    w.answer(w.sa[5].start(objs['rlock'].acquire, 'A5 rlock'))
    w.answer(w.sa[5].start(lambda: objs['queue'].put(0), 'A5 fills the queue'))
    calls = [
        lambda: objs['event'].wait(), lambda: objs['lock'].acquire(), lambda: objs['rlock'].acquire(),
        lambda: objs['semaphore'].acquire(), lambda: objs['queue'].put(1), lambda: objs['queue'].join(),
        lambda: objs['barrier'].wait(), lambda: sh.wait_then(rng.choice(['ev_wait', 'sem_acquire', 'bar_wait',
                                                                           'lock_acquire', 'cond_wait']), None, ''),
        objs['condition'].wait]   # its actor acquires first (one call each: 'sent' must mean this one)
    rng.shuffle(calls)
    extra = [Actor('stop %d' % k) for k in range(len(calls))]
    cv = calls.index(objs['condition'].wait)
    harness.eq(w.answer(extra[cv].start(objs['condition'].acquire, 'acquire')), ('ok', True), 'stop: acquire')
    boxes = [a.start(f, 'parked call %d' % k) for k, (a, f) in enumerate(zip(extra, calls))]
    for b in boxes:
        w.sync(b)
    harness.check(not any(b['done'].is_set() for b in boxes), 'stop: every call waits')
    os.kill(w.srv.pid, signal.SIGTERM)
    for b in boxes:
        harness.eq(w.answer(b), ('err', 'EOFError'), 'stop: %s fails' % b['what'])
    harness.eq(w.srv.wait_exit(10), 0, 'stop: the server exits 0')
    for a in extra:
        a.jobs.put((None, None))


def run_phase(policy, seed, steps, stop_at):
    rng = random.Random(seed)
    env = {'SHMGR_STRESS_LOCK_POLICY': policy}
    ran = 0
    with harness.server('conf/park_stress.lua', py_setup=py_setup, unix=True, env=env) as srv:
        w = World(srv, rng, policy)
        base = w.m._number_of_objects()
        try:
            objs = regressions(w)
            del objs
            gc.collect()
            harness.check(harness.wait_until(lambda: w.m._number_of_objects() == base, timeout=5),
                          'regressions: number_of_objects %d, want %d' % (w.m._number_of_objects(), base))
            for step in range(steps):
                if time.time() > stop_at:
                    harness.note('time is up after %d steps of %d' % (step, steps))
                    break
                sc = rng.choice(SCENARIOS)
                only = os.environ.get('SHMGR_STRESS_ONLY')   # e.g. sc_event: only that scenario
                if only:
                    sc = globals()[only]
                sub = rng.getrandbits(32)
                w.log = []
                t0 = time.time()
                nfail = len(harness._failures)
                try:
                    objs = sc(w, random.Random(sub))
                except StepFailed as e:
                    harness.fail('step %d (%s, lock_policy %s): %s\nsteps so far:\n  %s' % (
                        step, sc.__name__, policy, e, '\n  '.join(w.log[-30:])))
                    break
                except Exception as e:
                    harness.fail('step %d (%s): %s: %s\n%s' % (step, sc.__name__, type(e).__name__, e,
                                                                '\n  '.join(w.log[-30:])))
                    break
                ran += 1
                if len(harness._failures) > nfail:
                    harness.note('step %d (%s, lock_policy %s) failed; its operations:\n  %s' % (
                        step, sc.__name__, policy, '\n  '.join(w.log[-60:])))
                del objs
                gc.collect()
                if not harness.check(srv.alive(), 'step %d (%s): the server died:\n%s' % (step, sc.__name__, srv.log())):
                    break
                if not harness.check(harness.wait_until(lambda: w.m._number_of_objects() == base, timeout=5),
                                     'step %d (%s): number_of_objects %d, want %d' % (
                                         step, sc.__name__, w.m._number_of_objects(), base)):
                    break
                if os.environ.get('SHMGR_STRESS_VERBOSE'):
                    harness.note('step %d %s %.1fs' % (step, sc.__name__, time.time() - t0))
            harness.check(srv.alive(), 'the server died:\n%s' % srv.log())
            if SHMGR and not harness._failures:
                stop_while_waiting(w, rng)
        finally:
            w.close()
    return ran


def main():
    seed = int(os.environ.get('SHMGR_STRESS_SEED') or random.SystemRandom().randrange(1 << 32))
    steps = int(os.environ.get('SHMGR_STRESS_STEPS') or 24)
    seconds = float(os.environ.get('SHMGR_STRESS_SECONDS') or 0)
    stop_at = time.time() + seconds if seconds > 0 else float('inf')
    harness.note('seed %d, %d steps (replay: SHMGR_STRESS_SEED=%d SHMGR_STRESS_STEPS=%d)' % (seed, steps, seed, steps))
    if not SHMGR:
        harness.skip_part('same-turn timeouts, killed clients, FIFO checks',
                          'shmgr only (SIGSTOP of the server; documented differences)')
    if PY < (3, 13):
        harness.note('note: Queue.shutdown through _callmethod; its queue.ShutDown reaches this client as the '
                     'AttributeError of an exception it cannot load; the model is 3.13\'s Queue')
    t0 = time.time()
    ran = 0
    for k, policy in enumerate(('release', 'keep')):   # half the steps (and the time) each
        ran += run_phase(policy, seed + k, (steps + 1 - k) // 2,
                         stop_at if k else min(stop_at, t0 + seconds / 2 if seconds > 0 else stop_at))
    harness.note('%d steps in %.0fs (seed %d)' % (ran, time.time() - t0, seed))
    harness.done()


if __name__ == '__main__':
    main()
