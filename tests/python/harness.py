"""Shared helpers for the stock-client test scripts in tests/python/.

Every script starts a server with `server(...)`, talks to it with stock
`multiprocessing.managers` clients, records results with `check`/`eq` and ends
with `done()`.  The backend is chosen by the environment variable
SHMGR_TEST_SERVER:

  shmgr    (default) the repo's ./shmgr binary, given the script's Lua config;
  cpython  CPython's own manager server (a forked SyncManager subclass) set up
           by the script's `py_setup(ManagerClass)`, the Python equivalent of
           its Lua config.  Scripts must pass against this reference.

Runs on Python 3.6 and later: no walrus, no dataclasses, no asyncio.run, no
`text=`/`capture_output=` in subprocess.
"""

from __future__ import print_function

import array
import ast
import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BACKEND = os.environ.get('SHMGR_TEST_SERVER', 'shmgr')
if BACKEND not in ('shmgr', 'cpython'):
    print('harness: SHMGR_TEST_SERVER must be shmgr or cpython, not %r' % BACKEND)
    sys.exit(2)

DEFAULT_AUTHKEY = b'shmgr-test-key'
SKIP_EXIT = 77          # exit code run.py counts as "skipped"
START_TIMEOUT = 10.0    # seconds to wait for the server's "listening on" line(s)
STOP_TIMEOUT = 5.0      # seconds between SIGTERM and SIGKILL

_failures = []
_lock = threading.Lock()


# --------------------------------------------------------------------------
# Results

def check(cond, msg):
    """Record a failure (and print it) unless cond is true; return cond."""
    if not cond:
        with _lock:
            _failures.append(msg)
        print('FAIL: %s' % msg)
        sys.stdout.flush()
    return bool(cond)


def eq(got, want, what):
    """check(got == want) with both values in the message."""
    return check(got == want, '%s: got %r, want %r' % (what, got, want))


def fail(msg):
    check(False, msg)


def note(msg):
    print(msg)
    sys.stdout.flush()


def skip_part(what, reason):
    """Say that one part of a script is not run, and why (never silently)."""
    note('skip: %s: %s' % (what, reason))


def heavy(what, cost):
    """Whether to run a part that moves hundreds of megabytes or waits for long (cost: what it
    takes, for the message): under Debian's python3, which every run has, or with SHMGR_HEAVY=1.
    Under another interpreter it is skipped, saying so: what it checks is the server's side,
    the same whatever the client's version, and every interpreter would multiply its cost."""
    debian = os.path.realpath(sys.executable) == os.path.realpath('/usr/bin/python3')
    if debian or os.environ.get('SHMGR_HEAVY') == '1':
        return True
    skip_part(what, "runs under Debian's python3 only (%s; SHMGR_HEAVY=1 runs it here)" % cost)
    return False


def sanitized_server():
    """Whether the shmgr under test is built with AddressSanitizer (make sanitize): its
    allocator holds freed memory in quarantine and copies on realloc, so the server's RSS says
    nothing of how shmgr itself uses memory."""
    exe = os.environ.get('SHMGR_BIN') or os.path.join(REPO, 'shmgr')
    try:
        with open(exe, 'rb') as f:
            return b'__asan_init' in f.read()
    except OSError:
        return False


def skip(reason):
    """Skip the whole script: run.py counts it as skipped, not passed."""
    print('SKIP: %s' % reason)
    sys.stdout.flush()
    sys.exit(SKIP_EXIT)


