"""Prometheus metrics (issue 11, item 2): with metrics_listen in the config, GET /metrics
answers in Prometheus' text format. Stock clients do known things (puts, gets, a failing
call, a parked get, a wrong key, a lock, a message over max_message, a client that goes away
holding items), then the page is fetched with curl and read with the Prometheus client
library's own parser, and every figure must equal what the clients did. Also: 404, 405 and
HEAD; silent and half-sent HTTP clients are dropped after the timeout while the managers'
clients are served at their usual speed; past the connection limit HTTP clients wait and the
server does not spin; the page with 1,000 named queues, 11,000 objects and 1,000
connections (its build time is printed); bad metrics_listen values refuse the start, saying
why; without metrics_listen no HTTP port is open; IPv6 and host names.

Needs curl and prometheus_client (Debian's python3-prometheus-client): skipped without them."""

# run.py: timeout 300

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import queue  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from harness import check, eq, note  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - depends on the interpreter
    text_string_to_metric_families = None

EXE = os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr')
KEY = harness.DEFAULT_AUTHKEY
HTTP_TIMEOUT = 10     # seconds shmgr lets an HTTP client stay silent (metrics.c)
HTTP_CONN_LIMIT = 64  # HTTP connections at once (metrics.c)
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

_dirs = []


def tmpdir():
    d = tempfile.mkdtemp(prefix='shmgr-metrics-')
    _dirs.append(d)
    return d


def write_conf(text, folder=None):
    folder = folder or tmpdir()
    path = os.path.join(folder, 'shmgr.conf.lua')
    with open(path, 'w') as f:
        f.write('-- written by test_metrics.py\n' + text)
    return path


def metrics_addr(srv):
    """HOST:PORT from the server's "metrics on" line."""
    harness.wait_until(lambda: 'metrics on ' in srv.log(), 5)
    m = re.search(r'^metrics on (\S+)$', srv.log(), re.M)
    if not check(m, 'the server says where metrics are served; log:\n%s' % srv.log()):
        harness.done()
    return m.group(1)


