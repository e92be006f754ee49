"""Failed handshakes per peer address (limits.max_auth_failures): after three wrong keys (or
handshakes left unfinished) from one address, that address is turned away, even with the right
key, and told why; another address is still served."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import socket  # noqa: E402
import struct  # noqa: E402


def attempt(srv, key):
    """'ok', or the error a stock client raises."""
    try:
        c = harness.raw_client(srv, authkey=key)
    except Exception as e:  # AuthenticationError, or the refusal (AssertionError before 3.12)
        return '%s: %s' % (type(e).__name__, e)
    c.close()
    return 'ok'


def first_frame_from(srv, source):
    """What the server sends first to a connection from the address `source`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(srv.address)
    n = struct.unpack('!i', s.recv(4))[0]
    data = b''
    while len(data) < n:
        data += s.recv(n - len(data))
    s.close()
    return data


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("limits.max_auth_failures is shmgr's own")
    with harness.server(harness.conf('auth_limit.lua')) as srv:
        harness.eq(attempt(srv, srv.authkey), 'ok', 'the right key gets in')
        for i in range(2):
            e = attempt(srv, b'wrong key')
            harness.check('AuthenticationError' in e, 'wrong key %d: refused (%s)' % (i + 1, e))
        # a third failure: a handshake left unfinished until handshake_timeout
        s = socket.create_connection(srv.address, 5)
        s.settimeout(5)
        harness.check(s.recv(100) != b'', 'a challenge')
        harness.eq(s.recv(100), b'', 'then, unanswered, the server closes it')
        s.close()
        e = attempt(srv, srv.authkey)
        harness.check('too many failed handshakes from this address (limits.max_auth_failures)' in e,
                      'the address is turned away even with the right key, saying why: %s' % e)
        harness.check(first_frame_from(srv, '127.0.0.2').startswith(b'#CHALLENGE#'),
                      'another address still gets a challenge')
        harness.check(harness.wait_until(lambda: 'too many failed handshakes' in srv.log()), 'the log says so')
    harness.done()


if __name__ == '__main__':
    main()
