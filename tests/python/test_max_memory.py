"""limits.max_memory (issue 14), with stock clients.

Semantics (conf/max_memory.lua: max_memory 64 MiB, memory_wait at its default of 2 s, a Lua
type): shmgr_info's memory 'used' follows what the server holds (queue items, a SharedArray's
segment) and 'max_memory' is the limit; a queue filled with 1 MiB items until a put does not
fit: that put waits memory_wait, then fails with MemoryError naming max_memory, and the same
proxy goes on; a put that waits while a consumer drains goes through. Once the server holds
more than max_memory (small puts; then a Lua method that keeps growing a table, which fails
naming the limit while reading methods of the same object answer; then, if that left too
little margin, clients leaving large replies unread): every call that adds data
(Queue/JoinableQueue put and put_nowait; list append, extend, insert, __setitem__, +=, *=; dict
__setitem__, setdefault, update, |=; a Namespace attribute; Value.set; set add, update, |=, ^=,
symmetric_difference_update) fails with MemoryError naming max_memory and changes nothing; a
create fails (RemoteError from a stock manager, #TRACEBACK on the wire); a large put waits
memory_wait and fails, and by hand, the server reads no more of it meanwhile (the sender
blocks); every call that reads or removes works (get, get_nowait, qsize, task_done, pop,
__getitem__, __len__, __delitem__, remove, clear, Lock acquire/release, ...); no one is
disconnected; limits_hit['max_memory'] counts the refusals, and the metrics page shows
shmgr_memory_used_bytes and shmgr_memory_limit_bytes. Once consumers drain, every refused call
succeeds when retried.

Configs: the default max_memory is half the machine's memory (or its cgroup's); 0 is no limit;
a negative or non-integer max_memory, and a bad memory_wait, stop the server at start.

Reload: SIGHUP applies a new max_memory and memory_wait at once. Under 48 MiB 4 MiB puts go in
until one is refused (after memory_wait, 0.2 s); `shmgr-cli info` shows what is held "of
max_memory 48.0M"; raised to 96 MiB the refused put goes in, and more; memory_wait raised to
1.5 s, a put that does not fit waits that long before its MemoryError; max_memory = 0 lets
every put in, and the cli says "no max_memory". The connection stays the same throughout.

The acceptance test (conf/max_memory_clients.lua, max_memory 512 MiB, memory_wait 0.5 s): 32
client processes, each with its own manager, put 50 MB each into one queue at once; the
server's peak RSS (VmHWM) stays under 512 MiB + 25% + its RSS at start; each client's put
succeeds or raises MemoryError, and its manager still answers; after the queue is drained,
each refused put succeeds when retried (six clients at a time, the queue drained between), and
32 items come out, one per client. CPython's server (no limit: every put succeeds) runs that
part with 5 MB items; the rest is shmgr's own.

Part names as arguments run only those parts: semantics, configs, reload, acceptance."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pickle  # noqa: E402
import pickletools  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import MakeProxyType, RemoteError, SyncManager  # noqa: E402
from multiprocessing.reduction import ForkingPickler  # noqa: E402
from urllib.request import urlopen  # noqa: E402

from harness import check, eq, note  # noqa: E402

MIB = 1024 * 1024
LIMIT = 64 * MIB          # conf/max_memory.lua
WAIT = 2.0                # the default limits.memory_wait
BIG_LIMIT = 512 * MIB     # conf/max_memory_clients.lua (and memory_wait = 0.5)
CLIENTS = 32
CLIENT_BYTES = 50 * 1000 * 1000
# CPython's server has no limit: every 50 MB goes in and out through Python, over a minute on a
# small machine, to check only that each put succeeds; it runs the same test with 5 MB items
CPYTHON_CLIENT_BYTES = 5 * 1000 * 1000
RETRY_BATCH = 6        # refused clients retrying at once: 300 MB, room enough in a drained queue
SHMGR = harness.BACKEND == 'shmgr'
NO_LIMIT = "CPython's server has no max_memory"
EXE = os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr')
CLI = os.path.join(harness.REPO, 'shmgr-cli')

# the set typeid (Python 3.14's SetProxy), the methods used here
SetProxy = MakeProxyType('SetProxy', ('__contains__', '__ior__', '__ixor__', '__len__', 'add', 'clear', 'copy',
                                      'discard', 'pop', 'remove', 'symmetric_difference_update', 'update'))


_raw_calls = [0]  # connections this script opened for shmgr_info


def info(srv):
    _raw_calls[0] += 1
    reply = harness.raw_call(srv, None, 'shmgr_info')
    eq(reply[0], '#RETURN', 'shmgr_info answers')
    return reply[1]


def memory(srv):
    return info(srv)['memory']


def used(srv):
    return memory(srv)['used']


def hits(srv):
    return info(srv)['limits_hit'].get('max_memory')


def metrics(srv):
    """{(name, labels text): value} of the metrics page (the address from the log)."""
    harness.wait_until(lambda: 'metrics on ' in srv.log(), 5)
    m = re.search(r'^metrics on (\S+)$', srv.log(), re.M)
    if not check(m, 'the server says where its metrics are; log:\n%s' % srv.log()):
        return {}
    text = urlopen('http://%s/metrics' % m.group(1), timeout=20).read().decode('utf-8')
    page = {}
    for line in text.splitlines():
        r = re.match(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        if r:
            page[(r.group(1), r.group(2) or '')] = float(r.group(3))
    return page


def frame(payload):
    return struct.pack('!i', len(payload)) + bytes(payload)


def recv_reply(s):
    n = struct.unpack('!i', harness.recv_exact(s, 4))[0]
    return pickle.loads(harness.recv_exact(s, n))


def refused(func, what, *args):
    """func(*args) must raise MemoryError naming max_memory; return the exception (or None)."""
    e = harness.raises(MemoryError, func, *args, what=what)
    if e is not None:
        check('max_memory' in str(e), '%s: the MemoryError names max_memory: %s' % (what, e))
    return e


def timed_put(proxy, item):
    t0 = time.time()
    try:
        proxy.put(item)
        return None, time.time() - t0
    except Exception as e:
        return e, time.time() - t0


# --------------------------------------------------------------------------
# What is refused past max_memory, what is not

def semantics():
    if not SHMGR:
        harness.skip_part('limits.max_memory: refusals, waits, info, metrics, Lua', NO_LIMIT)
        return
    # a Unix socket: a reply left unread stays in the server's buffers, hardly any in the kernel's
    with harness.server(harness.conf('max_memory.lua'), unix=True) as srv:
        m = harness.client_manager(srv, ['Bag', ('set', {'proxytype': SetProxy})], base=SyncManager)

        # every object is made while there is room (create is refused past the limit)
        filler, q, jq = m.Queue(), m.Queue(), m.JoinableQueue()
        for x in ('a', 'b'):
            q.put(x)
        for x in (1, 2):
            jq.put(x)
        l = m.list([1, 2, 3, 4, 5])
        d = m.dict({'a': 1, 'b': 2, 'c': 3, 'd': 4})
        ns = m.Namespace(x=1, y=2)
        v = m.Value('i', 7)
        st = m.set({1, 2, 3, 4})
        lock = m.Lock()
        # what unread replies will hold: 30,000 short strings (a reply's large str or bytes is
        # sent from where it is stored; a list of small ones is pickled into the reply)
        held = m.list(['%07d' % i for i in range(30000)])
        bag = m.Bag()
        eq(bag.grow(10), 10, 'Bag.grow(10)')
        scratch = m.Queue()
        objects = m._number_of_objects()

        # the figures
        mem = memory(srv)
        note('  at start: used %d, max_memory %d, rss %d' % (mem.get('used', -1), mem.get('max_memory', -1),
                                                           mem.get('rss', -1)))
        eq(mem.get('max_memory'), LIMIT, "shmgr_info()['memory']['max_memory'] is the config's")
        check(0 < mem.get('used', 0) < LIMIT // 2, "shmgr_info()['memory']['used'] at start: %r" % mem.get('used'))
        u0 = used(srv)
        for _ in range(4):
            scratch.put(b's' * MIB)
        u1 = used(srv)
        check(4 * MIB - 64 * 1024 <= u1 - u0 <= 6 * MIB, "'used' grows by the 4 MiB put: %d -> %d" % (u0, u1))
        while scratch.qsize():
            scratch.get()
        u2 = used(srv)
        check(u1 - u2 >= 4 * MIB - 256 * 1024, "'used' falls when they are got: %d -> %d" % (u1, u2))
        sa_m = harness.client_manager(srv, ['SharedArray'])
        sa = sa_m.SharedArray('q', [0] * (2 * MIB // 8))
        u3 = used(srv)
        check(u3 - u2 >= 2 * MIB, "'used' counts a SharedArray's 2 MiB segment: %d -> %d" % (u2, u3))
        del sa
        harness.wait_until(lambda: used(srv) < u3 - MIB)  # its segment may go with it (not checked)

        # fill with 1 MiB items until one does not fit: it waits memory_wait, then MemoryError
        item = b'f' * MIB
        n_fill, e, dt = 0, None, 0
        for _ in range(LIMIT // MIB + 8):
            e, dt = timed_put(filler, item)
            if e is not None:
                break
            n_fill += 1
        note('  %d puts of 1 MiB fit; the next one: %s after %.2f s' % (n_fill, type(e).__name__, dt))
        check(LIMIT // MIB - 8 <= n_fill < LIMIT // MIB,
              'puts of 1 MiB go through until the limit: %d did (max_memory %d MiB)' % (n_fill, LIMIT // MIB))
        if not check(isinstance(e, MemoryError) and 'max_memory' in str(e),
                     'the put that does not fit fails with MemoryError naming max_memory: %r' % (e,)):
            return
        check(WAIT - 0.3 <= dt <= WAIT + 3, 'it failed after waiting memory_wait (%g s): %.2f s' % (WAIT, dt))
        eq(filler.qsize(), n_fill, 'the same proxy answers after the refused put; the queue as it was')

        # a put that waits for room while a consumer drains goes through
        def produce():
            filler.qsize()  # this thread's connection, opened before the clock starts
            t = time.time()
            e, dt = timed_put(filler, item)
            return e, t, t + dt
        producer = harness.run_thread(produce)  # a thread: a connection of its own
        time.sleep(0.5)  # nothing to wait for: the put waits for room, silently
        check(not producer['done'].is_set(), 'a put that does not fit waits (0.5 s in): %r'
              % (producer.get('result'), ))
        t_drain = time.time()
        filler.get()
        filler.get()
        n_fill -= 2
        if check(producer['done'].wait(WAIT + 5), 'the waiting put ends'):
            e, t_put, t_end = producer.get('result', (producer.get('error'), 0, 0))
            check(e is None, 'a put that waits while a consumer drains goes through: %r' % (e,))
            note('  a put that waited for room went through %.2f s after it began, %.2f s after the drain began'
                 % (t_end - t_put, t_end - t_drain))
            check(t_drain <= t_end < t_put + WAIT,
                  'it went through after the drain began, within memory_wait: %.2f s, %.2f s after the drain'
                  % (t_end - t_put, t_end - t_drain))
            if e is None:
                n_fill += 1
        eq(filler.qsize(), n_fill, 'the queue holds it')

        # past the limit: small puts go in until the server holds more than max_memory
        small = b'p' * (32 * 1024)
        n_small, e = 0, None
        for _ in range(200):
            try:
                filler.put(small)
                n_small += 1
            except MemoryError as err:
                e = err
                break
        note('  then %d puts of 32 KiB; the next: %r' % (n_small, e))
        check(isinstance(e, MemoryError), 'small puts are refused once the server holds more than max_memory')
        # (what the server holds right after may be back under: a request's buffer freed)
        # a Lua method that keeps growing a table fails, naming the limit; reading methods of
        # the same object answer (Lua may go a little past max_memory, for them)
        h_lua = hits(srv)
        n0 = bag.count()
        e = harness.raises((MemoryError, RuntimeError), bag.grow, 200000, what='Bag.grow(200000) past max_memory')
        if e is not None:
            note('  Bag.grow past max_memory: %s: %s' % (type(e).__name__, e))
            check('max_memory' in str(e), "the Lua method's error names the server's memory limit: %s" % e)
        for what, method, args, want in (('Bag.count()', 'count', (), None), ('Bag.item(3)', 'item', (3,), 3)):
            try:
                got = bag._callmethod(method, args)
                check(isinstance(got, int) and (got == want if want is not None else got >= n0),
                      '%s answers past max_memory: %r' % (what, got))
            except Exception as e:
                harness.fail('%s, a reading method, past max_memory (after grow failed): %s: %s'
                             % (what, type(e).__name__, e))
        check(hits(srv) > h_lua, "limits_hit['max_memory'] counts the Lua refusal")

        # clients that leave a large reply unread: the server holds it (reads go on past the
        # limit), well over it, so that small removals below do not bring it back under
        levers = []
        while len(levers) < 8:
            mem = memory(srv)
            if mem['used'] > mem['max_memory'] + 768 * 1024:
                break
            c = harness.object_connection(srv, 'slow reader %d' % len(levers))
            c.send((held._id, '__getitem__', (slice(None),), {}))
            levers.append(c)
            harness.wait_until(lambda: used(srv) > mem['used'] + MIB // 2, 2)
        mem = memory(srv)
        note('  %d unread replies of 30,000 strings: used %d, max_memory %d (over by %d)'
             % (len(levers), mem['used'], mem['max_memory'], mem['used'] - mem['max_memory']))
        if not check(mem['used'] > mem['max_memory'] + 256 * 1024,
                     'the server holds well over max_memory: %d, limit %d' % (mem['used'], mem['max_memory'])):
            return
        before = info(srv)
        raw0 = _raw_calls[0]
        n_refused = 0

        # every call that adds data is refused, and changes nothing
        adds = [
            ('Queue.put', q.put, 'x'),
            ('Queue.put_nowait', q.put_nowait, 'x'),
            ('JoinableQueue.put', jq.put, 3),
            ('JoinableQueue.put_nowait', jq.put_nowait, 3),
            ('list.append', l.append, 6),
            ('list.extend', l.extend, [6, 7]),
            ('list.insert', l.insert, 0, 0),
            ('list.__setitem__', l.__setitem__, 0, 'new'),
            ('list += [8]', l.__iadd__, [8]),
            ('list *= 2', l.__imul__, 2),
            ('dict.__setitem__', d.__setitem__, 'e', 5),
            ('dict.setdefault', d.setdefault, 'e', 5),
            ('dict.update', d.update, {'e': 5}),
            ('dict |= {...}', d._callmethod, '__ior__', ({'e': 5},)),
            ('Namespace attribute set', setattr, ns, 'z', 3),
            ('Value.set', setattr, v, 'value', 8),
            ('set.add', st.add, 5),
            ('set.update', st.update, [5, 6]),
            ('set |= {...}', st.__ior__, {5}),
            ('set ^= {...}', st.__ixor__, {5}),
            ('set.symmetric_difference_update', st.symmetric_difference_update, {5}),
        ]
        for a in adds:
            refused(a[1], '%s past max_memory' % a[0], *a[2:])
            n_refused += 1
        eq(q.qsize(), 2, 'Queue: nothing added')
        eq(jq.qsize(), 2, 'JoinableQueue: nothing added')
        eq(l[:], [1, 2, 3, 4, 5], 'list: unchanged')
        eq(d.copy(), {'a': 1, 'b': 2, 'c': 3, 'd': 4}, 'dict: unchanged')
        eq((ns.x, ns.y, hasattr(ns, 'z')), (1, 2, False), 'Namespace: unchanged')
        eq(v.value, 7, 'Value: unchanged')
        eq(st.copy(), {1, 2, 3, 4}, 'set: unchanged')

        # create: a stock manager's RemoteError, #TRACEBACK on the wire
        e = harness.raises(RemoteError, m.list, [1], what='m.list() past max_memory')
        n_refused += 1
        if e is not None:
            check('MemoryError' in str(e) and 'max_memory' in str(e),
                  'a refused create says MemoryError and max_memory: %s' % e)
        reply = harness.raw_call(srv, None, 'create', ('dict',))
        n_refused += 1
        check(reply[0] == '#TRACEBACK' and 'MemoryError' in reply[1] and 'max_memory' in reply[1],
              'create on the wire past max_memory: #TRACEBACK with MemoryError naming max_memory: %r' % (reply,))
        eq(m._number_of_objects(), objects, 'no object made')

        # a large put waits memory_wait, then fails; the same proxy goes on
        e, dt = timed_put(filler, item)
        n_refused += 1
        check(isinstance(e, MemoryError) and 'max_memory' in str(e),
              'a 1 MiB put past max_memory: MemoryError naming max_memory: %r' % (e,))
        check(WAIT - 0.3 <= dt <= WAIT + 3, 'after waiting memory_wait (%g s): %.2f s' % (WAIT, dt))
        eq(filler.qsize(), n_fill + n_small, 'the same proxy answers after it')

        # by hand: while it waits, the server reads no more of it (the client's send blocks)
        c = harness.object_connection(srv, 'blocked sender')
        s = socket.fromfd(c.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        c.close()  # the socket object's own fd (a dup) is used from here, with timeouts
        data = frame(ForkingPickler.dumps((filler._id, 'put', (b'w' * (8 * MIB),), {})))
        s.settimeout(0.5)
        sent, t0 = 0, time.time()
        try:
            while sent < len(data):
                sent += s.send(data[sent:sent + 65536])
        except socket.timeout:
            pass
        note('  a %d-byte put past max_memory, by hand: %d bytes sent before the send blocked for 0.5 s'
             % (len(data), sent))
        check(sent < 2 * MIB, 'the server reads no more of a request that waits for room: %d of %d bytes sent'
              % (sent, len(data)))
        s.settimeout(WAIT + 10)
        try:
            s.sendall(data[sent:])
            reply = recv_reply(s)
            dt = time.time() - t0
            check(reply[0] == '#ERROR' and isinstance(reply[1], MemoryError) and 'max_memory' in str(reply[1]),
                  'then its bytes are read and dropped, and it gets #ERROR MemoryError: %r' % (reply,))
            check(WAIT - 0.3 <= dt <= WAIT + 3, 'after memory_wait: %.2f s' % dt)
            s.sendall(frame(ForkingPickler.dumps((filler._id, 'qsize', (), {}))))
            eq(recv_reply(s), ('#RETURN', n_fill + n_small), 'that connection answers its next request')
        except (OSError, EOFError) as e:
            harness.fail('a put past max_memory, by hand: %s: %s' % (type(e).__name__, e))
        s.close()
        n_refused += 1
        after = info(srv)
        eq(after['limits_hit'].get('max_memory', 0) - before['limits_hit'].get('max_memory', 0), n_refused,
           "limits_hit['max_memory'] counts each refused call")

        # the metrics page
        page = metrics(srv)
        mem = memory(srv)
        lu = page.get(('shmgr_memory_used_bytes', ''))
        ll = page.get(('shmgr_memory_limit_bytes', ''))
        eq(ll, float(LIMIT), 'shmgr_memory_limit_bytes')
        check(lu is not None and lu > LIMIT, 'shmgr_memory_used_bytes past the limit: %r' % (lu,))
        lh = page.get(('shmgr_limits_hit_total', '{limit="max_memory"}'))
        check(lh is not None and lh >= n_refused, 'shmgr_limits_hit_total{limit="max_memory"}: %r' % (lh,))

        # what reads or removes works
        eq(q.qsize(), 2, 'Queue.qsize past max_memory')
        eq(q.get(), 'a', 'Queue.get past max_memory')
        eq(q.get_nowait(), 'b', 'Queue.get_nowait past max_memory')
        eq(jq.get(), 1, 'JoinableQueue.get past max_memory')
        eq(jq.task_done(), None, 'JoinableQueue.task_done past max_memory')
        eq(l[0], 1, 'list.__getitem__ past max_memory')
        eq(len(l), 5, 'list.__len__ past max_memory')
        eq((l.index(3), l.count(3), 3 in l), (2, 1, True), 'list index, count, __contains__ past max_memory')
        eq(l.pop(), 5, 'list.pop past max_memory')
        del l[0]
        l.remove(2)
        eq(l[:], [3, 4], 'list __delitem__, remove past max_memory')
        eq(d['a'], 1, 'dict.__getitem__ past max_memory')
        eq((len(d), d.get('b'), 'c' in d), (4, 2, True), 'dict __len__, get, __contains__ past max_memory')
        eq(d.pop('a'), 1, 'dict.pop past max_memory')
        del d['b']
        eq(sorted(d.keys()), ['c', 'd'], 'dict __delitem__, keys past max_memory')
        eq(ns.x, 1, 'Namespace attribute get past max_memory')
        delattr(ns, 'y')
        eq(hasattr(ns, 'y'), False, 'Namespace attribute delete past max_memory')
        eq(v.value, 7, 'Value.get past max_memory')
        eq((1 in st, len(st)), (True, 4), 'set __contains__, __len__ past max_memory')
        st.remove(1)
        st.discard(2)
        check(st.pop() in (3, 4), 'set remove, discard, pop past max_memory')
        check(lock.acquire(), 'Lock.acquire past max_memory')
        lock.release()
        check(lock.acquire(timeout=1), 'Lock.acquire(timeout=1) past max_memory')
        lock.release()
        d.clear()
        st.clear()
        eq((len(d), len(st)), (0, 0), 'dict.clear, set.clear past max_memory')
        mem = memory(srv)
        check(mem['used'] > mem['max_memory'], 'still past max_memory after the removals: %d > %d'
              % (mem['used'], mem['max_memory']))

        # nobody was disconnected: the only connections opened since are shmgr_info's, the two
        # creates' and _number_of_objects' (each a fresh connection) and the blocked sender's
        now = info(srv)
        eq(now['connections']['total'] - before['connections']['total'], _raw_calls[0] - raw0 + 4,
           'no connection opened again by the clients past max_memory')
        for c in levers:
            check(c.poll(5) and c.recv() == ('#RETURN', ['%07d' % i for i in range(30000)]),
                  'a client that left its reply unread gets it in full')
            c.close()

        # consumers drain: every refused call goes through when retried
        got = 0
        while filler.qsize():
            filler.get()
            got += 1
        eq(got, n_fill + n_small, 'the filler items all come out')
        check(harness.wait_until(lambda: used(srv) < LIMIT // 2, 5),
              'the server holds less once drained and the replies are read: %d' % used(srv))
        h0 = hits(srv)
        for a in adds:
            try:
                a[1](*a[2:])
            except Exception as e:
                harness.fail('%s after the drain: raised %s: %s' % (a[0], type(e).__name__, e))
        eq(q.qsize(), 2, 'Queue: put and put_nowait went in')
        eq(jq.qsize(), 3, 'JoinableQueue: both went in')
        eq(l[:], ['new', 3, 4, 6, 6, 7, 8] * 2, 'list: every change made')
        eq(d.copy(), {'e': 5}, 'dict: every change made')
        eq((ns.x, ns.z), (1, 3), 'Namespace: the attribute set')
        eq(v.value, 8, 'Value: set')
        eq(st.copy(), {5, 6}, 'set: every change made')
        l2 = m.list([1])
        eq(l2[:], [1], 'create works again')
        e, dt = timed_put(filler, item)
        check(e is None and dt < 1.0, 'a 1 MiB put goes straight in: %r after %.2f s' % (e, dt))
        eq(bag.grow(10), bag.count(), 'Bag.grow works again')
        eq(hits(srv), h0, 'no refusal after the drain')
        check(srv.alive(), 'the server is alive')


# --------------------------------------------------------------------------
# Config values

def default_limit():
    """What the server takes as half the machine's memory (or of its cgroup v2 memory.max)."""
    total = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    try:
        with open('/proc/self/cgroup') as f:
            for line in f:
                if line.startswith('0::'):
                    with open('/sys/fs/cgroup%s/memory.max' % line[3:].strip()) as g:
                        text = g.read().strip()
                    if text.isdigit() and int(text) < total:
                        total = int(text)
    except (OSError, IOError):
        pass
    return total // 2


