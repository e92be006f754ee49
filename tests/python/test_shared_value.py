"""SharedValue and SharedStruct through a stock client (AutoProxy): the issue's examples, every
struct format character at its edges under every byte-order prefix, repeat counts, whitespace and
native alignment (the bytes mapped from /dev/shm compared with struct.pack's), str and bytes items,
bad input that changes nothing, a randomized differential part against the local struct module
(its seed printed; SHMGR_SEED replays it), and objects made and used by Lua.

Exception types are always compared with the local struct's. Messages are compared where the
client's struct words them as CPython 3.13's does, which shmgr matches: 3.12 and later (3.6 to
3.11 word the integer range errors otherwise, e.g. "short format requires ...")."""

import mmap
import os
import random
import struct
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import semantics as S  # noqa: E402

if harness.BACKEND != 'shmgr':
    harness.skip("SharedValue and SharedStruct are shmgr's own typeids: CPython's server has none to compare with")

MESSAGES = sys.version_info >= (3, 12)   # this struct words its errors as 3.13's does
ZERO_P = sys.version_info >= (3, 13)      # unpacking '0p' fails with SystemError before 3.13
CODES = 'xcbB?hHiIlLqQnNefdspP'
NATIVE_ONLY = 'nNP'
PREFIXES = ['', '@', '=', '<', '>', '!']


class Opaque(object):
    """A class the server cannot run: its objects' truth is unknown there."""
    def __bool__(self):
        return False


def qualname(exc_type):
    mod = exc_type.__module__
    return exc_type.__name__ if mod == 'builtins' else '%s.%s' % (mod, exc_type.__name__)


def outcome(fn):
    try:
        return ('ok', fn())
    except Exception as e:
        return ('raise', e)


def show(o):
    return '%s: %s' % (qualname(type(o[1])), o[1]) if o[0] == 'raise' else 'returned %r' % (o[1],)


def same_error(what, got, want):
    """got and want: exceptions; the remote one may be a RemoteError (a constructor's, as
    CPython's create reports them) ending with the exception's line."""
    from multiprocessing.managers import RemoteError
    if isinstance(got, RemoteError):
        lines = [ln for ln in str(got).splitlines() if ln.strip() and ln.strip('-')]
        last = lines[-1] if lines else ''
        name, _, msg = last.partition(': ')
        ok = name == qualname(type(want)) and (not MESSAGES or msg == str(want))
        return harness.check(ok, '%s: traceback ends %r, want %s: %s' % (what, last, qualname(type(want)), want))
    ok = type(got) is type(want) and (not MESSAGES or str(got) == str(want))
    return harness.check(ok, '%s: raised %s: %s, want %s: %s' % (what, qualname(type(got)), got,
                                                                  qualname(type(want)), want))


def compare(what, got, want):
    """Two outcomes: the same result (S.same) or the same exception."""
    if got[0] != want[0]:
        return harness.fail('%s: got %s, want %s' % (what, show(got), show(want)))
    if got[0] == 'raise':
        return same_error(what, got[1], want[1])
    return harness.check(S.same(got[1], want[1]), '%s: got %r, want %r' % (what, got[1], want[1]))


def mapped(proxy):
    """The object's bytes, read from /dev/shm at shm_info's place."""
    name, offset, size, _ = proxy.shm_info()
    with open('/dev/shm/' + name, 'rb') as f:
        f.seek(offset)
        return f.read(size)


def map_rw(proxy):
    """A read-write memoryview of the object's bytes (mmap: no resource tracker)."""
    name, offset, size, _ = proxy.shm_info()
    fd = os.open('/dev/shm/' + name, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, 0)
    finally:
        os.close(fd)
    return mm, memoryview(mm)[offset:offset + size]


def round_trip(fmt, items):
    return struct.unpack(fmt, struct.pack(fmt, *items))


# --------------------------------------------------------------------------

