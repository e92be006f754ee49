"""Starting the shmgr binary: where it is, what it is handed, and its process as a manager's
`_process`.

shmgr gets three pipes, never the key on its command line or in its environment:
--authkey-fd (the key, every byte, then EOF), --watch-fd (the owner keeps the write end: when
the owner is gone, however it went, shmgr reads EOF and stops as on SIGTERM) and --ready-fd
(shmgr writes its "listening on ADDRESS" lines there once every listener is open, or its error
lines if it does not start). Its stderr is the owner's: the server's log (warnings and errors
only, unless a config says otherwise).
"""

import errno
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref

from multiprocessing import util

from .errors import StartError

START_TIMEOUT = 60.0  # seconds shmgr may take to load its config and types and listen

_HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT_BINARY = os.path.join(os.path.dirname(os.path.dirname(_HERE)), 'shmgr')
INSTALLED_BINARY = None  # make install sets it: $(PREFIX)/bin/shmgr


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_binary(binary=None):
    """The shmgr executable: `binary`, else $SHMGR, else `shmgr` on PATH, else the one
    installed with this package (make install), else the checkout this package sits in
    (python/shmgr/../../shmgr). StartError, saying what was tried, when there is none."""
    if binary is not None:
        path = os.fspath(binary)
        if os.sep not in path and not _executable(path):
            path = shutil.which(path) or path
        if not _executable(path):
            raise StartError('shmgr binary %r (binary=): not an executable file' % path)
        return os.path.abspath(path)
    env = os.environ.get('SHMGR')
    if env:
        if not _executable(env):
            raise StartError('shmgr binary %r ($SHMGR): not an executable file' % env)
        return os.path.abspath(env)
    found = shutil.which('shmgr')
    if found:
        return os.path.abspath(found)
    for path in (INSTALLED_BINARY, CHECKOUT_BINARY):
        if path and _executable(path):
            return path
    raise StartError('shmgr not found: no binary= given, $SHMGR not set, no shmgr on PATH, none at %s '
                     '(run make in the checkout, or make install)' % (INSTALLED_BINARY or CHECKOUT_BINARY))


# --------------------------------------------------------------------------
# Addresses: Python's forms <-> shmgr's --listen and "listening on" forms

def listen_arg(address):
    """shmgr's --listen text for a Python manager address: (host, port) or a Unix socket path.
    The host is resolved to IPv4, as Python's AF_INET listener would bind it."""
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
        host = socket.gethostbyname(host) if host else '0.0.0.0'
        return '%s:%d' % (host, int(port))
    if isinstance(address, bytes) or (isinstance(address, str) and address.startswith('\0')):
        raise ValueError('shmgr does not listen on abstract Unix sockets (%r): give a path, or (host, port)' % (address,))
    if isinstance(address, str) and address:
        return 'unix:' + address
    raise TypeError('a manager address is (host, port) or a Unix socket path, not %r' % (address,))


def python_address(name):
    """The Python address of a "listening on" name: HOST:PORT -> (host, port), unix:PATH -> PATH."""
    if name.startswith('unix:'):
        return name[len('unix:'):]
    host, _, port = name.rpartition(':')
    return (host.strip('[]'), int(port))


def private_socket():
    """A fresh private folder (mode 0700) and a socket path in it: (folder, path)."""
    folder = tempfile.mkdtemp(prefix='shmgr-')
    path = os.path.join(folder, 'sock')
    if len(path.encode()) > 100:  # sun_path holds 108 bytes: a long $TMPDIR does not fit
        os.rmdir(folder)
        folder = tempfile.mkdtemp(prefix='shmgr-', dir='/tmp')
        path = os.path.join(folder, 'sock')
    return folder, path


# --------------------------------------------------------------------------
# The process

_live = weakref.WeakSet()  # this process's ServerProcess objects, for the fork handler


def _forget_in_child(proc=None):
    """In a forked child: close the watch pipes' write ends, so that only the owner keeps its
    server alive (a child left running after its owner died must not)."""
    for p in ([proc] if proc is not None else list(_live)):
        p._close_watch()


if hasattr(os, 'register_at_fork'):  # 3.7+: every fork, multiprocessing's included
    os.register_at_fork(after_in_child=_forget_in_child)


