"""Managers whose server is shmgr: the stdlib's BaseManager, SyncManager and
SharedMemoryManager, with start() and get_server() launching the shmgr binary instead of a
Python server process. Everything else (proxies, registrations, connect(), the client side)
is the stdlib's, unchanged."""

import os
import sys

from multiprocessing import connection, managers as _mpm, util
from multiprocessing.context import ProcessError

from . import launch as _launch
from .errors import UnsupportedError

State = _mpm.State

_LUA_TYPES = ("shmgr's server is not a Python process: its types are written in Lua. Put the typeid in a "
              "Lua type script (see docs/lua-types.md) and pass it as types=[...] (or name it in the config's "
              "types), then register the typeid without a callable: register(%r)")


def _check_initial(state):
    """ProcessError unless the manager is in its initial state (CPython 3.8+'s messages)."""
    if state.value != State.INITIAL:
        if state.value == State.STARTED:
            raise ProcessError('Already started server')
        elif state.value == State.SHUTDOWN:
            raise ProcessError('Manager has shut down')
        raise ProcessError('Unknown state {!r}'.format(state.value))


def _types_list(types):
    if isinstance(types, (str, bytes)) or hasattr(types, '__fspath__'):
        return (types,)
    return tuple(types or ())


class _ShmgrMixin(object):
    """What makes a stdlib manager class start shmgr (see the module's docstring)."""

    def __init__(self, *args, config=None, types=(), binary=None, **kwds):
        super(_ShmgrMixin, self).__init__(*args, **kwds)
        self._shmgr_config = config
        self._shmgr_types = _types_list(types)
        self._shmgr_binary = binary

    @classmethod
    def register(cls, typeid, callable=None, proxytype=None, exposed=None, method_to_typeid=None,
                 create_method=True):
        """The stdlib's register, for typeids the server defines (built-ins and Lua types):
        a callable is refused, since no Python code runs in shmgr's server."""
        if callable is not None:
            raise UnsupportedError('%s.register(%r, callable=%r): %s' % (cls.__name__, typeid, callable,
                                                                         _LUA_TYPES % typeid))
        return super(_ShmgrMixin, cls).register(typeid, callable, proxytype, exposed, method_to_typeid,
                                                create_method)

    def _listen(self):
        """(--listen text, private folder or None, socket path or None) for self._address."""
        if self._address is None:
            folder, path = _launch.private_socket()
            return 'unix:' + path, folder, path
        return _launch.listen_arg(self._address), None, None

    def start(self, initializer=None, initargs=()):
        """Start shmgr as this manager's server, listening on its address (None: a Unix socket
        in a fresh private folder), with its authkey, config and types."""
        _check_initial(self._state)
        if initializer is not None:
            raise UnsupportedError('start(initializer=%r): shmgr\'s server is not a Python process, so no Python '
                                   'code runs in it. Make the objects the initializer would make in a Lua type script '
                                   '(types=, docs/lua-types.md), or from this process after start()' % (initializer,))
        binary = _launch.find_binary(self._shmgr_binary)
        listen, folder, path = self._listen()
        try:
            proc, names = _launch.launch(binary, listen, bytes(self._authkey), self._shmgr_config,
                                         self._shmgr_types, folder, path, name='%s-shmgr' % type(self).__name__)
        except BaseException:
            if folder:
                _rmdir(folder, path)
            raise
        self._process = proc
        self._address = _launch.python_address(names[0])
        self._state.value = State.STARTED
        self._shmgr_segments = []  # SharedMemoryManager: the segments this process made and tracked
        self.shutdown = util.Finalize(
            self, type(self)._finalize_manager,
            args=(self._process, self._address, self._authkey, self._state, self._Client,
                  getattr(self, '_shutdown_timeout', 1.0)),
            kwargs={'segments': self._shmgr_segments},
            exitpriority=0)

    @staticmethod
    def _finalize_manager(process, address, authkey, state, _Client, shutdown_timeout=1.0, segments=()):
        """CPython 3.11+'s: ask the server to shut down, wait, then terminate, then kill; and
        what a killed shmgr could not remove (its private socket and folder). segments: the
        names this process's SharedMemoryManager made and had tracked; once shmgr has stopped
        in order (and so unlinked them) they are taken off this process's resource tracker, as
        CPython's server process does by unlinking them through the tracker they share."""
        if process.is_alive():
            util.info('sending shutdown message to manager')
            try:
                conn = _Client(address, authkey=authkey)
                try:
                    _mpm.dispatch(conn, None, 'shutdown')
                finally:
                    conn.close()
            except Exception:
                pass
            process.join(timeout=shutdown_timeout)
            if process.is_alive():
                util.info('manager still alive')
                process.terminate()
                process.join(timeout=shutdown_timeout)
                if process.is_alive():
                    util.info('manager still alive after terminate')
                    process.kill()
                    process.join()
        process.join(0)  # reaped: the watch pipe closed, leftovers removed
        if segments and process.exitcode == 0:
            from multiprocessing import resource_tracker
            for name in segments:
                resource_tracker.unregister('/' + name, 'shared_memory')
            del segments[:]
        state.value = State.SHUTDOWN
        try:
            del _mpm.BaseProxy._address_to_local[address]
        except KeyError:
            pass

    def get_server(self):
        """A Server with .address (the real one: a port chosen for port 0), .listener and
        serve_forever(), which runs shmgr in the foreground on that address."""
        _check_initial(self._state)
        return Server(self)


