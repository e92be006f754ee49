"""The 'xmlrpclib' serializer: stock clients made with BaseManager(..., serializer='xmlrpclib')
send XML-RPC documents instead of pickles after the same handshake. shmgr picks the serializer
of each connection from its first request and answers as CPython's server started with
serializer='xmlrpclib' does: the values of CPython's own _TestRemoteManager through a shared
queue, XML-RPC's limits (32-bit ints, str keys, no tuples, bytes as Binary), what a reply
xmlrpclib cannot marshal becomes, exceptions (an empty struct the client cannot raise),
proxies (a Token xmlrpclib cannot marshal), the errors of bad documents word for word, byte-exact
replies, and hostile XML (entity bombs, deep nesting). On shmgr also: pickle and XML clients on
one server, each served in its own serializer."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import datetime  # noqa: E402
import gc  # noqa: E402
import queue  # noqa: E402
import time  # noqa: E402
import xmlrpc.client  # noqa: E402
from multiprocessing.connection import XmlClient  # noqa: E402
from multiprocessing.managers import RemoteError  # noqa: E402

REGS = ('get_queue', 'get_values')
XML = 'xmlrpclib'

# CPython's test._test_multiprocessing _TestRemoteManager.values
VALUES = ('hello world', None, True, 2.25, 'hall\xe5 v\xe4rlden', '\u043f\u0440\u0438\u0432\u0456\u0442 \u0441\u0432\u0456\u0442',
          b'hall\xe5 v\xe4rlden')


def py_setup(M):
    q, values = queue.Queue(), queue.Queue()
    for v in (2 ** 40, {2: 3}, {1, 2}, (1, 2), b'ab'):
        values.put(v)
    M.register('get_queue', callable=lambda: q)
    M.register('get_values', callable=lambda: values)


def manager(srv, serializer=XML):
    return harness.client_manager(srv, REGS, base=__import__('multiprocessing.managers').managers.SyncManager,
                                  serializer=serializer)


def last_line(text):
    return text.strip().splitlines()[-1]


def remote_error(func, what, want_in):
    """func() raises RemoteError whose text holds want_in."""
    e = harness.raises(RemoteError, func, what=what)
    if e is not None:
        harness.check(want_in in str(e), '%s: %r not in %s' % (what, want_in, e))


def not_raisable(func, what):
    """An exception in #ERROR goes as its __dict__ (an empty struct): the client raises a dict."""
    e = harness.raises(TypeError, func, what=what)
    if e is not None:
        harness.eq(str(e), 'exceptions must derive from BaseException', what)


def xml_call(srv, request):
    """One request on a fresh XML connection; the decoded reply."""
    c = XmlClient(srv.address, authkey=srv.authkey)
    try:
        c.send(request)
        return c.recv()
    finally:
        c.close()


def xml_raw(srv, payload):
    """Raw bytes as the one request of a fresh XML connection; the decoded reply."""
    c = XmlClient(srv.address, authkey=srv.authkey)
    try:
        c.send_bytes(payload)
        return c.recv()
    finally:
        c.close()


def doc(obj):
    return xmlrpc.client.dumps((obj,), None, None, None, 1).encode('utf-8')


# ---------------------------------------------------------------------------------------------

def remote_values(srv):
    """_TestRemoteManager: one client puts the values as a tuple, another (a process) gets them."""
    child = harness.Child(srv, code='''
import harness
from multiprocessing.managers import BaseManager
class C(BaseManager): pass
C.register('get_queue')
srv = harness.from_env()
m = C(address=srv.address, authkey=srv.authkey, serializer='xmlrpclib'); m.connect()
m.get_queue().put(%r)
print('PUT')
''' % (VALUES,))
    child.expect('PUT', 20)
    harness.eq(child.wait(20), 0, 'child exit status')
    m = manager(srv)
    got = m.get_queue().get(timeout=10)
    harness.eq(got, list(VALUES), 'remote values arrive as the list of them')
    harness.check(type(got[-1]) is xmlrpc.client.Binary and got[-1].data == VALUES[-1],
                  'bytes arrive as xmlrpc.client.Binary: %r' % (got[-1],))