def test_examples(m):
    v = m.SharedValue('256p', 'hello')
    harness.eq(str(v), "SharedValue('256p', 'hello')", 'str of the SharedValue example')
    v.set('goodbye')
    harness.eq(str(v), "SharedValue('256p', 'goodbye')", 'str after set')
    harness.eq(v.get(), 'goodbye', 'get() after set')
    s = m.SharedStruct('hh', (0, 0))
    harness.eq(str(s), "SharedStruct('hh', (0, 0))", 'str of the SharedStruct example')
    s.set((1, 2))
    harness.eq(str(s), "SharedStruct('hh', (1, 2))", 'str after set((1, 2))')
    harness.check(S.same(s.get(), (1, 2)), 'get() is the tuple (1, 2): %r' % (s.get(),))
    s.set([3, 4])
    harness.check(S.same(s.get(), (3, 4)), 'set from a list, get() a tuple: %r' % (s.get(),))
    harness.check(S.same(s._getvalue(), (3, 4)), '_getvalue() is what get() returns: %r' % (s._getvalue(),))
    harness.eq(v._getvalue(), 'goodbye', "a SharedValue's _getvalue()")
    name, offset, size, fmt = s.shm_info()
    harness.check(isinstance(name, str) and not name.startswith('/') and offset % 16 == 0 and size == 4
                  and fmt == 'hh', 'shm_info: %r' % (s.shm_info(),))
    harness.eq(v.shm_info()[2:], (256, '256p'), "SharedValue('256p')'s size and format")
    harness.eq(mapped(s), struct.pack('hh', 3, 4), 'mapped bytes of the example')
    b = m.SharedValue(b'<d', 1.5)
    harness.eq((str(b), b.shm_info()[3]), ("SharedValue(b'<d', 1.5)", b'<d'), 'a bytes format, kept as given')
    for fmt, items in [('', ()), ('0s', (b'',)), ('3x', ())]:
        e = m.SharedStruct(fmt, items)
        harness.eq((e.get(), e.shm_info()[2:]), (round_trip(fmt, items), (struct.calcsize(fmt), fmt)),
                   'SharedStruct(%r, %r)' % (fmt, items))
    harness.eq(m.SharedValue('0s', b'abc').get(), b'', "SharedValue('0s')")
    harness.eq(m.SharedValue(format='i', value=7).get(), 7, 'arguments by keyword')


def edge_values(code, prefix):
    """Values at and past the edges of code's C type under prefix, and of wrong types."""
    if code in 'cspx':
        return [b'a', b'', b'ab', b'\x00', b'\xff' * 3, bytearray(b'q'), 1, None, 1.5]
    if code == '?':
        return [True, False, 0, 1, -1, 2 ** 70, 0.0, 0.5, '', 'x', b'', [], [0], (), {}, {1: 2}, None]
    if code in 'efd':
        return [0.0, -0.0, 1.5, -2.25, 0.1, 65504.0, 65519.99, 65520.0, -65520.0, 6e-8, 2.0 ** -25, 2.0 ** -24, 1e-10,
                3.4028234e38, 3.4028236e38, 1e300, float('inf'), float('-inf'), float('nan'), 1, -7, True,
                2 ** 70, 10 ** 400, 'x', None, b'1']
    size = struct.calcsize(prefix + code)
    bits = 8 * size
    lo, hi = (0, 2 ** bits - 1) if code in 'BHILQN' else (-2 ** (bits - 1), 2 ** (bits - 1) - 1)
    if code == 'P':
        lo = -2 ** (bits - 1)
    return [0, 1, -1, lo, hi, lo - 1, hi + 1, 2 ** 64, -2 ** 64, 10 ** 30, True, False, 1.0, 1.5, 'x', None, b'a']


