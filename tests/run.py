#!/usr/bin/env python3
"""The test runner `make test` calls: python3 tests/run.py [options].

Runs the busted specs (tests/spec/*_spec.lua, one TAP line = one test),
every tests/python/test_*.py with each CPython found (Debian's python3 and
every 3.x under pyenv; one (script, interpreter) pair = one test), and CPython's
own manager tests with Debian's python3 and the oldest and newest pyenv CPython
(--conformance all: every one), twice: tests/cpython/manager_tests.py --compare
(every manager connected to one running server: CPython's and shmgr) and
tests/cpython/own_managers.py --compare (each manager starting a server of its
own: CPython's and shmgr's, through the shmgr package); one test per interpreter
and runner.  A script
that prints "SKIP: reason" and exits 77 is counted as skipped.  The last line
printed is "N passed, N failed" (", N skipped" when some were skipped); the
exit status is 1 if anything failed or nothing ran.

Options:
  -k PATTERN      only tests whose path contains PATTERN (or matches it as a
                  glob); repeatable
  --python PATH   only this interpreter (repeatable)
  --server NAME   backend for the Python scripts: shmgr (default, or
                  $SHMGR_TEST_SERVER) or cpython (CPython's own manager server,
                  the reference the scripts must pass against)
  -j N            parallel jobs (default 4; the scripts mostly wait)
  --timeout S     per-test timeout in seconds (default 120; a script may ask
                  for more with a line "# run.py: timeout S" near its top; busted gets 3x,
                  CPython's manager tests get their own run limit)
  --conformance W some (default), all or none: which interpreters run
                  CPython's own manager tests
  --start-methods M,...  their start methods (default fork; also spawn,
                  forkserver)
"""

import argparse
import concurrent.futures
import fnmatch
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEBIAN_PYTHON = '/usr/bin/python3'
SKIP_EXIT = 77

_print_lock = threading.Lock()


def say(text=''):
    with _print_lock:
        print(text)
        sys.stdout.flush()


class Result(object):
    def __init__(self, name, status, output='', seconds=0.0, verdict=None):
        self.name = name          # e.g. "tests/python/test_queue.py [3.12.1]"
        self.status = status      # PASS, FAIL or SKIP
        self.output = output
        self.seconds = seconds
        self.verdict = verdict    # a line worth showing even when it passed


# --------------------------------------------------------------------------
# Interpreters