def limits(srv):
    m = manager(srv)
    q = m.get_queue()
    for v in (2 ** 31 - 1, -2 ** 31, 0, -1):
        q.put(v)
        harness.eq(q.get(timeout=5), v, 'int %d round trip' % v)
    for v in (2 ** 31, -2 ** 31 - 1, 2 ** 70):  # refused by the client's own dumps
        e = harness.raises(OverflowError, q.put, v, what='put(%d)' % v)
        if e is not None:
            harness.eq(str(e), 'int exceeds XML-RPC limits', 'put(%d)' % v)
    e = harness.raises(TypeError, q.put, time.sleep, what='put(time.sleep)')
    if e is not None:
        harness.check('cannot marshal' in str(e), 'put(time.sleep): %s' % e)
    harness.eq(q.qsize(), 0, 'nothing was put by the refused puts')
    cases = [
        ({'a': 1, 'b': {'c': [1, 2.5, None, True]}, '': ''}, None),
        ([[[]], [[1], [2, [3]]], []], None),
        ((1, (2, 3)), [1, [2, 3]]),
        ('<&> "quoted" \'single\'', None),
        ('a\rb\r\nc', 'a\nb\nc'),  # XML reads every line break as \n
        (1e100, None), (float('inf'), None), (-0.0, None), (1 / 3.0, None),
        (b'', None), (bytes(range(256)) * 3, None),
        ({}, None), ([], None), (False, None),
    ]
    for v, want in cases:
        q.put(v)
        got = q.get(timeout=5)
        want = v if want is None else want
        harness.check(harness.same(got, want) or (isinstance(v, bytes) and got == v),
                      'round trip of %r: got %r' % (v, got))
    q.put(float('nan'))
    got = q.get(timeout=5)
    harness.check(got != got, 'nan round trip: %r' % got)
    # a control character: the client writes it as is, so the server's parser refuses it
    remote_error(lambda: q.put('x\x01y'), 'put of a control character', 'not well-formed (invalid token)')
    harness.eq(q.qsize(), 0, 'the refused put left nothing')


def unmarshallable_replies(srv):
    m = manager(srv)
    v = m.get_values()
    remote_error(v.get_nowait, '2**40 in a reply', 'OverflowError: int exceeds XML-RPC limits')
    remote_error(v.get_nowait, 'int key in a reply', 'TypeError: dictionary key must be string')
    remote_error(v.get_nowait, 'set in a reply', "TypeError: cannot marshal <class 'set'> objects")
    harness.eq(v.get_nowait(), [1, 2], 'a tuple arrives as a list')
    got = v.get_nowait()
    harness.check(type(got) is xmlrpc.client.Binary and got.data == b'ab', 'bytes arrive as Binary: %r' % got)
    not_raisable(v.get_nowait, 'get_nowait on an empty queue (Empty)')


def dict_calls(srv):
    m = manager(srv)
    d = m.dict([['a', 1], ['b', 2]])
    harness.eq(d['a'], 1, "d['a']")
    not_raisable(lambda: d['zz'], "d['zz'] (KeyError)")
    harness.eq(len(d), 2, 'len(d)')
    for name in ('keys', 'values', 'items'):
        remote_error(getattr(d, name), 'd.%s()' % name, "TypeError: cannot marshal <class 'dict_%s'> objects" % name)
    harness.eq(d.copy(), {'a': 1, 'b': 2}, 'd.copy()')
    harness.eq(d.get('a'), 1, "d.get('a')")
    harness.eq(d.get('zz', 7), 7, "d.get('zz', 7)")
    harness.eq(d.popitem(), ['b', 2], 'd.popitem() (a tuple: a list)')
    d['c'] = [1, 2]
    harness.check('c' in d, "'c' in d")
    harness.eq(str(d), "{'a': 1, 'c': [1, 2]}", 'str(d)')
    harness.eq(d._getvalue(), {'a': 1, 'c': [1, 2]}, 'd._getvalue()')
    gc.collect()  # the proxies of the parts before: their decrefs go now, not during the count
    harness.wait_until(lambda: m._number_of_objects() == m._number_of_objects(), 2.0)
    before = m._number_of_objects()
    remote_error(lambda: list(iter(d)), 'iter(d): a #PROXY',
                 "TypeError: cannot marshal <class 'multiprocessing.managers.Token'> objects")
    harness.eq(m._number_of_objects(), before + 1, 'the iterator made for the #PROXY stays, as in CPython')
    d.update({'x': 1})
    d.update([['y', 2]])
    not_raisable(lambda: d.pop('nope'), "d.pop('nope')")
    harness.eq(d.pop('nope', None), None, "d.pop('nope', None)")
    harness.eq(d.setdefault('z', 5), 5, 'd.setdefault')
    harness.eq(d.copy(), {'a': 1, 'c': [1, 2], 'x': 1, 'y': 2, 'z': 5}, 'd after the updates')
    d2 = m.dict([[1, 2]])
    remote_error(d2.copy, 'copy of a dict with an int key', 'TypeError: dictionary key must be string')
    harness.eq(str(d2), '{1: 2}', 'str of it')
    d.clear()
    harness.eq(len(d), 0, 'd.clear()')


