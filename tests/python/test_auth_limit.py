"""Failed handshakes per peer address (limits.max_auth_failures): after three wrong keys (or
handshakes left unfinished) from one address, that address is turned away, even with the right
key, and told why; another address is still served. Loopback addresses are never counted:
every local process shares 127.0.0.1, and one worker with a stale key must not lock out the
others."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402


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


def unfinished_handshake(srv):
    """Connect, read the challenge, answer nothing: the server closes it (handshake_timeout)."""
    s = socket.create_connection(srv.address, 5)
    s.settimeout(5)
    got = s.recv(100) != b''
    closed = s.recv(100) == b''
    s.close()
    return got and closed


def local_address():
    """An IPv4 address of this host that is not loopback, or None."""
    try:
        out = subprocess.check_output(['hostname', '-I'], stderr=subprocess.DEVNULL).decode()
    except (OSError, subprocess.CalledProcessError):
        out = ''
    for a in out.split():
        if '.' in a and not a.startswith('127.'):
            return a
    return None


def loopback_not_counted():
    with harness.server(harness.conf('auth_limit.lua')) as srv:
        for i in range(50):
            e = attempt(srv, b'wrong key')
            if not harness.check('AuthenticationError' in e, 'loopback: wrong key %d refused (%s)' % (i + 1, e)):
                break
        harness.check(unfinished_handshake(srv), 'loopback: an unanswered challenge is closed')
        t0 = time.time()
        m = harness.sync_manager(srv)
        q = m.Queue()
        q.put('served')
        harness.eq(q.get(), 'served', 'loopback: after 50 wrong keys a stock client with the right key is served')
        harness.check(time.time() - t0 < 5, 'loopback: served at once (%.1f s)' % (time.time() - t0))
        harness.check('too many failed handshakes' not in srv.log(), 'loopback: nothing turned away')


def remote_address_counted():
    addr = local_address()
    if addr is None:
        harness.skip_part('an address turned away after 3 failures',
                          'this host has no IPv4 address but loopback (hostname -I)')
        return
    with harness.server(harness.conf('auth_limit.lua'), listen='%s:0' % addr) as srv:
        harness.eq(attempt(srv, srv.authkey), 'ok', 'the right key gets in from %s' % addr)
        for i in range(2):
            e = attempt(srv, b'wrong key')
            harness.check('AuthenticationError' in e, 'wrong key %d from %s: refused (%s)' % (i + 1, addr, e))
        # a third failure: a handshake left unfinished until handshake_timeout
        harness.check(unfinished_handshake(srv), 'an unanswered challenge is closed')
        e = attempt(srv, srv.authkey)
        harness.check('too many failed handshakes from this address (limits.max_auth_failures)' in e,
                      'the address is turned away even with the right key, saying why: %s' % e)
        harness.check(first_frame_from(srv, '127.0.0.1').startswith(b'#CHALLENGE#'),
                      'a loopback address still gets a challenge')
        harness.check(harness.wait_until(lambda: 'too many failed handshakes' in srv.log()), 'the log says so')


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("limits.max_auth_failures is shmgr's own")
    loopback_not_counted()
    remote_address_counted()
    harness.done()


if __name__ == '__main__':
    main()
