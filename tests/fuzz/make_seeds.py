#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpus of fuzz_pickle (seeds/pickle/): real CPython pickles of
every value kind and every request and reply shape, at every protocol. Run it again to refresh."""

import collections
import datetime
import decimal
import hashlib
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


def main():
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
    print('%d seeds in %s' % (n, os.path.relpath(OUT)))


if __name__ == '__main__':
    sys.exit(main())
