"""Connections past limits.max_connections, and past the open-file limit, are turned away with
a message the client shows (it expected a challenge), the server neither spins nor stops, and
once others close, new connections are served again."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import resource  # noqa: E402
import time  # noqa: E402


def refused(srv, what):
    """The error a stock Client raises when turned away (or None if it got in)."""
    try:
        c = harness.raw_client(srv)
    except Exception as e:  # AssertionError up to 3.11, AuthenticationError from 3.12
        return str(e)
    c.close()
    return None


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("limits.max_connections is shmgr's own; CPython's server takes every connection")
    with harness.server(harness.conf('conn_limits.lua')) as srv:
        held = [harness.raw_client(srv) for _ in range(3)]
        e = refused(srv, 'a fourth connection')
        harness.check(e is not None and 'too many connections (limits.max_connections)' in e,
                      'the fourth is turned away, saying why: %r' % (e,))
        held.pop().close()
        harness.check(harness.wait_until(lambda: refused(srv, 'a new one') is None),
                      'once one closes, a new connection is served')
        harness.check(harness.wait_until(lambda: 'turning connections away: too many connections' in srv.log()),
                      'the log says so')
        for c in held:
            c.close()

    with harness.server() as srv:
        # the server's own files: a few; leave it room for ten connections more
        room = len(os.listdir('/proc/%d/fd' % srv.pid)) + 10
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (room, room))
        held, why = [], None
        for _ in range(30):
            try:
                held.append(harness.raw_client(srv))
            except Exception as e:
                why = str(e)
                break
        harness.check(why is not None and 'out of file descriptors' in why,
                      'past the open-file limit a client is told why: %r' % (why,))
        before = cpu_seconds(srv.pid)
        time.sleep(1.0)
        harness.check(cpu_seconds(srv.pid) - before < 0.5, 'the server does not spin on accept')
        for c in held:
            c.close()
        harness.check(harness.wait_until(lambda: refused(srv, 'after') is None),
                      'when connections close, new ones are served again')
        m = harness.sync_manager(srv)
        q = m.Queue()
        q.put(1)
        harness.eq(q.get(), 1, 'and calls work')
    harness.done()


if __name__ == '__main__':
    main()