def write_conf(folder, text):
    path = os.path.join(folder, 'conf.lua')
    with open(path, 'w') as f:
        f.write('-- written by test_max_memory.py\n' + text)
    return path


def configs():
    if not SHMGR:
        harness.skip_part("max_memory's default, 0 and bad values", NO_LIMIT)
        return
    folder = tempfile.mkdtemp(prefix='shmgr-max-memory-')
    try:
        with harness.server() as srv:
            want = default_limit()
            got = memory(srv).get('max_memory')
            note('  default max_memory %r (half the memory: %d)' % (got, want))
            check(got is not None and abs(got - want) <= want // 100,
                  'the default max_memory is half the machine\'s memory: %r, want %d' % (got, want))
        with harness.server(write_conf(folder, 'limits = { max_memory = 0 }\n')) as srv:
            eq(memory(srv).get('max_memory'), 0, 'max_memory = 0: shmgr_info says 0 (no limit)')
            q = harness.sync_manager(srv).Queue()
            for _ in range(4):
                q.put(b'z' * (8 * MIB))
            eq(q.qsize(), 4, 'max_memory = 0: puts go in')
        for text, want in (('max_memory = -1', 'limits.max_memory must be a non-negative integer'),
                           ('max_memory = "1G"', 'limits.max_memory must be a non-negative integer'),
                           ('max_memory = 2.5', 'limits.max_memory must be a non-negative integer'),
                           ('memory_wait = -1', 'limits.memory_wait must be a non-negative number of seconds'),
                           ('memory_wait = "soon"', 'limits.memory_wait must be a non-negative number of seconds')):
            cfg = write_conf(folder, 'limits = { %s }\n' % text)
            p = subprocess.Popen([EXE, '--config', cfg, '--listen', '127.0.0.1:0'], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                out = p.communicate(timeout=10)[0].decode('utf-8', 'replace')
            except subprocess.TimeoutExpired:
                p.kill()
                out = p.communicate()[0].decode('utf-8', 'replace')
                harness.fail('limits = { %s }: the server started (still running after 10 s)' % text)
                continue
            check(p.returncode == 1 and want in out,
                  'limits = { %s }: refused at start (exit 1), saying %r: exit %r, %r' % (text, want, p.returncode, out))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------
# SIGHUP: a new max_memory and memory_wait apply at once

def reload(srv, path, text, what):
    """Write text as the config at path, SIGHUP srv, and wait for the reload's closing line."""
    with open(path + '.new', 'w') as f:
        f.write('-- written by test_max_memory.py\n' + text)
    os.rename(path + '.new', path)  # never half a file
    start = len(srv.log())
    os.kill(srv.pid, signal.SIGHUP)
    check(harness.wait_until(lambda: re.search(r'reload: (nothing changed|done: )', srv.log()[start:])),
          '%s: the reload ends with its closing line; log since SIGHUP:\n%s' % (what, srv.log()[start:]))
    return srv.log()[start:]


def cli_held(srv):
    """The 'held' line of `shmgr-cli info` against srv (whitespace squeezed), or the output."""
    argv = [CLI, '-a', 'unix:' + srv.address if isinstance(srv.address, str) else '%s:%d' % srv.address,
            '-k', srv.authkey.decode('ascii'), 'info']
    env = dict(os.environ)
    env.pop('SHMGR_AUTHKEY', None)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=30)
    out = p.stdout.decode('utf-8', 'replace')
    line = [' '.join(x.split()) for x in out.splitlines() if x.split()[:1] == ['held']]
    return line[0] if p.returncode == 0 and line else 'shmgr-cli info (exit %d):\n%s' % (p.returncode, out)