def test_every_code(m):
    n = 0
    for prefix in PREFIXES:
        for code in CODES:
            fmt = prefix + code
            if code == 'x':
                continue
            if prefix not in ('', '@') and code in NATIVE_ONLY:
                e = harness.raises(Exception, m.SharedValue, fmt, 0, what='SharedValue(%r, 0)' % fmt)
                if e is not None:
                    same_error('SharedValue(%r, 0)' % fmt, e, outcome(lambda: struct.calcsize(fmt))[1])
                continue
            init = struct.unpack(fmt, bytes(struct.calcsize(fmt)))[0]
            v = m.SharedValue(fmt, init)
            harness.eq(mapped(v), struct.pack(fmt, init), 'mapped bytes of SharedValue(%r, %r)' % (fmt, init))
            local = init
            for x in edge_values(code, prefix):
                before = mapped(v)
                got = outcome(lambda: v.set(x))
                want = outcome(lambda: struct.pack(fmt, x))
                if want[0] == 'ok':
                    want = ('ok', None)
                compare('SharedValue(%r).set(%r)' % (fmt, x), got, want)
                if want[0] == 'ok':
                    local = struct.unpack(fmt, struct.pack(fmt, x))[0]
                    harness.eq(mapped(v), struct.pack(fmt, x), 'mapped bytes after SharedValue(%r).set(%r)' % (fmt, x))
                else:
                    harness.eq(mapped(v), before, 'bytes unchanged after a failed SharedValue(%r).set(%r)' % (fmt, x))
                harness.check(S.same(v.get(), local), 'SharedValue(%r).get() after set(%r): %r, want %r'
                              % (fmt, x, v.get(), local))
                n += 1
            # the constructor checks as set does (its errors come as a RemoteError, as create's do)
            for x in edge_values(code, prefix)[:9]:
                got = outcome(lambda: m.SharedValue(fmt, x).get())
                want = outcome(lambda: round_trip(fmt, (x,))[0])
                compare('SharedValue(%r, %r)' % (fmt, x), got, want)
                n += 1
    harness.note('every code: %d set() and constructor calls compared with the local struct' % n)


def test_half_floats(m):
    """'e' rounds to nearest even, at every scale, and overflows exactly where struct does."""
    rng = random.Random(12)
    v = m.SharedValue('<e', 0.0)
    values = [rng.uniform(-70000, 70000) for _ in range(40)] + [rng.uniform(-1e-4, 1e-4) for _ in range(40)]
    values += [(k + 0.5) * 2.0 ** -24 for k in range(8)] + [1 + (k + 0.5) / 1024 for k in range(8)]
    values += [65504 + d for d in (15.99, 16, 16.01)] + [2.0 ** -14 * (1 - 2.0 ** -11), 2.0 ** -15]
    for x in values:
        compare("SharedValue('<e').set(%r)" % x, outcome(lambda: (v.set(x), v.get())[1]),
                outcome(lambda: round_trip('<e', (x,))[0]))


FORMATS = [  # prefixes, counts, whitespace and alignment: (format, items)
    ('ci', (b'a', 1)), ('ic', (1, b'a')), ('c0i', (b'a',)), ('ch', (b'x', -2)), ('cq', (b'x', 2 ** 40)),
    ('b d ? e', (1, 0.5, True, 1.5)), (' 3h 2x  q ', (1, 2, 3, -4)), ('@\tcP', (b'z', 12345)),
    ('<ci', (b'a', 1)), ('>ci', (b'a', 1)), ('!hq', (-1, 2 ** 50)), ('=cl', (b'\x00', -3)),
    ('5s3p0sx?', (b'hello', b'ab', b'', False)), ('10x', ()), ('2c', (b'a', b'b')), ('?n3N', (True, -1, 1, 2, 3)),
    ('hcdcfcecq', (1, b'a', 0.25, b'b', 0.5, b'c', 0.75, b'd', 9)), ('0h0q', ()), ('c 0q', (b'a',)),
    ('>' + 'iI' * 4, (1, 2) * 4), ('3s2s1s', (b'abc', b'de', b'f')), ('255p', (b'x' * 300,)), ('1p', (b'x',)),
]


