"""Large requests (issue 14). With limits.max_message = 1 MiB (conf/big_values.lua): stock
requests of exactly limit - 1 and limit bytes go through; limit + 1, limit + 4096, 3 x limit
and 40 MiB fail alone with a RemoteError naming max_message, and the same proxy, the other
proxies of the thread (one connection) and the manager keep working, in sync, with no new
connection; a create whose argument is too big (a fresh connection) fails the same way; a
refused request whose body arrives slowly, in pieces that look like frames themselves, gets
its error and its connection goes on; a client that sends the header of an oversized frame and
then stalls is dropped after 10 s without a byte (the server serving others meanwhile);
limits_hit['max_message'] counts the refusals, and the server's peak RSS shows the refused
bodies were dropped as they came, not held. With no limits in the config
(conf/big_default.lua): a 300 MiB bytes goes through a Queue and back (max_message defaults
to 2 GiB). Requests in the large length form (-1, then 8 bytes, which a stock client uses past
2 GiB): one of 900 KiB goes in and comes back whole; one past max_message is refused alone.
The buffer of a 40 MiB request (conf/big_kept.lua, max_memory 160 MiB) is kept when its value
is got, shown as shmgr_info's memory 'kept' and left out of 'used'; the next 40 MiB put is read
into it (the server's RSS does not grow) and comes back whole; three seconds after the last get
the buffer is gone and the RSS falls; kept again, it goes as soon as a put does not fit under
max_memory.
CPython's server has no max_message: the refusals are skipped there."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import hashlib  # noqa: E402
import pickle  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import RemoteError  # noqa: E402
from multiprocessing.reduction import ForkingPickler  # noqa: E402

from harness import check, eq, note  # noqa: E402

MIB = 1024 * 1024
LIMIT = MIB       # conf/big_values.lua limits.max_message
STALL = 10.0      # seconds without a byte after which a half-sent oversized frame is dropped
SHMGR = harness.BACKEND == 'shmgr'
NO_LIMIT = "CPython's server has no max_message"


def info(srv):
    reply = harness.raw_call(srv, None, 'shmgr_info')
    eq(reply[0], '#RETURN', 'shmgr_info answers')
    return reply[1]


def hits(srv):
    return info(srv)['limits_hit']['max_message']


def status_kb(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def request_bytes(ident, method, args):
    """The request as a stock proxy sends it: ForkingPickler.dumps((id, method, args, kwds))."""
    return ForkingPickler.dumps((ident, method, args, {}))


def payload_for(ident, size):
    """bytes b whose put request (ident, 'put', (b,), {}) pickles to exactly size bytes."""
    n = max(size - 100, 0)
    for _ in range(20):
        got = len(request_bytes(ident, 'put', (b'x' * n,)))
        if got == size:
            return b'x' * n
        n += size - got
    raise AssertionError('no payload gives a %d-byte request' % size)


def raw_socket(c, srv):
    """A socket object on the connection of multiprocessing Client c (its fd dup'ed). Blocking:
    a timeout would make the shared file description non-blocking, under c's reads too."""
    family = socket.AF_UNIX if isinstance(srv.address, str) else socket.AF_INET
    return socket.fromfd(c.fileno(), family, socket.SOCK_STREAM)


def frame(payload):
    return struct.pack('!i', len(payload)) + payload


def large_frame(payload):
    """payload in the large length form: a length of -1, then the real one in 8 bytes."""
    return struct.pack('!iQ', -1, len(payload)) + payload


def refused_ok(e, size, what):
    """e is the RemoteError a refused request of size bytes gives."""
    text = str(e)
    check(isinstance(e, RemoteError) and 'max_message' in text,
          '%s: RemoteError naming max_message, got %s: %s' % (what, type(e).__name__, text))
    check('OSError' in text and str(size) in text and str(LIMIT) in text,
          '%s: the error says OSError, the size (%d) and the limit (%d): %s' % (what, size, LIMIT, text))


# --------------------------------------------------------------------------
# Sizes around the limit, through stock proxies

def around_the_limit(srv):
    m = harness.sync_manager(srv)
    q, d, l = m.Queue(), m.dict(), m.list()
    d['n'] = 0
    l.append('first')
    objects = m._number_of_objects()
    ident = q._id
    before = info(srv) if SHMGR else None
    rss0 = status_kb(srv.pid, 'VmRSS')
    refusals = 0
    kept = []   # sizes of the payloads put (the queue holds them in order)
    appended = 1
    sizes = [LIMIT - 1, LIMIT + 1, LIMIT, LIMIT + 4096, 3 * LIMIT, 40 * MIB, LIMIT - 1]
    for i, size in enumerate(sizes):
        data = payload_for(ident, size)
        what = 'a %d-byte request (max_message %d)' % (size, LIMIT)
        if size <= LIMIT:
            try:
                q.put(data)
                kept.append(len(data))
            except Exception as e:
                harness.fail('%s: raised %s: %s' % (what, type(e).__name__, e))
        elif not SHMGR:
            harness.skip_part(what, NO_LIMIT)
            continue
        else:
            t0 = time.time()
            e = harness.raises(RemoteError, q.put, data, what=what)
            note('  %s refused in %.2f s' % (what, time.time() - t0))
            if e is not None:
                refused_ok(e, size, what)
            refusals += 1
        del data
        # the same proxy, in sync: the answer to this call, not to another
        eq(q.qsize(), len(kept), 'after %s: qsize on the same proxy' % what)
        # other proxies of the thread (the same connection)
        d['n'] = i + 1
        eq(d['n'], i + 1, 'after %s: the dict proxy of the same thread' % what)
        l.append(i)
        appended += 1
        eq(l[-1], i, 'after %s: the list proxy of the same thread' % what)
    eq(m._number_of_objects(), objects, 'no object made or lost by the refused requests')
    if SHMGR:  # a refused body is dropped as it arrives, never held whole
        hwm = status_kb(srv.pid, 'VmHWM')
        note('  server RSS %.1f MiB at the start, peak %.1f MiB after the refused 40 MiB' % (rss0 / 1024., hwm / 1024.))
        check(hwm - rss0 < 20 * 1024, "the server's peak RSS grew by %.1f MiB, less than the 40 MiB refused"
              % ((hwm - rss0) / 1024.))
    got = []
    while q.qsize():
        got.append(len(q.get()))
    eq(got, kept, 'the queue holds the requests that fit, whole and in order')
    eq(len(l), appended, 'the list holds every append')
    if SHMGR:
        after = info(srv)
        eq(after['connections']['total'] - before['connections']['total'], 2,
           "no connection opened by the stock client after the refusals (only shmgr_info's and "
           "_number_of_objects')")
        eq(after['limits_hit']['max_message'] - before['limits_hit']['max_message'], refusals,
           "limits_hit['max_message'] counts each refused request")

    # a fresh connection: create with an argument too big
    if not SHMGR:
        harness.skip_part('create with an argument over max_message', NO_LIMIT)
    else:
        n0 = hits(srv)
        e = harness.raises(RemoteError, m.list, [b'z' * (LIMIT + 10)],
                           what='m.list() of a %d-byte bytes (a fresh connection)' % (LIMIT + 10))
        if e is not None:
            check('max_message' in str(e), 'create over max_message: the error names it: %s' % e)
        eq(hits(srv) - n0, 1, "limits_hit['max_message'] counts the refused create")
        eq(m._number_of_objects(), objects, 'the refused create made no object')
    l2 = m.list([1, 2])
    eq(l2[:], [1, 2], 'the manager makes objects after that')
    eq(q.qsize(), 0, 'and the first proxy still answers')
    eq(l[0], 'first', 'the list proxy still answers at the end')


# --------------------------------------------------------------------------
# A refused request whose body arrives slowly, by hand

def slow_body(srv):
    if not SHMGR:
        harness.skip_part('a refused request whose body arrives slowly', NO_LIMIT)
        return
    m = harness.sync_manager(srv)
    q = m.Queue()
    n0 = hits(srv)
    c = harness.object_connection(srv, 'slow')
    s = raw_socket(c, srv)
    # the body: frames of a valid put request, over and over; read as frames, they would
    # put items into q
    evil = frame(request_bytes(q._id, 'put', ('from inside the refused body',)))
    body = evil * (LIMIT // len(evil) + 2)
    body += b'\0' * 1000
    check(len(body) > LIMIT, 'the body is over the limit: %d' % len(body))
    t0 = time.time()
    s.sendall(struct.pack('!i', len(body)))
    pieces = 10
    step = len(body) // pieces + 1
    for i in range(pieces):
        time.sleep(0.1)   # the body arrives over about a second
        s.sendall(body[i * step:(i + 1) * step])
    reply = c.recv()
    dt = time.time() - t0
    check(reply[0] == '#TRACEBACK' and 'max_message' in reply[1],
          'a refused request sent in %d pieces over %.1f s gets #TRACEBACK naming max_message: %r'
          % (pieces, dt, reply))
    c.send((q._id, 'qsize', (), {}))
    eq(c.recv(), ('#RETURN', 0), 'the same connection answers after it, and nothing of the body was run')
    c.send((q._id, 'put', ('after',), {}))
    eq(c.recv(), ('#RETURN', None), 'a put on that connection')
    c.send((q._id, 'get', (), {}))
    eq(c.recv(), ('#RETURN', 'after'), 'and a get')
    s.close()
    c.close()
    eq(hits(srv) - n0, 1, "limits_hit['max_message'] counts the slow refused request")


# --------------------------------------------------------------------------
# The large length form

def large_form(srv):
    if harness.BACKEND == 'cpython' and sys.version_info < (3, 8):
        harness.skip_part('requests in the large length form', "CPython < 3.8's reader knows only the 4-byte form")
        return
    m = harness.sync_manager(srv)
    q = m.Queue()
    c = harness.object_connection(srv, 'large form')
    s = raw_socket(c, srv)
    value = bytes(bytearray(range(256))) * (900 * 1024 // 256)
    s.sendall(large_frame(request_bytes(q._id, 'put', (value,))))
    eq(c.recv(), ('#RETURN', None), 'a put of 900 KiB in the large length form')
    if SHMGR:
        over = request_bytes(q._id, 'put', (b'o' * LIMIT,))
        s.sendall(large_frame(over))
        e = c.recv()
        check(e[0] == '#TRACEBACK' and 'max_message' in e[1] and str(len(over)) in e[1],
              'a put of %d bytes in the large length form is refused, naming max_message: %r' % (len(over), e))
    c.send((q._id, 'get', (), {}))
    got = c.recv()
    check(got[0] == '#RETURN' and got[1] == value,
          'the connection goes on and the 900 KiB come back whole: %r' % (got[:1] + (len(got[1]),) if
                                                                         got[0] == '#RETURN' else got,))
    eq(q.qsize(), 0, 'nothing else went into the queue')
    s.close()
    c.close()


# --------------------------------------------------------------------------
# A large buffer kept for the next large frame

def kept_buffer():
    if not SHMGR:
        harness.skip_part('a large buffer kept for the next', "CPython's server keeps no buffer of its own")
        return
    with harness.server(harness.conf('big_kept.lua')) as srv:
        m = harness.sync_manager(srv)
        q = m.Queue()
        size = 40 * MIB
        first = b'1' * size
        second = b'2' * size
        rss = lambda: status_kb(srv.pid, 'VmRSS') * 1024  # noqa: E731
        by_rss = not harness.sanitized_server()
        if not by_rss:
            harness.skip_part("the kept buffer's effect on the RSS", 'AddressSanitizer owns the memory here')

        # each figure is read as soon as the get returns, within the keep time even on a
        # loaded machine; what came back is compared after
        q.put(first)
        got = q.get()
        mem = info(srv)['memory']
        eq(got, first, 'a 40 MiB value comes back')
        del got
        note('  after the get: %r' % mem)
        check(mem.get('kept', 0) >= size, "its buffer is kept: shmgr_info's memory 'kept' %r" % mem.get('kept'))
        check(mem['heap'] - mem['used'] >= size and mem['used'] < size // 4,
              "'used' leaves the kept buffer out: used %d, heap %d" % (mem['used'], mem['heap']))
        before = rss()
        q.put(second)
        grew = rss() - before
        mem = info(srv)['memory']
        eq(mem.get('kept'), 0, 'the next 40 MiB put took the kept buffer')
        check(grew < 8 * MIB or not by_rss, 'and was read into it: the RSS grew by %d bytes, not 40 MiB' % grew)
        got = q.get()
        check(info(srv)['memory'].get('kept', 0) >= size, 'kept again after the get')
        held = rss()
        eq(got, second, 'what was read into the kept buffer comes back whole')
        del got
        check(harness.wait_until(lambda: info(srv)['memory'].get('kept') == 0, 10),
              'three seconds later the kept buffer is gone')
        check(not by_rss or harness.wait_until(lambda: rss() < held - size // 2, 10),
              'and the RSS fell: %d, then %d' % (held, rss()))

        # kept, then the room runs out: a put that does not fit gives it back
        q.put(first)
        q.get()
        check(info(srv)['memory'].get('kept', 0) >= size, 'kept before the fill')
        filler = b'f' * (8 * MIB)
        refused = None
        for n in range(40):
            try:
                q.put(filler)
            except MemoryError as e:
                refused = e
                break
        check(refused is not None, 'puts of 8 MiB go in until one does not fit under max_memory (%d did)' % n)
        mem = info(srv)['memory']
        eq(mem.get('kept'), 0, 'a put that does not fit gives the kept buffer back')
        check(not by_rss or rss() < 160 * MIB + 32 * MIB, 'the RSS stays near max_memory: %d' % rss())
        while q.qsize():
            eq(q.get(), filler, 'the queue drains')


# --------------------------------------------------------------------------
# A half-sent oversized frame, then nothing

def stalled(srv):
    if not SHMGR:
        harness.skip_part('a half-sent oversized frame, then silence', NO_LIMIT + ' (and waits forever)')
        return
    m = harness.sync_manager(srv)
    q = m.Queue()
    n0 = hits(srv)
    c = harness.object_connection(srv, 'stall')
    s = raw_socket(c, srv)
    size = LIMIT + MIB
    s.sendall(struct.pack('!i', size))
    for i in range(3):   # 300 kB of its body, a piece a second, then nothing
        if i:
            time.sleep(1.0)
        s.sendall(b'\0' * 100000)
    last = time.time()
    # the server goes on serving others while it waits for the stalled body
    other = m.Queue()
    other.put('served')
    eq(other.get(), 'served', 'another client is served during the stall')
    eq(q.qsize(), 0, 'the first proxy too')
    s.settimeout(0.2)
    data, closed = b'', None
    while time.time() < last + STALL + 6:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            chunk = b''
        if not chunk:
            closed = time.time()
            break
        data += chunk
    if check(closed is not None, 'a client that stalls inside an oversized frame is disconnected'):
        dt = closed - last
        note('  disconnected %.2f s after its last byte (%.2f s after the header)' % (dt, closed - last + 2))
        check(STALL - 1 <= dt <= STALL + 3,
              'disconnected %.2f s after its last byte, want about %g s (the stall counts from the last byte)'
              % (dt, STALL))
    check(b'#RETURN' not in data, 'no #RETURN for the stalled request: %r' % data[:200])
    if data:
        try:
            reply = pickle.loads(data[4:])
        except Exception as e:
            reply = ('undecodable', repr(e), data[:100])
        check(reply[0] == '#TRACEBACK' and 'max_message' in reply[1], 'what it was sent names max_message: %r'
              % (reply,))
    s.close()
    c.close()
    n = hits(srv) - n0
    check(n in (0, 1), "limits_hit['max_message'] after the stalled request: +%d" % n)
    note("  limits_hit['max_message'] +%d for the stalled request" % n)
    eq(q.qsize(), 0, 'the first proxy still answers after the stalled client went')
    check(srv.alive(), 'the server is alive')


# --------------------------------------------------------------------------
# 300 MiB under the defaults

def default_limits():
    with harness.server(harness.conf('big_default.lua')) as srv:
        m = harness.sync_manager(srv)
        q = m.Queue()
        size = 300 * MIB
        data = bytes(bytearray(range(256))) * (size // 256)
        digest = hashlib.sha1(data).hexdigest()
        t0 = time.time()
        try:
            q.put(data)
        except Exception as e:
            harness.fail('a %d MiB put under the default max_message: %s: %s'
                         % (size // MIB, type(e).__name__, str(e)[-300:]))
            return
        t1 = time.time()
        del data
        eq(q.qsize(), 1, 'the 300 MiB item is in the queue')
        if SHMGR:
            used = info(srv)['memory'].get('used')
            check(used is not None and used >= size, "shmgr_info()['memory']['used'] counts it: %r" % (used,))
        got = q.get()
        t2 = time.time()
        note('  300 MiB: put %.2f s, get %.2f s' % (t1 - t0, t2 - t1))
        eq(type(got), bytes, 'get gives bytes')
        eq(len(got), size, 'length of what came back')
        for i in (0, 1, 255, 256, size // 2 + 7, size - 1):
            if not eq(got[i], i % 256, 'byte %d of what came back' % i):
                break
        eq(hashlib.sha1(got).hexdigest(), digest, 'what came back is what went (sha1)')
        del got
        q.put('small')
        eq(q.get(), 'small', 'the proxy goes on')


def main():
    with harness.server(harness.conf('big_values.lua')) as srv:
        harness.part('sizes around max_message', around_the_limit, srv)
        harness.part('a slow refused body', slow_body, srv)
        harness.part('the large length form', large_form, srv)
        if harness.heavy('a stalled oversized frame', 'a 12 s wait'):
            harness.part('a stalled oversized frame', stalled, srv)
    harness.part('a large buffer kept for the next', kept_buffer)
    if harness.heavy('300 MiB under the default limits', '600 MB through the server and back'):
        harness.part('300 MiB under the default limits', default_limits)
    harness.done()


if __name__ == '__main__':
    main()
