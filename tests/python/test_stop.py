"""SIGTERM while stock clients wait (Queue.get, Lock.acquire, Event.wait): each waiting call
fails at once with EOFError('shmgr is stopping: SIGTERM'), nothing they waited for is taken,
and the server exits 0. SIGINT stops it too, whatever disposition it inherited, but for a server
with an owner (--watch-fd: the Python package's), which ignores it as CPython's manager
processes do."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("how waiting calls end on SIGTERM is shmgr's own (CPython's server just dies)")
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        q, lock, ev = m.Queue(), m.Lock(), m.Event()
        lock.acquire()
        outcomes = {}

        def wait(name, fn):
            try:
                outcomes[name] = ('returned', fn())
            except Exception as e:  # the point: which exception, and what it says
                outcomes[name] = (type(e).__name__, str(e))

        threads = [threading.Thread(target=wait, args=a) for a in
                   (('get', q.get), ('acquire', lock.acquire), ('wait', ev.wait))]
        for t in threads:
            t.start()
        time.sleep(0.5)  # all three parked
        harness.eq(outcomes, {}, 'the calls wait')
        started = time.time()
        os.kill(srv.pid, signal.SIGTERM)
        for t in threads:
            t.join(10)
        for name in ('get', 'acquire', 'wait'):
            harness.eq(outcomes.get(name), ('EOFError', 'shmgr is stopping: SIGTERM'), '%s fails saying why' % name)
        harness.check(time.time() - started < 3, 'at once')
        harness.eq(srv.wait_exit(5), 0, 'the server exits 0')

    with harness.server() as srv:
        os.kill(srv.pid, signal.SIGINT)
        harness.eq(srv.wait_exit(5), 0, 'SIGINT stops the server, exit 0')

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the server started now
    try:
        srv_cm = harness.server()
        srv = srv_cm.__enter__()
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        os.kill(srv.pid, signal.SIGINT)
        harness.eq(srv.wait_exit(5), 0, 'SIGINT stops it even when it was started with SIGINT ignored')
    finally:
        srv_cm.__exit__(None, None, None)

    # a server with an owner (--watch-fd, as the package starts one) ignores SIGINT
    sys.path.insert(0, os.path.join(harness.REPO, 'python'))
    import shmgr
    with shmgr.Manager(binary=os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr')) as m:
        d = m.dict()
        os.kill(m._process.pid, signal.SIGINT)
        time.sleep(0.3)
        d['after'] = 'SIGINT'
        harness.eq(dict(d), {'after': 'SIGINT'}, 'a server with an owner serves on after a SIGINT')
        harness.eq(m.dict({1: 2}).copy(), {1: 2}, 'and makes new objects')
    harness.eq(m._process.exitcode, 0, 'and stops at shutdown(), exit 0')
    harness.done()


if __name__ == '__main__':
    main()
