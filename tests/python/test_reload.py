"""SIGHUP re-reads the config: log_level, limits, lock_policy, slowlog_threshold and the
authkey change at once for what comes next (connected clients stay connected), what only a
restart changes (listen, types, ...) is said and left as it is, and a config that does not
load (a syntax error, a bad value, an endless loop) changes nothing and is logged. The
config's registrations and declared objects are not made again: the objects clients use
stay the same. Fifty SIGHUPs in a row while clients call leave the server serving."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import multiprocessing  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from multiprocessing.connection import Client  # noqa: E402
from multiprocessing.managers import RemoteError, SyncManager  # noqa: E402

# the last line of every reload: applied, nothing to apply, or refused
CLOSING = re.compile(r'reload: (nothing changed|done: |.*; the running config stays)')

# what every config below declares and registers: a queue the clients fetch by name, and a
# Lua type whose method counts to n (to see limits.lua_instructions)
DECLARATIONS = '''
local jobs = shmgr.JoinableQueue{ name = "jobs" }
shmgr.register("get_jobs", function() return jobs end)
shmgr.register("Counter", function()
  return { count = function(self, n) local x = 0 for i = 1, n do x = x + i end return x end }
end)
'''


class Config(object):
    """A config file in a folder of its own, rewritten between reloads."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='shmgr-reload-')
        self.path = os.path.join(self.dir, 'reload.lua')

    def write(self, text, declarations=True):
        with open(self.path + '.new', 'w') as f:
            f.write(text + (DECLARATIONS if declarations else ''))
        os.rename(self.path + '.new', self.path)  # never half a file

    def key_file(self, key):
        with open(os.path.join(self.dir, 'key'), 'wb') as f:
            f.write(key + b'\n')

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def reload(srv, what):
    """SIGHUP srv and wait for the reload's closing line; the log lines it wrote."""
    start = len(srv.log())
    os.kill(srv.pid, signal.SIGHUP)
    done = harness.wait_until(lambda: CLOSING.search(srv.log()[start:]), timeout=20)
    harness.check(done, '%s: the reload ends with a closing line; log since SIGHUP:\n%s' % (what, srv.log()[start:]))
    return srv.log()[start:]


def says(log, text, what):
    return harness.check(text in log, '%s: the log says %r; it says:\n%s' % (what, text, log))


def info(srv):
    reply = harness.raw_call(srv, None, 'shmgr_info')
    harness.eq(reply[0], '#RETURN', 'shmgr_info answers')
    return reply[1]


