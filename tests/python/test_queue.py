"""The built-in Queue and JoinableQueue through a stock SyncManager client:
values of every kind, sizes, exceptions, timeouts, blocking across processes,
fairness, and what happens when a blocked client dies."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import datetime  # noqa: E402
import decimal  # noqa: E402
import math  # noqa: E402
import queue  # noqa: E402
import time  # noqa: E402


class Point(object):
    """A user class: it travels by pickle, the server never imports it."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return 'Point(%r, %r)' % (self.x, self.y)


class Slotted(object):
    __slots__ = ('a', 'b')

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __eq__(self, other):
        return type(other) is Slotted and (self.a, self.b) == (other.a, other.b)

    def __repr__(self):
        return 'Slotted(%r, %r)' % (self.a, self.b)


same = harness.same


def values():
    shared = [1, 2]
    nested = {'list': [1, (2, 3), {'k': {4, 5}}], 'bytes': b'\x00\xff', ('t', 1): frozenset('ab')}
    return [
        ('None', None), ('True', True), ('False', False),
        ('small int', 7), ('negative int', -1), ('zero', 0), ('int 2**31', 2 ** 31),
        ('int 2**63-1', 2 ** 63 - 1), ('int -2**63', -2 ** 63), ('int 2**64', 2 ** 64),
        ('int -2**100', -2 ** 100), ('int 10**300', 10 ** 300),
        ('float', 0.1), ('float -0.0', -0.0), ('float 1e308', 1e308), ('nan', float('nan')),
        ('inf', float('inf')), ('-inf', float('-inf')),
        ('empty str', ''), ('ascii str', 'hello'), ('non-ASCII str', 'h\u00e9llo w\u00f6rld \u4e2d\u6587 \U0001f600'),
        ('str with NUL', 'a\x00b'), ('100 KB str', ('x\u00e9' * 25000) + ('y' * 50000)),
        ('empty bytes', b''), ('bytes', bytes(range(256))), ('100 KB bytes', os.urandom(100 * 1024)),
        ('bytearray', bytearray(b'\x01\x02abc')), ('empty tuple', ()), ('tuple', (1, 'a', None)),
        ('1-tuple', (1,)), ('list', [1, 'a', [2.5]]), ('empty list', []), ('dict', {'a': 1, 2: 'b', None: [], (1, 2): 3.0}),
        ('empty dict', {}), ('set', {1, 'a', (2, 3)}), ('empty set', set()), ('frozenset', frozenset([1, 2, 3])),
        ('nested', nested), ('1000-item list', list(range(1000))),
        ('3000-key dict', dict((str(i), i) for i in range(3000))),
        ('user class', Point(1, [2, 3])), ('user class with __slots__', Slotted('s', (1,))),
        ('exception', ValueError('oops', 3)), ('KeyError', KeyError('k')),
        ('slice', slice(1, 10, 2)), ('datetime', datetime.datetime(2024, 2, 29, 12, 30, 45, 123456)),
        ('aware datetime', datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))),
        ('date', datetime.date(1999, 12, 31)), ('timedelta', datetime.timedelta(days=1, seconds=2)),
        ('Decimal', decimal.Decimal('1.10')), ('complex', complex(1, -2)),
        ('shared list', (shared, shared)),
    ]


def q_child(srv, q, body):
    """A child process with its own proxy to q (by ident), printing READY
    before running body (Python source using q)."""
    code = ('import sys, time, queue, harness\n'
            'm = harness.sync_manager(harness.from_env())\n'
            'q = harness.proxy_for(m, sys.argv[1], sys.argv[2])\n'
            'q.qsize()\n'  # connection established before READY
            'print("READY"); sys.stdout.flush()\n' + body)
    c = harness.Child(srv, code=code, args=(q._token.typeid, q._token.id))
    c.expect('READY', 20)
    return c


GET = ('try:\n'
       '    v = q.get(%s)\n'
       '    print("GOT %%r" %% (v,))\n'
       'except queue.Empty:\n'
       '    print("EMPTY")\n'
       'sys.stdout.flush()\n')


