#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora: of fuzz_pickle (seeds/pickle/), real CPython pickles of
every value kind and every request and reply shape at every protocol; of fuzz_wire (seeds/wire/),
handshakes and streams of requests as stock clients send them; of fuzz_lua (seeds/lua/), those
pickles and values with shared structure, cycles and deep nesting behind the two bytes that pick
what the Lua side does, and programs for its builder of Lua values. Run it again to refresh."""

import collections
import datetime
import decimal
import hashlib
import itertools
import os
import pickle
import sys
from multiprocessing.managers import ListProxy, Token
from multiprocessing.reduction import ForkingPickler

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'seeds', 'pickle')


class Point:  # an object of a class the server does not know
    def __init__(self, x, y):
        self.x, self.y = x, y


def big_values():
    """Containers past the 1000-item batches of APPENDS/SETITEMS/ADDITEMS: protocols 4 and 5 only."""
    return [[list(range(1200))], {i: i for i in range(1100)}, set(range(1050))]


def values():
    shared = [1, 2]
    cyclic = []
    cyclic.append(cyclic)
    token = Token('Queue', ('127.0.0.1', 50000), '7f3a')
    proxy = ListProxy(Token('list', ('127.0.0.1', 50000), '7f3b'), 'pickle', authkey=b'k', incref=False)
    return [
        None, True, False, 0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**63 - 1, -2**63,
        2**64, -2**100, 10**40, 0.0, -0.0, 1.5, float('inf'), float('nan'), 1e300,
        '', 'a', 'héllo', '\U0001f600', 'x' * 300, '\ud800',
        b'', b'x', b'\x00\xff' * 200, bytearray(b'abc'),
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1, 'a', None], {}, {'a': 1, 2: 'b', (1, 2): [3]},
        set(), {1, 2, 3}, frozenset(), frozenset({'a'}), [shared, shared], cyclic, {'k': cyclic},
        Point(1, 2), datetime.datetime(2026, 12, 1, 6, 0), decimal.Decimal('1.5'),
        collections.OrderedDict(a=1), complex(1, 2), slice(1, 2, 3), KeyError('x'), ValueError('bad', 2),
        token, proxy, [proxy, proxy],
        # requests and replies as the managers send them
        ('7f3a', 'put', ('hello', 1, 2.5, b'x', None, [1, 2], {'a': 1}), {}),
        (None, 'create', ('Queue', 2), {}), (None, 'incref', ('7f3a',), {}),
        (None, 'accept_connection', ('MainProcess',), {}), ('7f3a', 'get', (), {'timeout': 1}),
        ('7f3a', '__setitem__', (slice(1, 3), [9]), {}), ('7f3a', 'append', (proxy,), {}),
        ('#RETURN', None), ('#ERROR', KeyError('x')), ('#TRACEBACK', 'Traceback...\n'),
        ('#PROXY', (('__next__',), token)),
    ]


def lazy_args():
    """Arguments that are lazy iterators (iterargs.c), each kind the server evaluates or refuses."""
    it = iter(range(6))
    endless = itertools.chain()
    endless.__setstate__((iter([endless]),))  # a chain that yields itself
    return [('3', 'extend', (zip('ab', range(2)),), {}), ('3', 'extend', (enumerate(reversed([1, 2]), 5),), {}),
            ('2', 'update', (zip('xy', itertools.count(3)),), {}), ('9', 'update', (itertools.chain([1], iter('ab')),), {}),
            ('3', '__setitem__', (slice(0, 1), itertools.islice(itertools.repeat(5), 2)), {}),
            ('3', 'extend', (zip(it, it),), {}), ('9', 'isdisjoint', (filter(None, [0, 1]),), {}),
            ('2', 'fromkeys', (iter({1: 2}.items()),), {}), ('3', 'extend', (map(int, '12'),), {}),
            ('3', 'extend', (zip([1], [1, 2], strict=True),), {}), ('3', 'extend', (endless,), {}),
            ('3', 'extend', (range(10 ** 12),), {})]


# dill's pickles (what the multiprocess package sends): calls made for their effect (a closure's
# cell filled by a REDUCE whose result is POPped), globals dicts filled after use, classes by value
DILL_PRODUCER = r'''
import functools, sys
import dill
def adder(n):
    return lambda y: y + n
def make_rec():
    def rec(n):
        return 1 if n <= 1 else n * rec(n - 1)
    return rec
def make_mutual():
    def even(n):
        return True if n == 0 else odd(n - 1)
    def odd(n):
        return False if n == 0 else even(n - 1)
    return even, odd
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
class Shape(object):
    def __init__(self, name):
        self.name = name
    def describe(self):
        return self.name
class Square(Shape):
    def describe(self):
        return super().describe() + '!'
objs = [adder(1), make_rec(), make_mutual(), fib, functools.partial(adder(2), 3), Square, Square('a'),
        [adder(1), adder(2)], slice(1, 2), bytearray(b'x'), KeyError('k')]
out = []
for o in objs:
    for kw in ({}, {'recurse': True}):
        try:
            out.append(dill.dumps(o, **kw))
        except RecursionError:
            pass
sys.stdout.buffer.write(repr(out).encode())
'''


def dill_seeds():
    """dill's pickles, made by a child whose __main__ defines what they hold ([] without dill)."""
    import ast
    import subprocess
    try:
        out = subprocess.run([sys.executable, '-c', DILL_PRODUCER], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=True).stdout
    except subprocess.CalledProcessError:
        return []
    return ast.literal_eval(out.decode())


