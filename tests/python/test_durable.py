"""Durable queues (issue 10, items 1, 2, 3 and 5), seen from stock clients: how they are
declared; what comes back after the server is SIGKILLed or stopped and started again on the
same data_dir (every kind of item, in order, unfinished counts, several queues, a changed
maxsize, puts and gets killed right after their reply); redelivery of the items a connection
got and had not finished; and the bad conditions: start-ups the server must refuse naming the
file and why without touching the data, a full store, a store locked by another writer, a
queue no longer declared, proxies put into a durable queue, a Lua method waiting on one.

Each part writes its config into a temp dir (data_dir is relative to it), starts real ./shmgr
processes itself ($SHMGR_BIN if set) and kills and restarts them; the store is inspected with
Python's sqlite3 module. Random choices (kill points, garbage bytes) come from the seed printed
first; SHMGR_TEST_SEED=N repeats them, DURABLE_ONLY=word runs the parts whose name has word."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import ast  # noqa: E402
import faulthandler  # noqa: E402
import gc  # noqa: E402
import pickle  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from harness import check, eq, note, same  # noqa: E402

KEY = harness.DEFAULT_AUTHKEY
EXE = os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr')
SEED = int(os.environ.get('SHMGR_TEST_SEED') or random.randrange(1 << 30))
RNG = random.Random(SEED)

_dirs = []
_servers = []


# --------------------------------------------------------------------------
# Servers of our own, on a data_dir that outlives them

class Dir(object):
    """A temp dir holding configs and their data_dir 'data'."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix='shmgr-durable-')
        _dirs.append(self.path)
        self.data = os.path.join(self.path, 'data')
        os.mkdir(self.data)
        self.db = os.path.join(self.data, 'shmgr.db')

    def conf(self, queues, name='shmgr.conf.lua', data_dir='data', extra=''):
        """Write a config declaring queues, a list of (getter, Lua expression); its path."""
        lines = ['-- written by test_durable.py']
        if data_dir is not None:
            lines.append('data_dir = "%s"' % data_dir)
        lines.append(extra)
        for i, (getter, expr) in enumerate(queues):
            lines.append('local q%d = %s' % (i, expr))
            lines.append('shmgr.register("%s", function() return q%d end)' % (getter, i))
        return self.write(name, '\n'.join(lines) + '\n')

    def write(self, name, text):
        path = os.path.join(self.path, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def sql(self, query, args=(), write=False):
        """Rows of a query on the store (read-only unless write)."""
        if write:
            c = sqlite3.connect(self.db)
        else:
            c = sqlite3.connect('file:%s?mode=ro' % self.db, uri=True)
        try:
            rows = c.execute(query, args).fetchall()
            if write:
                c.commit()
            return rows
        finally:
            c.close()

    def items(self, queue_name):
        """The items the store holds for a queue, in position order, unpickled."""
        return [pickle.loads(bytes(r[0])) for r in
                self.sql('SELECT data FROM queue_items WHERE queue = ? ORDER BY pos', (queue_name,))]

    def record(self, queue_name):
        """(kind, maxsize, count, redeliver) of a queue's record, or None."""
        rows = self.sql('SELECT kind, maxsize, count, redeliver FROM objects WHERE name = ?', (queue_name,))
        return rows[0] if rows else None

    def db_bytes(self):
        with open(self.db, 'rb') as f:
            return f.read()


def start(cfg, env=None):
    """./shmgr on cfg, on 127.0.0.1 and a free port; a harness.Server."""
    srv = harness._start_shmgr(cfg, KEY, False, env, os.path.dirname(cfg))
    _servers.append(srv)
    return srv


def kill(srv, what):
    """SIGKILL srv and wait until it is gone (its lock with it)."""
    os.killpg(srv.pid, signal.SIGKILL)
    eq(srv.wait_exit(10), -signal.SIGKILL, '%s: the server dies of SIGKILL' % what)


def stop(srv, what, store=True):
    """SIGTERM srv: it exits 0, having closed the store (if it has one)."""
    os.killpg(srv.pid, signal.SIGTERM)
    eq(srv.wait_exit(10), 0, '%s: exit status on SIGTERM' % what)
    harness.wait_until(lambda: 'stopped' in srv.log(), 2)
    if not store:
        check('store:' not in srv.log(), '%s: no store; log:\n%s' % (what, srv.log()))
        return
    check(re.search(r'store: closed after \d+ commits carrying \d+ changes \(0 commits failed\)', srv.log()),
          '%s: the store is closed at stop, logged; log:\n%s' % (what, srv.log()))


def refused(cfg, what, wants, prefix=(), env=None):
    """Run ./shmgr on cfg, which must refuse to start: exit status non-zero, no
    "listening on", and each string of wants on its stderr. Returns stderr."""
    penv = dict(os.environ)
    penv['SHMGR_AUTHKEY'] = KEY.decode('ascii')
    penv.update(env or {})
    p = subprocess.Popen(list(prefix) + [EXE, '--config', cfg, '--listen', '127.0.0.1:0'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=penv, start_new_session=True, preexec_fn=harness._child_setup)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        harness.fail('%s: the server started instead of refusing; its output:\n%s%s'
                     % (what, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')))
        return ''
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(p.returncode > 0, '%s: exit status %r, want > 0; stderr:\n%s' % (what, p.returncode, err))
    check('listening on' not in out + err, '%s: it did not listen; output:\n%s%s' % (what, out, err))
    for w in wants:
        check(w in err, '%s: stderr says %r; stderr:\n%s' % (what, w, err))
    return err


def manager(srv, *getters):
    return harness.client_manager(srv, getters)


def log_has(srv, pattern, what, timeout=5.0):
    """Wait until the server's log matches pattern (a regex); the match."""
    m = harness.wait_until(lambda: re.search(pattern, srv.log()), timeout)
    check(m, '%s: the log says /%s/; log:\n%s' % (what, pattern, srv.log()))
    return m


def drain(q):
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def kill_when(srv, cfg, threads, pred):
    """Start the client threads, SIGKILL the server once pred() holds, let the threads end,
    restart the server on cfg: (new server, its 'jobs' queue, what that queue held)."""
    for t in threads:
        t.start()
    harness.wait_until(pred, 20, 0.001)
    os.kill(srv.pid, signal.SIGKILL)
    for t in threads:
        t.join(10)
    srv.wait_exit(10)
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    return srv, q, drain(q)


def exc_text(e):
    return '%s: %s' % (type(e).__name__, e)


# --------------------------------------------------------------------------
# A client process that gets items and then exits, or stays until killed

def child_main(getter, n, done, mode):
    m = harness.client_manager(harness.from_env(), (getter,))
    q = getattr(m, getter)()
    got = [q.get(timeout=10) for _ in range(int(n))]
    for _ in range(int(done)):
        q.task_done()
    print('got %r' % (got,))
    sys.stdout.flush()
    if mode == 'stay':
        time.sleep(120)


def getter_child(srv, getter, n, done=0, mode='exit'):
    """A child that gets n items (on its one connection), calls task_done done times,
    prints them and exits (mode 'exit') or stays (mode 'stay'). (child, items)."""
    c = harness.Child(srv, argv=[os.path.abspath(__file__), 'child'], args=(getter, n, done, mode))
    line = c.expect('got ', 20)
    return c, (ast.literal_eval(line[4:]) if line else None)


# --------------------------------------------------------------------------
# Items of every kind a client sends

def kinds():
    x = ['shared', 1]
    d = {'k': (1, 2)}
    return [
        0, 1, -1, 255, 256, 65535, -2 ** 31, 2 ** 31, 2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1,
        2 ** 64, 10 ** 40, -(7 ** 200), 2 ** 3000,
        0.0, -0.0, 1.5, -2.25e-300, 1e308, float('inf'), float('-inf'), float('nan'),
        '', 'a', 'h\xe9llo \u20ac \U0001f600', 's' * 70000,
        b'', b'\x00\xff\x80', b'B' * 70000, bytearray(), bytearray(b'\x00abc'),
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((1, (2,)), [3]),
        [], [1, [2, [3, [4]]]], {}, {'a': 1, 2: [3], (4, 5): {'b': None}}, {1.5: -0.0, True: False},
        set(), {1, 'a', (2, 3), b'z'}, frozenset([1, 2]), [frozenset(), {frozenset([1])}],
        [x, x], {'p': x, 'q': x, 'r': (x,)}, (d, [d]),
        None, True, False, [None, True, False, 1, 1.0],
    ]


def check_kinds(got, want, what):
    eq(len(got), len(want), '%s: how many' % what)
    for i, (g, w) in enumerate(zip(got, want)):
        check(same(g, w), '%s: item %d: got %s, want %s' % (what, i, repr(g)[:200], repr(w)[:200]))
    if len(got) == len(want):
        a, b, c = got[-7], got[-6], got[-5]  # [x, x], {'p': x, ...}, (d, [d])
        check(a[0] is a[1], '%s: [x, x] is one list twice' % what)
        check(b['p'] is b['q'] and b['q'] is b['r'][0], '%s: {p: x, q: x, r: (x,)} shares x' % what)
        check(c[0] is c[1][0], '%s: (d, [d]) shares d' % what)


# --------------------------------------------------------------------------
# 1. Declarations

def test_declarations():
    d = Dir()
    # the forms that start: positional, table forms not durable, without data_dir
    cfg = d.conf([('get_pos', 'shmgr.Queue(3)'),
                  ('get_jpos', 'shmgr.JoinableQueue(2)'),
                  ('get_tab', 'shmgr.Queue{ maxsize = 2 }'),
                  ('get_jtab', 'shmgr.JoinableQueue{ name = "plain", redeliver = false }'),
                  ('get_named', 'shmgr.Queue{ name = "x", durable = false }'),
                  ('get_empty', 'shmgr.Queue{}')], data_dir=None)
    srv = start(cfg)
    m = manager(srv, 'get_pos', 'get_jpos', 'get_tab', 'get_jtab', 'get_named', 'get_empty')
    for getter, maxsize in (('get_pos', 3), ('get_jpos', 2), ('get_tab', 2)):
        q = getattr(m, getter)()
        for i in range(maxsize):
            q.put(i)
        eq(q.full(), True, '%s: full() at maxsize %d' % (getter, maxsize))
        harness.raises(queue.Full, q.put_nowait, 'x', what='%s: put_nowait when full' % getter)
        harness.raises(queue.Full, q.put, 'x', True, 0.05, what='%s: put(timeout) when full' % getter)
        eq(drain(q), list(range(maxsize)), '%s: items' % getter)
        for _ in range(maxsize):
            q.task_done()
    for getter in ('get_jtab', 'get_jpos'):
        q = getattr(m, getter)()
        q.put('t')
        eq(q.get(), 't', '%s: get' % getter)
        q.task_done()
        q.join()
        e = harness.raises(ValueError, q.task_done, what='%s: one task_done too many' % getter)
        eq(str(e), 'task_done() called too many times', '%s: its message' % getter)
    for getter in ('get_named', 'get_empty'):
        q = getattr(m, getter)()
        for i in range(50):
            q.put(i)
        eq(q.full(), False, '%s: unbounded' % getter)
        eq(drain(q), list(range(50)), '%s: items' % getter)
    stop(srv, 'declarations', store=False)
    check(not os.listdir(d.data), 'no store without durable queues: %r' % os.listdir(d.data))

    # the forms that do not start, each saying what is wrong
    bad = [
        ('an unknown option', ['shmgr.Queue{ name = "jobs", durable = true, colour = "red" }'],
         ['unknown option colour', 'shmgr.Queue{...}']),
        ('an unknown option (JoinableQueue)', ['shmgr.JoinableQueue{ name = "jobs", durabel = true }'],
         ['unknown option durabel', 'shmgr.JoinableQueue{...}']),
        ('durable not a boolean', ['shmgr.Queue{ name = "jobs", durable = "yes" }'],
         ['durable = ...', 'a boolean is needed, not string']),
        ('redeliver not a boolean', ['shmgr.JoinableQueue{ name = "jobs", redeliver = 1 }'],
         ['redeliver = ...', 'a boolean is needed, not number']),
        ('maxsize not an integer', ['shmgr.Queue{ name = "jobs", durable = true, maxsize = "3" }'],
         ['maxsize = ...', 'an integer is needed']),
        ('maxsize a float', ['shmgr.Queue{ name = "jobs", maxsize = 2.5 }'],
         ['maxsize = ...', 'an integer is needed']),
        ('name not a string', ['shmgr.Queue{ name = 5, durable = true }'],
         ['name = ...', 'a string is needed']),
        ('durable without a name', ['shmgr.JoinableQueue{ durable = true, redeliver = true }'],
         ['a durable queue needs a name']),
        ('durable with an empty name', ['shmgr.Queue{ name = "", durable = true }'],
         ['a durable queue needs a name']),
        ('two durable queues named alike', ['shmgr.Queue{ name = "jobs", durable = true }',
                                            'shmgr.JoinableQueue{ name = "jobs", durable = true }'],
         ["a durable object named 'jobs' exists already"]),
    ]
    for what, exprs, wants in bad:
        cfg = d.conf([('get_%d' % i, e) for i, e in enumerate(exprs)], name='bad.lua')
        refused(cfg, 'declaration with %s' % what, ['config %s' % cfg] + wants)
    cfg = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }')], name='nodir.lua', data_dir=None)
    refused(cfg, 'a durable queue without data_dir',
            ['config %s declares durable queues but sets no data_dir' % cfg])
    for what, extra, wants in (('durability not process or power', 'durability = "disk"',
                                ['durability must be "process" or "power"']),
                               ('data_dir not a string', 'data_dir = 7', ['data_dir must be a path']),
                               ('max_store_bytes negative', 'limits = { max_store_bytes = -1 }',
                                ['limits.max_store_bytes must be a non-negative integer']),
                               ('max_store_bytes not a number', 'limits = { max_store_bytes = "1G" }',
                                ['limits.max_store_bytes must be a non-negative integer'])):
        cfg = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }')], name='bad.lua', extra=extra)
        refused(cfg, what, ['config %s' % cfg] + wants)
    check(not os.listdir(d.data), 'refused configs leave data_dir empty: %r' % os.listdir(d.data))

    # durability = "power": the same, synced at each commit
    cfg = d.conf([('get_jobs', 'shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = true }')],
                 name='power.lua', extra='durability = "power"')
    srv = start(cfg)
    log_has(srv, r'store: %s \(durability "power"\)' % re.escape(d.db), 'durability power')
    q = manager(srv, 'get_jobs').get_jobs()
    for i in range(5):
        q.put(i)
    kill(srv, 'durability power')
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    eq(drain(q), list(range(5)), 'durability power: the items after SIGKILL + restart')
    stop(srv, 'durability power')


# --------------------------------------------------------------------------
# 2. Restart: items, order, unfinished counts, several queues, maxsize

def test_restart_kinds():
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }')])
    items = kinds()
    puts = 0  # Queue counts unfinished tasks too: puts not matched by task_done
    for how in ('SIGKILL', 'SIGTERM'):
        what = 'every kind, %s + restart' % how
        srv = start(cfg)
        q = manager(srv, 'get_jobs').get_jobs()
        q.put('head')  # taken before the restart: positions do not start at 1
        for i, it in enumerate(items):
            q.put(it)
            if i in (0, len(items) // 2):  # in the store as soon as put returned
                eq(len(d.items('jobs')), i + 2, '%s: rows after put %d' % (what, i))
        eq(q.get(), 'head', '%s: the head' % what)
        puts += len(items) + 1
        eq(q.qsize(), len(items), '%s: qsize before' % what)
        check_kinds(d.items('jobs'), items, '%s: the store, read with sqlite3' % what)
        eq(d.record('jobs'), ('Queue', 0, puts, 0), '%s: the record' % what)
        if how == 'SIGKILL':
            kill(srv, what)
        else:
            stop(srv, what)
            check(not os.path.exists(d.db + '-wal') or os.path.getsize(d.db + '-wal') == 0,
                  '%s: the WAL was checkpointed at stop' % what)
        srv = start(cfg)
        log_has(srv, r"queue 'jobs': %d items, %d unfinished, from %s" % (len(items), puts, re.escape(d.db)),
                what)
        q = manager(srv, 'get_jobs').get_jobs()
        eq(q.qsize(), len(items), '%s: qsize after' % what)
        check_kinds(drain(q), items, '%s: got back' % what)
        eq(q.empty(), True, '%s: empty at the end' % what)
        stop(srv, what)
        eq(d.items('jobs'), [], '%s: the store holds nothing once all were got' % what)


def test_unfinished():
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.JoinableQueue{ name = "jobs", durable = true }'),
                  ('get_rjobs', 'shmgr.JoinableQueue{ name = "rjobs", durable = true, redeliver = true }')])
    srv = start(cfg)
    m = manager(srv, 'get_jobs', 'get_rjobs')
    q, r = m.get_jobs(), m.get_rjobs()
    for i in range(1, 6):
        q.put(i)
        r.put(i)
    eq([q.get(), q.get()], [1, 2], 'jobs: two got')
    q.task_done()  # 1 done, 2 got, not done: 4 unfinished, 3 queued
    eq([r.get(), r.get()], [1, 2], 'rjobs: two got')
    r.task_done()  # settles 1; 2 stays in flight on this connection
    eq(d.record('jobs'), ('JoinableQueue', 0, 4, 0), 'jobs: the record counts 4 unfinished')
    eq(d.record('rjobs'), ('JoinableQueue', 0, 4, 1), 'rjobs: the record counts 4 unfinished')
    eq(d.items('rjobs'), [2, 3, 4, 5], 'rjobs: the item in flight stays in the store')
    eq(d.items('jobs'), [3, 4, 5], 'jobs: the items got left the store')
    kill(srv, 'unfinished')

    srv = start(cfg)
    log_has(srv, r"queue 'jobs': 3 items, 4 unfinished", 'jobs after restart')
    log_has(srv, r"queue 'rjobs': 4 items, 4 unfinished", 'rjobs after restart (the item in flight is back)')
    m = manager(srv, 'get_jobs', 'get_rjobs')
    q, r = m.get_jobs(), m.get_rjobs()
    for name, jq, want in (('jobs', q, [3, 4, 5]), ('rjobs', r, [2, 3, 4, 5])):
        joiner = harness.run_thread(jq.join)
        time.sleep(0.3)
        check(not joiner['done'].is_set(), '%s: join() blocks: 4 tasks unfinished after the restart' % name)
        got = []
        for i in range(4):
            if len(got) < len(want):
                got.append(jq.get_nowait())
            jq.task_done()
            if i < 3:
                time.sleep(0.05)
                check(not joiner['done'].is_set(), '%s: join() still blocks after %d task_done' % (name, i + 1))
        eq(got, want, '%s: items after the restart' % name)
        check(joiner['done'].wait(5), '%s: join() returns after the 4th task_done' % name)
        check('error' not in joiner, '%s: join() returned: %r' % (name, joiner.get('error')))
        e = harness.raises(ValueError, jq.task_done, what='%s: one task_done too many' % name)
        eq(str(e), 'task_done() called too many times', '%s: as CPython says' % name)
        eq(d.record(name)[2], 0, '%s: the record counts none unfinished' % name)
    # in flight at SIGTERM: back after the restart, still unfinished
    r.put('x')
    r.put('y')
    eq(r.get(), 'x', 'rjobs: got x')
    stop(srv, 'unfinished (SIGTERM)')
    srv = start(cfg)
    log_has(srv, r"queue 'rjobs': 2 items, 2 unfinished", 'rjobs after SIGTERM + restart')
    r = manager(srv, 'get_rjobs').get_rjobs()
    eq([r.get(), r.get()], ['x', 'y'], 'rjobs: x (in flight at the stop) and y')
    r.task_done()
    r.task_done()
    r.join()
    stop(srv, 'unfinished end')


