"""CPython's own manager tests (test._test_multiprocessing) in their normal mode, each
manager they start a shmgr server of its own started by the shmgr package (python/shmgr),
or CPython's own server as the reference.

    python3 tests/cpython/own_managers.py --compare [--start-method M] [--shmgr PATH] [-k NAME]
    python3 tests/cpython/own_managers.py --server shmgr|cpython [--start-method M] [...]

Unlike manager_tests.py, which points every manager at one running server, here each
`multiprocessing.Manager()`, `SyncManager().start()`, `with MyManager() as m` and
`QueueManager(...).start()` starts a server, as the tests expect: own_manager_classes.py
replaces those managers by the shmgr package's, with the test module's own types
(MyManager's Foo, Bar and baz, QueueManager's get_queue) written in Lua in mymanager.lua.
The classes run (each where this version has it):

- every WithManagerTest* class: the built-in types, Pool, _TestMyManager,
  _TestRemoteManager (the xmlrpclib serializer) and _TestManagerRestart (a server started
  again binds the port of the last one at once), whose _putter children also run as
  WithProcesses- and WithThreadsTestManagerRestart;
- TestSyncManagerTypes, TestManagerExceptions, TestInitializers;
- WithProcessesTestSharedMemory's tests of SharedMemoryManager (not
  ..._reuses_resource_tracker: it starts a stock SharedMemoryManager in a fresh interpreter,
  with nothing of ours in it).

--server runs them against one backend, one line per test as it ends:

    RESULT <pass|fail|error|skip> <Class.test> <seconds>

(a failure's traceback follows between DETAIL and END lines; a class whose setUpClass
failed reports `Class.setUpClass`), then `SUMMARY passed=N failed=N errors=N skipped=N`.

--compare runs both at once and is the verdict (exit 0 or 1): every test that passes with
CPython's servers must pass with shmgr's, but for EXCEPTIONS below, which must fail with
the message given there; no run may hang. It prints one line per difference and last
`cpython X.Y.Z (method): N tests; CPython's servers passed N, shmgr passed M (...)`.
Exit 77 (a skip) when this interpreter has no test package."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from manager_tests import Recorder, finish_runner, run_suite, MAIN_PID, SKIP_EXIT  # noqa: E402

# What runs: class name -> None (every test) or the names of the tests to run.
CLASSES = {
    'TestSyncManagerTypes': None,
    'TestManagerExceptions': None,
    'TestInitializers': None,
    'WithProcessesTestManagerRestart': None,
    'WithThreadsTestManagerRestart': None,
    'WithProcessesTestSharedMemory': ('test_shared_memory_SharedMemoryManager_basics',
                                      'test_shared_memory_SharedMemoryServer_ignores_sigint'),
}
CLASS_PREFIX = 'WithManagerTest'  # and every class whose name starts so

# Tests that need Python code to run inside the server: shmgr never runs client code, so
# each must fail with the message given (not hang, not pass). A class name stands for each of
# its tests and its setUpClass. Name -> (why, message).
EXCEPTIONS = {
    'WithManagerTestBarrier.test_action': (
        "a Barrier's action is a Python callable the server would call",
        "shmgr's Barrier cannot run an action"),
    'TestSyncManagerTypes.test_pool': (
        'a Pool runs Python functions in worker processes of the server',
        'cannot hold a Pool'),
    'WithManagerTestPool': (
        "every test uses the manager's Pool (setUpClass makes one), whose workers run Python "
        "functions in the server's processes",
        'cannot hold a Pool'),
    'TestInitializers.test_manager_initializer': (
        'SyncManager.start(initializer) calls the initializer in the server process',
        "start(initializer=<function initializer"),
}

RUN_TIMEOUT = 900.0  # seconds for one backend's whole run (a hang is reported, not waited out)


def tail(text, lines=25):
    """The last lines of a traceback: where it ended and why."""
    text = text.splitlines()
    return '\n'.join((['    ...'] if len(text) > lines else []) + text[-lines:])


def exception_for(name):
    """The EXCEPTIONS entry that covers Class.test, or None."""
    return EXCEPTIONS.get(name) or EXCEPTIONS.get(name.split('.')[0])


def load(backend, start_method):
    """(the module with the installed test classes, its namespace), or (None, why not)."""
    try:
        import test._test_multiprocessing  # noqa: F401
    except ImportError as e:
        return None, 'no test._test_multiprocessing in this interpreter (%s)' % e
    os.environ['SHMGR_OWN_BACKEND'] = backend     # read by own_manager_classes.py, here and in
    os.environ['SHMGR_OWN_START'] = start_method  # the children a test spawns
    import own_manager_classes as C
    return (C, vars(C)), None


class OwnRecorder(Recorder):
    """manager_tests' Recorder, naming a failed setUpClass Class.setUpClass."""

    def _line(self, status, test):
        m = None if hasattr(test, '_testMethodName') else \
            re.match(r'^(setUpClass|tearDownClass) \((?:[\w.]*\.)?(\w+)\)$', str(test))
        if not m:
            return Recorder._line(self, status, test)
        if os.getpid() == MAIN_PID:
            sys.__stdout__.write('RESULT %s %s.%s 0.00\n' % (status, m.group(2), m.group(1)))
            sys.__stdout__.flush()


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
            if current in results and results[current][0] != 'pass':
                results[current] = (parts[1] if parts[1] != 'pass' else results[current][0], results[current][1])
            else:
                results[current] = (parts[1], '')
        elif line == 'DETAIL' and current:
            j = i + 1
            while j < len(lines) and lines[j] != 'END':
                j += 1
            results[current] = (results[current][0], (results[current][1] + '\n' + '\n'.join(lines[i + 1:j])).strip('\n'))
            i = j
        i += 1
    return results


