"""SharedArray through a stock client (AutoProxy): the issue's example, every typecode, items
and slices compared with a local fixed-length model built on array.array, bad input that
changes nothing, and the items mapped from this process and from another one (mmap, and
multiprocessing.shared_memory from 3.8) seeing the proxy's writes and the proxy seeing theirs.
Randomized slice assignments print their seed (SHMGR_SEED replays them)."""

import array
import mmap
import os
import random
import subprocess
import sys
import warnings
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

warnings.simplefilter('ignore', DeprecationWarning)  # 'u' is deprecated from 3.13

if harness.BACKEND != 'shmgr':
    harness.skip("SharedArray is shmgr's own typeid: CPython's server has none to compare with")

TYPECODES = 'bBhHiIlLqQfdu' + ('w' if sys.version_info >= (3, 13) else '')
INITIAL = {'u': 'h\u00e9\U0001f600xyz', 'w': 'w\u00e9\U0001f600xyz'}
NUMBERS = [0, 1, -1, 127, 128, -129, 255, 256, 32768, -32769, 65536, 2 ** 31, -2 ** 31 - 1, 2 ** 32, 2 ** 63,
           -2 ** 63 - 1, 2 ** 64, 10 ** 400, True, 1.5, -0.0, 3.5e38, float('inf'), 'x', '\U0001f600', 'xy', None,
           b'a']


def initial(tc):
    return INITIAL.get(tc, [1, 2, 3, 4, 5, 6])


def set_slice(a, s, v):
    """What a fixed-length array does on a[s] = v: array.array's item checks, a length
    that may not change (in multiprocessing.Array's words)."""
    idx = range(*s.indices(len(a)))
    items = list(v)
    if len(items) != len(idx):
        raise ValueError('Can only assign sequence of same size')
    packed = array.array(a.typecode, items)
    for i, x in zip(idx, packed):
        a[i] = x


def as_array(tc):
    def make(items):
        try:
            return array.array(tc, items)
        except (TypeError, ValueError, OverflowError):
            return items
    return make


def same_contents(remote, local, what):
    return harness.check(S.same(remote.tolist(), local.tolist()) and remote.tobytes() == local.tobytes(),
                         '%s: %r, want %r' % (what, remote.tolist(), local.tolist()))


def test_example(m):
    arr = m.SharedArray('i', [0] * 10)
    arr[:5] = [1, 2, 3, 4, 5]
    harness.eq(str(arr), "SharedArray('i', [1, 2, 3, 4, 5, 0, 0, 0, 0, 0])", 'str of the example')
    harness.check(S.same(arr[:], array.array('i', [1, 2, 3, 4, 5, 0, 0, 0, 0, 0])), 'arr[:] is %r' % (arr[:],))
    harness.eq(arr.tolist(), [1, 2, 3, 4, 5, 0, 0, 0, 0, 0], 'tolist()')
    harness.eq(arr.tobytes(), array.array('i', [1, 2, 3, 4, 5, 0, 0, 0, 0, 0]).tobytes(), 'tobytes()')
    harness.eq(len(arr), 10, 'len')
    harness.eq(list(arr), [1, 2, 3, 4, 5, 0, 0, 0, 0, 0], 'iteration (by __getitem__)')
    harness.check(S.same(arr._getvalue(), array.array('i', [1, 2, 3, 4, 5, 0, 0, 0, 0, 0])), '_getvalue()')
    empty = m.SharedArray('d', [])
    harness.eq((str(empty), len(empty), empty.tolist(), empty.shm_info()[2]), ("SharedArray('d', [])", 0, [], 0),
               'an empty SharedArray')


def test_items(m):
    n = 0
    for tc in TYPECODES:
        init = initial(tc)
        remote, local = m.SharedArray(tc, init), array.array(tc, init)
        same_contents(remote, local, 'SharedArray(%r, %r)' % (tc, init))
        harness.eq(str(remote), 'SharedArray(%r, %r)' % (tc, local.tolist()), 'str(SharedArray(%r))' % tc)
        for i in [0, -1, 2, len(local), -len(local) - 1, True, 2 ** 70, 'a', 1.0, None, slice(None),
                  slice(1, None, 2), slice(None, None, -1), slice(5, 1), slice(None, None, 0), slice('a', 2)]:
            S.check('SharedArray(%r)[%r]' % (tc, i), lambda: remote[i], lambda: local[i])
            n += 1
        for v in NUMBERS:
            for i in [0, -1, 99]:
                S.check('SharedArray(%r)[%r] = %r' % (tc, i, v), lambda: remote.__setitem__(i, v),
                        lambda: local.__setitem__(i, v))
                n += 1
            same_contents(remote, local, 'SharedArray(%r) after [i] = %r' % (tc, v))
        for name, args in [('__len__', (1,)), ('__getitem__', ()), ('__setitem__', (1,)), ('tolist', (1,)),
                           ('tobytes', (1,)), ('shm_info', (1,))]:
            try:
                remote._callmethod(name, args)
                harness.fail('SharedArray(%r).%s%r: no error' % (tc, name, args))
            except TypeError:
                pass
    harness.note('SharedArray: %d item calls compared with a local array.array' % n)