class ServerProcess(object):
    """The shmgr process of a started manager, with what multiprocessing.Process offers its
    owner: pid, name, exitcode (None while it runs; negative: the signal that ended it),
    is_alive(), join(timeout), terminate(), kill(). When it has ended, the watch pipe is
    closed and, if shmgr could not remove them itself (it was killed), the private socket
    and its folder are removed."""

    def __init__(self, popen, name, watch_fd, folder=None, socket_path=None):
        self._popen = popen
        self.pid = popen.pid
        self.name = name
        self._watch_fd = watch_fd
        self._folder = folder
        self._socket = socket_path
        self._owner = os.getpid()
        self.daemon = False
        _live.add(self)
        if not hasattr(os, 'register_at_fork'):  # 3.6: multiprocessing's forks at least
            util.register_after_fork(self, _forget_in_child)

    @property
    def exitcode(self):
        if os.getpid() != self._owner:  # a forked child cannot wait for it
            return self._popen.returncode
        rc = self._popen.poll()
        if rc is not None:
            self._ended()
        return rc

    def is_alive(self):
        return self.exitcode is None

    def join(self, timeout=None):
        if os.getpid() != self._owner:
            return
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return
        self._ended()

    def terminate(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)

    def _signal(self, sig):
        if os.getpid() == self._owner and self._popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _close_watch(self):
        fd, self._watch_fd = self._watch_fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _ended(self):
        self._close_watch()
        if os.getpid() != self._owner:
            return
        if self._socket:
            try:
                os.unlink(self._socket)
            except OSError:
                pass
            self._socket = None
        if self._folder:
            try:
                os.rmdir(self._folder)
            except OSError:
                pass
            self._folder = None

    def __repr__(self):
        rc = self._popen.returncode
        return '<ServerProcess name=%r pid=%d %s>' % (self.name, self.pid, 'running' if rc is None else 'exitcode=%d' % rc)


def _read_ready(fd, proc, timeout):
    """What shmgr wrote on the ready pipe until it closed it (or timeout passed): text."""
    chunks = []
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise StartError('shmgr did not start listening within %g s (pid %d)' % (timeout, proc.pid))
        try:
            ready = select.select([fd], [], [], left)[0]
        except InterruptedError:  # 3.4 retries select itself; harmless on newer
            continue
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            return b''.join(chunks).decode('utf-8', 'replace')
        chunks.append(data)


def launch(binary, listen, authkey, config=None, types=(), folder=None, socket_path=None,
           name='shmgr', own_session=True):
    """Start shmgr listening on `listen` (a --listen text) with `authkey` (bytes, given on a
    pipe), the Lua `config` (a path; None: no config file, log level warn) and extra type
    scripts `types` (paths). `folder` (with `socket_path` in it) is removed when shmgr stops.
    own_session: in a session of its own, so that a terminal's Ctrl-C reaches the owner, not
    the server (as CPython's manager process ignores SIGINT). Returns (ServerProcess,
    ["listening on" names]) once it listens; raises StartError with shmgr's own messages if it
    stops before."""
    key_r, key_w = os.pipe()
    watch_r, watch_w = os.pipe()
    ready_r, ready_w = os.pipe()
    argv = [binary, '--ready-fd', str(ready_w), '--authkey-fd', str(key_r), '--watch-fd', str(watch_r)]
    if config is None:
        argv += ['--no-config', '--log-level', 'error']  # quiet, as CPython's server is
    else:
        argv += ['--config', os.path.abspath(os.fspath(config))]
    for t in types:
        argv += ['--types', os.path.abspath(os.fspath(t))]
    argv += ['--listen', listen]
    if folder:
        argv += ['--remove-dir', folder]
    env = dict(os.environ)
    env.pop('NOTIFY_SOCKET', None)  # the owner's systemd unit is not ours to tell "ready"
    try:
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, pass_fds=(key_r, watch_r, ready_w),
                                     start_new_session=own_session)
        finally:
            os.close(key_r)
            os.close(watch_r)
            os.close(ready_w)
    except OSError as e:
        for fd in (key_w, watch_w, ready_r):
            os.close(fd)
        raise StartError('cannot run %s: %s' % (binary, e))
    proc = ServerProcess(popen, name, watch_w, folder, socket_path)
    try:
        try:
            view = memoryview(bytes(authkey))
            while view:
                view = view[os.write(key_w, view):]
        except OSError as e:  # it stopped before reading the key: the ready pipe says why
            if e.errno not in (errno.EPIPE, errno.EBADF):
                raise
        finally:
            os.close(key_w)
        try:
            said = _read_ready(ready_r, proc, START_TIMEOUT)
        finally:
            os.close(ready_r)
    except BaseException:
        proc.kill()
        proc.join(5)
        raise
    names = [line[len('listening on '):] for line in said.splitlines() if line.startswith('listening on ')]
    if not names:
        proc.join(5)
        rc = proc.exitcode
        if rc is None:
            proc.kill()
            proc.join(5)
        text = said.strip() or '(nothing on its ready pipe; its stderr may say more)'
        raise StartError('shmgr did not start (%s, exit status %s): %s' % (binary, rc, text), said, rc)
    return proc, names
