"""A commit that fails (the disk refuses the turn's writes) fails the calls that
touched durable queues, with OSError, and loses nothing: their changes are
rolled back, the queues read back from the store, calls on other objects in
the same turn succeed, and the server keeps serving.  The disk is made to
refuse by lowering the server's file size limit (prlimit) below the store's
files: SQLite's writes then fail with EFBIG at the commit."""

import os
import subprocess
import sys
import threading
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import queue  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import shutil  # noqa: E402

CONF = '''
data_dir = "data"
log_level = "info"
local jobs = shmgr.JoinableQueue{ name = "jobs", durable = true }
local work = shmgr.JoinableQueue{ name = "work", durable = true, redeliver = true }
local solo = shmgr.Queue{ name = "solo", durable = true, redeliver = true }
shmgr.register("get_solo", function() return solo end)
shmgr.register("get_jobs", function() return jobs end)
shmgr.register("get_work", function() return work end)
'''
REGS = ('get_jobs', 'get_work', 'get_solo')


def prlimit(pid, spec):
    subprocess.check_call(['prlimit', '--pid', str(pid), '--fsize=' + spec])


def stored(tmp, name):
    db = sqlite3.connect('file:%s?mode=ro' % os.path.join(tmp, 'data', 'shmgr.db'), uri=True)
    try:
        n = db.execute('SELECT count(*) FROM queue_items WHERE queue = ?', (name,)).fetchone()[0]
        count = db.execute('SELECT count FROM objects WHERE name = ?', (name,)).fetchone()[0]
        return n, count
    finally:
        db.close()


def at_once(srv, n, call):
    """Run call(manager, i) in n threads, each with its own connections, released
    together so that their requests share turns. Returns ([(i, result or
    exception)], release): the threads keep their connections open (a closed one
    would give its items in flight back) until release() is called."""
    ms = [harness.client_manager(srv, REGS) for _ in range(n)]
    go = threading.Barrier(n + 1)
    hold = threading.Event()
    out = []

    def run(i):
        go.wait()
        try:
            out.append((i, call(ms[i], i)))
        except Exception as e:  # noqa: BLE001 - what the client sees is the point
            out.append((i, e))
        go.wait()
        hold.wait(60)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    go.wait()  # all start
    go.wait()  # all answered

    def release():
        hold.set()
        for t in ts:
            t.join(30)
    return sorted(out, key=lambda p: p[0]), release


