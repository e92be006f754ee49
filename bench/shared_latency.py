#!/usr/bin/env python3
"""Time shared values and arrays through a stock client's proxies and through the map.

  shared_latency.py latency ADDRESS AUTHKEY KIND N
      KIND shmgr: SharedValue('d') get()/set(x) and SharedArray('d', ARRAY_LEN) a[i] / a[i] = x
      through their proxies, then the same bytes through the map (shm_info()): struct
      unpack_from/pack_into for the value, a memoryview item for the array element.
      KIND cpython: m.Value('d', 0.0).value and m.Array('d', ...)[i] through SyncManager's proxies
      (CPython's server has no map to offer). N operations per proxy op, MAP_FACTOR times that
      per map op.
  shared_latency.py objects ADDRESS AUTHKEY KIND N
      Create N objects, SharedValue('q', 0) (shmgr) or Value('q', 0) (cpython), and keep them.

Each prints one JSON object. ADDRESS is HOST:PORT or unix:PATH.
"""

import json
import mmap
import os
import statistics
import struct
import sys
import time
from multiprocessing.connection import Client
from multiprocessing.managers import BaseManager, SyncManager, dispatch

from proxy_latency import parse_address, percentile  # bench/, the script's own folder

ARRAY_LEN = 1024
MAP_FACTOR = 40     # map ops are ~1000 times faster than a round trip: time more of them
MAP_BATCH = 1000    # map ops timed in batches: one perf_counter() pair costs more than the op
WARMUP = 200
ROUNDS = 5          # the ops take turns, a fifth of their count each turn: a host that slows down
                    # for a while (2 shared cores) slows them all alike, not the one that ran then