def test_several_queues_and_maxsize():
    d = Dir()
    decls = [('get_a', 'shmgr.Queue{ name = "a", durable = true, maxsize = %s }'),
             ('get_b', 'shmgr.JoinableQueue{ name = "b", durable = true }'),
             ('get_c', 'shmgr.Queue{ name = "c", durable = true, redeliver = true, maxsize = 10 }'),
             ('get_mem', 'shmgr.Queue{ name = "mem" }')]
    cfg0 = d.conf([(g, e % '0' if '%s' in e else e) for g, e in decls])
    srv = start(cfg0)
    m = manager(srv, 'get_a', 'get_b', 'get_c', 'get_mem')
    want = {'a': ['a1', 'a2', 'a3'], 'b': [('b', i) for i in range(5)], 'c': [b'c1', b'c2'], 'mem': ['m']}
    for name, its in want.items():
        q = getattr(m, 'get_' + name)()
        for it in its:
            q.put(it)
    eq(sorted(r[0] for r in d.sql('SELECT name FROM objects')), ['a', 'b', 'c'],
       'durable queues have a record each, the in-memory one none')
    kill(srv, 'several queues')

    # a now declared with maxsize 2: it holds 3
    cfg2 = d.conf([(g, e % '2' if '%s' in e else e) for g, e in decls], name='maxsize2.lua')
    srv = start(cfg2)
    m = manager(srv, 'get_a', 'get_b', 'get_c', 'get_mem')
    a = m.get_a()
    eq(a.qsize(), 3, 'maxsize 3 -> 2: qsize')
    eq(a.full(), True, 'maxsize 3 -> 2: full()')
    harness.raises(queue.Full, a.put_nowait, 'a4', what='maxsize 3 -> 2: put_nowait')
    harness.raises(queue.Full, a.put, 'a4', True, 0.1, what='maxsize 3 -> 2: put with a timeout')
    eq(d.record('a')[1], 2, 'maxsize 3 -> 2: the record says 2')
    eq([a.get(), a.get()], ['a1', 'a2'], 'maxsize 3 -> 2: two gets')
    eq(a.full(), False, 'maxsize 3 -> 2: not full with 1')
    a.put_nowait('a4')
    eq(a.full(), True, 'maxsize 3 -> 2: full with 2')
    for name in ('b', 'c'):
        eq(drain(getattr(m, 'get_' + name)()), want[name], 'queue %s after the restart' % name)
    eq(m.get_mem().qsize(), 0, 'the in-memory queue starts empty')
    stop(srv, 'maxsize 2')
    srv = start(cfg0)
    a = manager(srv, 'get_a').get_a()
    eq(drain(a), ['a3', 'a4'], 'maxsize back to 0: items')
    eq(d.record('a')[1], 0, 'maxsize back to 0: the record says 0')
    stop(srv, 'maxsize 0')


