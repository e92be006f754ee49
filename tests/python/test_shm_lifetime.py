"""The shared memory of SharedArray and its kind lives as long as its objects and its server:
a freed object gives its block back (a large one's segment is unlinked at once); SIGTERM,
SIGINT and the shutdown method leave no segment of the server in /dev/shm, the segments of
objects the config made included; after a SIGKILL the next server on the same address
(TCP or Unix) unlinks what the dead one left; a server refused a Unix path a live one
answers on touches none of the live one's; shared memory that cannot be had (here: past
RLIMIT_FSIZE, as a full /dev/shm would be) is an OSError for that call while the server
goes on; many small objects share few segments; shm_mode sets the segments' permissions."""

import errno
import os
import resource
import signal
import sys
import time
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

if harness.BACKEND != 'shmgr':
    harness.skip("SharedArray is shmgr's own typeid: CPython's server has none")

BIG = 20000  # doubles: 160 KB, past the largest size class, so a segment of its own


def prefix(name):
    """The part of a segment's name that names its server ("shmgr_<address hash>_<pid>_")."""
    return name[:name.rindex('_') + 1]


def leftovers(pfx):
    return sorted(n for n in os.listdir('/dev/shm') if n.startswith(pfx))


def info(srv):
    from multiprocessing.managers import dispatch
    conn = harness.raw_client(srv)
    try:
        return dispatch(conn, None, 'shmgr_info', ())['shared_memory']
    finally:
        conn.close()


def manager(srv):
    from multiprocessing.managers import BaseManager

    class M(BaseManager):
        pass
    M.register('SharedArray')
    M.register('get_loaded')
    m = M(address=srv.address, authkey=srv.authkey)
    m.connect()
    return m


def some_objects(m):
    """A small array, a large one and the config's: their segment names."""
    small, big = m.SharedArray('i', [1, 2, 3]), m.SharedArray('d', [0.0] * BIG)
    names = set(o.shm_info()[0] for o in (small, big, m.get_loaded()))
    harness.check(all(os.path.exists('/dev/shm/' + n) for n in names), 'segments exist: %r' % sorted(names))
    return (small, big), names


def test_stops():
    for how in ('SIGTERM', 'SIGINT', 'shutdown'):
        with harness.server('conf/shared_memory.lua', unix=True) as srv:
            m = manager(srv)
            objs, names = some_objects(m)
            pfx = prefix(next(iter(names)))
            if how == 'shutdown':
                from multiprocessing.managers import dispatch
                conn = harness.raw_client(srv)
                dispatch(conn, None, 'shutdown', ())
                conn.close()
            else:
                os.kill(srv.pid, getattr(signal, how))
            rc = srv.wait_exit(10)
            harness.eq(rc, 0, 'exit status after %s' % how)
            harness.eq(leftovers(pfx), [], 'segments of the server left after %s' % how)
            harness.eq(leftovers('shmgr_p_%d_' % srv.pid), [], 'config-time segment names left after %s' % how)
            del objs


def test_free(srv):
    m = manager(srv)
    base = info(srv)
    big = m.SharedArray('d', [0.0] * BIG)
    name = big.shm_info()[0]
    small = [m.SharedArray('b', [1]) for _ in range(10)]
    now = info(srv)
    harness.eq((now['blocks'] - base['blocks'], now['block_bytes'] - base['block_bytes']), (11, 8 * BIG + 10),
               'blocks in use after 11 new objects')
    del big
    harness.check(harness.wait_until(lambda: not os.path.exists('/dev/shm/' + name)),
                  'a large object freed: its segment %s is unlinked' % name)
    del small
    harness.check(harness.wait_until(lambda: info(srv)['blocks'] == base['blocks']),
                  'small objects freed: their blocks are given back (%r, was %r)' % (info(srv), base))


def test_many_small(srv):
    m = manager(srv)
    base = info(srv)
    objs = [m.SharedArray('i', [i]) for i in range(3000)]
    now = info(srv)
    segs = set(o.shm_info()[0] for o in objs[::97])
    harness.check(now['segments'] - base['segments'] <= 2 and len(segs) <= 2,
                  '3000 small objects take %d new segment(s), %d names seen' % (now['segments'] - base['segments'], len(segs)))
    harness.check(all(o[0] == i for i, o in list(enumerate(objs))[::301]), 'each holds its own item')
    fds = len(os.listdir('/proc/%d/fd' % srv.pid))
    harness.check(fds < 50, 'the server holds %d descriptors with 3000 objects (segments keep none)' % fds)
    del objs


