"""CPython's own manager tests (test._test_multiprocessing) with their managers redirected
to a running server: shmgr, or CPython's own SyncManager server as the reference.

    python3 tests/cpython/manager_tests.py --compare [--start-method M] [--shmgr PATH] [-k NAME]
    python3 tests/cpython/manager_tests.py --server shmgr|cpython [--start-method M] [...]

Runs under the interpreter whose tests it runs (3.6 and later). The test classes are the
ones a `multiprocessing.Manager()` runs (WithManagerTest*) for the built-in types, and
TestSyncManagerTypes where the version has it, for one start method (fork by default; spawn
and forkserver as CPython's test_multiprocessing_spawn and _forkserver run them: the
classes live in conformance_tests.py). Every `multiprocessing.Manager()` and
`SyncManager().start()` in them connects to the one server started here instead of
starting a server of its own; `shutdown()` only lets go of it.

--server runs them against one server, one line per test as it ends:

    RESULT <pass|fail|error|skip> <Class.test> <seconds>

(a failure's traceback follows between DETAIL and END lines), then `SUMMARY passed=N
failed=N errors=N skipped=N`, and whether the server is still alive.

--compare runs both at once and is the verdict (exit 0 or 1): every test that passes
against CPython's server must pass against shmgr, but for EXCEPTIONS below, which must fail
with shmgr's message; shmgr must stay alive and no run may hang. It prints one line per
difference and a last line `cpython X.Y.Z: CPython's server passed N of T, shmgr passed M`.
Exit 77 (a skip) when this interpreter has no test package."""

import argparse
import os
import shutil
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

# Tests that need Python code to run inside the server: shmgr never runs client code, so
# each must fail with shmgr's own message (not a hang, not a crash). Name -> (why, message).
EXCEPTIONS = {
    'WithManagerTestBarrier.test_action': (
        "a Barrier's action is a Python callable the server would call",
        "shmgr's Barrier cannot run an action"),
    'TestSyncManagerTypes.test_pool': (
        'a Pool runs Python functions in worker processes of the server',
        'shmgr cannot run a Pool'),
}

MAIN_PID = os.getpid()  # a forked child that returns into the runner must not report
RUN_TIMEOUT = 900.0  # seconds for one backend's whole run (a hang is reported, not waited out)
SKIP_EXIT = 77

# the authkey of the servers and the test processes (a runner gets its parent's)
KEY = os.environ.setdefault('SHMGR_CONFORMANCE_KEY', 'cpython-conformance-' + os.urandom(8).hex()).encode()
START_TIMEOUT = 10.0