def test_values(m):
    q = m.Queue()
    vals = values()
    bad = set()
    for what, v in vals:
        try:
            q.put(v)
            got = q.get(timeout=10)
        except Exception as e:
            harness.fail('%s round trip raised %s: %.500s' % (what, type(e).__name__, e))
            bad.add(what)
            continue
        harness.check(same(got, v), '%s round trip: got %.200r (%s)' % (what, got, type(got).__name__))
    # shared references keep their identity
    shared = [1, 2]
    q.put((shared, shared, [shared]))
    got = q.get(timeout=10)
    harness.check(got[0] is got[1] and got[2][0] is got[0], 'same list twice in a tuple keeps identity')
    # a list containing itself
    cyc = [1]
    cyc.append(cyc)
    q.put(cyc)
    got = q.get(timeout=10)
    harness.check(type(got) is list and len(got) == 2 and got[1] is got,
                  'self-referencing list round trip: %r' % (got,))
    # FIFO across many kinds at once (those that made the round trip alone)
    vals = [(what, v) for what, v in vals if what not in bad]
    for _, v in vals:
        q.put(v)
    harness.eq(q.qsize(), len(vals), 'qsize after putting all values')
    out = [q.get(timeout=10) for _ in vals]
    harness.check(all(same(a, b) for a, b in zip(out, [v for _, v in vals])), 'FIFO order of all values')
    # keyword arguments are forwarded
    q.put(item='kw', block=True, timeout=1)
    harness.eq(q.get(block=True, timeout=1), 'kw', 'put/get with keyword arguments')


def test_sizes_and_errors(m):
    q = m.Queue(2)
    harness.eq((q.qsize(), q.empty(), q.full()), (0, True, False), 'Queue(2) fresh: qsize, empty, full')
    q.put('a')
    harness.eq((q.qsize(), q.empty(), q.full()), (1, False, False), 'Queue(2) one item')
    q.put('b')
    harness.eq((q.qsize(), q.empty(), q.full()), (2, False, True), 'Queue(2) two items')
    for what, call in [('put_nowait', lambda: q.put_nowait('c')),
                       ('put(x, False)', lambda: q.put('c', False)),
                       ('put(x, block=False)', lambda: q.put('c', block=False))]:
        e = harness.raises(queue.Full, call, what=what + ' on a full queue')
        if e is not None:
            harness.check(type(e) is queue.Full and e.args == (), '%s: exactly queue.Full(): %r' % (what, e))
    t0 = time.time()
    harness.raises(queue.Full, lambda: q.put('c', True, 0.2), what='put(x, True, 0.2) on a full queue')
    dt = time.time() - t0
    harness.check(0.15 <= dt < 2, 'put(x, True, 0.2) waited %.3f s (want about 0.2)' % dt)
    harness.eq(q.qsize(), 2, 'qsize after refused puts')
    harness.eq([q.get(), q.get_nowait()], ['a', 'b'], 'FIFO from a full queue')

    e = harness.raises(queue.Empty, q.get_nowait, what='get_nowait on empty')
    if e is not None:
        harness.check(type(e) is queue.Empty and e.args == (), 'exactly queue.Empty(): %r' % e)
    harness.raises(queue.Empty, lambda: q.get(False), what='get(False) on empty')
    harness.raises(queue.Empty, lambda: q.get(block=False), what='get(block=False) on empty')
    for what, call in [('get(True, 0.2)', lambda: q.get(True, 0.2)),
                       ('get(timeout=0.2)', lambda: q.get(timeout=0.2))]:
        t0 = time.time()
        harness.raises(queue.Empty, call, what=what + ' on empty')
        dt = time.time() - t0
        harness.check(0.15 <= dt < 2, '%s on empty waited %.3f s (want about 0.2)' % (what, dt))
    q.put(1)
    harness.eq(q.get(False), 1, 'get(False) with an item')
    harness.eq(q.qsize(), 0, 'qsize back to 0')

    u = m.Queue()
    for i in range(50):
        u.put(i)
    harness.eq(u.full(), False, 'unbounded queue is never full')
    harness.eq([u.get() for _ in range(50)], list(range(50)), 'FIFO of 50 ints')


def test_joinable(m):
    jq = m.JoinableQueue()
    for i in range(3):
        jq.put(i)
    harness.eq([jq.get() for _ in range(3)], [0, 1, 2], 'JoinableQueue FIFO')
    box = harness.run_thread(jq.join)  # another thread = another connection
    harness.check(not box['done'].wait(0.4), 'join() returns before task_done() calls')
    jq.task_done()
    jq.task_done()
    harness.check(not box['done'].wait(0.3), 'join() still waits with one task unfinished')
    jq.task_done()
    harness.check(box['done'].wait(5) and 'error' not in box, 'join() returns after the last task_done(): %r'
                  % box.get('error'))
    e = harness.raises(ValueError, jq.task_done, what='task_done() too many times')
    if e is not None:
        harness.eq(e.args, ('task_done() called too many times',), 'task_done() error message')
    harness.eq(jq.join(), None, 'join() with nothing unfinished returns at once')


