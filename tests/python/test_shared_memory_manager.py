"""SharedMemoryManager's server side (issue 12): a stock SharedMemoryManager that connect()s
makes segments with SharedMemory(size) and ShareableList(seq), which the server tracks
(track_segment); another process sees their bytes; list_segments names them; release_segment
unlinks one at once; releasing an untracked name fails as CPython's server fails
(ValueError: list.remove(x): x not in list) and unlinks nothing; names that are no
segment (empty, '/', 'a/b', '..', a path out of /dev/shm, too long, NUL, lone surrogate,
not a str, a symlink, a directory, an empty file) give CPython's errors and unlink nothing;
the argument errors; and every tracked segment is unlinked when the server stops: by the
shutdown method (also after a segment was released by hand), by SIGTERM and by SIGINT.

The cpython backend runs CPython's own SharedMemoryServer (py_setup below). Where shmgr
differs on purpose (shutdown when a tracked segment is already gone; signals) each backend is
held to its own behaviour, said in docs/shared-memory.md."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import ast  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402

from harness import check, eq, note  # noqa: E402

if sys.version_info < (3, 8):
    harness.skip('multiprocessing.shared_memory and SharedMemoryManager are new in Python 3.8')

from multiprocessing import resource_tracker, shared_memory  # noqa: E402
from multiprocessing.managers import RemoteError, SharedMemoryManager, dispatch  # noqa: E402

SHM = '/dev/shm'
MADE = []     # names of the segments this script made (in /dev/shm), unlinked at the end
LEFT = []     # other paths it made, removed at the end


def py_setup(M):
    # CPython's own SharedMemoryServer: what SharedMemoryManager.get_server() builds
    from multiprocessing.managers import SharedMemoryServer
    M._Server = SharedMemoryServer
    M.get_server = SharedMemoryManager.get_server


def exists(name):
    return os.path.lexists(os.path.join(SHM, name))


def made(name):
    """Note a segment of ours: forget it in this process's resource tracker (which would
    unlink it, and warn, when the script ends) and unlink it at the end if still there."""
    resource_tracker.unregister('/' + name, 'shared_memory')
    MADE.append(name)
    return name


def own_segment(size=16):
    """A segment made here, not through the manager: the server does not track it."""
    s = shared_memory.SharedMemory(create=True, size=size)
    made(s.name)
    return s


def connect(srv):
    m = SharedMemoryManager(address=srv.address, authkey=srv.authkey)
    m.connect()
    return m


def call(srv, method, *args, **kwds):
    """A server method as a stock client calls one (dispatch on a fresh connection):
    ('ok', result) or ('error', the last line of the remote traceback)."""
    c = harness.raw_client(srv)
    try:
        return 'ok', dispatch(c, None, method, args, kwds)
    except RemoteError as e:
        return 'error', str(e.args[0]).strip().splitlines()[-1]
    finally:
        c.close()


def segments(srv):
    r = call(srv, 'list_segments')
    check(r[0] == 'ok' and isinstance(r[1], list), 'list_segments answers a list: %r' % (r,))
    return r[1] if r[0] == 'ok' else []


CHILD = r'''
import sys, harness
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.managers import SharedMemoryManager, dispatch
srv = harness.from_env()
m = SharedMemoryManager(address=srv.address, authkey=srv.authkey)
m.connect()
c = harness.raw_client(srv)
print('names %r' % (dispatch(c, None, 'list_segments'),))
c.close()
a = shared_memory.SharedMemory(name=sys.argv[1])
resource_tracker.unregister(a._name, 'shared_memory')  # attaching registers it (3.8-3.12): not ours to unlink
sl = shared_memory.ShareableList(name=sys.argv[2])
resource_tracker.unregister(sl.shm._name, 'shared_memory')
print('bytes %r' % (bytes(a.buf[:5]),))
print('list %r' % (list(sl),))
a.buf[5:7] = b'!!'
sl[0] = 42
a.close()
sl.shm.close()
print('done')
'''


def part_track(srv):
    smm = connect(srv)
    eq(segments(srv), [], 'no segment tracked at first')
    sms = smm.SharedMemory(64)
    made(sms.name)
    check(exists(sms.name), 'SharedMemory(64) made a segment: %s' % sms.name)
    eq(sms.size >= 64, True, 'its size')
    sms.buf[:5] = b'hello'
    items = [1, 2.5, 'three', b'four', None, True]
    sl = smm.ShareableList(items)
    made(sl.shm.name)
    eq(list(sl), items, 'ShareableList holds the sequence')
    eq(segments(srv), [sms.name, sl.shm.name], 'list_segments: both, in the order they were made')

    child = harness.Child(srv, CHILD, args=(sms.name, sl.shm.name))
    line = child.expect('names ')
    if line:
        eq(ast.literal_eval(line[len('names '):]), [sms.name, sl.shm.name], 'another process sees the same names')
    line = child.expect('bytes ')
    if line:
        eq(ast.literal_eval(line[len('bytes '):]), b'hello', 'another process reads the SharedMemory bytes')
    line = child.expect('list ')
    if line:
        eq(ast.literal_eval(line[len('list '):]), items, 'another process reads the ShareableList')
    child.expect('done')
    eq(child.wait(), 0, 'the other process exits cleanly')
    eq(bytes(sms.buf[:7]), b'hello!!', 'its writes reach this process')
    eq(sl[0], 42, 'its ShareableList write reaches this process')

    if srv.backend == 'shmgr':
        info = harness.raw_call(srv, None, 'shmgr_info')
        eq(info[0] == '#RETURN' and info[1]['shared_memory'].get('tracked_segments'), 2,
           "shmgr_info: ['shared_memory']['tracked_segments']")
        eq(metric(srv, 'shmgr_tracked_segments'), 2, 'metrics: shmgr_tracked_segments')

    # release_segment: unlinked before the answer comes
    eq(call(srv, 'release_segment', sms.name), ('ok', None), 'release_segment of a tracked name')
    check(not exists(sms.name), 'released segment gone from /dev/shm at once')
    eq(sms.buf[:5].tobytes(), b'hello', 'a mapping made before goes on working')
    eq(segments(srv), [sl.shm.name], 'list_segments after the release')
    eq(call(srv, 'release_segment', sms.name), ('error', 'ValueError: list.remove(x): x not in list'),
       'release_segment of it again')
    sms.close()

    # a segment that exists but is not tracked survives release_segment
    own = own_segment()
    eq(call(srv, 'release_segment', own.name), ('error', 'ValueError: list.remove(x): x not in list'),
       'release_segment of an untracked segment')
    check(exists(own.name), 'the untracked segment is still there')
    eq(segments(srv), [sl.shm.name], 'list_segments unchanged by the failed release')
    # tracking one twice: released once, listed once more
    eq(call(srv, 'track_segment', own.name), ('ok', None), 'track_segment by hand')
    eq(call(srv, 'track_segment', own.name), ('ok', None), 'track_segment of the same name again')
    eq(segments(srv), [sl.shm.name, own.name, own.name], 'list_segments keeps duplicates, as a list')
    eq(call(srv, 'release_segment', own.name), ('ok', None), 'release of a name tracked twice')
    check(not exists(own.name), 'unlinked at the first release')
    eq(call(srv, 'release_segment', own.name),
       ('error', "FileNotFoundError: [Errno 2] No such file or directory: '/%s'" % own.name),
       'the second release finds it gone (and forgets the name)')
    eq(segments(srv), [sl.shm.name], 'list_segments after both')
    own.close()
    if srv.backend == 'shmgr':
        eq(metric(srv, 'shmgr_tracked_segments'), 1, 'metrics: shmgr_tracked_segments after the releases')
    sl.shm.close()
    return sl.shm.name


def part_bad_names(srv, tmp):
    before = segments(srv)
    victim = os.path.join(tmp, 'victim')
    with open(victim, 'w') as f:
        f.write('keep me')
    tag = 'shmgr-test-%d' % os.getpid()
    d = os.path.join(SHM, tag + '-dir')
    os.mkdir(d)
    LEFT.append(d)
    inner = os.path.join(d, 'f')
    with open(inner, 'w') as f:
        f.write('keep me')
    LEFT.append(inner)
    link = tag + '-link'
    os.symlink(victim, os.path.join(SHM, link))
    LEFT.append(os.path.join(SHM, link))
    empty = tag + '-empty'
    os.close(os.open(os.path.join(SHM, empty), os.O_CREAT | os.O_WRONLY, 0o600))
    LEFT.append(os.path.join(SHM, empty))
    kept = own_segment()

    def enoent(n):
        return "FileNotFoundError: [Errno 2] No such file or directory: %r" % ('/' + n)

    def einval(n):
        return 'OSError: [Errno 22] Invalid argument: %r' % ('/' + n)

    def nul_error(n):
        # CPython before 3.13 passes the name cut at its NUL to shm_open (here: '/a', which
        # is not the name tracked); 3.13 refuses it, and so does shmgr with every client
        if srv.backend == 'cpython' and sys.version_info < (3, 13):
            return enoent(n)
        return 'ValueError: embedded null character'

    cases = [
        ('psm_nosuch', enoent('psm_nosuch')),
        ('', einval('')),
        ('/', einval('/')),
        ('.', einval('.')),
        ('..', einval('..')),
        ('a/b', einval('a/b')),
        ('..' + victim, einval('..' + victim)),                  # /../tmp/.../victim
        ('../../..' + victim, einval('../../..' + victim)),
        (tag + '-dir/f', einval(tag + '-dir/f')),               # a file below /dev/shm
        (tag + '-dir', einval(tag + '-dir')),                   # glibc's shm_open: EISDIR becomes EINVAL
        (link, 'OSError: [Errno 40] Too many levels of symbolic links: %r' % ('/' + link)),
        (empty, 'ValueError: cannot mmap an empty file'),
        ('x' * 255, enoent('x' * 255)),
        ('x' * 256, 'OSError: [Errno 36] File name too long: %r' % ('/' + 'x' * 256)),
        ('x' * 300, einval('x' * 300)),
        ('a\0b', nul_error('a\0b')),
        ('\udcff', "UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff' in position 1: "
                   "surrogates not allowed"),
        ('ok\udc80\udc81', "UnicodeEncodeError: 'utf-8' codec can't encode characters in position 3-4: "
                           "surrogates not allowed"),
        (123, 'TypeError: can only concatenate str (not "int") to str'),
        (1.5, 'TypeError: can only concatenate str (not "float") to str'),
        (b'abc', 'TypeError: can only concatenate str (not "bytes") to str'),
        (('a',), 'TypeError: can only concatenate str (not "tuple") to str'),
        (None, "ValueError: 'name' can only be None if create=True"),
    ]
    for name, _ in cases:
        eq(call(srv, 'track_segment', name), ('ok', None), 'track_segment(%.40r) is accepted, as CPython accepts it' % (name,))
    got = segments(srv)
    eq(got, before + [n for n, _ in cases], 'list_segments holds each as given')
    for name, want in cases:
        eq(call(srv, 'release_segment', name), ('error', want), 'release_segment(%.40r)' % (name,))
    eq(segments(srv), before, 'each is forgotten even though its release failed')
    # an int tracked, a bool released: list.remove matches 1 == True, the error names the bool
    eq(call(srv, 'track_segment', 1), ('ok', None), 'track_segment(1)')
    eq(call(srv, 'release_segment', True), ('error', 'TypeError: can only concatenate str (not "bool") to str'),
       'release_segment(True) removes a tracked 1')
    eq(segments(srv), before, 'and 1 is forgotten')

    # a name like shmgr's own segments' (shm.c): CPython unlinks it, shmgr refuses
    theirs = 'shmgr_smmtest_%d_1' % os.getpid()
    with open(os.path.join(SHM, theirs), 'wb') as f:
        f.write(b'x' * 16)
    LEFT.append(os.path.join(SHM, theirs))
    eq(call(srv, 'track_segment', theirs), ('ok', None), 'track_segment of a shmgr_ name')
    r = call(srv, 'release_segment', theirs)
    if srv.backend == 'cpython':
        eq((r, exists(theirs)), (('ok', None), False), 'CPython: release_segment unlinks a shmgr_ segment')
    else:
        eq((r, exists(theirs)), (('error', "PermissionError: [Errno 1] Operation not permitted: '/%s'" % theirs), True),
           "shmgr: release_segment leaves segments named as shmgr's own")

    with open(victim) as f:
        eq(f.read(), 'keep me', 'the file outside /dev/shm is untouched')
    with open(inner) as f:
        eq(f.read(), 'keep me', 'the file below a /dev/shm directory is untouched')
    check(os.path.islink(os.path.join(SHM, link)), 'the symlink in /dev/shm is untouched')
    check(os.path.isdir(d), 'the directory in /dev/shm is untouched')
    check(exists(empty), 'the empty file in /dev/shm is not unlinked (as CPython leaves it)')
    check(exists(kept.name), 'an untracked segment is untouched')
    kept.close()


def part_arguments(srv):
    def tail(r, text):
        return r[0] == 'error' and r[1].startswith('TypeError: ') and r[1].endswith(text)
    # 3.8 and 3.9 name the function without its class: compare the end
    for args, kwds, text in [
            ((), {}, "track_segment() missing 1 required positional argument: 'segment_name'"),
            (('a', 'b'), {}, 'track_segment() takes 3 positional arguments but 4 were given'),
            ((), {'name': 'x'}, "track_segment() got an unexpected keyword argument 'name'"),
            (('a',), {'segment_name': 'b'}, "track_segment() got multiple values for argument 'segment_name'")]:
        r = call(srv, 'track_segment', *args, **kwds)
        check(tail(r, text), 'track_segment(*%r, **%r): %r' % (args, kwds, r))
    r = call(srv, 'release_segment')
    check(tail(r, "release_segment() missing 1 required positional argument: 'segment_name'"), 'release_segment(): %r' % (r,))
    r = call(srv, 'list_segments', 1)
    check(tail(r, 'list_segments() takes 2 positional arguments but 3 were given'), 'list_segments(1): %r' % (r,))
    before = segments(srv)
    eq(call(srv, 'track_segment', segment_name='psm_bykeyword'), ('ok', None), 'track_segment(segment_name=...)')
    eq(segments(srv), before + ['psm_bykeyword'], 'tracked by keyword')
    eq(call(srv, 'release_segment', segment_name='psm_bykeyword'),
       ('error', "FileNotFoundError: [Errno 2] No such file or directory: '/psm_bykeyword'"), 'released by keyword')


def metric(srv, name):
    """A gauge's value from the server's /metrics page (shmgr only)."""
    try:
        from urllib.request import urlopen
    except ImportError:  # pragma: no cover
        return None
    harness.wait_until(lambda: 'metrics on ' in srv.log(), 5)
    m = re.search(r'^metrics on (\S+)$', srv.log(), re.M)
    if not check(m, 'the server says where metrics are served'):
        return None
    page = urlopen('http://%s/metrics' % m.group(1), timeout=10).read().decode('utf-8')
    v = re.search(r'^%s (\S+)$' % re.escape(name), page, re.M)
    return int(float(v.group(1))) if v else None


def tracked_pair(srv):
    """A connected manager's SharedMemory and ShareableList: their names."""
    smm = connect(srv)
    a = smm.SharedMemory(32)
    b = smm.ShareableList(['x', 2])
    names = [made(a.name), made(b.shm.name)]
    a.close()
    b.shm.close()
    return names


