"""Errors raised by a user type's methods reach the client as Python
exceptions (RuntimeError with file:line for a Lua error(), the named class
for shmgr.raise), and the server goes on serving; a runaway method is
stopped by the per-call limit."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import queue  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import RemoteError  # noqa: E402

CONF = harness.conf('lua_errors.lua')


def line_of(text):
    with open(CONF) as f:
        for n, line in enumerate(f, 1):
            if text in line and not line.lstrip().startswith('--'):  # code, not a comment
                return n
    raise AssertionError('%r not in %s' % (text, CONF))


BOOM_LINE = line_of('error("boom")')
CTOR_LINE = line_of('error("ctor boom")')
WHERE = 'conf/lua_errors.lua'


class Failing(object):
    """The CPython stand-in for the Lua type: same names, same exceptions,
    messages shaped like the Lua ones ("<file>:<line>: <message>")."""

    def __init__(self, fail_in_ctor=False):
        if fail_in_ctor:
            raise RuntimeError('%s:%d: ctor boom' % (WHERE, CTOR_LINE))

    def boom(self):
        raise RuntimeError('%s:%d: boom' % (WHERE, BOOM_LINE))

    def bad(self):
        raise ValueError('bad')

    def empty(self):
        raise queue.Empty()

    def echo(self, x):
        return x

    def spin(self):
        raise NotImplementedError('never called against CPython')


def py_setup(M):
    M.register('Failing', Failing)


def main():
    with harness.server(CONF, py_setup) as srv:
        m = harness.client_manager(srv, ['Failing'])
        f = m.Failing()
        harness.eq(f.echo(41), 41, 'echo before any error')

        e = harness.raises(RuntimeError, f.boom, what='error("boom")')
        if e is not None:
            msg = str(e)
            harness.check(type(e) is RuntimeError, 'error() gives exactly RuntimeError: %r' % type(e))
            harness.check('boom' in msg, 'message contains boom: %r' % msg)
            harness.check('lua_errors.lua:%d:' % BOOM_LINE in msg,
                          'message names the script and line lua_errors.lua:%d: %r' % (BOOM_LINE, msg))
        harness.eq(f.echo('after boom'), 'after boom', 'served after error()')

        e = harness.raises(ValueError, f.bad, what='shmgr.raise("ValueError", "bad")')
        if e is not None:
            harness.check(type(e) is ValueError and e.args == ('bad',), 'exactly ValueError(\'bad\'): %r' % e)

        e = harness.raises(queue.Empty, f.empty, what='shmgr.raise("queue.Empty")')
        if e is not None:
            harness.check(type(e) is queue.Empty, 'exactly queue.Empty: %r' % type(e))
        harness.eq(f.echo([1, (2,)]), [1, (2,)], 'served after raise()')

        # many errors in a row do not wear anything out
        n = 0
        for _ in range(200):
            try:
                f.boom()
            except RuntimeError:
                n += 1
        harness.eq(n, 200, '200 error() calls in a row each raise RuntimeError')

        # an error in the constructor: CPython's server answers a failing
        # create with #TRACEBACK, i.e. RemoteError carrying the message
        n0 = m._number_of_objects()
        e = harness.raises(RemoteError, m.Failing, True, what='constructor error')
        if e is not None:
            harness.check('ctor boom' in str(e), 'constructor error text: %r' % str(e))
        harness.eq(m._number_of_objects(), n0, 'no object left by a failed constructor')

        # another client, another object: all fine
        m2 = harness.client_manager(srv, ['Failing'])
        g = m2.Failing()
        harness.eq(g.echo('second client'), 'second client', 'a second client is served')
        harness.raises(ValueError, g.bad, what='bad() from the second client')

        if srv.backend == 'cpython':
            harness.skip_part('runaway method', 'the instruction/time limit on a call is a shmgr '
                              'sandbox feature; a CPython method looping forever blocks its '
                              'thread for good')
        else:
            t0 = time.time()
            box = harness.run_thread(f.spin)
            if not box['done'].wait(30):
                harness.fail('spin() (an infinite Lua loop) still running after 30 s')
            else:
                dt = time.time() - t0
                err = box.get('error')
                harness.check(isinstance(err, Exception),
                              'spin() fails with an exception, got %r' % (box.get('result', err),))
                harness.note('spin() stopped after %.2f s with %s: %s'
                             % (dt, type(err).__name__, err))
                harness.eq(f.echo('after spin'), 'after spin', 'the object still answers after the limit')
                harness.eq(g.echo('other'), 'other', 'other clients still served after the limit')
                m3 = harness.client_manager(srv, ['Failing'])
                harness.eq(m3.Failing().echo(1), 1, 'new clients still served after the limit')
    harness.done()


if __name__ == '__main__':
    main()
