#!/usr/bin/env python3
"""Hold N authenticated, idle connections to a manager server with a stock client, a third of
them as a proxy's (after accept_connection), until stdin closes.

usage: BENCH_AUTHKEY=KEY hold_conns.py ADDR N      (ADDR: HOST:PORT or unix:PATH)

Prints one JSON line once all are open: {"ok": true, "opened": N, "accepted": M, "seconds": S}
(or {"ok": false, "error": ...} at the first failure), then waits for EOF on stdin and closes
them. bench/run.py's ops section uses it to time `shmgr-cli clients` from another process:
this one holds the descriptors, so that starting the CLI does not pay for them."""

import json
import os
import resource
import sys
import time
from multiprocessing.connection import Client
from multiprocessing.managers import dispatch


def main(argv):
    addr, n, key = argv[1], int(argv[2]), os.environb[b'BENCH_AUTHKEY']
    if addr.startswith('unix:'):
        address = addr[5:]
    else:
        host, port = addr.rsplit(':', 1)
        address = (host, int(port))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns, accepted = [], 0
    started = time.monotonic()
    try:
        for i in range(n):
            conn = Client(address, authkey=key)
            conns.append(conn)
            if i % 3 == 0:  # as BaseProxy._connect does, under the process's name
                dispatch(conn, None, 'accept_connection', ('Process-%d' % (i + 1),))
                accepted += 1
    except Exception as e:  # any failure is the answer: report it and let go
        print(json.dumps({'ok': False, 'opened': len(conns), 'accepted': accepted,
                          'error': '%s: %s' % (type(e).__name__, e)}), flush=True)
        return 1
    print(json.dumps({'ok': True, 'opened': len(conns), 'accepted': accepted,
                      'seconds': time.monotonic() - started}), flush=True)
    sys.stdin.read()  # until the caller closes our stdin
    for conn in conns:
        conn.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