def other_calls(srv):
    m = manager(srv)
    lst = m.list([3, 1, 2])
    harness.eq(lst[0], 3, 'l[0]')
    not_raisable(lambda: lst[5], 'l[5] (IndexError)')
    e = harness.raises(TypeError, lambda: lst[0:2], what='l[0:2]: a slice the client cannot send')
    harness.eq(lst + [4], [3, 1, 2, 4], 'l + [4]')
    not_raisable(lambda: lst.index(9), 'l.index(9)')
    lst.sort()
    lst.append('x')
    harness.eq(lst._getvalue(), [1, 2, 3, 'x'], 'l after sort and append')
    harness.eq(lst.count(1), 1, 'l.count(1)')
    harness.eq(lst.pop(), 'x', 'l.pop()')
    harness.eq(len(lst), 3, 'len(l)')
    v = m.Value('i', 3)
    harness.eq(v.get(), 3, 'Value.get')
    v.set(7)
    harness.eq(v.value, 7, 'Value.value')
    ns = m.Namespace(a=1)
    harness.eq(ns.a, 1, 'ns.a')
    not_raisable(lambda: ns.b, 'ns.b (AttributeError)')
    ns.b = 'x'
    harness.eq(ns.b, 'x', 'ns.b after setting it')
    ev = m.Event()
    harness.eq(ev.wait(0.05), False, 'Event.wait(0.05)')
    ev.set()
    harness.eq(ev.is_set(), True, 'Event.is_set')
    lk = m.Lock()
    harness.eq(lk.acquire(), True, 'Lock.acquire')
    lk.release()
    not_raisable(lk.release, 'Lock.release unlocked (RuntimeError)')
    rl = m.RLock()
    with rl:
        pass
    q = m.Queue()
    q.put('a')
    harness.eq(q.get(timeout=2), 'a', 'Queue put/get')
    t0 = time.time()
    not_raisable(lambda: q.get(timeout=0.2), 'Queue.get(timeout=0.2) (Empty)')
    harness.check(time.time() - t0 >= 0.15, 'the get waited its timeout')
    e = harness.raises(RemoteError, m._create, 'nope', what="create('nope')")
    if e is not None:
        harness.eq(last_line(e.args[0]), "KeyError: 'nope'", "create('nope')")
    harness.check(isinstance(m._debug_info(), str), 'debug_info is a str')


def server_methods(srv):
    r = xml_call(srv, (None, 'bogus', (), {}))
    harness.eq(r[0], '#TRACEBACK', 'bogus: kind')
    harness.eq(last_line(r[1]), "AssertionError: 'bogus' unrecognized", 'bogus: last line')
    r = xml_call(srv, (None, 'create', ('dict',), {}))
    harness.check(r[0] == '#RETURN' and isinstance(r[1], list) and isinstance(r[1][0], str)
                  and '__getitem__' in r[1][1], 'create dict: %r' % (r,))
    ident = r[1][0]
    harness.eq(xml_call(srv, (None, 'decref', (ident,), {})), ['#RETURN', None], 'decref')
    r = xml_call(srv, (None, 'incref', ('nope',), {}))
    harness.eq((r[0], last_line(r[1])), ('#TRACEBACK', "KeyError: 'nope'"), 'incref of a wrong ident')
    r = xml_call(srv, (None, 'dummy'))
    harness.eq((r[0], last_line(r[1])), ('#TRACEBACK', 'ValueError: not enough values to unpack (expected 4, got 2)'),
               'a request of two items')
    r = xml_call(srv, (None, 'number_of_objects', (), {}))
    harness.check(r[0] == '#RETURN' and isinstance(r[1], int), 'number_of_objects: %r' % (r,))


