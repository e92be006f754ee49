"""Timeouts that end in the same turn of the server's loop, where the first one to be
handled ends the others' calls: the server must answer each call once and stay alive.

The server is stopped (SIGSTOP) while the waiters' deadlines pass, so that on SIGCONT
every timer expires in one loop turn. The first handled (the earliest deadline) then
wakes the other waiters: a Barrier's timeout breaks the barrier for all (the crash of
issue 9: a stale timer then fired for an answered call, found its Barrier through a
queue pointer that was no longer one, and the server died with SIGSEGV); a Lua method
whose wait timed out sets an Event whose waiters' deadlines have passed too."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import gc  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import SyncManager  # noqa: E402

SHMGR = harness.BACKEND == 'shmgr'


def paused(srv, seconds):
    """Stop the server for seconds (shmgr only: CPython's server runs a thread per
    waiter, and its timeouts cannot end in one loop turn)."""
    if SHMGR:
        os.kill(srv.pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(srv.pid, signal.SIGCONT)
    else:
        time.sleep(seconds)


def in_threads(n, func):
    """Run func(i) in n threads (each thread: its own connection); return the results
    (a value or the exception's class name) once all have ended, in thread order."""
    out = [None] * n

    def run(i):
        try:
            out[i] = func(i)
        except Exception as e:
            out[i] = type(e).__name__
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.daemon = True
        t.start()
    return ts, out


def join_all(ts, timeout=15):
    deadline = time.time() + timeout
    for t in ts:
        t.join(max(0.01, deadline - time.time()))
    return not any(t.is_alive() for t in ts)


def barrier_issue_repro(srv):
    """The issue's reproduction, with threads: a full pass with an explicit timeout, then
    one party late and the others breaking the barrier with the default timeout."""
    m = harness.sync_manager(srv)
    n = 5
    b = m.Barrier(n, timeout=0.5)

    def party(i):
        idx = b.wait(30)
        if idx == n // 2:
            time.sleep(1.0)
        try:
            b.wait()
            return 'passed'
        except Exception as e:
            return type(e).__name__
    ts, out = in_threads(n, party)
    harness.check(join_all(ts), 'barrier repro: a party is still waiting')
    harness.eq(out, ['BrokenBarrierError'] * n, 'barrier repro: every party sees the barrier broken')
    harness.eq(b.broken, True, 'barrier repro: broken afterwards')
    del b
    return m


def barrier_same_turn(srv):
    """Four waiters' timeouts end in one loop turn: the first breaks the barrier for all."""
    m = harness.sync_manager(srv)
    b = m.Barrier(5)
    ts, out = in_threads(4, lambda i: b.wait(0.3 + 0.01 * i))
    time.sleep(0.2)
    harness.eq(b.n_waiting, 4, 'barrier same turn: all four parked')
    paused(srv, 0.6)
    harness.check(join_all(ts), 'barrier same turn: a waiter never answered')
    harness.eq(out, ['BrokenBarrierError'] * 4, 'barrier same turn: answers')
    harness.eq(b.broken, True, 'barrier same turn: broken')
    b.reset()
    # the barrier works again, and every connection is in step (one answer per call)
    ts, out = in_threads(5, lambda i: b.wait(5))
    harness.check(join_all(ts), 'barrier same turn: a pass after reset never ended')
    harness.eq(sorted(out), [0, 1, 2, 3, 4], 'barrier same turn: the pass after reset')
    del b
    return m


def lua_wakes_in_timeout(srv):
    """A Lua method's wait times out and sets an Event whose waiters' own deadlines passed
    in the same turn: each waiter gets exactly one answer (its timeout's False or the
    set's True), and its connection stays in step for the next call."""
    from multiprocessing.managers import BaseManager

    class M(BaseManager):
        pass
    M.register('Ringer')
    M.register('get_bell')
    m = M(address=srv.address, authkey=srv.authkey)
    m.connect()
    r = m.Ringer()
    bell = m.get_bell()
    first = harness.run_thread(r.wait_then_ring, 0.3)   # the earliest deadline
    time.sleep(0.05)
    ts, out = in_threads(4, lambda i: bell.wait(0.3))
    time.sleep(0.1)
    paused(srv, 0.6)
    harness.check(join_all(ts), 'lua wake-up: a bell waiter never answered')
    harness.check(first['done'].wait(5), 'lua wake-up: the Lua method never answered')
    harness.eq(first.get('result'), False, 'lua wake-up: the method timed out on the gate')
    for i, got in enumerate(out):
        harness.check(got in (True, False), 'lua wake-up: waiter %d answered %r' % (i, got))
    harness.eq(bell.is_set(), True, 'lua wake-up: the bell is set')
    # each thread's connection answers its next call with that call's answer, not a stale one
    ts, out = in_threads(4, lambda i: (bell.wait(0), bell.is_set(), r.wait_then_ring(0)))
    harness.check(join_all(ts), 'lua wake-up: a follow-up call never answered')
    harness.eq(out, [(True, True, False)] * 4, 'lua wake-up: follow-up answers in step')
    del r, bell
    return m


def py_setup(M):
    import threading as th
    gate, bell = th.Event(), th.Event()

    class Ringer(object):
        def wait_then_ring(self, t):
            got = gate.wait(t)
            bell.set()
            return got
    M.register('Ringer', Ringer)
    M.register('get_bell', lambda: bell)


def main():
    # each case on a server of its own, so that each one shows whether it kills the server
    for case in (barrier_issue_repro, barrier_same_turn, lua_wakes_in_timeout):
        with harness.server('conf/park_timers.lua', py_setup=py_setup) as srv:
            base = harness.sync_manager(srv)
            baseline = base._number_of_objects()
            try:
                case(srv)
            except Exception as e:
                harness.fail('%s: %s: %s' % (case.__name__, type(e).__name__, e))
            if not harness.check(srv.alive(), '%s: the server died:\n%s' % (case.__name__, srv.log())):
                continue
            gc.collect()  # a proxy may sit in a cycle through an exception's traceback
            harness.check(harness.wait_until(lambda: base._number_of_objects() == baseline),
                          '%s: number_of_objects %d, want %d' % (case.__name__, base._number_of_objects(), baseline))
    harness.done()


if __name__ == '__main__':
    main()