def test_slices(m, rng):
    n = 0
    for tc in TYPECODES:
        init = initial(tc)
        remote, local = m.SharedArray(tc, init), array.array(tc, init)
        pool = list(local) + ([] if tc in 'uw' else [2 ** 70, 'x'])
        for _ in range(40):
            start, stop = rng.choice([None, -9, -2, 0, 1, 3, 9]), rng.choice([None, -7, -1, 0, 2, 5, 9])
            s = slice(start, stop, rng.choice([None, 1, 2, -1, -3]))
            k = len(range(*s.indices(len(local))))
            size = k if rng.random() < 0.7 else rng.choice([0, k + 1, max(k - 1, 0)])
            items = [rng.choice(pool) for _ in range(size)]
            if rng.random() < 0.3 and tc not in 'uw':  # the rare bad one, anywhere
                items = items and items[:-1] + [rng.choice([1.5, None, 2 ** 64])]
            v = rng.choice([list, tuple, as_array(tc)])(items)
            S.check('SharedArray(%r)[%r] = %r' % (tc, s, v), lambda: remote.__setitem__(s, v),
                    lambda: set_slice(local, s, v))
            same_contents(remote, local, 'SharedArray(%r) after [%r] = %r' % (tc, s, v))
            n += 1
        for v in [5, None, {1: 2}]:
            S.check('SharedArray(%r)[:] = %r' % (tc, v), lambda: remote.__setitem__(slice(None), v),
                    lambda: set_slice(local, slice(None), v))
    harness.note('SharedArray: %d random slice assignments compared' % n)


def test_constructor(m):
    for tc, init in [('i', [1, 2]), ('i', b'\x01\x00\x00\x00'), ('i', b'abc'), ('z', []), (5, []), ('ii', []),
                     ('i', 'ab'), ('u', [1]), ('b', [200]), ('i', range(3)), ('i', 5), ('i', None), ('i', iter([4, 5]))]:
        try:
            got = ('ok', m.SharedArray(tc, init).tolist())
        except Exception as e:
            got = ('raise', e)
        try:
            want = ('ok', array.array(tc, init).tolist())
        except Exception as e:
            want = ('raise', e)
        what = 'SharedArray(%r, %r)' % (tc, init)
        if want[0] == 'ok' or got[0] == 'ok':
            harness.check(got[0] == want[0] == 'ok' and got[1] == want[1], '%s: got %r, want %r' % (what, got, want))
        else:
            S.remote_error_names(what, got[1], want[1])
    e = harness.raises(Exception, m.SharedArray, what='SharedArray()')
    harness.check(e is not None and "missing 2 required positional arguments: 'format' and 'sequence'" in str(e),
                  'SharedArray() names both missing arguments: %s' % e)


def view_of(info):
    """A memoryview of the items, mapped with mmap: no resource tracker in the way."""
    name, offset, size, fmt = info
    fd = os.open('/dev/shm/' + name, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, 0)
    finally:
        os.close(fd)
    return mm, memoryview(mm)[offset:offset + size].cast({'u': 'I', 'w': 'I'}.get(fmt, fmt))


def test_mapped(m):
    arr = m.SharedArray('d', [0.0] * 8)
    name, offset, size, fmt = arr.shm_info()
    harness.check(isinstance(name, str) and not name.startswith('/') and offset % 16 == 0 and size == 64 and fmt == 'd',
                  'shm_info: %r' % (arr.shm_info(),))
    mm, view = view_of(arr.shm_info())
    view[3] = 2.5
    harness.eq(arr[3], 2.5, 'a write through the map, read through the proxy')
    arr[4] = -1.25
    harness.eq(view[4], -1.25, 'a write through the proxy, read through the map')
    harness.eq(bytes(view), arr.tobytes(), 'the mapped bytes are tobytes()')
    view.release()
    mm.close()
    # every typecode's layout is array.array's
    for tc in TYPECODES:
        a = m.SharedArray(tc, initial(tc))
        name, offset, size, _ = a.shm_info()
        with open('/dev/shm/' + name, 'rb') as f:
            f.seek(offset)
            harness.eq(f.read(size), array.array(tc, initial(tc)).tobytes(), 'mapped bytes of SharedArray(%r)' % tc)


