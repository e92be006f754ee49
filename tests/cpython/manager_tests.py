"""CPython's own manager tests (test._test_multiprocessing) with their managers redirected
to a running server: shmgr, or CPython's own SyncManager server as the reference.

    python3 tests/cpython/manager_tests.py --server shmgr|cpython [--shmgr PATH] [-k NAME]

Runs under the interpreter whose tests it runs (3.6 and later). The test classes are the
ones a `multiprocessing.Manager()` runs (WithManagerTest*) for the built-in types, and
TestSyncManagerTypes where the version has it. Every `multiprocessing.Manager()` and
`SyncManager().start()` in them connects to the one server started here instead of
starting a server of its own; `shutdown()` only lets go of it. One line per test:

    RESULT <pass|fail|error|skip> <Class.test> <seconds>

then the failures' tracebacks, then `SUMMARY passed=N failed=N errors=N skipped=N`.
Exit 0 when the run ended (whatever the results: tests/run.py compares them), 2 when it
could not run (no test package, no server)."""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The test classes this runs: the built-in types a SyncManager serves.
CLASSES = ['WithManagerTestBarrier', 'WithManagerTestCondition', 'WithManagerTestContainers',
           'WithManagerTestEvent', 'WithManagerTestLock', 'WithManagerTestQueue',
           'WithManagerTestSemaphore', 'TestSyncManagerTypes']

KEY = b'cpython-conformance-' + os.urandom(8).hex().encode()
START_TIMEOUT = 10.0