def frame(obj):
    data = bytes(ForkingPickler.dumps(obj, protocol=4))
    return len(data).to_bytes(4, 'big') + data


def wire_seeds():
    """Inputs of fuzz_wire: a stage byte (0 raw handshake, 1 authenticated), then bytes. The
    harness makes a Queue, dict, list, Lock, RLock, Event, Condition, Namespace, set,
    JoinableQueue and Semaphore as idents 1 to b, in that order, then SharedArray('i',
    [1, 2, 3, 4]) as c, SharedValue('d', 0.5) as d and SharedStruct('<h5p', (1, 'ab')) as e."""
    serve = frame((None, 'accept_connection', ('fuzz',), {}))
    calls = {
        'queue': [('1', 'put', (1,), {}), ('1', 'get', (), {}), ('1', 'get', (), {'timeout': 0.01}),
                  ('1', 'qsize', (), {}), ('1', 'put_nowait', ('x',), {}), ('1', 'get_nowait', (), {})],
        'dict': [('2', '__setitem__', ('k', [1, 2]), {}), ('2', '__getitem__', ('k',), {}), ('2', 'keys', (), {}),
                 ('2', '__iter__', (), {}), ('2', 'pop', ('nope',), {}), ('2', 'update', ({'a': 1},), {})],
        'list': [('3', 'append', (3,), {}), ('3', 'extend', ([2, 1],), {}), ('3', 'sort', (), {}),
                 ('3', '__getitem__', (slice(0, 2),), {}), ('3', '__len__', (), {}), ('3', 'index', (9,), {})],
        'sync': [('4', 'acquire', (), {}), ('4', 'release', (), {}), ('5', 'acquire', (True, 0.01), {}),
                 ('6', 'set', (), {}), ('6', 'wait', (0.01,), {}), ('7', 'acquire', (), {}), ('7', 'notify', (), {}),
                 ('7', 'wait', (0.01,), {}), ('7', 'release', (), {}), ('b', 'release', (), {})],
        'other': [('8', '__setattr__', ('x', 1), {}), ('8', '__getattribute__', ('x',), {}), ('9', 'add', (1,), {}),
                  ('9', '__contains__', (1,), {}), ('a', 'task_done', (), {}), ('a', 'join', (), {}),
                  ('1', '#GETVALUE', (), {}), ('2', '__repr__', (), {}), ('3', 'nope', (), {}), ('zz', 'get', (), {})],
        'lazy': lazy_args(),
        'shared': [('c', '__getitem__', (slice(None, None, -1),), {}), ('c', '__setitem__', (slice(0, 2), [7, 8]), {}),
                   ('c', '__setitem__', (-1, 2 ** 40), {}), ('c', 'tolist', (), {}), ('c', 'tobytes', (), {}),
                   ('c', 'shm_info', (), {}), ('c', '__len__', (), {}), ('c', '__repr__', (), {}),
                   (None, 'create', ('SharedArray', 'd', [1.5] * 3), {}),
                   (None, 'create', ('SharedArray', 'q', 10 ** 30), {}),
                   ('d', 'get', (), {}), ('d', 'set', (1e308,), {}), ('d', 'set', ('x',), {}), ('d', 'shm_info', (), {}),
                   ('e', 'set', ((-1, b'xyz'),), {}), ('e', 'set', ((2, 'h\u00e9llo'),), {}), ('e', 'get', (), {}),
                   ('e', 'set', ((1,),), {}), ('e', '__repr__', (), {}),
                   (None, 'create', ('SharedStruct', '@bhiq?e3s2P', [0] * 8), {}),
                   (None, 'create', ('SharedValue', '>Q', 2 ** 64), {}),
                   (None, 'create', ('SharedValue', '10p', 'abc'), {})],
    }
    seeds = {'serve-' + k: b'\x01' + serve + b''.join(frame(c) for c in v) for k, v in calls.items()}
    fresh = [(None, 'create', ('Queue', 2), {}), (None, 'incref', ('1',), {}), (None, 'decref', ('1',), {}),
             (None, 'get_methods', (Token('Queue', ('127.0.0.1', 50000), '1'),), {}),
             (None, 'number_of_objects', (), {}), (None, 'debug_info', (), {}), (None, 'dummy', (), {}),
             (None, 'create', ('nope',), {}), ('1', 'bad', 'shape'), 'not a request']
    for i, r in enumerate(fresh):
        seeds['fresh-%d' % i] = b'\x01' + frame(r)
    seeds['pipelined'] = b'\x01' + serve + frame(('1', 'put', (1,), {})) * 3 + frame(('1', 'get', (), {})) * 4
    seeds['large-form'] = b'\x01' + b'\xff\xff\xff\xff' + (9).to_bytes(8, 'big') + bytes(ForkingPickler.dumps(None))
    seeds['oversized'] = b'\x01' + (1 << 30).to_bytes(4, 'big') + b'x' * 64
    seeds['negative-length'] = b'\x01' + b'\x80\x00\x00\x00'
    seeds['hs-wrong-md5'] = b'\x00' + (16).to_bytes(4, 'big') + b'0' * 16
    seeds['hs-wrong-sha256'] = b'\x00' + (40).to_bytes(4, 'big') + b'{sha256}' + b'0' * 32
    seeds['hs-too-long'] = b'\x00' + (300).to_bytes(4, 'big') + b'x' * 300
    seeds['hs-garbage'] = b'\x00#CHALLENGE#{md5}' + b'\x00' * 20
    seeds.update(xml_seeds())
    return seeds