def run_tests(backend, start_method, ks):
    """--run: the tests themselves, in this process, with backend's managers."""
    loaded, why = load(backend, start_method)
    if not loaded:
        print('SKIP: %s' % why)
        return SKIP_EXIT
    C, ns = loaded
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    names = sorted(n for n in ns if n.startswith(CLASS_PREFIX) and isinstance(ns[n], type)) + \
        sorted(n for n in CLASSES if n in ns)
    for name in names:
        only = CLASSES.get(name)
        for test in loader.loadTestsFromTestCase(ns[name]):
            tid = '%s.%s' % (name, test._testMethodName)
            if only is not None and test._testMethodName not in only:
                continue
            if not ks or any(k in tid for k in ks):
                suite.addTest(test)
    return run_suite(ns, suite, OwnRecorder)


def start_runner(backend, args):
    """This script with --run backend (output to a temporary file), in a folder of its own
    (tests make files in their cwd) and a session of its own (its servers die with it)."""
    out = tempfile.TemporaryFile()
    argv = [sys.executable, os.path.abspath(__file__), '--run', backend, '--start-method', args.start_method]
    for k in args.k:
        argv += ['-k', k]
    cwd = tempfile.mkdtemp(prefix='shmgr-own-managers-')
    env = dict(os.environ, SHMGR_BIN=os.path.abspath(args.shmgr))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=cwd, env=env)
    proc.cwd = cwd
    return proc, out


def run_against(backends, args):
    """A runner for each backend, all at once. Returns {backend: (output, problems)}."""
    runs = dict((b, start_runner(b, args)) for b in backends)
    deadline = time.time() + RUN_TIMEOUT
    done = {}
    for b, (proc, out) in runs.items():
        text, hung = finish_runner(proc, out, deadline)
        problems = []
        if hung or 'SUMMARY ' not in text:
            problems.append('%s: the run %s after %d tests; its output ends:\n%s' % (
                b, 'hung (killed after %g s)' % RUN_TIMEOUT if hung else 'did not finish',
                len(parse_run(text)), '\n'.join(text.splitlines()[-30:])))
        done[b] = (text, problems)
    return done