def same(a, b):
    """Equal and of the same type, recursively (nan equals nan, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):  # keys pairwise too: two nan keys are equal only under same()
        ka, kb = list(a), list(b)
        return len(ka) == len(kb) and all(same(x, y) and same(a[x], b[y]) for x, y in zip(ka, kb))
    if isinstance(a, (set, frozenset)):
        return a == b and all(type(x) is type(next(y for y in b if y == x)) for x in a)
    if isinstance(a, BaseException):
        return same(a.args, b.args)
    if isinstance(a, array.array):  # arrays of different typecodes can be ==
        return a.typecode == b.typecode and same(a.tolist(), b.tolist())
    return a == b


def raises(exc_types, func, *args, **kwds):
    """Call func; return the exception it raised if it is an instance of
    exc_types, record a failure and return None otherwise."""
    what = kwds.pop('what', getattr(func, '__name__', repr(func)))
    try:
        result = func(*args, **kwds)
    except exc_types as e:
        return e
    except Exception as e:
        fail('%s: raised %s: %s, want %s' % (what, type(e).__name__, e, _names(exc_types)))
        return None
    fail('%s: returned %r, want %s raised' % (what, result, _names(exc_types)))
    return None


def _names(exc_types):
    if isinstance(exc_types, tuple):
        return ' or '.join(t.__name__ for t in exc_types)
    return exc_types.__name__


def done():
    """Print the verdict and exit: 0 if nothing failed, 1 otherwise."""
    sys.stdout.flush()
    if _failures:
        print('%d check(s) failed (backend %s, Python %s)'
              % (len(_failures), BACKEND, sys.version.split()[0]))
        sys.stdout.flush()
        os._exit(1)
    print('ok (backend %s, Python %s)' % (BACKEND, sys.version.split()[0]))
    sys.stdout.flush()
    # os._exit: do not let a stuck non-daemon thread or a proxy finalizer
    # talking to a stopped server turn a pass into a hang.
    os._exit(0)


def wait_until(pred, timeout=3.0, interval=0.05):
    """Poll pred() until it is true or timeout passes; return its last value."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


def conf(name):
    """Path of a config under tests/python/conf/."""
    return os.path.join(HERE, 'conf', name)


def version_tag():
    return '%d.%d.%d' % sys.version_info[:3]


# --------------------------------------------------------------------------
# Servers

class ServerError(Exception):
    pass


class Server(object):
    """A running server: .address (tuple or path str), .authkey, .pid,
    .proc, .backend, .log(), .wait_exit(timeout), .alive()."""

    def __init__(self, backend, address, authkey, proc, tmpdir):
        self.backend = backend
        self.address = address
        self.authkey = authkey
        self.proc = proc
        self.pid = proc.pid
        self.tmpdir = tmpdir
        self._log = []
        self._log_lock = threading.Lock()
        self._log_cond = threading.Condition(self._log_lock)
        self._stopped_by_us = False
        self._killed = False

    # log of the server's stderr (shmgr only; CPython's server logs nothing)
    def log(self):
        with self._log_lock:
            return ''.join(self._log)

    def _add_log(self, line):
        with self._log_cond:
            self._log.append(line)
            self._log_cond.notify_all()

    def returncode(self):
        if self.backend == 'shmgr':
            return self.proc.poll()
        return self.proc.exitcode

    def alive(self):
        return self.returncode() is None

    def kill(self):
        """SIGKILL the server and wait for it: a crash the test makes, which the stop at
        the end of `server()` does not report as one."""
        self._killed = True
        os.kill(self.pid, signal.SIGKILL)
        self.wait_exit(STOP_TIMEOUT)

    def wait_exit(self, timeout):
        """Wait up to timeout s for the server to exit; return its exit code
        (negative = killed by that signal) or None if still running."""
        if self.backend == 'shmgr':
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        self.proc.join(timeout)
        return self.proc.exitcode

    def __repr__(self):
        return '<%s server pid %d at %r>' % (self.backend, self.pid, self.address)


def _parse_listen(text):
    if text.startswith('unix:'):
        return text[len('unix:'):]
    host, _, port = text.rpartition(':')
    return (host.strip('[]'), int(port))


_LISTEN_RE = re.compile(r'listening on (\S+)')

try:  # so that a test script killed by run.py's timeout takes shmgr along
    import ctypes
    _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl
except Exception:  # pragma: no cover - not Linux
    _libc_prctl = None