def python_version(exe):
    try:
        out = subprocess.run([exe, '-c', 'import platform; print(platform.python_version())'],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if re.match(r'^\d+\.\d+', out) else None


def pyenv_root():
    exe = shutil.which('pyenv')
    if exe:
        try:
            root = subprocess.run([exe, 'root'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  universal_newlines=True, timeout=30).stdout.strip()
            if root and os.path.isdir(root):
                return root
        except (OSError, subprocess.SubprocessError):
            pass
    for root in (os.environ.get('PYENV_ROOT'), os.path.expanduser('~/.pyenv')):
        if root and os.path.isdir(os.path.join(root, 'versions')):
            return root
    return None


def version_key(v):
    return [int(x) if x.isdigit() else 0 for x in re.split(r'[.+-]', v)]


def find_interpreters():
    """[(label, path)] and a list of failures (Debian's python3 missing)."""
    found, missing = [], []
    if os.path.exists(DEBIAN_PYTHON):
        v = python_version(DEBIAN_PYTHON)
        found.append(('%s debian' % (v or '?'), DEBIAN_PYTHON))
    else:
        missing.append(Result('debian python3 (%s)' % DEBIAN_PYTHON, 'FAIL',
                              "Debian's python3 is missing: install package python3"))
    root = pyenv_root()
    pyenv = []
    if root:
        for exe in glob.glob(os.path.join(root, 'versions', '3.*', 'bin', 'python3')):
            v = python_version(exe)
            if v and v.startswith('3.'):
                pyenv.append((v, exe))
    if not pyenv:
        say("skip: no pyenv CPython found; only Debian's python3")
    pyenv.sort(key=lambda p: version_key(p[0]))
    found.extend(pyenv)
    return found, missing


# --------------------------------------------------------------------------
# Running one process with a timeout, killing its whole process group

def run_group(argv, env, timeout, cwd=None):
    start = time.time()
    try:
        proc = subprocess.Popen(argv, cwd=cwd or REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as e:
        return None, 'cannot run %s: %s' % (argv[0], e), 0.0, False
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild outside the group holds the pipe
            proc.kill()
            out = b''
    text = out.decode('utf-8', 'replace') if out else ''
    # whatever the script left behind in its group (children, servers)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    return proc.returncode, text, time.time() - start, timed_out


def script_timeout(script, default):
    """default, or the longer timeout the script asks for ("# run.py: timeout S" in its
    first 4 KB): a script whose full size runs long under make test's parallel jobs."""
    try:
        with open(script) as f:
            head = f.read(4096)
    except OSError:
        return default
    m = re.search(r'^# run\.py: timeout (\d+)\s*$', head, re.M)
    return max(default, float(m.group(1))) if m else default


def run_python(script, label, exe, env, timeout):
    rel = os.path.relpath(script, REPO)
    name = '%s [%s]' % (rel, label)
    rc, out, secs, timed_out = run_group([exe, script], env, timeout)
    if timed_out:
        return Result(name, 'FAIL', out + '\n(killed after the %g s timeout)\n' % timeout, secs)
    if rc == 0:
        return Result(name, 'PASS', out, secs)
    if rc == SKIP_EXIT:
        m = re.search(r'^SKIP: (.*)$', out, re.M)
        return Result(name, 'SKIP', m.group(1) if m else out.strip(), secs)
    return Result(name, 'FAIL', out + '\n(exit status %s)\n' % rc, secs)


CONFORMANCE = os.path.join(HERE, 'cpython', 'manager_tests.py')
OWN_MANAGERS = os.path.join(HERE, 'cpython', 'own_managers.py')


def run_conformance(label, exe, env, method, script=CONFORMANCE):
    """CPython's own manager tests under exe (script: manager_tests.py or own_managers.py),
    with CPython's servers and shmgr."""
    name = '%s [%s%s]' % (os.path.relpath(script, REPO), label, '' if method == 'fork' else ', ' + method)
    rc, out, secs, timed_out = run_group([exe, script, '--compare', '--start-method', method], env, 1200)
    lines = out.strip().splitlines()
    verdict = lines[-1] if lines else ''
    if timed_out:
        return Result(name, 'FAIL', out + '\n(killed after 1200 s)\n', secs)
    if rc == SKIP_EXIT:
        m = re.search(r'^SKIP: (.*)$', out, re.M)
        return Result(name, 'SKIP', m.group(1) if m else out.strip(), secs)
    if rc == 0:
        return Result(name, 'PASS', out, secs, verdict)
    return Result(name, 'FAIL', out + '\n(exit status %s)\n' % rc, secs)


def conformance_interpreters(interps, which):
    """Debian's python3 and the oldest and newest other CPython ('some'), or all."""
    if which == 'all':
        return list(interps)
    debian = [i for i in interps if i[0].endswith('debian')]
    others = [i for i in interps if not i[0].endswith('debian')]
    chosen = debian + ([others[0], others[-1]] if len(others) > 1 else others)
    return [i for i in interps if i in chosen]


# --------------------------------------------------------------------------
# busted (TAP)

def parse_tap(text):
    """[(ok, description, detail lines)] from busted's TAP output; ok is 'skip' for a
    pending test (busted writes "ok N - # SKIP reason")."""
    tests = []
    for line in text.splitlines():
        m = re.match(r'^(not ok|ok)\b\s*\d*\s*-?\s*(.*)$', line)
        if m:
            skip = re.match(r'^# SKIP (.*)$', m.group(2))
            tests.append(['skip' if skip else m.group(1) == 'ok', skip.group(1) if skip else m.group(2), []])
        elif tests and not re.match(r'^\d+\.\.\d+', line):
            tests[-1][2].append(line)
    return tests


def run_busted(specs, timeout, filtered=True):
    """A list of Results, one per TAP test line."""
    lua = shutil.which('lua5.4')
    busted = shutil.which('busted')
    if not lua or not busted:
        return [Result('tests/spec (busted)', 'FAIL',
                       'lua5.4 and busted are needed to run %d spec file(s): apt-get install '
                       'lua5.4 lua-busted' % len(specs))]
    rels = [os.path.relpath(p, REPO) for p in specs]
    if not filtered:
        rels = ['tests/spec']  # the whole directory, as `busted` alone would
    rc, out, secs, timed_out = run_group([lua, busted, '-o', 'TAP'] + rels, dict(os.environ), timeout)
    tests = parse_tap(out)
    results = []
    for ok, desc, detail in tests:
        if ok == 'skip':
            results.append(Result('busted: a pending test', 'SKIP', desc))
        else:
            results.append(Result('busted: %s' % desc, 'PASS' if ok else 'FAIL', '\n'.join(detail)))
    if timed_out:
        results.append(Result('tests/spec (busted)', 'FAIL',
                              out + '\n(killed after the %g s timeout)\n' % timeout, secs))
    elif rc != 0 and all(ok for ok, _, _ in tests):
        results.append(Result('tests/spec (busted)', 'FAIL',
                              out + '\n(busted exited %s with no failing test reported)\n' % rc, secs))
    return results


# --------------------------------------------------------------------------

def matches(path, patterns):
    rel = os.path.relpath(path, REPO)
    return not patterns or any(p in rel or fnmatch.fnmatch(rel, p)
                               or fnmatch.fnmatch(os.path.basename(rel), p) for p in patterns)


def report(result):
    if result.status == 'FAIL':
        say('FAIL %s' % result.name)
        out = result.output.rstrip()
        if out:
            say('\n'.join('    ' + line for line in out.splitlines()))
    elif result.status == 'SKIP':
        say('SKIP %s: %s' % (result.name, result.output))
    else:
        say('PASS %s%s' % (result.name, ': ' + result.verdict if result.verdict else ''))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-k', dest='patterns', action='append', metavar='PATTERN',
                    help='only tests whose path contains PATTERN (repeatable: any of them)')
    ap.add_argument('--python', action='append', metavar='PATH', help='only this interpreter')
    ap.add_argument('--server', choices=('shmgr', 'cpython'),
                    default=os.environ.get('SHMGR_TEST_SERVER') or 'shmgr')
    ap.add_argument('-j', dest='jobs', type=int, default=4)
    ap.add_argument('--timeout', type=float, default=120.0)
    ap.add_argument('--conformance', choices=('some', 'all', 'none'), default='some')
    ap.add_argument('--start-methods', default='fork')
    args = ap.parse_args()

    results = []
    jobs = []  # (callable, args)

    specs = sorted(p for p in glob.glob(os.path.join(HERE, 'spec', '*_spec.lua'))
                   if matches(p, args.patterns))
    if specs and args.server == 'cpython':
        say('skip: busted specs test shmgr itself; not run with --server cpython')
        specs = []

    scripts = sorted(p for p in glob.glob(os.path.join(HERE, 'python', 'test_*.py'))
                     if matches(p, args.patterns))
    conform_scripts = [s for s in (CONFORMANCE, OWN_MANAGERS)
                       if matches(s, args.patterns) and args.conformance != 'none']
    conform = bool(conform_scripts)
    if conform and args.server == 'cpython':
        say("skip: CPython's manager tests compare both servers; not run with --server cpython")
        conform = False
    interps = []
    if scripts or conform:
        if args.python:
            for exe in args.python:
                v = python_version(exe)
                if v is None:
                    results.append(Result('interpreter %s' % exe, 'FAIL', 'cannot run it'))
                else:
                    debian = os.path.realpath(exe) == os.path.realpath(DEBIAN_PYTHON)
                    interps.append(('%s debian' % v if debian else v, exe))
        else:
            interps, missing = find_interpreters()
            results.extend(missing)
        if args.server == 'shmgr' and not os.path.isfile(os.path.join(REPO, 'shmgr')) \
                and not os.environ.get('SHMGR_BIN'):
            say('note: ./shmgr is not built (make); the Python scripts will fail against it')
        say('Python scripts: %d x %d interpreter(s) [%s], server %s'
            % (len(scripts), len(interps), ', '.join(label for label, _ in interps), args.server))
    conform_interps = conformance_interpreters(interps, args.conformance) if conform else []
    if conform_interps:
        say("CPython's manager tests: %s" % ', '.join(label for label, _ in conform_interps))

    env = dict(os.environ)
    env['SHMGR_TEST_SERVER'] = args.server
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env.pop('PYTHONPATH', None)
    env.pop('PYTHONHOME', None)

    # the longest jobs first, so that they do not end the run alone
    for method in args.start_methods.split(','):
        for label, exe in conform_interps:
            for script in conform_scripts:
                jobs.append((run_conformance, (label, exe, env, method, script)))
    if specs:
        jobs.append((run_busted, (specs, args.timeout * 3, bool(args.patterns))))
    # interleave interpreters so that one slow script does not hold a column; the scripts
    # that ask for a longer timeout (the long ones) first
    timeouts = dict((script, script_timeout(script, args.timeout)) for script in scripts)
    for script in sorted(scripts, key=lambda s: timeouts[s] == args.timeout):
        for label, exe in interps:
            jobs.append((run_python, (script, label, exe, env, timeouts[script])))

    for r in results:
        report(r)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(fn, *a) for fn, a in jobs]
        for fut in concurrent.futures.as_completed(futures):
            try:
                got = fut.result()
            except Exception as e:  # a bug in this runner: say it, count it
                got = Result('runner', 'FAIL', 'internal error: %r' % e)
            for r in (got if isinstance(got, list) else [got]):
                results.append(r)
                report(r)

    passed = sum(1 for r in results if r.status == 'PASS')
    failed = [r for r in results if r.status == 'FAIL']
    skipped = sum(1 for r in results if r.status == 'SKIP')
    say()
    if failed:
        say('failed:')
        for r in sorted(failed, key=lambda r: r.name):
            say('  %s' % r.name)
    say('(%.0f s)' % (time.time() - t0))
    summary = '%d passed, %d failed' % (passed, len(failed))
    if skipped:
        summary += ', %d skipped' % skipped
    say(summary)
    return 1 if failed or passed + len(failed) == 0 else 0


if __name__ == '__main__':
    sys.exit(main())