def test_kill_after_reply():
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }')])
    # one put, then SIGKILL as soon as its reply is in
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    q.put(('last', 'words'))
    os.kill(srv.pid, signal.SIGKILL)
    srv.wait_exit(10)
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    eq(drain(q), [('last', 'words')], 'a put killed right after its reply')
    for i in range(10):
        q.put(i)
    eq([q.get(), q.get(), q.get()], [0, 1, 2], 'three got')
    os.kill(srv.pid, signal.SIGKILL)
    srv.wait_exit(10)
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    eq(drain(q), list(range(3, 10)), 'items got before the kill do not come back')

    # producers on 4 connections, SIGKILL once a random number of puts returned
    target = RNG.randrange(50, 1500)
    attempted, returned = [], []
    lock = threading.Lock()

    def producer(t):
        p = manager(srv, 'get_jobs').get_jobs()
        for i in range(100000):
            with lock:
                attempted.append((t, i))
            try:
                p.put((t, i))
            except Exception:
                return
            with lock:
                returned.append((t, i))

    srv, q, back = kill_when(srv, cfg, [threading.Thread(target=producer, args=(t,)) for t in range(4)],
                             lambda: len(returned) >= target)
    sb, sr, sa = set(back), set(returned), set(attempted)
    check(sr <= sb, 'producers killed: every put that returned is back (%d missing, e.g. %r)'
          % (len(sr - sb), sorted(sr - sb)[:5]))
    check(sb <= sa, 'producers killed: nothing back that was not put')
    eq(len(back), len(sb), 'producers killed: no item twice')
    for t in range(4):
        mine = [x[1] for x in back if x[0] == t]
        eq(mine, sorted(mine), 'producers killed: producer %d in order' % t)
    check(len(sb - sr) <= 4, 'producers killed: at most one unanswered put per producer stored')
    note('producers killed after %d puts (seed %d): %d puts returned, %d back, %d stored without their reply'
         % (target, SEED, len(sr), len(sb), len(sb - sr)))

    # consumers on 4 connections, SIGKILL once a random number of gets returned: what a get
    # returned never comes back
    n = 2000
    for i in range(n):
        q.put(i)
    received = []
    target = RNG.randrange(50, 1500)

    def consumer():
        c = manager(srv, 'get_jobs').get_jobs()
        while True:
            try:
                x = c.get(timeout=5)
            except Exception:
                return
            with lock:
                received.append(x)

    srv, q, back = kill_when(srv, cfg, [threading.Thread(target=consumer) for _ in range(4)],
                             lambda: len(received) >= target)
    both = set(received) & set(back)
    check(not both, 'consumers killed: no item got before the kill is back (%d are, e.g. %r)'
          % (len(both), sorted(both)[:5]))
    eq(back, sorted(back), 'consumers killed: the rest in order')
    lost = set(range(n)) - set(received) - set(back)
    check(len(lost) <= 4, 'consumers killed: at most one item per consumer whose reply was lost (%d)' % len(lost))
    check(back, 'consumers killed: killed while items were left')
    note('consumers killed after %d gets (seed %d): %d got, %d back, %d taken without their reply reaching anyone'
         % (target, SEED, len(received), len(back), len(lost)))
    stop(srv, 'kill after reply')