def _child_setup():
    if _libc_prctl is not None:
        _libc_prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _start_shmgr(lua_config, authkey, unix, env, tmpdir, listen=None):
    exe = os.environ.get('SHMGR_BIN') or os.path.join(REPO, 'shmgr')
    if not os.path.isfile(exe):
        raise ServerError('%s not found: build shmgr first (make), or run the scripts '
                          'against CPython with SHMGR_TEST_SERVER=cpython' % exe)
    if lua_config is None:
        cfg = os.path.join(tmpdir, 'empty.lua')
        with open(cfg, 'w') as f:
            f.write('-- empty test config: addresses come from --listen\n')
    else:
        cfg = lua_config if os.path.isabs(lua_config) else os.path.join(HERE, lua_config)
    if listen is None:
        listen = 'unix:' + os.path.join(tmpdir, 's.sock') if unix else '127.0.0.1:0'
    penv = dict(os.environ)
    penv['SHMGR_AUTHKEY'] = authkey.decode('ascii')
    if env:
        penv.update(env)
    argv = [exe, '--config', cfg] + (['--listen', listen] if listen is not False else [])
    proc = subprocess.Popen(argv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=penv,
                            start_new_session=True, preexec_fn=_child_setup)
    srv = Server('shmgr', None, authkey, proc, tmpdir)

    def drain():
        for raw in iter(proc.stdout.readline, b''):
            srv._add_log(raw.decode('utf-8', 'replace'))
        proc.stdout.close()
        srv._add_log('')  # wake the waiter at EOF

    t = threading.Thread(target=drain, name='shmgr-stderr')
    t.daemon = True
    t.start()
    deadline = time.time() + START_TIMEOUT
    with srv._log_cond:
        while True:
            m = _LISTEN_RE.search(''.join(srv._log))
            if m:
                break
            if proc.poll() is not None and not t.is_alive():
                break
            left = deadline - time.time()
            if left <= 0:
                break
            srv._log_cond.wait(min(left, 0.2))
    if not m:
        rc = proc.poll()
        _kill_group(proc)
        raise ServerError('shmgr did not print "listening on" within %gs (exit status %r); '
                          'its output:\n%s' % (START_TIMEOUT, rc, srv.log()))
    srv.address = _parse_listen(m.group(1))
    return srv


def _cpython_server_main(conn, address, authkey, py_setup, serializer='pickle'):
    # runs in the forked child: CPython's own server, as the reference
    _child_setup()  # it dies with the script, whichever way the script ends
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from multiprocessing.managers import SyncManager

        class ReferenceManager(SyncManager):
            pass

        if py_setup is not None:
            py_setup(ReferenceManager)
        server = ReferenceManager(address=address, authkey=authkey, serializer=serializer).get_server()
    except BaseException:
        conn.send(('error', traceback.format_exc()))
        conn.close()
        return
    conn.send(('ok', server.address))
    conn.close()
    server.serve_forever()


def _start_cpython(py_setup, authkey, unix, tmpdir, serializer='pickle'):
    import multiprocessing
    ctx = multiprocessing.get_context('fork')
    address = os.path.join(tmpdir, 's.sock') if unix else ('127.0.0.1', 0)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_cpython_server_main, name='cpython-manager-server',
                       args=(child, address, authkey, py_setup, serializer))
    proc.daemon = True
    proc.start()
    child.close()
    if not parent.poll(START_TIMEOUT):
        proc.terminate()
        raise ServerError('CPython server did not report its address within %gs' % START_TIMEOUT)
    status, value = parent.recv()
    parent.close()
    if status != 'ok':
        proc.join(1)
        raise ServerError('CPython server failed to start:\n%s' % value)
    return Server('cpython', value, authkey, proc, tmpdir)


def _kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        pass


def _stop(srv):
    """Stop srv; record a failure if it crashed or did not stop as promised."""
    rc = srv.returncode()
    if srv.backend == 'cpython':
        if rc is not None:
            check(rc >= 0, 'CPython server (pid %d) died on its own with signal %d' % (srv.pid, -rc))
            return
        srv.proc.terminate()
        srv.proc.join(STOP_TIMEOUT)
        if srv.proc.exitcode is None:
            os.kill(srv.pid, signal.SIGKILL)
            srv.proc.join(STOP_TIMEOUT)
        return
    sent_term = False
    if rc is None:
        sent_term = True
        _kill_group(srv.proc, signal.SIGTERM)
        rc = srv.wait_exit(STOP_TIMEOUT)
    _kill_group(srv.proc)  # whatever is left in its group
    if rc is None:
        srv.proc.wait()
        fail('shmgr (pid %d) did not exit within %gs of SIGTERM; its log:\n%s'
             % (srv.pid, STOP_TIMEOUT, srv.log()))
    elif rc < 0 and not (sent_term and rc == -signal.SIGTERM) and not (srv._killed and rc == -signal.SIGKILL):
        fail('shmgr (pid %d) crashed: killed by signal %d%s; its log:\n%s'
             % (srv.pid, -rc, '' if sent_term else ' before the test stopped it', srv.log()))
    elif sent_term and rc != 0:
        fail('shmgr (pid %d) exited with status %d on SIGTERM, want 0; its log:\n%s'
             % (srv.pid, rc, srv.log()))
    # rc >= 0 without our SIGTERM: it was shut down (e.g. by a shutdown request)


