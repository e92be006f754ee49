"""Pool: CPython's server runs the client's callables in a process pool; shmgr never runs
code sent by clients, so a client asking for a Pool gets a clear error instead."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from multiprocessing.managers import RemoteError  # noqa: E402


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("the refusal is shmgr's own: CPython's server runs Pools (and cannot here: "
                     "the harness runs it as a daemonic process, which may not start workers)")
    with harness.server() as srv:
        m = harness.sync_manager(srv)
        e = harness.raises(RemoteError, m.Pool, what='m.Pool()')
        harness.check(e is not None and 'cannot run a Pool' in str(e), 'the error says why: %r' % (e,))
        harness.check(e is not None and 'NotImplementedError' in str(e), 'as NotImplementedError: %r' % (e,))
        q = m.Queue()
        q.put(1)
        harness.eq(q.get(), 1, 'the server goes on serving')
    harness.done()


if __name__ == '__main__':
    main()
