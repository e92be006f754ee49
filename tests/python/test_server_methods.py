"""The manager's server methods as stock clients use them (create, incref,
decref, get_methods, number_of_objects, debug_info, dummy, accept_connection,
shutdown) and the raw replies behind them."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import gc  # noqa: E402
import queue  # noqa: E402
from multiprocessing.managers import RemoteError  # noqa: E402


def py_setup(M):
    shared = queue.Queue()
    M.register('get_shared_queue', callable=lambda: shared)


def is_traceback(reply, *needles):
    return (isinstance(reply, tuple) and len(reply) == 2 and reply[0] == '#TRACEBACK'
            and isinstance(reply[1], str) and all(n in reply[1] for n in needles))


def test_counts(srv, m):
    n0 = m._number_of_objects()
    harness.check(isinstance(n0, int) and n0 >= 0, '_number_of_objects() is an int: %r' % (n0,))
    q1 = m.Queue()
    harness.eq(m._number_of_objects(), n0 + 1, 'number_of_objects after one create')
    q2 = m.JoinableQueue()
    harness.eq(m._number_of_objects(), n0 + 2, 'number_of_objects after two creates')
    info = m._debug_info()
    harness.check(isinstance(info, str), '_debug_info() returns a str: %r' % type(info))
    q1.put(1)
    q2.put(2)
    del q1, q2
    gc.collect()
    harness.wait_until(lambda: m._number_of_objects() == n0, 3)
    harness.eq(m._number_of_objects(), n0, 'number_of_objects back to its start after the proxies are gone')
    return n0


def test_getter_refcounts(srv, n0):
    m = harness.client_manager(srv, ['get_shared_queue'])
    a = m.get_shared_queue()
    b = m.get_shared_queue()
    harness.eq(a._token.id, b._token.id, 'two proxies from the getter name one object')
    harness.eq(m._number_of_objects(), n0 + 1, 'number_of_objects with two proxies to one object')
    a.put('kept')
    del a
    gc.collect()
    harness.eq(b.qsize(), 1, 'object still works through the other proxy')
    harness.eq(b.get(timeout=5), 'kept', 'item put through the dropped proxy')
    b.put('survives')
    del b
    gc.collect()
    harness.wait_until(lambda: m._number_of_objects() == n0, 3)
    harness.eq(m._number_of_objects(), n0, 'number_of_objects after both getter proxies are gone')
    c = m.get_shared_queue()
    harness.eq(c.get(timeout=5), 'survives', 'the getter returns the same object again')


def test_methods_and_errors(srv, m):
    q = m.Queue()
    ident = q._token.id
    # AutoProxy with no exposed list asks the server (get_methods)
    p = harness.proxy_for(m, 'Queue', ident)
    for meth in ('get', 'put', 'qsize', 'get_nowait', 'put_nowait', 'empty', 'full'):
        harness.check(hasattr(p, meth), 'AutoProxy built from get_methods has %s' % meth)
    p.put('via get_methods proxy')
    harness.eq(q.get(timeout=5), 'via get_methods proxy', 'proxy built by get_methods works')
    reply = harness.raw_call(srv, None, 'get_methods', (q._token,))
    harness.check(reply[0] == '#RETURN' and isinstance(reply[1], (tuple, list))
                  and set(['get', 'put', 'qsize', 'task_done', 'join']) <= set(reply[1]),
                  'raw get_methods reply: %r' % (reply,))
    del p
    gc.collect()

    # an unknown typeid
    m2 = harness.client_manager(srv, ['NoSuchType'])
    e = harness.raises(RemoteError, m2.NoSuchType, what='create of an unknown typeid')
    if e is not None:
        harness.check('NoSuchType' in str(e), 'unknown typeid error names it: %r' % str(e))

    # a method on an ident the server does not have
    for bogus in ('no-such-ident', '0', 'ffffffffffff'):
        fp = harness.proxy_for(m, 'Queue', bogus, exposed=('qsize', 'get'), incref=False)
        e = harness.raises(RemoteError, fp.qsize, what='qsize() on forged ident %r' % bogus)
        harness.eq(q.qsize(), 0, 'real proxy still served after the forged call (%r)' % bogus)

    # incref of a forged ident fails when the proxy is built
    harness.raises(RemoteError, harness.proxy_for, m, 'Queue', 'no-such-ident', ('qsize',),
                   what='incref of a forged ident')


def test_raw(srv):
    reply = harness.raw_call(srv, None, 'bogus')
    harness.check(is_traceback(reply, "'bogus' unrecognized"), "bogus server method: %r" % (reply,))
    harness.eq(harness.raw_call(srv, None, 'dummy'), ('#RETURN', None), 'dummy')
    reply = harness.raw_call(srv, None, 'number_of_objects')
    harness.check(reply[0] == '#RETURN' and type(reply[1]) is int, 'number_of_objects: %r' % (reply,))
    n = reply[1]
    reply = harness.raw_call(srv, None, 'debug_info')
    harness.check(reply[0] == '#RETURN' and isinstance(reply[1], str), 'debug_info: %r' % (reply,))

    reply = harness.raw_call(srv, None, 'create', ('Queue',))
    ok = (reply[0] == '#RETURN' and isinstance(reply[1], tuple) and len(reply[1]) == 2
          and isinstance(reply[1][0], str) and isinstance(reply[1][1], tuple)
          and 'get' in reply[1][1])
    harness.check(ok, 'raw create Queue -> (ident str, exposed tuple): %r' % (reply,))
    if ok:
        ident = reply[1][0]
        harness.eq(harness.raw_call(srv, None, 'number_of_objects'), ('#RETURN', n + 1),
                   'number_of_objects after raw create')
        harness.eq(harness.raw_call(srv, None, 'incref', (ident,)), ('#RETURN', None), 'raw incref')
        harness.eq(harness.raw_call(srv, None, 'decref', (ident,)), ('#RETURN', None), 'raw decref 1')
        harness.eq(harness.raw_call(srv, None, 'number_of_objects'), ('#RETURN', n + 1),
                   'object kept while its refcount is 1')
        harness.eq(harness.raw_call(srv, None, 'decref', (ident,)), ('#RETURN', None), 'raw decref 2')
        harness.eq(harness.raw_call(srv, None, 'number_of_objects'), ('#RETURN', n),
                   'object gone at refcount 0')
        reply = harness.raw_call(srv, None, 'decref', (ident,))
        harness.check(is_traceback(reply), 'decref of a released ident -> #TRACEBACK: %r' % (reply,))
    reply = harness.raw_call(srv, None, 'incref', ('no-such-ident',))
    harness.check(is_traceback(reply), 'incref of an unknown ident -> #TRACEBACK: %r' % (reply,))
    reply = harness.raw_call(srv, None, 'create', ())
    harness.check(is_traceback(reply), 'create without a typeid -> #TRACEBACK: %r' % (reply,))
    reply = harness.raw_call(srv, None, 'create', ('NoSuchType',))
    harness.check(is_traceback(reply, 'NoSuchType'), 'create of an unknown typeid: %r' % (reply,))

    # accept_connection: then object requests on the same connection
    reply = harness.raw_call(srv, None, 'create', ('Queue',))
    ident = reply[1][0]
    c = harness.raw_client(srv)
    try:
        c.send((None, 'accept_connection', ('raw-test',), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'accept_connection reply')
        c.send((ident, 'qsize', (), {}))
        harness.eq(c.recv(), ('#RETURN', 0), 'qsize on the accepted connection')
        c.send((ident, 'put', ('x',), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'put')
        c.send((ident, 'get_nowait', (), {}))
        harness.eq(c.recv(), ('#RETURN', 'x'), 'get_nowait')
        c.send((ident, 'get_nowait', (), {}))
        r = c.recv()
        harness.check(r[0] == '#ERROR' and type(r[1]) is queue.Empty, 'get_nowait on empty: %r' % (r,))
        c.send((ident, 'get', (), {'timeout': 0.1}))
        r = c.recv()
        harness.check(r[0] == '#ERROR' and type(r[1]) is queue.Empty, 'get(timeout=0.1): %r' % (r,))
        c.send((ident, '_put', ('y',), {}))
        r = c.recv()
        harness.check(is_traceback(r, "'_put'", 'not in exposed'), 'non-exposed method: %r' % (r,))
        c.send((ident, '__repr__', (), {}))
        r = c.recv()
        harness.check(r[0] == '#RETURN' and isinstance(r[1], str), '__repr__ fallback: %r' % (r,))
        c.send(('no-such-ident', 'qsize', (), {}))
        r = c.recv()
        harness.check(is_traceback(r), 'unknown ident on the accepted connection: %r' % (r,))
        c.send((ident, 'qsize', (), {}))
        harness.eq(c.recv(), ('#RETURN', 0), 'connection still in sync after errors')
    finally:
        c.close()
    harness.eq(harness.raw_call(srv, None, 'decref', (ident,)), ('#RETURN', None), 'decref raw queue')


def test_shutdown(srv):
    # A connected BaseManager has no shutdown() (CPython sets it only in
    # start()), so a remote client stops the server with the raw request.
    reply = harness.raw_call(srv, None, 'shutdown')
    harness.eq(reply, ('#RETURN', None), 'shutdown reply')
    rc = srv.wait_exit(5)
    harness.eq(rc, 0, 'server exit status within 5 s of shutdown')
    if rc is not None:
        harness.raises(OSError, harness.raw_client, srv, what='connect after shutdown')


def test_argument_counts(srv):
    """Server methods count self and the connection in "takes N positional arguments", as
    CPython's `def incref(self, c, ident)` does (3.10+ qualify the name with Server.)."""
    for name, args, want in [
            ('incref', ('a', 'b'), 'incref() takes 3 positional arguments but 4 were given'),
            ('decref', (1, 2, 3), 'decref() takes 3 positional arguments but 5 were given'),
            ('incref', (), "incref() missing 1 required positional argument: 'ident'"),
            ('dummy', (1,), 'dummy() takes 2 positional arguments but 3 were given'),
            ('number_of_objects', (1, 2), 'number_of_objects() takes 2 positional arguments but 4 were given'),
            ('get_methods', (), "get_methods() missing 1 required positional argument: 'token'"),
            ('accept_connection', ('a', 'b'), 'accept_connection() takes 3 positional arguments but 4 were given')]:
        reply = harness.raw_call(srv, None, name, args)
        harness.check(is_traceback(reply, 'TypeError: ', want), '%s%r: %r, want ...%s' % (name, args, reply, want))


def main():
    with harness.server(harness.conf('server_methods.lua'), py_setup) as srv:
        m = harness.sync_manager(srv)
        n0 = test_counts(srv, m)
        test_getter_refcounts(srv, n0)
        test_methods_and_errors(srv, m)
        test_raw(srv)
        test_argument_counts(srv)
        test_shutdown(srv)
    harness.done()


if __name__ == '__main__':
    main()
