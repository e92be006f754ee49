"""Durable queues under real kills (issue 10, item 6), with stock clients.

1. The server is SIGKILLed under load: 16 producer and 16 consumer processes move
   distinct items (producer, seq) through one durable JoinableQueue (redeliver = true,
   durability "process"); at several kill points chosen from SHMGR_KILL_SEED the server
   is killed and started again on the same address and data_dir, and every client whose
   call failed on the lost connection reconnects and goes on (a producer puts again an
   item whose put did not return; a consumer never repeats a task_done). Then everything
   is drained: every item whose put returned was processed (got, then task_done called) at
   least once; each duplicate is explained by a redelivery (an earlier delivery's
   task_done had no reply: the item was in flight at a kill) or by a producer's repeated
   put (the first put had no reply), else it is a bug; join() returns, the queue and the
   store are empty, the server is alive and stops cleanly.
2. The same with a durable Queue without redeliver: every item whose put returned was got
   at least once, except at most one per get whose reply was lost in a kill.
3. Workers killed between get and task_done (the server is not killed): their items reach
   other workers, join() returns, and the server logs "went back to the queue"; for a
   durable and for a non-durable redeliver queue.
0 and 4 are regressions for server bugs these runs found: a stale decref after a restart
(idents were reused by each run), and a failed commit taking back items whose get's reply
had gone out (the commit made to fail by the server's file size limit).

Scale: the full size (100,000 items, 3 kill points) runs with Debian's python3 (3.11 at
/usr/bin/python3) against ./shmgr; other interpreters, and a server given by SHMGR_BIN
(the sanitizer or valgrind builds), run a reduced size (5,000 items, 2 kill points).
Environment: SHMGR_KILL_ITEMS, SHMGR_KILL_POINTS, SHMGR_KILL_SEED override them. The full
size takes about a minute alone on two cores, and twice that among make test's parallel
jobs: hence the longer timeout asked of tests/run.py below.

Clients reconnect the way a stock client can: on a connection error a process drops its
proxy and its manager (the proxy's finalizer closes the thread's broken connection and
sends its decref, which reaches the restarted server when it is up), then connects a new
manager and asks for the queue again.
"""
# run.py: timeout 300

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import gc  # noqa: E402
import multiprocessing  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import BaseManager  # noqa: E402

AUTHKEY = b'shmgr-kill-test'
PRODUCERS = 16
CONSUMERS = 16
RECONNECT_TIMEOUT = 30.0   # a client gives up reconnecting after this long
GET_TIMEOUT = 0.3          # a consumer's get(timeout=...): how often it looks at the stop flag
ctx = multiprocessing.get_context('fork')
TEST_PID = os.getpid()


class KillManager(BaseManager):
    pass


for _name in ('get_jobs', 'get_plain', 'get_work', 'get_mem'):
    KillManager.register(_name)


def full_size():
    """(True, why) for the full size, else (False, why)."""
    if not (sys.version_info[:2] == (3, 11)
            and os.path.realpath(sys.executable) == os.path.realpath('/usr/bin/python3')):
        return False, "reduced size: the full size runs with Debian's python3 3.11"
    if os.environ.get('SHMGR_BIN'):
        return False, 'reduced size: the server is SHMGR_BIN=%s' % os.environ['SHMGR_BIN']
    return True, 'full size'


# --------------------------------------------------------------------------
# The server, started by hand: killed and started again on the same port