def compare(args):
    """Run both backends at once; print the differences and the verdict; 0 or 1."""
    version = '%d.%d.%d' % sys.version_info[:3]
    try:
        import test._test_multiprocessing  # noqa: F401
    except ImportError as e:
        print('SKIP: no test._test_multiprocessing in this interpreter (%s)' % e)
        return SKIP_EXIT
    done = run_against(('cpython', 'shmgr'), args)
    bad = done['cpython'][1] + done['shmgr'][1]
    bad += ['a server could not bind the port of the one before it at once (%s)' % line
            for line in done['shmgr'][0].splitlines() if line.startswith('EADDRINUSE ')]
    ref = parse_run(done['cpython'][0])
    got = parse_run(done['shmgr'][0])
    # a class-wide exception: every test of the class, or its setUpClass, fails with the message
    for cls in sorted(n for n in EXCEPTIONS if '.' not in n):
        why, message = EXCEPTIONS[cls]
        mine = dict((n, r) for n, r in got.items() if n.split('.')[0] == cls)
        ref_status = sorted(set(st for n, (st, _) in ref.items() if n.split('.')[0] == cls))
        if not mine and not any(n.split('.')[0] == cls for n in ref):
            continue  # not in this version
        wrong = [n for n, (st, detail) in sorted(mine.items())
                 if st == 'pass' or (message not in detail and n != cls + '.tearDownClass'
                                     and not (cls + '.setUpClass' in mine and st == 'skip'))]
        if wrong or not mine:
            bad.append('%s: listed as needing Python code in the server (%s), so each test must fail with "%s"; '
                       'with shmgr these did not: %s\n%s' % (cls, why, message, ', '.join(wrong) or 'none ran',
                                                             tail(mine.get(wrong[0], ('', ''))[1] if wrong else '')))
        else:
            print('exception %s (every test): fails as listed, with shmgr\'s message (%s; CPython\'s servers: %s)'
                  % (cls, why, '/'.join(ref_status)))
    for name in sorted(set(ref) | set(got)):
        if name.split('.')[0] in EXCEPTIONS:
            continue
        status, _ = ref.get(name, ('missing', ''))
        mine, detail = got.get(name, ('missing', ''))
        if name in EXCEPTIONS:
            why, message = EXCEPTIONS[name]
            if mine == 'pass' or message not in detail:
                bad.append('%s: listed as needing Python code in the server (%s), so it must fail with '
                           '"%s"; with shmgr it ended %s:\n%s' % (name, why, message, mine, tail(detail)))
            else:
                print('exception %s: fails as listed, with shmgr\'s message (%s; CPython\'s servers: %s)'
                      % (name, why, status))
            continue
        if name not in ref:
            if mine not in ('pass', 'skip'):
                bad.append('%s: %s with shmgr (not run with CPython\'s servers):\n%s' % (name, mine, tail(detail)))
            continue
        if status == 'pass' and mine != 'pass':
            bad.append('%s: passes with CPython\'s servers, %s with shmgr:\n%s' % (name, mine, tail(detail)))
        elif status not in ('pass', 'skip'):
            print('note: %s fails with CPython\'s own servers too (%s); shmgr: %s' % (name, status, mine))
    for line in bad:
        print('FAIL: %s' % line)
    tests = [n for n in ref if not n.endswith('Class')]
    npass = lambda rs: sum(1 for st, _ in rs.values() if st == 'pass')
    print('cpython %s (%s): %d tests; CPython\'s servers passed %d, shmgr passed %d (%d listed exceptions)%s' % (
        version, args.start_method, len(tests), npass(ref), npass(got),
        len([n for n in tests if exception_for(n)]), '' if not bad else '; %d problem(s)' % len(bad)))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--compare', action='store_true', help='both backends at once, and the verdict')
    ap.add_argument('--server', choices=('shmgr', 'cpython'), help='one backend, every result shown')
    ap.add_argument('--run', choices=('shmgr', 'cpython'), help=argparse.SUPPRESS)
    ap.add_argument('--start-method', choices=('fork', 'spawn', 'forkserver'), default='fork')
    ap.add_argument('--shmgr', default=os.environ.get('SHMGR_BIN') or os.path.join(REPO, 'shmgr'))
    ap.add_argument('-k', action='append', default=[], help='only tests whose Class.test contains this')
    args = ap.parse_args()
    if args.run:
        return run_tests(args.run, args.start_method, args.k)
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
