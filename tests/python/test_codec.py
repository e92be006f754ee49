#!/usr/bin/env python3
"""test_codec.py: checks shmgr's pickle codec (build/pickle_roundtrip) against this Python's own pickle.

Runs under any CPython 3.6+. Exits 0 when every check passes, 1 (listing the failures) otherwise.
PICKLE_ROUNDTRIP=<path> tests another build of the tool (e.g. a sanitizer build).
"""
import binascii
import collections
import datetime
import decimal
import fractions
import io
import os
import pickle
import pickletools
import queue
import random
import struct
import subprocess
import sys
import tempfile

from multiprocessing.managers import Token
from multiprocessing.reduction import ForkingPickler

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.environ.get("PICKLE_ROUNDTRIP") or os.path.join(ROOT, "build", "pickle_roundtrip")
PROTOCOLS = list(range(0, pickle.HIGHEST_PROTOCOL + 1))

failures = []
checks = [0]


def check(ok, what):
    checks[0] += 1
    if not ok:
        failures.append(what)


# ---- the tool: frames in, frames out ----

def run_tool(blobs, want_repr=False):
    """Send every pickle as one frame; returns (answers, error lines). An answer is the
    re-encoded pickle (or repr text), or None where the tool reported a decode error."""
    data = b"".join(struct.pack(">I", len(b)) + b for b in blobs)
    args = [TOOL] + (["--repr"] if want_repr else [])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(data)
    answers, i = [], 0
    while i + 4 <= len(out):
        n = struct.unpack(">I", out[i:i + 4])[0]
        answers.append(out[i + 4:i + 4 + n] if n else None)
        i += 4 + n
    errors = err.decode("utf-8", "replace").splitlines()
    if proc.returncode != 0 or len(answers) != len(blobs) or i != len(out):
        print("pickle_roundtrip failed: exit %r, %d answers for %d pickles"
              % (proc.returncode, len(answers), len(blobs)))
        print("\n".join(errors[-30:]))
        sys.exit(1)
    return answers, errors


def text(out):
    """A repr answer as str (None stays None; undecodable bytes show as their repr)."""
    if out is None:
        return None
    try:
        return out.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return repr(out)


def fp_dumps(obj):
    return bytes(ForkingPickler.dumps(obj))


# ---- comparing values: types, contents, and shared structure ----

def same(a, b, seen=None):
    """Structural equality that also requires equal types, NaN == NaN, and that user objects
    (which may lack __eq__) have equal state."""
    if seen is None:
        seen = {}
    key = (id(a), id(b))
    if key in seen:
        return True
    seen[key] = True
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (a != a and b != b) or (a == b and str(a) == str(b))
    if isinstance(a, BaseException):
        return same(a.args, b.args, seen) and same(vars(a), vars(b), seen)
    if isinstance(a, (list, tuple)):
        if len(a) != len(b) or not all(same(x, y, seen) for x, y in zip(a, b)):
            return False
        return same(getattr(a, "__dict__", None), getattr(b, "__dict__", None), seen)
    if isinstance(a, dict):
        if list(a.keys()) != list(b.keys()):
            return False
        if not all(same(a[k], b[k], seen) for k in a):
            return False
        if isinstance(a, collections.defaultdict) and a.default_factory is not b.default_factory:
            return False
        return same(getattr(a, "__dict__", None), getattr(b, "__dict__", None), seen)
    if isinstance(a, (set, frozenset, str, bytes, bytearray, int, type(None))):
        return a == b
    if type(a).__eq__ is object.__eq__:
        slots = [s for c in type(a).__mro__ for s in getattr(c, "__slots__", ())]
        return (same(getattr(a, "__dict__", None), getattr(b, "__dict__", None), seen) and
                all(same(getattr(a, s, None), getattr(b, s, None), seen) for s in slots))
    return a == b


# ---- what is pickled ----

class Plain(object):
    def __init__(self):
        self.x = 1
        self.items = [1, "two", (3.0,)]