def curl(addr, path='/metrics', *args):
    """(status, headers dict with lower-case names, body str) of one request with curl."""
    p = subprocess.run(['curl', '-sS', '-g', '-i', '--max-time', '20'] + list(args) + ['http://%s%s' % (addr, path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        fail_text = p.stderr.decode('utf-8', 'replace')
        harness.fail('curl %s%s %s: exit %d: %s' % (addr, path, ' '.join(args), p.returncode, fail_text))
        return None, {}, ''
    head, _, body = p.stdout.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    return status, headers, body.decode('utf-8')


class Page(object):
    """One /metrics page, parsed by prometheus_client: samples by (name, labels)."""

    def __init__(self, text):
        self.text = text
        self.samples = {}  # (sample name, frozenset of label items) -> value
        self.types = {}    # sample name -> its family's type
        self.helps = {}    # sample name -> its family's help
        self.order = []    # (name, labels dict, value) in page order
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                key = (s.name, frozenset(s.labels.items()))
                check(key not in self.samples, 'one sample per name and labels: %s%r twice' % (s.name, s.labels))
                self.samples[key] = s.value
                self.types[s.name] = fam.type
                self.helps[s.name] = fam.documentation
                self.order.append((s.name, dict(s.labels), s.value))

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name):
        """{frozenset of label items: value} of every sample named name."""
        return dict((k[1], v) for k, v in self.samples.items() if k[0] == name)

    def total(self, name):
        return sum(self.series(name).values())


def scrape(addr):
    status, headers, body = curl(addr)
    eq(status, 200, 'GET /metrics status')
    return Page(body)


def call_count(page, typeid, method, name='shmgr_calls_total'):
    return page.get(name, typeid=typeid, method=method) or 0


# --------------------------------------------------------------------------
# What clients did, and what the page says

# the type of each family (by sample name), and the labels each must have
FAMILIES = {
    'shmgr_build_info': ('gauge', {'version'}),
    'shmgr_start_time_seconds': ('gauge', set()),
    'shmgr_connections_open': ('gauge', set()),
    'shmgr_connections_total': ('counter', set()),
    'shmgr_connections_turned_away_total': ('counter', {'reason'}),
    'shmgr_handshake_failures_total': ('counter', set()),
    'shmgr_limits_hit_total': ('counter', {'limit'}),
    'shmgr_bytes_received_total': ('counter', set()),
    'shmgr_bytes_sent_total': ('counter', set()),
    'shmgr_calls_total': ('counter', {'typeid', 'method'}),
    'shmgr_call_errors_total': ('counter', {'typeid', 'method'}),
    'shmgr_call_seconds_total': ('counter', {'typeid', 'method'}),
    'shmgr_calls_parked_now': ('gauge', set()),
    'shmgr_calls_parked_total': ('counter', set()),
    'shmgr_slow_calls_total': ('counter', set()),
    'shmgr_call_duration_seconds_bucket': ('histogram', {'le'}),
    'shmgr_call_duration_seconds_sum': ('histogram', set()),
    'shmgr_call_duration_seconds_count': ('histogram', set()),
    'shmgr_objects': ('gauge', {'typeid'}),
    'shmgr_shared_objects': ('gauge', set()),
    'shmgr_queue_depth': ('gauge', {'queue'}),
    'shmgr_queue_in_flight': ('gauge', {'queue'}),
    'shmgr_queue_waiters': ('gauge', {'queue', 'kind'}),
    'shmgr_queue_puts_total': ('counter', {'queue'}),
    'shmgr_queue_gets_total': ('counter', {'queue'}),
    'shmgr_queue_redelivered_total': ('counter', {'queue'}),
    'shmgr_queue_oldest_item_age_seconds': ('gauge', {'queue'}),
    'shmgr_items_redelivered_total': ('counter', set()),
    'shmgr_locks_released_total': ('counter', set()),
    'shmgr_resident_memory_bytes': ('gauge', set()),
    'shmgr_memory_used_bytes': ('gauge', set()),
    'shmgr_memory_limit_bytes': ('gauge', set()),
    'shmgr_lua_memory_bytes': ('gauge', set()),
    'shmgr_shm_segments': ('gauge', set()),
    'shmgr_shm_bytes': ('gauge', set()),
    'shmgr_shm_block_bytes': ('gauge', set()),
    'shmgr_tracked_segments': ('gauge', set()),
    'shmgr_store_bytes': ('gauge', set()),
    'shmgr_store_commits_total': ('counter', set()),
    'shmgr_store_failed_commits_total': ('counter', set()),
}


def check_shape(page, what, empty=()):
    """Every family is known, typed, helped, labelled as it should be; each has samples
    but those named in empty (families by typeid and method before any call)."""
    names = set(n for n, _, _ in page.order)
    missing = sorted(set(FAMILIES) - names - set(empty))
    eq(missing, [], '%s: families missing' % what)
    unknown = sorted(names - set(FAMILIES))
    eq(unknown, [], '%s: samples of no known family' % what)
    for name, labels, _ in page.order:
        want = FAMILIES.get(name)
        if not want:
            continue
        if page.types[name] != want[0] or set(labels) != want[1] or not page.helps[name]:
            harness.fail('%s: %s%r: type %s, help %r; want type %s, labels %s'
                         % (what, name, labels, page.types[name], page.helps[name], want[0], sorted(want[1])))
            break
    check(page.text.endswith('\n'), '%s: the page ends with a newline' % what)


def check_histogram(page, what):
    """Buckets cumulative and monotone, +Inf = count = every call counted by method."""
    buckets = sorted(((float(dict(k)['le']), v) for k, v in page.series('shmgr_call_duration_seconds_bucket').items()))
    les = [le for le, _ in buckets]
    counts = [v for _, v in buckets]
    check(les and les[-1] == float('inf'), '%s: the last bucket is +Inf: %r' % (what, les))
    eq(counts, sorted(counts), '%s: bucket counts never go down as le grows' % what)
    count = page.get('shmgr_call_duration_seconds_count')
    eq(counts[-1] if counts else None, count, '%s: the +Inf bucket equals _count' % what)
    eq(page.total('shmgr_calls_total'), count, '%s: the calls per typeid and method add up to _count' % what)
    secs = page.total('shmgr_call_seconds_total')
    hsum = page.get('shmgr_call_duration_seconds_sum')
    check(hsum is not None and abs(secs - hsum) <= 1e-9 + 1e-6 * hsum,
          '%s: call seconds per method add up to _sum: %r vs %r' % (what, secs, hsum))
    for k, n in page.series('shmgr_calls_total').items():
        e = page.samples.get(('shmgr_call_errors_total', k))
        check(e is not None and 0 <= e <= n, '%s: errors of %r: %r of %r calls' % (what, dict(k), e, n))


def check_counters_grew(before, after, what):
    for (name, labels), v in before.samples.items():
        if before.types.get(name) not in ('counter', 'histogram') or name.endswith('_sum'):
            continue
        w = after.samples.get((name, labels))
        if w is not None and w < v:
            harness.fail('%s: counter %s%r went down: %r -> %r' % (what, name, dict(labels), v, w))


def child_holding_items(srv, n):
    """A client process that gets n items of jobs, says so, and waits to be killed."""
    code = ('import harness, sys, time\n'
            'm = harness.client_manager(harness.from_env(), ["get_jobs"])\n'
            'j = m.get_jobs()\n'
            'items = [j.get(timeout=10) for _ in range(%d)]\n'
            'print("got", items)\n'
            'sys.stdout.flush()\n'
            'time.sleep(120)\n' % n)
    return harness.Child(srv, code=code)


def part_traffic():
    """Known traffic from stock clients; the figures must match it exactly."""
    from multiprocessing.connection import Client
    from multiprocessing.managers import SyncManager
    folder = tmpdir()
    os.mkdir(os.path.join(folder, 'data'))
    cfg = write_conf('metrics_listen = "127.0.0.1:0"\n'
                     'data_dir = "data"\n'
                     'limits = { max_message = 65536 }\n'
                     'local jobs = shmgr.JoinableQueue{ name = "jobs", durable = true, redeliver = true }\n'
                     'shmgr.register("get_jobs", function() return jobs end)\n'
                     'local plain = shmgr.Queue{ name = "plain" }\n'
                     'shmgr.register("get_plain", function() return plain end)\n', folder)
    with harness.server(cfg) as srv:
        addr = metrics_addr(srv)
        note('traffic: metrics on %s' % addr)
        status, headers, body = curl(addr)
        eq(status, 200, 'GET /metrics')
        eq(headers.get('content-type'), CONTENT_TYPE, 'its Content-Type')
        p0 = Page(body)
        check_shape(p0, 'first page', empty=('shmgr_calls_total', 'shmgr_call_errors_total',
                                             'shmgr_call_seconds_total'))
        version = subprocess.run([EXE, '--version'], stdout=subprocess.PIPE).stdout.decode().split()[-1]
        eq(p0.get('shmgr_build_info', version=version), 1.0, 'shmgr_build_info{version="%s"}' % version)
        started = p0.get('shmgr_start_time_seconds')
        check(started and time.time() - 120 < started <= time.time(), 'start time is now-ish: %r' % started)
        for name in ('shmgr_handshake_failures_total', 'shmgr_calls_parked_total', 'shmgr_items_redelivered_total',
                     'shmgr_connections_open', 'shmgr_connections_total', 'shmgr_call_duration_seconds_count'):
            eq(p0.get(name), 0.0, 'before any client: %s' % name)
        eq(p0.get('shmgr_queue_depth', queue='jobs'), 0.0, 'jobs is empty')
        eq(p0.get('shmgr_objects', typeid='Queue'), 2.0, 'the two queues the config declared are Queue objects')
        eq(p0.get('shmgr_shared_objects'), 0.0, 'none is shared with a client yet')

        status, headers, body = curl(addr, '/metrics', '-I')
        eq(status, 200, 'HEAD /metrics')
        eq(headers.get('content-type'), CONTENT_TYPE, 'HEAD: the Content-Type of GET')
        eq(body, '', 'HEAD: no body')
        status, headers, body = curl(addr, '/other')
        eq(status, 404, 'GET /other')
        check(body.strip(), 'a 404 says why: %r' % body)
        for path in ('/', '/metrics/', '/metricsx'):
            eq(curl(addr, path)[0], 404, 'GET %s' % path)
        eq(curl(addr, '/metrics?x=1')[0], 200, 'GET /metrics?x=1 (a query is no other page)')
        for method in ('POST', 'PUT', 'DELETE'):
            status, headers, body = curl(addr, '/metrics', '-X', method, '-d', 'x=1')
            eq(status, 405, '%s /metrics' % method)
            eq(headers.get('allow'), 'GET, HEAD', '%s /metrics: Allow' % method)
            check(body.strip(), '%s: a 405 says why: %r' % (method, body))

        # puts and gets on a durable named queue
        N, M = 7, 3
        m = harness.client_manager(srv, ['get_jobs', 'get_plain'], base=SyncManager)
        jobs, plain = m.get_jobs(), m.get_plain()
        for i in range(N):
            jobs.put(('job', i))
        got = [jobs.get(timeout=5) for _ in range(M)]
        eq(got, [('job', i) for i in range(M)], 'the items got')
        p = scrape(addr)
        eq(call_count(p, 'get_jobs', 'put'), N, 'calls_total of jobs.put')
        eq(call_count(p, 'get_jobs', 'get'), M, 'calls_total of jobs.get')
        eq(p.get('shmgr_queue_depth', queue='jobs'), N - M, 'queue depth of jobs')
        eq(p.get('shmgr_queue_in_flight', queue='jobs'), M, 'items in flight (redeliver = true) before task_done')
        eq(p.get('shmgr_queue_puts_total', queue='jobs'), N, 'puts of jobs')
        eq(p.get('shmgr_queue_gets_total', queue='jobs'), M, 'gets of jobs')
        age = p.get('shmgr_queue_oldest_item_age_seconds', queue='jobs')
        check(age is not None and 0 <= age < 60, 'the oldest item of jobs has waited a little: %r' % age)
        eq(p.get('shmgr_queue_oldest_item_age_seconds', queue='plain'), 0.0, 'an empty queue: age 0')
        check(p.get('shmgr_store_commits_total') > 0, 'the durable puts were committed: %r'
              % p.get('shmgr_store_commits_total'))
        eq(p.get('shmgr_store_failed_commits_total'), 0.0, 'no commit failed')
        check(p.get('shmgr_store_bytes') > 0, 'the store has bytes: %r' % p.get('shmgr_store_bytes'))
        for _ in range(M):
            jobs.task_done()
        p = scrape(addr)
        eq(p.get('shmgr_queue_in_flight', queue='jobs'), 0, 'none in flight after task_done')
        eq(call_count(p, 'get_jobs', 'task_done'), M, 'calls_total of task_done')

        # a call that fails
        e = harness.raises(queue.Empty, plain.get_nowait)
        check(e is not None, 'get_nowait on an empty queue raises Empty')
        p = scrape(addr)
        eq(call_count(p, 'get_plain', 'get_nowait'), 1, 'calls_total of the failing get_nowait')
        eq(call_count(p, 'get_plain', 'get_nowait', 'shmgr_call_errors_total'), 1, 'call_errors_total of it')
        eq(p.total('shmgr_call_errors_total'), 1, 'and no other call failed')

        # a parked get
        parked0 = p.get('shmgr_calls_parked_total')
        box = harness.run_thread(lambda: plain.get(timeout=30))
        harness.wait_until(lambda: scrape(addr).get('shmgr_queue_waiters', queue='plain', kind='get') == 1, 5)
        p = scrape(addr)
        eq(p.get('shmgr_queue_waiters', queue='plain', kind='get'), 1, 'one get waits on plain')
        eq(p.get('shmgr_queue_waiters', queue='plain', kind='put'), 0, 'no put waits on plain')
        eq(p.get('shmgr_queue_waiters', queue='jobs', kind='get'), 0, 'none waits on jobs')
        eq(p.get('shmgr_calls_parked_now'), 1, 'one call parked now')
        eq(p.get('shmgr_calls_parked_total'), parked0 + 1, 'parked ever: one more')
        eq(call_count(p, 'get_plain', 'get'), 0, 'a parked call is counted when it ends')
        plain.put('wake')
        check(box['done'].wait(10), 'the parked get returns')
        eq(box.get('result'), 'wake', 'and gets the item')
        p = scrape(addr)
        eq(p.get('shmgr_queue_waiters', queue='plain', kind='get'), 0, 'no get waits any more')
        eq(p.get('shmgr_calls_parked_now'), 0, 'no call parked now')
        eq(call_count(p, 'get_plain', 'get'), 1, 'calls_total of the get that waited')

        # a wrong key
        eq(p.get('shmgr_handshake_failures_total'), 0, 'no handshake failed yet')
        try:
            Client(srv.address, authkey=b'not the key')
            harness.fail('a client with a wrong key got in')
        except Exception:
            pass
        harness.wait_until(lambda: scrape(addr).get('shmgr_handshake_failures_total') == 1, 3)
        eq(scrape(addr).get('shmgr_handshake_failures_total'), 1, 'one failed handshake')

        # a lock
        lock = m.Lock()
        lock.acquire()
        lock.release()
        p = scrape(addr)
        eq(call_count(p, 'Lock', 'acquire'), 1, 'calls_total of Lock.acquire')
        eq(call_count(p, 'Lock', 'release'), 1, 'calls_total of Lock.release')
        eq(p.get('shmgr_objects', typeid='Lock'), 1, 'one Lock object')
        eq(p.get('shmgr_shared_objects'), m._number_of_objects(), 'shared objects = number_of_objects')

        # a call naming no object: counted under typeid and method "(none)", so that the
        # calls by typeid and method still add up to every call
        c = harness.raw_client(srv)
        c.send((None, 'accept_connection', ('test_metrics',), {}))
        c.recv()
        c.send(('123456789abc', 'get', (), {}))
        reply = c.recv()
        c.close()
        check(reply[0] == '#TRACEBACK' and 'KeyError' in reply[1], 'an unknown ident: a KeyError: %r' % (reply,))
        p = scrape(addr)
        eq(call_count(p, '(none)', '(none)'), 1, 'calls_total{typeid="(none)",method="(none)"}')
        eq(call_count(p, '(none)', '(none)', 'shmgr_call_errors_total'), 1, 'call_errors_total of it')

        # connections open and accepted
        p = scrape(addr)
        open0, total0 = p.get('shmgr_connections_open'), p.get('shmgr_connections_total')
        raws = [harness.raw_client(srv) for _ in range(5)]
        harness.wait_until(lambda: scrape(addr).get('shmgr_connections_open') == open0 + 5, 3)
        p = scrape(addr)
        eq(p.get('shmgr_connections_open'), open0 + 5, 'five connections more open')
        eq(p.get('shmgr_connections_total'), total0 + 5, 'five connections more accepted')
        for c in raws:
            c.close()
        harness.wait_until(lambda: scrape(addr).get('shmgr_connections_open') == open0, 3)
        eq(scrape(addr).get('shmgr_connections_open'), open0, 'and fewer again once they close')

        # a limit hit
        eq(p.get('shmgr_limits_hit_total', limit='max_message'), 0, 'max_message not hit yet')
        big = harness.raw_client(srv)
        big.send_bytes(b'x' * 70000)
        try:
            big.recv()
        except Exception:
            pass
        big.close()
        harness.wait_until(lambda: scrape(addr).get('shmgr_limits_hit_total', limit='max_message') == 1, 3)
        eq(scrape(addr).get('shmgr_limits_hit_total', limit='max_message'), 1, 'max_message hit once')

        # a client that goes away holding items: they are redelivered
        child = child_holding_items(srv, 2)
        child.expect('got')
        p = scrape(addr)
        eq(p.get('shmgr_queue_in_flight', queue='jobs'), 2, 'two items in flight on the child')
        eq(p.get('shmgr_queue_depth', queue='jobs'), N - M - 2, 'the rest in jobs')
        child.kill()
        harness.wait_until(lambda: scrape(addr).get('shmgr_queue_in_flight', queue='jobs') == 0, 5)
        p = scrape(addr)
        eq(p.get('shmgr_queue_in_flight', queue='jobs'), 0, 'none in flight once the child is gone')
        eq(p.get('shmgr_queue_depth', queue='jobs'), N - M, 'its items back in jobs')
        eq(p.get('shmgr_queue_redelivered_total', queue='jobs'), 2, 'redelivered from jobs')
        eq(p.get('shmgr_items_redelivered_total'), 2, 'redelivered in all')
        eq(p.get('shmgr_queue_gets_total', queue='jobs'), M + 2, 'gets of jobs, the child\'s too')
        eq(call_count(p, 'get_jobs', 'get'), M + 2, 'calls_total of jobs.get, the child\'s too')

        # the whole page, last
        check_shape(p, 'last page')
        check_histogram(p, 'last page')
        check_counters_grew(p0, p, 'first to last page')
        check(p.get('shmgr_bytes_received_total') > 0 and p.get('shmgr_bytes_sent_total') > 0,
              'bytes were counted both ways')
        check(p.get('shmgr_resident_memory_bytes') > 1 << 20, 'resident memory: %r' % p.get('shmgr_resident_memory_bytes'))
        check(p.get('shmgr_lua_memory_bytes') > 0, 'Lua memory: %r' % p.get('shmgr_lua_memory_bytes'))
        eq(set(dict(k)['queue'] for k in p.series('shmgr_queue_depth')), {'jobs', 'plain'},
           'per-queue series for the named queues only')
        m.Queue()  # a queue a client makes has no series
        eq(len(scrape(addr).series('shmgr_queue_depth')), 2, 'a client\'s queue gets no series')
        note('traffic: %d samples, %d bytes; %d calls' % (len(p.order), len(p.text),
                                                          p.get('shmgr_call_duration_seconds_count')))


def open_silent(addr, n, partial):
    """n TCP connections to addr that send nothing (or, with partial, half a request line)."""
    host, _, port = addr.rpartition(':')
    socks = []
    for _ in range(n):
        s = socket.create_connection((host.strip('[]'), int(port)), timeout=5)
        if partial:
            s.sendall(b'GET /metr')
        socks.append(s)
    return socks


def closed_by_peer(s, wait):
    """True when the server has closed s (EOF or reset) within wait seconds."""
    s.settimeout(wait)
    try:
        return s.recv(1) == b''
    except socket.timeout:
        return False
    except OSError:
        return True


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def part_silent():
    """Silent and half-sent HTTP clients are dropped after the timeout; past the connection
    limit the rest wait in the listen backlog, and nothing spins; meanwhile the managers'
    clients are served as fast as before."""
    cfg = write_conf('metrics_listen = "127.0.0.1:0"\n')
    with harness.server(cfg) as srv:
        addr = metrics_addr(srv)
        m = harness.sync_manager(srv)
        q = m.Queue()
        q.put(0)  # the proxy's connection is made
        q.get()

        def call_latencies(seconds, every=None):
            lats, t_end, next_scrape = [], time.time() + seconds, time.time()
            while time.time() < t_end:
                t = time.perf_counter()
                q.put(1)
                q.get()
                lats.append(time.perf_counter() - t)
                if every and time.time() >= next_scrape:
                    eq(curl(addr)[0], 200, 'GET /metrics while the silent clients are open')
                    next_scrape = time.time() + every
            return lats

        base = sorted(call_latencies(2.0))
        t0 = time.time()
        silent = open_silent(addr, 25, False) + open_silent(addr, 25, True)
        lats = call_latencies(3.0, every=1.0)
        check(not any(closed_by_peer(s, 0.01) for s in silent), '50 silent clients still open after 3 s')
        # past the limit: the extra ones wait in the backlog until a slot frees, and the
        # loop does not spin on a listener it cannot serve
        extra = open_silent(addr, HTTP_CONN_LIMIT - 50 + 10, False)
        cpu0 = cpu_seconds(srv.pid)
        time.sleep(2.0)  # no calls meanwhile: what the server burns is the listener's
        used = cpu_seconds(srv.pid) - cpu0
        check(used < 0.5, 'the server does not spin with its HTTP connections full: %.2f s CPU in 2 s' % used)
        lats += call_latencies(max(0.0, t0 + HTTP_TIMEOUT - 0.5 - time.time()))
        first = [s for s in silent if not closed_by_peer(s, max(0.1, t0 + HTTP_TIMEOUT + 3 - time.time()))]
        eq(len(first), 0, 'the 50 silent HTTP clients are dropped after the timeout (%.1f s)' % (time.time() - t0))
        # those from the backlog are served (and dropped in turn) once the first ones go
        left = [s for s in extra if not closed_by_peer(s, max(0.1, t0 + 2 * HTTP_TIMEOUT + 5 - time.time()))]
        eq(len(left), 0, 'and the ones past the limit after theirs (%.1f s)' % (time.time() - t0))
        for s in silent + extra:
            s.close()
        eq(curl(addr)[0], 200, 'GET /metrics answers again')
        lats.sort()

        def ms(xs, f):
            return 1e3 * xs[min(len(xs) - 1, int(len(xs) * f))]

        note('silent: a put and a get alone: median %.3f ms, p99 %.3f ms, max %.3f ms (%d pairs); with %d silent '
             'HTTP clients: median %.3f ms, p99 %.3f ms, max %.3f ms (%d pairs)'
             % (ms(base, .5), ms(base, .99), 1e3 * base[-1], len(base), len(silent) + len(extra),
                ms(lats, .5), ms(lats, .99), 1e3 * lats[-1], len(lats)))
        # generous bounds (the machine may be busy): a loop blocked on an HTTP client would
        # stall calls for seconds
        check(lats[-1] < 1.0, 'no call waits on the HTTP side: slowest %.1f ms' % (1e3 * lats[-1]))
        check(ms(lats, .5) < 5 * ms(base, .5) + 2, 'the median call is about as fast as without them: %.3f vs %.3f ms'
              % (ms(lats, .5), ms(base, .5)))


def part_size():
    """The page for 1,000 named queues, 11,000 objects and 1,000 connections: whole, and
    quick to build."""
    n_named, n_plain, n_conns = 1000, 10000, 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n_conns + 200:
        harness.skip_part('size', 'the open-file limit (%d) is below %d' % (hard, n_conns + 200))
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cfg = write_conf('metrics_listen = "127.0.0.1:0"\n'
                     'log_level = "debug"\n'
                     'local keep = {}\n'
                     'for i = 1, %d do keep[#keep + 1] = shmgr.Queue{ name = string.format("q%%04d", i) } end\n'
                     'for i = 1, %d do keep[#keep + 1] = shmgr.Queue() end\n'
                     'shmgr.register("get_q", function(i) return keep[i] end)\n' % (n_named, n_plain))
    with harness.server(cfg) as srv:
        addr = metrics_addr(srv)
        conns = [harness.raw_client(srv) for _ in range(n_conns)]
        harness.wait_until(lambda: scrape(addr).get('shmgr_connections_open') == n_conns, 5)
        t = time.perf_counter()
        p = scrape(addr)
        fetched = time.perf_counter() - t
        for _ in range(4):
            scrape(addr)
        eq(p.get('shmgr_connections_open'), n_conns, 'connections open')
        eq(len(p.series('shmgr_queue_depth')), n_named, 'a depth per named queue')
        eq(len(p.series('shmgr_queue_waiters')), 3 * n_named, 'three waiter kinds per named queue')
        eq(p.get('shmgr_objects', typeid='Queue'), n_named + n_plain, 'every queue counted')
        check_histogram(p, 'big page')
        times = [float(x) for x in re.findall(r'metrics: page of \d+ bytes built in ([0-9.]+) ms', srv.log())]
        check(len(times) >= 5, 'the build time of each page is logged at debug: %r' % times)
        if times:
            note('size: %d named queues, %d objects, %d connections: a page of %d bytes, %d samples, '
                 'built in %.2f ms (median of %d; slowest %.2f ms), fetched and parsed in %.1f ms'
                 % (n_named, n_named + n_plain, n_conns, len(p.text.encode()), len(p.order),
                    sorted(times)[len(times) // 2], len(times), max(times), fetched * 1e3))
            # a few ms (tens under ASan on a busy machine); the bound catches work that grows
            # faster than the figures, which would take seconds here
            check(sorted(times)[len(times) // 2] < 250, 'the page is built in well under 250 ms')
        for c in conns:
            c.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def refused(cfg, wants, what):
    """./shmgr on cfg must refuse to start: exit status 1, no "metrics on", wants in its log."""
    env = dict(os.environ)
    env['SHMGR_AUTHKEY'] = KEY.decode('ascii')
    p = subprocess.Popen([EXE, '--config', cfg, '--listen', '127.0.0.1:0'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True, preexec_fn=harness._child_setup)
    try:
        out = p.communicate(timeout=30)[0].decode('utf-8', 'replace')
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0].decode('utf-8', 'replace')
        harness.fail('%s: shmgr did not exit; output:\n%s' % (what, out))
        return
    eq(p.returncode, 1, '%s: exit status' % what)
    check(not re.search(r'^metrics on', out, re.M), '%s: no metrics listener' % what)
    check(wants in out, '%s: says %r; output:\n%s' % (what, wants, out))
    note('%s: %s' % (what, [line for line in out.splitlines() if 'metrics' in line][-1:]))


def listening_ports(pid):
    """The TCP ports process pid listens on, from /proc."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        mt = re.match(r'socket:\[(\d+)\]$', target)
        if mt:
            inodes.add(mt.group(1))
    ports = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == '0A' and parts[9] in inodes:
                    ports.append(int(parts[1].rsplit(':', 1)[1], 16))
    return sorted(ports)


def part_config():
    """Bad addresses refuse the start; no address, no port; IPv6 literals and names."""
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    for value, wants in (('"127.0.0.1:99999"', "bad metrics_listen '127.0.0.1:99999'"),
                         ('"127.0.0.1:http"', "bad metrics_listen '127.0.0.1:http'"),
                         ('"no-such-host.invalid:9150"', "metrics_listen 'no-such-host.invalid:9150'"),
                         ('"127.0.0.1:%d"' % port, 'cannot serve metrics on 127.0.0.1:%d (metrics_listen): '
                                                   'Address already in use' % port),
                         ('9150', 'metrics_listen must be an address'),
                         ('"9150"', 'metrics_listen must be an address')):
        refused(write_conf('metrics_listen = %s\n' % value), wants, 'metrics_listen = %s' % value)
    busy.close()

    with harness.server() as srv:
        time.sleep(0.3)
        check('metrics on' not in srv.log(), 'without metrics_listen: no metrics line')
        eq(listening_ports(srv.pid), [srv.address[1]], 'without metrics_listen: only the managers\' port is open')
    with harness.server(write_conf('metrics_listen = "127.0.0.1:0"\n')) as srv:
        addr = metrics_addr(srv)
        eq(listening_ports(srv.pid), sorted([srv.address[1], int(addr.rsplit(':', 1)[1])]),
           'with metrics_listen: the managers\' port and the metrics port')

    try:
        s6 = socket.socket(socket.AF_INET6)
        s6.bind(('::1', 0))
        s6.close()
    except OSError as e:
        harness.skip_part('IPv6', 'cannot bind ::1: %s' % e)
    else:
        with harness.server(write_conf('metrics_listen = "[::1]:0"\n')) as srv:
            addr = metrics_addr(srv)
            check(re.match(r'^\[::1\]:\d+$', addr), 'an IPv6 literal: metrics on %s' % addr)
            eq(curl(addr)[0], 200, 'GET /metrics over IPv6')
    with harness.server(write_conf('metrics_listen = "localhost:0"\n')) as srv:
        addr = metrics_addr(srv)
        check(re.match(r'^(127\.0\.0\.1|\[::1\]):\d+$', addr), 'a host name: metrics on %s' % addr)
        eq(curl(addr)[0], 200, 'GET /metrics on a name')


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("the metrics listener is shmgr's own; CPython's server has none")
    if text_string_to_metric_families is None:
        harness.skip('prometheus_client is not importable by %s (Debian: python3-prometheus-client)'
                     % sys.executable)
    if not shutil.which('curl'):
        harness.skip('curl not found (Debian: curl)')
    only = os.environ.get('METRICS_ONLY', '')
    try:
        for name, part in (('traffic', part_traffic), ('silent', part_silent), ('size', part_size),
                           ('config', part_config)):
            if only and only not in name:
                continue
            note('== %s' % name)
            part()
    finally:
        for d in _dirs:
            shutil.rmtree(d, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
