"""Nested shared objects: a proxy stored inside another shared object (a queue, a Lua
type) keeps its referent alive and comes back to any client as a working proxy;
refcounts fall back and number_of_objects() returns to where it was."""

import gc
import multiprocessing
import os
import sys
import time
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Box(object):
    def store(self, v):
        self.v = v

    def fetch(self):
        return self.v


def py_setup(M):
    M.register('Box', Box)


def settled(m, want, what):
    """number_of_objects() reaches want (decrefs travel on their own connections)."""
    deadline = time.time() + 5
    got = m._number_of_objects()
    while got != want and time.time() < deadline:
        gc.collect()
        time.sleep(0.02)
        got = m._number_of_objects()
    harness.eq(got, want, what)


def main():
    if harness.BACKEND == 'cpython' and sys.version_info < (3, 9):
        # CPython's own server before 3.9 cannot rebuild an AutoProxy sent as an argument
        # (TypeError: AutoProxy() got an unexpected keyword argument 'manager_owned',
        # bpo-30256); shmgr has no such limit and runs this script on every version.
        harness.skip("CPython %d.%d's server cannot store an AutoProxy (bpo-30256)" % sys.version_info[:2])
    with harness.server(harness.conf('nested.lua'), py_setup) as srv:
        # A proxy a client receives authenticates its own connections with the process's
        # authkey (multiprocessing's rule, whatever the server): give it the manager's.
        multiprocessing.current_process().authkey = srv.authkey
        m = harness.client_manager(srv, ['Queue', 'Box'])
        base = m._number_of_objects()

        outer, inner = m.Queue(), m.Queue()
        inner.put('hello')
        outer.put(inner)
        settled(m, base + 2, 'two queues')
        del inner
        settled(m, base + 1, 'the stored proxy is not a client reference')
        got = outer.get()
        harness.eq(got.get(), 'hello', 'the nested queue came back working, with its item')
        got.put(1)
        harness.eq(got.qsize(), 1, 'and it is the same queue')
        settled(m, base + 2, 'the received proxy counts once')
        del got
        settled(m, base + 1, 'dropped again')

        box = m.Box()
        q = m.Queue()
        box.store(q)
        box.store(q)  # stored twice (the first is replaced): still one object
        del q
        settled(m, base + 2, 'box and outer; the queue lives in the box only')
        a, b = box.fetch(), box.fetch()
        a.put('x')
        harness.eq(b.get(), 'x', 'two proxies fetched from the box are one queue')
        del a, b
        box.store(None)  # the box lets go: the queue goes
        settled(m, base + 2, 'box and outer')

        outer.put(m.Queue())  # dropped while stored: freed with its container
        del outer, box
        settled(m, base, 'every object gone when every client dropped its proxies')

        # the SyncManager containers hold proxies the same way
        sm = harness.sync_manager(srv)
        lst, dct, ns, val = sm.list(), sm.dict(), sm.Namespace(), sm.Value('i', 0)
        inner = sm.list([1, 2])
        lst.append(inner)
        dct['k'] = inner
        ns.x = inner
        val.set(inner)
        del inner
        settled(sm, base + 4, 'the four containers; the nested list they hold is no client reference')
        got = [lst[0], dct['k'], ns.x, val.get()]
        got[0].append(3)
        for what, p in zip(('list', 'dict', 'Namespace', 'Value'), got):
            harness.eq(p[:], [1, 2, 3], 'the nested list, fetched from a %s' % what)
        del got, p
        settled(sm, base + 4, 'the fetched proxies dropped')
        lst.pop()
        del dct['k']
        ns.x = None
        val.set(None)
        settled(sm, base + 4, 'the containers let go of the nested list')
        del lst, dct, ns, val
        settled(sm, base, 'and every container gone')
    harness.done()


if __name__ == '__main__':
    main()
