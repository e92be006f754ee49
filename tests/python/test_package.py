"""The Python package python/shmgr: shmgr.Manager() and the manager classes start shmgr as
their server (a private Unix socket by default, or TCP), hand it the key on a pipe (never on
its command line or in its environment, NULs and all), and stop it at shutdown(), when the
manager is collected, when the owner exits (in order or by os._exit) and when the owner is
SIGKILLed, leaving nothing behind. Lua types through types= and config=; the clear errors:
a Python callable, start(initializer), m.Pool(), no binary, a config shmgr refuses (its own
message); get_server().serve_forever(); Pool workers (fork and spawn) using a dict and a Lock
of the manager; SharedMemoryManager."""
# run.py: timeout 300

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import gc  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from multiprocessing import managers  # noqa: E402

PKG = os.path.join(harness.REPO, 'python')
sys.path.insert(0, PKG)
import shmgr  # noqa: E402

COUNTER_LUA = '''
shmgr.register("Counter", function(start)
  return { n = start or 0,
           incr = function(self, k) self.n = self.n + (k or 1); return self.n end,
           get = function(self) return self.n end }
end)
'''
PAIR2_LUA = '''
shmgr.register("Pair2", function(x, y)
  return { x = x, y = y, sum = function(self) return self.x + self.y end }
end)
'''


