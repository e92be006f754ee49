"""shmgr-cli and the server methods behind it: what operators see matches what clients did.

info, clients, objects, queues, slowlog, kill and shutdown, as tables and as --json, over TCP
and a Unix socket; the same figures through the protocol from a stock Python client; a wrong
key, an unreachable server, an unknown command and a bad argument each give one line and a
non-zero exit; log lines carry a timestamp, a level and the connection id `clients` shows."""

import json
import os
import re
import subprocess
import sys
import threading
import time
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CLI = os.path.join(harness.REPO, 'shmgr-cli')


def addr_of(srv):
    if isinstance(srv.address, str):
        return 'unix:' + srv.address
    return '%s:%d' % srv.address


def cli(srv, *args, **kw):
    """Run shmgr-cli against srv; (exit code, stdout, stderr)."""
    key = kw.get('key', srv.authkey.decode('ascii'))
    argv = [CLI, '-a', kw.get('addr') or addr_of(srv)] + (['-k', key] if key is not None else []) + list(args)
    env = dict(os.environ)
    env.pop('SHMGR_AUTHKEY', None)
    env.update(kw.get('env', {}))
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate(timeout=30)
    return p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


def cli_json(srv, *args):
    rc, out, err = cli(srv, '--json', *args)
    harness.check(rc == 0, 'shmgr-cli --json %s exits 0 (got %r: %s)' % (' '.join(args), rc, err.strip()))
    return json.loads(out) if rc == 0 else None


def server_method(srv, name, *args):
    """A server method through the protocol, as the README shows it."""
    from multiprocessing.connection import Client
    from multiprocessing.managers import dispatch
    c = Client(srv.address, authkey=srv.authkey)
    try:
        return dispatch(c, None, name, args)
    finally:
        c.close()