@contextlib.contextmanager
def server(lua_config=None, py_setup=None, authkey=DEFAULT_AUTHKEY, unix=False, env=None, listen=None,
           backend=None, serializer='pickle'):
    """Start the backend named by SHMGR_TEST_SERVER and yield a Server.

    lua_config: path of the shmgr config (relative to tests/python/), or None
                for an empty one (built-in typeids only).
    py_setup:   called as py_setup(ManagerClass) in the CPython server process
                (a SyncManager subclass) to register what the Lua config does.
    authkey:    bytes (ASCII); shmgr gets it through SHMGR_AUTHKEY.
    unix:       listen on <tmpdir>/s.sock instead of 127.0.0.1:<free port>.
    env:        extra environment for the shmgr process (ignored for cpython).
    listen:     shmgr's --listen address instead of 127.0.0.1:0 (shmgr only); False
                for no --listen: the config's listen names the addresses.
    backend:    'shmgr' or 'cpython' whatever SHMGR_TEST_SERVER says (a script that
                compares the two starts one of each).
    serializer: CPython's server only ('pickle' or 'xmlrpclib'): shmgr speaks both at
                once, choosing per connection.
    """
    tmpdir = tempfile.mkdtemp(prefix='shmgr-test-')
    srv = None
    try:
        if (backend or BACKEND) == 'shmgr':
            srv = _start_shmgr(lua_config, authkey, unix, env, tmpdir, listen)
        else:
            srv = _start_cpython(py_setup, authkey, unix, tmpdir, serializer)
        yield srv
    finally:
        try:
            if srv is not None:
                _stop(srv)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------
# Clients

def client_manager(srv, registrations=(), base=None, serializer='pickle'):
    """A connected manager of a fresh BaseManager (or `base`) subclass.

    registrations: typeids registered with no callable, as remote clients
    do; an item may also be (typeid, {register kwargs}).
    serializer: 'pickle' or 'xmlrpclib', as BaseManager takes it.
    """
    from multiprocessing.managers import BaseManager
    base = base or BaseManager

    class ClientManager(base):
        pass

    for r in registrations:
        if isinstance(r, str):
            ClientManager.register(r)
        else:
            ClientManager.register(r[0], **r[1])
    m = ClientManager(address=srv.address, authkey=srv.authkey, serializer=serializer)
    m.connect()
    return m


def sync_manager(srv, serializer='pickle'):
    """A connected SyncManager (built-in typeids Queue, JoinableQueue, ...)."""
    from multiprocessing.managers import SyncManager
    return client_manager(srv, base=SyncManager, serializer=serializer)


def raw_client(srv, authkey=None):
    """A multiprocessing.connection.Client, authenticated with srv's key."""
    from multiprocessing.connection import Client
    return Client(srv.address, authkey=srv.authkey if authkey is None else authkey)


def object_connection(srv, name):
    """An authenticated connection that has said accept_connection, as a proxy's does."""
    c = raw_client(srv)
    c.send((None, 'accept_connection', (name,), {}))
    eq(c.recv(), ('#RETURN', None), '%s: accept_connection' % name)
    return c


def raw_call(srv, ident, method, args=(), kwds=None):
    """One request on a fresh authenticated connection; return the raw reply."""
    c = raw_client(srv)
    try:
        c.send((ident, method, tuple(args), kwds or {}))
        return c.recv()
    finally:
        c.close()


def proxy_for(m, typeid, ident, exposed=None, incref=True):
    """An AutoProxy for an existing object, as another process would build it."""
    from multiprocessing.managers import AutoProxy, Token
    token = Token(typeid, m.address, ident)
    return AutoProxy(token, 'pickle', manager=m, authkey=m._authkey,
                     exposed=exposed, incref=incref)


# --------------------------------------------------------------------------
# Child processes (each with its own connections to the server)