class Slotted(object):
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = "alpha"
        self.b = [1, 2]


class WithReduce(object):
    def __init__(self, n, extra=None):
        self.n = n
        self.extra = extra

    def __reduce__(self):
        return (WithReduce, (self.n,), {"extra": self.extra})


class MyList(list):
    pass


class MyDict(dict):
    pass


class MyError(Exception):
    pass


def plain_values():
    """Values the server holds as its own kinds, paired with a label."""
    big = [(i, "x" * 30 + str(i)) for i in range(40)]
    ints = [0, 1, -1, 255, -255, 256, -256, 65535, -65535, 65536, 2 ** 31 - 1, 2 ** 31, -2 ** 31,
            -2 ** 31 - 1, 2 ** 63 - 1, -2 ** 63, 2 ** 63, 2 ** 64, -2 ** 64, 10 ** 100, -(10 ** 100),
            2 ** 2048 + 12345, -(2 ** 2047)]
    floats = [0.0, -0.0, 1.0, -1.5, 0.1, 1e300, -1e-300, 1e16, 1e15, 1e-5, 1e-4, 123456789012345678.0,
              float("inf"), float("-inf"), float("nan"), 5e-324, 2.0 ** 53 + 2]
    strs = ["", "a", "it's", 'say "hi"', "both ' and \"", "tab\tnew\nline\r\x00\x7f\\",
            "h\xe9llo w\xf6rld \u2713 \u65e5\u672c \U0001f600", "x" * 300, "y" * 70000, "\u0100" * 300]
    try:
        pickle.dumps("\ud800", 4)
        strs.append("lone \ud800 surrogate")
    except Exception:
        pass
    byts = [b"", b"abc", b"it's", bytes(range(256)), b"z" * 300, b"w" * 70000]
    shared = [1, 2]
    rec = []
    rec.append(rec)
    recd = {}
    recd["self"] = recd
    vals = [None, True, False] + ints + floats + strs + byts + [
        bytearray(), bytearray(b"abc"), bytearray(b"q" * 70000),
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),), ("a", ("b", ("c",))),
        [], [1], [1, [2, [3, []]]], list(range(1000)), list(range(1001)), list(range(2500)),
        {}, {"a": 1}, {"a": [1, {"b": (1, 2)}], 2: {3, 4}, (1, "k"): None, 1.5: b"f"},
        dict((i, i) for i in range(1000)), dict((str(i), i) for i in range(2001)), dict(big),
        set(), {1}, {1, 2, 3}, set(range(1000)), set(range(1001)), {"a", (1, 2), frozenset([3])},
        frozenset(), frozenset([1]), frozenset([1, "a", (1, 2)]), frozenset(range(1500)),
        [set([1]), frozenset([2]), {"k": frozenset()}],
        rec, recd, (shared, shared), [shared, (shared,), {"s": shared}],
        {1: "int", "1": "str", b"1": "bytes", (1,): "tuple", None: "none", 2.5: "float"},
    ]
    return vals


def object_values():
    """Values the server keeps as opaque objects: they must come back as they went in."""
    p = Plain()
    lst = MyList([1, 2, 3])
    lst.attr = "on list"
    dct = MyDict(a=1)
    dct.attr = "on dict"
    dd = collections.defaultdict(list)
    dd["k"].append(1)
    vals = [p, Slotted(), WithReduce(3, extra=[1, 2]), lst, dct,
            collections.OrderedDict([("b", 1), ("a", 2)]), dd, collections.Counter("abracadabra"),
            datetime.datetime(2024, 5, 6, 7, 8, 9, 123456), datetime.date(2020, 1, 1),
            datetime.timedelta(days=3, seconds=7),
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            decimal.Decimal("1.50"), fractions.Fraction(1, 3), complex(1, 2), slice(1, 10, 2), range(1, 10, 3),
            ValueError("bad", 1), KeyError("x"), MyError("mine"), queue.Empty(), StopIteration(),
            Token("Iterator", ("127.0.0.1", 5000), "7f1"),
            [p, p, (p,)], {"obj": Plain(), "list": lst}, list(range(3000)) + [Plain()]]
    if hasattr(BaseException, "add_note"):
        e = ValueError("noted")
        e.add_note("a note")
        vals.append(e)
    return vals


