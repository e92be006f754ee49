"""limits.idle_timeout: an authenticated connection that sends nothing for that long is closed;
one waiting in a parked call is not idle, nor is one that keeps calling."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pickle  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def closed_within(c, seconds):
    """Whether the server closes c within `seconds` (c sends nothing meanwhile)."""
    if not c.poll(seconds):
        return False
    try:
        c.recv_bytes()
    except (EOFError, OSError):
        return True
    return False


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("limits.idle_timeout is shmgr's own")
    with harness.server(harness.conf('idle.lua')) as srv:
        c = harness.raw_client(srv)
        c.send((None, 'accept_connection', ('idle',), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'accept_connection')
        harness.check(closed_within(c, 5), 'a connection that sends nothing is closed')
        harness.check(harness.wait_until(lambda: 'idle for 1 s (limits.idle_timeout)' in srv.log()),
                      'and the log says why')

        m = harness.sync_manager(srv)
        q = m.Queue()
        got = []
        t = threading.Thread(target=lambda: got.append(q.get()))
        t.start()
        for i in range(8):  # 2.4 s of calls, one every 0.3 s: never idle that long
            time.sleep(0.3)
            harness.eq(q.qsize(), 0, 'call %d on a busy connection' % i)
        q.put('late')  # the waiter has been parked for 2.4 s, past the idle time
        t.join(5)
        harness.eq(got, ['late'], 'a call parked longer than idle_timeout still gets its answer')

        # two gets in one write: the first parks; when it is answered the second is served from
        # the buffer, and parks too; parked past the idle time, it is not idle
        w1, w2 = m.Queue(), m.Queue()
        c = harness.raw_client(srv)
        c.send((None, 'accept_connection', ('pipelined',), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'accept_connection')
        frames = b''
        for req in ((w1._token.id, 'get', (), {}), (w2._token.id, 'get', (), {})):
            data = pickle.dumps(req, 4)
            frames += struct.pack('!i', len(data)) + data
        os.write(c.fileno(), frames)
        time.sleep(0.3)
        w1.put('first')
        harness.eq(c.recv(), ('#RETURN', 'first'), 'the first get answered')
        harness.check(not closed_within(c, 2.5), 'the second, parked past idle_timeout, keeps the connection open')
        p = harness.raw_client(srv)  # this thread's proxy connection has been idle meanwhile: closed
        p.send((None, 'accept_connection', ('putter',), {}))
        p.recv()
        p.send((w2._token.id, 'put', ('second',), {}))
        harness.eq(p.recv(), ('#RETURN', None), 'put on a new connection')
        p.close()
        harness.eq(c.recv(), ('#RETURN', 'second'), 'and gets its item')
        c.close()
    harness.done()


if __name__ == '__main__':
    main()