CHILD = r'''
import sys
from multiprocessing import shared_memory
name, offset, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if sys.version_info >= (3, 13):
    shm = shared_memory.SharedMemory(name, track=False)
else:  # attaching registered it with this process's resource tracker: undo that
    shm = shared_memory.SharedMemory(name)
    from multiprocessing import resource_tracker
    resource_tracker.unregister(shm._name, 'shared_memory')
view = shm.buf[offset:offset + 8 * n].cast('q')
seen = view.tolist()
for i in range(n):
    view[i] = view[i] * 10 + 1
print(seen)
view.release()
shm.close()
'''


def test_other_process(m):
    if sys.version_info < (3, 8):
        harness.skip_part('mapping with multiprocessing.shared_memory',
                          'Python %d.%d has no multiprocessing.shared_memory (new in 3.8); mmap is tested'
                          % sys.version_info[:2])
        return
    arr = m.SharedArray('q', [1, 2, 3, 4])
    name, offset, size, _ = arr.shm_info()
    for _ in range(2):  # twice: the first child's exit must not have unlinked the segment
        before = arr.tolist()
        out = subprocess.check_output([sys.executable, '-c', CHILD, name, str(offset), '4'])
        harness.eq(out.decode().strip(), repr(before), 'the other process read what the proxy holds')
        harness.eq(arr.tolist(), [x * 10 + 1 for x in before], 'the proxy reads what the other process wrote')
        harness.check(os.path.exists('/dev/shm/' + name), 'segment %s survives the other process' % name)


def test_numpy(m):
    try:
        import numpy
    except ImportError:
        harness.skip_part('numpy view', 'numpy is not installed for this interpreter')
        return
    arr = m.SharedArray('d', [0.0] * 5)
    name, offset, size, fmt = arr.shm_info()
    fd = os.open('/dev/shm/' + name, os.O_RDWR)
    mm = mmap.mmap(fd, 0)
    os.close(fd)
    a = numpy.frombuffer(mm, dtype=fmt, count=size // 8, offset=offset)
    a[:] = numpy.arange(5) * 0.5
    harness.eq(arr.tolist(), [0.0, 0.5, 1.0, 1.5, 2.0], 'numpy writes seen through the proxy')
    del a
    mm.close()


def test_lua(srv):
    from multiprocessing.managers import BaseManager

    class LM(BaseManager):
        pass
    LM.register('get_loaded')
    LM.register('Counts')
    LM.register('Tally', method_to_typeid={'counts': 'Counts'})
    lm = LM(address=srv.address, authkey=srv.authkey)
    lm.connect()
    loaded = lm.get_loaded()
    harness.eq(str(loaded), "SharedArray('d', [0.5, 1.5, 2.5])", 'a SharedArray made by the config')
    harness.check(not loaded.shm_info()[0].startswith('shmgr_p_'), 'made before listening, renamed after: %r'
                  % (loaded.shm_info(),))
    t = lm.Tally(4)
    harness.eq([t.incr(1), t.incr(1), t.incr(3), t.total()], [1, 2, 1, 3], 'a Lua method reading and writing')
    counts = t.counts()
    harness.eq(counts.tolist(), [0, 2, 0, 1], 'the same object through a proxy')
    counts[0] = 10
    harness.eq(t.total(), 13, 'a proxy write, seen by Lua')
    mm, view = view_of(counts.shm_info())
    view[2] = 100
    harness.eq(t.total(), 113, 'a write through the map, seen by Lua')
    view.release()
    mm.close()
    bad = t.bad()
    harness.check("TypeError" in bad and 'cannot be interpreted as an integer' in bad,
                  'a Lua write of a float raises array\'s TypeError: %r' % bad)
    harness.eq(t.total(), 113, 'and changes nothing')


def main():
    seed = int(os.environ.get('SHMGR_SEED') or random.randrange(1 << 30))
    print('seed %d (SHMGR_SEED=%d replays it)' % (seed, seed))
    with harness.server('conf/shared_memory.lua') as srv:
        m = harness.client_manager(srv, ['SharedArray'])
        S.check_exposed(srv, m.SharedArray('i', []),
                        ('__getitem__', '__len__', '__setitem__', 'shm_info', 'tobytes', 'tolist'))
        test_example(m)
        test_items(m)
        test_slices(m, random.Random(seed))
        test_constructor(m)
        test_mapped(m)
        test_other_process(m)
        test_numpy(m)
        test_lua(srv)
        harness.check(srv.alive(), 'the server is still running')
    harness.done()


if __name__ == '__main__':
    main()