def child_env(srv):
    env = dict(os.environ)
    env['SHMGR_TEST_ADDRESS'] = repr(srv.address)
    env['SHMGR_TEST_AUTHKEY'] = srv.authkey.decode('ascii')
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env


class _EnvServer(object):
    def __init__(self):
        self.address = ast.literal_eval(os.environ['SHMGR_TEST_ADDRESS'])
        self.authkey = os.environ['SHMGR_TEST_AUTHKEY'].encode('ascii')
        self.backend = BACKEND


def from_env():
    """In a child started by Child/child_env: an object with .address and
    .authkey of the parent's server, usable with client_manager()."""
    return _EnvServer()


_CHILD_PRELUDE = 'import sys; sys.dont_write_bytecode = True; sys.path.insert(0, %r)\n' % HERE


class Child(object):
    """A Python child process (same interpreter) running `code` (a str) or
    `argv` (a list of args after the interpreter), then `args` (strings,
    sys.argv[1:] of the child), with the server's
    address/authkey in its environment (and env's entries, when given).  Its
    stdout+stderr lines are collected by a thread; expect() waits for one.
    With driven=True its stdin is a pipe that tell() writes lines to."""

    def __init__(self, srv, code=None, argv=None, args=(), env=None, driven=False):
        import queue
        if code is not None:
            argv = ['-c', _CHILD_PRELUDE + code]
        argv = list(argv) + [str(a) for a in args]
        full_env = child_env(srv)
        full_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable] + list(argv),
                                     stdin=subprocess.PIPE if driven else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=full_env, universal_newlines=True)
        self.pid = self.proc.pid
        self.lines = []
        self._q = queue.Queue()
        t = threading.Thread(target=self._read)
        t.daemon = True
        t.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, ''):
            self.lines.append(line)
            self._q.put(line.rstrip('\n'))
        self._q.put(None)

    def tell(self, line):
        """Write line to the child's stdin (driven=True); a failure if it is gone."""
        try:
            self.proc.stdin.write(line + '\n')
            self.proc.stdin.flush()
        except (OSError, IOError) as e:
            fail('child %d: cannot tell it %r: %s' % (self.pid, line, e))

    def expect(self, prefix, timeout=10.0):
        """Wait for an output line starting with prefix (a str, or a tuple of
        them); return the line (or None on timeout/EOF, after recording a
        failure)."""
        import queue
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            try:
                line = self._q.get(timeout=max(left, 0.001))
            except queue.Empty:
                fail('child %d: no line starting %r within %gs; output so far:\n%s'
                     % (self.pid, prefix, timeout, self.output()))
                return None
            if line is None:
                self._q.put(None)
                fail('child %d exited (status %r) without a line starting %r; output:\n%s'
                     % (self.pid, self.proc.poll(), prefix, self.output()))
                return None
            if line.startswith(prefix):
                return line

    def poll_line(self, timeout=0.0):
        """Next output line within timeout, or None."""
        import queue
        try:
            line = self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
        except queue.Empty:
            return None
        if line is None:
            self._q.put(None)
        return line

    def output(self):
        return ''.join(self.lines)

    def wait(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail('child %d did not exit within %gs; output:\n%s' % (self.pid, timeout, self.output()))
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def recv_exact(s, n):
    """n bytes from socket s; EOFError if the peer closes first."""
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError('EOF after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def part(what, func, *args, **kw):
    """Run one part of a script in a thread of its own (its proxies get a connection of their
    own: a thread's proxies share one per server address); an exception it raises, or not
    ending within timeout seconds, is a failure of that part only."""
    timeout = kw.get('timeout', 110)

    def run():
        try:
            func(*args)
        except Exception as e:
            fail('%s: raised %s: %s\n%s' % (what, type(e).__name__, e, traceback.format_exc()))
    box = run_thread(run)
    if not box['done'].wait(timeout):
        fail('%s: did not end within %g s' % (what, timeout))


def run_thread(func, *args):
    """Run func(*args) in a daemon thread; return a dict that gets 'result' or
    'error' and a threading.Event 'done'."""
    box = {'done': threading.Event()}

    def target():
        try:
            box['result'] = func(*args)
        except BaseException as e:
            box['error'] = e
        finally:
            box['done'].set()

    t = threading.Thread(target=target)
    t.daemon = True
    t.start()
    box['thread'] = t
    return box