def xframe(obj):
    """A request as a client with serializer='xmlrpclib' frames it."""
    import xmlrpc.client
    data = xmlrpc.client.dumps((obj,), None, None, None, 1).encode('utf-8')
    return len(data).to_bytes(4, 'big') + data


def xml_seeds():
    """fuzz_wire inputs in XML-RPC (the connection's first request picks the serializer)."""
    raw = lambda b: len(b).to_bytes(4, 'big') + b  # noqa: E731
    serve = xframe((None, 'accept_connection', ('fuzz',), {}))
    calls = [('1', 'put', ([1, 'a', None, 2.5, True, b'b', {'k': []}],), {}), ('1', 'get', (), {}),
             ('1', 'get_nowait', (), {}), ('2', '__setitem__', ('k', [1, 2]), {}), ('2', 'keys', (), {}),
             ('2', '__iter__', (), {}), ('2', '__getitem__', ('nope',), {}), ('3', 'append', (2 ** 31 - 1,), {}),
             ('3', 'index', (9,), {}), ('3', '__repr__', (), {})]
    return {
        'xml-serve': b'\x01' + serve + b''.join(xframe(c) for c in calls),
        'xml-fresh': b'\x01' + xframe((None, 'create', ('dict', {'a': 1}), {})),
        'xml-bad': b'\x01' + serve + raw(b'<params><param>') + raw(b'<params><value><foo/></value></params>') +
                   raw(b'<!DOCTYPE x [<!ENTITY a "b">]><params>&a;</params>') + raw(b'<params>\xe4</params>') +
                   raw(b'<params><param><value><base64>QQ</base64></value></param></params>') +
                   raw(b'<params><param>' + b'<value><array><data>' * 1100 + b'</data></array></value>' * 1100 +
                       b'</param></params>') + xframe(('1', 'qsize', (), {})),
    }


