#!/usr/bin/env python3
"""Move big values through a manager server with a stock client.

  big_values.py roundtrip ADDRESS AUTHKEY ROUNDS SIZE [PID]
      q = m.Queue() through SyncManager; then ROUNDS times q.put(VALUE) and q.get(), each call
      timed alone with time.perf_counter (VALUE: SIZE bytes, made before the clock starts).
      Also the CPU time of the rounds, per round: this client's (getrusage), and with PID the
      server's (utime + stime of /proc/PID/stat, all its threads, dead ones included). The
      client is one thread: no server can make a round shorter than the client's CPU time.
  big_values.py memory ADDRESS AUTHKEY PID K SIZE
      l = m.list(); the server's memory (/proc/PID/status) read; K distinct values of SIZE
      bytes each appended (bytes([i]) * SIZE, so that nothing is shared; each dropped by this
      process after its append); the server's memory read again. The server's peak (VmHWM) is
      reset before the appends when /proc/PID/clear_refs lets us, so that it is the peak of
      the appends.

Each prints one JSON object; a call that fails (a limit of the server, a closed connection)
gives {"ok": false, "error": ...} with what was measured before it. ADDRESS is HOST:PORT or
unix:PATH.
"""

import gc
import json
import os
import resource
import statistics
import sys
import time
from multiprocessing.managers import SyncManager

from proxy_latency import parse_address  # bench/, the script's own folder

STATUS_KEYS = ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile', 'RssShmem')


def summary(values):
    return {'median_s': statistics.median(values), 'min_s': min(values), 'max_s': max(values),
            'runs': values}


def describe(e):
    """One line for an exception; of a RemoteError (the server's traceback between rules of
    dashes), its last line: what the server said."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip().strip('-')]
    return '%s: %s' % (type(e).__name__, ' '.join((lines[-1] if lines else '(no message)').split())[:400])


def connect(address, authkey):
    m = SyncManager(address=address, authkey=authkey)
    m.connect()
    return m


def own_cpu():
    """This process's CPU seconds so far (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_cpu(pid):
    """The CPU seconds of process pid so far (user + system, all threads), or None without /proc."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def roundtrip(address, authkey, rounds, size, pid=None):
    out = {'what': 'roundtrip', 'size': size, 'rounds': rounds, 'python': '%d.%d.%d' % sys.version_info[:3]}
    puts, gets, both = [], [], []
    m = connect(address, authkey)
    q = m.Queue()
    value = b'x' * size
    clock = time.perf_counter
    cpu0, server0 = own_cpu(), server_cpu(pid) if pid else None
    try:
        for _ in range(rounds):
            t0 = clock()
            q.put(value)
            t1 = clock()
            got = q.get()
            t2 = clock()
            if len(got) != size:
                raise RuntimeError('got %d bytes back, not %d' % (len(got), size))
            del got
            puts.append(t1 - t0)
            gets.append(t2 - t1)
            both.append(t2 - t0)
    except Exception as e:
        out.update(ok=False, errors=1, error='round %d: %s' % (len(puts) + 1, describe(e)))
    cpu1, server1 = own_cpu(), server_cpu(pid) if pid else None
    if puts:
        out.update(put=summary(puts), get=summary(gets), put_get=summary(both),
                   client_cpu_s=(cpu1 - cpu0) / len(puts))
        if server0 is not None and server1 is not None:
            out['server_cpu_s'] = (server1 - server0) / len(puts)
    return out


def status(pid):
    """The server's memory from /proc/PID/status, in KiB."""
    figures = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in STATUS_KEYS:
                figures[key] = int(rest.split()[0])
    return figures


def reset_peak(pid):
    """Set the server's VmHWM to its VmRSS now (writing 5 to clear_refs); whether it worked."""
    try:
        with open('/proc/%d/clear_refs' % pid, 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def settled(pid, timeout=3.0):
    """status(pid) once VmRSS stops moving (the server may still be freeing a request's buffers
    when the reply reaches us)."""
    last = status(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = status(pid)
        if now['VmRSS'] == last['VmRSS']:
            return now
        last = now
    return last


def memory(address, authkey, pid, k, size):
    out = {'what': 'memory', 'size': size, 'k': k, 'python': '%d.%d.%d' % sys.version_info[:3]}
    m = connect(address, authkey)
    lst = m.list()
    out['before'] = settled(pid)
    out['peak_reset'] = reset_peak(pid)
    stored = 0
    started = time.perf_counter()
    try:
        for i in range(k):
            value = bytes([i + 1]) * size
            lst.append(value)
            del value
            gc.collect()
            stored += 1
        count = len(lst)
        if count != k:
            raise RuntimeError('the list holds %d values, not %d' % (count, k))
    except Exception as e:
        out.update(ok=False, errors=1, error='value %d: %s' % (stored + 1, describe(e)))
    out['seconds'] = time.perf_counter() - started
    out['stored'] = stored
    out['after'] = settled(pid)
    return out


def main(argv):
    usage = 'usage: %s roundtrip ADDRESS AUTHKEY ROUNDS SIZE [PID] | memory ADDRESS AUTHKEY PID K SIZE' % argv[0]
    if len(argv) < 2 or (argv[1], len(argv)) not in (('roundtrip', 6), ('roundtrip', 7), ('memory', 7)):
        sys.exit(usage)
    address, authkey = parse_address(argv[2]), argv[3].encode('utf-8')
    if argv[1] == 'roundtrip':
        rounds, size = int(argv[4]), int(argv[5])
        if rounds < 1 or size < 1:
            sys.exit(usage)
        out = roundtrip(address, authkey, rounds, size, int(argv[6]) if len(argv) == 7 else None)
    else:
        pid, k, size = int(argv[4]), int(argv[5]), int(argv[6])
        if k < 1 or k > 255 or size < 1:
            sys.exit(usage + ' (K from 1 to 255)')
        out = memory(address, authkey, pid, k, size)
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == '__main__':
    try:
        main(sys.argv)
    except KeyboardInterrupt:
        sys.exit('big_values: interrupted')
    except Exception as e:  # any failure: one clear line, non-zero exit
        sys.exit('big_values: %s' % describe(e))