def byte_exact(srv):
    """Replies, byte for byte, as xmlrpclib.dumps writes them."""
    c = XmlClient(srv.address, authkey=srv.authkey)
    c.send((None, 'create', ('get_queue',), {}))
    ident = c.recv()[1][0]
    c.close()
    c = XmlClient(srv.address, authkey=srv.authkey)
    c.send((None, 'accept_connection', ('MainProcess',), {}))
    harness.eq(c.recv(), ['#RETURN', None], 'accept_connection')
    values = list(VALUES) + [
        1e100, float('inf'), -0.0, 1 / 3.0, 1e-7, 123456789.0, False, -2 ** 31, 2 ** 31 - 1,
        '<&>\t\n', {'k': [{}, [], '', b'']}, b'x' * 57, b'y' * 58, bytes(range(256)),
        bytearray(b'z'), [[[[None]]]], {'a': {'b': {'c': None}}},
    ]
    for v in values:
        c.send((ident, 'put', (v,), {}))
        harness.eq(c.recv_bytes(), doc(['#RETURN', None]), 'put(%r) reply bytes' % (v,))
        c.send((ident, 'get', (), {}))
        harness.eq(c.recv_bytes(), doc(['#RETURN', v]), 'get() of %r: reply bytes' % (v,))
    # a bad document on a serving connection: #TRACEBACK, and the connection goes on
    c.send_bytes(b'<params><param>')
    r = c.recv()
    harness.eq((r[0], last_line(r[1])), ('#TRACEBACK', 'xml.parsers.expat.ExpatError: no element found: line 1, column 15'),
               'bad XML on a serving connection')
    c.send((ident, 'qsize', (), {}))
    harness.eq(c.recv(), ['#RETURN', 0], 'the connection serves on after it')
    c.send((ident, 'nope', (), {}))
    r = c.recv()
    harness.check(r[0] == '#TRACEBACK' and "method 'nope' of <class" in r[1], 'a method not exposed: %r' % (r,))
    c.close()


def request(inner):
    return ('<params><param><value><array><data><value><nil/></value><value>dummy</value>'
            '<value><array><data>%s</data></array></value><value><struct></struct></value>'
            '</data></array></value></param></params>' % inner).encode('utf-8')


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
          b''.join(b'<!ENTITY lol%d "%s">' % (i, (b'&lol%s;' % (str(i - 1).encode() if i > 2 else b'')) * 10)
                   for i in range(2, 10)) +
          b']><params><param><value>&lol9;</value></param></params>')

# the same last line from CPython's server (Python's own xmlrpc.client over libexpat) and shmgr
BAD = [
    ('malformed', b'<params><param>', 'xml.parsers.expat.ExpatError: no element found: line 1, column 15'),
    ('invalid token', b'<params>\x01</params>', 'xml.parsers.expat.ExpatError: not well-formed (invalid token): line 1, column 8'),
    ('undefined entity', b'<params>&foo;</params>', 'xml.parsers.expat.ExpatError: undefined entity: line 1, column 8'),
    ('bad UTF-8', b'<params>\xe4x</params>',
     "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe4 in position 8: invalid continuation byte"),
    ('cut UTF-8', b'<params>\xe2\x82',
     "UnicodeDecodeError: 'utf-8' codec can't decode bytes in position 8-9: unexpected end of data"),
    ('bad int', request('<value><int>12a</int></value>'), "ValueError: invalid literal for int() with base 10: '12a'"),
    ('int with spaces and _', request('<value><int> 1_2 </int></value>'),
     ('TypeError: Server.dummy() takes 2 positional arguments but 3 were given',
      'TypeError: dummy() takes 2 positional arguments but 3 were given')),  # CPython < 3.10
    ('bad double', request('<value><double>x1</double></value>'), "ValueError: could not convert string to float: 'x1'"),
    ('bad boolean', request('<value><boolean>2</boolean></value>'), 'TypeError: bad boolean value'),
    ('unknown tag', request('<value><foo>1</foo></value>'),
     ('xmlrpc.client.ResponseError: ResponseError("unknown tag \'foo\'")',
      'xmlrpc.client.ResponseError: ResponseError("unknown tag \'foo\'",)')),  # CPython 3.6
    ('base64 padding', request('<value><base64>QQ</base64></value>'), 'binascii.Error: Incorrect padding'),
    ('base64 length', request('<value><base64>QUJDR</base64></value>'),
     ('binascii.Error: Invalid base64-encoded string: number of data characters (5) cannot be 1 more than a multiple of 4',
      'binascii.Error: Incorrect padding')),  # CPython < 3.7
    ('base64 not ASCII', request('<value><base64>\xe5\xe5x</base64></value>'),
     "UnicodeEncodeError: 'ascii' codec can't encode characters in position 0-1: ordinal not in range(128)"),
    ('odd struct', b'<params><param><value><struct><member><name>a</name></member></struct></value></param></params>',
     'IndexError: list index out of range'),
    ('no params', b'<foo/>', 'xmlrpc.client.ResponseError: ResponseError()'),
    ('no param', b'<params></params>', 'ValueError: not enough values to unpack (expected 1, got 0)'),
    ('two params', b'<params><param><value>a</value></param><param><value>b</value></param></params>',
     'ValueError: too many values to unpack (expected 1)'),
    ('list as a key', b'<params><param><value><struct><value><array><data></data></array></value><value>x</value>'
     b'</struct></value></param></params>', "TypeError: unhashable type: 'list'"),
    ('fault', b'<fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member>'
     b'<name>faultString</name><value>x</value></member></struct></value></fault>', "xmlrpc.client.Fault: <Fault 1: 'x'>"),
]