# --------------------------------------------------------------------------
# 3. Redelivery

def went_back(srv, name, n, total, what):
    return log_has(srv, r"queue %s: %d items? in flight on (?:#\d+ )?\S+ went back to the queue \(its connection closed; "
                        r"%d redelivered so far\)" % (name, n, total), what)


def test_redelivery():
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = true }')])
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()

    # a client got 2 and exits: back at the head, in order, before the older items
    for x in 'abcd':
        q.put(x)
    c, got = getter_child(srv, 'get_jobs', 2)
    eq(got, ['a', 'b'], 'the child got a and b')
    eq(c.wait(), 0, 'the child exits')
    went_back(srv, "'jobs'", 2, 2, 'exit')
    eq(d.items('jobs'), list('abcd'), 'exit: the store orders a, b before c, d')
    eq(q.qsize(), 4, 'exit: qsize')
    eq([q.get() for _ in range(4)], list('abcd'), 'exit: a and b come back first')
    for _ in range(4):
        q.task_done()
    q.join()
    eq(d.items('jobs'), [], 'task_done from the getting connection took them out of the store')

    # a client got 2 and is killed, while a getter waits: that getter gets the first
    for x in 'ef':
        q.put(x)
    c, got = getter_child(srv, 'get_jobs', 2, mode='stay')
    eq(got, ['e', 'f'], 'the child got e and f')

    def get_and_finish():
        item = q.get(timeout=10)
        q.task_done()  # on this thread's connection, which closes when the thread ends
        return item

    parked = harness.run_thread(get_and_finish)
    time.sleep(0.3)
    check(not parked['done'].is_set(), 'the getter waits (the queue is empty)')
    c.kill()
    check(parked['done'].wait(5), 'the waiting getter is answered once the child is killed')
    eq(parked.get('result'), 'e', 'it gets the first item the child had')
    went_back(srv, "'jobs'", 2, 4, 'kill')
    eq(q.get(timeout=5), 'f', 'then the second')
    q.task_done()
    q.join()

    # task_done on the getting connection settles the oldest: only the other comes back
    for x in 'gh':
        q.put(x)
    c, got = getter_child(srv, 'get_jobs', 2, done=1)
    eq(got, ['g', 'h'], 'the child got g and h')
    eq(c.wait(), 0, 'the child exits')
    went_back(srv, "'jobs'", 1, 5, 'task_done then exit')
    eq(drain(q), ['h'], 'only h, which was not done, comes back')
    q.task_done()
    q.join()

    # redelivered items in flight again when the server is SIGKILLed: back after the restart
    for x in 'ijk':
        q.put(x)
    c, got = getter_child(srv, 'get_jobs', 2)
    c.wait()
    went_back(srv, "'jobs'", 2, 7, 'redelivered once')
    c2, got = getter_child(srv, 'get_jobs', 2, mode='stay')
    eq(got, ['i', 'j'], 'the second child got i and j again')
    q.put('l')
    kill(srv, 'in flight at SIGKILL')
    c2.kill()
    srv = start(cfg)
    log_has(srv, r"queue 'jobs': 4 items, 4 unfinished", 'in flight at SIGKILL: back after the restart')
    eq(d.items('jobs'), list('ijkl'), 'in flight at SIGKILL: the store order')
    q = manager(srv, 'get_jobs').get_jobs()
    # in flight at SIGTERM likewise
    c3, got = getter_child(srv, 'get_jobs', 1, mode='stay')
    eq(got, ['i'], 'a third child got i')
    stop(srv, 'in flight at SIGTERM')
    c3.kill()
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    eq([q.get_nowait() for _ in range(4)], list('ijkl'), 'in flight at SIGTERM: i, j, k, l in order')
    for _ in range(4):
        q.task_done()
    q.join()
    stop(srv, 'redelivery')