class Shmgr(object):
    def __init__(self, tmpdir, config_text):
        self.tmpdir = tmpdir
        self.conf = os.path.join(tmpdir, 'shmgr.conf.lua')
        with open(self.conf, 'w') as f:
            f.write(config_text)
        os.mkdir(os.path.join(tmpdir, 'data'))
        self.db = os.path.join(tmpdir, 'data', 'shmgr.db')
        self.logpath = os.path.join(tmpdir, 'shmgr.log')
        self.port = 0
        self.proc = None
        self.address = None
        self.authkey = AUTHKEY
        self.starts = 0
        self.start_lines = []   # the "queue ...: N items, M unfinished" lines of each start
        self.preexec = harness._child_setup  # in the server's process before exec

    def log(self):
        with open(self.logpath, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def spawn(self):
        """Start shmgr on the port of the first start (any port the first time); return
        where its log begins."""
        exe = os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr')
        mark = os.path.getsize(self.logpath) if os.path.exists(self.logpath) else 0
        env = dict(os.environ)
        env['SHMGR_AUTHKEY'] = AUTHKEY.decode('ascii')
        with open(self.logpath, 'ab') as logf:
            self.proc = subprocess.Popen([exe, '--config', self.conf, '--listen', '127.0.0.1:%d' % self.port],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True, preexec_fn=self.preexec)
        return mark

    def start(self):
        """spawn() and wait until it listens; the start's log."""
        mark = self.spawn()
        deadline = time.time() + harness.START_TIMEOUT
        while True:
            text = self.log()[mark:]
            m = re.search(r'listening on (\S+)', text)
            if m:
                break
            if self.proc.poll() is not None and 'Address already in use' in text and time.time() < deadline:
                # while it was down, some process's outgoing connection took the port as its
                # own (rare: connect() and bind(0) prefer ports of different parities)
                harness.note('restart: port %d in use, trying again' % self.port)
                time.sleep(0.1)
                mark = self.spawn()
                continue
            if self.proc.poll() is not None or time.time() > deadline:
                self.kill()
                raise harness.ServerError('shmgr did not start (exit status %r); its log:\n%s'
                                          % (self.proc.returncode, self.log()))
            time.sleep(0.002)
        host, _, port = m.group(1).rpartition(':')
        if self.port:
            harness.eq(int(port), self.port, 'restarted on the same port')
        self.port = int(port)
        self.address = (host, self.port)
        self.starts += 1
        self.start_lines.append(re.findall(r"queue '(\w+)': (\d+) items?, (\d+) unfinished", text))
        return text

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self):
        """SIGTERM; the exit status (0 wanted) and the log's closing line."""
        if not self.alive():
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(harness.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def remove_stale_dirs():
    """The temporary dirs of runs that were killed (SIGKILL: no finally ran) go."""
    import glob
    for d in glob.glob(os.path.join(tempfile.gettempdir(), 'shmgr-kill-*-*')):
        m = re.match(r'shmgr-kill-(\d+)-', os.path.basename(d))
        if not m or int(m.group(1)) == TEST_PID:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def store_counts(db):
    """(items, [(name, count)]) in the store, read with the sqlite3 module."""
    con = sqlite3.connect(db, timeout=10)
    try:
        items = con.execute('select count(*) from items').fetchone()[0]
        objs = con.execute('select name, count from objects order by name').fetchall()
    finally:
        con.close()
    return items, objs


# --------------------------------------------------------------------------
# Clients (each in a forked process)

def is_conn_error(e):
    if isinstance(e, (EOFError, ConnectionError)):
        return True
    # multiprocessing.connection: a reply cut short
    return type(e) is OSError and 'end of file' in str(e)


class Session(object):
    """A stock client of one queue that reconnects after the server went away."""

    def __init__(self, address, typeid):
        self.address = address
        self.typeid = typeid
        self.m = None
        self.q = None
        self.reconnects = 0
        self.connect()

    def connect(self):
        deadline = time.time() + RECONNECT_TIMEOUT
        while True:
            try:
                m = KillManager(address=self.address, authkey=AUTHKEY)
                m.connect()
                self.q = getattr(m, self.typeid)()
                self.m = m
                return
            except Exception as e:
                if not is_conn_error(e) or time.time() > deadline:
                    raise
                time.sleep(0.02)

    def reconnect(self):
        # the stock way: drop the proxy (its finalizer closes this thread's broken
        # connection and sends its decref), then a new manager and a new proxy
        self.q = None
        self.m = None
        gc.collect()
        self.reconnects += 1
        self.connect()


def child_start():
    harness._child_setup()  # dies with the test
    if os.getppid() != TEST_PID:  # it died before that
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def producer_main(address, typeid, index, first, count, path, go):
    """Put items (index, seq) for seq in [first, first+count), each until its put returns.
    Writes 'P index seq attempts' for each and a summary line."""
    child_start()
    out = []
    unexpected = []
    s = Session(address, typeid)
    go[0].release()
    go[1].wait()
    for seq in range(first, first + count):
        attempts = 0
        while True:
            attempts += 1
            try:
                s.q.put((index, seq))
                break
            except Exception as e:
                if not is_conn_error(e):
                    unexpected.append('put: %s: %s' % (type(e).__name__, e))
                s.reconnect()
        out.append('P %d %d %d\n' % (index, seq, attempts))
    out.append('S producer %d reconnects %d\n' % (index, s.reconnects))
    for u in unexpected:
        out.append('U %s\n' % u.replace('\n', ' | '))
    with open(path, 'w') as f:
        f.writelines(out)
    os._exit(0)  # no finalizer: every proxy and connection simply ends with the process


def consumer_main(address, typeid, index, path, progress, stop, go, joinable, fatal=None, hold=None, death=None,
                  stride=0):
    """Get items until stop is set and the queue is empty; after each get, task_done
    (joinable) unless the item is fatal: then die (itself, or held until the test kills it).
    Writes 'D p s outcome' per delivery (outcome: ok, lost = task_done raised a connection
    error, got = no task_done), 'K p s' per item held when it died, and a summary line."""
    child_start()
    out = []
    unexpected = []
    get_errors = 0
    s = Session(address, typeid)
    go[0].release()
    go[1].wait()

    def flush():
        out.append('S consumer %d reconnects %d get_errors %d\n' % (index, s.reconnects, get_errors))
        for u in unexpected:
            out.append('U %s\n' % u.replace('\n', ' | '))
        with open(path, 'w') as f:
            f.writelines(out)

    while True:
        try:
            item = s.q.get(timeout=GET_TIMEOUT)
        except queue.Empty:
            if stop.is_set():
                break
            continue
        except Exception as e:
            if not is_conn_error(e):
                unexpected.append('get: %s: %s' % (type(e).__name__, e))
            get_errors += 1
            s.reconnect()
            continue
        progress[index] += 1
        if fatal is not None:
            k = item[0] * stride + item[1]
            if fatal[k]:
                fatal[k] = 0  # fatal once: the item comes back to another worker
                held = [item]
                if death[k] == 2:  # a second item in flight too (get_nowait)
                    try:
                        held.append(s.q.get_nowait())
                    except queue.Empty:
                        pass
                for h in held:
                    out.append('K %d %d\n' % h)
                flush()
                if death[k] == 3:  # held until the test kills it
                    hold[index] = 1
                    time.sleep(600)
                os.kill(os.getpid(), signal.SIGKILL)
        if not joinable:
            out.append('D %d %d got\n' % item)
            continue
        try:
            s.q.task_done()
            outcome = 'ok'
        except Exception as e:
            if not is_conn_error(e):
                unexpected.append('task_done: %s: %s' % (type(e).__name__, e))
            outcome = 'lost'  # never repeated: the new connection has nothing in flight
            s.reconnect()
        out.append('D %d %d %s\n' % (item[0], item[1], outcome))
    flush()
    os._exit(0)


def joiner_main(address, typeid):
    """q.join() in a process of its own, so that the test can give up on it."""
    child_start()
    try:
        s = Session(address, typeid)
        s.q.join()
    except Exception as e:
        print('join raised %s: %s' % (type(e).__name__, e))
        sys.stdout.flush()
        os._exit(1)
    os._exit(0)


def wait_join(address, typeid, timeout):
    """True when q.join() returned within timeout."""
    p = ctx.Process(target=joiner_main, args=(address, typeid))
    p.start()
    p.join(timeout)
    if p.exitcode is None:
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        return False
    return p.exitcode == 0


def read_records(paths):
    """puts: {item: attempts}; deliveries: {item: [outcome]}; killed: [item];
    summaries: [line]; unexpected: [line]."""
    puts, deliveries, killed, summaries, unexpected = {}, {}, [], [], []
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                w = line.split()
                if w[0] == 'P':
                    puts[(int(w[1]), int(w[2]))] = int(w[3])
                elif w[0] == 'D':
                    deliveries.setdefault((int(w[1]), int(w[2])), []).append(w[3])
                elif w[0] == 'K':
                    killed.append((int(w[1]), int(w[2])))
                elif w[0] == 'S':
                    summaries.append(line.strip())
                elif w[0] == 'U':
                    unexpected.append(line[2:].strip())
    return puts, deliveries, killed, summaries, unexpected


def summary_total(summaries, key):
    total = 0
    for line in summaries:
        w = line.split()
        if key in w:
            total += int(w[w.index(key) + 1])
    return total


def ready(go, n, timeout):
    """Wait until n clients said they are connected, then let them start."""
    deadline = time.time() + timeout
    for i in range(n):
        if not go[0].acquire(timeout=max(0.0, deadline - time.time())):
            harness.fail('only %d of %d clients connected within %g s' % (i, n, timeout))
            break
    go[1].set()


def reap(procs):
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
    for p in procs:
        p.join()


# --------------------------------------------------------------------------
# 0. A reference kept from before a restart

def stale_proxy_run():
    """A stock client that reconnects after a restart drops its old proxy, whose finalizer
    sends decref(old ident) to the new server. That ident must not name an object of the
    new run: with idents counted from 1 at each start it named the same declared queue,
    and the stale decref took away another client's reference (its next call: KeyError)."""
    label = '0. stale decref after a restart'
    tmpdir = tempfile.mkdtemp(prefix='shmgr-kill-%d-' % TEST_PID)
    srv = Shmgr(tmpdir, CONFIG_LOAD)
    try:
        srv.start()
        reply = harness.raw_call(srv, None, 'create', ('get_jobs',))  # client A's reference
        harness.eq(reply[0], '#RETURN', '%s: create get_jobs' % label)
        old = reply[1][0]
        srv.kill()
        srv.start()
        reply = harness.raw_call(srv, None, 'create', ('get_jobs',))  # client B's, after the restart
        harness.eq(reply[0], '#RETURN', '%s: create get_jobs after the restart' % label)
        new = reply[1][0]
        harness.check(new != old, '%s: the queue has a new ident after the restart (%r, was %r)' % (label, new, old))
        reply = harness.raw_call(srv, None, 'decref', (old,))  # client A drops its old proxy
        harness.note('%s: decref of the old ident %r: %s' % (label, old, reply[0]))
        c = harness.raw_client(srv)  # client B calls its queue, as a proxy does
        try:
            c.send((None, 'accept_connection', ('B',), {}))
            c.recv()
            c.send((new, 'qsize', (), {}))
            reply = c.recv()
        finally:
            c.close()
        harness.eq(reply, ('#RETURN', 0), "%s: client B's reference still works" % label)
        harness.eq(srv.stop(), 0, '%s: shmgr exit status on SIGTERM' % label)
    finally:
        srv.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------
# 1 and 2: the server killed under load

CONFIG_LOAD = '''-- written by test_durable_kill.py
data_dir = "data"
durability = "process"
local jobs = shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = true, maxsize = 0 }
local plain = shmgr.Queue{ name = "plain", durable = true }
shmgr.register("get_jobs", function() return jobs end)
shmgr.register("get_plain", function() return plain end)
'''


def server_kill_run(label, typeid, joinable, items, points, rng):
    """One run of part 1 (joinable: the redeliver JoinableQueue) or 2 (the plain Queue)."""
    harness.note('--- %s: %d items, %d producers, %d consumers, %d kill point(s)'
                 % (label, items, PRODUCERS, CONSUMERS, points))
    tmpdir = tempfile.mkdtemp(prefix='shmgr-kill-%d-' % TEST_PID)
    srv = Shmgr(tmpdir, CONFIG_LOAD)
    procs = []
    t0 = time.time()
    try:
        srv.start()
        # kill points: one in each of `points` equal slices of 5%..90% of the items
        lo, hi = 0.05, 0.90
        fractions = [lo + (hi - lo) * (i + rng.random()) / points for i in range(points)]
        kill_at = [int(f * items) for f in fractions]
        delays = [rng.choice((0.0, 0.0, 0.05, 0.2, 0.5)) for _ in range(points)]
        # and after some restarts a second kill: while it starts (opening the store), or
        # while the clients reconnect, after that many seconds
        again = [rng.choice((None, None, 'starting', 'reconnecting')) for _ in range(points)]
        again_after = [rng.uniform(0, 0.03) for _ in range(points)]
        harness.note('kill points (deliveries): %s; down for %s s; killed again: %s'
                     % (', '.join('%d (%.0f%%)' % (k, 100.0 * f) for k, f in zip(kill_at, fractions)),
                        ', '.join('%g' % d for d in delays),
                        ', '.join('no' if a is None else '%s, after %.3f s' % (a, t)
                                  for a, t in zip(again, again_after))))
        progress = ctx.Array('l', CONSUMERS, lock=False)
        stop = ctx.Event()
        go = (ctx.Semaphore(0), ctx.Event())  # each client: connected; the test: start
        paths = []
        each, extra = divmod(items, PRODUCERS)
        for i in range(PRODUCERS):
            n = each + (1 if i < extra else 0)
            path = os.path.join(tmpdir, 'p%d.txt' % i)
            paths.append(path)
            procs.append(ctx.Process(target=producer_main, args=(srv.address, typeid, i, 0, n, path, go)))
        for i in range(CONSUMERS):
            path = os.path.join(tmpdir, 'c%d.txt' % i)
            paths.append(path)
            procs.append(ctx.Process(target=consumer_main,
                                     args=(srv.address, typeid, i, path, progress, stop, go, joinable)))
        for p in procs:
            p.start()
        producers, consumers = procs[:PRODUCERS], procs[PRODUCERS:]
        ready(go, len(procs), 60)
        t_started = time.time()
        harness.note('%d clients started in %.1f s' % (len(procs), t_started - t0))

        deadline = time.time() + 240
        k = 0
        kill_times = []
        polls = 0
        while True:
            done = sum(progress)
            if k < points and done >= kill_at[k]:
                t_kill = time.time()
                srv.kill()
                time.sleep(delays[k])
                what = ''
                if again[k] == 'starting':
                    srv.spawn()
                    time.sleep(again_after[k])
                    srv.kill()
                    what = ', killed again while starting'
                srv.start()
                if again[k] == 'reconnecting':
                    time.sleep(again_after[k])
                    srv.kill()
                    srv.start()
                    what = ', killed again while the clients reconnected'
                kill_times.append(time.time() - t_kill)
                harness.note('kill %d at %d deliveries (%.1f s)%s: restarted in %.3f s; %s'
                             % (k + 1, done, t_kill - t_started, what, kill_times[-1],
                                '; '.join("'%s': %s items, %s unfinished" % x for x in srv.start_lines[-1])))
                for name, n, unfinished in srv.start_lines[-1]:
                    if name == 'jobs':  # a JoinableQueue with redeliver: each task not done is an item
                        harness.eq(int(unfinished), int(n), "%s: at restart %d, queue 'jobs': unfinished"
                                   % (label, srv.starts))
                    else:
                        harness.check(int(unfinished) >= int(n), "%s: at restart %d, queue '%s': %s items, %s "
                                      "unfinished" % (label, srv.starts, name, n, unfinished))
                k += 1
                continue
            if not srv.alive():
                harness.fail('%s: shmgr died on its own (status %r); its log:\n%s'
                             % (label, srv.proc.returncode, srv.log()[-5000:]))
                break
            if k == points and not any(p.is_alive() for p in producers):
                break
            polls += 1
            if polls % 10 == 0 and any(p.exitcode not in (None, 0) for p in procs):
                harness.fail('%s: a client died: %s' % (label, [(p.name, p.exitcode) for p in procs
                                                                 if p.exitcode not in (None, 0)]))
                break
            if time.time() > deadline:
                harness.fail('%s: not done within 240 s: %d deliveries, %d kill(s) made'
                             % (label, done, k))
                break
            time.sleep(0.005)
        t_produced = time.time()

        # drain: join() (JoinableQueue) or an empty queue, then the consumers stop
        drained = False
        if joinable:
            drained = wait_join(srv.address, typeid, 60)
            harness.check(drained, '%s: join() returned (unfinished count reached 0) within 60 s' % label)
        else:
            probe = Session(srv.address, typeid)
            drained = harness.wait_until(lambda: probe.q.qsize() == 0, timeout=60)
            harness.check(drained, '%s: the queue was drained within 60 s' % label)
        t_drained = time.time()
        stop.set()
        for p in consumers:
            p.join(30)
        reap(procs)
        for p in procs:
            harness.check(p.exitcode == 0, '%s: %s exited with %r' % (label, p.name, p.exitcode))
        t_end = time.time()

        # the queue and the store
        harness.check(srv.alive(), '%s: the server is alive at the end' % label)
        probe = Session(srv.address, typeid)
        harness.eq(probe.q.qsize(), 0, '%s: qsize() at the end' % label)
        harness.eq(probe.q.empty(), True, '%s: empty() at the end' % label)
        if joinable:
            harness.check(wait_join(srv.address, typeid, 10), '%s: join() returns at once at the end' % label)
        n_items, objs = store_counts(srv.db)
        harness.eq(n_items, 0, '%s: select count(*) from items (server running)' % label)
        probe = None
        rc = srv.stop()
        harness.eq(rc, 0, '%s: shmgr exit status on SIGTERM' % label)
        harness.check('store: closed after' in srv.log(), "%s: the log says 'store: closed after ...'" % label)
        n_items, objs = store_counts(srv.db)
        harness.eq(n_items, 0, '%s: select count(*) from items (server stopped)' % label)
        count = [c for name, c in objs if name == ('jobs' if joinable else 'plain')]
        if joinable:
            harness.eq(count, [0], '%s: its stored count (unfinished tasks)' % label)
        else:  # a Queue's unfinished count: every put stored, as no task_done is called
            harness.check(len(count) == 1 and count[0] >= items,
                          '%s: its stored count (unfinished tasks): %r, want at least %d' % (label, count, items))

        harness.eq(re.findall('went back to the queue.*', srv.log()), [],
                   '%s: items in flight on a closed connection (none: only the server dies)' % label)
        # what every client saw
        puts, deliveries, _, summaries, unexpected = read_records(paths)
        analyse(label, joinable, items, puts, deliveries, summaries, unexpected)
        harness.note('%s: timings: run %.1f s (kills done, producers finished), drain %.1f s, '
                     'consumers stopped %.1f s, total %.1f s; restarts took %s s'
                     % (label, t_produced - t_started, t_drained - t_produced, t_end - t_drained,
                        time.time() - t0, ', '.join('%.3f' % t for t in kill_times)))
    finally:
        reap(procs)
        srv.kill()
        if harness._failures:
            harness.note('%s: the server log (last 3000 characters):\n%s' % (label, srv.log()[-3000:]))
        shutil.rmtree(tmpdir, ignore_errors=True)


def analyse(label, joinable, items, puts, deliveries, summaries, unexpected):
    harness.eq(unexpected, [], '%s: errors other than a lost connection' % label)
    harness.eq(len(puts), items, '%s: puts that returned' % label)
    reputs = sum(a - 1 for a in puts.values())
    phantom = [x for x in deliveries if x not in puts]
    harness.eq(phantom[:10], [], '%s: items delivered that no producer put' % label)
    never = sorted(x for x in puts if x not in deliveries)
    total = sum(len(v) for v in deliveries.values())
    get_errors = summary_total(summaries, 'get_errors')
    reconnects = summary_total(summaries, 'reconnects')
    harness.note('%s: %d puts returned (%d put attempts failed on a lost connection and were repeated), '
                 '%d deliveries of %d distinct items, %d gets failed on a lost connection, %d reconnects'
                 % (label, len(puts), reputs, total, len(deliveries), get_errors, reconnects))
    # each delivery beyond the first: a redelivery (an earlier task_done of it had no
    # reply: in flight at a kill) or a copy put again (a put of it had no reply)
    redelivered = reput = ambiguous = 0
    bugs = []
    td_lost_only = 0
    for x, outs in deliveries.items():
        lost = outs.count('lost')
        if joinable and 'ok' not in outs:
            td_lost_only += 1  # its task_done(s) had no reply: the store must not hold it
        extra = len(outs) - 1
        if not extra:
            continue
        copies = puts.get(x, 1) - 1
        r = min(extra, lost) if joinable else 0
        p = extra - r
        if p > copies:
            bugs.append((x, outs, puts.get(x)))
            continue
        if r and copies:
            ambiguous += 1
        redelivered += r
        reput += p
    harness.note('%s: delivered more than once: %d item(s), %d extra deliveries: %d redelivered after a kill '
                 '(in flight: an earlier task_done had no reply), %d re-put by a producer whose put had no reply '
                 '(%d item(s) could be either), %d unexplained'
                 % (label, sum(1 for v in deliveries.values() if len(v) > 1), redelivered + reput + len(bugs),
                    redelivered, reput, ambiguous, len(bugs)))
    harness.eq(bugs[:10], [], '%s: duplicates neither redelivered nor re-put (item, outcomes, put attempts)' % label)
    if joinable:
        harness.note('%s: %d item(s) processed only by calls whose task_done had no reply (done in the store: '
                     'not redelivered)' % (label, td_lost_only))
        if harness.eq(never[:10], [], '%s: items whose put returned but were never processed' % label):
            harness.note('%s: every one of the %d items whose put returned was processed (task_done) at least once'
                         % (label, len(puts)))
    else:
        harness.note('%s: %d item(s) whose put returned were never got; %d gets lost their reply in a kill'
                     % (label, len(never), get_errors))
        harness.check(len(never) <= get_errors,
                      '%s: %d items never got (%r...), more than the %d gets whose reply was lost'
                      % (label, len(never), never[:5], get_errors))


# --------------------------------------------------------------------------
# 3: workers killed between get and task_done

CONFIG_WORKERS = '''-- written by test_durable_kill.py
data_dir = "data"
durability = "process"
local work = shmgr.JoinableQueue{ name = "work", durable = true, redeliver = true }
local mem = shmgr.JoinableQueue{ name = "mem", redeliver = true }
shmgr.register("get_work", function() return work end)
shmgr.register("get_mem", function() return mem end)
'''


def worker_kill_run(label, typeid, qname, items, deaths, rng):
    producers, consumers = 4, 8
    harness.note('--- %s: %d items, %d producers, %d consumers, %d worker deaths'
                 % (label, items, producers, consumers, deaths))
    tmpdir = tempfile.mkdtemp(prefix='shmgr-kill-%d-' % TEST_PID)
    srv = Shmgr(tmpdir, CONFIG_WORKERS)
    procs = []
    t0 = time.time()
    try:
        srv.start()
        each = items // producers
        # by item (p, seq) at p * each + seq: fatal (the first worker to get it dies) and how
        fatal = ctx.Array('b', producers * each, lock=False)
        death = ctx.Array('b', producers * each, lock=False)
        chosen = rng.sample(range(producers * each), deaths)
        for n, k in enumerate(chosen):
            fatal[k] = 1
            death[k] = (1, 2, 3)[n % 3]  # 1: kills itself, 2: with a second item, 3: killed by the test
        fatal_items = set((k // each, k % each) for k in chosen)
        hold = ctx.Array('b', consumers + deaths, lock=False)
        progress = ctx.Array('l', consumers + deaths, lock=False)
        stop = ctx.Event()
        go = (ctx.Semaphore(0), ctx.Event())
        paths = []
        for i in range(producers):
            path = os.path.join(tmpdir, 'p%d.txt' % i)
            paths.append(path)
            procs.append(ctx.Process(target=producer_main, args=(srv.address, typeid, i, 0, each, path, go)))
        workers = {}

        def spawn(slot):
            path = os.path.join(tmpdir, 'c%d.txt' % slot)
            paths.append(path)
            p = ctx.Process(target=consumer_main,
                            args=(srv.address, typeid, slot, path, progress, stop, go, True, fatal, hold, death, each))
            p.start()
            workers[slot] = p
            procs.append(p)

        for p in procs:
            p.start()
        for slot in range(consumers):
            spawn(slot)
        ready(go, producers + consumers, 60)
        next_slot = consumers
        died = []
        deadline = time.time() + 120
        while True:
            for slot, p in list(workers.items()):
                if hold[slot] == 1 and p.is_alive():
                    time.sleep(rng.random() * 0.05)
                    os.kill(p.pid, signal.SIGKILL)
                    hold[slot] = 2
                if not p.is_alive() and p.exitcode != 0:
                    p.join()
                    del workers[slot]
                    died.append((slot, p.exitcode))
                    if p.exitcode == -signal.SIGKILL and next_slot < consumers + deaths:
                        spawn(next_slot)  # a worker in its place
                        next_slot += 1
            if not any(p.is_alive() for p in procs[:producers]) and len(died) == deaths:
                break
            if not srv.alive():
                harness.fail('%s: shmgr died (status %r)' % (label, srv.proc.returncode))
                break
            if time.time() > deadline:
                harness.fail('%s: not done within 120 s: %d deliveries' % (label, sum(progress)))
                break
            time.sleep(0.005)
        t_run = time.time()
        drained = wait_join(srv.address, typeid, 60)
        harness.check(drained, '%s: join() returned within 60 s' % label)
        stop.set()
        for p in workers.values():
            p.join(30)
        reap(procs)
        harness.eq(sorted(set(code for _, code in died)), [-signal.SIGKILL],
                   '%s: how the workers that died ended' % label)
        harness.eq(len(died), deaths, '%s: workers killed' % label)
        for slot, p in workers.items():
            harness.check(p.exitcode == 0, '%s: surviving worker %d exited with %r' % (label, slot, p.exitcode))

        puts, deliveries, killed, summaries, unexpected = read_records(paths)
        harness.eq(unexpected, [], '%s: errors other than a lost connection' % label)
        harness.eq(len(puts), producers * each, '%s: puts that returned' % label)
        harness.eq(sum(a - 1 for a in puts.values()), 0, '%s: puts repeated (the server was not killed)' % label)
        not_done = sorted(x for x in puts if 'ok' not in deliveries.get(x, []))
        harness.eq(not_done[:10], [], '%s: items never processed to task_done by a surviving worker' % label)
        harness.check(fatal_items <= set(killed), '%s: every fatal item is among those the dead held' % label)
        twice = sorted(x for x, outs in deliveries.items() if len(outs) > 1)
        harness.eq(twice[:10], [], '%s: items task_done twice (no server kill: none expected)' % label)
        back = [int(n) for n in re.findall(r"queue '%s': (\d+) items? in flight on (?:#\d+ )?\S+ went back to the queue"
                                          % qname, srv.log())]
        total_back = re.findall(r"queue '%s': .* went back to the queue \(its connection closed; (\d+) redelivered"
                                % qname, srv.log())
        harness.note('%s: %d workers killed holding %d item(s) (%d with two in flight); log: %d "went back to the '
                     'queue" line(s) for %d item(s), last count %s'
                     % (label, len(died), len(killed), len(killed) - deaths, len(back), sum(back),
                        total_back[-1] if total_back else None))
        harness.eq(len(back), deaths, '%s: "went back to the queue" lines, one per dead worker' % label)
        harness.eq(sum(back), len(killed), '%s: items that went back, as the dead workers held' % label)
        harness.eq(total_back[-1:], [str(len(killed))], '%s: the redelivered count in the last line' % label)
        probe = Session(srv.address, typeid)
        harness.eq(probe.q.qsize(), 0, '%s: qsize() at the end' % label)
        probe = None
        if qname == 'work':
            n_items, objs = store_counts(srv.db)
            harness.eq(n_items, 0, '%s: select count(*) from items' % label)
        harness.eq(srv.stop(), 0, '%s: shmgr exit status on SIGTERM' % label)
        harness.note('%s: timings: run %.1f s, total %.1f s' % (label, t_run - t0, time.time() - t0))
    finally:
        reap(procs)
        srv.kill()
        if harness._failures:
            harness.note('%s: the server log (last 3000 characters):\n%s' % (label, srv.log()[-3000:]))
        shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------
# 4. A failed commit after a get's reply went out

CONFIG_SMALL = '''-- written by test_durable_kill.py
data_dir = "data"
local jobs = shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = true }
local one = shmgr.JoinableQueue{ name = "one", durable = true, redeliver = true, maxsize = 1 }
shmgr.register("get_jobs", function() return jobs end)
shmgr.register("get_one", function() return one end)
'''
FSIZE_LIMIT = 512 * 1024   # the server's RLIMIT_FSIZE: a 1 MB item's commit fails


def frame(obj):
    import pickle
    import struct
    data = pickle.dumps(obj, 2)
    return struct.pack('!i', len(data)) + data


def failed_commit_run():
    """A get on a redeliver queue whose reply went out at once (no change of the turn was
    pending) delivered its item for good: a commit failing later in that turn must not take
    it back (it did: the item went back to the queue and to a second getter while the first
    had it, and task_done counts went wrong). A get whose reply waited for that commit (a
    putter it let in made a change) failed with it, and its item is back in the queue.
    The commit is made to fail by the server's file size limit (RLIMIT_FSIZE)."""
    import resource
    label = '4. failed commit after a get'
    tmpdir = tempfile.mkdtemp(prefix='shmgr-kill-%d-' % TEST_PID)
    srv = Shmgr(tmpdir, CONFIG_SMALL)

    def limit():
        harness._child_setup()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))

    srv.preexec = limit
    big = b'y' * (1024 * 1024)
    conns = []
    try:
        srv.start()

        def conn(name):
            c = harness.raw_client(srv)
            conns.append(c)
            c.send((None, 'accept_connection', (name,), {}))
            c.recv()
            return c

        jobs = harness.raw_call(srv, None, 'create', ('get_jobs',))[1][0]
        one = harness.raw_call(srv, None, 'create', ('get_one',))[1][0]
        a, b = conn('A'), conn('B')

        # (a) get, then in the same turn (one write: read together) a put whose commit fails
        a.send((jobs, 'put', ('x',), {}))
        harness.eq(a.recv(), ('#RETURN', None), '%s: put x' % label)
        a._send(frame((jobs, 'get', (), {})) + frame((jobs, 'put', (big,), {})))
        harness.eq(a.recv(), ('#RETURN', 'x'), '%s: get (its reply goes out at once)' % label)
        r = a.recv()
        harness.check(r[0] == '#ERROR' and 'could not store' in str(r[1]),
                      '%s: the 1 MB put fails with its commit: %r' % (label, (r[0], str(r[1])[:120])))
        b.send((jobs, 'qsize', (), {}))
        harness.eq(b.recv(), ('#RETURN', 0), '%s: qsize() while A has x in flight' % label)
        b.send((jobs, 'get_nowait', (), {}))
        harness.eq(b.recv()[0], '#ERROR', '%s: B gets nothing (x is A\'s)' % label)
        a.send((jobs, 'task_done', (), {}))
        harness.eq(a.recv(), ('#RETURN', None), '%s: A task_done (settles x)' % label)
        b.send((jobs, 'join', (), {}))
        harness.eq(b.recv(), ('#RETURN', None), '%s: join() returns: no task left' % label)

        # (b) a get that lets a parked putter in: that put's commit fails, and so does the get
        a.send((one, 'put', ('z',), {}))
        harness.eq(a.recv(), ('#RETURN', None), '%s: put z (maxsize 1: full)' % label)
        b.send((one, 'put', (big,), {}))  # parks: the queue is full
        time.sleep(0.2)
        a.send((one, 'get', (), {}))
        r = a.recv()
        harness.check(r[0] == '#ERROR' and 'could not store' in str(r[1]),
                      '%s: a get whose reply waited for the failed commit fails: %r' % (label, (r[0], str(r[1])[:120])))
        r = b.recv()
        harness.check(r[0] == '#ERROR' and 'could not store' in str(r[1]),
                      '%s: the parked 1 MB put fails with it: %r' % (label, (r[0], str(r[1])[:120])))
        b.send((one, 'qsize', (), {}))
        harness.eq(b.recv(), ('#RETURN', 1), '%s: z is back in the queue' % label)
        b.send((one, 'get_nowait', (), {}))
        harness.eq(b.recv(), ('#RETURN', 'z'), '%s: B gets z' % label)
        b.send((one, 'task_done', (), {}))
        harness.eq(b.recv(), ('#RETURN', None), '%s: B task_done' % label)
        a.send((one, 'join', (), {}))
        harness.eq(a.recv(), ('#RETURN', None), '%s: join() returns' % label)
        for c in conns:
            c.close()
        conns = []
        harness.eq(srv.stop(), 0, '%s: shmgr exit status on SIGTERM' % label)
        harness.eq(re.findall('went back to the queue.*', srv.log()), [], '%s: nothing in flight at the end' % label)
        harness.eq(store_counts(srv.db)[0], 0, '%s: select count(*) from items' % label)
    finally:
        for c in conns:
            c.close()
        srv.kill()
        if harness._failures:
            harness.note('%s: the server log:\n%s' % (label, srv.log()[-3000:]))
        shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------

def main():
    if harness.BACKEND != 'shmgr':
        harness.skip('durable queues and server kills are shmgr\'s own (no CPython reference)')
    remove_stale_dirs()
    full, why = full_size()
    items = int(os.environ.get('SHMGR_KILL_ITEMS') or (100000 if full else 5000))
    points = int(os.environ.get('SHMGR_KILL_POINTS') or (3 if full else 2))
    seed = int(os.environ.get('SHMGR_KILL_SEED') or random.SystemRandom().randrange(1 << 30))
    harness.note('SHMGR_KILL_SEED=%d SHMGR_KILL_ITEMS=%d SHMGR_KILL_POINTS=%d (%s, Python %s at %s)'
                 % (seed, items, points,
                    why,
                    harness.version_tag(), sys.executable))
    t0 = time.time()
    rng = random.Random(seed)
    stale_proxy_run()
    failed_commit_run()
    server_kill_run('1. JoinableQueue, durable, redeliver', 'get_jobs', True, items, points, rng)
    server_kill_run('2. Queue, durable, no redeliver', 'get_plain', False, items, points, rng)
    wk = max(2000, min(items // 25, 4000))
    worker_kill_run('3a. durable redeliver queue, workers killed', 'get_work', 'work', wk, 12, rng)
    worker_kill_run('3b. non-durable redeliver queue, workers killed', 'get_mem', 'mem', wk, 12, rng)
    harness.note('all parts: %.1f s (seed %d)' % (time.time() - t0, seed))
    harness.done()


if __name__ == '__main__':
    main()