def fill(q, item, most):
    """Put item into q until a put fails (at most `most` times): (how many went in, the failure,
    how long the failing put took)."""
    for n in range(most):
        e, dt = timed_put(q, item)
        if e is not None:
            return n, e, dt
    return most, None, 0.0


def reloaded():
    if not SHMGR:
        harness.skip_part('limits.max_memory and memory_wait on SIGHUP', NO_LIMIT)
        return
    folder = tempfile.mkdtemp(prefix='shmgr-max-memory-')
    path = write_conf(folder, 'limits = { max_memory = 48 * 1024 * 1024, memory_wait = 0.2 }\n')
    try:
        with harness.server(path) as srv:
            m = harness.sync_manager(srv)
            q = m.Queue()
            item = b'r' * (4 * MIB)
            q.qsize()
            conn = q._tls.connection  # the stock proxy's connection: it never makes another
            n1, e, dt = fill(q, item, 32)
            note('  under 48 MiB: %d puts of 4 MiB, then %r after %.2f s' % (n1, e, dt))
            check(6 <= n1 <= 12 and isinstance(e, MemoryError) and 'max_memory' in str(e),
                  'under max_memory = 48 MiB puts of 4 MiB go in until one gets MemoryError: %d, then %r' % (n1, e))
            check(0.15 <= dt < 1.5, 'the refused put waited about memory_wait = 0.2 s: %.2f s' % dt)
            held = cli_held(srv)
            check(re.match(r'held \S+ of max_memory 48\.0M$', held),
                  'shmgr-cli info: what is held, of max_memory 48 MiB: %r' % held)

            log = reload(srv, path, 'limits = { max_memory = 96 * 1024 * 1024, memory_wait = 1.5 }\n', 'raised')
            check('reload: limits.max_memory 50331648 -> 100663296' in log and
                  'reload: limits.memory_wait 0.2 s -> 1.5 s' in log,
                  'the reload says max_memory and memory_wait changed:\n%s' % log)
            eq(memory(srv).get('max_memory'), 96 * MIB, "shmgr_info()['memory']['max_memory'] after the reload")
            check(re.match(r'held \S+ of max_memory 96\.0M$', cli_held(srv)),
                  'shmgr-cli info after the reload: of max_memory 96 MiB: %r' % cli_held(srv))
            e, dt = timed_put(q, item)
            check(e is None, 'the put refused under 48 MiB goes in under 96 MiB: %r' % (e,))
            n2, e, dt = fill(q, item, 32)
            note('  under 96 MiB: %d more, then %r after %.2f s' % (n2, e, dt))
            check(n2 >= 6 and isinstance(e, MemoryError),
                  'under 96 MiB more puts go in until one is refused: %d, then %r' % (n2, e))
            check(1.3 <= dt < 4, 'the refused put waited the new memory_wait, 1.5 s: %.2f s' % dt)

            log = reload(srv, path, 'limits = { max_memory = 0 }\n', 'no limit')
            check('reload: limits.max_memory 100663296 -> 0' in log, 'the reload says max_memory -> 0:\n%s' % log)
            n3, e, dt = fill(q, item, 8)
            eq((n3, e), (8, None), 'with max_memory = 0 every put goes in')
            check(cli_held(srv).endswith('(no max_memory)'), 'shmgr-cli info: no max_memory: %r' % cli_held(srv))
            size = 1 + n1 + n2 + n3
            eq(q.qsize(), size, 'the queue holds every put that went in')
            got = 0
            while q.qsize():
                got += q.get() == item
            eq(got, size, 'and gives them back whole')
            check(q._tls.connection is conn and not conn.closed,
                  'the proxy kept its one connection through the refusals and reloads')
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------
# The acceptance test: 32 clients, 50 MB each, 512 MiB