def main():
    if harness.BACKEND != 'shmgr':
        harness.skip('durable queues are shmgr configuration')
    if not shutil.which('prlimit'):
        harness.skip('prlimit (util-linux) is not installed')
    tmp = tempfile.mkdtemp(prefix='shmgr-commit-')
    try:
        os.mkdir(os.path.join(tmp, 'data'))
        cfg = os.path.join(tmp, 'conf.lua')
        with open(cfg, 'w') as f:
            f.write(CONF)
        with harness.server(cfg) as srv:
            m = harness.client_manager(srv, REGS)
            jobs, work = m.get_jobs(), m.get_work()
            sm = harness.sync_manager(srv)
            plain = sm.dict()
            for i in range(20):
                jobs.put(('job', i))
                work.put(('work', i))
            got = work.get()  # one item in flight on m's connection, settled below
            harness.eq(got, ('work', 0), 'first work item')
            harness.eq(stored(tmp, 'jobs'), (20, 20), 'jobs stored before the failure')
            try:
                prlimit(srv.pid, '1:unlimited')  # every write past byte 1 of a file fails
            except subprocess.CalledProcessError as e:
                harness.skip('cannot lower the server\'s file size limit here: %s' % e)

            # puts and gets of durable queues in the same turns: all fail, nothing changes
            res, release = at_once(srv, 8, lambda mm, i: mm.get_jobs().put(('new', i)) if i % 2 else mm.get_jobs().get())
            release()
            for i, r in res:
                harness.check(isinstance(r, OSError) and 'could not store' in str(r),
                              'call %d in a failed commit raises OSError(could not store): %r' % (i, r))
            harness.eq(jobs.qsize(), 20, 'jobs after the failed puts and gets')
            # gets of a redelivering queue in turns with a failing put: a get in a turn
            # that had made no change yet was answered before the commit, and its item
            # is in flight; a later one failed with the turn, and its item is queued again
            res, release = at_once(srv, 6, lambda mm, i: mm.get_work().get(timeout=5) if i % 3 else mm.get_jobs().put('x'))
            got = []
            for i, r in res:
                if i % 3 == 0:
                    harness.check(isinstance(r, OSError), 'put %d in a failed turn raises OSError: %r' % (i, r))
                elif isinstance(r, OSError):
                    harness.check('could not store' in str(r), 'get %d failed with the commit: %r' % (i, r))
                else:
                    got.append(r)
            harness.eq(len(set(got)), len(got), 'no work item given twice: %r' % got)
            harness.note('redelivering gets: %d answered before a failed commit, %d failed with it'
                         % (len(got), 4 - len(got)))
            # a put handed at once to a parked getter of a redelivering queue: stored (in
            # flight on the getter) in the turn that fails: both calls fail, the item is
            # nowhere, and the getter's connection has nothing in flight
            solo = m.get_solo()
            gm = harness.client_manager(srv, REGS)
            parked = []
            t = threading.Thread(target=lambda: parked.append(
                harness.raises(OSError, gm.get_solo().get, timeout=10, what='parked get woken in a failed turn')))
            t.start()
            harness.wait_until(lambda: False, 0.5)  # give it time to park
            harness.raises(OSError, solo.put, 'z', what='put to a parked getter in a failed turn')
            t.join(15)
            harness.check(parked and parked[0] is not None and 'could not store' in str(parked[0]),
                          'the parked getter gets the commit error: %r' % parked)
            harness.eq(solo.qsize(), 0, 'the item of the failed put is nowhere')
            # a task_done whose commit fails: ('work', 0) is not settled; it is queued again
            # (at least once: it may be done twice), at the head, where it was
            harness.raises(OSError, work.task_done, what='task_done in a failed commit')
            # a plain dict is not durable: its calls succeed while the store fails
            plain['k'] = 1
            harness.eq(plain['k'], 1, 'a dict set while the store fails')
            harness.check('a commit failed' in srv.log(), 'the failed commit is logged')

            prlimit(srv.pid, 'unlimited:unlimited')
            harness.eq(jobs.qsize(), 20, 'jobs once the disk takes writes again')
            harness.eq(work.qsize(), 20 - len(got), 'work items: 20 put, %d in flight' % len(got))
            release()  # their connections close: their items come back
            harness.check(harness.wait_until(lambda: work.qsize() == 20, 5), 'the items of closed connections come back')
            del gm  # the failed getter's connection: nothing was in flight on it
            harness.eq(solo.qsize(), 0, 'solo after its failed getter went')
            harness.eq(stored(tmp, 'solo'), (0, 0), 'solo stored')
            items = []
            for _ in range(20):
                items.append(work.get(timeout=5))
                work.task_done()
            harness.eq(sorted(items), [('work', i) for i in range(20)], 'every work item, once each, after the failures')
            harness.eq(stored(tmp, 'work'), (0, 0), 'work stored once all are done')
            jobs.put(('after', 1))
            harness.eq(stored(tmp, 'jobs'), (21, 21), 'jobs stored after a put that returned')
            firsts = [jobs.get() for _ in range(3)]
            harness.eq(firsts, [('job', 0), ('job', 1), ('job', 2)], 'order kept through the failures')
            harness.eq(stored(tmp, 'jobs'), (18, 21), 'gets that returned are out of the store')
            harness.check(srv.alive(), 'server alive')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