def start_shmgr(exe, tmpdir):
    cfg = os.path.join(tmpdir, 'shmgr.conf.lua')
    with open(cfg, 'w') as f:
        f.write('-- CPython conformance run: built-in types only, every setting at its default\n')
    env = dict(os.environ, SHMGR_AUTHKEY=KEY.decode())
    log = open(os.path.join(tmpdir, 'server.log'), 'wb')
    proc = subprocess.Popen([exe, '--config', cfg, '--listen', '127.0.0.1:0'], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, log.name, lambda text: _listen_address(text)


def start_cpython(tmpdir):
    code = ('import sys\n'
            'from multiprocessing.managers import SyncManager\n'
            'server = SyncManager(address=("127.0.0.1", 0), authkey=%r).get_server()\n'
            'sys.stderr.write("listening on %%s:%%d\\n" %% server.address)\n'
            'sys.stderr.flush()\n'
            'server.serve_forever()\n' % KEY)
    log = open(os.path.join(tmpdir, 'server.log'), 'wb')
    proc = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, log.name, _listen_address


def _listen_address(text):
    for line in text.splitlines():
        if line.startswith('listening on '):
            host, _, port = line[len('listening on '):].strip().rpartition(':')
            return (host, int(port))
    return None


def wait_listening(proc, logname, parse):
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        with open(logname, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
        addr = parse(text)
        if addr:
            return addr, None
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    return None, 'the server did not start (exit status %r); its output:\n%s' % (proc.poll(), text)


def redirect(address):
    """Make every manager the tests create a client of the server at address."""
    import multiprocessing
    import multiprocessing.managers as managers
    from multiprocessing import util

    multiprocessing.current_process().authkey = KEY  # children (fork) inherit it

    class ConnectedManager(managers.SyncManager):
        """A SyncManager that connects where the tests would start a server."""

        def __init__(self, *args, **kwds):
            managers.SyncManager.__init__(self, address=address, authkey=KEY)

        def start(self, *args, **kwds):
            self.connect()

        def shutdown(self):
            pass  # the server is shared by the whole run: stopping it is the runner's

        def join(self, timeout=None):
            pass

        def __enter__(self):
            self.connect()
            return self

        def __exit__(self, *exc):
            pass

    def Manager():
        m = ConnectedManager()
        m.connect()
        return m

    multiprocessing.Manager = Manager
    return ConnectedManager


def load(names):
    try:
        import test._test_multiprocessing as T
    except ImportError as e:
        return None, 'no test._test_multiprocessing in this interpreter (%s)' % e
    ns = {'__name__': '__conformance__'}
    T.install_tests_in_module_dict(ns, 'fork')
    return (T, ns), None


class Recorder(unittest.TextTestResult):
    """Prints one RESULT line per test as it ends."""

    def startTest(self, test):
        self._t0 = time.time()
        super(Recorder, self).startTest(test)

    def _line(self, status, test):
        name = '%s.%s' % (type(test).__name__, test._testMethodName) if hasattr(test, '_testMethodName') else str(test)
        sys.__stdout__.write('RESULT %s %s %.2f\n' % (status, name, time.time() - getattr(self, '_t0', time.time())))
        sys.__stdout__.flush()

    def addSuccess(self, test):
        super(Recorder, self).addSuccess(test)
        self._line('pass', test)

    def addFailure(self, test, err):
        super(Recorder, self).addFailure(test, err)
        self._line('fail', test)

    def addError(self, test, err):
        super(Recorder, self).addError(test, err)
        self._line('error', test)

    def addSkip(self, test, reason):
        super(Recorder, self).addSkip(test, reason)
        self._line('skip', test)

    def addExpectedFailure(self, test, err):
        super(Recorder, self).addExpectedFailure(test, err)
        self._line('pass', test)

    def addUnexpectedSuccess(self, test):
        super(Recorder, self).addUnexpectedSuccess(test)
        self._line('fail', test)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--server', choices=('shmgr', 'cpython'), required=True)
    ap.add_argument('--shmgr', default=os.environ.get('SHMGR_BIN') or os.path.join(REPO, 'shmgr'))
    ap.add_argument('-k', action='append', default=[], help='only tests whose Class.test contains this')
    args = ap.parse_args()

    loaded, why = load(CLASSES)
    if not loaded:
        print('SKIP: %s' % why)
        return 2
    T, ns = loaded
    tmpdir = tempfile.mkdtemp(prefix='shmgr-conformance-')
    if args.server == 'shmgr':
        proc, logname, parse = start_shmgr(args.shmgr, tmpdir)
    else:
        proc, logname, parse = start_cpython(tmpdir)
    address, why = wait_listening(proc, logname, parse)
    if not address:
        print('ERROR: %s' % why)
        proc.kill()
        return 2
    try:
        connected = redirect(address)
        if hasattr(T, 'TestSyncManagerTypes'):
            ns['TestSyncManagerTypes'].manager_class = connected
        suite = unittest.TestSuite()
        loader = unittest.TestLoader()
        for name in CLASSES:
            if name in ns:
                for test in loader.loadTestsFromTestCase(ns[name]):
                    tid = '%s.%s' % (name, test._testMethodName)
                    if not args.k or any(k in tid for k in args.k):
                        suite.addTest(test)
        # the module's own set-up: the start method, the temp dir, the semaphores check
        if 'setUpModule' in ns:
            ns['setUpModule']()
        runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=Recorder)
        result = runner.run(suite)
        if 'tearDownModule' in ns:
            try:
                ns['tearDownModule']()
            except Exception:
                traceback.print_exc()
        alive = proc.poll() is None
        sys.stdout.write('SERVER %s\n' % ('alive' if alive else 'died with status %r' % proc.poll()))
        if not alive:
            with open(logname, 'rb') as f:
                sys.stdout.write(f.read().decode('utf-8', 'replace'))
        sys.stdout.write('SUMMARY passed=%d failed=%d errors=%d skipped=%d\n' % (
            result.testsRun - len(result.failures) - len(result.errors) - len(result.skipped)
            - len(result.unexpectedSuccesses), len(result.failures) + len(result.unexpectedSuccesses),
            len(result.errors), len(result.skipped)))
        sys.stdout.flush()
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        import shutil
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
