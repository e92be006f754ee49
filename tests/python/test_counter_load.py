"""Counters incremented concurrently through a Lua type are exact: 16 client threads, each on
its own connection, increment one shared Counter 500 times; every increment is counted once,
and every value it returned along the way is distinct."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import threading  # noqa: E402

THREADS = 16
EACH = 500


def py_setup(M):
    class Counter(object):
        def __init__(self):
            self.n = 0
            self.lock = threading.Lock()

        def incr(self, by=1):
            with self.lock:
                self.n += by
                return self.n

        def get(self):
            return self.n
    M.register('Counter', Counter)


def main():
    with harness.server(harness.conf('counter.lua'), py_setup) as srv:
        m = harness.client_manager(srv, ['Counter'])
        counter = m.Counter()
        seen = [[] for _ in range(THREADS)]
        errors = []

        def work(i):
            try:
                for _ in range(EACH):
                    seen[i].append(counter.incr())  # each thread: its own connection
            except Exception as e:  # reported below: a thread's exception is otherwise lost
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        harness.eq(errors, [], 'no call failed')
        harness.eq(counter.get(), THREADS * EACH, 'every increment counted')
        values = sorted(v for s in seen for v in s)
        harness.eq(values, list(range(1, THREADS * EACH + 1)), 'each value returned exactly once')
        harness.eq(counter.incr(10), THREADS * EACH + 10, 'an argument is used')
    harness.done()


if __name__ == '__main__':
    main()