def test_layouts(m):
    for fmt, items in FORMATS:
        s = m.SharedStruct(fmt, items)
        want = struct.pack(fmt, *items)
        harness.eq(s.shm_info()[2:], (struct.calcsize(fmt), fmt), 'shm_info of SharedStruct(%r)' % fmt)
        harness.eq(mapped(s), want, 'mapped bytes of SharedStruct(%r, %r)' % (fmt, items))
        harness.check(S.same(s.get(), struct.unpack(fmt, want)), 'SharedStruct(%r).get(): %r, want %r'
                      % (fmt, s.get(), struct.unpack(fmt, want)))
        harness.eq(str(s), 'SharedStruct(%r, %r)' % (fmt, struct.unpack(fmt, want)), 'str of SharedStruct(%r)' % fmt)
    for fmt in ['z', '3', 'h@', ' @h', '2 h', '<<h', '-1h', '<n', '>P', '=N', '99999999999999999999h',
                'x9223372036854775807h', 'h\u00e9', 'h\u00e9\u20acx', '\U0001f600', b'h\xe9', 5, None,
                bytearray(b'h')]:
        got = outcome(lambda: m.SharedStruct(fmt, ()))
        want = outcome(lambda: struct.Struct(fmt))
        if isinstance(fmt, bytearray):  # 3.6 and 3.13's Struct() word it alike; calcsize's cache does not
            want = ('raise', TypeError('Struct() argument 1 must be a str or bytes object, not bytearray'))
        compare('SharedStruct(%r, ())' % (fmt,), got, want)
    if sys.version_info >= (3, 7):  # 3.6's struct took a NUL as the end of the format
        compare("SharedStruct('h\\0', (1,))", outcome(lambda: m.SharedStruct('h\0', (1,))),
                outcome(lambda: struct.Struct('h\0')))