def test_cross_process(srv, m):
    # a blocking get() in this process is woken by a put from another process
    q = m.Queue()
    c = q_child(srv, q, 'time.sleep(0.5)\nq.put(("from", "child"))\nprint("PUT")\n')
    t0 = time.time()
    try:
        got = q.get(True, 10)
    except queue.Empty:
        got = 'Empty'
    dt = time.time() - t0
    harness.eq(got, ('from', 'child'), 'get() woken by another process')
    harness.check(0.3 <= dt < 5, 'get() blocked %.3f s until the put (want about 0.5)' % dt)
    c.wait()

    # several blocked getters are served in arrival order
    q = m.Queue()
    kids = []
    for _ in range(3):
        kids.append(q_child(srv, q, GET % ''))
        time.sleep(0.4)  # let its get() reach the server before the next one
    for i, k in enumerate(kids):
        q.put('item%d' % i)
        harness.eq(k.expect('GOT', 10), "GOT 'item%d'" % i, 'getter %d (in arrival order)' % i)
        for other in kids[i + 1:]:
            line = other.poll_line(0.05)
            harness.check(line is None, 'a later getter got something early: %r' % line)
    for k in kids:
        k.wait()

    # a getter whose timeout expires gets Empty; the next item goes to the
    # getter still waiting, and nothing is lost
    q = m.Queue()
    a = q_child(srv, q, GET % 'True, 1.0')
    time.sleep(0.3)
    b = q_child(srv, q, GET % '')
    harness.eq(a.expect('EMPTY', 10), 'EMPTY', 'getter with timeout 1.0 gets Empty')
    q.put('for b')
    harness.eq(b.expect('GOT', 10), "GOT 'for b'", 'the next put goes to the getter still waiting')
    harness.eq(q.qsize(), 0, 'qsize after the waiting getter took the item')
    a.wait()
    b.wait()

    # a blocked put on a full queue is woken by a get
    q = m.Queue(1)
    q.put('first')
    p = q_child(srv, q, 'q.put("second")\nprint("PUT-DONE")\nsys.stdout.flush()\n')
    harness.eq(p.poll_line(0.5), None, 'put() on a full queue blocks')
    harness.eq(q.get(timeout=5), 'first', 'get() from the full queue')
    harness.eq(p.expect('PUT-DONE', 10), 'PUT-DONE', 'blocked put() woken by the get()')
    harness.eq(q.get(timeout=5), 'second', 'the blocked put()\'s item')
    p.wait()


def test_killed_getter(srv, m):
    if srv.backend == 'cpython':
        harness.skip_part('client killed while parked in get()',
                          "CPython's server loses the next item: the dead client's handler thread "
                          'still waits in Queue.get(), takes the item and drops it when the reply '
                          'cannot be sent; losing nothing is shmgr\'s promise (DESIGN.md principle 3)')
        return
    # killed alone: the item put afterwards stays in the queue
    q = m.Queue()
    c = q_child(srv, q, GET % '')
    time.sleep(0.4)
    c.kill()
    time.sleep(0.3)
    q.put('after kill')
    harness.wait_until(lambda: q.qsize() == 1, 2)
    harness.eq(q.qsize(), 1, 'qsize after a put following the killed getter')
    try:
        got = q.get_nowait()
    except queue.Empty:
        got = 'Empty'
    harness.eq(got, 'after kill', 'item put after the getter was killed')

    # killed ahead of another getter: the item goes to the next one
    q = m.Queue()
    c = q_child(srv, q, GET % '')
    time.sleep(0.4)
    d = q_child(srv, q, GET % '')
    time.sleep(0.4)
    c.kill()
    time.sleep(0.3)
    q.put('for d')
    harness.eq(d.expect('GOT', 10), "GOT 'for d'", 'the getter behind the killed one gets the item')
    d.wait()
    harness.eq(q.qsize(), 0, 'nothing left over')

    # killed while parked with a timeout: same
    q = m.Queue()
    c = q_child(srv, q, GET % 'True, 30')
    time.sleep(0.4)
    c.kill()
    time.sleep(0.3)
    q.put('after timed kill')
    try:
        got = q.get(timeout=2)
    except queue.Empty:
        got = 'Empty'
    harness.eq(got, 'after timed kill', 'item put after a timed getter was killed')


def main():
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        test_values(m)
        test_sizes_and_errors(m)
        test_joinable(m)
        test_cross_process(srv, m)
        test_killed_getter(srv, m)
        # the server still answers normally
        q = m.Queue()
        q.put('still there')
        harness.eq(q.get(timeout=5), 'still there', 'server serves after all of the above')
    harness.done()


if __name__ == '__main__':
    main()