def lua_values():
    """Values that stress the Lua bridge: shared structure, cycles, nesting near the limits."""
    shared = [1, 'two']
    cyclic = []
    cyclic.append(cyclic)
    cyclic_dict = {}
    cyclic_dict['me'] = cyclic_dict
    through_tuple = []
    through_tuple.append((through_tuple, 1))
    t = (1,)
    for _ in range(40):  # 2**40 paths through 40 tuples
        t = (t, t)
    d = {'leaf': None}
    for _ in range(40):
        d = {'a': d, 'b': d}
    f = frozenset([1])
    for _ in range(40):
        f = frozenset([(f, 1), (f, 2)])
    deep = []
    for _ in range(998):  # near max_depth (1000)
        deep = [deep]
    too_deep = []
    for _ in range(1001):
        too_deep = [too_deep]
    ba = bytearray(b'shared')
    point = Point(shared, shared)
    held = {'k': 1}
    holder = Point(held, 2)  # an object holding a dict: a key of that dict makes a cycle
    return [
        [shared, shared, (shared,)], {'x': shared, 'y': [shared]}, cyclic, cyclic_dict, through_tuple,
        [cyclic, cyclic_dict], t, d, f, deep, too_deep, [ba, ba], point, [point, point, shared],
        {None: 1, 'a': 2}, {None, 1, 'b'}, frozenset([None, (None,)]), {1: 'int', 1.5: 'float', True: 'bool'},
        [float('nan'), -0.0, 1e308], '\ud800\udfff', ['\ud83d', b'\xed\xa0\x80'], 2**64, -2**200, [2**70, 2**70],
        {(1, 2): [3], frozenset([1]): {4: 5}}, collections.OrderedDict(a=shared), [KeyError(shared)],
        datetime.datetime(2026, 12, 1), decimal.Decimal('-0'), complex(0, -1), [held, holder],
    ]


# the builder's operations (fuzz_lua.lua), by number
(L_INT, L_BIGINT, L_FLOAT, L_STR, L_BOOL, L_NONE, L_TABLE, L_APPEND, L_SETKEY, L_DUP, L_SWAP, L_POP, L_PAIR,
 L_CYCLE, L_TUPLE, L_LIST, L_DICT, L_SET, L_FROZENSET, L_BYTES, L_HOLE, L_HOSTILE, L_DELETE, L_NEST, L_KIND,
 L_READ, L_PROG, L_WATCH, L_SPARSE, L_QUEUE, L_TAMPER) = range(31)


def lua_programs():
    """Programs for the builder: each byte an operation or an operation's argument."""
    def n(i):  # the argument of L_INT for the small int i
        return i + 128
    return {
        'doubling': [L_INT, n(1)] + [L_PAIR] * 40,
        'cycle': [L_TABLE, L_CYCLE, L_INT, n(5), L_APPEND],
        'cycle-twice': [L_TABLE, L_CYCLE, L_DUP, L_PAIR, L_DUP, L_CYCLE],
        'holes': [L_TABLE, L_INT, n(1), L_APPEND, L_INT, n(3), L_HOLE, L_INT, n(5), L_HOLE],
        'sparse': [L_INT, n(2), L_INT, n(3), L_SPARSE],
        'finalizer-handle': [L_INT, n(1)] + [L_QUEUE] * 40 + [L_TABLE, L_NEST, 20] * 20,
        'tamper': [L_TABLE, L_LIST, L_TAMPER, L_NONE, L_TAMPER, L_INT, n(1), L_TUPLE, 1, L_DUP, L_READ],
        'keys-1-and-true': [L_TABLE, L_INT, n(1), L_STR, 1, 97, L_SETKEY, L_BOOL, 1, L_STR, 1, 98, L_SETKEY],
        'keys-0-and-false': [L_TABLE, L_INT, n(0), L_INT, n(7), L_SETKEY, L_BOOL, 0, L_INT, n(8), L_SETKEY],
        'mixed-keys': [L_TABLE, L_STR, 1, 120, L_INT, n(1), L_SETKEY, L_FLOAT, 0, L_NONE, L_SETKEY,
                       L_INT, n(1), L_INT, n(2), L_SETKEY],
        'none-key': [L_TABLE, L_NONE, L_INT, n(1), L_SETKEY, L_DICT],
        'hostile': [L_TABLE, L_INT, n(1), L_APPEND, L_INT, n(2), L_APPEND, L_HOSTILE, L_DUP, L_PAIR],
        'nest-196': [L_INT, n(0), L_NEST, 49],
        'nest-240': [L_INT, n(0), L_NEST, 60],
        'values': [L_BIGINT, 0, L_BIGINT, 1, L_FLOAT, 4, L_FLOAT, 1, L_STR, 2, 0xc3, 0xa9, L_STR, 2, 0xff, 0xfe,
                   L_BYTES, 0, 3, L_NONE, L_BOOL, 1, L_PROG],
        'userdata': [L_TABLE, L_INT, n(1), L_APPEND, L_LIST, L_DUP, L_CYCLE, L_DUP, L_TUPLE, 2, L_READ, L_READ,
                     L_TABLE, L_NONE, L_APPEND, L_SET, L_TABLE, L_STR, 1, 97, L_APPEND, L_FROZENSET, L_KIND],
        'dict-ud': [L_TABLE, L_STR, 1, 107, L_INT, n(1), L_SETKEY, L_DICT, L_DUP, L_STR, 1, 109, L_SWAP, L_SETKEY],
        'tuple-keys': [L_TABLE, L_INT, n(1), L_TUPLE, 1, L_INT, n(2), L_SETKEY, L_INT, n(1), L_TUPLE, 1,
                       L_INT, n(3), L_SETKEY],
        'finalizer': [L_TABLE, L_PROG, L_APPEND, L_TABLE, L_LIST, L_APPEND, L_WATCH, L_POP, L_POP],
        'delete': [L_TABLE, L_INT, n(1), L_APPEND, L_INT, n(2), L_APPEND, L_DELETE, L_DELETE, L_DELETE],
    }