def test_str_and_bytes(m):
    v = m.SharedValue('5s', 'hi')
    harness.eq((v.get(), mapped(v)), ('hi', b'hi\x00\x00\x00'), "a str in '5s' reads back as a str")
    v.set(b'hi')
    harness.eq(v.get(), b'hi\x00\x00\x00', "bytes in '5s' read back as struct gives them")
    v.set('a\x00b')
    harness.eq(v.get(), 'a\x00b', "a str keeps its inner NULs, loses the trailing ones")
    v.set('a\u00e9\u20ac')  # 1 + 2 + 3 bytes: the euro sign does not fit whole
    harness.eq((v.get(), mapped(v)), ('a\u00e9', b'a\xc3\xa9\x00\x00'), 'a str cut at a character boundary')
    v.set('\U0001f600x')
    harness.eq(v.get(), '\U0001f600x', 'a 4-byte character and one more fill 5 bytes')
    v.set('xx\U0001f600')
    harness.eq(v.get(), 'xx', 'a 4-byte character that does not fit is left out whole')
    p = m.SharedValue('300p', 'x')
    long_text = '\u00e9' * 200  # 400 bytes of UTF-8: a 'p' field holds 255 at most, here 254 (127 whole)
    p.set(long_text)
    harness.eq(p.get(), '\u00e9' * 127, "a long str in '300p' reads back whole characters")
    harness.eq(mapped(p)[0], 254, "its length byte")
    p.set(b'y' * 400)
    harness.eq((p.get(), mapped(p)), round_trip('300p', (b'y' * 400,)) + (struct.pack('300p', b'y' * 400),),
               "bytes in '300p' as struct packs them")
    q = m.SharedValue('4p', '\u00e9\u00e9')  # 3 bytes of room
    harness.eq(q.get(), '\u00e9', "a str cut to a 'p' field's room")
    s = m.SharedStruct('3s3s2p', ('ab', b'cd', b'z'))
    harness.check(S.same(s.get(), ('ab', b'cd\x00', b'z')), 'each field reads back as it was given: %r' % (s.get(),))
    harness.raises(struct.error, s.set, (b'ab', 'cd', 5), what='a bad third item')
    harness.check(S.same(s.get(), ('ab', b'cd\x00', b'z')), 'a failed set changes no field\'s kind: %r' % (s.get(),))
    s.set((b'ab', 'cd', 'z'))
    harness.check(S.same(s.get(), (b'ab\x00', 'cd', 'z')), 'kinds follow the last write: %r' % (s.get(),))
    # a str with a lone surrogate cannot be UTF-8: the error str.encode() gives, nothing changed
    for text in ['\ud800', 'ab\udc80\udfff', '\ud83d\ude00']:
        before = s.get()
        got = outcome(lambda: s.set((text, b'', b'')))
        want = outcome(lambda: text.encode('utf-8'))
        compare('a str with a surrogate: %r' % text, got,
                want if want[0] == 'raise' else ('ok', None))
        if got[0] == 'raise' and want[0] == 'raise':
            harness.eq(got[1].args, want[1].args, 'UnicodeEncodeError args for %r' % text)
        harness.check(S.same(s.get(), before), 'unchanged after a str with a surrogate: %r' % (s.get(),))
    # bytes written through the map that are no UTF-8 decode with U+FFFD as bytes.decode does
    t = m.SharedStruct('8s6p', ('', ''))
    mm, view = map_rw(t)
    for raw in [b'\xff', b'a\xc3', b'\xe2\x82', b'\xed\xa0\x80', b'\xf0\x9f\x98', b'\xc0\xaf', b'\xf4\x90\x80',
                b'\xe0\x80\xaf', b'ok\xc3\xa9', b'\xf8\x88\x80']:
        view[:8] = raw.ljust(8, b'\x00')
        view[8:] = struct.pack('6p', raw)
        want = (raw.rstrip(b'\x00').decode('utf-8', 'replace'), raw[:5].decode('utf-8', 'replace'))
        harness.eq(t.get(), want, 'bytes %r written through the map, read back as str' % raw)
    view[8] = 200  # a length byte past the field: struct 3.13 cuts it to the field
    harness.eq(t.get()[1], view[9:14].tobytes().decode('utf-8', 'replace'), "a 'p' length byte past the field")
    view.release()
    mm.close()
    # bool of an object the server cannot run
    for fmt, items in [('?', Opaque()), ('h?', (1, Opaque()))]:
        single = fmt == '?'
        ctor = m.SharedValue if single else m.SharedStruct
        target = ctor(fmt, False if single else (1, False))
        before = target.get()
        e = harness.raises(TypeError, target.set, items, what='%s.set(an opaque object)' % fmt)
        harness.check(e is not None and "'Opaque'" in str(e) and "'?'" in str(e),
                      'the TypeError names the class and the format: %s' % e)
        harness.eq(target.get(), before, 'unchanged after the opaque object')