def row(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def figures(srv):
    """info, clients and objects as JSON and through the protocol, compared with what clients do."""
    from multiprocessing.managers import SyncManager

    class M(SyncManager):
        pass
    M.register('get_jobs')
    M.register('Spinner')
    m = M(address=srv.address, authkey=srv.authkey)
    m.connect()
    info0 = cli_json(srv, 'info')
    lock = m.Lock()
    d = m.dict(a=1, b=2, c=3)
    jobs = m.get_jobs()
    for i in range(7):
        jobs.put(i)
    harness.eq(jobs.get(), 0, 'a job')
    # the lock is taken on a thread's connection of its own: the one killed below (a stock
    # client does not reconnect a thread's connection that was closed)
    # (kept alive: a thread that ends closes its connection, and lock_policy gives the lock back)
    took, finish = threading.Event(), threading.Event()

    def hold():
        lock.acquire()
        took.set()
        finish.wait(30)
    holder = threading.Thread(target=hold)
    holder.daemon = True
    holder.start()
    took.wait(10)
    holder_info = cli_json(srv, 'clients')

    # a second connection waits for the lock, a third for a queue that stays empty
    waited = {}

    def wait_lock():
        t = time.time()
        waited['got'] = lock.acquire(timeout=20)
        waited['after'] = time.time() - t
    q = m.Queue()
    t1 = threading.Thread(target=wait_lock)
    t1.start()
    t2 = threading.Thread(target=lambda: harness.raises(Exception, q.get, timeout=20))
    t2.daemon = True
    t2.start()
    harness.check(harness.wait_until(lambda: len([c for c in cli_json(srv, 'clients') if c['state'] == 'parked']) == 2, 5),
                  'two clients show as parked')
    time.sleep(0.3)

    info = cli_json(srv, 'info')
    clients = cli_json(srv, 'clients')
    objects = cli_json(srv, 'objects')
    queues = cli_json(srv, 'queues')

    # info
    harness.eq(info['pid'], srv.pid, 'info: pid')
    harness.eq(info['listeners'], [addr_of(srv)], 'info: listeners')
    harness.check(info['uptime'] > 0, 'info: uptime')
    harness.eq(info['calls']['parked'], 2, 'info: parked calls now')
    harness.check(info['calls']['parked_total'] >= 2, 'info: parked calls in all')
    # open connections: the main thread's, the holder's, two waiting threads' and shmgr-cli's own
    harness.eq(info['connections']['open'], 5, 'info: open connections')
    harness.check(info['calls']['total'] > info0['calls']['total'] + 10,
                  'info: calls counted (%d then %d)' % (info0['calls']['total'], info['calls']['total']))
    by = info['objects']['by_typeid']
    harness.eq((by.get('Lock'), by.get('dict'), by.get('Queue')), (1, 1, 1),
               'info: objects per typeid (Lock, dict, Queue)')
    harness.eq(by.get('get_jobs'), 1, 'info: the declared queue counts under the typeid it was shared as')
    harness.eq(info['store'], None, 'info: no store without data_dir')
    harness.check(info['memory']['rss'] > 1 << 20 and info['memory']['lua'] > 0, 'info: memory figures')
    names, rows = server_method(srv, 'shmgr_clients', True)
    tuples = [dict(zip(names, r)) for r in rows]

    def busy(rs):  # the parked ones and the holders: the same in both answers
        return sorted((x['id'], x['state'], bool(x['holds'])) for x in rs if x['state'] == 'parked' or x['holds'])
    harness.eq(busy(tuples), busy(clients), 'shmgr_clients(columns=True): the same rows, as tuples under one list of names')
    harness.check(all(x['holds'] is None or x['holds'] for x in tuples), 'columns: holds is None when empty')
    same = server_method(srv, 'shmgr_info')
    harness.eq((same['pid'], same['listeners']), (info['pid'], info['listeners']),
               'the same info through the protocol (dispatch(conn, None, "shmgr_info"))')

    # clients: the holder, the waiters
    holding = sorted((h['typeid'], h['count']) for c in holder_info for h in c['holds'])
    harness.eq(holding, [('Lock', 1), ('get_jobs', 1)], 'clients: the Lock is held once, one job is in flight')
    me = [c for c in holder_info if [h['typeid'] for h in c['holds']] == ['Lock']]
    harness.eq(len(me), 1, 'clients: one connection holds the lock')
    me = me[0]
    lw = [c for c in clients if c['state'] == 'parked' and c['parked']['typeid'] == 'Lock']
    qw = [c for c in clients if c['state'] == 'parked' and c['parked']['typeid'] == 'Queue']
    harness.check(len(lw) == 1 and lw[0]['parked']['method'] == 'acquire' and lw[0]['parked']['ident'] == lock._id,
                  'clients: one waits on Lock.acquire of that lock: %r' % (lw,))
    harness.check(len(qw) == 1 and qw[0]['parked']['method'] == 'get' and qw[0]['parked']['seconds'] >= 0.3,
                  'clients: one waits on Queue.get, for as long as it has: %r' % (qw,))
    harness.check(lw and 'Thread' in lw[0]['name'], 'clients: the name the client gave (process|thread)')
    main_conn = [c for c in holder_info if [h['typeid'] for h in c['holds']] == ['get_jobs']]
    harness.check(main_conn and main_conn[0]['calls'] >= 8 and main_conn[0]['bytes_in'] > 0 and main_conn[0]['bytes_out'] > 0,
                  'clients: calls and bytes of the main thread\'s connection: %r' % (main_conn,))

    # objects
    lk = row(objects, ident=lock._id)
    harness.check(lk is not None and lk['typeid'] == 'Lock' and lk['holder'] == me['id'] and lk['waiters'] == 1
                  and lk['held'] == 1, 'objects: the lock, its holder (client %d) and one waiter: %r' % (me['id'], lk))
    dd = row(objects, ident=d._id)
    harness.check(dd is not None and dd['size'] == 3 and dd['refcount'] >= 1, 'objects: the dict, its size: %r' % (dd,))
    jj = row(objects, ident=jobs._id)
    harness.check(jj is not None and jj['name'] == 'jobs' and jj['size'] == 6, 'objects: the named queue: %r' % (jj,))
    only = cli_json(srv, 'objects', 'Lock')
    harness.eq([o['ident'] for o in only], [lock._id], 'objects Lock: only the lock')

    # queues
    jq = row(queues, name='jobs')
    harness.check(jq is not None and (jq['depth'], jq['in_flight'], jq['puts'], jq['gets'], jq['kind'], jq['redeliver'])
                  == (6, 1, 7, 1, 'JoinableQueue', True), 'queues: depth, in flight, puts, gets of jobs: %r' % (jq,))
    harness.check(jq is not None and jq['oldest_age'] >= 0.3, 'queues: the oldest item has waited')
    eq = row(queues, ident=q._id)
    harness.check(eq is not None and eq['getters'] == 1 and eq['depth'] == 0 and eq['oldest_age'] is None,
                  'queues: the empty queue has one getter: %r' % (eq,))

    # the tables: every command prints a header and the rows
    rc, out, err = cli(srv, 'clients')
    harness.check(rc == 0 and out.splitlines()[0].split()[:3] == ['ID', 'PEER', 'NAME'] and 'Lock.acquire ' + lock._id in out,
                  'clients table: header, and the waiter on Lock.acquire:\n' + out)
    rc, out, err = cli(srv, 'queues')
    harness.check(rc == 0 and "'jobs'" in out and 'JoinableQueue' in out, 'queues table shows jobs:\n' + out)
    rc, out, err = cli(srv, 'objects')
    harness.check(rc == 0 and ('client %d (x1)' % me['id']) in out, 'objects table shows the lock holder:\n' + out)
    rc, out, err = cli(srv, 'info')
    harness.check(rc == 0 and '# Connections' in out and re.search(r'parked now\s+2', out), 'info table:\n' + out)

    # kill the holder's connection: the lock is given back (lock_policy release), the waiter gets it
    rc, out, err = cli(srv, 'kill', str(me['id']))
    harness.check(rc == 0 and 'closed' in out, 'kill: %r %r' % (out, err))
    t1.join(10)
    harness.check(waited.get('got') is True, 'the waiter got the lock once its holder was killed: %r' % (waited,))
    harness.check(harness.wait_until(lambda: 'killed by an operator' in srv.log()), 'the log says who killed it')
    harness.check(harness.wait_until(lambda: row(cli_json(srv, 'clients'), id=me['id']) is None),
                  'the killed client is gone from clients')
    rc, out, err = cli(srv, 'kill', str(me['id']))
    harness.check(rc == 1 and 'no client with id %d' % me['id'] in err and len(err.strip().splitlines()) == 1,
                  'kill of a client that is gone: one line, exit 1: %r' % (err,))
    finish.set()
    info2 = cli_json(srv, 'info')
    harness.check(info2['abandoned']['locks_released'] >= 1, 'info counts the lock released by the policy')
    # the log names connections by the ids clients shows, with a timestamp and a level
    harness.check(re.search(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z shmgr: debug: #%d [^ ]+: connected$' % me['id'],
                            srv.log(), re.M) is not None, 'log: "#%d <peer>: connected" with a timestamp' % me['id'])
    harness.check(re.search(r'shmgr: warn: #%d .*disconnected holding _thread.lock' % me['id'], srv.log()) is not None,
                  'log: the lock released for that connection, at warn, by id')


def slowlog(srv):
    from multiprocessing.managers import BaseManager

    class M(BaseManager):
        pass
    M.register('Spinner')
    m = M(address=srv.address, authkey=srv.authkey)
    m.connect()
    s = m.Spinner()
    s.spin(1)
    s.spin(30)
    entries = cli_json(srv, 'slowlog')
    harness.check(len(entries) >= 1 and entries[0]['typeid'] == 'Spinner' and entries[0]['method'] == 'spin'
                  and entries[0]['duration_ms'] >= 30, 'slowlog: the 30 ms spin, newest first: %r' % (entries[:2],))
    harness.check(all(e['method'] != 'spin' or e['duration_ms'] >= 5 for e in entries),
                  'slowlog: nothing under the threshold (5 ms)')
    harness.eq(len(cli_json(srv, 'slowlog', '1')), 1, 'slowlog 1: one entry')
    rc, out, err = cli(srv, 'slowlog')
    harness.check(rc == 0 and 'Spinner.spin' in out, 'slowlog table:\n' + out)
    harness.check(re.search(r'shmgr: warn: #\d+ [^ ]+: slow call: Spinner\.spin took \d+\.\d ms', srv.log()) is not None,
                  'log: the slow call at warn')


def errors(srv):
    rc, out, err = cli(srv, 'info', key='not-the-key')
    harness.check(rc == 1 and 'authkey' in err and len(err.strip().splitlines()) == 1 and not out,
                  'a wrong key: one line, exit 1: %r' % (err,))
    rc, out, err = cli(srv, 'info', addr='127.0.0.1:1')
    harness.check(rc == 1 and 'refused' in err and len(err.strip().splitlines()) == 1, 'unreachable: one line, exit 1: %r' % (err,))
    rc, out, err = cli(srv, 'frobnicate')
    harness.check(rc == 2 and 'unknown command' in err and len(err.strip().splitlines()) == 1, 'unknown command: %r' % (err,))
    for args in (('kill',), ('kill', 'x'), ('kill', '-3'), ('slowlog', '0'), ('info', 'extra'), ('--timeout', 'soon', 'info')):
        rc, out, err = cli(srv, *args)
        harness.check(rc == 2 and len(err.strip().splitlines()) == 1, 'bad arguments %r: one line, exit 2: %r' % (args, err))
    rc, out, err = cli(srv)
    harness.check(rc == 2, 'no command: exit 2')
    # the key from a file, and from the environment
    kf = os.path.join(srv.tmpdir, 'key')
    with open(kf, 'w') as f:
        f.write(srv.authkey.decode('ascii') + '\n')
    rc, out, err = cli(srv, '--key-file', kf, 'info', key=None)
    harness.check(rc == 0 and '# Server' in out, '--key-file: %r' % (err,))
    rc, out, err = cli(srv, 'info', key=None, env={'SHMGR_AUTHKEY': srv.authkey.decode('ascii')})
    harness.check(rc == 0, '$SHMGR_AUTHKEY: %r' % (err,))
    rc, out, err = cli(srv, '--key-file', kf + '.missing', 'info', key=None)
    harness.check(rc == 1 and 'cannot read the key file' in err, 'a missing key file: %r' % (err,))
    # server methods with bad arguments answer with Python's errors
    # (as for CPython's own server methods, a client sees them as RemoteError naming the error)
    from multiprocessing.managers import RemoteError
    for args, want in ((('shmgr_info', 1), 'TypeError: Server.shmgr_info() takes'),
                       (('shmgr_kill', 10 ** 9), "KeyError: 'no client with id 1000000000'"),
                       (('shmgr_kill', 'x'), 'TypeError: shmgr_kill(client_id)'),
                       (('shmgr_frob',), "AssertionError: 'shmgr_frob' unrecognized"),
                       (('shmgr_slowlog', 'x'), 'TypeError: shmgr_slowlog(count=None): count is an int'),
                       (('shmgr_slowlog', -1), 'ValueError: shmgr_slowlog(count=None)'),
                       (('shmgr_objects', 3), 'TypeError: shmgr_objects(typeid=None): typeid is a str')):
        try:
            server_method(srv, *args)
            harness.fail('%r: no error' % (args,))
        except RemoteError as e:
            harness.check(want in str(e), '%r: %s in %s' % (args, want, e))


def bad_configs():
    """A config with a bad slowlog_threshold is refused at start, naming it."""
    import tempfile
    for text in ('slowlog_threshold = -1', 'slowlog_threshold = "fast"'):
        d = tempfile.mkdtemp(prefix='shmgr-cli-conf-')
        cfg = os.path.join(d, 'bad.lua')
        with open(cfg, 'w') as f:
            f.write(text + '\n')
        exe = os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr')
        p = subprocess.Popen([exe, '--config', cfg, '--listen', '127.0.0.1:0'], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        out = p.communicate(timeout=30)[0].decode('utf-8', 'replace')
        harness.check(p.returncode == 1 and 'slowlog_threshold must be a non-negative number of milliseconds' in out,
                      '%s: refused at start, saying why: %r' % (text, out))


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("shmgr-cli and the shmgr_* server methods are shmgr's own")
    if not os.path.exists(CLI):
        harness.fail('%s not found: build it first (make)' % CLI)
    with harness.server(harness.conf('ops.lua')) as srv:
        figures(srv)
        slowlog(srv)
        errors(srv)
        rc, out, err = cli(srv, 'shutdown')
        harness.check(rc == 0 and 'shutting down' in out, 'shutdown: %r %r' % (out, err))
        harness.eq(srv.wait_exit(10), 0, 'the server exits 0 after shutdown')
    bad_configs()
    with harness.server(unix=True) as srv:
        rc, out, err = cli(srv, 'info')
        harness.check(rc == 0 and 'unix:' + srv.address in out, 'over a Unix socket: %r' % (err,))
    harness.done()


if __name__ == '__main__':
    main()