def part_shutdown():
    # a segment released by hand before shutdown; the others go with the server
    with harness.server(py_setup=py_setup) as srv:
        names = tracked_pair(srv)
        third = tracked_pair(srv)
        eq(call(srv, 'release_segment', third[0]), ('ok', None), 'a segment released by hand')
        eq(segments(srv), names + third[1:], 'list_segments before shutdown')
        reply = harness.raw_call(srv, None, 'shutdown')
        eq(reply, ('#RETURN', None), 'shutdown answers')
        eq([n for n in names + third if exists(n)], [], 'every tracked segment unlinked by the time shutdown answers')
        eq(srv.wait_exit(5), 0, 'the server exits (status 0) after shutdown')

    # a tracked segment its client unlinked itself: CPython's shutdown fails on it and goes
    # on serving; shmgr unlinks the rest, says what failed in its log, and stops
    with harness.server(py_setup=py_setup) as srv:
        smm = connect(srv)
        gone = smm.SharedMemory(16)
        MADE.append(gone.name)
        gone.close()
        gone.unlink()  # also forgets it in this process's resource tracker
        rest = tracked_pair(srv)
        reply = harness.raw_call(srv, None, 'shutdown')
        if srv.backend == 'cpython':
            check(reply[0] == '#TRACEBACK' and reply[1].strip().endswith(
                "FileNotFoundError: [Errno 2] No such file or directory: '/%s'" % gone.name),
                  'CPython: shutdown fails on the segment already gone: %r' % (reply,))
            eq([n for n in rest if exists(n)], rest, 'CPython: the segments tracked after it are left')
            eq(srv.wait_exit(1.5), None, 'CPython: the server goes on serving')
            eq(segments(srv), rest, 'CPython: the name that failed is forgotten')
            eq(harness.raw_call(srv, None, 'shutdown'), ('#RETURN', None), 'CPython: a second shutdown answers')
        else:
            eq(reply, ('#RETURN', None), 'shmgr: shutdown answers though a tracked segment is already gone')
        eq([n for n in rest if exists(n)], [], 'the other tracked segments are unlinked')
        eq(srv.wait_exit(5), 0, 'the server exits (status 0)')
        if srv.backend == 'shmgr':
            said = "tracked segment '%s' not unlinked: FileNotFoundError" % gone.name
            check(harness.wait_until(lambda: said in srv.log(), 3),
                  'shmgr logs the segment it could not unlink; log:\n%s' % srv.log())