def test_bad_input(m):
    v = m.SharedValue('h', 5)
    s = m.SharedStruct('hd', (1, 2.0))
    cases = [  # (proxy, method, args, the exception struct (or a def) would raise)
        (v, 'set', (99999,), outcome(lambda: struct.pack('h', 99999))[1]),
        (v, 'set', (1.5,), outcome(lambda: struct.pack('h', 1.5))[1]),
        (v, 'set', ('1',), outcome(lambda: struct.pack('h', '1'))[1]),
        (v, 'set', (), TypeError("SharedValue.set() missing 1 required positional argument: 'value'")),
        (v, 'set', (1, 2), TypeError('SharedValue.set() takes 2 positional arguments but 3 were given')),
        (v, 'get', (1,), TypeError('SharedValue.get() takes 1 positional argument but 2 were given')),
        (v, 'shm_info', (1,), TypeError('SharedValue.shm_info() takes 1 positional argument but 2 were given')),
        (s, 'set', ((1,),), outcome(lambda: struct.pack('hd', 1))[1]),
        (s, 'set', ((1, 2.0, 3),), outcome(lambda: struct.pack('hd', 1, 2.0, 3))[1]),
        (s, 'set', ((1, 'x'),), outcome(lambda: struct.pack('hd', 1, 'x'))[1]),
        (s, 'set', ((2 ** 15, 1.0),), outcome(lambda: struct.pack('hd', 2 ** 15, 1.0))[1]),
        (s, 'set', (5,), TypeError('SharedStruct.set() argument must be a tuple or list, not int')),
        (s, 'set', ({1: 2},), TypeError('SharedStruct.set() argument must be a tuple or list, not dict')),
    ]
    for proxy, name, args, want in cases:
        before = (proxy.get(), mapped(proxy))
        got = outcome(lambda: proxy._callmethod(name, args))
        compare('%s.%s%r' % (proxy._token.typeid, name, args), got, ('raise', want))
        harness.check((proxy.get(), mapped(proxy)) == before, '%s unchanged after %s%r' % (proxy, name, args))
    ctor_cases = [
        ('SharedValue', ('hh', (1, 2)), {}, struct.error('SharedValue needs a format of exactly one item, not 2')),
        ('SharedValue', ('', 1), {}, struct.error('SharedValue needs a format of exactly one item, not 0')),
        ('SharedValue', ('3x', 1), {}, struct.error('SharedValue needs a format of exactly one item, not 0')),
        ('SharedValue', ('z', 1), {}, outcome(lambda: struct.calcsize('z'))[1]),
        ('SharedValue', ('b', 128), {}, outcome(lambda: struct.pack('b', 128))[1]),
        ('SharedValue', ('c', 'a'), {}, outcome(lambda: struct.pack('c', 'a'))[1]),
        ('SharedValue', ('<f', 1e300), {}, outcome(lambda: struct.pack('<f', 1e300))[1]),
        ('SharedValue', ('e', 1e6), {}, outcome(lambda: struct.pack('e', 1e6))[1]),
        ('SharedValue', (), {}, TypeError("SharedValue.__init__() missing 2 required positional arguments: "
                                          "'format' and 'value'")),
        ('SharedValue', ('h',), {}, TypeError("SharedValue.__init__() missing 1 required positional argument: 'value'")),
        ('SharedValue', ('h', 1, 2), {}, TypeError('SharedValue.__init__() takes 3 positional arguments but 4 were given')),
        ('SharedValue', ('h', 1), {'x': 1}, TypeError("SharedValue.__init__() got an unexpected keyword argument 'x'")),
        ('SharedStruct', ('hh', (1,)), {}, outcome(lambda: struct.pack('hh', 1))[1]),
        ('SharedStruct', ('hh', 1), {}, TypeError('SharedStruct() argument 2 must be a tuple or list, not int')),
        ('SharedStruct', ('hh', None), {}, TypeError('SharedStruct() argument 2 must be a tuple or list, not NoneType')),
        ('SharedStruct', (), {}, TypeError("SharedStruct.__init__() missing 2 required positional arguments: "
                                           "'format' and 'value'")),
    ]
    for typeid, args, kwds, want in ctor_cases:
        got = outcome(lambda: getattr(m, typeid)(*args, **kwds))
        compare('%s(*%r, **%r)' % (typeid, args, kwds), got, ('raise', want))


# --------------------------------------------------------------------------
# the randomized differential part

def random_format(rng):
    prefix = rng.choice(PREFIXES)
    parts = []
    for _ in range(rng.randint(0, 6)):
        code = rng.choice(CODES)
        if prefix not in ('', '@') and code in NATIVE_ONLY and rng.random() < 0.9:
            code = 'q'
        count = rng.choice(['', '', '', '1', '2', '3', '0']) if code not in 'sp' else str(rng.randint(0, 12))
        if code == 'p' and count == '0' and not ZERO_P:
            count = '1'
        parts.append(count + code + rng.choice(['', '', '', ' ', '\t']))
    if rng.random() < 0.03:
        parts.append(rng.choice(['z', '3', '@']))
    return prefix + ''.join(parts)