def grab(srv, lock):
    """A client of its own acquires lock, then goes without releasing it."""
    c = harness.raw_client(srv)
    c.send((None, 'accept_connection', ('grab',), {}))  # what a proxy's connection says first
    harness.eq(c.recv(), ('#RETURN', None), 'accept_connection')
    c.send((lock._token.id, 'acquire', (), {}))
    harness.eq(c.recv(), ('#RETURN', True), 'another client acquires the lock')
    c.close()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def settings(cfg):
    """log_level, limits, lock_policy, slowlog_threshold: each applies at once."""
    cfg.write('log_level = "info"\n')
    with harness.server(cfg.path) as srv:
        m = harness.client_manager(srv, ['get_jobs', 'Counter'], base=SyncManager)
        jobs = m.get_jobs()
        ident = jobs._token.id
        jobs.put('put by a client')
        counter = m.Counter()
        harness.eq(counter.count(100000), 5000050000, 'a Lua method within the default lua_instructions')
        q = m.Queue()
        q.put('x' * 200000)
        harness.eq(len(q.get()), 200000, 'a 200 kB request under the default max_message')

        log = reload(srv, 'the same config')
        says(log, 'reload: nothing changed', 'the same config')

        # lock_policy "keep" (the default): a client that goes while holding a lock keeps it
        lock = m.Lock()
        grab(srv, lock)
        time.sleep(0.3)
        harness.check(not lock.acquire(False), 'under lock_policy "keep" the lock stays held when its holder goes')
        lock.release()  # a Lock may be released by another client

        # log_level: debug lines appear for what happens next
        harness.raw_client(srv).close()
        time.sleep(0.2)
        harness.check(': connected' not in srv.log(), 'at log_level info no debug line: %s' % srv.log())
        cfg.write('log_level = "debug"\n'
                  'lock_policy = "release"\n'
                  'slowlog_threshold = 25\n'
                  'limits = { max_message = 100000, lua_instructions = 50000 }\n')
        log = reload(srv, 'new settings')
        says(log, 'reload: log_level info -> debug', 'log_level')
        says(log, 'reload: lock_policy keep -> release', 'lock_policy')
        says(log, 'reload: slowlog_threshold 10 -> 25 ms', 'slowlog_threshold')
        says(log, 'reload: limits.max_message 2147483648 -> 100000', 'max_message')
        says(log, 'reload: limits.lua_instructions 10000000 -> 50000', 'lua_instructions')
        says(log, 'reload: done: 5 applied, 0 need a restart', 'the closing line counts them')
        start = len(srv.log())
        harness.raw_client(srv).close()
        harness.check(harness.wait_until(lambda: ': connected' in srv.log()[start:]),
                      'after log_level = "debug", a new connection logs a debug line: %s' % srv.log()[start:])

        # limits: max_message refuses a request it let through before (in a thread of its
        # own, as when the refusal closed the connection that a thread's proxies share)
        box = harness.run_thread(q.put, 'x' * 200000)
        box['done'].wait(20)
        e = box.get('error')
        harness.check(isinstance(e, RemoteError) and 'max_message' in str(e),
                      'a 200 kB request past max_message = 100000 is refused, naming the limit: %r' % (e,))
        q.put('small')
        harness.eq(q.get(), 'small', 'a small request still served')
        e = harness.raises(RuntimeError, counter.count, 100000, what='count past lua_instructions = 50000')
        harness.check(e is not None and 'instruction limit exceeded (lua_instructions = 50000)' in str(e),
                      'the Lua method stops at the new lua_instructions: %r' % (e,))
        harness.eq(counter.count(10), 55, 'a short Lua call still served')
        harness.eq(info(srv)['slowlog_threshold_ms'], 25.0, 'shmgr_info shows slowlog_threshold 25 ms')

        # lock_policy "release": a client that goes while holding a lock gives it back
        grab(srv, lock)
        harness.check(harness.wait_until(lambda: lock.acquire(False)),
                      'under lock_policy "release" the lock comes back when its holder goes')
        lock.release()

        # the declarations were not made again: the same queue, its items as they were
        for i in range(3):
            reload(srv, 'again %d' % i)
        again = m.get_jobs()
        harness.eq(again._token.id, ident, 'get_jobs() names the queue it named before the reloads')
        harness.eq(again.qsize(), 1, 'the queue keeps its item')

        # a broken config, a bad value, an endless loop: nothing changes
        for text, why in (('log_level = "info"\nlimits = { max_message = 1 << 26 }\nthis is not Lua\n',
                           "syntax error near 'is'"),
                          ('log_level = "loud"\nlimits = { max_message = 1 << 26 }\n',
                           'log_level must be one of debug, info, warn, error'),
                          ('limits = { max_message = -1 }\n', 'limits.max_message must be a non-negative integer'),
                          ('log_level = "info"\nwhile true do end\n', 'instruction limit exceeded'),
                          ('log_level = "info"\nlimits = setmetatable({}, { __index = function() while true do end end })\n',
                           'instruction limit exceeded')):
            t0 = time.time()
            cfg.write(text)
            log = reload(srv, why)
            says(log, why, 'a config that does not load')
            says(log, '; the running config stays', why)
            line = [x for x in log.splitlines() if 'the running config stays' in x]
            harness.note('  %s (%.2f s)' % (line[0].split('shmgr: ', 1)[-1] if line else '?', time.time() - t0))
            harness.check('reload: log_level' not in log and 'reload: limits' not in log,
                          '%s: no setting applied:\n%s' % (why, log))
            harness.check(time.time() - t0 < 10, '%s: the reload took %.1f s' % (why, time.time() - t0))
            harness.eq(q.qsize(), 0, '%s: the server still serves' % why)
            start = len(srv.log())
            harness.raw_client(srv).close()
            harness.check(harness.wait_until(lambda: ': connected' in srv.log()[start:]),
                          '%s: log_level is still debug' % why)
            box = harness.run_thread(q.put, 'x' * 200000)
            box['done'].wait(20)
            harness.check(isinstance(box.get('error'), RemoteError),
                          '%s: max_message is still 100000: %r' % (why, box.get('error', box.get('result'))))
        harness.check(srv.alive(), 'the server is still running')