def part_signals():
    if harness.BACKEND == 'cpython':
        harness.skip_part('SIGTERM and SIGINT', "CPython's SharedMemoryServer unlinks only in its shutdown method: "
                          'on SIGTERM (killed) or SIGINT (it exits) it leaves every tracked segment')
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        with harness.server(py_setup=py_setup) as srv:
            names = tracked_pair(srv)
            os.kill(srv.pid, sig)
            eq(srv.wait_exit(5), 0, 'shmgr exits with status 0 on signal %d' % sig)
            eq([n for n in names if exists(n)], [], 'signal %d: every tracked segment unlinked' % sig)


def cleanup():
    for name in MADE:
        try:
            os.unlink(os.path.join(SHM, name))
        except OSError:
            pass
    for p in reversed(LEFT):
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            else:
                os.unlink(p)
        except OSError:
            pass


def main():
    if not os.path.isdir(SHM):
        harness.skip('no %s: POSIX shared memory lives elsewhere on this system' % SHM)
    tmp = tempfile.mkdtemp(prefix='shmgr-smm-')
    LEFT.append(tmp)
    try:
        with harness.server(harness.conf('shared_memory_manager.lua'), py_setup) as srv:
            kept = part_track(srv)
            part_bad_names(srv, tmp)
            part_arguments(srv)
            eq(segments(srv), [kept], 'after all that, only the ShareableList is tracked')
            note('server methods, bad names, arguments: done (backend %s)' % srv.backend)
        # harness stopped that server with SIGTERM (the cpython one is killed)
        if harness.BACKEND == 'shmgr':
            check(not exists(kept), 'the ShareableList went with the server')
        part_shutdown()
        part_signals()
    finally:
        victim = os.path.join(tmp, 'victim')
        if os.path.exists(victim):
            LEFT.insert(1, victim)
        cleanup()
    harness.done()


if __name__ == '__main__':
    main()