def random_value(rng, code, fmt, bad=False):
    """A value for an item of code in fmt: of its type, near its edges (so sometimes past them),
    or when bad of a wrong type."""
    if code in 'sp':
        if bad:
            return rng.choice([1, None, 2.5])
        return rng.choice([bytes, bytearray])(rng.getrandbits(8) for _ in range(rng.randint(0, 14)))
    if code == 'c':
        return rng.choice([b'', b'ab', 'a', 7]) if bad else bytes([rng.getrandbits(8)])
    if code == '?':
        return rng.choice([True, False, 0, 3, '', 'x', None, [], [1], 0.0, 2 ** 80, (), {}])
    if code in 'efd':
        if bad:
            return rng.choice(['x', None, b'', 10 ** 400])
        if rng.random() < 0.05:  # too large for 'e', and for a standard 'f'
            return rng.choice([rng.uniform(-1e39, 1e39), 1e300, 2 ** 130, 70000.0, -65520])
        return rng.choice([rng.uniform(-6e4, 6e4), rng.uniform(-1, 1), rng.uniform(-1e-6, 1e-6), -0.0,
                           float('inf'), float('nan'), rng.randint(-60000, 60000), True, 1e-300])
    if bad:
        return rng.choice([1.5, 'x', None, b'a', 1.0])
    prefix = fmt[0] if fmt and fmt[0] in '@=<>!' else ''
    bits = 8 * struct.calcsize(prefix + code)
    lo, hi = (0, 2 ** bits - 1) if code in 'BHILQN' else (-2 ** (bits - 1), 2 ** (bits - 1) - 1)
    if code == 'P':
        lo = -2 ** (bits - 1)
    if rng.random() < 0.05:  # past an edge
        return rng.choice([lo - 1, hi + 1, -2 ** 70, 2 ** 70, 2 ** 64])
    return rng.choice([0, 1, -1 if lo else 0, True, lo, hi, rng.randint(lo, hi), rng.randint(lo, hi)])


def item_codes(fmt):
    """The code of each item struct.pack takes, in order."""
    body = fmt[1:] if fmt[:1] in '@=<>!' else fmt
    codes, count = [], ''
    for ch in body:
        if ch.isdigit():
            count += ch
            continue
        if ch.isspace():
            continue
        n = int(count) if count else 1
        count = ''
        if ch in 'sp':
            codes.append(ch)
        elif ch != 'x':
            codes.extend(ch * n)
    return codes


def test_random(m, rng):
    compared = errors = 0
    for _ in range(300):
        fmt = random_format(rng)
        if outcome(lambda: struct.calcsize(fmt))[0] == 'raise':
            compare('SharedStruct(%r, ())' % fmt, outcome(lambda: m.SharedStruct(fmt, ())),
                    outcome(lambda: struct.Struct(fmt)))
            continue
        codes = item_codes(fmt)
        init = struct.unpack(fmt, bytes(struct.calcsize(fmt)))
        s = m.SharedStruct(fmt, rng.choice([tuple, list])(init))
        local = init
        for _ in range(6):
            items = [random_value(rng, c, fmt) for c in codes]
            if items and rng.random() < 0.2:  # one of a wrong type
                k = rng.randrange(len(items))
                items[k] = random_value(rng, codes[k], fmt, bad=True)
            if rng.random() < 0.05:
                items = items[:-1] if items and rng.random() < 0.5 else items + [0]
            items = rng.choice([tuple, list])(items)
            before = mapped(s)
            got = outcome(lambda: s.set(items))
            want = outcome(lambda: struct.pack(fmt, *items))
            what = 'SharedStruct(%r).set(%r)' % (fmt, items)
            compare(what, got, ('ok', None) if want[0] == 'ok' else want)
            if want[0] == 'ok':
                local = struct.unpack(fmt, want[1])
                harness.eq(mapped(s), want[1], 'mapped bytes after %s' % what)
            else:
                errors += 1
                harness.eq(mapped(s), before, 'bytes unchanged after the failed %s' % what)
            harness.check(S.same(s.get(), local), '%s then get(): %r, want %r' % (what, s.get(), local))
            compared += 1
        # and the constructor, once per format
        items = tuple(random_value(rng, c, fmt) for c in codes)
        compare('SharedStruct(%r, %r)' % (fmt, items), outcome(lambda: m.SharedStruct(fmt, items).get()),
                outcome(lambda: round_trip(fmt, items)))
    harness.note('random: %d set() calls compared with the local struct (%d of them errors)' % (compared, errors))