def bad_documents(srv):
    for what, payload, want in BAD:
        r = xml_raw(srv, payload)
        # shmgr words it as the newest CPython does; an older CPython's server, its own way
        wants = (want,) if isinstance(want, str) else want if srv.backend == 'cpython' else want[:1]
        harness.check(r[0] == '#TRACEBACK' and last_line(r[1]) in wants,
                      '%s: got %r, want #TRACEBACK with %s' % (what, (r[0], last_line(r[1])), ' or '.join(wants)))
    # accepted forms: a methodCall around the params, <i8>, bare text, namespaces
    ok = [
        b'<?xml version="1.0"?><methodCall><methodName>x</methodName><params><param><value><array><data><value><nil/>'
        b'</value><value>dummy</value><value><array><data></data></array></value><value><struct></struct></value>'
        b'</data></array></value></param></params></methodCall>',
        b'\xef\xbb\xbf \n<params><param><value><array><data><value><nil/></value><value><x:string>dummy</x:string>'
        b'</value><value><array><data/></array></value><value><struct/></value></data></array></value></param></params>',
    ]
    for payload in ok:
        harness.eq(xml_raw(srv, payload), ['#RETURN', None], 'accepted: %r' % payload[:40])
    r = xml_raw(srv, request('<value><i8>99999999999</i8></value><value><biginteger>-1</biginteger></value>'))
    harness.check(last_line(r[1]).endswith('dummy() takes 2 positional arguments but 4 were given'),
                  'i8 and biginteger: %s' % last_line(r[1]))
    # hostile: an entity bomb, 20,000 levels of arrays; each is refused, nothing else suffers
    r = xml_raw(srv, LAUGHS)
    harness.eq(r[0], '#TRACEBACK', 'billion laughs: kind')
    if srv.backend == 'shmgr':
        harness.check('DOCTYPE refused' in last_line(r[1]), 'billion laughs: %s' % last_line(r[1]))
    deep = request('<value><array><data>' * 20000 + '</data></array></value>' * 20000)
    r = xml_raw(srv, deep)
    harness.eq(r[0], '#TRACEBACK', '20,000 levels: kind')
    if srv.backend == 'shmgr':
        harness.check('max_depth' in last_line(r[1]), '20,000 levels: %s' % last_line(r[1]))
        r = xml_raw(srv, request('<value><nil/></value>' * 60000))
        harness.check(r[0] == '#TRACEBACK' and 'max_objects' in last_line(r[1]),
                      '60,000 values (max_objects is 50,000 here): %r' % (r,))
    m = manager(srv)
    q = m.get_queue()
    q.put('still here')
    harness.eq(q.get(timeout=5), 'still here', 'the server serves on after the hostile documents')


def in_thread(func, *args):
    """func(*args) in a thread of its own: a proxy's connection is per thread and address,
    whatever the serializer, so a pickle proxy and an XML proxy of one server need two."""
    box = harness.run_thread(func, *args)
    box['done'].wait(20)
    if 'error' in box:
        raise box['error']
    return box.get('result')