def dumps_all(obj):
    """(label, pickle) for ForkingPickler and every protocol this Python can use for obj."""
    out = [("ForkingPickler", fp_dumps(obj))]
    for proto in PROTOCOLS:
        try:
            out.append(("protocol %d" % proto, pickle.dumps(obj, proto)))
        except Exception:
            pass  # e.g. __slots__ without __getstate__ below protocol 2 on old Pythons
    return out


def short(obj):
    r = repr(obj)
    return r if len(r) < 70 else r[:67] + "..."


# ---- checks ----

def check_roundtrips(values, kind):
    cases = []
    for v in values:
        for label, blob in dumps_all(v):
            cases.append((v, label, blob))
    answers, _ = run_tool([c[2] for c in cases])
    identical = 0
    canonical = 0
    for (v, label, blob), out in zip(cases, answers):
        what = "%s %s (%s)" % (kind, short(v), label)
        if out is None:
            check(False, "%s: the tool refused it" % what)
            continue
        try:
            back = pickle.loads(out)
        except Exception as exc:
            check(False, "%s: Python cannot load the re-encoding: %r" % (what, exc))
            continue
        check(same(v, back), "%s: loads back as %s" % (what, short(back)))
        if blob[:2] in (b"\x80\x04", b"\x80\x05"):
            canonical += 1
            identical += out == blob
    return identical, canonical


def check_plain_bytes(values):
    """Plain values re-encode to exactly what CPython writes at protocol 4 (and 5)."""
    if sys.version_info < (3, 7):
        return  # 3.6 frames differently (tiny frames, big payloads inside); the appendix check still runs
    protos = [p for p in (4, 5) if p <= pickle.HIGHEST_PROTOCOL]
    cases = [(v, p, pickle.dumps(v, p)) for v in values for p in protos]
    answers, _ = run_tool([c[2] for c in cases])
    for (v, p, blob), out in zip(cases, answers):
        check(out == blob, "bytes of %s at protocol %d differ:\n  cpython %s\n  shmgr   %s" % (
            short(v), p, binascii.hexlify(blob[:120]), binascii.hexlify((out or b"")[:120])))


def check_shared_structure():
    shared = [1, 2]
    rec = []
    rec.append(rec)
    t = ([],)
    t[0].append(t)
    blobs = [fp_dumps((shared, shared)), fp_dumps(rec), fp_dumps(t)]
    blobs += [pickle.dumps((shared, shared), p) for p in PROTOCOLS]
    answers, _ = run_tool(blobs)
    if None in answers:
        check(False, "shared structure: the tool refused a pickle")
        return
    a = pickle.loads(answers[0])
    check(a[0] is a[1], "the list shared in a tuple is no longer shared")
    r = pickle.loads(answers[1])
    check(r[0] is r, "a list containing itself no longer does")
    c = pickle.loads(answers[2])
    check(c[0][0] is c, "a tuple containing itself through a list no longer does")
    if sys.version_info >= (3, 7):  # 3.6 frames even tiny pickles; CPython 3.7 set the 4-byte minimum
        check(answers[2] == pickle.dumps(t, 4), "a recursive tuple re-encodes differently from CPython")
    for out in answers[3:]:
        x = pickle.loads(out)
        check(x[0] is x[1], "sharing lost at some protocol")