def test_redelivery_in_memory():
    d = Dir()
    cfg = d.conf([('get_mem', 'shmgr.JoinableQueue{ name = "mem", redeliver = true }'),
                  ('get_anon', 'shmgr.Queue{ redeliver = true }')], data_dir=None)
    srv = start(cfg)
    m = manager(srv, 'get_mem', 'get_anon')
    q, anon = m.get_mem(), m.get_anon()
    for x in 'abc':
        q.put(x)
    anon.put('a')
    anon.put('b')
    c, got = getter_child(srv, 'get_mem', 2)
    eq(got, ['a', 'b'], 'in memory: the child got a and b')
    c.wait()
    went_back(srv, "'mem'", 2, 2, 'in memory')
    eq(drain(q), list('abc'), 'in memory: a and b back first')
    for _ in range(3):
        q.task_done()
    q.join()
    c, got = getter_child(srv, 'get_anon', 2, mode='stay')
    eq(got, ['a', 'b'], 'in memory, unnamed: the child got a and b')
    parked = harness.run_thread(lambda: [anon.get(timeout=10), anon.get(timeout=10), anon.get(timeout=10)])
    time.sleep(0.2)
    c.kill()
    went_back(srv, r"[0-9a-fx]+", 2, 2, 'in memory, unnamed (its ident names it)')
    anon.put('c')
    check(parked['done'].wait(5), 'in memory, unnamed: the getter is answered')
    eq(parked.get('result'), list('abc'), 'in memory, unnamed: a, b, then c')
    stop(srv, 'in memory', store=False)
    check(not os.listdir(d.data), 'in memory: no store')


# --------------------------------------------------------------------------
# 5. Bad conditions: refused with the file and the reason, data untouched

