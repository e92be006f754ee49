#!/usr/bin/env python3
"""Benchmark shmgr against CPython's own manager server and write bench/results.md, bench/results.svg."""

import argparse
import datetime
import html
import json
import math
import os
import platform
import re
import resource
import select
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from multiprocessing.connection import Client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHMGR = os.path.join(REPO, 'shmgr')
BENCH = os.path.join(REPO, 'shmgr-bench')
CONFIG = 'shmgr.conf.lua'
PROXY_LATENCY = os.path.join(HERE, 'proxy_latency.py')
PAGE = os.path.join(REPO, 'docs', 'performance.md')  # the page whose bench section a run rewrites
PAGE_BEGIN = '<!-- bench:begin -->'
PAGE_END = '<!-- bench:end -->'

# The Python whose manager server and stock client are measured: Debian's, even
# when `python3` on PATH is another one (pyenv), so that results are comparable.
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable

KINDS = ('cpython', 'shmgr')
LABEL = {'cpython': 'CPython', 'shmgr': 'shmgr'}
RATE_WORKLOADS = ('queue', 'dict', 'list', 'create')
RATE_CONNS = (1, 32, 256)
MANY_CONNS = 10000
START_TIMEOUT = 20.0      # seconds for a server to accept connections
STOP_TIMEOUT = 5.0        # seconds between SIGTERM and SIGKILL
CPYTHON_IDLE_TIMEOUT = 120
CLK_TCK = os.sysconf('SC_CLK_TCK')

# CPython's own server, run as `python3 -c` so that the subprocess pid is the
# server's.  The key comes through the environment, not the command line.
CPYTHON_SERVER = r'''
import os, sys
from multiprocessing.managers import SyncManager
addr = sys.argv[1]
if addr.startswith('unix:'):
    address = addr[5:]
else:
    host, port = addr.rsplit(':', 1)
    address = (host, int(port))
SyncManager(address=address, authkey=os.environb[b'BENCH_AUTHKEY']).get_server().serve_forever()
'''


_python_version = []