def check_repr(values):
    floats = [struct.unpack("<d", struct.pack("<Q", random.getrandbits(64)))[0] for _ in range(3000)]
    floats += [2.0 ** k for k in range(-1074, 1024)]
    floats += [random.random() * 10 ** random.randint(-30, 30) for _ in range(2000)]
    floats += [0.1 * k for k in range(100)] + [float(k) / 7 for k in range(100)]
    values = list(values) + floats
    answers, _ = run_tool([fp_dumps(v) for v in values], want_repr=True)
    for v, out in zip(values, answers):
        want = repr(v)
        got = text(out)
        check(got == want, "repr of %s: shmgr %s" % (short(v), short(got)))
    exc = [KeyError("x"), ValueError("a", 1), queue.Empty(), IndexError("list index out of range")]
    answers, _ = run_tool([fp_dumps(v) for v in exc], want_repr=True)
    for v, out in zip(exc, answers):
        want = "%s(%s)" % (type(v).__name__, ", ".join(repr(a) for a in v.args))  # 3.7+ (3.6 adds a comma)
        check(text(out) == want, "repr of %s: shmgr %s" % (want, text(out)))


APPENDIX = [  # PROTOCOL.md's appendix messages, as CPython 3.8-3.13 write them
    "8004953f00000000000000288c0437663361948c0370757494288c0568656c6c6f944b01474004000000000000430178944e"
    "5d94284b014b02657d948c0161944b017374947d9474942e",
    "8004950e000000000000008c072352455455524e944e86942e",
    "80049522000000000000008c06234552524f52948c065f7175657565948c05456d70747994939429529486942e",
    "8004952c000000000000008c06234552524f52948c086275696c74696e73948c084b65794572726f729493948c017894"
    "8594529486942e",
    "80049568000000000000008c062350524f5859948c085f5f6e6578745f5f9485948c186d756c746970726f636573736"
    "96e672e6d616e6167657273948c05546f6b656e9493942981948c084974657261746f72948c093132372e302e302e31"
    "944d881386948c0337663194879462869486942e",
]


def check_appendix():
    blobs = [binascii.unhexlify(h) for h in APPENDIX]
    answers, _ = run_tool(blobs)
    for blob, out in zip(blobs, answers):
        check(out == blob, "appendix message re-encodes differently: %s" % binascii.hexlify(out or b""))
    if sys.version_info >= (3, 8):
        msgs = [("7f3a", "put", ("hello", 1, 2.5, b"x", None, [1, 2], {"a": 1}), {}), ("#RETURN", None),
                ("#ERROR", queue.Empty()), ("#ERROR", KeyError("x")),
                ("#PROXY", (("__next__",), Token("Iterator", ("127.0.0.1", 5000), "7f1")))]
        for m, blob in zip(msgs, blobs):
            check(fp_dumps(m) == blob, "this Python writes %r differently from the appendix" % (m,))


def deep_memo_chain(n):
    """A list nested n deep through memo references while the stack stays shallow."""
    out = [b"\x80\x04]\x94"]
    for i in range(1, n):
        get = b"h" + bytes([i - 1]) if i - 1 < 256 else b"j" + struct.pack("<I", i - 1)
        out.append(b"]" + get + b"a\x940")
    out.append(b"j" + struct.pack("<I", n - 1) + b".")
    return b"".join(out)