def mixed(srv):
    """shmgr only: pickle clients and XML clients at once, on the same objects."""
    mp = manager(srv, 'pickle')
    mx = manager(srv)
    qp, qx = mp.get_queue(), mx.get_queue()
    harness.eq(qp._token.id, qx._token.id, 'one queue for both')
    for v in (2 ** 70, ValueError('x'), datetime.datetime(2024, 1, 2, 3, 4, 5, 6, fold=1), bytearray(b'ba'), frozenset([1]),
              xmlrpc.client.DateTime('20240102T03:04:05'), (1, 'a')):
        in_thread(qp.put, v)
    remote_error(qx.get_nowait, '2**70 from a pickle client', 'OverflowError: int exceeds XML-RPC limits')
    harness.eq(qx.get_nowait(), {}, 'an exception goes as its __dict__')
    got = qx.get_nowait()
    harness.check(isinstance(got, xmlrpc.client.DateTime) and got.value == '20240102T03:04:05',
                  'datetime arrives as DateTime: %r' % (got,))
    got = qx.get_nowait()
    harness.check(isinstance(got, xmlrpc.client.Binary) and got.data == b'ba', 'bytearray arrives as Binary: %r' % (got,))
    remote_error(qx.get_nowait, 'frozenset', "TypeError: cannot marshal <class 'frozenset'> objects")
    got = qx.get_nowait()
    harness.check(isinstance(got, xmlrpc.client.DateTime) and got.value == '20240102T03:04:05', 'DateTime: %r' % (got,))
    harness.eq(qx.get_nowait(), [1, 'a'], 'tuple')
    # shared structure XML-RPC writes out in full: 2**40 paths through 40 tuples; a cycle
    t = (1,)
    for _ in range(40):
        t = (t, t)
    cyclic = []
    cyclic.append(cyclic)
    in_thread(qp.put, t)
    in_thread(qp.put, cyclic)
    remote_error(qx.get_nowait, '2**40 paths', 'MemoryError: XML-RPC reply longer than 16777216 bytes')
    remote_error(qx.get_nowait, 'a list in itself', 'TypeError: cannot marshal recursive sequences')
    # the other way: what an XML client puts, a pickle client gets
    qx.put([b'raw', xmlrpc.client.DateTime('20250101T00:00:00'), {'k': (1,)}, 2 ** 31 - 1])
    got = in_thread(qp.get, True, 5)
    harness.check(got[0] == b'raw' and type(got[0]) is bytes, 'base64 is bytes to a pickle client: %r' % (got,))
    harness.check(isinstance(got[1], xmlrpc.client.DateTime) and got[1].value == '20250101T00:00:00',
                  'dateTime.iso8601 is an xmlrpc.client.DateTime: %r' % (got,))
    harness.eq(got[2:], [{'k': [1]}, 2 ** 31 - 1], 'the rest')
    # a dict made by an XML client, used by a pickle client through the same ident
    d = mx.dict([['a', 1]])
    dp = harness.proxy_for(mp, 'dict', d._token.id)
    in_thread(dp.__setitem__, (1, 2), b'p')
    harness.eq(in_thread(dp.copy), {'a': 1, (1, 2): b'p'}, 'the pickle client sees all of it')
    remote_error(d.copy, 'the XML client cannot get a tuple key', 'TypeError: dictionary key must be string')
    # an XML request larger than max_message is refused in XML
    c = XmlClient(srv.address, authkey=srv.authkey)
    c.send((None, 'dummy', ('x' * (5 << 20),), {}))
    r = c.recv()
    harness.check(r[0] == '#TRACEBACK' and 'max_message' in last_line(r[1]), 'an oversized request: %r' % (r[:1],))
    c.close()


def main():
    with harness.server(harness.conf('xmlrpc.lua'), py_setup, serializer=XML) as srv:
        remote_values(srv)
        limits(srv)
        unmarshallable_replies(srv)
        dict_calls(srv)
        other_calls(srv)
        server_methods(srv)
        byte_exact(srv)
        bad_documents(srv)
        if srv.backend == 'shmgr':
            mixed(srv)
        else:
            harness.skip_part('pickle and XML clients at once', "CPython's server speaks one serializer")
        harness.check(srv.alive(), 'the server is alive at the end')
    harness.done()


if __name__ == '__main__':
    main()