class Server(object):
    """A server started for one run: shmgr or CPython's own, on 127.0.0.1 and a free port.
    It is a child of the process that compares, never of the one that runs the tests (their
    support.reap_children() would reap it, and its exit status with it)."""

    def __init__(self, backend, exe, tmpdir):
        self.backend = backend
        self.logname = os.path.join(tmpdir, '%s.log' % backend)
        log = open(self.logname, 'wb')
        if backend == 'shmgr':
            cfg = os.path.join(tmpdir, 'shmgr.conf.lua')
            with open(cfg, 'w') as f:
                f.write('-- CPython conformance run: built-in types only, every setting at its default\n')
            argv = [exe, '--config', cfg, '--listen', '127.0.0.1:0']
        else:
            # the reference runs what the tests give it to run (a Barrier's action, a Pool's
            # functions): their classes live in the test module, as in a server the tests fork
            argv = [sys.executable, '-c',
                    'import sys\n'
                    'import test._test_multiprocessing\n'
                    'from multiprocessing.managers import SyncManager\n'
                    'server = SyncManager(address=("127.0.0.1", 0), authkey=%r).get_server()\n'
                    'sys.stderr.write("listening on %%s:%%d\\n" %% server.address)\n'
                    'sys.stderr.flush()\n'
                    'server.serve_forever()\n' % KEY]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, SHMGR_AUTHKEY=KEY.decode()))
        log.close()
        self.address = None

    def log(self):
        with open(self.logname, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def wait_listening(self):
        """The address once the server says it listens, or None (then why())."""
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline and self.proc.poll() is None:
            for line in self.log().splitlines():
                if line.startswith('listening on '):
                    host, _, port = line[len('listening on '):].strip().rpartition(':')
                    self.address = (host, int(port))
                    return self.address
            time.sleep(0.02)
        return None

    def state(self):
        rc = self.proc.poll()
        if rc is None:
            return 'alive'
        return 'died: %s; its log:\n%s' % ('killed by signal %d' % -rc if rc < 0 else 'exit status %d' % rc,
                                           self.log())

    def stop(self):
        """SIGTERM; returns a problem to report, or None (shmgr must exit 0)."""
        if self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return '%s did not stop within 10 s of SIGTERM' % self.backend
        if self.backend == 'shmgr' and rc != 0:
            return 'shmgr exited with status %r on SIGTERM; its log:\n%s' % (rc, self.log())
        return None


def redirect(address):
    """Make every manager the tests create a client of the server at address."""
    import multiprocessing
    import multiprocessing.managers as managers

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


def load():
    """(the module with the installed test classes, its namespace), or (None, why not)."""
    try:
        import test._test_multiprocessing  # noqa: F401
    except ImportError as e:
        return None, 'no test._test_multiprocessing in this interpreter (%s)' % e
    sys.path.insert(0, HERE)
    import conformance_tests as T
    return (T, vars(T)), None


class Recorder(unittest.TextTestResult):
    """Prints one RESULT line per test as it ends."""

    def startTest(self, test):
        self._t0 = time.time()
        super(Recorder, self).startTest(test)

    def _line(self, status, test):
        if os.getpid() != MAIN_PID:
            sys.__stdout__.write('CHILD %d reported %s for %s\n' % (os.getpid(), status, test))
            return
        name = '%s.%s' % (type(test).__name__, test._testMethodName) if hasattr(test, '_testMethodName') else str(test)
        sys.__stdout__.write('RESULT %s %s %.2f\n' % (status, name, time.time() - getattr(self, '_t0', time.time())))
        sys.__stdout__.flush()

    def addSuccess(self, test):
        super(Recorder, self).addSuccess(test)
        self._line('pass', test)

    def _detail(self, test, err):
        if os.getpid() != MAIN_PID:
            return
        sys.__stdout__.write('DETAIL\n%s\nEND\n' % self._exc_info_to_string(err, test).rstrip('\n'))
        sys.__stdout__.flush()

    def addFailure(self, test, err):
        super(Recorder, self).addFailure(test, err)
        self._line('fail', test)
        self._detail(test, err)

    def addError(self, test, err):
        super(Recorder, self).addError(test, err)
        self._line('error', test)
        self._detail(test, err)

    def addSkip(self, test, reason):
        super(Recorder, self).addSkip(test, reason)
        self._line('skip', test)

    def addExpectedFailure(self, test, err):
        super(Recorder, self).addExpectedFailure(test, err)
        self._line('pass', test)

    def addUnexpectedSuccess(self, test):
        super(Recorder, self).addUnexpectedSuccess(test)
        self._line('fail', test)


def parse_run(text):
    """{Class.test: (status, detail)} of one run's output (the last word for a test wins:
    an error in its tearDown comes after its own result)."""
    results, current = {}, None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('RESULT '):
            parts = line.split()
            current = parts[2]
            results[current] = (parts[1], '')
        elif line == 'DETAIL' and current:
            j = i + 1
            while j < len(lines) and lines[j] != 'END':
                j += 1
            results[current] = (results[current][0], '\n'.join(lines[i + 1:j]))
            i = j
        i += 1
    return results


def start_runner(address, args):
    """This script with --connect: the tests against address (output to a temporary file)."""
    out = tempfile.TemporaryFile()
    argv = [sys.executable, os.path.abspath(__file__), '--connect', '%s:%d' % address,
            '--start-method', args.start_method]
    for k in args.k:
        argv += ['-k', k]
    # each runner in a folder of its own: tests make files in their cwd (test_no_import_lock_contention
    # makes 'tempcwd'), and the runner against CPython's server and the one against shmgr run at once
    cwd = tempfile.mkdtemp(prefix='shmgr-conformance-')
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=cwd)
    proc.cwd = cwd
    return proc, out


def finish_runner(proc, out, deadline):
    """(output, hung): waits until deadline, then kills the runner and its children."""
    try:
        proc.wait(max(1.0, deadline - time.time()))
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the tests' own children, left behind or hung
    except OSError:
        pass
    proc.wait()
    shutil.rmtree(getattr(proc, 'cwd', ''), ignore_errors=True)
    out.seek(0)
    return out.read().decode('utf-8', 'replace'), hung


def run_against(backends, args):
    """Start each backend's server and a runner for it, all at once; wait for the runs.
    Returns {backend: (output, problems)}."""
    tmpdir = tempfile.mkdtemp(prefix='shmgr-conformance-')
    servers, runs, done = {}, {}, {}
    try:
        for b in backends:
            servers[b] = Server(b, args.shmgr, tmpdir)
        for b in backends:
            if servers[b].wait_listening():
                runs[b] = start_runner(servers[b].address, args)
            else:
                done[b] = ('', ['%s: the server did not start: %s' % (b, servers[b].state())])
        deadline = time.time() + RUN_TIMEOUT
        for b, (proc, out) in runs.items():
            text, hung = finish_runner(proc, out, deadline)
            problems = []
            if hung or 'SUMMARY ' not in text:
                results = parse_run(text)
                problems.append('%s: the run %s after %d tests; its output ends:\n%s' % (
                    b, 'hung (killed after %g s)' % RUN_TIMEOUT if hung else 'did not finish',
                    len(results), '\n'.join(text.splitlines()[-30:])))
            if servers[b].state() != 'alive':
                problems.append('%s: the server %s' % (b, servers[b].state()))
            done[b] = (text, problems)
    finally:
        for b, srv in servers.items():
            why = srv.stop()
            if why and b in done:
                done[b][1].append(why)
        shutil.rmtree(tmpdir, ignore_errors=True)
    return done