def test_crash(unix):
    tmp = harness.tempfile.mkdtemp(prefix='shmgr-test-crash-')
    listen = 'unix:' + os.path.join(tmp, 's.sock') if unix else None
    try:
        with harness.server('conf/shared_memory.lua', listen=listen) as srv:
            m = manager(srv)
            objs, names = some_objects(m)
            address = srv.address
            srv.kill()
            harness.check(all(os.path.exists('/dev/shm/' + n) for n in names),
                          'a SIGKILLed server leaves its segments (%s)' % ('unix' if unix else 'tcp'))
        again = listen or '%s:%d' % address
        with harness.server('conf/shared_memory.lua', listen=again) as srv2:
            gone = [n for n in names if not os.path.exists('/dev/shm/' + n)]
            harness.eq(sorted(gone), sorted(names), 'the next server on %s unlinked the dead one\'s segments' % again)
            harness.check('left by an earlier server' in srv2.log(), 'and said so: %s' % srv2.log()[-300:])
            from multiprocessing.managers import BaseProxy
            BaseProxy._address_to_local.pop(srv2.address, None)  # this thread's connection to the dead one
            harness.eq(manager(srv2).SharedArray('i', [1]).tolist(), [1], 'the next server serves')
        del objs
    finally:
        harness.shutil.rmtree(tmp, ignore_errors=True)


def test_live_unix_path():
    with harness.server('conf/shared_memory.lua', unix=True) as srv:
        m = manager(srv)
        objs, names = some_objects(m)
        try:
            with harness.server('conf/shared_memory.lua', listen='unix:' + srv.address):
                harness.fail('a second server took the Unix path of a live one')
        except harness.ServerError as e:
            harness.check('a running server listens there' in str(e), 'refused with the reason: %s' % str(e)[-300:])
        harness.check(all(os.path.exists('/dev/shm/' + n) for n in names), 'the live server keeps its segments')
        harness.eq(objs[0].tolist(), [1, 2, 3], 'and serves on')


def test_no_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = 1 << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # the server inherits it
    try:
        cm = harness.server('conf/shared_memory.lua')
        srv = cm.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    try:
        m = manager(srv)
        before = info(srv)
        from multiprocessing.managers import RemoteError
        e = harness.raises(RemoteError, m.SharedArray, 'b', bytes(4 << 20), what='SharedArray past the limit')
        # a constructor's error comes as a traceback, as from CPython's server
        harness.check(e is not None and 'OSError: [Errno %d] File too large (a shared memory segment of 4194304 bytes'
                      % errno.EFBIG in str(e), 'the error says what failed: %s' % e)
        harness.eq(info(srv), before, 'nothing is left of the failed object')
        harness.eq(m.SharedArray('i', [7]).tolist(), [7], 'the server goes on')
        harness.check('cannot make' in srv.log(), 'the log says why: %s' % srv.log()[-300:])
    finally:
        cm.__exit__(None, None, None)


MODE_CONFIG = """
listen = { "127.0.0.1:0" }
shm_mode = %s
local loaded = shmgr.SharedArray("i", {1})
shmgr.register("get_loaded", function() return loaded end)
"""


def test_mode():
    import stat
    tmp = harness.tempfile.mkdtemp(prefix='shmgr-test-mode-')
    try:
        path = os.path.join(tmp, 'mode.lua')
        with open(path, 'w') as f:
            f.write(MODE_CONFIG % '"0640"')
        with harness.server(path) as srv:
            m = manager(srv)
            for o in (m.get_loaded(), m.SharedArray('i', [2]), m.SharedArray('d', [0.0] * BIG)):
                mode = stat.S_IMODE(os.stat('/dev/shm/' + o.shm_info()[0]).st_mode)
                harness.eq(oct(mode), oct(0o640), 'shm_mode of %r' % (o.shm_info(),))
        for bad in ('"rw"', '"0999"', '640'):
            with open(path, 'w') as f:
                f.write(MODE_CONFIG % bad)
            try:
                with harness.server(path):
                    harness.fail('shmgr started with shm_mode = %s' % bad)
            except harness.ServerError as e:
                harness.check('shm_mode must be an octal string such as "0600"' in str(e),
                              'shm_mode = %s refused with the reason: %s' % (bad, str(e)[-200:]))
    finally:
        harness.shutil.rmtree(tmp, ignore_errors=True)


def main():
    test_stops()
    with harness.server('conf/shared_memory.lua', unix=True) as srv:
        test_free(srv)
        test_many_small(srv)
    test_crash(unix=True)
    test_crash(unix=False)
    test_live_unix_path()
    test_no_room()
    test_mode()
    harness.done()


if __name__ == '__main__':
    main()