# --------------------------------------------------------------------------

def test_lua(srv):
    from multiprocessing.managers import BaseManager

    class LM(BaseManager):
        pass
    for typeid in ('get_greeting', 'Struct', 'SharedValue'):
        LM.register(typeid)
    LM.register('Point', method_to_typeid={'struct': 'Struct'})
    lm = LM(address=srv.address, authkey=srv.authkey)
    lm.connect()
    g = lm.get_greeting()
    harness.eq(str(g), "SharedValue('256p', 'hello')", 'a SharedValue made by the config')
    g.set('goodbye')
    harness.eq(str(lm.get_greeting()), "SharedValue('256p', 'goodbye')", 'the same object on every call')
    p = lm.Point(3, 4)
    harness.check(S.same(p.get(), (3, 4)), 'a Lua get() returns the tuple: %r' % (p.get(),))
    harness.check(S.same(p.move(1, -10), (4, -6)), 'a Lua set() from a table')
    p.set_tuple(7, 8)
    harness.check(S.same(p.get(), (7, 8)), 'a Lua set() from shmgr.tuple')
    harness.eq(p.show(), "SharedStruct('<hh', (7, 8))", 'tostring() of the object in Lua')
    for bad, frag in [(40000, "'h' format requires -32768 <= number <= 32767"),
                      (1.5, 'required argument is not an integer')]:
        got = p.bad(bad)
        harness.check(got.startswith('error(') and frag in got, 'a Lua set(%r) raises struct\'s error: %r' % (bad, got))
    got = p.bad_table()
    harness.check('TypeError' in got and 'not dict' in got, 'a Lua table with keys is no tuple: %r' % got)
    got = p.bad_scalar()
    harness.check('TypeError' in got and 'tuple or list, not int' in got, 'a Lua number is no tuple: %r' % got)
    harness.check(S.same(p.get(), (7, 8)), 'unchanged after the bad sets')
    harness.eq(p.text(), 'h\u00e9llo', 'a str in a SharedValue made by Lua')
    harness.eq(p.set_text('\u00e9' * 10), '\u00e9' * 4, 'cut at a character boundary from Lua too')
    s = p.struct()
    harness.check(S.same(s.get(), (7, 8)), 'the same object through a proxy')
    s.set((100, 200))
    harness.check(S.same(p.get(), (100, 200)), 'a proxy write, seen by Lua')
    mm, view = map_rw(s)
    view[:] = struct.pack('<hh', -1, -2)
    harness.check(S.same(p.get(), (-1, -2)), 'a write through the map, seen by Lua')
    view.release()
    mm.close()
    harness.eq(tuple(p.info()), tuple(s.shm_info()), "shm_info from Lua")


def main():
    seed = int(os.environ.get('SHMGR_SEED') or random.randrange(1 << 30))
    print('seed %d (SHMGR_SEED=%d replays it)' % (seed, seed))
    with harness.server('conf/shared_value.lua') as srv:
        m = harness.client_manager(srv, ['SharedValue', 'SharedStruct'])
        S.check_exposed(srv, m.SharedValue('i', 0), ('get', 'set', 'shm_info'))
        S.check_exposed(srv, m.SharedStruct('i', (0,)), ('get', 'set', 'shm_info'))
        test_examples(m)
        test_every_code(m)
        test_half_floats(m)
        test_layouts(m)
        test_str_and_bytes(m)
        test_bad_input(m)
        test_random(m, random.Random(seed))
        test_lua(srv)
        harness.check(srv.alive(), 'the server is still running')
    harness.done()


if __name__ == '__main__':
    main()
