"""The remote-queue example of the multiprocessing docs: a master puts tasks,
separate worker processes (each on its own connections) take them and put
results.  Over TCP and over a Unix socket."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import queue  # noqa: E402
import time  # noqa: E402

REGS = ('get_task_queue', 'get_result_queue')


def py_setup(M):
    tasks, results = queue.Queue(), queue.Queue()
    M.register('get_task_queue', callable=lambda: tasks)
    M.register('get_result_queue', callable=lambda: results)


def worker():
    """Run in a child process: take tasks until None, put (n, n*n, pid)."""
    m = harness.client_manager(harness.from_env(), REGS)
    tasks, results = m.get_task_queue(), m.get_result_queue()
    print('READY')
    sys.stdout.flush()
    while True:
        n = tasks.get(timeout=20)
        if n is None:
            break
        results.put((n, n * n, os.getpid()))
    print('DONE')


def run_master(unix, nworkers, ntasks):
    what = '%s, %d worker(s)' % ('unix' if unix else 'tcp', nworkers)
    with harness.server(harness.conf('remote_queue.lua'), py_setup, unix=unix) as srv:
        if unix:
            harness.check(isinstance(srv.address, str) and srv.address.endswith('s.sock'),
                          '%s: unix address is the socket path: %r' % (what, srv.address))
        else:
            harness.check(isinstance(srv.address, tuple) and srv.address[0] == '127.0.0.1'
                          and srv.address[1] > 0, '%s: tcp address: %r' % (what, srv.address))
        m = harness.client_manager(srv, REGS)
        tasks, results = m.get_task_queue(), m.get_result_queue()
        for n in range(ntasks):
            tasks.put(n)
        harness.eq(tasks.qsize(), ntasks, '%s: task qsize after puts' % what)
        workers = [harness.Child(srv, argv=[os.path.abspath(__file__), 'worker'])
                   for _ in range(nworkers)]
        for w in workers:
            w.expect('READY', 20)
        for _ in workers:
            tasks.put(None)
        got = []
        deadline = time.time() + 30
        try:
            for _ in range(ntasks):
                got.append(results.get(timeout=max(0.1, deadline - time.time())))
        except queue.Empty:
            harness.fail('%s: only %d of %d results within 30 s' % (what, len(got), ntasks))
        for w in workers:
            rc = w.wait(20)
            harness.check(rc == 0, '%s: worker exited %r; output:\n%s' % (what, rc, w.output()))
        harness.eq(sorted((n, sq) for n, sq, _ in got), [(n, n * n) for n in range(ntasks)],
                   '%s: results' % what)
        pids = set(pid for _, _, pid in got)
        harness.check(pids <= set(w.pid for w in workers) and os.getpid() not in pids,
                      '%s: results come from the worker processes: %r' % (what, pids))
        harness.eq(tasks.qsize(), 0, '%s: task queue drained' % what)
        harness.eq(results.qsize(), 0, '%s: result queue drained' % what)
        harness.check(results.empty(), '%s: results.empty()' % what)
        # the getter returns the same queue every call
        again = m.get_result_queue()
        harness.eq(again._token.id, results._token.id, '%s: getter returns the same object' % what)
        results.put('via first proxy')
        harness.eq(again.get(timeout=5), 'via first proxy', '%s: seen through the second proxy' % what)


def main():
    run_master(unix=False, nworkers=1, ntasks=10)
    run_master(unix=True, nworkers=2, ntasks=20)
    harness.done()


if __name__ == '__main__':
    if sys.argv[1:] == ['worker']:
        worker()
    else:
        main()