def test_bad_conditions():
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }')])
    expected = [('item', i, 'x' * 300) for i in range(300)]
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    for it in expected:
        q.put(it)
    stop(srv, 'bad conditions: setup')

    def intact(what):
        """The problem gone: the server starts with every item, in order."""
        srv = start(cfg)
        log_has(srv, r"queue 'jobs': %d items" % len(expected), what + ', fixed')
        q = manager(srv, 'get_jobs').get_jobs()
        eq(q.qsize(), len(expected), '%s, fixed: qsize' % what)
        eq(q.get(), expected.pop(0), '%s, fixed: the first item' % what)
        eq(d.items('jobs'), expected, '%s, fixed: the store' % what)
        stop(srv, what + ', fixed')

    def unchanged(before, what, path=None):
        path = path or d.db
        with open(path, 'rb') as f:
            check(f.read() == before, '%s: %s is unchanged' % (what, path))

    # data_dir missing (an unmounted volume): not created, nothing started empty
    away = d.data + '.away'
    os.rename(d.data, away)
    refused(cfg, 'data_dir missing', ["data_dir '%s'" % d.data, 'No such file or directory'])
    check(not os.path.exists(d.data), 'data_dir missing: not created')
    os.rename(away, d.data)
    intact('data_dir missing')

    # data_dir a file
    os.rename(d.data, away)
    with open(d.data, 'wb') as f:
        f.write(b'not a directory\n')
    refused(cfg, 'data_dir a file', ["data_dir '%s'" % d.data, 'is not a directory'])
    unchanged(b'not a directory\n', 'data_dir a file', d.data)
    os.remove(d.data)
    os.rename(away, d.data)
    intact('data_dir a file')

    # data_dir not writable: as root every directory is, so as user nobody
    if os.geteuid() != 0:
        os.chmod(d.data, 0o555)
        before = d.db_bytes()
        refused(cfg, 'data_dir not writable', ["data_dir '%s'" % d.data, 'not writable', 'Permission denied'])
        unchanged(before, 'data_dir not writable')
        os.chmod(d.data, 0o755)
        intact('data_dir not writable')
    elif not shutil.which('setpriv'):
        harness.skip_part('data_dir not writable', 'running as root without setpriv to run shmgr as nobody')
    else:
        nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']
        os.chmod(d.path, 0o755)  # nobody reads the config; data stays root's, mode 755
        before = d.db_bytes()
        refused(cfg, 'data_dir not writable (as nobody)',
                ["data_dir '%s'" % d.data, 'not writable', 'Permission denied'], prefix=nobody)
        unchanged(before, 'data_dir not writable (as nobody)')
        # the dir writable by all, the files still root's 644
        os.chmod(d.data, 0o777)
        refused(cfg, 'store files not writable (as nobody)', [d.data, 'Permission denied'], prefix=nobody)
        unchanged(before, 'store files not writable (as nobody)')
        os.chmod(d.data, 0o755)
        os.chmod(d.path, 0o700)
        intact('data_dir not writable')

    # shmgr.db damaged in the middle
    good = d.db_bytes()
    check(len(good) > 16 * 4096, 'the store spans pages (%d bytes)' % len(good))
    bad = bytearray(good)
    mid = len(bad) // 2
    bad[mid:mid + 3000] = bytes(RNG.randrange(256) for _ in range(3000))
    with open(d.db, 'wb') as f:
        f.write(bad)
    err = refused(cfg, 'shmgr.db damaged in the middle (seed %d)' % SEED, [d.db])
    check('damaged' in err or 'malformed' in err, 'damaged store: stderr says why:\n%s' % err)
    unchanged(bytes(bad), 'damaged store')
    with open(d.db, 'wb') as f:
        f.write(good)
    intact('damaged store')

    # shmgr.db random bytes
    good = d.db_bytes()
    junk = bytes(RNG.randrange(256) for _ in range(20000))
    with open(d.db, 'wb') as f:
        f.write(junk)
    refused(cfg, 'shmgr.db random bytes (seed %d)' % SEED, [d.db, 'file is not a database'])
    unchanged(junk, 'random bytes')
    with open(d.db, 'wb') as f:
        f.write(good)
    intact('random bytes')

    # shmgr.db cut short (a copy that did not finish)
    good = d.db_bytes()
    with open(d.db, 'wb') as f:
        f.write(good[:len(good) // 2])
    refused(cfg, 'shmgr.db truncated', [d.db, 'malformed'])
    unchanged(good[:len(good) // 2], 'truncated')
    with open(d.db, 'wb') as f:
        f.write(good)
    intact('truncated')

    # an SQLite database that is not a store
    good = d.db_bytes()
    os.rename(d.db, d.db + '.good')
    c = sqlite3.connect(d.db)
    c.execute('CREATE TABLE accounts(name TEXT, balance INTEGER)')
    c.execute("INSERT INTO accounts VALUES('alice', 100)")
    c.commit()
    c.close()
    other = d.db_bytes()
    refused(cfg, 'another SQLite database', [d.db, 'is not a shmgr store'])
    unchanged(other, 'another SQLite database')
    eq(d.sql('SELECT * FROM accounts'), [('alice', 100)], 'another SQLite database: its rows')
    os.remove(d.db)
    for tail in ('-wal', '-shm'):
        if os.path.exists(d.db + tail):
            os.remove(d.db + tail)
    os.rename(d.db + '.good', d.db)
    intact('another SQLite database')

    # a store of format 2
    d.sql("UPDATE meta SET value = 2 WHERE key = 'format'", write=True)
    before = d.db_bytes()
    refused(cfg, 'store format 2', [d.db, 'format 2', 'reads format 1'])
    unchanged(before, 'store format 2')
    d.sql("UPDATE meta SET value = 1 WHERE key = 'format'", write=True)
    intact('store format 2')

    # a second server on the same data_dir, while the first serves
    srv = start(cfg)
    q = manager(srv, 'get_jobs').get_jobs()
    refused(cfg, 'a second server', ["data_dir '%s' is in use by another shmgr (pid %d" % (d.data, srv.pid),
                                     os.path.join(d.data, 'shmgr.lock')])
    check(srv.alive(), 'a second server: the first still runs')
    eq(q.qsize(), len(expected), 'a second server: the first still serves')
    q.put('while refused')
    eq(d.items('jobs')[-1], 'while refused', 'a second server: the first still stores')
    eq(q.get(), expected.pop(0), 'a second server: the first still gets')
    expected.append('while refused')
    stop(srv, 'a second server')
    intact('a second server')

    # an item the store holds that cannot be read: refused, and nothing of the start-up it gave
    # up is written (here it would have recorded a new queue and jobs' new maxsize and kind)
    pos, data = d.sql("SELECT pos, data FROM queue_items WHERE queue = 'jobs' ORDER BY pos LIMIT 1 OFFSET 4")[0]
    d.sql("UPDATE items SET data = x'00ff' WHERE pos = ?", (pos,), write=True)
    records = d.sql('SELECT * FROM objects ORDER BY id')
    before = d.db_bytes()
    refused(cfg, 'an unreadable item', [d.db, "queue 'jobs'", 'item at position %d' % pos])
    unchanged(before, 'an unreadable item')
    changed = d.conf([('get_fresh', 'shmgr.Queue{ name = "fresh", durable = true }'),
                      ('get_jobs', 'shmgr.JoinableQueue{ name = "jobs", durable = true, maxsize = 9 }')],
                     name='changed.lua')
    err = refused(changed, 'an unreadable item, declarations changed', [d.db, "queue 'jobs'", 'item at position %d' % pos])
    check('closed after 0 commits' in err, 'an unreadable item: the start-up given up commits nothing; stderr:\n%s' % err)
    eq(d.sql('SELECT * FROM objects ORDER BY id'), records, 'an unreadable item: the records are as they were')
    unchanged(before, 'an unreadable item, declarations changed')
    eq(d.sql('SELECT count(*) FROM items')[0][0], len(expected), 'an unreadable item: every item still there')
    d.sql('UPDATE items SET data = ? WHERE pos = ?', (data, pos), write=True)
    intact('an unreadable item')


# --------------------------------------------------------------------------
# The store full, undeclared queues, proxies, Lua

def test_store_full():
    d = Dir()
    cfg = d.conf([('get_big', 'shmgr.Queue{ name = "big", durable = true }')],
                 extra='limits = { max_store_bytes = 160 * 1024 }')
    srv = start(cfg)
    lock = threading.Lock()
    returned, errors = [], []

    def producer(t):
        p = manager(srv, 'get_big').get_big()
        for i in range(200):
            item = (t, i, os.urandom(5000))
            try:
                p.put(item)
            except OSError as e:
                with lock:
                    errors.append(e)
                if len(errors) >= 8:
                    return
                continue
            with lock:
                returned.append(item)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(errors, 'store full: puts fail at last')
    for e in errors[:3]:
        check('full' in str(e), 'store full: the error says so: %s' % exc_text(e))
    note('store full: %d puts returned, %d failed; e.g. %s' % (len(returned), len(errors),
                                                                 exc_text(errors[0]) if errors else '-'))
    check(srv.alive(), 'store full: the server runs')
    q = manager(srv, 'get_big').get_big()
    eq(q.qsize(), len(returned), 'store full: qsize is the puts that returned')
    stored = d.items('big')
    eq(sorted(stored), sorted(returned), 'store full: the store holds the puts that returned')
    for t in range(4):
        mine = [x for x in stored if x[0] == t]
        eq(mine, sorted(mine), 'store full: producer %d in order' % t)
    # gets free room, while producers keep trying: no get fails, puts work again
    got, get_errors = [], []
    busy = threading.Event()
    refill = []

    def retrier(t):
        p = manager(srv, 'get_big').get_big()
        i = 0
        while not busy.is_set():
            item = ('again', t, i, os.urandom(5000))
            try:
                p.put(item)
            except OSError:
                continue
            i += 1
            with lock:
                refill.append(item)

    threads = [threading.Thread(target=retrier, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    for _ in range(12):
        try:
            got.append(q.get(timeout=5))
        except Exception as e:
            get_errors.append(e)
    busy.set()
    for t in threads:
        t.join(30)
    eq([exc_text(e) for e in get_errors[:3]], [], 'store full: no get fails while producers find it full '
       '(%d of 12 failed)' % len(get_errors))
    eq(got, stored[:len(got)], 'store full: the gets take the oldest')
    check(refill, 'store full: the room the gets freed is used by puts')
    note('store full, producers retrying: %d gets, %d failed; %d puts returned meanwhile'
         % (len(got), len(get_errors), len(refill)))
    want = stored[len(got):] + refill
    eq(sorted(d.items('big'), key=repr), sorted(want, key=repr), 'store full: the store holds what is queued')
    kill(srv, 'store full')
    srv = start(cfg)
    q = manager(srv, 'get_big').get_big()
    back = drain(q)
    eq(sorted(back, key=repr), sorted(want, key=repr), 'store full: after the restart, exactly the puts that returned and were not got')
    eq(back[:len(stored) - len(got)], stored[len(got):], 'store full: in order')
    for t in range(4):
        mine = [x for x in back if x[0] == 'again' and x[1] == t]
        eq(mine, sorted(mine), 'store full: retrier %d in order' % t)
    stop(srv, 'store full')


def test_store_locked():
    """Another writer holds the database (an operator's BEGIN IMMEDIATE in the sqlite3
    shell): each call that must write fails with OSError saying so, none hangs, the server
    serves the others, and once the lock is gone all is as before."""
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.JoinableQueue{ name = "jobs", durable = true }'),
                  ('get_rjobs', 'shmgr.JoinableQueue{ name = "rjobs", durable = true, redeliver = true }')])
    srv = start(cfg)
    m = manager(srv, 'get_jobs', 'get_rjobs')
    q, r = m.get_jobs(), m.get_rjobs()
    for i in range(3):
        q.put(i)
        r.put(i)
    eq(q.get(), 0, 'locked: got 0 before')
    holder = sqlite3.connect(d.db, isolation_level=None, timeout=0)
    holder.execute('BEGIN IMMEDIATE')
    hung = False
    def get_done():  # on one connection (this thread's): a get, then its task_done
        item = r.get_nowait()  # nothing to write until task_done
        try:
            r.task_done()
        except OSError as e:
            return item, exc_text(e)  # not e: its traceback would keep the connection open
        return item, None

    for what, call in (('put', lambda: q.put('x')), ('get', q.get_nowait), ('task_done', q.task_done),
                       ('put (redeliver)', lambda: r.put('y')), ('task_done (redeliver)', get_done)):
        box = harness.run_thread(call)
        if not box['done'].wait(10):
            harness.fail('locked: %s gets no answer (the server is stuck)' % what)
            hung = True
            break
        box['thread'].join(5)
        gc.collect()  # the thread's connection closes with the last reference to it
        e = box.get('error')
        text = exc_text(e) if e else 'returned %r' % (box.get('result'),)
        if what == 'task_done (redeliver)' and 'result' in box:
            eq(box['result'][0], 0, 'locked: get (redeliver) works: it writes nothing')
            text = box['result'][1] or 'returned None'
        check(text.startswith('OSError: ') and 'database is locked' in text and d.db in text,
              'locked: %s fails with OSError naming the lock and the file: %s' % (what, text))
    if hung:
        holder.close()
        kill(srv, 'locked')
        return
    other = harness.run_thread(lambda: manager(srv, 'get_jobs').get_jobs().qsize())
    check(other['done'].wait(10), 'locked: another client is served')
    eq(other.get('result'), 2, 'locked: qsize as before')
    holder.execute('ROLLBACK')
    holder.close()
    log_has(srv, r'store: a commit failed, its changes are rolled back: database is locked', 'locked')
    # the thread that got 0 from rjobs ended: 0 is back
    went_back(srv, "'rjobs'", 1, 1, 'locked: the item in flight on the thread that ended')
    eq(r.get(), 0, 'unlocked: rjobs gives 0 again')
    # all as it was: 1, 2 queued and 3 tasks unfinished
    joiner = harness.run_thread(q.join)
    eq([q.get(), q.get()], [1, 2], 'unlocked: the items')
    for i in range(3):
        check(not joiner['done'].wait(0.05), 'unlocked: join waits for the 3 tasks (%d done)' % i)
        q.task_done()
    check(joiner['done'].wait(5), 'unlocked: join returns after the 3rd task_done')
    r.task_done()  # settles 0
    eq(d.items('rjobs'), [1, 2], 'unlocked: task_done took 0 out of the store')
    q.put('z')
    kill(srv, 'locked')
    srv = start(cfg)
    log_has(srv, r"queue 'jobs': 1 item, 1 unfinished", 'locked, restarted')
    log_has(srv, r"queue 'rjobs': 2 items, 2 unfinished", 'locked, restarted')
    stop(srv, 'locked')


def test_undeclared():
    d = Dir()
    both = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }'),
                   ('get_old', 'shmgr.JoinableQueue{ name = "old", durable = true }')])
    jobs_only = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }')], name='jobs_only.lua')
    srv = start(both)
    m = manager(srv, 'get_jobs', 'get_old')
    for x in ('o1', 'o2', 'o3'):
        m.get_old().put(x)
    m.get_jobs().put('j1')
    kill(srv, 'undeclared: setup')
    for how in ('SIGTERM', 'SIGKILL'):
        srv = start(jobs_only)
        log_has(srv, r"store: durable JoinableQueue 'old' \(3 items, 3 unfinished\) is in %s but the config no "
                     r"longer declares it: kept as it is, not served" % re.escape(d.db), 'undeclared (%s)' % how)
        jobs = manager(srv, 'get_jobs').get_jobs()
        jobs.put('j2')
        eq(d.items('old'), ['o1', 'o2', 'o3'], 'undeclared (%s): its items stay in the store' % how)
        if how == 'SIGTERM':
            stop(srv, 'undeclared')
        else:
            kill(srv, 'undeclared')
        eq(d.items('old'), ['o1', 'o2', 'o3'], 'undeclared, after a %s: its items stay in the store' % how)
        eq(d.record('old'), ('JoinableQueue', 0, 3, 0), 'undeclared, after a %s: its record' % how)
    srv = start(both)
    check('no longer declares' not in srv.log(), 'declared again: no warning')
    m = manager(srv, 'get_jobs', 'get_old')
    old = m.get_old()
    eq(drain(old), ['o1', 'o2', 'o3'], 'declared again: its items are back')
    for _ in range(3):
        old.task_done()
    old.join()
    eq(drain(m.get_jobs()), ['j1', 'j2', 'j2'], 'the declared queue kept what it got meanwhile')
    stop(srv, 'undeclared')


