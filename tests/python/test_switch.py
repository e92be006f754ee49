"""Switching a real program to shmgr by its import: tests/programs/wordcount.py, written for
multiprocessing.Manager() (a Pool of workers adding into a shared dict under a shared Lock and
a shared Value; a producer/consumer pipeline on a JoinableQueue and a result Queue), says only
`from shmgr import Manager`. It runs unchanged with each start method (fork, spawn,
forkserver), its manager a shmgr server the package starts, and so does a copy whose import
is `from multiprocessing import Manager`; both must print the counts of the text it
generates, counted here with collections.Counter.

With SHMGR_TEST_SERVER=cpython only the copy runs (the reference of the expectations)."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import importlib.util  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

PROGRAM = os.path.join(harness.REPO, 'tests', 'programs', 'wordcount.py')
SHMGR_IMPORT = 'from shmgr import Manager\n'
STOCK_IMPORT = 'from multiprocessing import Manager\n'
WORDS, SEED = 20000, 7
TIMEOUT = 60


def stock_copy(tmpdir):
    """The program with multiprocessing's Manager: its one import line changed."""
    with open(PROGRAM) as f:
        lines = f.readlines()
    harness.eq(lines.count(SHMGR_IMPORT), 1, 'the program imports Manager from shmgr, once')
    path = os.path.join(tmpdir, 'wordcount_stock.py')
    with open(path, 'w') as f:
        f.write(''.join(STOCK_IMPORT if line == SHMGR_IMPORT else line for line in lines))
    return path


def expected(stock):
    """Every word's count in the text the program generates, counted here."""
    spec = importlib.util.spec_from_file_location('wordcount_stock', stock)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lines = mod.generate(WORDS, SEED)
    return Counter(w for line in lines for w in line.split()), len(lines)


def run(program, method, what, env, cwd):
    """The program's JSON, or None (a failure recorded)."""
    argv = [sys.executable, program, '--start-method', method, '--words', str(WORDS), '--seed', str(SEED)]
    t0 = time.time()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        harness.fail('%s: no result within %d s' % (what, TIMEOUT))
        return None
    out, err = proc.stdout.decode('utf-8', 'replace'), proc.stderr.decode('utf-8', 'replace')
    if not harness.check(proc.returncode == 0, '%s: exit status %s; stderr:\n%s' % (what, proc.returncode, err[-3000:])):
        return None
    harness.check(not err.strip(), '%s: wrote to stderr:\n%s' % (what, err[-3000:]))
    harness.note('%s: %.1f s' % (what, time.time() - t0))
    try:
        return json.loads(out)
    except ValueError:
        harness.fail('%s: not one JSON object: %r' % (what, out[-500:]))
        return None


def verify(got, want, nlines, what):
    harness.eq(got['lines'], nlines, '%s: lines' % what)
    harness.eq(got['total'], sum(want.values()), '%s: the shared Value, the total of words' % what)
    harness.eq(got['pool'], dict(want), '%s: the Pool\'s shared dict of counts' % what)
    harness.eq(got['pipeline'], dict(want), '%s: the pipeline\'s counts' % what)


def main():
    if sys.version_info < (3, 6):
        harness.skip('needs Python 3.6')
    tmpdir = tempfile.mkdtemp(prefix='shmgr-switch-')
    try:
        stock = stock_copy(tmpdir)
        want, nlines = expected(stock)
        env = dict(os.environ)
        env['PYTHONPATH'] = os.path.join(harness.REPO, 'python')
        env.setdefault('SHMGR_BIN', os.path.join(harness.REPO, 'shmgr'))
        for method in ('fork', 'spawn', 'forkserver'):
            got = run(stock, method, 'multiprocessing.Manager (%s)' % method, env, tmpdir)
            if got:
                verify(got, want, nlines, 'multiprocessing.Manager (%s)' % method)
            if harness.BACKEND == 'shmgr':
                got = run(PROGRAM, method, 'shmgr.Manager (%s)' % method, env, tmpdir)
                if got:
                    verify(got, want, nlines, 'shmgr.Manager (%s)' % method)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