def compare(args):
    """Run both backends at once; print the differences and the verdict; 0 or 1."""
    version = '%d.%d.%d' % sys.version_info[:3]
    loaded, why = load()
    if not loaded:
        print('SKIP: %s' % why)
        return SKIP_EXIT
    done = run_against(('cpython', 'shmgr'), args)
    bad = done['cpython'][1] + done['shmgr'][1]
    ref = parse_run(done['cpython'][0])
    got = parse_run(done['shmgr'][0])
    for name in sorted(ref):
        status, _ = ref[name]
        mine, detail = got.get(name, ('missing', ''))
        if name in EXCEPTIONS:
            why, message = EXCEPTIONS[name]
            if mine == 'pass' or message not in detail:
                bad.append('%s: listed as needing Python code in the server (%s), so it must fail with '
                           '"%s"; against shmgr it ended %s:\n%s' % (name, why, message, mine, detail))
            else:
                print('exception %s: fails as listed, with shmgr\'s message (%s; CPython\'s server: %s)'
                      % (name, why, status))
            continue
        if status == 'pass' and mine != 'pass':
            bad.append('%s: passes against CPython\'s server, %s against shmgr:\n%s' % (name, mine, detail))
        elif status not in ('pass', 'skip'):
            print('note: %s fails against CPython\'s own server too (%s); shmgr: %s' % (name, status, mine))
    for line in bad:
        print('FAIL: %s' % line)
    npass = lambda rs: sum(1 for st, _ in rs.values() if st == 'pass')
    print('cpython %s (%s): %d tests; CPython\'s server passed %d, shmgr passed %d (%d listed exceptions)%s' % (
        version, args.start_method, len(ref), npass(ref), npass(got), len([n for n in ref if n in EXCEPTIONS]),
        '' if not bad else '; %d problem(s)' % len(bad)))
    return 1 if bad else 0


def run_tests(address, ks):
    """--connect: the tests themselves, against the server at address."""
    loaded, why = load()
    if not loaded:
        print('SKIP: %s' % why)
        return SKIP_EXIT
    T, ns = loaded
    connected = redirect(address)
    if 'TestSyncManagerTypes' in ns:
        ns['TestSyncManagerTypes'].manager_class = connected
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for name in CLASSES:
        if name in ns:
            for test in loader.loadTestsFromTestCase(ns[name]):
                tid = '%s.%s' % (name, test._testMethodName)
                if not ks or any(k in tid for k in ks):
                    suite.addTest(test)
    return run_suite(ns, suite, Recorder)


def run_suite(ns, suite, recorder):
    """Run suite inside the test module ns's own set-up and tear-down (the start method, the
    temp dir, the semaphores check), recording with recorder; print the SUMMARY line."""
    if 'setUpModule' in ns:
        ns['setUpModule']()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=recorder)
    result = runner.run(suite)
    if 'tearDownModule' in ns:
        try:
            ns['tearDownModule']()
        except Exception:
            traceback.print_exc()
    if os.getpid() != MAIN_PID:
        os._exit(3)  # a forked child that came back here: the parent reports
    sys.stdout.write('SUMMARY passed=%d failed=%d errors=%d skipped=%d\n' % (
        result.testsRun - len(result.failures) - len(result.errors) - len(result.skipped)
        - len(result.unexpectedSuccesses), len(result.failures) + len(result.unexpectedSuccesses),
        len(result.errors), len(result.skipped)))
    sys.stdout.flush()
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--compare', action='store_true', help='both servers at once, and the verdict')
    ap.add_argument('--server', choices=('shmgr', 'cpython'), help='one server, every result shown')
    ap.add_argument('--connect', metavar='HOST:PORT', help=argparse.SUPPRESS)
    ap.add_argument('--start-method', choices=('fork', 'spawn', 'forkserver'), default='fork')
    ap.add_argument('--shmgr', default=os.environ.get('SHMGR_BIN') or os.path.join(REPO, 'shmgr'))
    ap.add_argument('-k', action='append', default=[], help='only tests whose Class.test contains this')
    args = ap.parse_args()
    os.environ['SHMGR_CONFORMANCE_START'] = args.start_method  # read by conformance_tests.py
    if args.connect:
        host, _, port = args.connect.rpartition(':')
        return run_tests((host, int(port)), args.k)
    if args.compare:
        return compare(args)
    if not args.server:
        ap.error('--compare or --server NAME')
    text, problems = run_against((args.server,), args)[args.server]
    sys.stdout.write(text)
    for p in problems:
        print('FAIL: %s' % p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