def lua_seeds():
    """Inputs of fuzz_lua: [uses][memory][pickle] (uses below 0x80: which uses of the value
    run, 0x7f all; memory: KiB Lua may allocate beyond what it holds, 0 no such limit), or
    [0x80][memory][builder program]."""
    seeds = {}
    for v in values() + lua_values():
        for proto in (2, 4, 5):
            try:
                data = bytes(ForkingPickler.dumps(v, protocol=proto))
            except Exception:
                continue
            seeds[hashlib.sha1(data).hexdigest()[:16]] = bytes([0x7f, 0]) + data
    for i, v in enumerate(lua_values()):  # one use at a time, and short of memory
        data = bytes(ForkingPickler.dumps(v, protocol=4))
        seeds['use-%d-%d' % (i, 1 << (i % 7))] = bytes([1 << (i % 7), 0]) + data
        seeds['tight-%d' % i] = bytes([0x7f, 4 + 4 * i]) + data
    for name, prog in lua_programs().items():
        seeds['build-' + name] = bytes([0x80, 0] + prog)
        seeds['build-tight-' + name] = bytes([0x80, 6] + prog)
    return seeds


def main():
    sys.setrecursionlimit(20000)  # the pickler recurses once per level of the deep seeds
    wire = os.path.join(HERE, 'seeds', 'wire')
    os.makedirs(wire, exist_ok=True)
    for name, data in wire_seeds().items():
        with open(os.path.join(wire, name), 'wb') as f:
            f.write(data)
    lua = os.path.join(HERE, 'seeds', 'lua')
    os.makedirs(lua, exist_ok=True)
    for name, data in lua_seeds().items():
        with open(os.path.join(lua, name), 'wb') as f:
            f.write(data)
    os.makedirs(OUT, exist_ok=True)
    n = 0
    for v, protos in [(v, range(pickle.HIGHEST_PROTOCOL + 1)) for v in values()] + \
            [(v, (4, 5)) for v in big_values()]:
        for proto in protos:
            try:
                data = ForkingPickler.dumps(v, protocol=proto)
            except Exception:  # some values have no old-protocol form
                continue
            name = hashlib.sha1(bytes(data)).hexdigest()[:16]
            with open(os.path.join(OUT, name), 'wb') as f:
                f.write(data)
            n += 1
    n += write_dill_seeds()
    print('%d seeds in %s' % (n, os.path.relpath(OUT)))


def write_dill_seeds():
    n = 0
    for data in dill_seeds():
        with open(os.path.join(OUT, 'dill-' + hashlib.sha1(data).hexdigest()[:12]), 'wb') as f:
            f.write(data)
        n += 1
    return n


if __name__ == '__main__':
    sys.exit(main())
