"""shmgr from Python: multiprocessing's managers, served by shmgr instead of a Python process.

    from shmgr import Manager          # instead of: from multiprocessing import Manager
    with Manager() as m:
        d = m.dict(); q = m.Queue(); lock = m.Lock()

shmgr.BaseManager, SyncManager and SharedMemoryManager are the stdlib's classes (same
arguments, same proxies, same registrations) whose start() and get_server() run the shmgr
binary; they take three more keyword arguments: config= (a Lua config file), types= (Lua
type scripts) and binary= (the shmgr executable). Standard library only; Python 3.6+.
The full API: docs/python.md.
"""

from .errors import ShmgrError, StartError, UnsupportedError
from .launch import ServerProcess, find_binary
from .managers import BaseManager, Manager, Server, SyncManager

__all__ = ['Manager', 'BaseManager', 'SyncManager', 'Server', 'ServerProcess', 'ShmgrError', 'StartError',
           'UnsupportedError', 'find_binary']

try:
    from .managers import SharedMemoryManager
    __all__.append('SharedMemoryManager')
except ImportError:  # before 3.8 the stdlib has none
    pass
__version__ = '0.1.0'