def gone(pid):
    """The process has exited (a zombie counts: nobody may reap an orphan in a container)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except (IOError, OSError):
        return True


def left_in(folder):
    return sorted(os.listdir(folder))


def child_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = PKG + os.pathsep + env.get('PYTHONPATH', '')
    env['TMPDIR'] = tempfile.gettempdir()
    return env


# --------------------------------------------------------------------------

def round_trip():
    with shmgr.Manager() as m:
        harness.check(isinstance(m, shmgr.SyncManager) and isinstance(m, managers.SyncManager),
                      'Manager() is a shmgr.SyncManager and a stdlib SyncManager')
        addr = m.address
        folder = os.path.dirname(addr)
        harness.check(isinstance(addr, str) and stat.S_ISSOCK(os.stat(addr).st_mode), 'a Unix socket: %r' % (addr,))
        harness.eq(oct(os.stat(folder).st_mode & 0o777), oct(0o700), 'its folder is private')
        harness.eq(os.path.dirname(folder), tempfile.gettempdir(), 'in the temporary folder')
        d, l, q, lock = m.dict(), m.list([1, 2]), m.Queue(), m.Lock()
        with lock:
            d['a'] = [1, 'x', None]
            l.append(3)
            q.put(('t', 1.5))
        harness.eq(dict(d), {'a': [1, 'x', None]}, 'dict')
        harness.eq(list(l), [1, 2, 3], 'list')
        harness.eq(q.get(timeout=5), ('t', 1.5), 'Queue')
        harness.check(lock.acquire(timeout=1), 'the Lock is free again')
        lock.release()
        proc = m._process
        harness.eq(proc.exitcode, None, '_process.exitcode while it runs')
        harness.check(proc.is_alive() and proc.pid > 0, '_process.is_alive(), .pid')
    harness.eq(proc.exitcode, 0, 'exit status 0 after the with block')
    harness.check(not os.path.exists(folder), 'the socket and its folder are gone')


def tcp_and_key():
    key = b'\0\0' + os.urandom(30) + b'\0k\n'
    m = shmgr.SyncManager(address=('127.0.0.1', 0), authkey=key)
    m.start()
    try:
        host, port = m.address
        harness.check(host == '127.0.0.1' and port > 0, 'a TCP address with a real port: %r' % (m.address,))
        stock = managers.SyncManager(address=m.address, authkey=key)
        stock.connect()
        d = stock.dict()
        d['k'] = 'v'
        harness.eq(d.copy(), {'k': 'v'}, 'a stock client with the key (NULs and a newline in it)')
        bad = managers.SyncManager(address=m.address, authkey=key[:-1])
        harness.raises(multiprocessing.AuthenticationError, bad.connect, what='a key one byte short')
        # the key is on no command line and in no environment of the server
        pid = m._process.pid
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmdline = f.read()
        with open('/proc/%d/environ' % pid, 'rb') as f:
            environ = f.read()
        for what, text in (('cmdline', cmdline), ('environ', environ)):
            harness.check(key not in text and key[2:32] not in text and key[2:32].hex().encode() not in text,
                          'the key is not in /proc/PID/%s' % what)
        harness.check(b'--authkey-fd' in cmdline, 'the key came on a descriptor: %r' % cmdline)
    finally:
        m.shutdown()
    harness.eq(m._process.exitcode, 0, 'TCP: exit status 0 after shutdown()')


def printable_key_not_shown():
    key = b'this-key-must-not-show-' + os.urandom(4).hex().encode()
    with shmgr.Manager(authkey=key) as m:
        pid = m._process.pid
        for what in ('cmdline', 'environ'):
            with open('/proc/%d/%s' % (pid, what), 'rb') as f:
                harness.check(b'this-key-must-not-show' not in f.read(), 'a printable key is not in /proc/PID/%s' % what)


def key_wins(tmp):
    """The manager's key wins over the config's authkey and SHMGR_AUTHKEY, at start and after a
    reload (SIGHUP re-reads the config); an empty key serves a Unix socket."""
    cfg = os.path.join(tmp, 'keyed.lua')
    with open(cfg, 'w') as f:
        f.write('authkey = "the-config-key"\nlog_level = "warn"\n')
    key = b'the-managers-key\0'
    os.environ['SHMGR_AUTHKEY'] = 'the-environment-key'
    try:
        with shmgr.SyncManager(authkey=key, config=cfg) as m:
            for other in (b'the-config-key', b'the-environment-key'):
                bad = managers.SyncManager(address=m.address, authkey=other)
                harness.raises(multiprocessing.AuthenticationError, bad.connect, what='the key %r is refused' % other)
            os.kill(m._process.pid, signal.SIGHUP)
            time.sleep(0.3)
            harness.eq(m.list([1, 2]).count(2), 1, "after a reload the manager's key still works")
            bad = managers.SyncManager(address=m.address, authkey=b'the-config-key')
            harness.raises(multiprocessing.AuthenticationError, bad.connect, what="after a reload the config's key is refused")
    finally:
        del os.environ['SHMGR_AUTHKEY']
    with shmgr.Manager(authkey=b'') as m:
        harness.eq(m.dict(a=1).copy(), {'a': 1}, 'an empty key on a Unix socket')


def stops_at_shutdown():
    m = shmgr.Manager()
    pid, folder = m._process.pid, os.path.dirname(m.address)
    m.shutdown()
    harness.check(gone(pid), 'shutdown(): the server is gone')
    harness.check(not os.path.exists(folder), 'shutdown(): its folder is gone')
    m.shutdown()  # a Finalize: a second call does nothing
    harness.raises(multiprocessing.ProcessError, m.start, what='start() after shutdown()')


def stops_when_collected():
    m = shmgr.Manager()
    d = m.dict()
    d[1] = 2
    proc, folder = m._process, os.path.dirname(m.address)
    del m, d
    gc.collect()
    harness.check(harness.wait_until(lambda: not proc.is_alive(), 10), 'collected: the server stops')
    harness.eq(proc.exitcode, 0, 'collected: exit status')
    harness.check(not os.path.exists(folder), 'collected: its folder is gone')


OWNER = '''
import multiprocessing, os, sys, time, shmgr
m = shmgr.Manager()
d = m.dict(); d['x'] = 1
how = sys.argv[1]
child = 0
if how == 'SIGKILL, a forked child left':  # the child must not keep the server alive
    p = multiprocessing.get_context('fork').Process(target=time.sleep, args=(60,))
    p.start()
    child = p.pid
sys.stdout.write('%d %s %d\\n' % (m._process.pid, m.address, child)); sys.stdout.flush()
if how == 'exit':
    sys.exit(0)
if how == '_exit':
    os._exit(0)
time.sleep(60)
'''


def stops_with_owner(how):
    p = subprocess.Popen([sys.executable, '-c', OWNER, how], stdout=subprocess.PIPE, env=child_env())
    line = p.stdout.readline().decode()
    try:
        pid, addr, child = line.split()
        pid, child = int(pid), int(child)
    except ValueError:
        p.kill()
        p.wait()
        return harness.fail('owner %s: no pid and address from it: %r' % (how, line))
    if how.startswith('SIGKILL'):
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    p.stdout.close()
    try:
        harness.check(harness.wait_until(lambda: gone(pid), 10), 'owner %s: the server is gone' % how)
        harness.check(harness.wait_until(lambda: not os.path.exists(os.path.dirname(addr)), 5),
                      'owner %s: the socket and its folder are gone' % how)
        if child:
            harness.check(not gone(child), 'owner %s: the child still runs' % how)
    finally:
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)


def lua_types(tmp):
    counter = os.path.join(tmp, 'counter.lua')
    pair2 = os.path.join(tmp, 'pair2.lua')
    with open(counter, 'w') as f:
        f.write(COUNTER_LUA)
    with open(pair2, 'w') as f:
        f.write(PAIR2_LUA)

    class M(shmgr.BaseManager):
        pass
    M.register('Counter')
    M.register('Pair2')
    with M(types=[counter]) as m:
        c = m.Counter(5)
        c.incr()
        harness.eq(c.incr(10), 16, 'types=: a Lua type from a BaseManager subclass')

    class S(shmgr.SyncManager):
        pass
    S.register('Counter')
    S.register('Pair2')
    cfg = os.path.join(tmp, 'conf.lua')
    with open(cfg, 'w') as f:
        f.write('types = { "pair2.lua" }   -- relative to this file\nlog_level = "warn"\n')
    with S(config=cfg, types=counter) as m:
        harness.eq((m.Counter().incr(), m.Pair2(2, 3).sum(), m.dict(a=1).copy()), (1, 5, {'a': 1}),
                   'config= and types= together, and the built-ins')
    harness.check('Counter' not in managers.SyncManager._registry and 'Counter' not in shmgr.SyncManager._registry,
                  "a subclass's registrations stay its own")


def refusals(tmp):
    class M(shmgr.BaseManager):
        pass
    e = harness.raises(shmgr.UnsupportedError, M.register, 'Foo', callable=dict, what='register(callable=)')
    harness.check(e is not None and 'Lua' in str(e) and 'docs/lua-types.md' in str(e), 'it says why: %s' % e)
    harness.check(isinstance(e, NotImplementedError), 'UnsupportedError is a NotImplementedError')
    harness.check('Foo' not in M._registry, 'nothing registered')
    e = harness.raises(shmgr.UnsupportedError, shmgr.SyncManager.register, 'Bar', lambda: 1,
                       what='SyncManager.register(typeid, callable)')
    m = shmgr.SyncManager()
    e = harness.raises(shmgr.UnsupportedError, m.start, print, what='start(initializer)')
    harness.check(e is not None and 'initializer' in str(e) and 'Lua' in str(e), 'it says why: %s' % e)
    m.start()  # still startable
    try:
        e = harness.raises(shmgr.UnsupportedError, m.Pool, 2, what='m.Pool()')
        harness.check(e is not None and 'multiprocessing.Pool' in str(e), 'it says what to do instead: %s' % e)
        harness.eq(m.Queue().qsize(), 0, "the stdlib's registrations (with callables) still work")
    finally:
        m.shutdown()


def start_errors(tmp):
    e = harness.raises(shmgr.StartError, shmgr.Manager, binary=os.path.join(tmp, 'no-such-shmgr'),
                       what='binary= not found')
    harness.check(e is not None and 'no-such-shmgr' in str(e), 'it names the binary: %s' % e)
    old = os.environ.get('SHMGR')
    os.environ['SHMGR'] = os.path.join(tmp, 'nope')
    try:
        e = harness.raises(shmgr.StartError, shmgr.Manager, what='$SHMGR not found')
        harness.check(e is not None and '$SHMGR' in str(e), 'it says $SHMGR: %s' % e)
        with shmgr.Manager(binary=old) as m:  # binary= wins over $SHMGR
            harness.eq(m.list([1]).count(1), 1, 'binary= before $SHMGR')
    finally:
        os.environ['SHMGR'] = old
    # nowhere at all: a copy of the package outside the checkout, no $SHMGR, no shmgr on PATH
    copy = os.path.join(tmp, 'elsewhere', 'python')
    shutil.copytree(os.path.join(PKG, 'shmgr'), os.path.join(copy, 'shmgr'))
    env = child_env()
    env['PYTHONPATH'] = copy
    env.pop('SHMGR', None)
    env['PATH'] = os.path.join(tmp, 'empty-path')
    p = subprocess.Popen([sys.executable, '-c', 'import shmgr\ntry:\n shmgr.Manager()\nexcept shmgr.StartError as e:\n'
                          ' print("StartError:", e)\n'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.communicate()[0].decode()
    harness.check('StartError: shmgr not found' in out and 'make' in out, 'no binary anywhere: %r' % out)
    # configs shmgr refuses: the error holds shmgr's own message
    for text, want in (('limits = { bogus = 1 }\n', "unknown limit 'bogus'"),
                       ('this is not Lua\n', 'bad.lua'),
                       ('data_dir = 7\n', 'data_dir must be a path')):
        cfg = os.path.join(tmp, 'bad.lua')
        with open(cfg, 'w') as f:
            f.write(text)
        before = set(os.listdir(tempfile.gettempdir()))
        e = harness.raises(shmgr.StartError, shmgr.Manager, config=cfg, what='config %r' % text)
        harness.check(e is not None and want in str(e) and want in e.stderr and e.returncode == 1,
                      'the error has shmgr\'s message (%r): %s' % (want, e))
        harness.eq(set(os.listdir(tempfile.gettempdir())) - before, set(), 'refused: nothing left behind')
    missing = os.path.join(tmp, 'missing-type.lua')
    e = harness.raises(shmgr.StartError, shmgr.Manager, types=[missing], what='a types= file that is missing')
    harness.check(e is not None and missing in str(e), 'it names the script: %s' % e)


SERVE = '''
import sys, shmgr
key = bytes.fromhex(sys.argv[2])
addr = None if sys.argv[1] == 'unix' else ('127.0.0.1', 0)
s = shmgr.SyncManager(address=addr, authkey=key).get_server()
sys.stdout.write('%r\\n' % (s.address,)); sys.stdout.flush()
s.serve_forever()
sys.stdout.write('not reached\\n')
'''


def serve_forever(kind):
    import ast
    key = os.urandom(32)
    p = subprocess.Popen([sys.executable, '-c', SERVE, kind, key.hex()], stdout=subprocess.PIPE, env=child_env())
    try:
        addr = ast.literal_eval(p.stdout.readline().decode())
        if kind == 'tcp':
            harness.check(isinstance(addr, tuple) and addr[1] > 0, 'get_server().address is real: %r' % (addr,))
        else:
            harness.check(isinstance(addr, str) and addr.startswith(tempfile.gettempdir()), 'a private socket: %r' % addr)
        stock = managers.SyncManager(address=addr, authkey=key)
        for _ in range(100):  # serve_forever() starts shmgr after get_server() returned the address
            try:
                stock.connect()
                break
            except OSError:
                time.sleep(0.05)
        ns = stock.Namespace(x=1)
        harness.eq(ns.x, 1, 'serve_forever (%s): a stock client is served' % kind)
        del ns
        conn = multiprocessing.connection.Client(addr, authkey=key)
        managers.dispatch(conn, None, 'shutdown')
        conn.close()
        out = p.communicate(timeout=10)[0].decode()
        harness.eq((p.returncode, out), (0, ''), 'serve_forever (%s): shutdown ends it, exit status 0' % kind)
        if kind == 'unix':
            harness.check(not os.path.exists(os.path.dirname(addr)), 'serve_forever: its folder is gone')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# Pool workers: module level, so that spawn's children find them
_shared = {}


def _init(d, lock):
    _shared['d'], _shared['lock'] = d, lock


def _add_init(i):
    with _shared['lock']:
        _shared['d']['n'] = _shared['d'].get('n', 0) + 1
    return i * i


def _add_args(args):
    d, lock, i = args
    with lock:
        d['m'] = d.get('m', 0) + i
    return os.getpid()


def pool(method):
    if method not in multiprocessing.get_all_start_methods():
        return harness.skip_part('Pool with %s' % method, 'not available')
    ctx = multiprocessing.get_context(method)
    with shmgr.Manager() as m:
        d, lock = m.dict(), m.Lock()
        with ctx.Pool(3, initializer=_init, initargs=(d, lock)) as p:
            harness.eq(p.map(_add_init, range(20)), [i * i for i in range(20)], '%s: the results' % method)
            pids = set(p.map(_add_args, [(d, lock, i) for i in range(20)]))
        harness.eq((d['n'], d['m']), (20, sum(range(20))), '%s: every worker updated the dict under the Lock' % method)
        harness.check(len(pids) >= 1 and os.getpid() not in pids, '%s: the workers are other processes' % method)


def shared_memory_manager():
    if not hasattr(shmgr, 'SharedMemoryManager'):
        return harness.skip_part('SharedMemoryManager', 'Python %s has none' % harness.version_tag())
    with shmgr.SharedMemoryManager() as smm:
        sl = smm.ShareableList([1, 2.5, 'x'])
        buf = smm.SharedMemory(64)
        names = [sl.shm.name, buf.name]
        harness.check(all(os.path.exists('/dev/shm/' + n) for n in names), 'SharedMemoryManager: the segments exist')
        harness.eq(sl[2], 'x', 'a ShareableList')
        sl.shm.close()
        buf.close()
    harness.check(not any(os.path.exists('/dev/shm/' + n) for n in names), 'shmgr unlinked them when it stopped')


def main():
    if harness.BACKEND != 'shmgr':
        harness.skip("the package starts shmgr: it is shmgr's own")
    os.environ['SHMGR'] = os.path.abspath(os.environ.get('SHMGR_BIN') or os.path.join(harness.REPO, 'shmgr'))
    # every temporary file of the package in a folder of this test's: nothing may be left in it
    tmproot = tempfile.mkdtemp(prefix='shmgr-test-package-')
    tempfile.tempdir = tmproot
    os.environ['TMPDIR'] = tmproot
    tmp = tempfile.mkdtemp(prefix='files-')
    try:
        round_trip()
        tcp_and_key()
        printable_key_not_shown()
        key_wins(tmp)
        stops_at_shutdown()
        stops_when_collected()
        for how in ('exit', '_exit', 'SIGKILL', 'SIGKILL, a forked child left'):
            stops_with_owner(how)
        lua_types(tmp)
        refusals(tmp)
        start_errors(tmp)
        serve_forever('tcp')
        serve_forever('unix')
        pool('fork')
        pool('spawn')
        shared_memory_manager()
        shutil.rmtree(tmp)
        harness.eq(left_in(tmproot), [], 'nothing left in the temporary folder')
    finally:
        shutil.rmtree(tmproot, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
