"""The test classes of CPython's test._test_multiprocessing for own_managers.py, installed
here for the start method in $SHMGR_OWN_START (fork, spawn or forkserver) as CPython's own
test_multiprocessing_<method> modules install them: a module of their own, so that a spawned
child imports it, and with it the same managers, to find the class of the test it runs.

With $SHMGR_OWN_BACKEND=shmgr (the default) every manager the tests start is one of the
shmgr package's (python/shmgr): each starts a shmgr server of its own, as a stock manager
forks a server of its own:

- `multiprocessing.Manager()` is `shmgr.Manager()`; `multiprocessing.managers.SyncManager`
  and `.SharedMemoryManager` (which TestInitializers, TestSyncManagerTypes and the shared
  memory tests look up there) are shmgr's;
- the module's own managers, MyManager, QueueManager and QueueManager2, are shmgr
  BaseManagers that declare the same typeids with the same proxytype and exposed, their
  server's types (FooBar, baz, get_queue) written in Lua in mymanager.lua.

With $SHMGR_OWN_BACKEND=cpython nothing is replaced: the reference run, with CPython's own
servers. $SHMGR_BIN names the shmgr binary."""

import errno
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TYPES = os.path.join(HERE, 'mymanager.lua')
BACKEND = os.environ.get('SHMGR_OWN_BACKEND', 'shmgr')

import multiprocessing  # noqa: E402
import multiprocessing.managers  # noqa: E402
import test._test_multiprocessing as T  # noqa: E402
from test._test_multiprocessing import install_tests_in_module_dict  # noqa: E402


def _shmgr_manager(base, name, types=()):
    """A subclass of the shmgr package's base whose servers run the given type scripts with
    the binary of $SHMGR_BIN; the tests' own keyword arguments pass through."""

    def __init__(self, *args, **kwds):
        if types:
            kwds.setdefault('types', types)
        if os.environ.get('SHMGR_BIN'):
            kwds.setdefault('binary', os.environ['SHMGR_BIN'])
        base.__init__(self, *args, **kwds)

    def start(self, *args, **kwds):
        # _TestManagerRestart starts a server on the port a closed one had, and on EADDRINUSE
        # sleeps and goes on without it: say it, so that own_managers.py fails the run (a
        # server started again must bind the same port at once)
        try:
            return base.start(self, *args, **kwds)
        except Exception as e:  # OSError, or the package's StartError with shmgr's words
            if getattr(e, 'errno', None) == errno.EADDRINUSE or os.strerror(errno.EADDRINUSE) in str(e):
                sys.__stdout__.write('EADDRINUSE %s: %s\n' % (name, e))
                sys.__stdout__.flush()
            raise

    return type(name, (base,), {'__init__': __init__, 'start': start, '__module__': __name__})


def use_shmgr():
    """Replace the managers the tests start with shmgr's (see the module's docstring)."""
    if os.path.join(REPO, 'python') not in sys.path:
        sys.path.insert(0, os.path.join(REPO, 'python'))
    import shmgr

    sync = _shmgr_manager(shmgr.SyncManager, 'SyncManager')

    def Manager():
        m = sync()
        m.start()
        return m

    multiprocessing.Manager = Manager
    multiprocessing.managers.SyncManager = sync
    if hasattr(shmgr, 'SharedMemoryManager') and hasattr(multiprocessing.managers, 'SharedMemoryManager'):
        multiprocessing.managers.SharedMemoryManager = _shmgr_manager(shmgr.SharedMemoryManager,
                                                                      'SharedMemoryManager')

    # MyManager: Foo and Bar (FooBar) and the generator baz, with IteratorProxy
    my = _shmgr_manager(shmgr.BaseManager, 'MyManager', (TYPES,))
    my.register('Foo')
    my.register('Bar', exposed=('f', '_h'))
    my.register('baz', proxytype=T.IteratorProxy)
    T.MyManager = my
    # QueueManager (whose server has get_queue) and QueueManager2 (a client's declaration)
    for name in ('QueueManager', 'QueueManager2'):
        qm = _shmgr_manager(shmgr.BaseManager, name, (TYPES,))
        qm.register('get_queue')
        setattr(T, name, qm)
    return sync


if BACKEND == 'shmgr':
    _sync = use_shmgr()
    if hasattr(T, 'TestSyncManagerTypes'):  # 3.8 and later; its class attribute was bound at import
        T.TestSyncManagerTypes.manager_class = _sync

install_tests_in_module_dict(globals(), os.environ.get('SHMGR_OWN_START', 'fork'))