def _rmdir(folder, path):
    for f, p in ((os.unlink, path), (os.rmdir, folder)):
        try:
            f(p)
        except OSError:
            pass


class Server(object):
    """What get_server() returns: a Python listener holds the address (so that .address is
    real at once, as CPython's); serve_forever() closes it and runs shmgr on that address
    until shmgr stops (a client's shutdown(), SIGTERM), then exits the process with status 0
    as CPython's serve_forever() does."""

    def __init__(self, manager):
        self._binary = _launch.find_binary(manager._shmgr_binary)
        self._config = manager._shmgr_config
        self._types = manager._shmgr_types
        self._authkey = bytes(manager._authkey)
        self._name = '%s-shmgr' % type(manager).__name__
        self._folder = self._path = None
        address = manager._address
        if address is None:
            self._folder, self._path = _launch.private_socket()
            address = self._path
            util.Finalize(self, _rmdir, args=(self._folder, self._path), exitpriority=0)
        else:
            _launch.listen_arg(address)  # refused forms fail here, not in serve_forever
        self.listener = connection.Listener(address=address, backlog=128)
        self.address = self.listener.address

    def serve_forever(self):
        self.listener.close()
        listen = _launch.listen_arg(self.address)
        proc, _ = _launch.launch(self._binary, listen, self._authkey, self._config, self._types, self._folder,
                                 self._path, name=self._name, own_session=False)
        try:
            proc.join()
        except KeyboardInterrupt:  # CPython's returns on Ctrl-C too; shmgr had it as well
            proc.terminate()
            proc.join()
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join()
        sys.exit(0)


class BaseManager(_ShmgrMixin, _mpm.BaseManager):
    """multiprocessing.managers.BaseManager served by shmgr."""


class SyncManager(_ShmgrMixin, _mpm.SyncManager):
    """multiprocessing.managers.SyncManager served by shmgr: every type of the stdlib's
    (Queue, dict, list, Lock, Condition, Barrier, Value, Array, Namespace, ...) is built
    into shmgr; Pool is not (its workers would be the server's children)."""

    def Pool(self, *args, **kwds):
        raise UnsupportedError("SyncManager.Pool(): shmgr's server runs no Python code, so it cannot hold a Pool "
                               "of worker processes. Make a multiprocessing.Pool in your own process: its workers "
                               "can use this manager's proxies (dicts, queues, locks)")


if hasattr(_mpm, 'SharedMemoryManager'):  # 3.8+
    class SharedMemoryManager(_ShmgrMixin, _mpm.SharedMemoryManager):
        """multiprocessing.managers.SharedMemoryManager served by shmgr: the segments its
        clients make and track are unlinked when shmgr stops."""

        def SharedMemory(self, size):
            sms = super(SharedMemoryManager, self).SharedMemory(size)
            self._shmgr_segments.append(sms.name)
            return sms

        def ShareableList(self, sequence):
            sl = super(SharedMemoryManager, self).ShareableList(sequence)
            self._shmgr_segments.append(sl.shm.name)
            return sl


def Manager(address=None, authkey=None, *, config=None, types=(), binary=None):
    """A started SyncManager served by shmgr, as multiprocessing.Manager() gives one served
    by a Python process. authkey None: the current process's authkey, as CPython's."""
    m = SyncManager(address, authkey, config=config, types=types, binary=binary)
    m.start()
    return m