def check_malformed():
    samples = [fp_dumps(("7f3a", "put", ("hello", 1, 2.5, b"x", None, [1, 2], {"a": 1}), {})),
               pickle.dumps([Plain(), {1, 2}, 10 ** 30], 2), pickle.dumps({"a": (1, "b")}, 0)]
    cases = []
    for s in samples:
        cases += [("truncated at %d of %d" % (i, len(s)), s[:i]) for i in range(len(s))]
    deep = b"\x80\x04" + b"]" * 2000 + b"a" * 1999 + b"."
    cases += [
        ("bad opcode", b"\x80\x04\xff."),
        ("GET of a missing memo key", b"\x80\x04h\x05."),
        ("LONG_BINGET of a missing memo key", b"\x80\x04j\xff\xff\xff\xff."),
        ("text GET of a missing memo key", b"g7\n."),
        ("STOP on an empty stack", b"."),
        ("STOP above a MARK", b"(."),
        ("2000-deep list", deep),
        ("2000 MARKs", b"(" * 2000 + b"N."),
        ("2000 nested TUPLE1", b"\x80\x04N" + b"\x85" * 2000 + b"."),
        ("2000-deep list through the memo", deep_memo_chain(2000)),
        ("unhashable dict key", b"\x80\x04}]K\x01s."),
        ("unhashable key in SETITEMS", b"\x80\x04}(K\x01K\x02]K\x03u."),
        ("unhashable set member", b"\x80\x04\x8f(]\x90."),
        ("unhashable frozenset member", b"\x80\x04(}\x91."),
        ("unhashable member of builtins.set()", b"\x80\x03cbuiltins\nset\n]]a\x85R."),
        ("PERSID", b"Pfoo\n."),
        ("BINPERSID", b"\x80\x04K\x01Q."),
        ("EXT1", b"\x80\x04\x82\x01."),
        ("EXT2", b"\x80\x04\x83\x01\x00."),
        ("EXT4", b"\x80\x04\x84\x01\x00\x00\x00."),
        ("NEXT_BUFFER", b"\x80\x05\x97."),
        ("READONLY_BUFFER", b"\x80\x05C\x01x\x98."),
        ("trailing bytes after STOP", b"\x80\x04N.N"),
        ("APPEND to a tuple", b"\x80\x04)K\x01a."),
        ("SETITEM on a list", b"\x80\x04]K\x01K\x02s."),
        ("BUILD on a dict", b"\x80\x04}}b."),
        ("STACK_GLOBAL of ints", b"\x80\x04K\x01K\x02\x93."),
        ("APPENDS without MARK", b"\x80\x04]e."),
        ("odd SETITEMS", b"\x80\x04}(K\x01u."),
        ("huge BINUNICODE8 length", b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff."),
        ("huge BINBYTES8 length", b"\x80\x04\x8e\xfe\xff\xff\xff\xff\xff\xff\xff."),
        ("huge FRAME length", b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN."),
        ("negative LONG4 length", b"\x80\x04\x8b\xff\xff\xff\xffN."),
        ("negative BINSTRING length", b"T\xff\xff\xff\xffN."),
        ("huge LONG_BINPUT key", b"\x80\x04Nr\xff\xff\xff\xff."),
        ("invalid UTF-8", b"\x80\x04\x8c\x02\xc3\x28."),
        ("unsupported protocol", b"\x80\x07N."),
        ("unquoted STRING", b"Sabc\n."),
        ("bad INT text", b"Iabc\n."),
        ("truncated LONG1", b"\x80\x02\x8a\x05\x01."),
        ("POP on an empty stack", b"0N."),
        ("OBJ without a class", b"(o."),
        ("a chain nested 2,000 deep by filling lists after they were fetched again", filled_chain(20, 100)),
        ("a cycle in a chain, 1001 deep", cycle_in_chain(500, 500)),
    ]
    answers, errors = run_tool([c[1] for c in cases])
    for (what, _), out in zip(cases, answers):
        check(out is None, "malformed pickle accepted: %s" % what)
    check(len(errors) == sum(1 for a in answers if a is None), "not one error line per refused pickle")
    check(all(e.startswith("pickle: ") and "\n" not in e for e in errors), "error lines are not 'pickle: ...'")
    text = "\n".join(errors)
    check("TypeError: unhashable type: 'list'" in text, "no TypeError message for an unhashable key")
    check("nesting deeper than 1000" in text, "no nesting-limit message")
    check("unknown opcode 0xff at offset 2" in text, "no unknown-opcode message")
    # 500 tuples around a list that holds 499 tuples around itself: 1000 deep, though a count
    # that goes round the cycle once more makes it 1001 (found by fuzzing: shmgr's own
    # encoding of a value it had accepted was refused)
    cycle = cycle_in_chain(500, 499)
    ok = [b"\x80\x04" + b"]" * 999 + b"a" * 998 + b".", b"\x80\x04N" + b"\x85" * 999 + b".", deep_memo_chain(999),
          cycle]
    answers, _ = run_tool(ok)
    check(None not in answers, "a 999-deep value was refused under a limit of 1000")


def cycle_in_chain(m, n):
    """m tuples around a list that holds n tuples around itself: m + n + 1 deep."""
    return b"\x80\x04]\x94h\x00" + b"\x85" * n + b"a" + b"\x85" * m + b"."


def filled_chain(k, n):
    """k empty lists; then list i-1 gets n tuples around list i, for i from k-1 down: each step
    looks shallow when it is built, the whole is k * (n + 1) deep."""
    p = b"\x80\x04"
    for _ in range(k):
        p += b"]\x940"  # EMPTY_LIST, MEMOIZE, POP
    for i in range(k - 1, 0, -1):
        p += b"j" + struct.pack("<I", i - 1) + b"j" + struct.pack("<I", i) + b"\x85" * n + b"a0"
    return p + b"j" + struct.pack("<I", 0) + b"."


def fragment(v):
    """The opcodes that push v (protocol 3, so no frames), to splice into a hand-made pickle."""
    return pickle.dumps(v, 3)[2:-1]


def check_semantics():
    """Python's == and hash inside dicts and sets, on keys no Python pickler would write twice."""
    def dict_of(pairs):
        return b"\x80\x03}(" + b"".join(fragment(k) + fragment(v) for k, v in pairs) + b"u."

    def set_of(items):
        return b"\x80\x04\x8f(" + b"".join(fragment(x) for x in items) + b"\x90."

    nan = b"G\x7f\xf8\x00\x00\x00\x00\x00\x00"
    cases = [
        (dict_of([(1, "a"), (1.0, "b"), (True, "c")]), "{1: 'c'}"),
        (set_of([1, 1.0, True, 0, -0.0, False]), "{1, 0}"),
        (set_of([2 ** 53 + 1, float(2 ** 53)]), "{9007199254740993, 9007199254740992.0}"),
        (set_of([2 ** 63, 2.0 ** 63, -2 ** 63, -2.0 ** 63]), "{9223372036854775808, -9223372036854775808}"),
        (set_of([2 ** 1000, 2.0 ** 1000, 10 ** 30, 1e30]), "{%d, %d, 1e+30}" % (2 ** 1000, 10 ** 30)),
        (set_of([float("inf"), float("-inf"), 1e308]), "{inf, -inf, 1e+308}"),
        (b"\x80\x04\x8f(" + nan + nan + b"\x90.", "{nan, nan}"),
        (b"\x80\x04\x8f(" + nan + b"\x94h\x00\x90.", "{nan}"),
        (set_of(["a", b"a", (1, 2), (1.0, 2), frozenset([1, 2]), frozenset([2.0, 1])]),
         "{'a', b'a', (1, 2), frozenset({1, 2})}"),
        (set_of([(), ((),), None, "", b""]), "{(), ((),), None, '', b''}"),
        (dict_of([((1, (2, 3)), 1), ((1.0, (2, 3.0)), 2)]), "{(1, (2, 3)): 2}"),
        (b"\x80\x03cbuiltins\nset\n](" + b"".join(fragment(x) for x in [3, 1, 3.0, 2]) + b"e\x85R.", "{3, 1, 2}"),
        (b"\x80\x02c__builtin__\nfrozenset\n]" + fragment(1) + b"a\x85R.", "frozenset({1})"),
        (b"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xbf\xc3\xa9X\x06\x00\x00\x00latin1\x86R.",
         "b'\\xff\\xe9'"),
    ]
    answers, _ = run_tool([c[0] for c in cases], want_repr=True)
    for (blob, want), out in zip(cases, answers):
        got = text(out)
        check(got == want, "semantics: %s gives %s, not %s" % (binascii.hexlify(blob[:40]), got, want))
    bad = [dict_of([(bytearray(b"x"), 1)]), set_of([[1]]), dict_of([((1, [2]), 1)]), set_of([{}]), set_of([set()])]
    answers, errors = run_tool(bad)
    check(answers == [None] * len(bad), "an unhashable key was accepted")
    for word in ("bytearray", "list", "dict", "set"):
        check(any("unhashable type: '%s'" % word in e for e in errors), "no message naming unhashable %s" % word)


# ---- what a pickle does for its effects: calls whose result it drops, fills after use ----

def u(text):
    """SHORT_BINUNICODE text (protocol 4 opcodes for hand-made pickles)."""
    b = text.encode("utf-8")
    return b"\x8c" + bytes([len(b)]) + b


def g4(module, name):
    return u(module) + u(name) + b"\x93"


def setattr_call(target, name, value):
    """builtins.setattr(target, name, value) by REDUCE: a call made for its effect."""
    return g4("builtins", "setattr") + b"(" + target + u(name) + value + b"tR"


def set_state(obj, state):
    """A state_setter (protocol 5 __reduce__ form, Python 3.8+): the pickle calls it, then POPs."""
    obj.__dict__.update(state)
    obj.set_by = "set_state"


class WithSetter(object):
    def __init__(self, v):
        self.v = v

    def __reduce__(self):
        return (WithSetter, (0,), {"v": self.v}, None, None, set_state)

    def __repr__(self):
        return "WithSetter(%r)" % (vars(self),)


def check_effects():
    ns = g4("types", "SimpleNamespace") + b")\x81\x94"  # SimpleNamespace(), memoized as 0
    one, two = b"K\x01", b"K\x02"
    get0 = b"h\x00"
    cases = [
        ("a call after the object, its result POPped", ns + setattr_call(get0, "x", one) + b"0"),
        ("two effects dropped by POP_MARK", ns + b"(" + setattr_call(get0, "x", one) +
         setattr_call(get0, "y", two) + b"1"),
        ("DUP of the object", ns + b"2" + setattr_call(get0, "x", one) + b"0\x86"),
        ("an effect left under the result at STOP", ns + setattr_call(get0, "x", one) + get0),
        ("an effect first, with no object under it", setattr_call(ns, "x", one) + b"0" + get0),
        ("an effect stored in a dict, then replaced", ns + b"}" + u("k") + setattr_call(get0, "x", one) +
         b"s" + u("k") + two + b"s\x86"),
        ("a dict filled after a call copied it",
         b"}\x94" + u("a") + one + b"s0" + g4("collections", "OrderedDict") + get0 + b"\x85R" +
         get0 + u("b") + two + b"s\x86"),
        ("a list filled after a call copied it",
         b"]\x94" + one + b"a0" + g4("builtins", "tuple") + get0 + b"\x85R" + get0 + two + b"a\x86"),
    ]
    blobs = [b"\x80\x04" + body + b"." for _, body in cases]
    names = [c[0] for c in cases]
    if sys.version_info >= (3, 8):
        for proto in PROTOCOLS:
            blobs.append(pickle.dumps([WithSetter(5), WithSetter(6)], proto))
            names.append("state_setter, protocol %d" % proto)
    answers, _ = run_tool(blobs)
    for name, blob, out in zip(names, blobs, answers):
        want = pickle.loads(blob)
        if out is None:
            check(False, "effects: %s: the tool refused it" % name)
            continue
        back = pickle.loads(out)
        check(same(want, back), "effects: %s: %r comes back as %r" % (name, want, back))
        if name.startswith("DUP"):
            check(back[0] is back[1], "effects: %s: no longer one object" % name)
    # the call itself is kept once: unpickling the re-encoding calls setattr as often
    out = answers[0]
    check(out is not None and out.count(b"setattr") == 1 and out.count(b"SimpleNamespace") == 1,
          "effects: the re-encoding names setattr and SimpleNamespace once each")
    # a call dropped with no object it could travel with is refused, saying so
    lost = b"\x80\x04}\x94" + g4("builtins", "getattr") + get0 + u("update") + b"\x86R}" + u("a") + one + \
        b"s\x85R0."
    answers, errors = run_tool([lost])
    check(answers == [None], "effects: a dropped call with nothing to go with is refused")
    check(any("side effects" in e for e in errors), "effects: the refusal says why: %r" % errors)


def globals_in(blob):
    """The names a pickle refers to (read with pickletools only: nothing is loaded)."""
    names, strings = [], []
    for op, arg, _ in pickletools.genops(blob):
        if op.name in ("GLOBAL", "INST"):
            names.append(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            names.append("%s.%s" % (strings[-2], strings[-1]))
        elif isinstance(arg, str):
            strings.append(arg)
    return names


def check_nothing_runs():
    tmp = tempfile.mkdtemp()
    marker = os.path.join(tmp, "executed")
    cmd = ("touch " + marker).encode()
    code = ("open(%r, 'w').close()" % marker).encode()
    unicode_cmd = b"V" + cmd + b"\n"
    cases = [
        ("os.system via REDUCE", b"cos\nsystem\n(" + unicode_cmd + b"tR.", ["os.system"]),
        ("posix.system via STACK_GLOBAL",
         b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd + b"\x85R.", ["posix.system"]),
        ("builtins.eval via REDUCE", b"c__builtin__\neval\n(V" + code + b"\ntR.", ["builtins.eval"]),
        ("os.system via INST", b"(" + unicode_cmd + b"ios\nsystem\n.", ["os.system"]),
        ("os.system via OBJ", b"(cos\nsystem\n" + unicode_cmd + b"o.", ["os.system"]),
        ("subprocess.Popen via NEWOBJ", b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93](\x8c\x05touch\x8c" +
         bytes([len(marker)]) + marker.encode() + b"e\x85\x81.", ["subprocess.Popen"]),
        ("subprocess.Popen via NEWOBJ_EX", b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93)}\x8c\x04args\x8c" +
         bytes([len(cmd)]) + cmd + b"s\x92.", ["subprocess.Popen"]),
        ("BUILD with a state for __setstate__",
         b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c" + bytes([len(code)]) + code +
         b"\x85R}\x8c\x0c__setstate__\x8c\x08builtins\x8c\x04exec\x93sb.", ["builtins.eval", "builtins.exec"]),
    ]
    answers, errors = run_tool([c[1] for c in cases])
    check(not os.path.exists(marker), "a pickle ran code: %s exists" % marker)
    for (what, _, names), out in zip(cases, answers):
        if out is None:
            check(False, "%s: refused (%s)" % (what, errors))
            continue
        try:
            pickletools.dis(out, out=io.StringIO())
        except Exception as exc:
            check(False, "%s: re-encoding is not a valid pickle: %r" % (what, exc))
            continue
        check(globals_in(out) == names, "%s: re-encoding names %s, not %s" % (what, globals_in(out), names))
    reprs, _ = run_tool([c[1] for c in cases], want_repr=True)
    check(None not in reprs, "repr of an inert object failed")
    check(not os.path.exists(marker), "a pickle ran code while printed")
    try:
        os.rmdir(tmp)
    except OSError:
        pass


def main():
    if not os.path.exists(TOOL):
        print("missing %s: build it first (see the Makefile's pickle_roundtrip target)" % TOOL)
        return 1
    random.seed(1234)
    plain = plain_values()
    check_appendix()
    same_plain, canon_plain = check_roundtrips(plain, "plain")
    check_plain_bytes(plain)
    same_obj, canon_obj = check_roundtrips(object_values(), "object")
    check_shared_structure()
    check_repr(plain)
    check_semantics()
    check_malformed()
    check_nothing_runs()
    check_effects()
    print("python %s: %d checks, %d failures; re-encodings byte-identical to the input: plain %d/%d, objects %d/%d"
          % (sys.version.split()[0], checks[0], len(failures), same_plain, canon_plain, same_obj, canon_obj))
    for f in failures[:60]:
        print("FAIL: " + f)
    if len(failures) > 60:
        print("... and %d more" % (len(failures) - 60))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
