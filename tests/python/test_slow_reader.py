"""A client that sends requests and never reads the replies: shmgr stops reading its requests
once replies pile up (so its memory stays bounded), goes on serving everyone else, and drops
that client after limits.send_timeout seconds; a client that reads slowly is served whole."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pickle  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

BIG = 100000  # a list of this many ints: each reply to copy() is about 300 KB


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def frame(obj):
    data = pickle.dumps(obj, 4)
    return struct.pack('!i', len(data)) + data


def flood(c, ident, seconds, limit=None):
    """Send copy() requests without reading, for at most `seconds` (and `limit` requests):
    (socket, how many were sent, whether the server stopped taking them)."""
    sock = socket.socket(fileno=os.dup(c.fileno()))
    sock.settimeout(0.5)
    req, sent, deadline = frame((ident, 'copy', (), {})), 0, time.time() + seconds
    while time.time() < deadline and (limit is None or sent < limit):
        try:
            sock.sendall(req)
            sent += 1
        except socket.timeout:  # the server stopped reading us (the kernel's buffers are full)
            return sock, sent, True
    return sock, sent, False


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("send_timeout is shmgr's own; CPython's server blocks a thread per such client")
    with harness.server(harness.conf('slow_reader.lua')) as srv:
        m = harness.sync_manager(srv)
        big = m.list(range(BIG))
        before = rss_kb(srv.pid)
        c = harness.raw_client(srv)
        c.send((None, 'accept_connection', ('reads nothing',), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'accept_connection')
        sock, sent, blocked = flood(c, big._token.id, 20)
        grown = rss_kb(srv.pid) - before
        harness.check(blocked, 'the server stops reading requests it cannot answer (%d sent)' % sent)
        harness.check(grown < 64 * 1024, 'its memory stays bounded: %d KiB more for %d requests of ~300 KB'
                      % (grown, sent))
        q = m.Queue()
        q.put('others')
        harness.eq(q.get(), 'others', 'everyone else is served meanwhile')
        harness.check(harness.wait_until(lambda: 'read none of its replies for 2 s' in srv.log(), 8),
                      'after send_timeout the stalled client is dropped, and the log says so')
        sock.close()
        c.close()
        # a client that reads, slowly, gets every reply
        c = harness.raw_client(srv)
        c.send((None, 'accept_connection', ('reads slowly',), {}))
        c.recv()
        sock, sent, _ = flood(c, big._token.id, 5, limit=60)
        sock.setblocking(True)  # the dup shares the file's flags: c must block again to read
        for i in range(sent):
            if i % 3 == 0:
                time.sleep(0.05)
            kind, value = c.recv()
            if kind != '#RETURN' or len(value) != BIG:
                harness.fail('reply %d of %d: %r' % (i + 1, sent, kind))
                break
        note = 'all %d replies read' % sent
        harness.check(sent > 0, note)
        sock.close()
        c.close()
        harness.eq(len(big), BIG, 'the server still answers')
    harness.done()


if __name__ == '__main__':
    main()
