#!/usr/bin/env python3
"""Time a stock SyncManager client creating and dropping a dict proxy: proxy_latency.py ADDRESS AUTHKEY N."""

import json
import math
import statistics
import sys
import time
from multiprocessing.managers import SyncManager

WARMUP = 3


def parse_address(text):
    """'unix:PATH' -> PATH (a Unix socket, as multiprocessing spells it); 'HOST:PORT' -> (HOST, PORT)."""
    if text.startswith('unix:'):
        return text[len('unix:'):]
    host, sep, port = text.rpartition(':')
    if not sep or not host or not port.isdigit():
        raise ValueError('address must be HOST:PORT or unix:PATH, not %r' % text)
    return host.strip('[]'), int(port)  # [::1]:PORT -> ('::1', PORT)


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def one_iteration(manager):
    # Creating the proxy costs three fresh authenticated connections (create,
    # the proxy's incref, the manager's decref of the creation reference);
    # dropping the last reference runs the proxy's finalizer at once, which
    # opens a fourth connection for its decref.
    d = manager.dict()
    del d


def main(argv):
    if len(argv) != 4:
        sys.exit('usage: %s ADDRESS AUTHKEY N' % argv[0])
    address = parse_address(argv[1])
    authkey = argv[2].encode('utf-8')
    n = int(argv[3])
    if n < 1:
        raise ValueError('N must be at least 1, not %d' % n)

    manager = SyncManager(address=address, authkey=authkey)
    manager.connect()
    for _ in range(WARMUP):
        one_iteration(manager)

    times_ms = []
    for _ in range(n):
        start = time.perf_counter()
        one_iteration(manager)
        times_ms.append((time.perf_counter() - start) * 1000.0)

    times_ms.sort()
    print(json.dumps({
        'n': n,
        'median_ms': round(statistics.median(times_ms), 4),
        'p90_ms': round(percentile(times_ms, 0.9), 4),
        'min_ms': round(times_ms[0], 4),
        'max_ms': round(times_ms[-1], 4),
    }))


if __name__ == '__main__':
    try:
        main(sys.argv)
    except KeyboardInterrupt:
        sys.exit('proxy_latency: interrupted')
    except Exception as e:  # any failure: one clear line, non-zero exit
        sys.exit('proxy_latency: %s: %s' % (type(e).__name__, e))