class Timing:
    """One op's samples: each the mean µs of a batch of calls (a batch of 1 for the proxy ops).
    With batches the median and p99 are those of the batches' means (what one op costs when
    nothing interrupts the batch), not of single ops: a perf_counter() pair costs more than a
    map op."""

    def __init__(self, op, batch):
        self.op, self.batch = op, batch
        self.per_op, self.seconds = [], 0.0
        for _ in range(WARMUP):
            op()

    def run(self, n):
        """op() n times more (rounded down to whole batches)."""
        op, batch, clock = self.op, self.batch, time.perf_counter
        started = clock()
        for _ in range(max(1, n // batch)):
            t = clock()
            for _ in range(batch):
                op()
            self.per_op.append((clock() - t) * 1e6 / batch)
        self.seconds += clock() - started

    def figures(self):
        per_op = sorted(self.per_op)
        done = len(per_op) * self.batch
        return {'n': done, 'batch': self.batch, 'median_us': statistics.median(per_op),
                'p99_us': percentile(per_op, 0.99), 'ops_per_sec': done / self.seconds}


def map_segment(name):
    """The segment /dev/shm/NAME mapped read-write with mmap (not shared_memory.SharedMemory,
    whose resource tracker would unlink the server's segment when this process exits)."""
    fd = os.open('/dev/shm/' + name, os.O_RDWR)
    try:
        return mmap.mmap(fd, 0)
    finally:
        os.close(fd)


def shmgr_ops(address, authkey):
    """{(what, op, path): callable} for shmgr's SharedValue and SharedArray, and what to release."""
    class M(BaseManager):
        pass
    M.register('SharedValue')
    M.register('SharedArray')
    m = M(address=address, authkey=authkey)
    m.connect()
    v = m.SharedValue('d', 0.0)
    a = m.SharedArray('d', [0.0] * ARRAY_LEN)
    i = ARRAY_LEN // 2

    vname, voff, _, vfmt = v.shm_info()
    vmm = map_segment(vname)
    vs = struct.Struct(vfmt)
    aname, aoff, asize, afmt = a.shm_info()
    amm = map_segment(aname)
    view = memoryview(amm)[aoff:aoff + asize].cast(afmt)
    check_shared(v, vs, vmm, voff, a, view, i)

    def array_set_proxy():
        a[i] = 1.5

    def array_set_map():
        view[i] = 1.5

    ops = {
        ('value', 'get', 'proxy'): v.get,
        ('value', 'set', 'proxy'): lambda: v.set(1.5),
        ('array', 'get', 'proxy'): lambda: a[i],
        ('array', 'set', 'proxy'): array_set_proxy,
        ('value', 'get', 'map'): lambda: vs.unpack_from(vmm, voff)[0],
        ('value', 'set', 'map'): lambda: vs.pack_into(vmm, voff, 1.5),
        ('array', 'get', 'map'): lambda: view[i],
        ('array', 'set', 'map'): array_set_map,
    }

    def release():
        view.release()
        amm.close()
        vmm.close()
    return ops, release


def check_shared(v, vs, vmm, voff, a, view, i):
    """The map and the proxy see the same bytes, both ways: else the map figures mean nothing."""
    v.set(2.25)
    a[i] = -3.5
    if vs.unpack_from(vmm, voff)[0] != 2.25 or view[i] != -3.5:
        raise RuntimeError('a write through the proxy is not seen through the map')
    vs.pack_into(vmm, voff, 4.75)
    view[i] = 6.5
    if v.get() != 4.75 or a[i] != 6.5:
        raise RuntimeError('a write through the map is not seen through the proxy')


def cpython_ops(address, authkey):
    """{(what, op, path): callable} for SyncManager's Value and Array proxies."""
    m = SyncManager(address=address, authkey=authkey)
    m.connect()
    v = m.Value('d', 0.0)
    a = m.Array('d', [0.0] * ARRAY_LEN)
    i = ARRAY_LEN // 2

    def value_set():
        v.value = 1.5

    def array_set():
        a[i] = 1.5

    ops = {
        ('value', 'get', 'proxy'): lambda: v.value,
        ('value', 'set', 'proxy'): value_set,
        ('array', 'get', 'proxy'): lambda: a[i],
        ('array', 'set', 'proxy'): array_set,
    }
    return ops, lambda: None


def latency(address, authkey, kind, n):
    ops, release = (shmgr_ops if kind == 'shmgr' else cpython_ops)(address, authkey)
    # what calling an op costs Python when the op does nothing: the floor of the map figures
    ops[('empty', 'call', 'map')] = lambda: None
    try:
        timings = {key: Timing(fn, MAP_BATCH if key[2] == 'map' else 1) for key, fn in ops.items()}
        for _ in range(ROUNDS):
            for key, t in timings.items():
                t.run((n * MAP_FACTOR if key[2] == 'map' else n) // ROUNDS)
    finally:
        release()
    out = {'%s_%s_%s' % key: t.figures() for key, t in timings.items()}
    empty = out.pop('empty_call_map')
    return {'kind': kind, 'n': n, 'array_len': ARRAY_LEN, 'index': ARRAY_LEN // 2, 'warmup': WARMUP,
            'rounds': ROUNDS, 'map_n': n * MAP_FACTOR, 'map_batch': MAP_BATCH, 'ops': out,
            'empty_call_us': empty['median_us'], 'python': '%d.%d.%d' % sys.version_info[:3]}


def objects(address, authkey, kind, n):
    """n objects created the way BaseManager._create does (dispatch 'create' on a fresh
    authenticated connection each) but without the proxy: the server then holds each with a
    reference count of 1, as it would with one live proxy per object, and the proxies' incref
    and decref (two more connections each) would triple the time and change nothing on the
    server. Nothing decrefs them: they live until the server stops."""
    typeid = 'SharedValue' if kind == 'shmgr' else 'Value'
    started = time.perf_counter()
    for _ in range(n):
        with Client(address, authkey=authkey) as conn:
            dispatch(conn, None, 'create', (typeid, 'q', 0))
    seconds = time.perf_counter() - started
    with Client(address, authkey=authkey) as conn:
        count = dispatch(conn, None, 'number_of_objects', ())
    return {'kind': kind, 'typeid': typeid, 'n': n, 'seconds': seconds, 'create_ms': seconds * 1e3 / n,
            'objects': count}


def main(argv):
    if len(argv) != 6 or argv[1] not in ('latency', 'objects') or argv[4] not in ('shmgr', 'cpython'):
        sys.exit('usage: %s latency|objects ADDRESS AUTHKEY shmgr|cpython N' % argv[0])
    address, authkey, kind, n = parse_address(argv[2]), argv[3].encode('utf-8'), argv[4], int(argv[5])
    if n < 1:
        raise ValueError('N must be at least 1, not %d' % n)
    print(json.dumps((latency if argv[1] == 'latency' else objects)(address, authkey, kind, n)))


if __name__ == '__main__':
    try:
        main(sys.argv)
    except KeyboardInterrupt:
        sys.exit('shared_latency: interrupted')
    except Exception as e:  # any failure: one clear line, non-zero exit
        sys.exit('shared_latency: %s: %s' % (type(e).__name__, e))