def client_main(idx, size):
    """A client process: its own manager; puts its 50 MB when told to, says how it went."""
    m = harness.client_manager(harness.from_env(), ['get_queue'])
    q = m.get_queue()
    q.qsize()  # the proxy's connection is open from here
    data = (idx, bytes(size))  # built once (untouched zero pages), kept for a retry

    def say(text):
        print(text)
        sys.stdout.flush()
    say('ready')
    for line in sys.stdin:
        cmd = line.strip()
        if cmd not in ('go', 'retry'):
            break
        try:
            q.put(data)
            say('%s ok' % cmd)
            data = None
        except MemoryError as e:
            say('%s refused %s' % (cmd, str(e).replace('\n', ' ')))
        except Exception as e:
            say('%s other %s: %s' % (cmd, type(e).__name__, str(e).replace('\n', ' ')[-300:]))
        try:
            say('alive %d %d' % (q.qsize(), m._number_of_objects()))
        except Exception as e:
            say('dead %s: %s' % (type(e).__name__, e))
    say('bye')


def client(srv, idx, size):
    """A client process (client_main), driven through its stdin."""
    # transparent huge pages for the clients' 50 MB buffers: where first touching a page
    # is slow (a VM), pickling 50 MB takes 20 ms instead of 300 (glibc >= 2.35; ignored before)
    tunables = ':'.join(x for x in (os.environ.get('GLIBC_TUNABLES'), 'glibc.malloc.hugetlb=1') if x)
    return harness.Child(srv, argv=[os.path.abspath(__file__), 'client'], args=(idx, size),
                         env={'GLIBC_TUNABLES': tunables}, driven=True)


