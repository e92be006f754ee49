"""Compare what a shared container does with what the same Python object does locally.

The container tests (test_list.py, test_dict.py, test_set.py, test_simple_types.py) run
each operation twice: through a proxy, against the server, and on a local object of the
same type in this interpreter, then compare the results (value and type, recursively) or
the exceptions (class and args), and the contents afterwards.  The expectations are
Python's own semantics, so the scripts hold for either backend.

Which server version: SHMGR_TEST_SERVER=cpython runs CPython's server in this same
interpreter, so every message must match exactly.  shmgr answers as CPython 3.13's server
does; with an older client some messages differ only in wording (3.6's "append() takes
exactly one argument" is 3.13's "list.append() takes exactly one argument"), and those are
compared after `canon` maps both to one form.  Differences of behaviour, not wording, are
branched on explicitly by the scripts, with a printed reason.
"""

from __future__ import print_function

import array
import math
import re
import sys

import harness

EMULATED = (3, 13)  # the CPython version whose server shmgr answers like
EXACT = harness.BACKEND == 'cpython' or sys.version_info[:2] >= EMULATED

# Wordings that changed between 3.6 and 3.13, each mapped to one form.
_CANON = [
    (r"\b(list|dict|set|array|Value|Namespace)\.(?=\w+\(\))", ''),   # 3.10+ qualify names
    (r"^wrapper (\w+) doesn't take keyword arguments$", r'wrapper \1() takes no keyword arguments'),
    (r"^(\w+)\(\) takes (at most|at least|exactly) (\d+) (?:keyword )?arguments? \((\d+) given\)$",
     r'\1 expected \2 \3 argument, got \4'),                        # 3.6, 3.7
    (r"expected exactly ", 'expected '),
    (r"(expected (?:at (?:most|least) )?)(\d+) arguments?", r'\1\2 argument'),
    (r"^'\w+' is an invalid keyword argument for this function$", '<keyword refused>'),  # 3.6
    (r"^\w+\(\) does not take keyword arguments$", '<keyword refused>'),  # 3.6
    (r"^\w+\(\) (?:got an unexpected keyword argument '\w+'|takes no keyword arguments)$", '<keyword refused>'),
    (r"^integer argument expected, got float$", "'float' object cannot be interpreted as an integer"),
    (r"^array item must be integer$", "'float' object cannot be interpreted as an integer"),
    (r"^an integer is required \(got type (\w+)\)$", r"'\1' object cannot be interpreted as an integer"),
    (r"^can only assign an iterable$", 'must assign iterable to extended slice'),
    (r"^must use keyword argument for key function$", 'sort() takes no positional arguments'),
    (r"^'(\w+)' is an invalid keyword argument for sort\(\)$", r"sort() got an unexpected keyword argument '\1'"),
    (r"^array indices must be integer$", 'array indices must be integers'),
]


def canon(text):
    if not isinstance(text, str):
        return text
    while True:  # until nothing changes: one rule's output may be another's input
        before = text
        for pat, rep in _CANON:
            text = re.sub(pat, rep, text)
        if text == before:
            return text


same = harness.same


def _is_iterator(x):
    return hasattr(x, '__next__') and iter(x) is x


def outcome(fn):
    """('return', value) or ('raise', class, args); an iterator is read out into
    ('iter', type name, items)."""
    try:
        r = fn()
    except Exception as e:
        return ('raise', type(e), e.args)
    if _is_iterator(r):
        return ('iter', type(r).__name__, list(r))
    return ('return', r)


def show(o):
    if o[0] == 'raise':
        return '%s%r' % (o[1].__name__, o[2])
    return repr(o[1:])[:300]


def args_match(got, want, exact=None):
    exact = EXACT if exact is None else exact
    if exact:
        return same(got, want)
    if len(got) != len(want):
        return False
    return all(same(canon(x), canon(y)) if isinstance(x, str) else same(x, y) for x, y in zip(got, want))


def compare(what, got, want, exact=None, cmp=None):
    """Record a failure unless got and want (outcomes) agree."""
    if got[0] != want[0]:
        return harness.fail('%s: got %s, want %s' % (what, show(got), show(want)))
    if got[0] == 'raise':
        ok = got[1] is want[1] and args_match(got[2], want[2], exact)
    elif got[0] == 'iter':
        ok = got[1] == want[1] and same(got[2], want[2])
    else:
        ok = (cmp or same)(got[1], want[1])
    return harness.check(ok, '%s: got %s, want %s' % (what, show(got), show(want)))


def check(what, remote, local, exact=None, cmp=None):
    """Run remote() and local(); they must agree. Returns the remote outcome."""
    got, want = outcome(remote), outcome(local)
    compare(what, got, want, exact, cmp)
    return got


def call(proxy, name, args=(), kwds=None):
    """proxy.name(*args, **kwds) through the client's own proxy method when its class has
    one, else through _callmethod (methods newer than the client's proxy class)."""
    kwds = kwds or {}
    if any(name in vars(cls) for cls in type(proxy).__mro__ if cls is not object):
        return lambda: getattr(proxy, name)(*args, **kwds)
    return lambda: proxy._callmethod(name, tuple(args), kwds)


def exception_line(e):
    """The last line of a traceback for exception e ("KeyError: 'x'")."""
    name = type(e).__name__
    text = str(e)
    return '%s: %s' % (name, text) if text else name


def remote_error_names(what, e, want_exc, exact=None):
    """A RemoteError (a #TRACEBACK) must end with want_exc's exception line."""
    from multiprocessing.managers import RemoteError
    if not harness.check(isinstance(e, RemoteError), '%s: raised %r, want RemoteError' % (what, e)):
        return
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and ln.strip('-')]
    want = exception_line(want_exc)
    exact = EXACT if exact is None else exact
    last = lines[-1] if lines else ''
    harness.check(last == want or (not exact and canon(last.split(': ', 1)[-1]) == canon(want.split(': ', 1)[-1])),
                  '%s: traceback ends %r, want %r' % (what, last, want))


def check_exposed(srv, proxy, want):
    """On shmgr, get_methods of proxy's object is want (what create told the client); the
    scripts give CPython's server their own registrations, so only shmgr's list is checked."""
    if srv.backend != 'shmgr':
        return
    from multiprocessing.managers import Token, dispatch
    conn = harness.raw_client(srv)
    try:
        got = dispatch(conn, None, 'get_methods', (Token(proxy._token.typeid, srv.address, proxy._token.id),))
    finally:
        conn.close()
    harness.eq(tuple(got), tuple(want), 'methods exposed by typeid %r' % proxy._token.typeid)
