#!/usr/bin/env python3
"""Time a manager's life as a Python program sees it: python_start.py shmgr|cpython N.

From the call of Manager() to the first answered call on a proxy (a dict made and read),
and from shutdown() called to shutdown() returned: shmgr.Manager() (a shmgr process) against
multiprocessing.Manager() (CPython's own server process). Prints one JSON object: each
phase's median, min and max in milliseconds, over N managers made one after the other."""

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'python'))  # the checkout's package

WARMUP = 2  # the first managers also pay for imports and a cold page cache


def one(make):
    t0 = time.perf_counter()
    m = make()
    d = m.dict()
    d['k'] = 1
    assert d['k'] == 1
    t1 = time.perf_counter()
    del d
    m.shutdown()
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def summary(values):
    return {'median_ms': statistics.median(values), 'min_ms': min(values), 'max_ms': max(values)}


def main(argv):
    if len(argv) != 3 or argv[1] not in ('shmgr', 'cpython'):
        sys.exit('usage: %s shmgr|cpython N' % argv[0])
    if argv[1] == 'shmgr':
        import shmgr
        make = shmgr.Manager
    else:
        import multiprocessing
        make = multiprocessing.Manager
    n = int(argv[2])
    for _ in range(WARMUP):
        one(make)
    starts, stops = [], []
    for _ in range(n):
        a, b = one(make)
        starts.append(a)
        stops.append(b)
    print(json.dumps({'kind': argv[1], 'n': n, 'python': '%d.%d.%d' % sys.version_info[:3],
                      'to_first_call': summary(starts), 'shutdown': summary(stops)}))


if __name__ == '__main__':
    main(sys.argv)