def status_kb(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


class Drainer(object):
    """Gets the clients' items from the queue on a connection of its own, each reply read
    straight from the socket into one buffer made once: a stock get would allocate, fill and
    unpickle 50 MB per item (three times), and first touching memory is what costs most on a
    small machine. The client's index is the first integer of the reply's pickle, read with
    pickletools from the reply's first bytes."""

    def __init__(self, srv, ident, size):
        self.c = harness.object_connection(srv, 'drainer')
        family = socket.AF_UNIX if isinstance(srv.address, str) else socket.AF_INET
        self.s = socket.fromfd(self.c.fileno(), family, socket.SOCK_STREAM)
        self.s.settimeout(60)
        self.ident = ident
        self.size = size
        self.buf = bytearray(size + 65536)  # zero-filled: touched once, here
        self.view = memoryview(self.buf)

    def _read(self, n):
        got = 0
        while got < n:
            k = self.s.recv_into(self.view[got:n])
            if not k:
                raise EOFError('the server closed the drainer\'s connection')
            got += k

    def get(self, what):
        # sent on the socket too: its timeout made the shared file description non-blocking
        request = bytes(ForkingPickler.dumps((self.ident, 'get', (True, 30), {})))
        self.s.sendall(struct.pack('!i', len(request)) + request)
        self._read(4)
        n = struct.unpack('!i', self.buf[:4])[0]
        if n == -1:
            self._read(8)
            n = struct.unpack('!Q', self.buf[:8])[0]
        if n > len(self.buf):
            harness.fail('%s: a reply of %d bytes, more than a client\'s item' % (what, n))
            raise EOFError('out of step')
        self._read(n)
        if n < self.size:
            harness.fail('%s: a reply of %d bytes, not a client\'s item: %r' % (what, n, pickle.loads(self.buf[:n])))
            return None
        kind, idx = None, None
        try:
            for op, arg, _ in pickletools.genops(bytes(self.buf[:256])):
                if kind is None and isinstance(arg, str):
                    kind = arg
                elif kind is not None and op.name in ('BININT', 'BININT1', 'BININT2', 'INT', 'LONG', 'LONG1'):
                    idx = arg
                    break
        except ValueError:  # the 50 MB bytes, cut off
            pass
        check(kind == '#RETURN' and idx in range(CLIENTS) and self.size < n < self.size + 1000,
              '%s: a client\'s (index, %d bytes) in a %d-byte reply: %r, index %r' % (what, self.size, n, kind, idx))
        return idx


def py_setup(M):
    import queue as queue_module
    q = queue_module.Queue()
    M.register('get_queue', callable=lambda: q)


def acceptance():
    with harness.server(harness.conf('max_memory_clients.lua'), py_setup) as srv:
        t_start = time.time()
        m = harness.client_manager(srv, ['get_queue'])
        q = m.get_queue()
        eq(q.qsize(), 0, 'the queue starts empty')
        base_rss = status_kb(srv.pid, 'VmRSS') * 1024
        size = CLIENT_BYTES if SHMGR else CPYTHON_CLIENT_BYTES
        if not SHMGR:
            harness.skip_part('50 MB items', NO_LIMIT + ': the same with %d MB items' % (size // 1000000))
        clients = [client(srv, i, size) for i in range(CLIENTS)]
        try:
            for c in clients:
                c.expect('ready', 60)
            t0 = time.time()
            for c in clients:
                c.tell('go')
            outcome = {}
            for i, c in enumerate(clients):
                line = c.expect(('go ',), 90)
                outcome[i] = line
                alive = c.expect(('alive', 'dead'), 30)
                check(alive is not None and alive.startswith('alive'),
                      'client %d: its manager answers after its put: %r' % (i, alive))
            t1 = time.time()
            ok = [i for i, line in outcome.items() if line == 'go ok']
            no = [i for i, line in outcome.items() if line and line.startswith('go refused ')]
            other = [(i, line) for i, line in outcome.items() if i not in ok and i not in no]
            note('  %d clients put %d MB at once in %.1f s: %d went in, %d MemoryError, %d else'
                 % (CLIENTS, size // 1000000, t1 - t0, len(ok), len(no), len(other)))
            check(not other, 'every put succeeds or raises MemoryError: %r' % (other,))
            for i in no[:1]:
                note('  e.g. client %d: %s' % (i, outcome[i]))
            check(all('max_memory' in outcome[i] for i in no), 'each MemoryError names max_memory')
            if SHMGR:
                check(1 <= len(ok) <= BIG_LIMIT // size,
                      'between 1 and %d puts of 50 MB fit under 512 MiB: %d did' % (BIG_LIMIT // size, len(ok)))
            else:
                eq(len(ok), CLIENTS, "CPython's server (no limit) takes every put")
            hwm_put = status_kb(srv.pid, 'VmHWM') * 1024

            # drain, then the refused clients retry, a few at a time (what fits in the drained
            # queue at once), the queue drained between
            drainer = Drainer(srv, q._id, size)
            items = []

            def drain(what, n):
                for _ in range(n):
                    idx = drainer.get(what)
                    items.append(idx)

            eq(q.qsize(), len(ok), 'the queue holds the puts that went in')
            t_drain = time.time()
            drain('drain', len(ok))
            note('  drained %d items in %.1f s' % (len(ok), time.time() - t_drain))
            eq(sorted(items), sorted(ok), 'the items are those of the clients whose put went in')
            eq(q.qsize(), 0, 'the queue is drained')
            t_retry = time.time()
            for b in range(0, len(no), RETRY_BATCH):
                batch = no[b:b + RETRY_BATCH]
                for i in batch:
                    clients[i].tell('retry')
                went = []
                for i in batch:
                    line = clients[i].expect(('retry ',), 60)
                    check(line == 'retry ok', 'client %d: its refused put succeeds when retried: %r' % (i, line))
                    alive = clients[i].expect(('alive', 'dead'), 30)
                    check(alive is not None and alive.startswith('alive'), 'client %d: still answers: %r' % (i, alive))
                    if line == 'retry ok':
                        went.append(i)
                n0 = len(items)
                drain('the retries of clients %s' % batch, len(went))
                eq(sorted(items[n0:]), sorted(went), 'the retried items are those clients\'')
            t2 = time.time()
            eq(q.qsize(), 0, 'the queue is empty at the end')
            eq(len(items), CLIENTS, 'item count at the end')
            eq(sorted(items), list(range(CLIENTS)), 'one item from each client')
            for c in clients:
                c.tell('exit')
            for i, c in enumerate(clients):
                c.expect('bye', 30)
                try:
                    rc = c.proc.wait(30)
                except subprocess.TimeoutExpired:
                    rc = None
                eq(rc, 0, 'client %d exits' % i)
        finally:
            for c in clients:
                c.kill()
        hwm = status_kb(srv.pid, 'VmHWM') * 1024
        bound = BIG_LIMIT * 5 // 4 + base_rss
        note('  server RSS at start %.1f MiB; peak %.1f MiB during the puts, %.1f MiB in all; bound %.1f MiB '
             '(512 MiB + 25%% + the start); puts %.1f s, retries %.1f s, whole test %.1f s'
             % (base_rss / MIB, hwm_put / MIB, hwm / MIB, bound / MIB, t1 - t0, t2 - t_retry, time.time() - t_start))
        if SHMGR:
            check(hwm <= bound, "the server's peak RSS %.1f MiB stays under %.1f MiB" % (hwm / MIB, bound / MIB))
            i = info(srv)
            eq(i['memory'].get('max_memory'), BIG_LIMIT, 'shmgr_info: max_memory')
            eq(i['limits_hit'].get('max_memory'), len(no), "limits_hit['max_memory']: one per refused put")
        else:
            harness.skip_part("the server's peak RSS", NO_LIMIT + ': it holds every item')


def main():
    if len(sys.argv) > 1 and sys.argv[1] == 'client':
        client_main(int(sys.argv[2]), int(sys.argv[3]))
        return
    parts = [('semantics', 'max_memory semantics', semantics),
             ('configs', 'max_memory configs', configs),
             ('reload', 'max_memory on SIGHUP', reloaded),
             ('acceptance', '32 clients x 50 MB under 512 MiB', acceptance)]
    only = sys.argv[1:]  # names of parts to run (all by default)
    for name, what, func in parts:
        if only and name not in only:
            continue
        if name == 'acceptance' and not only and not harness.heavy(what, '1.6 GB from 32 processes'):
            continue
        harness.part(what, func)
    harness.done()


if __name__ == '__main__':
    main()