def authkey(cfg):
    """A new key in authkey_file: connected clients stay, new ones need the new key."""
    cfg.key_file(b'old-key')
    cfg.write('authkey_file = "key"\n')
    with harness.server(cfg.path, authkey=b'old-key', env={'SHMGR_AUTHKEY': 'env-key'}) as srv:
        m = harness.sync_manager(srv)
        q = m.Queue()
        q.put(1)
        harness.eq(q.get(), 1, 'a proxy with the old key')  # its connection is open from here

        cfg.key_file(b'new-key')
        log = reload(srv, 'a new key file')
        says(log, 'reload: authkey changed (from authkey_file)', 'the key')
        harness.check('new-key' not in log and 'old-key' not in log, 'the log shows no key: %s' % log)
        q.put(2)
        harness.eq(q.get(), 2, 'the proxy connected before the reload keeps working')
        harness.raises(multiprocessing.AuthenticationError, Client, srv.address, authkey=b'old-key',
                       what='a new connection with the old key')
        old = SyncManager(address=srv.address, authkey=b'old-key')
        harness.raises(multiprocessing.AuthenticationError, old.connect, what='a new manager with the old key')
        new = SyncManager(address=srv.address, authkey=b'new-key')
        new.connect()
        q2 = new.Queue()
        q2.put('new')
        harness.eq(q2.get(), 'new', 'a new client with the new key is served')

        # a key file that cannot be read: refused, the new key stays
        os.remove(os.path.join(cfg.dir, 'key'))
        log = reload(srv, 'no key file')
        says(log, "authkey_file '%s/key' cannot be read; the running config stays" % cfg.dir, 'a missing key file')
        c = Client(srv.address, authkey=b'new-key')
        c.send((None, 'dummy', (), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'the new key still works')
        c.close()

        # no authkey_file any more: the environment's key, as at start
        cfg.write('log_level = "info"\n')
        log = reload(srv, 'the key from the environment')
        says(log, 'reload: authkey changed (from SHMGR_AUTHKEY)', 'the key')
        c = Client(srv.address, authkey=b'env-key')
        c.send((None, 'dummy', (), {}))
        harness.eq(c.recv(), ('#RETURN', None), "SHMGR_AUTHKEY's key works")
        c.close()
        q.put(3)
        harness.eq(q.get(), 3, 'the first proxy still works')


def restart_only(cfg):
    """listen, types, unix_mode, data_dir, durability, metrics_listen: said, not applied."""
    port, other = free_port(), free_port()
    cfg.write('listen = "127.0.0.1:%d"\n' % port)
    with harness.server(cfg.path, listen=False) as srv:
        harness.eq(srv.address, ('127.0.0.1', port), "the config's listen address")
        with open(os.path.join(cfg.dir, 'empty_type.lua'), 'w') as f:
            f.write('-- a type script that registers nothing\n')
        cfg.write('listen = { "127.0.0.1:%d" }\n'
                  'types = { "empty_type.lua" }\n'
                  'unix_mode = "0660"\n'
                  'data_dir = "data"\n'
                  'durability = "power"\n'
                  'metrics_listen = "127.0.0.1:9150"\n'
                  'slowlog_threshold = 5\n' % other)
        log = reload(srv, 'restart-only settings')
        says(log, 'reload: listen 127.0.0.1:%d -> 127.0.0.1:%d needs a restart' % (port, other), 'listen')
        says(log, 'reload: types none -> empty_type.lua needs a restart', 'types')
        says(log, 'reload: unix_mode 0600 -> 0660 needs a restart', 'unix_mode')
        says(log, 'reload: data_dir none -> %s/data needs a restart' % cfg.dir, 'data_dir')
        says(log, 'reload: durability process -> power needs a restart', 'durability')
        says(log, 'reload: metrics_listen none -> 127.0.0.1:9150 needs a restart', 'metrics_listen')
        says(log, 'reload: slowlog_threshold 10 -> 5 ms', 'what can change still changes')
        says(log, 'reload: done: 1 applied, 6 need a restart (registrations, declared objects and type scripts '
             'are not re-run', 'the closing line')
        harness.check(' warn: reload: listen ' in log, 'a restart-only change is a warning: %s' % log)
        c = harness.raw_client(srv)
        c.send((None, 'dummy', (), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'still served on the first address')
        c.close()
        s = socket.socket()
        harness.check(s.connect_ex(('127.0.0.1', other)) != 0, 'nothing listens on the new address before a restart')
        s.close()
        harness.eq(info(srv)['slowlog_threshold_ms'], 5.0, 'slowlog_threshold applied')

    # with --listen, the config's listen is not read, at a reload as at start
    cfg.write('log_level = "info"\n', declarations=False)
    with harness.server(cfg.path) as srv:
        cfg.write('log_level = "info"\nlisten = "127.0.0.1:%d"\n' % other, declarations=False)
        log = reload(srv, 'a listen change under --listen')
        says(log, 'reload: nothing changed', '--listen wins')


def no_key_on_network(cfg):
    """A key that goes away while shmgr listens beyond loopback: refused."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(('192.0.2.1', 9))  # no packet is sent: this only picks the outgoing address
        addr = s.getsockname()[0]
        s.close()
    except OSError:
        addr = None
    if not addr or addr.startswith('127.'):
        harness.skip_part('a key removed while listening beyond loopback', 'no non-loopback address here')
        return
    cfg.write('authkey = "net-key"\n', declarations=False)
    with harness.server(cfg.path, authkey=b'net-key', listen='%s:0' % addr, env={'SHMGR_AUTHKEY': ''}) as srv:
        cfg.write('log_level = "info"\n', declarations=False)
        log = reload(srv, 'no key any more')
        says(log, 'which is not loopback and needs one; the running config stays', 'the key removed')
        harness.note('  ' + [x for x in log.splitlines() if 'stays' in x][-1].split('shmgr: ', 1)[-1])
        c = Client(srv.address, authkey=b'net-key')
        c.send((None, 'dummy', (), {}))
        harness.eq(c.recv(), ('#RETURN', None), 'the key stays')
        c.close()


def many(cfg):
    """Fifty SIGHUPs in a row while clients call: every call answered, the server alive."""
    cfg.write('log_level = "info"\nslowlog_threshold = 0\n')
    with harness.server(cfg.path) as srv:
        stop = threading.Event()
        errors, calls = [], [0]

        def client(n):
            try:
                m = harness.client_manager(srv, ['get_jobs'], base=SyncManager)
                q = m.Queue()
                jobs = m.get_jobs()
                i = 0
                while not stop.is_set():
                    q.put((n, i))
                    if q.get() != (n, i):
                        errors.append('client %d: wrong item back' % n)
                    jobs.qsize()
                    i += 1
                calls[0] += i
            except Exception as e:
                errors.append('client %d: %s: %s' % (n, type(e).__name__, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.daemon = True
            t.start()
        time.sleep(0.2)
        for i in range(50):
            cfg.write('log_level = "info"\nslowlog_threshold = 0\nlimits = { max_connections = %d }\n'
                      % (1000 + i % 2))
            os.kill(srv.pid, signal.SIGHUP)
            time.sleep(0.01)
        log = reload(srv, 'after fifty')
        stop.set()
        for t in threads:
            t.join(20)
        harness.check(not errors, 'every call answered during the reloads: %s' % errors)
        harness.check(calls[0] > 0, 'the clients made calls (%d)' % calls[0])
        harness.check(srv.alive(), 'the server is alive after fifty SIGHUPs')
        n = srv.log().count('reload: SIGHUP: reading')
        harness.note('%d SIGHUPs made %d reloads (signals that arrive together make one) during %d calls'
                     % (51, n, calls[0]))
        harness.check('; the running config stays' not in srv.log(), 'no reload failed: %s' % srv.log())


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("reloading the config on SIGHUP is shmgr's own; CPython's server has no config")
    cfg = Config()
    try:
        harness.note('settings that apply at a reload')
        settings(cfg)
        harness.note('the authkey at a reload')
        authkey(cfg)
        harness.note('settings that need a restart')
        restart_only(cfg)
        harness.note('a key removed while listening beyond loopback')
        no_key_on_network(cfg)
        harness.note('fifty SIGHUPs while clients call')
        many(cfg)
    finally:
        cfg.remove()
    harness.done()


if __name__ == '__main__':
    main()