def python_version():
    """The version of PYTHON (asked once: it need not be the one running this script)."""
    if not _python_version:
        try:
            out = subprocess.run([PYTHON, '-c', 'import platform; print(platform.python_version())'],
                                 stdout=subprocess.PIPE, universal_newlines=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ''
        _python_version.append(out.strip() or '?')
    return _python_version[0]


def say(text):
    """Progress goes to stderr: stdout is the report."""
    print(text, file=sys.stderr, flush=True)


def tail(path, lines=12):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


def one_line(text, limit=300):
    """Squash text for a table cell: one line, no pipes, bounded."""
    text = ' '.join(str(text).split()).replace('|', '\\|')
    return text if len(text) <= limit else text[:limit - 3] + '...'


# --------------------------------------------------------------------------
# Servers

class ServerError(Exception):
    pass


class Server:
    """One server process (CPython's or shmgr) on a TCP port or a Unix socket."""

    _count = 0

    def __init__(self, kind, transport, ctx, config=None, binary=None):
        Server._count += 1
        self.kind = kind
        self.transport = transport
        self.ctx = ctx
        self.config = config or CONFIG  # shmgr's
        self.binary = binary or SHMGR   # shmgr's: another build of it (build/nostats/shmgr)
        self.prefix = []                # shmgr's: what runs it (valgrind and its options)
        self.proc = None
        self.log = os.path.join(ctx.tmpdir, '%s-%d.log' % (kind, Server._count))
        if transport == 'unix':
            self.path = os.path.join(ctx.tmpdir, '%s-%d.sock' % (kind, Server._count))
            self.addr = 'unix:' + self.path
            self.address = self.path
        else:
            port = free_port()
            self.addr = '127.0.0.1:%d' % port
            self.address = ('127.0.0.1', port)

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        if self.kind == 'shmgr':
            argv = self.prefix + [self.binary, '--config', self.config, '--listen', self.addr]
            env = dict(os.environ, SHMGR_AUTHKEY=self.ctx.key)
        else:
            argv = [PYTHON, '-c', CPYTHON_SERVER, self.addr]
            env = dict(os.environ, BENCH_AUTHKEY=self.ctx.key)
        with open(self.log, 'wb') as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        self.ctx.servers.append(self)
        self._wait_ready()
        return self

    def _wait_ready(self):
        """Until the server answers a real authenticated request (and, for
        shmgr, has said `listening on`): a bare port check could race."""
        deadline = time.monotonic() + START_TIMEOUT
        last = 'no answer'
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError('%s exited with status %s at start; its log ends:\n%s'
                                  % (self.kind, self.proc.returncode, tail(self.log)))
            if self.kind == 'shmgr' and 'listening on' not in tail(self.log, 50):
                time.sleep(0.02)
                continue
            try:
                conn = Client(self.address, authkey=self.ctx.key.encode())
                try:
                    conn.send((None, 'dummy', (), {}))
                    reply = conn.recv()
                finally:
                    conn.close()
                if reply and reply[0] == '#RETURN':
                    return
                last = 'unexpected reply %r' % (reply,)
            except (OSError, EOFError) as e:
                last = str(e)
            time.sleep(0.05)
        self.stop()
        raise ServerError('%s did not answer within %g s (%s); its log ends:\n%s'
                          % (self.kind, START_TIMEOUT, last, tail(self.log)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def death(self):
        """Why the server is not running, for a failure message."""
        return ('%s (pid %d) died with exit status %s; its log ends: %s'
                % (self.kind, self.pid, self.proc.returncode, one_line(tail(self.log, 6))))

    def log_note(self):
        """The end of the server's log, for a failure message, if it said more than where it listens."""
        said = [line for line in tail(self.log, 20).splitlines() if 'listening on' not in line]
        return ('; %s log ends: %s' % (self.kind, one_line(' / '.join(said[-3:])))) if said else ''

    def stop(self, timeout=STOP_TIMEOUT):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port():
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Measurements

class Result:
    """One measurement: .data is the JSON it printed (if any), .error why it failed (None if ok)."""

    def __init__(self, what, kind, data=None, error=None):
        self.what = what
        self.kind = kind
        self.data = data or {}
        self.error = error
        self.section = None  # the section it was measured in (set when it failed)

    @property
    def ok(self):
        return self.error is None

    def get(self, key, default=None):
        value = self.data.get(key)
        return default if value is None else value


class Context:
    """What every measurement shares: options, the key, the servers started, the failures."""

    def __init__(self, opts):
        self.opts = opts
        self.key = secrets.token_hex(16)
        self.tmpdir = tempfile.mkdtemp(prefix='shmgr-bench-')
        self.servers = []
        self.failures = []
        self.section = None  # the section running: each failure is filed under it

    def record(self, result):
        if not result.ok:
            result.section = self.section
            self.failures.append(result)
            say('  FAILED: %s %s: %s' % (LABEL[result.kind], result.what, result.error))
        return result

    def stop_all(self):
        for server in self.servers:
            try:
                server.stop()
            except Exception as e:  # keep stopping the others
                say('could not stop %s (pid %s): %s' % (server.kind, server.pid, e))


def parse_json(text):
    """The one JSON object a tool printed (the whole of stdout, else its last line)."""
    for candidate in (text, (text.strip().splitlines() or [''])[-1]):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def run_json(argv, timeout, env=None):
    """Run a tool that prints one JSON object; (data or None, error or None)."""
    try:
        proc = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, 'timed out after %g s' % timeout
    except OSError as e:
        return None, 'cannot run %s: %s' % (argv[0], e)
    data = parse_json(proc.stdout.decode('utf-8', 'replace'))
    # the last lines of its human output say why, when it says anything
    stderr = one_line(' / '.join(proc.stderr.decode('utf-8', 'replace').strip().splitlines()[-3:]))
    if data is None:
        return None, 'exit status %d, no JSON object on stdout%s' % (
            proc.returncode, '; stderr: ' + stderr if stderr else '')
    if data.get('ok') is False:
        return data, '%s error(s): %s' % (data.get('errors', '?'), one_line(data.get('error') or stderr))
    if proc.returncode != 0:
        return data, 'exit status %d%s' % (proc.returncode, '; stderr: ' + stderr if stderr else '')
    return data, None


def check_result(workload, data, opts_n):
    """Our own sanity checks on a bench result that says ok: the numbers must add up."""
    if workload in RATE_WORKLOADS:
        if not data.get('ops'):
            return 'no ops completed'
        if data.get('server_cpu_us') is None:
            return 'no server CPU figure in the JSON'
    elif workload == 'idle':
        if data.get('served') != opts_n:
            return 'only %s of %d connections served' % (data.get('served'), opts_n)
    elif workload == 'objects':
        if data.get('objects') != opts_n:
            return 'only %s of %d objects created' % (data.get('objects'), opts_n)
    elif workload == 'fill':
        if data.get('qsize') != opts_n:
            return 'queue holds %s of %d items' % (data.get('qsize'), opts_n)
    elif workload == 'park':
        # a waiter woken out of order is a result (target d), not a broken measurement
        if data.get('woken') != opts_n:
            return 'only %s of %d waiters woken' % (data.get('woken'), opts_n)
    return None


def bench(ctx, kind, server, workload, conns, extra, timeout, cpu=None):
    """Run ./shmgr-bench once against server; a Result (recorded if it failed).
    timeout is the bench's own (--timeout: it then reports what it saw); we
    kill it only if it overruns that by a minute. cpu: run the bench on that CPU alone."""
    what = ' '.join(['-w', workload, '-c', str(conns)] + extra)
    if server is None or not server.alive():
        why = server.death() if server is not None else 'the server did not start'
        return ctx.record(Result(what, kind, error=why))
    argv = [ctx.opts.bench, '-a', server.addr, '-k', ctx.key, '-w', workload, '-c', str(conns),
            '-p', str(server.pid), '--timeout', fmt_num(timeout), '--json'] + extra
    if cpu is not None:
        argv = ['taskset', '-c', str(cpu)] + argv
    data, error = run_json(argv, timeout + 60)
    if error is None:
        count = conns if workload in ('idle', 'park') else extra_items(extra)
        error = check_result(workload, data, count)
    if not server.alive():
        error = (error + '; ' if error else '') + server.death()
    elif error:
        error += server.log_note()
    return ctx.record(Result(what, kind, data, error))


def fresh_bench(ctx, kind, workload, conns, extra, timeout):
    """bench() on a server of its own, stopped right after (clean RSS deltas)."""
    server = start_server(ctx, kind)
    try:
        return bench(ctx, kind, server, workload, conns, extra, timeout)
    finally:
        if server is not None:
            server.stop()


def extra_items(extra):
    return int(extra[extra.index('--items') + 1]) if '--items' in extra else None


def start_server(ctx, kind, transport='tcp', config=None, binary=None, prefix=None):
    """A started Server, or None after recording why it could not start. prefix: what runs a
    shmgr (valgrind and its options)."""
    try:
        server = Server(kind, transport, ctx, config, binary)
        server.prefix = prefix or []
        return server.start()
    except (ServerError, OSError) as e:
        ctx.record(Result('start (%s)' % transport, kind, error=one_line(e, 600)))
        return None


# --------------------------------------------------------------------------
# The sections

def plan(opts):
    """Counts for a full run, a tenth of them with --quick."""
    q = opts.quick
    return {
        'duration': opts.duration if opts.duration is not None else (0.5 if q else 3.0),
        'idle': (100, 1000) if q else (1000, 10000),
        'idle_cpython': (100,) if q else (1000, 10000),
        'objects': {'shmgr': 10000 if q else 100000, 'cpython': 1000 if q else 10000},
        'fill': 100000 if q else 1000000,
        'park': {'shmgr': 1000 if q else 10000, 'cpython': 200 if q else 1000},
        'proxy_n': 10 if q else 50,
        'durable_rounds': 1 if q else 3,
        'ops_rounds': 2 if q else 7,
        'ops_conns': 1000 if q else OPS_CONNECTIONS,
        'ops_cli_runs': 3 if q else 10,
        'callgrind_ops': (200, 1200) if q else CALLGRIND_OPS,
        'shared_n': 500 if q else 5000,
        # CPython's server takes some 1.3 ms a create (a thread per connection): a tenth as many
        'shared_objects': {'shmgr': 10000, 'cpython': 1000} if q else {'shmgr': 100000, 'cpython': 10000},
        'python_starts': 5 if q else 20,
        'python_words': 20000 if q else 200000,
        'python_runs': 1 if q else 3,
        'big_rounds': 2 if q else 7,
        'big_values': 4 if q else 8,
    }


def rate_timeout(duration):
    # generous: connecting 256 clients to CPython's thread-per-connection server takes a while
    return duration + 120


def ensure(ctx, servers, kind):
    """The long-lived server of this kind, restarted (and the death recorded) if it died."""
    server = servers.get(kind)
    if server is not None and server.alive():
        return server
    if server is not None:
        ctx.record(Result('long-lived server', kind, error='restarted: ' + server.death()))
    servers[kind] = start_server(ctx, kind)
    return servers[kind]


def section_rates(ctx, p, servers):
    results = {}
    cells = [(w, c) for w in RATE_WORKLOADS for c in RATE_CONNS]
    for i, (workload, conns) in enumerate(cells):
        # alternate which server goes first, so that neither always runs on a warmer machine
        order = KINDS if i % 2 == 0 else tuple(reversed(KINDS))
        for kind in order:
            server = ensure(ctx, servers, kind)
            r = bench(ctx, kind, server, workload, conns, ['-d', fmt_num(p['duration'])],
                      rate_timeout(p['duration']))
            if r.ok:
                say('[%2d/%d] %-7s %-6s -c %-3d %10s ops/s %8s µs CPU/op' % (
                    i + 1, len(cells), LABEL[kind], workload, conns,
                    fmt_int(r.get('ops_per_sec')), fmt_sig(cpu_per_op(r)[0])))
            results[workload, conns, kind] = r
    return results


def section_many(ctx, p, servers):
    """10,000 connections on shmgr, watching the server's open descriptors from outside."""
    server = ensure(ctx, servers, 'shmgr')
    if server is None:
        return ctx.record(Result('-w queue -c %d' % MANY_CONNS, 'shmgr',
                                 error='the server did not start')), {}
    baseline = count_fds(server.pid)
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            n = count_fds(server.pid)
            if n is not None and (peak[0] is None or n > peak[0]):
                peak[0] = n

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        say('10,000 connections on shmgr ...')
        r = bench(ctx, 'shmgr', server, 'queue', MANY_CONNS, ['-d', fmt_num(p['duration'])],
                  rate_timeout(p['duration']) + 180)
    finally:
        stop.set()
        sampler.join()
    fds = {'held': None, 'still_open': None}
    if baseline is not None and peak[0] is not None:
        fds['held'] = peak[0] - baseline
        # the server may need a moment to see every close
        deadline = time.monotonic() + 10
        after = count_fds(server.pid)
        while after is not None and after > baseline and time.monotonic() < deadline:
            time.sleep(0.1)
            after = count_fds(server.pid)
        fds['still_open'] = None if after is None else max(0, after - baseline)
    return r, fds


def count_fds(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return None


ONE_CORE = 0  # the CPU of the one-core measurements


def pin(pid, cpu):
    """Every thread of pid onto cpu (threads it starts later inherit it)."""
    for tid in os.listdir('/proc/%d/task' % pid):
        os.sched_setaffinity(int(tid), {cpu})


def section_one_core(ctx, p):
    """One connection, the server and the bench on one CPU: no cross-CPU wake-ups. What is
    left is each server's own code plus the kernel's loopback path, which both pay alike."""
    res = {}
    if not shutil.which('taskset'):
        return res
    for workload in ('queue', 'dict', 'list'):
        for kind in KINDS:
            server = start_server(ctx, kind)
            try:
                if server is not None:
                    pin(server.pid, ONE_CORE)
                res[workload, kind] = bench(ctx, kind, server, workload, 1, ['-d', fmt_num(p['duration'])],
                                            rate_timeout(p['duration']), cpu=ONE_CORE)
            finally:
                if server is not None:
                    server.stop()
    return res


def section_memory(ctx, p):
    res = {}
    for n in p['idle']:
        for kind in KINDS:
            if kind == 'cpython' and n not in p['idle_cpython']:
                continue
            # CPython starts a thread per connection: give it a bounded time, then call it failed
            timeout = CPYTHON_IDLE_TIMEOUT if kind == 'cpython' else 300
            say('memory: %s, %s idle connections ...' % (LABEL[kind], fmt_int(n)))
            res['idle', n, kind] = fresh_bench(ctx, kind, 'idle', n, [], timeout)
    for kind in KINDS:
        n = p['objects'][kind]
        say('memory: %s, %s shared dicts ...' % (LABEL[kind], fmt_int(n)))
        res['objects', kind] = fresh_bench(ctx, kind, 'objects', 8, ['--items', str(n)], 900)
    for kind in KINDS:
        n = p['fill']
        say('memory: %s, %s queued items ...' % (LABEL[kind], fmt_int(n)))
        res['fill', kind] = fresh_bench(ctx, kind, 'fill', 8, ['--items', str(n)], 900)
    return res


def section_park(ctx, p):
    res = {}
    for kind in KINDS:
        n = p['park'][kind]
        say('park: %s, %s waiters ...' % (LABEL[kind], fmt_int(n)))
        res[kind] = fresh_bench(ctx, kind, 'park', n, [], 300)
    return res


def section_proxy(ctx, p):
    res = {}
    for transport in ('tcp', 'unix'):
        for kind in KINDS:
            say('stock client: %s over %s ...' % (LABEL[kind], transport))
            res[transport, kind] = proxy_latency(ctx, kind, transport, p['proxy_n'])
    return res


def proxy_latency(ctx, kind, transport, n):
    """bench/proxy_latency.py against a fresh server of its own."""
    what = 'proxy create+drop (%s)' % transport
    server = start_server(ctx, kind, transport)
    if server is None:
        return ctx.record(Result(what, kind, error='the server did not start'))
    try:
        data, error = run_json([PYTHON, PROXY_LATENCY, server.addr, ctx.key, str(n)], 120)
        if error is None and data.get('median_ms') is None:
            error = 'no median_ms in the JSON'
        if not server.alive():
            error = (error + '; ' if error else '') + server.death()
        return ctx.record(Result(what, kind, data, error))
    finally:
        server.stop()


# --------------------------------------------------------------------------
# Durable queues

# The same JoinableQueue three ways: in memory (not durable), durable = "process", "power".
DURABLE_MODES = ('memory', 'process', 'power')
DURABLE_CONNS = (1, 32)
DURABLE_TYPEID = 'get_jobs'
DURABLE_CONFIG = """-- written by bench/run.py for the durable queue cells: one JoinableQueue, served as get_jobs
log_level = "info" -- the store logs its commits at close, at info level
%(store)s
local jobs = shmgr.JoinableQueue{ name = "jobs", durable = %(durable)s, redeliver = false, maxsize = 0 }
shmgr.register("%(typeid)s", function() return jobs end)
"""
STORE_CLOSED = re.compile(r'store: closed after (\d+) commits carrying (\d+) changes \((\d+) commits failed\)')
SYNC_EVENTS = ('syscalls:sys_enter_fsync', 'syscalls:sys_enter_fdatasync')
PERF_ATTACH = 30  # seconds `perf record -p` may take to start counting (a loaded machine is slow)


def durable_config(parent, mode):
    """A fresh folder holding a config for mode (and, if durable, an empty data dir): (folder, config)."""
    cell = tempfile.mkdtemp(prefix='durable-%s-' % mode, dir=parent)
    if mode == 'memory':
        store = '-- no data_dir: nothing is durable'
    else:
        os.mkdir(os.path.join(cell, 'data'))
        store = 'data_dir = "data" -- fresh for this cell\ndurability = "%s"' % mode
    config = os.path.join(cell, 'shmgr.conf.lua')
    with open(config, 'w', encoding='utf-8') as f:
        f.write(DURABLE_CONFIG % {'store': store, 'durable': 'false' if mode == 'memory' else 'true',
                                  'typeid': DURABLE_TYPEID})
    return cell, config


class SyncCounter:
    """The fsync and fdatasync calls of one process between start() and stop(), counted from
    their tracepoints by `perf record -p` (`perf stat -p` counts none of them on some kernels;
    record does). perf can take a second or more to attach: it starts with its events off
    (-D -1) and turns them on and off when told on its control pipe, answering `ack` once it
    has, so that no sync of the measured run is missed. A sample per sync costs the traced
    process next to nothing beside the sync itself."""

    def __init__(self, ctx, pid):
        self.proc, self.error, self.ctl, self.ack = None, None, None, None
        perf = shutil.which('perf')
        if perf is None:
            self.error = 'perf not found (apt-get install linux-perf)'
            return
        self.perf = perf
        self.data = os.path.join(ctx.tmpdir, 'perf-%d.data' % pid)
        self.log = os.path.join(ctx.tmpdir, 'perf-%d.log' % pid)
        ctl_r, self.ctl = os.pipe()
        self.ack, ack_w = os.pipe()
        argv = [perf, 'record', '-q', '-D', '-1', '--control', 'fd:%d,%d' % (ctl_r, ack_w),
                '-o', self.data, '-p', str(pid)]
        for event in SYNC_EVENTS:
            argv += ['-e', event]
        try:
            with open(self.log, 'wb') as log:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             pass_fds=(ctl_r, ack_w))
        except OSError as e:
            self.error = 'cannot run perf: %s' % e
        finally:
            os.close(ctl_r)
            os.close(ack_w)

    def _tell(self, command):
        """Send perf a command and wait for its ack; False (with self.error) if none came."""
        try:
            os.write(self.ctl, command.encode() + b'\n')
            ready = select.select([self.ack], [], [], PERF_ATTACH)[0]
            if ready and os.read(self.ack, 64).startswith(b'ack'):
                return True
        except OSError:
            pass
        self.error = 'perf record did not %s its events (%s)' % (
            command, 'it exited: ' + one_line(tail(self.log, 3)) if self.proc.poll() is not None
            else 'no answer in %g s' % PERF_ATTACH)
        return False

    def start(self):
        if self.proc is not None and not self._tell('enable'):
            self._end()

    def _end(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.error = self.error or 'perf record did not stop'
        for fd in (self.ctl, self.ack):
            if fd is not None:
                os.close(fd)
        self.ctl = self.ack = None
        proc, self.proc = self.proc, None
        return proc

    def stop(self):
        """How many syncs the process made since start(), or None (self.error says why)."""
        if self.proc is None:
            return None
        self._tell('disable')
        proc = self._end()
        if self.error:
            return None
        said = tail(self.log, 5)
        if proc.returncode not in (0, -signal.SIGINT, 128 + signal.SIGINT) or 'lost' in said.lower():
            self.error = 'perf record: status %s: %s' % (proc.returncode, one_line(said))
            return None
        try:
            out = subprocess.run([self.perf, 'script', '-i', self.data, '-F', 'event'], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
                                 timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as e:
            self.error = 'perf script: %s' % e
            return None
        return sum(1 for line in out.splitlines() if line.strip().rstrip(':') in SYNC_EVENTS)


def store_closed(log_path):
    """(commits, changes, failed commits) from the line a durable shmgr logs at close, or None."""
    try:
        with open(log_path, encoding='utf-8', errors='replace') as f:
            found = STORE_CLOSED.findall(f.read())
    except OSError:
        return None
    return tuple(int(x) for x in found[-1]) if found else None


def idle_commits(ctx, mode):
    """The commits a fresh shmgr of mode makes with no load from start to stop (declaring the
    queue in the store): what the cells' counts hold besides the bench's calls."""
    cell, config = durable_config(ctx.opts.durable_dir or ctx.tmpdir, mode)
    server = start_server(ctx, 'shmgr', config=config)
    if server is None:
        return None
    server.stop()
    closed = store_closed(server.log)
    if closed is None:
        ctx.record(Result('durable %s: start and stop with no load' % mode, 'shmgr',
                          error='the server did not log "store: closed after N commits ..." at SIGTERM'))
        return None
    shutil.rmtree(cell, ignore_errors=True)
    return closed[0]


def store_figures(r, closed, idle, syncs, sync_error):
    """Add to r.data what the store did in a durable cell: its commits (from the line it logs
    at close, less the idle ones), calls per commit, commits/s and syncs/s. The bench answers
    calls after its window too (it finishes the operations in flight): the rates are the calls
    answered per second in the window times commits (or syncs) per call over the run."""
    calls = r.get('calls')
    calls_per_sec = 2 * r.get('ops_per_sec', 0)  # an op is a put and a get
    if closed is None:
        r.error = 'the server did not log "store: closed after N commits ..." at SIGTERM'
        return
    commits, changes, failed_commits = closed
    commits -= idle or 0
    r.data.update(commits=commits, idle_commits=idle, changes=changes, failed_commits=failed_commits,
                  syncs=syncs, syncs_error=sync_error)
    if failed_commits:
        r.error = '%d commits failed' % failed_commits
    if commits and calls:
        r.data['calls_per_commit'] = calls / commits
        r.data['commits_per_sec'] = calls_per_sec / (calls / commits)
    if syncs is not None and calls:
        r.data['syncs_per_sec'] = calls_per_sec * syncs / calls
        r.data['syncs_per_commit'] = syncs / commits if commits else None


def durable_cell(ctx, p, mode, conns, idle):
    """One cell on a fresh shmgr (a fresh store): -w queue --typeid get_jobs, then SIGTERM."""
    what = 'durable %s -w queue -c %d --typeid %s' % (mode, conns, DURABLE_TYPEID)
    cell, config = durable_config(ctx.opts.durable_dir or ctx.tmpdir, mode)
    server = start_server(ctx, 'shmgr', config=config)
    if server is None:
        return Result(what, 'shmgr', error='the server did not start (see Failures)')
    counter = SyncCounter(ctx, server.pid) if mode != 'memory' else None
    try:
        if counter is not None:
            counter.start()
        r = bench(ctx, 'shmgr', server, 'queue', conns,
                  ['-d', fmt_num(p['duration']), '--typeid', DURABLE_TYPEID], rate_timeout(p['duration']))
    finally:
        syncs = counter.stop() if counter is not None else None
        server.stop()  # SIGTERM: the store commits, logs its figures and closes
    r.what = what
    if mode != 'memory' and r.ok:
        store_figures(r, store_closed(server.log), idle.get(mode), syncs, counter.error)
        if not r.ok:
            ctx.record(r)
    if r.ok:
        shutil.rmtree(cell, ignore_errors=True)
    return r


def section_durable(ctx, p):
    """Each cell p['durable_rounds'] times, the modes in turn (a different one first in each
    round, so that none always runs on a warmer or quieter machine); the median round of each
    cell (by ops/s) stands for it, with the spread of its ops/s."""
    runs = {(m, c): [] for m in DURABLE_MODES for c in DURABLE_CONNS}
    rounds = p['durable_rounds']
    idle = {m: idle_commits(ctx, m) for m in DURABLE_MODES if m != 'memory'}
    for k in range(rounds):
        for i, conns in enumerate(DURABLE_CONNS):
            shift = (k + i) % len(DURABLE_MODES)
            for mode in DURABLE_MODES[shift:] + DURABLE_MODES[:shift]:
                r = durable_cell(ctx, p, mode, conns, idle)
                if r.ok:
                    say('durable [%d/%d] %-7s -c %-2d %9s ops/s %8s µs CPU/op%s' % (
                        k + 1, rounds, mode, conns, fmt_int(r.get('ops_per_sec')),
                        fmt_sig(cpu_per_op(r)[0]),
                        '' if mode == 'memory' else '  %s commits/s, %s calls/commit, %s fsyncs/s' % (
                            fmt_int(r.get('commits_per_sec')), fmt_sig(r.get('calls_per_commit')),
                            fmt_int(r.get('syncs_per_sec')))))
                runs[mode, conns].append(r)
    res = {}
    for (mode, conns), rs in runs.items():
        good = sorted((r for r in rs if r.ok), key=lambda r: r.get('ops_per_sec'))
        if not good:
            res[mode, conns] = rs[-1]
            continue
        r = good[(len(good) - 1) // 2]
        r.data['rounds_ops_per_sec'] = [x.get('ops_per_sec') for x in good]
        r.data['rounds'] = len(rs)
        # against the memory cell of the same round, minutes apart at most: a load that comes
        # and goes on the machine weighs on both alike
        ratios = sorted(x.get('ops_per_sec') / m.get('ops_per_sec') for x, m in zip(rs, runs['memory', conns])
                        if x.ok and m.ok and m.get('ops_per_sec'))
        if ratios:
            r.data['vs_memory_rounds'] = ratios
            r.data['vs_memory'] = (ratios[(len(ratios) - 1) // 2] + ratios[len(ratios) // 2]) / 2
        res[mode, conns] = r
    return {'cells': res, 'date': datetime.date.today().isoformat(), 'rounds': rounds,
            'duration': p['duration'], 'fs': filesystem_of(ctx.opts.durable_dir or ctx.tmpdir)}


def filesystem_of(path):
    """'ext4 on /dev/vda' for the mount holding path (from /proc/mounts), or None."""
    path = os.path.realpath(path)
    best = None
    try:
        with open('/proc/mounts') as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                mnt = mnt.replace('\\040', ' ')
                if (path == mnt or path.startswith(mnt.rstrip('/') + '/')) and (best is None or len(mnt) > len(best[1])):
                    best = (dev, mnt, fstype)
    except OSError:
        return None
    return '%s on %s' % (best[2], best[0]) if best else None


# --------------------------------------------------------------------------
# Operations: what keeping statistics costs, and shmgr-cli clients at 10,000 connections

NOSTATS = os.path.join(REPO, 'build', 'nostats', 'shmgr')  # make build/nostats/shmgr
CLI = os.path.join(REPO, 'shmgr-cli')
HOLD_CONNS = os.path.join(HERE, 'hold_conns.py')
# The three servers the queue workload compares: A the build that counts nothing per call, B the
# normal one, C the normal one serving GET /metrics and scraped once a second while measured.
OPS_SERVERS = ('nostats', 'stats', 'metrics')
OPS_LABEL = {'nostats': 'A: no statistics (build/nostats/shmgr)', 'stats': 'B: statistics, metrics off',
             'metrics': 'C: statistics, metrics on'}
OPS_SHORT = {'nostats': 'A', 'stats': 'B', 'metrics': 'C'}
OPS_WORKLOAD_CONNS = (1, 32)  # the queue workload at these connection counts (as in the rates section)
OPS_CONNECTIONS = 10000       # connections open while shmgr-cli clients is timed
OPS_HEADING = '## Operations: what the statistics cost, shmgr-cli at 10,000 connections'
COST_TARGET = 3.0             # %: the most the statistics may cost the queue workload's ops/s
CLI_TARGET_MS = 100.0         # shmgr-cli clients with OPS_CONNECTIONS open, median wall time
SCRAPE_PERIOD = 1.0           # seconds between scrapes of C's /metrics
OPS_CONFIG = """-- written by bench/run.py for the ops section (%(what)s)
log_level = "info"
%(settings)s
"""
# Times the server method through a stock client (under PYTHON): n calls of
# dispatch(conn, None, 'shmgr_clients', ()), each on a connection of its own as the managers' server
# methods are called (the first request of a connection is its only one), the connection made
# before the clock starts; then one more, read raw for its size.
TIME_CLIENTS = r"""
import json, os, sys, time
from multiprocessing.connection import Client
from multiprocessing.managers import dispatch
host, port = sys.argv[1].rsplit(':', 1)
address, key, n = (host, int(port)), os.environb[b'BENCH_AUTHKEY'], int(sys.argv[2])
ms = []
for _ in range(n):
    with Client(address, authkey=key) as conn:
        t = time.perf_counter()
        rows = dispatch(conn, None, 'shmgr_clients', ())
        ms.append((time.perf_counter() - t) * 1e3)
with Client(address, authkey=key) as conn:
    conn.send((None, 'shmgr_clients', (), {}))
    raw = conn.recv_bytes()
print(json.dumps({'ms': ms, 'rows': len(rows), 'bytes': len(raw)}))
"""


def ops_config(ctx, what, settings):
    """A config file in the run's folder: the defaults, no type scripts, plus settings."""
    path = os.path.join(ctx.tmpdir, 'ops-%s.conf.lua' % re.sub(r'\W+', '-', what))
    with open(path, 'w', encoding='utf-8') as f:
        f.write(OPS_CONFIG % {'what': what, 'settings': settings})
    return path


def load_text():
    """The load average over 1, 5 and 15 minutes, as uptime shows it."""
    return ', '.join('%.2f' % x for x in os.getloadavg())


class Scraper:
    """GET /metrics on addr every SCRAPE_PERIOD seconds (the first half a period in) on a thread
    of its own, as Prometheus would, from start() to stop(): counts the answers that were
    Prometheus text and the failures (the first failure's reason kept)."""

    def __init__(self, addr):
        self.url = 'http://%s/metrics' % addr
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through $http_proxy
        self.ok = self.failed = 0
        self.error = None
        self.size = None  # bytes of the last good answer
        self.ms = []      # how long each good scrape took
        self._stop = threading.Event()
        self._thread = None

    def scrape(self):
        start = time.perf_counter()
        try:
            with self.opener.open(self.url, timeout=2) as answer:
                body, status = answer.read(), answer.status
            if status != 200 or b'# TYPE ' not in body:
                raise ValueError('status %s, %d bytes, not Prometheus text: %r' % (status, len(body), body[:60]))
        except (OSError, ValueError, urllib.error.URLError) as e:
            self.failed += 1
            self.error = self.error or one_line('%s: %s' % (type(e).__name__, e), 200)
            return False
        self.ok += 1
        self.size = len(body)
        self.ms.append((time.perf_counter() - start) * 1e3)
        return True

    def _run(self):
        wait = SCRAPE_PERIOD / 2  # the first half a period in: a short run gets one too
        while not self._stop.wait(wait):
            self.scrape()
            wait = SCRAPE_PERIOD

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()


def ops_start(ctx, cfg, configs):
    """One of the servers A, B, C (a fresh process, kept for all the rounds), or None."""
    binary = NOSTATS if cfg == 'nostats' else SHMGR
    return start_server(ctx, 'shmgr', config=configs[cfg], binary=binary)


def ops_cost(ctx, p):
    """The queue workload against A, B and C in turn, p['ops_rounds'] rounds, each round in
    another order (A B C, B C A, C A B, ...) so that none always runs first or last."""
    metrics_port = free_port()
    configs = {'nostats': ops_config(ctx, 'A, no statistics', '-- the defaults'),
               'stats': ops_config(ctx, 'B, metrics off', '-- the defaults'),
               'metrics': ops_config(ctx, 'C, metrics on',
                                     'metrics_listen = "127.0.0.1:%d"' % metrics_port)}
    servers = {cfg: ops_start(ctx, cfg, configs) for cfg in OPS_SERVERS}
    metrics_addr = '127.0.0.1:%d' % metrics_port
    check = Scraper(metrics_addr)  # does C serve /metrics at all? one scrape before the rounds
    served = servers['metrics'] is not None and check.scrape()
    if not served:
        say('ops: C (%s) does not serve /metrics: %s' % (metrics_addr, check.error or 'it did not start'))
    runs = {(cfg, c): [] for cfg in OPS_SERVERS for c in OPS_WORKLOAD_CONNS}
    rounds, duration = p['ops_rounds'], p['duration']
    for k in range(rounds):
        order = OPS_SERVERS[k % 3:] + OPS_SERVERS[:k % 3]
        for conns in OPS_WORKLOAD_CONNS:
            for cfg in order:
                server = servers[cfg]
                if server is not None and not server.alive():
                    ctx.record(Result('ops %s server' % OPS_SHORT[cfg], 'shmgr', error='restarted: ' + server.death()))
                    server = servers[cfg] = ops_start(ctx, cfg, configs)
                scraper = Scraper(metrics_addr) if cfg == 'metrics' else None
                if scraper is not None:
                    scraper.start()
                try:
                    r = bench(ctx, 'shmgr', server, 'queue', conns, ['-d', fmt_num(duration)], rate_timeout(duration))
                finally:
                    if scraper is not None:
                        scraper.stop()
                r.what = 'ops %s -w queue -c %d' % (OPS_SHORT[cfg], conns)
                if scraper is not None:
                    r.data.update(scrapes=scraper.ok, scrape_failures=scraper.failed, scrape_error=scraper.error,
                                  scrape_bytes=scraper.size, scrape_ms=median(scraper.ms))
                runs[cfg, conns].append(r)
                if r.ok:
                    say('ops [%d/%d] %s -c %-2d %9s ops/s %8s µs CPU/op%s' % (
                        k + 1, rounds, OPS_SHORT[cfg], conns, fmt_int(r.get('ops_per_sec')),
                        fmt_sig(cpu_per_op(r)[0]), '' if scraper is None else
                        '  %d scrapes, %d failed' % (scraper.ok, scraper.failed)))
    for server in servers.values():
        if server is not None:
            server.stop()
    say('ops: instructions per op of A and B, per scrape of C, under callgrind ...')
    counted = ops_instructions(ctx, p, configs if served else dict(configs, metrics=None), metrics_addr)
    if counted.get('error'):
        say('ops: no instruction counts: %s' % counted['error'])
    return {'runs': runs, 'rounds': rounds, 'duration': duration, 'metrics_served': served,
            'metrics_error': check.error, 'metrics_bytes': check.size, 'instructions': counted,
            'callgrind_ops': p['callgrind_ops']}


# Queue ops in the two callgrind runs of A and B: the difference of their instruction counts over
# that of the ops is the server's instructions per op, start-up and shutdown left out.
CALLGRIND_OPS = (2000, 12000)
CALLGRIND_SCRAPES = 20  # scrapes of C's /metrics under callgrind, with no load


def callgrind_total(path):
    """The instructions a callgrind output file counts (its summary line), or None."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith(('summary:', 'totals:')):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def under_callgrind(ctx, cfg, configs, work):
    """Server cfg run under callgrind while work(server) runs (it returns an error or None), then
    stopped: (the instructions it ran, None) or (None, why not)."""
    out = os.path.join(ctx.tmpdir, 'callgrind-%s-%s.out' % (cfg, secrets.token_hex(4)))
    server = start_server(ctx, 'shmgr', config=configs[cfg], binary=NOSTATS if cfg == 'nostats' else SHMGR,
                          prefix=['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out])
    if server is None:
        return None, 'the server did not start under valgrind'
    try:
        error = work(server)
    finally:
        server.stop(60)
    total = callgrind_total(out)
    if error or total is None:
        return None, error or 'callgrind wrote no instruction count (%s)' % out
    return total, None


def ops_instructions(ctx, p, configs, metrics_addr):
    """What A and B run per queue op, and C per scrape of /metrics, counted by callgrind: the
    same figures whatever else the machine does."""
    if not shutil.which('valgrind'):
        return {'error': 'valgrind not found (apt-get install valgrind)'}
    res = {'error': None}
    n1, n2 = p['callgrind_ops']
    for cfg in ('nostats', 'stats'):
        totals = []
        for n in (n1, n2):
            def work(server, n=n):
                r = bench(ctx, 'shmgr', server, 'queue', 1, ['-n', str(n)], 600)
                r.what = 'ops %s under callgrind: -w queue -c 1 -n %d' % (OPS_SHORT[cfg], n)
                return None if r.ok else r.error
            total, error = under_callgrind(ctx, cfg, configs, work)
            if error:
                res['error'] = '%s: %s' % (OPS_SHORT[cfg], error)
                return res
            totals.append(total)
        res[cfg] = (totals[1] - totals[0]) / float(n2 - n1)
    if configs.get('metrics'):
        scraper = Scraper(metrics_addr)
        totals = []
        for k in (0, CALLGRIND_SCRAPES):
            def work(server, k=k):
                for _ in range(k):
                    if not scraper.scrape():
                        return 'a scrape of /metrics failed: %s' % scraper.error
                return None
            total, error = under_callgrind(ctx, 'metrics', configs, work)
            if error:
                res['error'] = 'C: %s' % error
                return res
            totals.append(total)
        res['scrape'] = (totals[1] - totals[0]) / float(CALLGRIND_SCRAPES)
        res['scrape_bytes'] = scraper.size
    return res


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def wait_line(proc, timeout):
    """The first line proc prints on stdout within timeout seconds ('' if none)."""
    deadline = time.monotonic() + timeout
    line = b''
    while not line.endswith(b'\n') and time.monotonic() < deadline:
        if not select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        line += chunk
    return line.decode('utf-8', 'replace')


def time_cli(ctx, server, args):
    """Run shmgr-cli ARGS once against server: (wall ms from start to exit, stdout, error or None)."""
    env = dict(os.environ, SHMGR_AUTHKEY=ctx.key)
    start = time.perf_counter()
    try:
        proc = subprocess.run([CLI, '-a', server.addr] + args, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return None, b'', 'shmgr-cli %s: %s' % (' '.join(args), e)
    ms = (time.perf_counter() - start) * 1e3
    if proc.returncode != 0:
        return ms, proc.stdout, 'shmgr-cli %s: exit status %d: %s' % (
            ' '.join(args), proc.returncode, one_line(proc.stderr.decode('utf-8', 'replace'), 200))
    return ms, proc.stdout, None


def spread(values):
    return {'median': median(values), 'max': max(values) if values else None, 'n': len(values)}


def ops_clients(ctx, p):
    """shmgr-cli clients (table and --json) with p['ops_conns'] authenticated idle connections
    open, a third of them a proxy's (accept_connection), held by bench/hold_conns.py; then the
    server method alone through a stock client, and the server's own time from its slowlog."""
    n, runs = p['ops_conns'], p['ops_cli_runs']
    res = {'connections': n, 'runs': runs, 'error': None}
    what = 'ops shmgr-cli clients with %s connections' % fmt_int(n)

    def failed_(error):
        res['error'] = error
        ctx.record(Result(what, 'shmgr', error=error))
        return res

    config = ops_config(ctx, 'clients', 'slowlog_threshold = 1 -- ms: every call to shmgr_clients shows')
    server = start_server(ctx, 'shmgr', config=config)
    if server is None:
        return failed_('the server did not start (see Failures)')
    holder = None
    try:
        res['load_before'] = load_text()
        say('ops: opening %s connections ...' % fmt_int(n))
        log = os.path.join(ctx.tmpdir, 'hold_conns.log')
        with open(log, 'wb') as errors:
            holder = subprocess.Popen([PYTHON, HOLD_CONNS, server.addr, str(n)], cwd=REPO, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=errors, env=dict(os.environ, BENCH_AUTHKEY=ctx.key))
        held = parse_json(wait_line(holder, 300)) or {}
        if not held.get('ok'):
            return failed_('bench/hold_conns.py: %s%s' % (held.get('error') or 'no answer in 300 s',
                                                          '; ' + one_line(tail(log, 3)) if tail(log, 3) else ''))
        res.update(opened=held['opened'], accepted=held['accepted'], open_seconds=held['seconds'])
        say('ops: %s open (%s as proxies) in %.1f s; timing shmgr-cli clients ...' % (
            fmt_int(held['opened']), fmt_int(held['accepted']), held['seconds']))
        times = {'table': [], 'json': [], 'start': []}
        sizes = {}
        commands = (('table', ['clients']), ('json', ['--json', 'clients']), ('start', ['--version']))
        for _ in range(runs):
            for kind, args in commands:
                ms, out, error = time_cli(ctx, server, args)
                if error:
                    return failed_(error)
                times[kind].append(ms)
                sizes[kind] = out
        res['table'] = dict(spread(times['table']), rows=max(0, len(sizes['table'].splitlines()) - 1),
                            bytes=len(sizes['table']), ms=times['table'])
        try:
            rows = len(json.loads(sizes['json'].decode('utf-8')))
        except ValueError as e:
            return failed_('shmgr-cli --json clients printed no JSON list: %s' % e)
        res['json'] = dict(spread(times['json']), rows=rows, bytes=len(sizes['json']), ms=times['json'])
        res['start'] = spread(times['start'])
        for kind, args in commands:
            say('ops: shmgr-cli %-16s %s ms' % (' '.join(args), ' '.join('%.0f' % x for x in times[kind])))
        data, error = run_json([PYTHON, '-c', TIME_CLIENTS, server.addr, str(runs)], 120,
                               env=dict(os.environ, BENCH_AUTHKEY=ctx.key))
        if error:
            return failed_('dispatch(conn, None, \'shmgr_clients\', ()): %s' % error)
        res['dispatch'] = dict(spread(data['ms']), rows=data['rows'], bytes=data['bytes'], ms=data['ms'])
        ms, out, error = time_cli(ctx, server, ['--json', 'slowlog'])
        if error:
            return failed_(error)
        entries = [e for e in json.loads(out.decode('utf-8')) if e.get('method') == 'shmgr_clients']
        calls = 3 * runs + 1  # table, --json and dispatch runs, and the one read for its size
        res['server'] = dict(spread([e['duration_ms'] for e in entries]), calls=calls,
                             ms=[e['duration_ms'] for e in entries])
        res['load_after'] = load_text()
        if res['table']['rows'] < n:
            return failed_('shmgr-cli clients showed %s rows, fewer than the %s connections open'
                           % (fmt_int(res['table']['rows']), fmt_int(n)))
        return res
    finally:
        if holder is not None:
            try:
                holder.stdin.close()
                holder.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                holder.kill()
                holder.wait()
        if not server.alive():
            failed_(server.death())
        server.stop()


def section_ops(ctx, p):
    """Issue 11's overhead figures: the statistics' cost to the queue workload (servers A, B,
    C), and shmgr-cli clients with 10,000 connections open."""
    res = {'date': datetime.date.today().isoformat(), 'load_before': load_text()}
    say('ops: the queue workload against A (no statistics), B (statistics), C (statistics, /metrics scraped) ...')
    res['cost'] = ops_cost(ctx, p)
    res['load_between'] = load_text()
    res['clients'] = ops_clients(ctx, p)
    res['load_after'] = load_text()
    return res


# --------------------------------------------------------------------------
# Shared memory: SharedValue and SharedArray through the proxy and the map, memory per object

SHARED_LATENCY = os.path.join(HERE, 'shared_latency.py')
SHARED_HEADING = '## Shared memory: SharedValue and SharedArray, through the proxy and the map'
SHARED_MAPPINGS_PER = 1000  # target (i): at most one mapping, and one descriptor, per this many objects


def proc_figures(pid):
    """What a process holds, from /proc: its RSS in KiB (VmRSS and its anonymous and shared-memory
    parts), how many of its mappings name /dev/shm, how many descriptors it has open."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in ('VmRSS', 'RssAnon', 'RssShmem'):
                out[key] = int(rest.split()[0])
    with open('/proc/%d/maps' % pid) as f:
        out['shm_maps'] = sum(1 for line in f if '/dev/shm/' in line)
    out['fds'] = count_fds(pid)
    return out


def settled_figures(pid, timeout=5.0):
    """proc_figures once the descriptors stop changing: the start-up check's connection (and,
    after, the last create's) may not be closed on the server's side yet, nor CPython's
    thread for it gone."""
    last = proc_figures(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = proc_figures(pid)
        if now['fds'] == last['fds']:
            return now
        last = now
    return last


def shared_memory_info(ctx, server):
    """shmgr_info's 'shared_memory' dict (segments, bytes, blocks, block_bytes), or None."""
    try:
        with Client(server.address, authkey=ctx.key.encode()) as conn:
            conn.send((None, 'shmgr_info', (), {}))
            kind, info = conn.recv()
        return info.get('shared_memory') if kind == '#RETURN' else None
    except (OSError, EOFError, AttributeError):
        return None


def shared_latency(ctx, kind, n):
    """bench/shared_latency.py latency against a fresh server of its own, over TCP."""
    what = 'shared latency (proxy and map, n %d)' % n
    server = start_server(ctx, kind)
    if server is None:
        return ctx.record(Result(what, kind, error='the server did not start'))
    try:
        data, error = run_json([PYTHON, SHARED_LATENCY, 'latency', server.addr, ctx.key, kind, str(n)], 300)
        if error is None and not (data.get('ops') or {}).get('value_get_proxy'):
            error = 'no value_get_proxy in the JSON'
        if not server.alive():
            error = (error + '; ' if error else '') + server.death()
        return ctx.record(Result(what, kind, data, error))
    finally:
        server.stop()


def shared_objects(ctx, kind, n):
    """n SharedValue('q', 0) (CPython: Value('q', 0)) made on a fresh server over a Unix socket
    (no Nagle wait per fresh connection on CPython's), /proc and the shared-memory figures read
    before and after."""
    what = 'shared objects: %s values' % fmt_int(n)
    server = start_server(ctx, kind, 'unix')
    if server is None:
        return ctx.record(Result(what, kind, error='the server did not start'))
    try:
        before = settled_figures(server.pid)
        shm_before = shared_memory_info(ctx, server) if kind == 'shmgr' else None
        data, error = run_json([PYTHON, SHARED_LATENCY, 'objects', server.addr, ctx.key, kind, str(n)], 900)
        if error is None and data.get('objects', 0) < n:
            error = 'the server holds %s objects, not %s' % (data.get('objects'), fmt_int(n))
        if server.alive():
            data = dict(data or {}, before=before, after=settled_figures(server.pid),
                        shm_before=shm_before,
                        shm_after=shared_memory_info(ctx, server) if kind == 'shmgr' else None)
        else:
            error = (error + '; ' if error else '') + server.death()
        return ctx.record(Result(what, kind, data, error))
    finally:
        server.stop()


def section_shared(ctx, p):
    """Issue 12's figures: a read and a write of a SharedValue and of a SharedArray element
    through the proxy and through the map, beside CPython's Value and Array proxies; and what
    each object costs the server, in RSS, shared memory, mappings and descriptors."""
    res = {'date': datetime.date.today().isoformat(), 'load_before': load_text(), 'n': p['shared_n'],
           'latency': {}, 'objects': {}}
    for kind in ('shmgr', 'cpython'):
        say('shared: %s, proxy (and map) latency, %s ops each ...' % (LABEL[kind], fmt_int(p['shared_n'])))
        res['latency'][kind] = shared_latency(ctx, kind, p['shared_n'])
    for kind in ('shmgr', 'cpython'):
        n = p['shared_objects'][kind]
        say('shared: %s, %s values ...' % (LABEL[kind], fmt_int(n)))
        res['objects'][kind] = shared_objects(ctx, kind, n)
    res['load_after'] = load_text()
    return res


# --------------------------------------------------------------------------
# From Python: shmgr.Manager() against multiprocessing.Manager()

PYTHON_START = os.path.join(HERE, 'python_start.py')
WORDCOUNT = os.path.join(REPO, 'tests', 'programs', 'wordcount.py')
PYTHON_HEADING = '## From Python: shmgr.Manager() against multiprocessing.Manager()'


def wordcount_run(ctx, kind, path, words, method):
    """One run of the word-count program (its shmgr or its multiprocessing copy): wall seconds."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'python'), SHMGR=os.path.join(REPO, 'shmgr'))
    t0 = time.monotonic()
    data, error = run_json([PYTHON, path, '--start-method', method, '--words', str(words)], 600, env)
    wall = time.monotonic() - t0
    if error is None and not (data or {}).get('total') == words:
        error = 'counted %s words, not %s' % ((data or {}).get('total'), fmt_int(words))
    return wall, error


def section_python(ctx, p):
    """Issue 13's figures: Manager() to the first answered call, shutdown(), and the word-count
    program's wall time, on shmgr and on CPython's own manager server."""
    res = {'date': datetime.date.today().isoformat(), 'load_before': load_text(), 'starts': {}, 'wordcount': {}}
    for kind in ('shmgr', 'cpython'):
        say('python: %s, %d managers started and shut down ...' % (LABEL[kind], p['python_starts']))
        data, error = run_json([PYTHON, PYTHON_START, kind, str(p['python_starts'])], 300,
                               dict(os.environ, SHMGR=os.path.join(REPO, 'shmgr')))
        res['starts'][kind] = ctx.record(Result('Manager() start and shutdown', kind, data, error))
    with tempfile.TemporaryDirectory(prefix='shmgr-bench-') as tmp:
        copy = os.path.join(tmp, 'wordcount_mp.py')  # the same program on multiprocessing.Manager()
        with open(WORDCOUNT, encoding='utf-8') as f:
            text = f.read()
        with open(copy, 'w', encoding='utf-8') as f:
            f.write(text.replace('from shmgr import Manager', 'from multiprocessing import Manager'))
        for kind, path in (('shmgr', WORDCOUNT), ('cpython', copy)):
            say('python: word count on %s, %s words, %d runs ...' % (LABEL[kind], fmt_int(p['python_words']),
                                                                   p['python_runs']))
            walls, errors = [], []
            for _ in range(p['python_runs']):
                wall, error = wordcount_run(ctx, kind, path, p['python_words'], 'fork')
                (errors if error else walls).append(error or wall)
            data = {'walls': walls, 'median_s': median(walls) if walls else None, 'words': p['python_words']}
            res['wordcount'][kind] = ctx.record(Result('word count', kind, data, errors[0] if errors else None))
    res['load_after'] = load_text()
    return res


# --------------------------------------------------------------------------
# Big values: a 50 MiB value through a queue, and what a stored byte costs the server

BIG_VALUES = os.path.join(HERE, 'big_values.py')
BIG_HEADING = '## Big values: a 50 MiB put and get'
BIG_SIZE = 50 * 1024 * 1024
BIG_TRANSPORTS = (('tcp', 'TCP 127.0.0.1'), ('unix', 'Unix socket'))
BIG_SPEEDUP = 2.0   # target (j): CPython's put+get time over shmgr's, at least
BIG_PER_BYTE = 1.05  # target (j): server RSS per stored byte, at most


def big_run(ctx, kind, transport, what, args, timeout):
    """bench/big_values.py against a fresh server of its own: a Result (recorded if it failed),
    with whatever the script measured before a failure."""
    server = start_server(ctx, kind, transport)
    if server is None:
        return ctx.record(Result(what, kind, error='the server did not start'))
    try:
        argv = [PYTHON, BIG_VALUES, args[0], server.addr, ctx.key] + [
            str(server.pid) if a == 'PID' else str(a) for a in args[1:]]
        data, error = run_json(argv, timeout)
        if not server.alive():
            error = (error + '; ' if error else '') + server.death()
        elif error:
            error += server.log_note()
        return ctx.record(Result(what, kind, data, error))
    finally:
        server.stop()


def section_big(ctx, p):
    """Issue 14's figures: a 50 MiB bytes value put into a queue and got back by a stock client,
    over TCP and a Unix socket, on shmgr and on CPython's server; and the server's RSS per byte
    of big values it holds."""
    rounds, k = p['big_rounds'], p['big_values']
    res = {'date': datetime.date.today().isoformat(), 'load_before': load_text(), 'size': BIG_SIZE,
           'rounds': rounds, 'k': k, 'roundtrip': {}, 'memory': {}}
    for i, (transport, name) in enumerate(BIG_TRANSPORTS):
        # a different server first on each transport, so that neither always runs on a warmer machine
        for kind in (KINDS if i % 2 else tuple(reversed(KINDS))):
            say('big: %s over %s, %d rounds of a put and a get of %s ...' % (LABEL[kind], name, rounds,
                                                                               mib_text(BIG_SIZE)))
            res['roundtrip'][transport, kind] = big_run(
                ctx, kind, transport, 'big values: put and get of %s (%s)' % (mib_text(BIG_SIZE), transport),
                ['roundtrip', rounds, BIG_SIZE, 'PID'], 60 + 30 * rounds)
    for kind in ('shmgr', 'cpython'):
        say('big: %s, %d values of %s kept in a list ...' % (LABEL[kind], k, mib_text(BIG_SIZE)))
        res['memory'][kind] = big_run(
            ctx, kind, 'tcp', 'big values: %d values of %s kept' % (k, mib_text(BIG_SIZE)),
            ['memory', 'PID', k, BIG_SIZE], 60 + 30 * k)
    res['load_after'] = load_text()
    return res


# --------------------------------------------------------------------------
# Formatting

def fmt_num(v):
    return ('%g' % v)


def fmt_int(v):
    return '—' if v is None else '{:,.0f}'.format(v)


def fmt_sig(v):
    """Three significant digits, thousands separators for large values."""
    if v is None:
        return '—'
    if v >= 100:
        return '{:,.0f}'.format(v)
    if v >= 10:
        return '%.1f' % v
    if v >= 1:
        return '%.2f' % v
    return '%.3g' % v


def cpu_per_op(r):
    """(server CPU µs per op, is_upper_bound).  CPU time is counted in clock
    ticks: a window in which the server used none gives a bound, not 0."""
    if not r.ok:
        return None, False
    ops = r.get('ops')
    if r.get('server_cpu_us') == 0 and ops:
        return 1e6 / CLK_TCK / ops, True
    return r.get('server_cpu_us_per_op'), False


COARSE_TICKS = 50  # below this many clock ticks of server CPU, a figure is marked as coarse


def coarse(r):
    """Whether r's CPU figure rests on few clock ticks (each 1/CLK_TCK s), so is only roughly known."""
    cpu = r.get('server_cpu_us') if r.ok else None
    return cpu is not None and cpu * CLK_TCK / 1e6 < COARSE_TICKS


def cpu_text(r):
    value, bound = cpu_per_op(r)
    return ('< ' if bound else '') + fmt_sig(value) + (' †' if coarse(r) else '')


def failed(r):
    """A table cell for a failed measurement: short; the Failures section has the whole reason."""
    return 'failed: ' + one_line(r.error, 90)


def ratio_text(cpy, shm):
    """shmgr/CPython CPU per op of two Results as `1/14.2` (`1.35` when shmgr is the costlier)."""
    (c, _), (s, s_bound) = cpu_per_op(cpy), cpu_per_op(shm)
    return ratio_str(c, s, s_bound)


def ratio_str(c, s, s_bound=False):
    if c is None or s is None or s <= 0 or c <= 0:
        return '—'
    if c >= s:
        return '1/%s%.1f' % ('>' if s_bound else '', c / s)
    return '%.2f' % (s / c)


def latency_text(r):
    return '/'.join(fmt_sig(r.get(k)) for k in ('p50_us', 'p99_us', 'p999_us'))


def table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    out += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return out


def rate_rows(rates):
    rows = []
    for w in RATE_WORKLOADS:
        for c in RATE_CONNS:
            cpy, shm = rates[w, c, 'cpython'], rates[w, c, 'shmgr']
            row = [w, c]
            row += [cpu_text(r) if r.ok else failed(r) for r in (cpy, shm)]
            row.append(ratio_text(cpy, shm))
            row += [fmt_sig(r.get('server_user_us_per_op')) if r.ok else '—' for r in (cpy, shm)]
            row += [fmt_int(r.get('ops_per_sec')) if r.ok else '—' for r in (cpy, shm)]
            row += [latency_text(r) if r.ok else '—' for r in (cpy, shm)]
            rows.append(row)
    return rows


def kib_text(r, before, after):
    return 'RSS %s → %s KiB' % (fmt_int(r.get(before)), fmt_int(r.get(after)))


def memory_rows(p, mem):
    rows = []
    for n in p['idle']:
        cells = []
        for kind in ('shmgr', 'cpython'):
            r = mem.get(('idle', n, kind))
            if r is None:
                cells.append('not run' + (' (--quick)' if kind == 'cpython' else ''))
            elif not r.ok:
                cells.append(failed(r))
            else:
                cells.append('**%s B**/conn (%s, %s/%s served)' % (
                    fmt_int(r.get('bytes_per_conn')), kib_text(r, 'rss_before_kb', 'rss_after_kb'),
                    fmt_int(r.get('served')), fmt_int(n)))
        rows.append(['idle connections: %s' % fmt_int(n)] + cells)
    cells = []
    for kind in ('shmgr', 'cpython'):
        r = mem['objects', kind]
        cells.append(failed(r) if not r.ok else '**%s B**/object (%s dicts; %s)' % (
            fmt_int(r.get('bytes_per_object')), fmt_int(r.get('objects')),
            kib_text(r, 'rss_before_kb', 'rss_after_kb')))
    rows.append(['shared objects: shmgr %s dicts, CPython %s' % (
        fmt_int(p['objects']['shmgr']), fmt_int(p['objects']['cpython']))] + cells)
    cells = []
    for kind in ('shmgr', 'cpython'):
        r = mem['fill', kind]
        cells.append(failed(r) if not r.ok else '**%s B**/item (qsize %s; %s)' % (
            fmt_sig(r.get('bytes_per_item')), fmt_int(r.get('qsize')),
            kib_text(r, 'rss_before_kb', 'rss_after_kb')))
    rows.append(['queued items: %s small ints, -c 8' % fmt_int(p['fill'])] + cells)
    return rows


def in_order(r):
    """(waiters woken in arrival order, whether all were); the bench gives a count (or a bool)."""
    value, waiters = r.data.get('in_order'), r.get('waiters')
    if isinstance(value, bool):
        return (waiters if value else None), value
    if isinstance(value, int):
        return value, value == waiters
    return None, None


def in_order_text(r):
    count, every = in_order(r)
    if every is None:
        return '—'
    return 'all' if every else ('%s of %s' % (fmt_int(count), fmt_int(r.get('waiters')))
                                if count is not None else 'no')


def park_rows(park):
    rows = []
    for kind in ('shmgr', 'cpython'):
        r = park[kind]
        if r.data:
            rows.append([LABEL[kind], fmt_int(r.get('waiters')), fmt_int(r.get('woken')),
                         in_order_text(r),
                         '%s s' % fmt_sig(r.get('wake_seconds')) if r.get('wake_seconds') is not None
                         else '—', 'ok' if r.ok else failed(r)])
        else:
            rows.append([LABEL[kind], '—', '—', '—', '—', failed(r)])
    return rows


def nagle_wait(proxy):
    """Whether CPython's TCP figure shows the ~40 ms per connection that its Unix one does not."""
    tcp, unix = proxy['tcp', 'cpython'], proxy['unix', 'cpython']
    return (tcp.ok and unix.ok and tcp.get('median_ms') >= 20
            and tcp.get('median_ms') >= 10 * unix.get('median_ms'))


def proxy_cell(r):
    if not r.ok:
        return failed(r)
    return '**%s** (p90 %s, min %s)' % tuple(fmt_sig(r.get(k)) for k in ('median_ms', 'p90_ms', 'min_ms'))


# --------------------------------------------------------------------------
# Targets

def within(value, limit):
    return value is not None and value <= limit


def verdict(met, shmgr_measured=True, comparable=True, full_size=True):
    """met / MISSED / not measured.  A shmgr figure that is missing is a miss; a
    CPython one missing, or a --quick run's smaller counts, leave it open."""
    if not shmgr_measured:
        return 'MISSED'
    if not comparable or (met and not full_size):
        return 'not measured'
    return 'met' if met else 'MISSED'


def target_a(rates):
    """(a) at most 1/10 of CPython's CPU per op everywhere, and not rising with connections."""
    ratios, missing, shm_ok, figs = [], [], True, []
    for w in RATE_WORKLOADS:
        for c in RATE_CONNS:
            (cv, _), (sv, _) = cpu_per_op(rates[w, c, 'cpython']), cpu_per_op(rates[w, c, 'shmgr'])
            shm_ok = shm_ok and sv is not None
            if cv is None or sv is None or sv <= 0:
                missing.append('%s -c %d' % (w, c))
            else:
                ratios.append((cv / sv, cv, sv, w, c))
    growth = []
    for w in RATE_WORKLOADS:
        lo, hi = cpu_per_op(rates[w, 1, 'shmgr'])[0], cpu_per_op(rates[w, 256, 'shmgr'])[0]
        growth.append((w, hi / lo if lo and hi is not None else None))
    if ratios:
        _, cv, sv, w, c = min(ratios)
        figs.append('worst %s (%s -c %d)' % (ratio_str(cv, sv), w, c))
    if missing:
        figs.append('not measured: ' + ', '.join(missing))
    figs.append('shmgr CPU/op at 256 connections ÷ at 1: ' + ', '.join(
        '%s %s' % (w, '—' if g is None else '%.2f' % g) for w, g in growth))
    met = (not missing and all(r >= 10 for r, _, _, _, _ in ratios)
           and all(g is not None and g <= 1.2 for _, g in growth))
    return ('(a) shmgr CPU/op ≤ 1/10 of CPython\'s for every rate workload at 1, 32, 256 connections, '
            'and not rising with connections (at 256 ≤ 1.2 × at 1)',
            verdict(met, shm_ok, not missing), '; '.join(figs))


def target_b(rates):
    """(b) create at most 1/20 of CPython's CPU per op at each connection count."""
    figs, met, shm_ok, comparable = [], True, True, True
    for c in RATE_CONNS:
        (cv, _), (sv, _) = cpu_per_op(rates['create', c, 'cpython']), cpu_per_op(rates['create', c, 'shmgr'])
        shm_ok = shm_ok and sv is not None
        if cv is None or sv is None or sv <= 0:
            figs.append('-c %d not measured' % c)
            comparable = False
        else:
            figs.append('-c %d: %s' % (c, ratio_str(cv, sv)))
            met = met and cv / sv >= 20
    return ('(b) create ≤ 1/20 of CPython\'s CPU/op at each connection count',
            verdict(met, shm_ok, comparable), ', '.join(figs))


def target_c(proxy):
    """(c) a stock client's proxy create+drop over TCP within 2 ms (median) on shmgr."""
    r = proxy['tcp', 'shmgr']
    return ('(c) stock proxy create+drop over TCP ≤ 2 ms median on shmgr',
            verdict(r.ok and within(r.get('median_ms'), 2.0), r.ok),
            ('median %s ms' % fmt_sig(r.get('median_ms'))) if r.ok else failed(r))


def target_d(p, many, park):
    """(d) 10,000 connections without an error; 10,000 parked waiters all woken in order."""
    mr, _ = many
    pr, n_park = park['shmgr'], p['park']['shmgr']
    met = (mr.ok and mr.get('errors') == 0 and pr.ok and pr.get('woken') == n_park
           and in_order(pr)[1] is True)
    figs = ['%s connections: %s' % (fmt_int(MANY_CONNS), '%s errors' % fmt_int(mr.get('errors'))
                                    if mr.ok else failed(mr)),
            '%s parked waiters: %s' % (fmt_int(n_park), '%s woken, in order: %s' % (
                fmt_int(pr.get('woken')), in_order_text(pr)) if pr.ok else failed(pr))]
    if n_park < 10000:
        figs.append('--quick: %s waiters, not 10,000' % fmt_int(n_park))
    return ('(d) 10,000 connections with 0 errors; 10,000 parked waiters all woken in order',
            verdict(met, mr.ok and pr.ok, full_size=n_park >= 10000), '; '.join(figs))


def target_e(p, mem):
    """(e) at most 16 KiB per idle connection at 10,000 connections, 100 bytes per queued item."""
    n_idle = max(p['idle'])
    ri, rf = mem['idle', n_idle, 'shmgr'], mem['fill', 'shmgr']
    met = (ri.ok and within(ri.get('bytes_per_conn'), 16384)
           and rf.ok and within(rf.get('bytes_per_item'), 100))
    figs = [('%s B per idle connection at %s' % (fmt_int(ri.get('bytes_per_conn')), fmt_int(n_idle)))
            if ri.ok else failed(ri),
            ('%s B per queued item (%s items)' % (fmt_sig(rf.get('bytes_per_item')), fmt_int(p['fill'])))
            if rf.ok else failed(rf)]
    if n_idle < 10000:
        figs.append('--quick: %s connections, not 10,000' % fmt_int(n_idle))
    return ('(e) ≤ 16 KiB per idle connection at 10,000 connections, ≤ 100 bytes per queued item',
            verdict(met, ri.ok and rf.ok, full_size=n_idle >= 10000), '; '.join(figs))


def target_f(durable):
    """(f) a durable queue with durability "process" at 32 connections: at least half the
    in-memory queue's ops/s; for "power", its figures (reported, no bound)."""
    cells = durable['cells']
    mem, proc, power = cells['memory', 32], cells['process', 32], cells['power', 32]
    figs = []
    if proc.ok and mem.ok:
        ratio = proc.get('vs_memory')
        rounds = proc.get('vs_memory_rounds') or []
        figs.append('"process" -c 32: %s ops/s, %s × the in-memory queue\'s (%s ops/s%s), %s commits/s, '
                    '%s calls/commit' % (
                        fmt_int(proc.get('ops_per_sec')), fmt_ratio(ratio), fmt_int(mem.get('ops_per_sec')),
                        '; round by round %s' % ', '.join(fmt_ratio(x) for x in rounds) if len(rounds) > 1 else '',
                        fmt_int(proc.get('commits_per_sec')), fmt_sig(proc.get('calls_per_commit'))))
        met = ratio is not None and ratio >= 0.5
    else:
        figs.append('"process" -c 32: %s' % (failed(proc) if not proc.ok else 'memory -c 32 ' + failed(mem)))
        ratio, met = None, False
    figs.append('"power" -c 32: ' + (failed(power) if not power.ok else
                                    '%s ops/s, %s commits/s, %s calls/commit, %s fsyncs/s' % (
                                        fmt_int(power.get('ops_per_sec')), fmt_int(power.get('commits_per_sec')),
                                        fmt_sig(power.get('calls_per_commit')), syncs_text(power))))
    return ('(f) durable queue, durability "process", 32 connections: ≥ 1/2 of the in-memory queue\'s ops/s; '
            '"power": ops/s, commits/s, calls per commit',
            verdict(met, proc.ok and mem.ok, full_size=durable['rounds'] >= 3), '; '.join(figs))


def pct(v):
    if v is None:
        return '—'
    return '0.0 %' if abs(v) < 0.05 else '%+.1f %%' % v


def ops_cells(ops):
    """Per (server, conns): the figures of the ops table and the target: medians and spreads of
    the rounds' ops/s, costs against A (of the medians, and paired round by round)."""
    runs = ops['cost']['runs']
    out = {}
    for conns in OPS_WORKLOAD_CONNS:
        base = runs.get(('nostats', conns), [])
        a = median([r.get('ops_per_sec') for r in base if r.ok])
        for cfg in OPS_SERVERS:
            rs = runs.get((cfg, conns), [])
            good = [r for r in rs if r.ok]
            ops_s = [r.get('ops_per_sec') for r in good]
            m = median(ops_s)
            cell = {'rounds': len(rs), 'good': len(good), 'median': m,
                    'min': min(ops_s) if ops_s else None, 'max': max(ops_s) if ops_s else None,
                    'cpu': median([cpu_per_op(r)[0] for r in good]),
                    'user': median([r.get('server_user_us_per_op') for r in good]),
                    'scrapes': sum(r.get('scrapes', 0) for r in rs),
                    'scrape_failures': sum(r.get('scrape_failures', 0) for r in rs),
                    'scrape_error': next((r.get('scrape_error') for r in rs if r.get('scrape_error')), None),
                    'errors': [r for r in rs if not r.ok]}
            cell['spread'] = 100.0 * (cell['max'] - cell['min']) / m if m else None
            cell['cost'] = 100.0 * (a - m) / a if a and m is not None and cfg != 'nostats' else None
            paired = [100.0 * (1 - x.get('ops_per_sec') / y.get('ops_per_sec')) for x, y in zip(rs, base)
                      if x.ok and y.ok and y.get('ops_per_sec')]
            cell['paired'] = median(paired) if cfg != 'nostats' else None
            cell['paired_range'] = (min(paired), max(paired)) if paired and cfg != 'nostats' else None
            out[cfg, conns] = cell
    return out


def instruction_figures(ops, cells):
    """(instructions per op of A, of B, B's extra in %, a scrape's instructions, a scrape's share of
    what B runs in a second at its -c 32 median) from callgrind, or None."""
    ins = ops['cost'].get('instructions') or {}
    a, b = ins.get('nostats'), ins.get('stats')
    if not a or not b:
        return None
    scrape, share = ins.get('scrape'), None
    busy = cells['stats', max(OPS_WORKLOAD_CONNS)]
    if scrape and busy['median']:
        share = 100.0 * scrape / (busy['median'] * b)
    own = busy['user'] / busy['cpu'] if busy['user'] and busy['cpu'] else None  # its own code's part of its CPU
    return a, b, 100.0 * (b - a) / a, scrape, share, own


def instructions_text(ops, cells):
    ins = ops['cost'].get('instructions') or {}
    figs = instruction_figures(ops, cells)
    if figs is None:
        return ['No instruction counts: %s.' % (ins.get('error') or 'not measured'), ''] if ins else []
    a, b, extra, scrape, share, own = figs
    n1, n2 = ops['cost'].get('callgrind_ops', CALLGRIND_OPS)
    text = ('Counted by callgrind, which the host\'s noise does not touch (`valgrind --tool=callgrind`, '
            '`-w queue -c 1 -n %d` and `-n %d`, the difference): A runs **%s** instructions per op in its own '
            'code and libraries, B **%s**: the statistics add %s (%s)%s.' % (
                n1, n2, fmt_int(a), fmt_int(b), fmt_int(b - a), pct(extra),
                '' if own is None else '; that code is %.0f %% of B\'s CPU per op at -c %d (the rest is the '
                'kernel\'s), so they cost it about %.1f %%' % (100 * own, max(OPS_WORKLOAD_CONNS), extra * own)))
    if scrape:
        text += (' A scrape of C\'s `/metrics` runs %s instructions (%d scrapes with no load, against none; '
                 'a page of %s): once a second, %s of what B runs in a second at its -c %d median.' % (
                     fmt_int(scrape), CALLGRIND_SCRAPES, size_text(ins.get('scrape_bytes')),
                     '%.2f %%' % share if share is not None else '—', max(OPS_WORKLOAD_CONNS)))
    return [text, '']


def ms_text(v):
    return '—' if v is None else ('%.0f' % v if v >= 100 else '%.1f' % v)


def size_text(n):
    if n is None:
        return '—'
    return '%s KB' % fmt_int(n / 1000.0) if n < 10 ** 6 else '%.2f MB' % (n / 1e6)


def ops_report(ops):
    cost, cl = ops['cost'], ops['clients']
    cells = ops_cells(ops)
    L = [OPS_HEADING, '']
    L += ['**The statistics\' cost.** `./shmgr-bench -w queue` (the queue workload of the first table) against '
          'three servers, each started once and kept for all the rounds: **A** `build/nostats/shmgr` (built with '
          '`-DSHMGR_NO_STATS`: it reads no clock and counts nothing per call), **B** `./shmgr` (per call: two '
          'clock reads, a counter per typeid and method, a histogram of durations), **C** `./shmgr` with '
          '`metrics_listen` set and its `GET /metrics` fetched once a second during each of its runs (as '
          'Prometheus would, only more often). Each run %s s, %d rounds, the servers in another order each '
          'round (A B C, B C A, C A B, ...). *ops/s*: the median of the rounds; *range*: the lowest and '
          'highest; *spread*: (highest − lowest) / median; *cost*: (A − X) / A of the medians; *paired*: '
          'the median over the rounds of 1 − X/A within a round (runs seconds apart, so that a load which '
          'comes and goes weighs on both), with its lowest and highest. Measured on %s; load average (1, 5, '
          '15 min) %s before, %s after; `make bench BENCH_ONLY=ops` measures this section again.'
          % (fmt_num(cost['duration']), cost['rounds'], ops['date'], ops.get('load_before', '?'),
             ops.get('load_between', '?')), '']
    rows = []
    for conns in OPS_WORKLOAD_CONNS:
        for cfg in OPS_SERVERS:
            c = cells[cfg, conns]
            if not c['good']:
                rows.append([conns, OPS_LABEL[cfg], failed(c['errors'][-1]) if c['errors'] else 'not run']
                            + ['—'] * 6)
                continue
            pr = c['paired_range']
            rows.append([conns, OPS_LABEL[cfg], fmt_int(c['median']),
                         '%s–%s' % (fmt_int(c['min']), fmt_int(c['max'])),
                         '%.1f %%' % c['spread'] if c['spread'] is not None else '—',
                         '—' if cfg == 'nostats' else pct(c['cost']),
                         '—' if cfg == 'nostats' or c['paired'] is None else '%s (%s … %s)' % (
                             pct(c['paired']), pct(pr[0]), pct(pr[1])),
                         '%s (user %s)' % (fmt_sig(c['cpu']), fmt_sig(c['user'])),
                         '—' if cfg != 'metrics' else '%d ok, %d failed' % (c['scrapes'], c['scrape_failures'])])
    L += table(['conns', 'server', 'ops/s', 'range ops/s', 'spread', 'cost', 'paired cost (range)',
                'µs CPU/op', 'scrapes of /metrics'], rows)
    L += ['']
    L += instructions_text(ops, cells)
    errors = [c['scrape_error'] for c in cells.values() if c['scrape_error']]
    if cost.get('metrics_served'):
        L += ['C\'s `/metrics` answered before the rounds with %s of Prometheus text%s.' % (
            size_text(cost.get('metrics_bytes')),
            '; during them some scrapes failed: %s' % errors[0] if errors else ''), '']
    else:
        L += ['**C\'s `/metrics` did not answer** (%s): C ran with `metrics_listen` set, but nothing was served '
              'on it, so C measured the statistics without metrics, and its scrapes all failed.'
              % (cost.get('metrics_error') or (errors[0] if errors else 'the server did not start')), '']

    n = cl.get('connections', OPS_CONNECTIONS)
    L += ['**`shmgr-cli clients` with %s connections.** %s authenticated connections held idle by '
          '`bench/hold_conns.py` (stock `multiprocessing.connection.Client`s in a process of their own; every '
          'third one called `accept_connection`, as a proxy does), then %d times each: `shmgr-cli clients` '
          '(the table) and `shmgr-cli --json clients`, timed from the start of the process to its exit (its '
          'output read through a pipe); `shmgr-cli --version`, for what starting a process costs here; the '
          'server method through a stock client, `multiprocessing.managers.dispatch(conn, None, '
          '\'shmgr_clients\', ())` under Debian\'s python3 (the call and the decoding of its answer); and '
          'the server\'s own time for each call, from its slowlog (`slowlog_threshold = 1`). Load average '
          '%s before, %s after.' % (fmt_int(n), fmt_int(n), cl.get('runs', 0), cl.get('load_before', '?'),
                                      cl.get('load_after', '?')), '']
    if cl.get('error') and not cl.get('table'):
        L += ['Not measured: %s' % one_line(cl['error'], 300), '']
        return L

    def row(name, key, rows=True, output=None):
        d = cl.get(key)
        if not d:
            return [name, '—', '—', '—', '—', '—']
        return [name, ms_text(d['median']), ms_text(d['max']), d['n'],
                fmt_int(d.get('rows')) if rows else '—', output or '—']

    server = cl.get('server') or {}
    L += table(['measurement', 'median ms', 'max ms', 'runs', 'rows', 'output'], [
        row('`shmgr-cli clients` (wall)', 'table', output='%s of text' % size_text((cl.get('table') or {}).get('bytes'))),
        row('`shmgr-cli --json clients` (wall)', 'json', output='%s of JSON' % size_text((cl.get('json') or {}).get('bytes'))),
        row('`shmgr-cli --version` (wall: starting a process)', 'start', rows=False),
        row('Python `dispatch(conn, None, \'shmgr_clients\', ())`', 'dispatch',
            output='a pickle of %s' % size_text((cl.get('dispatch') or {}).get('bytes'))),
        row('the server: `Server.shmgr_clients` in its slowlog', 'server', rows=False,
            output='%d of %d calls logged' % (server.get('n', 0), server.get('calls', 0)) if server else None)])
    L += ['']
    if cl.get('error'):
        L += ['Failed: %s' % one_line(cl['error'], 300), '']
    return L


def target_g(ops):
    """(g) keeping the statistics costs the queue workload at most COST_TARGET % of its ops/s,
    metrics off (B) and on (C), at each connection count."""
    cells = ops_cells(ops)
    cost = ops['cost']
    figs, met, measured, noise, decided = [], True, True, [], False
    for conns in OPS_WORKLOAD_CONNS:
        parts = []
        for cfg in ('stats', 'metrics'):
            c, a = cells[cfg, conns], cells['nostats', conns]
            if c['cost'] is None:
                parts.append('%s not measured' % OPS_SHORT[cfg])
                measured = False
                continue
            met = met and c['cost'] <= COST_TARGET
            parts.append('%s %s (paired %s)' % (OPS_SHORT[cfg], pct(c['cost']), pct(c['paired'])))
            widest = max(c['spread'] or 0, a['spread'] or 0)
            if widest > abs(c['cost']):
                noise.append('%s at -c %d (spread %.1f %% > difference %.1f %%)' % (
                    OPS_SHORT[cfg], conns, widest, abs(c['cost'])))
            elif c['cost'] > COST_TARGET:
                decided = True  # a miss that the noise does not explain
        figs.append('-c %d: %s' % (conns, ', '.join(parts)))
    if not cost.get('metrics_served'):
        figs.append('metrics on NOT measured: C\'s /metrics did not answer (%s)' % one_line(
            cost.get('metrics_error') or 'the server did not start', 120))
    if noise:
        figs.append('within the noise: the spread of the rounds is larger than the difference for ' + ', '.join(noise))
    counted = instruction_figures(ops, cells)
    if counted:
        figs.append('callgrind: the statistics add %s instructions per op (%s of the server\'s own%s)%s' % (
            fmt_int(counted[1] - counted[0]), pct(counted[2]),
            '' if counted[5] is None else ', about %.1f %% of its CPU' % (counted[2] * counted[5]),
            ', a scrape %s instructions (%.2f %% of a second at -c %d)' % (
                fmt_int(counted[3]), counted[4], max(OPS_WORKLOAD_CONNS)) if counted[3] and counted[4] is not None else ''))
    status = verdict(met, measured, comparable=bool(cost.get('metrics_served')), full_size=cost['rounds'] >= 5)
    if noise and status in ('met', 'MISSED') and not decided:
        status += ' (within the noise)'
    return ('(g) statistics cost ≤ %g %% of the queue workload\'s ops/s (median of %d rounds; A no statistics, '
            'B statistics, C statistics and /metrics scraped each second)' % (COST_TARGET, cost['rounds']),
            status, '; '.join(figs))


def target_h(ops):
    """(h) shmgr-cli clients answers within CLI_TARGET_MS (median wall time) with 10,000 connections."""
    cl = ops['clients']
    t = cl.get('table')
    n = cl.get('connections', 0)
    if not t:
        return ('(h) `shmgr-cli clients` within %g ms (median) with %s connections'
                % (CLI_TARGET_MS, fmt_int(OPS_CONNECTIONS)), 'MISSED', 'not measured: %s' % one_line(cl.get('error'), 200))
    met = t['median'] <= CLI_TARGET_MS and t['rows'] >= n and not cl.get('error')
    figs = ['median %s ms, max %s ms, %s rows' % (ms_text(t['median']), ms_text(t['max']), fmt_int(t['rows']))]
    if cl.get('json'):
        figs.append('--json median %s ms' % ms_text(cl['json']['median']))
    if cl.get('server'):
        figs.append('server %s ms' % ms_text(cl['server']['median']))
    if n < OPS_CONNECTIONS:
        figs.append('--quick: %s connections, not %s' % (fmt_int(n), fmt_int(OPS_CONNECTIONS)))
    return ('(h) `shmgr-cli clients` within %g ms (median) with %s connections' % (CLI_TARGET_MS, fmt_int(OPS_CONNECTIONS)),
            verdict(met, True, full_size=n >= OPS_CONNECTIONS), '; '.join(figs))


SHARED_OP_LABEL = {
    ('value', 'get'): ('read a value', '`v.get()`', '`v.value`', '`Struct.unpack_from(mm, offset)`'),
    ('value', 'set'): ('write a value', '`v.set(x)`', '`v.value = x`', '`Struct.pack_into(mm, offset, x)`'),
    ('array', 'get'): ('read an element', '`a[i]`', '`a[i]`', '`view[i]` (a memoryview)'),
    ('array', 'set'): ('write an element', '`a[i] = x`', '`a[i] = x`', '`view[i] = x`'),
}


def us_pair(d):
    """'p50 / p99' in µs of one op's figures, or —."""
    return '—' if not d else '%s / %s' % (fmt_sig(d['median_us']), fmt_sig(d['p99_us']))


def shared_latency_rows(shared):
    lat = shared['latency']
    rows = []
    for what, op in SHARED_OP_LABEL:
        label, shm_call, cpy_call, map_call = SHARED_OP_LABEL[what, op]
        cells = {}
        for kind, path in (('shmgr', 'proxy'), ('cpython', 'proxy'), ('shmgr', 'map')):
            r = lat[kind]
            cells[kind, path] = (r.get('ops') or {}).get('%s_%s_%s' % (what, op, path)) if r.ok else None
        sp, cp, sm = cells['shmgr', 'proxy'], cells['cpython', 'proxy'], cells['shmgr', 'map']
        row = ['%s: %s, CPython %s; map %s' % (label, shm_call, cpy_call, map_call)]
        row += [us_pair(sp) if sp or lat['shmgr'].ok else failed(lat['shmgr']),
                us_pair(cp) if cp or lat['cpython'].ok else failed(lat['cpython']),
                us_pair(sm) if sm or lat['shmgr'].ok else '—']
        row += [fmt_int(d['ops_per_sec']) if d else '—' for d in (sp, cp, sm)]
        row.append('%s ×' % fmt_int(sp['median_us'] / sm['median_us']) if sp and sm and sm['median_us'] > 0 else '—')
        rows.append(row)
    return rows


def per_object(r, key, scale=1024):
    """Growth of a /proc figure (KiB) over the run, in bytes per object."""
    b, a = (r.get('before') or {}).get(key), (r.get('after') or {}).get(key)
    return None if a is None or b is None else (a - b) * scale / float(r.get('n') or 1)


def grown(r, key):
    b, a = (r.get('before') or {}).get(key), (r.get('after') or {}).get(key)
    return None if a is None or b is None else a - b


def shared_memory_rows(shared):
    objs = shared['objects']
    shm, cpy = objs['shmgr'], objs['cpython']

    def cell(r, text):
        return failed(r) if not r.ok and not r.get('after') else text

    def bytes_cell(r, key):
        v = per_object(r, key)
        return cell(r, '—' if v is None else '%s B' % fmt_int(v))

    sm_after = shm.get('shm_after') or {}
    sm_before = shm.get('shm_before') or {}
    n = shm.get('n') or 0
    rows = [
        ['objects made (one `create` each, kept)', cell(shm, '%s `SharedValue(\'q\', 0)`' % fmt_int(shm.get('n'))),
         cell(cpy, '%s `Value(\'q\', 0)`' % fmt_int(cpy.get('n')))],
        ['a create, as the client waits for it', cell(shm, '%s ms' % fmt_sig(shm.get('create_ms'))),
         cell(cpy, '%s ms' % fmt_sig(cpy.get('create_ms')))],
        ['**server RSS per object** (VmRSS growth / objects: the next two rows)', bytes_cell(shm, 'VmRSS'), bytes_cell(cpy, 'VmRSS')],
        ['of which its own memory (RssAnon)', bytes_cell(shm, 'RssAnon'), bytes_cell(cpy, 'RssAnon')],
        ['of which shared-memory pages it touched (RssShmem)', bytes_cell(shm, 'RssShmem'), bytes_cell(cpy, 'RssShmem')],
    ]
    if sm_after:
        seg_bytes = (sm_after.get('bytes', 0) - sm_before.get('bytes', 0)) / float(n or 1)
        blk_bytes = (sm_after.get('block_bytes', 0) - sm_before.get('block_bytes', 0)) / float(n or 1)
        rows += [['**/dev/shm per object** (segments\' bytes / objects; the blocks\' own bytes)',
                  '%s B (%s B)' % (fmt_sig(seg_bytes), fmt_sig(blk_bytes)), '—'],
                 ['segments, blocks (shmgr_info, after)', '%s segments of %s, %s blocks' % (
                     fmt_int(sm_after.get('segments')), size_text(sm_after.get('bytes')),
                     fmt_int(sm_after.get('blocks'))), '—']]
    else:
        rows.append(['/dev/shm per object', cell(shm, '— (shmgr_info has no shared_memory figures)'), '—'])
    rows += [['/dev/shm mappings added', cell(shm, fmt_int(grown(shm, 'shm_maps'))), cell(cpy, fmt_int(grown(cpy, 'shm_maps')))],
             ['descriptors added', cell(shm, fmt_int(grown(shm, 'fds'))), cell(cpy, fmt_int(grown(cpy, 'fds')))]]
    return rows


def shared_report(shared):
    lat = shared['latency']
    L = [SHARED_HEADING, '']
    ran = next((r for r in (lat['shmgr'], lat['cpython']) if r.ok), Result('', 'shmgr'))
    py = ran.get('python') or python_version()
    L += ['`bench/shared_latency.py` under Debian\'s python3 (%s), a stock client over TCP on 127.0.0.1, a fresh '
          'server each: shmgr\'s `SharedValue(\'d\', 0.0)` and `SharedArray(\'d\', [0.0] * %d)` (registered with '
          '`BaseManager.register`, AutoProxy), element %d; CPython\'s `SyncManager` `Value(\'d\', 0.0)` and '
          '`Array(\'d\', ...)` (its ValueProxy and ArrayProxy). Each proxy op %s times after %d warm-ups, each '
          'timed alone: median and p99 µs, and ops/s over all its loops. The *map* is the same bytes mapped '
          'from `shm_info()` (`mmap` of `/dev/shm/NAME`), %s times each in batches of %d, the median and p99 of '
          'the batches\' means (a call of an empty Python function costs %s µs of it). The ops take turns in '
          '%s rounds, so that a slow spell of the host weighs on all of them. Measured on %s; load '
          'average %s before, %s after; `make bench BENCH_ONLY=shared` measures this section again.' % (
              py, ran.get('array_len', 1024), ran.get('index', 512), fmt_int(shared['n']), ran.get('warmup', 200),
              fmt_int(lat['shmgr'].get('map_n')), lat['shmgr'].get('map_batch', '—'),
              fmt_sig(lat['shmgr'].get('empty_call_us')) if lat['shmgr'].ok else '—', ran.get('rounds', 5),
              shared['date'], shared.get('load_before', '?'), shared.get('load_after', '?')), '']
    L += table(['operation', 'shmgr proxy µs p50 / p99', 'CPython proxy µs p50 / p99', 'shmgr map µs p50 / p99',
                'shmgr proxy ops/s', 'CPython proxy ops/s', 'map ops/s', 'proxy / map'],
               shared_latency_rows(shared))
    L += ['']
    objs = shared['objects']
    L += ['**Memory per object.** A fresh server on a Unix socket; the objects made by a client calling '
          '`create` as `BaseManager` does, one authenticated connection each, without the proxy (the server '
          'then holds each with one reference, as it would for one live proxy; a proxy\'s incref and decref '
          'would triple the client\'s time and change nothing on the server); nothing released until the server '
          'stops. Before and after: `/proc/PID/status` (VmRSS, RssAnon, RssShmem), the lines of `/proc/PID/maps` '
          'naming `/dev/shm`, the entries of `/proc/PID/fd`, and shmgr\'s `shmgr_info()[\'shared_memory\']`. '
          'CPython\'s server gets %s objects, not %s: it takes over a millisecond a create.' % (
              fmt_int(objs['cpython'].get('n')), fmt_int(objs['shmgr'].get('n'))), '']
    L += table(['measurement', 'shmgr', 'CPython'], shared_memory_rows(shared))
    L += ['']
    return L


def python_report(py):
    """The From Python section."""
    st, wc = py['starts'], py['wordcount']

    def ms(r, phase, key='median_ms'):
        v = ((r.get(phase) or {}) if r.ok else {}).get(key)
        return '—' if v is None else fmt_sig(v)

    L = [PYTHON_HEADING, '']
    L += ['`bench/python_start.py` under Debian\'s python3: `shmgr.Manager()` (a shmgr process on a private '
          'Unix socket) against `multiprocessing.Manager()` (CPython\'s server process), %s managers one '
          'after the other, after 2 warm-ups. *To the first call*: from calling `Manager()` to the answer of '
          'a dict\'s `d[\'k\']` (made, set, read); *shutdown*: `shutdown()` called to returned. The word '
          'count is `tests/programs/wordcount.py` (a Pool updating a shared dict under a shared Lock, then a '
          'JoinableQueue pipeline; fork), %s words, unchanged but for its import, the median of %s runs. '
          'Measured on %s; load average %s before, %s after; `make bench BENCH_ONLY=python` measures this '
          'section again.' % (fmt_int(st['shmgr'].get('n') or 0), fmt_int(wc['shmgr'].get('words') or 0),
                              len(wc['shmgr'].get('walls') or []) or '?', py['date'], py.get('load_before', '?'),
                              py.get('load_after', '?')), '']
    rows = [['Manager() to the first answered call, ms (median; min–max)']
            + ['%s (%s–%s)' % (ms(st[k], 'to_first_call'), ms(st[k], 'to_first_call', 'min_ms'),
                               ms(st[k], 'to_first_call', 'max_ms')) for k in ('shmgr', 'cpython')],
            ['shutdown(), ms (median; min–max)']
            + ['%s (%s–%s)' % (ms(st[k], 'shutdown'), ms(st[k], 'shutdown', 'min_ms'),
                               ms(st[k], 'shutdown', 'max_ms')) for k in ('shmgr', 'cpython')],
            ['word count, wall s (median)']
            + ['—' if not wc[k].ok or wc[k].get('median_s') is None else fmt_sig(wc[k].get('median_s'))
               for k in ('shmgr', 'cpython')]]
    L += table(['', 'shmgr.Manager()', 'multiprocessing.Manager()'], rows)
    L += ['']
    return L


def mib_text(n):
    return '%g MiB' % (n / 1048576.0)


def big_seconds(r, key):
    """'median (min–max)' seconds of one call of a big-values round trip, or —."""
    d = r.get(key) or {}
    if d.get('median_s') is None:
        return '—'
    return '**%s** (%s–%s)' % (fmt_sig(d['median_s']), fmt_sig(d['min_s']), fmt_sig(d['max_s']))


def big_median(r, key='put_get'):
    return (r.get(key) or {}).get('median_s')


def big_cpu(r, key):
    """A round's CPU seconds (key: client_cpu_s, server_cpu_s) as text, or —."""
    v = r.get(key)
    return '—' if v is None else fmt_sig(v)


def big_roundtrip_rows(big):
    rows = []
    size = big.get('size') or BIG_SIZE
    for transport, name in BIG_TRANSPORTS:
        cells = big['roundtrip']
        shm, cpy = cells.get((transport, 'shmgr')), cells.get((transport, 'cpython'))
        for kind, r in (('shmgr', shm), ('cpython', cpy)):
            if r is None:
                continue
            both = big_median(r)
            if both is None:
                rows.append([name, LABEL[kind], failed(r)] + ['—'] * 6)
                continue
            runs = len((r.get('put_get') or {}).get('runs') or [])
            ratio = '—'
            if kind == 'shmgr' and cpy is not None and big_median(cpy) and both > 0:
                ratio = '**%.2f**' % (big_median(cpy) / both)
            row = [name, LABEL[kind], big_seconds(r, 'put'), big_seconds(r, 'get'), big_seconds(r, 'put_get'),
                   fmt_int(2 * size / both / 1e6), big_cpu(r, 'client_cpu_s'), big_cpu(r, 'server_cpu_s'), ratio]
            if not r.ok:  # a round failed after others were timed: say so beside their figures
                row[2] += ' (%d rounds; then %s)' % (runs, failed(r))
            rows.append(row)
    return rows


def big_bound(big, transport):
    """(CPython's put+get median, the client's CPU per round against shmgr, their ratio): the
    most any server could gain over CPython's there, the client being one thread; or None."""
    shm, cpy = big['roundtrip'].get((transport, 'shmgr')), big['roundtrip'].get((transport, 'cpython'))
    if shm is None or cpy is None or not big_median(cpy) or not shm.get('client_cpu_s'):
        return None
    return big_median(cpy), shm.get('client_cpu_s'), big_median(cpy) / shm.get('client_cpu_s')


def big_memory_rows(big):
    mem = big['memory']
    shm, cpy = mem.get('shmgr'), mem.get('cpython')

    def cell(r, text_of, first=False):
        """text_of(before, after, values kept, their size) when the script read the server's memory
        both times and kept something; else why not (in the first row only)."""
        if r is None:
            return '—'
        b, a = r.get('before') or {}, r.get('after') or {}
        kept, size = r.get('stored') or 0, r.get('size') or 0
        if b.get('VmRSS') is None or a.get('VmRSS') is None or not kept * size:
            return failed(r) if not r.ok and first else '—'
        text = text_of(b, a, kept, size)
        return text if r.ok or not first else '%s (then %s)' % (text, failed(r))

    def kept_text(b, a, kept, size):
        return '%d × %s (%s in all)' % (kept, mib_text(size), size_text(kept * size))

    def growth(b, a, kept, size):
        return '**%.3f** (VmRSS %s → %s KiB)' % ((a['VmRSS'] - b['VmRSS']) * 1024.0 / (kept * size),
                                                 fmt_int(b['VmRSS']), fmt_int(a['VmRSS']))

    def anon(b, a, kept, size):
        if b.get('RssAnon') is None or a.get('RssAnon') is None:
            return '—'
        return '%.3f' % ((a['RssAnon'] - b['RssAnon']) * 1024.0 / (kept * size))

    def peak(b, a, kept, size):
        if a.get('VmHWM') is None:
            return '—'
        return '%.3f (VmHWM %s KiB)' % ((a['VmHWM'] - b['VmRSS']) * 1024.0 / (kept * size), fmt_int(a['VmHWM']))

    def over(b, a, kept, size):
        if a.get('VmHWM') is None:
            return '—'
        return '%.2f' % ((a['VmHWM'] - a['VmRSS']) * 1024.0 / size)

    return [['values kept', cell(shm, kept_text, True), cell(cpy, kept_text, True)],
            ['**server RSS growth per stored byte**', cell(shm, growth), cell(cpy, growth)],
            ['of which its own memory (RssAnon growth per stored byte)', cell(shm, anon), cell(cpy, anon)],
            ['peak RSS growth during the appends, per stored byte', cell(shm, peak), cell(cpy, peak)],
            ['the peak above what stays, in values', cell(shm, over), cell(cpy, over)]]


def big_report(big):
    """The Big values section."""
    rt = big['roundtrip']
    ran = next((r for r in list(rt.values()) + list(big['memory'].values()) if r.get('python')), None)
    py = ran.get('python') if ran else python_version()
    size = big.get('size') or BIG_SIZE
    L = [BIG_HEADING, '']
    rounds = big.get('rounds') or 0
    L += ['`bench/big_values.py` under Debian\'s python3 (%s), a stock `SyncManager` client, a fresh server '
          'for each row: `q = m.Queue()`, then %d round%s of `q.put(value)` and `q.get()`, the value '
          '`b\'x\' * %s` (%s, %s) made before the clock starts, each call timed alone in the client '
          '(`time.perf_counter`). Seconds: the median of the rounds (lowest–highest). *MB/s*: the value\'s '
          'bytes both ways (2 × %s) over the put+get median. *CPython / shmgr*: CPython\'s put+get median '
          'over shmgr\'s. Measured on %s; load average %s before, %s after; `make bench BENCH_ONLY=big` '
          'measures this section again.' % (
              py, rounds, '' if rounds == 1 else 's', fmt_int(size), mib_text(size), size_text(size),
              size_text(size), big['date'], big.get('load_before', '?'), big.get('load_after', '?')), '']
    L += table(['transport', 'server', 'put s', 'get s', 'put+get s', 'MB/s', 'client CPU s', 'server CPU s',
                'CPython / shmgr'], big_roundtrip_rows(big))
    L += ['']
    bounds = [(name, big_bound(big, transport)) for transport, name in BIG_TRANSPORTS]
    bounds = ['%s: %s s of client CPU against CPython\'s %s s, at most **%.2f×**' % (name, fmt_sig(c), fmt_sig(w), x)
              for name, (w, c, x) in ((n, b) for n, b in bounds if b)]
    L += ['*Client CPU s* and *server CPU s*: the CPU time (user + system) of the rounds, per round; the '
          'client\'s from `getrusage`, the server\'s from its `/proc/PID/stat` (every thread). The stock client '
          'does its work in one thread, and its CPU time includes its own side of every copy through the '
          'kernel, so no server, however fast, can make a round shorter than the client\'s CPU time. That '
          'bounds what any server could gain over CPython\'s%s' % (
              ' here: ' + '; '.join(bounds) + '.' if bounds else '.'), '']
    mem = big['memory']
    reset = all((r.get('peak_reset') for r in mem.values() if r is not None and r.data))
    L += ['**Memory per stored byte.** A fresh server over TCP; the client makes `l = m.list()`, then '
          'appends %d distinct values of %s (`bytes([i]) * %s`, nothing shared between them), dropping each '
          'after its append. The server\'s `/proc/PID/status` before the appends and once its VmRSS stops '
          'moving after them: the growth of VmRSS (and RssAnon) over the bytes stored; the peak is VmHWM%s, '
          'less VmRSS before.' % (
              big.get('k') or 0, mib_text(size), fmt_int(size),
              ', reset before the appends (`/proc/PID/clear_refs`)' if reset else
              ' (not reset: the peak since the server started)'), '']
    L += table(['measurement', 'shmgr', 'CPython'], big_memory_rows(big))
    L += ['']
    return L


def target_i(shared):
    """(i) 100,000 SharedValues cost the server no mapping or descriptor each: at most one of
    either per SHARED_MAPPINGS_PER objects."""
    r = shared['objects']['shmgr']
    label = ('(i) %s `SharedValue`s: at most one /dev/shm mapping and one descriptor per %s objects'
             % (fmt_int(r.get('n') or 100000), fmt_int(SHARED_MAPPINGS_PER)))
    maps, fds = grown(r, 'shm_maps'), grown(r, 'fds')
    if maps is None or fds is None:
        return label, 'MISSED', 'not measured: %s' % one_line(r.error or 'no /proc figures', 200)
    n = r.get('n') or 0
    bound = n / float(SHARED_MAPPINGS_PER)
    met = r.ok and maps <= bound and fds <= bound
    figs = ['%s mappings and %s descriptors added for %s objects' % (fmt_int(maps), fmt_int(fds), fmt_int(n))]
    per = per_object(r, 'VmRSS')
    if per is not None:
        figs.append('%s B of server RSS per object' % fmt_int(per))
    sm = r.get('shm_after') or {}
    if sm and n:
        figs.append('%s B of /dev/shm per object' % fmt_sig(sm.get('bytes', 0) / float(n)))
    return label, verdict(met, True, full_size=n >= 100000), '; '.join(figs)


def target_j(big):
    """(j) Issue 14: a 50 MiB put+get over TCP at least 2× faster than on CPython's server, and
    at most 1.05 bytes of server memory per stored byte of big values."""
    label = ('(j) a %s put+get over TCP at least %g× faster than on CPython\'s server; at most %.2f bytes '
             'of server RSS per stored byte' % (mib_text(big.get('size') or BIG_SIZE), BIG_SPEEDUP, BIG_PER_BYTE))
    shm, cpy = big['roundtrip'].get(('tcp', 'shmgr')), big['roundtrip'].get(('tcp', 'cpython'))
    mem = big['memory'].get('shmgr')
    figs, fast, small = [], False, False
    if shm is not None and big_median(shm) and cpy is not None and big_median(cpy):
        ratio = big_median(cpy) / big_median(shm)
        fast = shm.ok and ratio >= BIG_SPEEDUP
        figs.append('put+get median %s s against %s s, %.2f×' % (fmt_sig(big_median(shm)), fmt_sig(big_median(cpy)),
                                                                ratio))
        if shm.get('server_cpu_s') and cpy.get('server_cpu_s'):
            figs.append('server CPU per round %s s against %s s (1/%.1f)' % (
                fmt_sig(shm.get('server_cpu_s')), fmt_sig(cpy.get('server_cpu_s')),
                cpy.get('server_cpu_s') / shm.get('server_cpu_s')))
        bound = big_bound(big, 'tcp')
        if bound:
            figs.append('the client\'s own CPU per round, %s s, allows any server at most %.2f×' % (
                fmt_sig(bound[1]), bound[2]))
    else:
        figs.append('round trip not measured')
    if mem is not None and (mem.get('stored') or 0) and (mem.get('before') or {}).get('VmRSS') is not None \
            and (mem.get('after') or {}).get('VmRSS') is not None:
        before, after = mem.get('before'), mem.get('after')
        kept = mem.get('stored') * mem.get('size')
        per = (after['VmRSS'] - before['VmRSS']) * 1024.0 / kept
        small = mem.ok and per <= BIG_PER_BYTE
        figs.append('%.3f bytes of server RSS per stored byte' % per)
        if after.get('VmHWM') is not None:
            figs.append('peak %.3f' % ((after['VmHWM'] - before['VmRSS']) * 1024.0 / kept))
    else:
        figs.append('memory per stored byte not measured')
    return label, verdict(fast and small, shm is not None and mem is not None, cpy is not None), '; '.join(figs)


def targets(p, rates, many, mem, park, proxy, durable, ops, shared=None, big=None):
    """[(label, 'met' | 'MISSED' | 'not measured', figures)]."""
    return ([target_a(rates), target_b(rates), target_c(proxy), target_d(p, many, park),
             target_e(p, mem), target_f(durable)] + ([target_g(ops), target_h(ops)] if ops else [])
            + ([target_i(shared)] if shared else []) + ([target_j(big)] if big else []))


# --------------------------------------------------------------------------
# The report

def fmt_ratio(v):
    return '—' if v is None else '%.2f' % v


def syncs_text(r):
    """fsyncs/s of a durable cell, or why there is no figure."""
    if r.get('syncs_per_sec') is not None:
        return fmt_int(r.get('syncs_per_sec'))
    return '— (%s)' % one_line(r.get('syncs_error'), 80) if r.get('syncs_error') else '—'


def durable_rows(durable):
    cells = durable['cells']
    rows = []
    for c in DURABLE_CONNS:
        base = cells['memory', c]
        for mode in DURABLE_MODES:
            r = cells[mode, c]
            if not r.ok:
                rows.append([mode, c, failed(r)] + ['—'] * 8)
                continue
            spread = r.get('rounds_ops_per_sec') or []
            ratio = r.get('vs_memory')
            if ratio is None and base.ok and base.get('ops_per_sec'):
                ratio = r.get('ops_per_sec') / base.get('ops_per_sec')
            store = mode != 'memory'
            rows.append([mode, c, fmt_int(r.get('ops_per_sec')), fmt_ratio(ratio),
                         '–'.join(fmt_int(v) for v in (spread[0], spread[-1])) if len(spread) > 1 else '—',
                         '%s (user %s)' % (cpu_text(r), fmt_sig(r.get('server_user_us_per_op'))),
                         latency_text(r),
                         fmt_int(r.get('commits_per_sec')) if store else '—',
                         fmt_sig(r.get('calls_per_commit')) if store else '—',
                         syncs_text(r) if store else '—',
                         fmt_sig(r.get('syncs_per_commit')) if store else '—'])
    return rows


def durable_report(durable):
    L = ['## Durable queues', '']
    fs = durable.get('fs')
    L += ['`./shmgr-bench -w queue --typeid %s`: the queue workload (an op is a `put(i)` and a `get()`, two '
          'calls) on a queue that the config declares, `shmgr.JoinableQueue{ name = "jobs", durable = ..., '
          'redeliver = false }` served as the typeid `%s`, each cell on a fresh shmgr: **memory** not '
          'durable (no `data_dir`), **process** `durable = true, durability = "process"` (SQLite in WAL '
          'mode, `synchronous = NORMAL`: each commit is written to the OS), **power** `durability = '
          '"power"` (`synchronous = FULL`: each commit is also synced to the disk). `data_dir` is a fresh '
          'folder%s. shmgr commits the changes of each turn of its loop at once and sends the replies '
          'of that turn after the commit. *commits/s*: the commits the server logs at SIGTERM (`store: '
          'closed after N commits ...`) over the calls it answered; *calls/commit*: calls answered (in '
          'the window and just after it, finishing the ops in flight) per commit; *fsyncs/s* and '
          '*/commit*: the server\'s fsync and fdatasync calls (`perf record` on their tracepoints) during '
          'the run. Each cell %s s, %d round%s with the three in turn (a different one first each time); '
          'the median round by ops/s stands for each cell, *range* is the lowest and highest ops/s of '
          'the rounds, *× memory* the median of its ops/s over those of the memory cell of the same '
          'round (this section\'s own, not the queue rows above, measured at another time). Measured on %s; `make bench BENCH_ONLY=durable` measures this section again '
          'and keeps the others.' % (
              DURABLE_TYPEID, DURABLE_TYPEID, ' (%s)' % fs if fs else '',
              fmt_num(durable['duration']), durable['rounds'], '' if durable['rounds'] == 1 else 's',
              durable['date']), '']
    if fs and fs.startswith('tmpfs'):
        L += ['**The data_dir is on tmpfs: a sync costs nothing there, so "power" shows what it would '
              'cost on no disk.**', '']
    L += table(['durability', 'conns', 'ops/s', '× memory', 'range ops/s', 'µs CPU/op', 'p50/p99/p99.9 µs',
                'commits/s', 'calls/commit', 'fsyncs/s', 'fsyncs/commit'], durable_rows(durable))
    L += ['']
    if any(coarse(r) for r in durable['cells'].values()):
        L += ['† fewer than %d clock ticks (%g ms each) of server CPU in the window: known to ±1 tick.'
              % (COARSE_TICKS, 1000.0 / CLK_TCK), '']
    return L


def machine_line(opts):
    model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    version = python_version()
    return ('Produced by `make bench`%s on %s, %d cores, %s, Linux %s, Python %s.'
            % (' (--quick)' if opts.quick else '', datetime.date.today().isoformat(),
               os.cpu_count() or 0, model, platform.release(), version or '?'))


def one_core_rows(one_core):
    rows = []
    for w in ('queue', 'dict', 'list'):
        cpy, shm = one_core[w, 'cpython'], one_core[w, 'shmgr']
        row = [w] + [('%s (user %s)' % (cpu_text(r), fmt_sig(r.get('server_user_us_per_op')))) if r.ok
                     else failed(r) for r in (cpy, shm)]
        row.append(ratio_text(cpy, shm))
        row += [fmt_int(r.get('ops_per_sec')) if r.ok else '—' for r in (cpy, shm)]
        rows.append(row)
    return rows


def report(ctx, p, res, svg_link):
    """The whole report from the sections' results (res: section name -> results)."""
    rates, one_core, many, mem = res['rates'], res['one_core'], res['many'], res['memory']
    park, proxy, durable, ops = res['park'], res['proxy'], res['durable'], res.get('ops')
    shared = res.get('shared')
    L = ['# shmgr vs CPython\'s manager server', '']
    L += ['`./shmgr-bench` drives one server at a time over TCP on 127.0.0.1 (the two servers take '
          'turns); CPython\'s server is `SyncManager(...).get_server().serve_forever()` under Debian\'s '
          'python3, a thread per connection. Each connection runs a closed loop: its next op starts '
          'when the answer to the last one arrives. An **op** is, per workload: **queue** a `put(i)` '
          'and a `get()` on one shared Queue; **dict** `d[\'k<conn>\'] = i` then `d[\'k<conn>\']`; '
          '**list** `append(i)` then `len()`; **create** the life of a proxy as a stock client lives '
          'it: `create(\'dict\')`, `incref`, `decref`, `decref`, each on a fresh authenticated '
          'connection. **CPU** is the server process\'s user+sys time (from /proc/PID/stat) during '
          'the measured window, divided by the ops completed in it; latencies are per op, as the '
          'client sees them. Each rate cell runs %s s.' % fmt_num(p['duration']), '']
    L += [res['machine'], '']

    L += ['## Server CPU per op, throughput, latency', '']
    L += table(['workload', 'conns', 'CPython µs CPU/op', 'shmgr µs CPU/op', 'ratio',
                'of which user: CPython', 'shmgr', 'CPython ops/s',
                'shmgr ops/s', 'CPython p50/p99/p99.9 µs', 'shmgr p50/p99/p99.9 µs'], rate_rows(rates))
    L += ['', 'ratio: shmgr/CPython server CPU per op. *of which user*: the part of it spent in the '
          'server\'s own code (user time); the rest is the kernel\'s, mostly the loopback TCP path '
          '(sending a reply also runs the receiving side of the client\'s socket) and waking the '
          'client.%s%s' % (
        ' † fewer than %d clock ticks (%g ms each) of server CPU in the window: known to ±1 tick.'
        % (COARSE_TICKS, 1000.0 / CLK_TCK) if any(coarse(r) for r in rates.values()) else '',
        ' CPython\'s create ops/s and latencies include a wait per fresh connection: see the note '
        'under *Proxy create+drop*.' if nagle_wait(proxy) else ''), '',
        '![server CPU µs per op](%s)' % svg_link, '']

    if one_core:
        L += ['## One connection on one core', '']
        L += ['The same 1-connection cells with the server and `shmgr-bench` both pinned to CPU %d '
              '(`taskset`), each server fresh: no reply has to wake a client on the other core, which '
              'on this machine costs more than the rest of a call. What remains is each server\'s own '
              'code (user) and the kernel\'s loopback TCP path, the same for both.' % ONE_CORE, '']
        L += table(['workload', 'CPython µs CPU/op', 'shmgr µs CPU/op', 'ratio', 'CPython ops/s',
                    'shmgr ops/s'], one_core_rows(one_core))
        L += ['']

    mr, fds = many
    L += ['## %s connections (shmgr)' % fmt_int(MANY_CONNS), '']
    L += ['`-w queue -c %d`; *held* is the peak of the server\'s open descriptors during the run '
          'less those before, *closed* how many of them were gone after it.' % MANY_CONNS, '']
    held = fds.get('held')
    closed = '—' if held is None or fds.get('still_open') is None else (
        'all' if fds['still_open'] == 0 else '%s still open' % fmt_int(fds['still_open']))
    served = mr.get('served')
    L += table(['held', 'served', 'closed', 'errors', 'connect retries', 'ops/s', 'p99 µs', 'result'],
               [[fmt_int(held), fmt_int(served) if served is not None else 'not reported', closed,
                 fmt_int(mr.get('errors')) if mr.data else '—', fmt_int(mr.get('retries')),
                 fmt_int(mr.get('ops_per_sec')),
                 fmt_sig(mr.get('p99_us')), 'ok' if mr.ok else failed(mr)]])
    L += ['']

    L += ['## Memory (server RSS growth)', '']
    L += table(['measurement', 'shmgr', 'CPython'], memory_rows(p, mem))
    L += ['', 'Each figure from a fresh server: RSS after less RSS before, divided by the count. '
          'CPython gets %d s to take its idle connections.' % CPYTHON_IDLE_TIMEOUT, '']

    L += ['## Parked waiters', '']
    L += ['Each connection parks a `get()` on one queue, in a known order; then the items 0..N-1 are '
          'put, and each waiter must receive its own index.', '']
    L += table(['server', 'waiters', 'woken', 'in order', 'wake time', 'result'], park_rows(park))
    L += ['']

    L += ['## Proxy create+drop with a stock client', '']
    L += ['`bench/proxy_latency.py`: a `SyncManager` client under Debian\'s python3 times `d = m.dict(); '
          'del d` (four fresh authenticated connections: create, incref, decref, decref), %d times '
          'after 3 warm-ups; milliseconds.' % p['proxy_n'], '']
    L += table(['transport', 'CPython median ms', 'shmgr median ms'],
               [[name, proxy_cell(proxy[t, 'cpython']), proxy_cell(proxy[t, 'shmgr'])]
                for t, name in (('tcp', 'TCP 127.0.0.1'), ('unix', 'Unix socket'))])
    L += ['']
    if nagle_wait(proxy):
        L += ['Over TCP, each fresh connection to CPython\'s server waits about 40 ms (waiting, not CPU): '
              'the client ends the handshake with two small writes in a row (its `#WELCOME#`, then its '
              'first request) without TCP_NODELAY, so Nagle\'s algorithm holds the request until the '
              'server\'s delayed ACK of the `#WELCOME#`, and CPython\'s server sends nothing in between. '
              'Over a Unix socket there is no such wait.', '']

    L += durable_report(durable)
    if ops:
        L += ops_report(ops)
    if shared:
        L += shared_report(shared)
    if res.get('python'):
        L += python_report(res['python'])
    if res.get('big'):
        L += big_report(res['big'])

    L += ['## Targets', '']
    for label, status, figs in targets(p, rates, many, mem, park, proxy, durable, ops, shared, res.get('big')):
        L.append('- %s: **%s** — %s' % (label, status, figs))
    L += ['']

    L += ['## Failures', '']
    if ctx.failures:
        L += ['- %s %s: %s' % (LABEL.get(f.kind, f.kind), f.what, one_line(f.error, 600))
              for f in ctx.failures]
    else:
        L += ['None.']
    return '\n'.join(L) + '\n'


def update_readme(markdown, svg_path):
    """Replace what lies between docs/performance.md's bench markers (when it has both)."""
    try:
        with open(PAGE, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except OSError:
        return False
    stripped = [line.strip() for line in lines]
    if PAGE_BEGIN not in stripped or PAGE_END not in stripped:
        return False
    begin, end = stripped.index(PAGE_BEGIN), stripped.index(PAGE_END)
    if end < begin:
        return False
    # the page.s own heading stands for the report's title; its sections go one level down
    body = []
    for line in markdown.rstrip('\n').split('\n'):
        if line.startswith('# '):
            continue
        body.append('#' + line if line.startswith('#') else line)
    link = os.path.relpath(svg_path, os.path.dirname(PAGE))
    body = [line.replace('](results.svg)', '](%s)' % link) for line in body]
    lines[begin + 1:end] = [''] + body + ['']
    with open(PAGE, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    return True


# --------------------------------------------------------------------------
# The chart

COLOURS = {'cpython': '#3b6ea8', 'shmgr': '#e07b00'}


def chart_svg(rates, duration):
    """Grouped bars of server CPU µs per op, CPython vs shmgr, on a log scale."""
    groups = [(w, c) for w in RATE_WORKLOADS for c in RATE_CONNS]
    values = {}
    for (w, c) in groups:
        for kind in KINDS:
            values[w, c, kind] = cpu_per_op(rates[w, c, kind])
    positive = [v for v, _ in values.values() if v]
    # the bottom at a decade; the top a little above the tallest bar, room for its label
    lo_exp = math.floor(math.log10(min(positive))) if positive else 0
    if positive and math.log10(min(positive)) - lo_exp < 0.3:
        lo_exp -= 1  # else the shortest bars would be slivers
    hi_exp = math.log10(max(positive)) + 0.12 if positive else 3
    hi_exp = max(hi_exp, lo_exp + 1)

    width, height = 1000, 540
    left, right, top, bottom = 90, 20, 90, 110
    pw, ph = width - left - right, height - top - bottom
    base_y = top + ph

    def y(v):
        frac = (math.log10(v) - lo_exp) / (hi_exp - lo_exp)
        return top + ph * (1 - frac)

    def text(x, y_, s, size=12, anchor='middle', extra=''):
        return ('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s"%s>%s</text>'
                % (x, y_, size, anchor, extra, html.escape(s)))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="DejaVu Sans, Arial, sans-serif">' % (width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           text(width / 2, 24, 'Server CPU per op: CPython\'s manager server vs shmgr (lower is better)',
                16, extra=' font-weight="bold"'),
           text(width / 2, 44, 'user+sys µs of the server process per op, %s s per cell, TCP on '
                '127.0.0.1' % fmt_num(duration), 12, extra=' fill="#555"')]

    # decade grid lines, lighter lines at 2x and 5x
    for e in range(lo_exp, math.floor(hi_exp) + 1):
        yy = y(10 ** e)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbb"/>' % (left, yy, left + pw, yy))
        out.append(text(left - 8, yy + 4, fmt_sig(10 ** e) if e < 0 else '{:,}'.format(10 ** e),
                        12, 'end'))
        for m in (2, 5):
            if math.log10(m * 10 ** e) <= hi_exp:
                ym = y(m * 10 ** e)
                out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>'
                           % (left, ym, left + pw, ym))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (left, top, left, base_y))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'
               % (left, base_y, left + pw, base_y))
    out.append(text(22, top + ph / 2, 'server CPU µs per op (log scale)', 13,
                    extra=' transform="rotate(-90 22 %.1f)"' % (top + ph / 2)))

    gw = pw / len(groups)
    bw = gw * 0.34
    for i, (w, c) in enumerate(groups):
        gx = left + i * gw
        for j, kind in enumerate(KINDS):
            v, bound = values[w, c, kind]
            bx = gx + gw / 2 - bw + j * bw
            if v:
                by = min(y(v), base_y - 1)
                out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                           '<title>%s %s -c %d: %s µs</title></rect>'
                           % (bx, by, bw - 2, base_y - by, COLOURS[kind], LABEL[kind], w, c,
                              fmt_sig(v)))
                out.append(text(bx + bw / 2 - 1, by - 4, ('<' if bound else '') + fmt_sig(v), 10))
            else:
                # read upwards from the axis, where the bar would have stood
                out.append(text(bx + bw / 2 + 3, base_y - 6, 'failed', 11, 'start',
                                extra=' fill="#c00" transform="rotate(-90 %.1f %.1f)"'
                                % (bx + bw / 2 + 3, base_y - 6)))
        out.append(text(gx + gw / 2, base_y + 16, '%d' % c, 12))
        ratio = ratio_text(rates[w, c, 'cpython'], rates[w, c, 'shmgr'])
        out.append(text(gx + gw / 2, base_y + 31, ratio, 10, extra=' fill="#555"'))
    # workload names under each block of connection counts, separators between blocks
    per = len(RATE_CONNS)
    for k, w in enumerate(RATE_WORKLOADS):
        bx = left + k * per * gw
        out.append(text(bx + per * gw / 2, base_y + 52, w, 14, extra=' font-weight="bold"'))
        if k:
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999" stroke-dasharray="4 3"/>'
                       % (bx, top, bx, base_y + 40))
    out.append(text(left + pw / 2, base_y + 78,
                    'workload / connections (grey: shmgr/CPython ratio)', 13))

    # legend: one row under the subtitle, clear of the bars
    names = {'cpython': 'CPython\'s manager server (Python %s)' % python_version(), 'shmgr': 'shmgr'}
    entry_w = {kind: 20 + 7.5 * len(names[kind]) + 30 for kind in KINDS}  # ~7.5 px a character
    lx = (width - sum(entry_w.values())) / 2
    for kind in KINDS:
        out.append('<rect x="%.1f" y="58" width="14" height="12" fill="%s"/>' % (lx, COLOURS[kind]))
        out.append(text(lx + 20, 69, names[kind], 13, 'start'))
        lx += entry_w[kind]
    out.append('</svg>')
    return '\n'.join(out) + '\n'


# --------------------------------------------------------------------------
# Main

def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit: 10,000 connections need it, and children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            say('warning: cannot raise the open-files limit from %d to %d: %s' % (soft, target, e))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < MANY_CONNS + 200:
        say('warning: the open-files limit is %d: %s connections will fail (raise the hard limit)'
            % (soft, fmt_int(MANY_CONNS)))


SECTIONS = ('rates', 'many', 'one_core', 'memory', 'park', 'proxy', 'durable', 'ops', 'shared', 'python', 'big')
OPTIONAL = ('ops', 'shared', 'python', 'big')  # sections a saved run may lack (it was made before they existed): the report goes without
SAVED = 'results.json'  # every section's raw results, for --only to redo some and keep the rest
SAVED_FORMAT = 1


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--quick', action='store_true', help='short durations and small counts (a smoke run)')
    ap.add_argument('--duration', type=float, metavar='S', help='seconds per rate cell (default 3)')
    ap.add_argument('--out', default=HERE, metavar='DIR', help='where results.md, results.svg and '
                    'results.json go (default bench/)')
    ap.add_argument('--no-readme', action='store_true', help='leave docs/performance.md alone (always so with --quick)')
    ap.add_argument('--bench', default=BENCH, metavar='PATH', help='the load generator (default '
                    './shmgr-bench)')
    ap.add_argument('--only', metavar='SECTION[,SECTION...]', help='run only these sections (%s) and '
                    'take the others from the last full run\'s results.json; e.g. --only durable '
                    '(make bench BENCH_ONLY=durable)' % ', '.join(SECTIONS))
    ap.add_argument('--durable-dir', metavar='DIR', help='where the durable cells make their fresh '
                    'data_dir (default: the run\'s temporary folder); the disk under it is measured')
    opts = ap.parse_args(argv)
    opts.no_readme = opts.no_readme or opts.quick  # the page shows full runs only
    if opts.duration is not None and opts.duration <= 0:
        ap.error('--duration must be positive')
    if opts.only is not None:
        names = [n.strip() for n in opts.only.split(',') if n.strip()]
        unknown = [n for n in names if n not in SECTIONS]
        if not names or unknown:
            ap.error('--only wants sections among %s, not %r' % (', '.join(SECTIONS), opts.only))
        opts.only = [n for n in SECTIONS if n in names]
    if opts.durable_dir is not None and not os.path.isdir(opts.durable_dir):
        ap.error('--durable-dir %s is not a folder' % opts.durable_dir)
    return opts


NO_LOAD_GENERATOR = ('proxy', 'shared', 'python', 'big')  # sections whose clients are Python scripts


def check_binaries(opts):
    sections = opts.only or SECTIONS
    needed = [SHMGR] + ([opts.bench] if any(n not in NO_LOAD_GENERATOR for n in sections) else [])
    if 'ops' in sections:
        needed += [NOSTATS, CLI]
    missing = [path for path in needed if not os.access(path, os.X_OK)]
    if missing:
        names = ['./' + os.path.relpath(m, REPO) if m.startswith(REPO + os.sep) else m for m in missing]
        sys.exit('bench: %s %s missing (or not executable): run `make all build/nostats/shmgr` first to build %s'
                 % (' and '.join(names), 'is' if len(names) == 1 else 'are',
                    'it' if len(names) == 1 else 'them'))


def on_signal(signum, frame):
    # turn SIGTERM/SIGHUP into an exception so that the finally blocks stop the servers
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------
# The results of a run, kept as JSON

def to_json(v):
    """Results, dicts with tuple keys and tuples as JSON: each container tagged with its kind."""
    if isinstance(v, Result):
        return {'result': [v.what, v.kind, v.data, v.error]}
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {'dict': {k: to_json(x) for k, x in v.items()}}
        return {'pairs': [[to_json(k), to_json(x)] for k, x in v.items()]}
    if isinstance(v, tuple):
        return {'tuple': [to_json(x) for x in v]}
    if isinstance(v, list):
        return {'list': [to_json(x) for x in v]}
    return v


def from_json(v):
    if not isinstance(v, dict):
        return v
    (tag, x), = v.items()
    if tag == 'result':
        return Result(*x)
    if tag == 'dict':
        return {k: from_json(y) for k, y in x.items()}
    if tag == 'pairs':
        return {from_json(k): from_json(y) for k, y in x}
    if tag == 'tuple':
        return tuple(from_json(y) for y in x)
    if tag == 'list':
        return [from_json(y) for y in x]
    raise ValueError('unknown tag %r' % tag)


def save_results(opts, machine, p, res, failures):
    path = os.path.join(opts.out, SAVED)
    data = {'format': SAVED_FORMAT, 'quick': opts.quick, 'machine': machine, 'plan': to_json(p),
            'sections': {name: to_json(res[name]) for name in SECTIONS if name in res},
            'failures': [[f.section, to_json(f)] for f in failures]}
    os.makedirs(opts.out, exist_ok=True)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write('\n')
    os.replace(path + '.tmp', path)


SPLICE = 'splice'  # load_results: no saved run, but a report the --only sections can be put in


def load_results(opts):
    """The saved run that --only completes: (machine line, plan, sections, failures); exits
    with status 2 saying why when there is none to complete. Without one, --only of sections
    that SPLICEABLE lists (durable, ops, shared) can still put them into a report made before
    results.json was kept: SPLICE."""
    path = os.path.join(opts.out, SAVED)
    if not os.path.exists(path) and all(name in SPLICEABLE for name in opts.only):
        try:
            with open(os.path.join(opts.out, 'results.md'), encoding='utf-8') as f:
                first = f.read(4096)
        except OSError:
            first = ''
        if first.startswith('# ') and ('(--quick)' in first) == bool(opts.quick):
            return SPLICE
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        if data.get('format') != SAVED_FORMAT:
            raise ValueError('format %r, not %d' % (data.get('format'), SAVED_FORMAT))
        sections = {name: from_json(v) for name, v in data['sections'].items()}
        missing = [n for n in SECTIONS if n not in sections and n not in opts.only and n not in OPTIONAL]
        if missing:
            raise ValueError('it has no %s section' % ', '.join(missing))
        failures = []
        for section, f in data['failures']:
            r = from_json(f)
            r.section = section
            failures.append(r)
        plan_ = from_json(data['plan'])
    except (OSError, ValueError, KeyError, TypeError) as e:
        say('bench: --only %s keeps the other sections of the last full run, from %s: %s. Run the '
            'whole bench once (make bench) first.' % (','.join(opts.only), path, e))
        sys.exit(2)
    if bool(data.get('quick')) != bool(opts.quick):
        say('bench: %s holds a run %s --quick; this one is %s: run them alike (or the whole bench)'
            % (path, 'with' if data.get('quick') else 'without', 'with' if opts.quick else 'without'))
        sys.exit(2)
    return data['machine'], plan_, sections, failures


def section_span(lines, heading):
    """(start, end) of the section under the line heading (a '## ' line) up to the next one."""
    start = lines.index(heading)
    end = start + 1
    while end < len(lines) and not lines[end].startswith('## '):
        end += 1
    return start, end


# The sections --only can put into a report made before results.json was kept: name -> (its
# heading, its part of the report, its target lines, how the lines of its failures begin).
SPLICEABLE = {
    'durable': ('## Durable queues', durable_report, lambda r: [target_f(r)], ('- shmgr durable ',)),
    'ops': (OPS_HEADING, ops_report, lambda r: [target_g(r), target_h(r)], ('- shmgr ops ',)),
    'shared': (SHARED_HEADING, shared_report, lambda r: [target_i(r)], ('- shmgr shared ', '- CPython shared ')),
    'python': (PYTHON_HEADING, python_report, lambda r: [], ('- shmgr Manager()', '- CPython Manager()',
                                                          '- shmgr word count', '- CPython word count')),
    'big': (BIG_HEADING, big_report, lambda r: [target_j(r)], ('- shmgr big ', '- CPython big ')),
}


def splice_section(markdown, name, result):
    """The report markdown with section name put in (or replaced) before Targets, and its
    target lines in Targets (replacing those with the same letter); the rest as it is."""
    heading, section_of, targets_of, _ = SPLICEABLE[name]
    lines = markdown.rstrip('\n').split('\n')
    section = section_of(result)
    if heading in lines:
        start, end = section_span(lines, heading)
    else:
        start = end = next((i for i, line in enumerate(lines) if line in ('## Targets', '## Failures')),
                           len(lines))
    lines[start:end] = section
    for label, status, figs in targets_of(result):
        line = '- %s: **%s** — %s' % (label, status, figs)
        letter = label.split(' ', 1)[0]  # "(f)"
        if '## Targets' not in lines:
            lines += ['## Targets', '', line, '']
            continue
        start, end = section_span(lines, '## Targets')
        old = [i for i in range(start, end) if lines[i].startswith('- %s ' % letter)]
        if old:
            lines[old[0]] = line
        else:
            last = max([i for i in range(start, end) if lines[i].startswith('- (')] or [start + 1])
            lines.insert(last + 1, line)
    return '\n'.join(lines) + '\n'


def splice_sections(markdown, res, failures):
    """The report markdown (one made before results.json was kept) with the sections of res
    spliced in (splice_section) and their failures in Failures, the others' kept."""
    for name in res:
        markdown = splice_section(markdown, name, res[name])
    lines = markdown.rstrip('\n').split('\n')
    failed_lines = ['- %s %s: %s' % (LABEL.get(f.kind, f.kind), f.what, one_line(f.error, 600))
                    for f in failures]
    if '## Failures' not in lines:
        lines += ['## Failures', '']
    start, end = section_span(lines, '## Failures')
    redone = tuple(prefix for name in res for prefix in SPLICEABLE[name][3])
    kept = [x for x in lines[start + 1:end] if x.startswith('- ') and not x.startswith(redone)]
    body = kept + failed_lines
    lines[start + 1:end] = [''] + (body or ['None.'])
    return '\n'.join(lines) + '\n'


def splice_outputs(opts, res, failures):
    """--only of spliceable sections with no results.json: those sections into results.md and
    docs/performance.md as they are (the next full run writes results.json)."""
    md_path = os.path.join(opts.out, 'results.md')
    with open(md_path, encoding='utf-8') as f:
        markdown = splice_sections(f.read(), res, failures)
    sys.stdout.write(markdown)
    sys.stdout.flush()
    with open(md_path, 'w', encoding='utf-8') as f:
        f.write(markdown)
    say('put the %s section%s into %s (there is no %s to rebuild the report from: the next full '
        'run writes one)' % (', '.join(res), '' if len(res) == 1 else 's', md_path, SAVED))
    if not opts.no_readme:
        say('docs/performance.md section updated' if update_readme(markdown, os.path.join(opts.out, 'results.svg'))
            else 'docs/performance.md has no %s / %s lines: left alone' % (PAGE_BEGIN, PAGE_END))


def write_outputs(opts, markdown, svg):
    os.makedirs(opts.out, exist_ok=True)
    md_path = os.path.join(opts.out, 'results.md')
    svg_path = os.path.join(opts.out, 'results.svg')
    with open(svg_path, 'w', encoding='utf-8') as f:
        f.write(svg)
    with open(md_path, 'w', encoding='utf-8') as f:
        f.write(markdown)
    say('wrote %s and %s' % (md_path, svg_path))
    if not opts.no_readme:
        say('docs/performance.md section updated' if update_readme(markdown, svg_path) else
            'docs/performance.md has no %s / %s lines: left alone' % (PAGE_BEGIN, PAGE_END))


def run_sections(ctx, p, names):
    """Run the named sections in their order; their results by name."""
    res, servers = {}, {}
    for name in names:
        ctx.section = name
        if name == 'rates':
            res[name] = section_rates(ctx, p, servers)
            continue
        if name == 'many':
            res[name] = section_many(ctx, p, servers)
            continue
        for server in servers.values():  # what follows wants fresh servers
            if server is not None:
                server.stop()
        servers.clear()
        res[name] = {'one_core': section_one_core, 'memory': section_memory, 'park': section_park,
                     'proxy': section_proxy, 'durable': section_durable, 'ops': section_ops,
                     'shared': section_shared, 'python': section_python, 'big': section_big}[name](ctx, p)
    return res


def main(argv):
    opts = parse_args(argv)
    saved = load_results(opts) if opts.only else None
    check_binaries(opts)
    raise_nofile()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    ctx = Context(opts)
    p = plan(opts)
    names = opts.only or SECTIONS
    try:
        res = run_sections(ctx, p, names)
    except KeyboardInterrupt:
        say('interrupted: stopping the servers')
        shutil.rmtree(ctx.tmpdir, ignore_errors=True)
        return 130
    finally:
        ctx.stop_all()

    run_failures = list(ctx.failures)
    if saved == SPLICE:
        splice_outputs(opts, res, run_failures)
    else:
        if saved is None:
            machine, report_plan = machine_line(opts), p
        else:  # the other sections as the last full run left them
            machine, report_plan, sections, failures = saved
            sections.update(res)
            res = sections
            ctx.failures = [f for f in failures if f.section not in names] + run_failures
        res['machine'] = machine
        markdown = report(ctx, report_plan, res, 'results.svg')
        sys.stdout.write(markdown)
        sys.stdout.flush()
        write_outputs(opts, markdown, chart_svg(res['rates'], report_plan['duration']))
        save_results(opts, machine, report_plan, res, ctx.failures)

    if run_failures:
        say('\n%d measurement(s) failed:' % len(run_failures))
        for f in run_failures:
            say('  %s %s: %s' % (LABEL.get(f.kind, f.kind), f.what, f.error))
        say('server logs kept in %s' % ctx.tmpdir)
    else:
        shutil.rmtree(ctx.tmpdir, ignore_errors=True)
    return 1 if any(f.kind == 'shmgr' for f in run_failures) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
