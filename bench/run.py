#!/usr/bin/env python3
"""Benchmark shmgr against CPython's own manager server and write bench/results.md, bench/results.svg."""

import argparse
import datetime
import html
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHMGR = os.path.join(REPO, 'shmgr')
BENCH = os.path.join(REPO, 'shmgr-bench')
CONFIG = 'shmgr.conf.lua'
PROXY_LATENCY = os.path.join(HERE, 'proxy_latency.py')
README = os.path.join(REPO, 'README.md')
README_BEGIN = '<!-- bench:begin -->'
README_END = '<!-- bench:end -->'

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

    def __init__(self, kind, transport, ctx):
        Server._count += 1
        self.kind = kind
        self.transport = transport
        self.ctx = ctx
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
            argv = [SHMGR, '--config', CONFIG, '--listen', self.addr]
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

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
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

    def record(self, result):
        if not result.ok:
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


def run_json(argv, timeout):
    """Run a tool that prints one JSON object; (data or None, error or None)."""
    try:
        proc = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
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


def start_server(ctx, kind, transport='tcp'):
    """A started Server, or None after recording why it could not start."""
    try:
        return Server(kind, transport, ctx).start()
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


def targets(p, rates, many, mem, park, proxy):
    """[(label, 'met' | 'MISSED' | 'not measured', figures)]."""
    return [target_a(rates), target_b(rates), target_c(proxy), target_d(p, many, park),
            target_e(p, mem)]


# --------------------------------------------------------------------------
# The report

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


def report(ctx, p, rates, one_core, many, mem, park, proxy, svg_link):
    opts = ctx.opts
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
    L += [machine_line(opts), '']

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

    L += ['## Targets', '']
    for label, status, figs in targets(p, rates, many, mem, park, proxy):
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
    """Replace what lies between the README's bench markers (when it has both)."""
    try:
        with open(README, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except OSError:
        return False
    stripped = [line.strip() for line in lines]
    if README_BEGIN not in stripped or README_END not in stripped:
        return False
    begin, end = stripped.index(README_BEGIN), stripped.index(README_END)
    if end < begin:
        return False
    # the README's own heading stands for the report's title; its sections go one level down
    body = []
    for line in markdown.rstrip('\n').split('\n'):
        if line.startswith('# '):
            continue
        body.append('#' + line if line.startswith('#') else line)
    link = os.path.relpath(svg_path, REPO)
    body = [line.replace('](results.svg)', '](%s)' % link) for line in body]
    lines[begin + 1:end] = [''] + body + ['']
    with open(README, 'w', encoding='utf-8') as f:
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


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--quick', action='store_true', help='short durations and small counts (a smoke run)')
    ap.add_argument('--duration', type=float, metavar='S', help='seconds per rate cell (default 3)')
    ap.add_argument('--out', default=HERE, metavar='DIR', help='where results.md and results.svg go '
                    '(default bench/)')
    ap.add_argument('--no-readme', action='store_true', help='leave README.md alone (always so with --quick)')
    ap.add_argument('--bench', default=BENCH, metavar='PATH', help='the load generator (default '
                    './shmgr-bench)')
    opts = ap.parse_args(argv)
    opts.no_readme = opts.no_readme or opts.quick  # the README shows full runs only
    if opts.duration is not None and opts.duration <= 0:
        ap.error('--duration must be positive')
    return opts


def check_binaries(opts):
    missing = [path for path in (SHMGR, opts.bench) if not os.access(path, os.X_OK)]
    if missing:
        names = ['./' + os.path.relpath(m, REPO) if m.startswith(REPO + os.sep) else m for m in missing]
        sys.exit('bench: %s %s missing (or not executable): run `make` first to build %s'
                 % (' and '.join(names), 'is' if len(names) == 1 else 'are',
                    'it' if len(names) == 1 else 'them'))


def on_signal(signum, frame):
    # turn SIGTERM/SIGHUP into an exception so that the finally blocks stop the servers
    raise SystemExit(128 + signum)


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
        say('README.md section updated' if update_readme(markdown, svg_path) else
            'README.md has no %s / %s lines: left alone' % (README_BEGIN, README_END))


def main(argv):
    opts = parse_args(argv)
    check_binaries(opts)
    raise_nofile()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    ctx = Context(opts)
    p = plan(opts)
    servers = {}
    try:
        rates = section_rates(ctx, p, servers)
        many = section_many(ctx, p, servers)
        for server in servers.values():  # what follows wants fresh servers
            if server is not None:
                server.stop()
        one_core = section_one_core(ctx, p)
        mem = section_memory(ctx, p)
        park = section_park(ctx, p)
        proxy = section_proxy(ctx, p)
    except KeyboardInterrupt:
        say('interrupted: stopping the servers')
        shutil.rmtree(ctx.tmpdir, ignore_errors=True)
        return 130
    finally:
        ctx.stop_all()

    markdown = report(ctx, p, rates, one_core, many, mem, park, proxy, 'results.svg')
    sys.stdout.write(markdown)
    sys.stdout.flush()
    write_outputs(opts, markdown, chart_svg(rates, p['duration']))

    if ctx.failures:
        say('\n%d measurement(s) failed:' % len(ctx.failures))
        for f in ctx.failures:
            say('  %s %s: %s' % (LABEL.get(f.kind, f.kind), f.what, f.error))
        say('server logs kept in %s' % ctx.tmpdir)
    else:
        shutil.rmtree(ctx.tmpdir, ignore_errors=True)
    return 1 if any(f.kind == 'shmgr' for f in ctx.failures) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
