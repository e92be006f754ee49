"""The wire, by hand with the socket module: the length prefix (short and
large forms), the mutual HMAC handshake in both digest forms, and what the
server does with oversized, truncated, split, pipelined or missing input."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import hmac  # noqa: E402
import pickle  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

CHALLENGE = b'#CHALLENGE#'
WELCOME = b'#WELCOME#'
FAILURE = b'#FAILURE#'
MAX_MESSAGE = 65536      # conf/framing.lua limits.max_message
HANDSHAKE_TIMEOUT = 1    # conf/framing.lua limits.handshake_timeout
PY = sys.version_info[:2]


def connect(srv, timeout=5.0):
    if isinstance(srv.address, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(srv.address)
    else:
        s = socket.create_connection(srv.address, timeout)
    s.settimeout(timeout)
    return s


def recv_frame(s, with_header=False):
    """One frame's payload (and the header's length field if with_header)."""
    size, = struct.unpack('!i', harness.recv_exact(s, 4))
    header = size
    if size == -1:
        size, = struct.unpack('!Q', harness.recv_exact(s, 8))
    payload = harness.recv_exact(s, size)
    return (payload, header) if with_header else payload


def frame(payload, large=False):
    if large:
        return struct.pack('!i', -1) + struct.pack('!Q', len(payload)) + payload
    return struct.pack('!i', len(payload)) + payload


def send_frame(s, payload, large=False):
    s.sendall(frame(payload, large))


def closed_within(s, timeout):
    """Read until the peer closes (EOF or reset); return (closed, data read)."""
    s.settimeout(0.2)
    data = b''
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def digest_answer(key, msg, form):
    """The answer to challenge msg: raw HMAC-MD5 ('md5') or '{name}'+HMAC."""
    if form == 'md5':
        return hmac.new(key, msg, 'md5').digest()
    return b'{' + form.encode() + b'}' + hmac.new(key, msg, form).digest()


def answer_server(s, key, form=None):
    """Answer the server's challenge.  form None: as the challenge asks (the
    legacy 20-byte message -> raw MD5, '{name}...' -> '{name}'+HMAC-name over
    the whole message); 'md5': raw HMAC-MD5 over the whole message, as a
    Python <= 3.11 client does.  Return (reply, challenge frame length)."""
    payload, length = recv_frame(s, with_header=True)
    if not payload.startswith(CHALLENGE):
        raise AssertionError('not a challenge: %r' % payload)
    msg = payload[len(CHALLENGE):]
    if form is None:
        if msg.startswith(b'{') and b'}' in msg[:10]:
            form = msg[1:msg.index(b'}')].decode('ascii')
        else:
            form = 'md5'
    send_frame(s, digest_answer(key, msg, form))
    return recv_frame(s), length


def challenge_server(s, key, form):
    """Send our challenge ('sha256': '{sha256}'+40 bytes, 'legacy': 20 bytes),
    check the server's answer the way Python 3.12's client does, send
    WELCOME/FAILURE; return (answer ok, answer)."""
    msg = b'{sha256}' + os.urandom(40) if form == 'sha256' else os.urandom(20)
    send_frame(s, CHALLENGE + msg)
    answer = recv_frame(s)
    if len(answer) == 16:
        want = digest_answer(key, msg, 'md5')
    elif answer.startswith(b'{sha256}'):
        want = digest_answer(key, msg, 'sha256')
    else:
        want = None
    ok = want is not None and hmac.compare_digest(answer, want)
    send_frame(s, WELCOME if ok else FAILURE)
    return ok, answer


def authed(srv, answer_form=None, challenge_form='sha256'):
    s = connect(srv)
    reply, _ = answer_server(s, srv.authkey, answer_form)
    if reply != WELCOME:
        raise AssertionError('server did not welcome us: %r' % reply)
    ok, answer = challenge_server(s, srv.authkey, challenge_form)
    if not ok:
        raise AssertionError('server answered our challenge wrongly: %r' % answer)
    return s


def request(s, obj, large=False):
    send_frame(s, pickle.dumps(obj, 2), large)
    return pickle.loads(recv_frame(s))


def dummy_works(srv, what):
    try:
        s = authed(srv)
        r = request(s, (None, 'dummy', (), {}))
        s.close()
    except Exception as e:
        r = e
    return harness.eq(r, ('#RETURN', None), 'dummy on a fresh connection %s' % what)


def test_handshake(srv):
    key = srv.authkey
    modern_server = srv.backend == 'shmgr' or PY >= (3, 12)

    # the server challenges first, in the {sha256} form for shmgr
    s = connect(srv)
    reply, length = answer_server(s, key)
    want = 59 if modern_server else 31
    harness.eq(length, want, 'challenge frame length (%s server%s)'
               % (srv.backend, '' if srv.backend == 'shmgr' else ' %d.%d' % PY))
    harness.eq(reply, WELCOME, 'answer in the announced form')
    ok, answer = challenge_server(s, key, 'sha256')
    harness.check(ok, 'server answers a {sha256} challenge correctly: %r' % answer)
    harness.eq(len(answer), 40 if modern_server else 16, 'length of the answer to a {sha256} challenge')
    harness.eq(request(s, (None, 'dummy', (), {})), ('#RETURN', None), 'request after the handshake')
    s.close()

    # a Python <= 3.11 client: raw HMAC-MD5 over the whole message, and a
    # 20-byte challenge answered with raw HMAC-MD5
    s = connect(srv)
    reply, _ = answer_server(s, key, 'md5')
    harness.eq(reply, WELCOME, 'raw HMAC-MD5 answer (legacy client)')
    ok, answer = challenge_server(s, key, 'legacy')
    harness.check(ok and len(answer) == 16, 'server answers a 20-byte challenge with raw MD5: %r' % answer)
    harness.eq(request(s, (None, 'dummy', (), {})), ('#RETURN', None), 'request after a legacy handshake')
    s.close()

    # a wrong answer: #FAILURE#, then the connection is closed
    s = connect(srv)
    recv_frame(s)
    send_frame(s, b'\x00' * 16)
    try:
        reply = recv_frame(s)
    except (EOFError, ConnectionResetError) as e:
        reply = e
    harness.eq(reply, FAILURE, 'reply to a wrong answer')
    closed, _ = closed_within(s, 5)
    harness.check(closed, 'connection closed after a wrong answer')
    s.close()

    # the server's answer to our challenge rejected by us: no service
    s = connect(srv)
    answer_server(s, key)
    send_frame(s, CHALLENGE + os.urandom(20))
    recv_frame(s)
    send_frame(s, FAILURE)
    closed, data = closed_within(s, 5)
    harness.check(closed, 'connection closed after we reject the server')
    s.close()
    dummy_works(srv, 'after failed handshakes')


def test_frames(srv):
    # the large length form (-1, then 8 bytes)
    if srv.backend == 'cpython' and PY < (3, 8):
        harness.skip_part('large length form', "CPython < 3.8's reader knows only the 4-byte form")
    else:
        s = authed(srv)
        harness.eq(request(s, (None, 'dummy', (), {}), large=True), ('#RETURN', None),
                   'request in the large length form')
        s.close()

    # an object connection: requests split into tiny writes, and pipelined
    q = harness.raw_call(srv, None, 'create', ('Queue',))[1][0]
    s = authed(srv)
    harness.eq(request(s, (None, 'accept_connection', ('framing',), {})), ('#RETURN', None),
               'accept_connection')
    data = frame(pickle.dumps((q, 'put', ('split',), {}), 2))
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        if i < 8:
            time.sleep(0.01)
    harness.eq(pickle.loads(recv_frame(s)), ('#RETURN', None), 'request sent byte by byte')
    both = (frame(pickle.dumps((q, 'put', ('pipelined',), {}), 2))
            + frame(pickle.dumps((q, 'qsize', (), {}), 2)))
    s.sendall(both)
    harness.eq(pickle.loads(recv_frame(s)), ('#RETURN', None), 'first of two pipelined requests')
    harness.eq(pickle.loads(recv_frame(s)), ('#RETURN', 2), 'second of two pipelined requests')
    # just under the configured maximum: accepted
    big = 'y' * (MAX_MESSAGE - 4096)
    payload = pickle.dumps((q, 'put', (big,), {}), 2)
    harness.check(len(payload) < MAX_MESSAGE, 'test payload %d is under the limit' % len(payload))
    harness.eq(request(s, (q, 'put', (big,), {})), ('#RETURN', None), 'a %d-byte request' % len(payload))
    harness.eq(request(s, (q, 'qsize', (), {})), ('#RETURN', 3), 'qsize after three puts')

    # above the maximum: that request fails alone; its connection skips the rest of the frame
    # and goes on serving
    if srv.backend == 'cpython':
        harness.skip_part('message above limits.max_message', "CPython's server has no such limit")
    else:
        t = authed(srv)
        harness.eq(request(t, (None, 'accept_connection', ('oversize',), {})), ('#RETURN', None),
                   'accept_connection')
        harness.eq(request(t, (q, 'qsize', (), {})), ('#RETURN', 3), 'qsize before the oversized message')
        payload = pickle.dumps((q, 'put', ('z' * (MAX_MESSAGE + 4096),), {}), 2)
        send_frame(t, payload)
        kind, text = pickle.loads(recv_frame(t))
        harness.eq(kind, '#TRACEBACK', 'a %d-byte message (max_message %d) is refused' % (len(payload), MAX_MESSAGE))
        harness.check('exceeds the server\'s limit of %d bytes (max_message)' % MAX_MESSAGE in text,
                      'the refusal names the limit: %r' % text[-200:])
        harness.eq(request(t, (q, 'qsize', (), {})), ('#RETURN', 3),
                   'the same connection serves the next request (the refused put stored nothing)')
        t.close()
        harness.eq(request(s, (q, 'qsize', (), {})), ('#RETURN', 3), 'another connection still served')
    s.close()
    harness.raw_call(srv, None, 'decref', (q,))

    # before authentication, a frame longer than 256 bytes closes the connection
    s = connect(srv)
    recv_frame(s)
    try:
        send_frame(s, b'\x01' * 300)
    except (BrokenPipeError, ConnectionResetError):
        pass
    closed, data = closed_within(s, 5)
    harness.check(closed, 'a 300-byte answer to the challenge closes the connection')
    harness.check(WELCOME not in data, 'no welcome after a 300-byte answer: %r' % data[:100])
    s.close()

    # garbage: a huge length and nothing else, then close; before and after auth
    s = connect(srv)
    recv_frame(s)
    s.sendall(struct.pack('!i', 0x7fffffff))
    time.sleep(0.2)
    s.close()
    s = authed(srv)
    s.sendall(struct.pack('!i', 0x7fffffff) + b'abc')
    time.sleep(0.2)
    s.close()
    s = connect(srv)
    recv_frame(s)
    s.sendall(struct.pack('!i', -1) + b'\xff' * 8)
    time.sleep(0.2)
    s.close()
    s = connect(srv)  # connect and vanish at once
    s.close()
    dummy_works(srv, 'after garbage lengths')
    harness.check(srv.alive(), 'server alive after garbage')


def test_handshake_timeout(srv):
    if srv.backend == 'cpython':
        harness.skip_part('handshake timeout', "CPython's server has no handshake timeout: a "
                          'silent connection holds its thread forever')
        return
    t0 = time.time()
    s = connect(srv)
    recv_frame(s)  # the challenge
    closed, _ = closed_within(s, HANDSHAKE_TIMEOUT + 5)
    dt = time.time() - t0
    harness.check(closed, 'a silent connection is closed (limits.handshake_timeout = %d)' % HANDSHAKE_TIMEOUT)
    if closed:
        harness.check(HANDSHAKE_TIMEOUT * 0.5 <= dt < HANDSHAKE_TIMEOUT + 3,
                      'closed after %.2f s (handshake_timeout %d)' % (dt, HANDSHAKE_TIMEOUT))
    s.close()
    # a connection half way through the handshake too
    s = connect(srv)
    answer_server(s, srv.authkey)
    closed, _ = closed_within(s, HANDSHAKE_TIMEOUT + 5)
    harness.check(closed, 'a connection that never sends its challenge is closed')
    s.close()
    dummy_works(srv, 'after handshake timeouts')


def main():
    with harness.server(harness.conf('framing.lua')) as srv:
        test_handshake(srv)
        test_frames(srv)
        test_handshake_timeout(srv)
    harness.done()


if __name__ == '__main__':
    main()