def test_proxies():
    from multiprocessing.managers import SyncManager
    d = Dir()
    cfg = d.conf([('get_jobs', 'shmgr.Queue{ name = "jobs", durable = true }'),
                  ('get_small', 'shmgr.Queue{ name = "small", durable = true, maxsize = 1 }')])
    srv = start(cfg)
    m = harness.client_manager(srv, ('get_jobs', 'get_small'), base=SyncManager)
    q, small = m.get_jobs(), m.get_small()
    base = m._number_of_objects()
    lst = m.list([1, 2])
    for what, item in (('a proxy', lst), ('a proxy in a list', [1, lst]),
                       ('a proxy in a dict', {'k': (lst,)}), ('a Queue proxy', m.Queue())):
        e = harness.raises(TypeError, q.put, item, what='put of %s' % what)
        if e is not None:
            check('durable queue cannot hold a proxy' in str(e), 'put of %s: the message says why: %s' % (what, e))
    small.put('fills it')
    e = harness.raises(TypeError, small.put, [lst], True, 5, what='a blocking put of a proxy on a full queue')
    if e is not None:
        check('durable queue cannot hold a proxy' in str(e), 'a blocking put of a proxy: %s' % e)
    eq(q.qsize(), 0, 'proxies: nothing was put')
    eq(d.items('jobs'), [], 'proxies: nothing was stored')
    q.put(['plain', 1])
    eq(q.get(), ['plain', 1], 'a plain value after the refusals')
    eq(small.get(), 'fills it', 'the full queue kept its item')
    del lst, item, e  # e's traceback holds the call's arguments
    gc.collect()
    eq(harness.wait_until(lambda: m._number_of_objects() == base, 3) and m._number_of_objects(), base,
       'proxies: the objects refused are let go')
    stop(srv, 'proxies')


LUA_TYPES = '''
-- a durable queue and a Lua type whose method waits on it
local lq = shmgr.JoinableQueue{ name = "lq", durable = true }
shmgr.register("get_lq", function() return lq end)
shmgr.register("Taker", function()
  return { take = function(self) return lq:get() end,
           take_done = function(self) local x = lq:get(); lq:task_done(); return x end }
end)
'''


def test_lua_method():
    d = Dir()
    d.write('taker.lua', LUA_TYPES)
    cfg = d.conf([], extra='types = { "taker.lua" }')
    items = [('t', 1), b'bytes', {'k': [1.5, None]}, 'str', 2 ** 70]
    srv = start(cfg)
    m = manager(srv, 'get_lq', 'Taker')
    lq, taker = m.get_lq(), m.Taker()
    waiting = harness.run_thread(taker.take)
    time.sleep(0.2)
    check(not waiting['done'].is_set(), 'Lua take() waits on the empty durable queue')
    lq.put('first')
    check(waiting['done'].wait(5), 'Lua take() is answered by a put')
    eq(waiting.get('result'), 'first', 'Lua take() returns the item')
    for it in items:
        lq.put(it)
    eq(taker.take_done(), items[0], 'Lua take_done() before the restart')
    kill(srv, 'Lua')
    srv = start(cfg)
    log_has(srv, r"queue 'lq': 4 items, 5 unfinished", 'Lua: the queue after the restart')
    m = manager(srv, 'get_lq', 'Taker')
    lq, taker = m.get_lq(), m.Taker()
    got = [taker.take() for _ in range(4)]
    check(all(same(g, w) for g, w in zip(got, items[1:])) and len(got) == 4,
          'Lua take() after the restart: %r, want %r' % (got, items[1:]))
    waiting = harness.run_thread(taker.take_done)
    time.sleep(0.2)
    check(not waiting['done'].is_set(), 'Lua take_done() waits after the restart')
    lq.put('last')
    check(waiting['done'].wait(5), 'Lua take_done() is answered after the restart')
    eq(waiting.get('result'), 'last', 'Lua take_done() returns the item after the restart')
    for _ in range(5):  # the 4 taken and 'first', got before the restart
        lq.task_done()
    lq.join()
    stop(srv, 'Lua')


# --------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1 and sys.argv[1] == 'child':
        child_main(*sys.argv[2:])
        return
    if harness.BACKEND == 'cpython':
        harness.skip('durable queues are shmgr\'s own (CPython\'s server keeps nothing)')
    faulthandler.dump_traceback_later(100)  # where it waits, before run.py's timeout kills it
    note('seed %d (SHMGR_TEST_SEED=%d to repeat)' % (SEED, SEED))
    parts = [test_declarations, test_restart_kinds, test_unfinished, test_several_queues_and_maxsize,
             test_kill_after_reply, test_redelivery, test_redelivery_in_memory, test_bad_conditions,
             test_store_full, test_store_locked, test_undeclared, test_proxies, test_lua_method]
    only = os.environ.get('DURABLE_ONLY')
    try:
        for part in parts:
            if only and only not in part.__name__:
                continue
            started = time.time()
            try:
                part()
            except Exception:
                import traceback
                harness.fail('%s raised:\n%s' % (part.__name__, traceback.format_exc()))
            note('%s: %.1fs' % (part.__name__, time.time() - started))
    finally:
        for srv in _servers:
            if srv.alive():
                os.killpg(srv.pid, signal.SIGKILL)
                srv.wait_exit(5)
        for p in _dirs:
            for root, dirs, _ in os.walk(p):
                for x in dirs:
                    os.chmod(os.path.join(root, x), stat.S_IRWXU)
            shutil.rmtree(p, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
