"""Pickles that would run code in CPython's server (os.system and subprocess through REDUCE,
INST, OBJ, NEWOBJ, NEWOBJ_EX, BUILD with __setstate__, builtins.eval/exec, getattr chains) sent
in every place a value can appear: method arguments, create arguments, a Lua type's arguments,
stored and fetched back. shmgr keeps them as inert data: nothing runs, each comes back as it
went in (read back as raw bytes here: unpickling them would run them in the test), and the
server goes on serving. Also small values whose shared structure would make a naive hash, ==
or repr take 2**40 steps."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pickle  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402


def s(text):
    """SHORT_BINUNICODE text."""
    b = text.encode('utf-8')
    return b'\x8c' + bytes([len(b)]) + b


def g(module, name):
    """A global by STACK_GLOBAL."""
    return s(module) + s(name) + b'\x93'


def hostile(marker):
    """name -> pickle body (no PROTO, no STOP) that makes `marker` exist if it is run."""
    cmd = 'touch ' + marker
    argv = b'](' + s('touch') + s(marker) + b'e'  # the list ['touch', marker]
    return {
        'REDUCE os.system': g('os', 'system') + s(cmd) + b'\x85R',
        'REDUCE posix.system (GLOBAL)': b'cposix\nsystem\n' + s(cmd) + b'\x85R',
        'REDUCE subprocess.call': g('subprocess', 'call') + argv + b'\x85R',
        'INST os.system': b'(' + s(cmd) + b'ios\nsystem\n',
        'OBJ os.system': b'(' + g('os', 'system') + s(cmd) + b'o',
        'REDUCE builtins.eval': g('builtins', 'eval') + s("open(%r, 'w')" % marker) + b'\x85R',
        'REDUCE builtins.exec': g('builtins', 'exec') + s("open(%r, 'w')" % marker) + b'\x85R',
        'getattr chain': (g('builtins', 'getattr') + g('builtins', '__import__') + s('os') + b'\x85R' +
                          s('system') + b'\x86R' + s(cmd) + b'\x85R'),
        'NEWOBJ subprocess.Popen': g('subprocess', 'Popen') + argv + b'\x85\x81',
        'NEWOBJ_EX subprocess.Popen': g('subprocess', 'Popen') + argv + b'\x85}' + s('shell') + b'\x89s\x92',
        'BUILD with __setstate__': (g('subprocess', 'Popen') + b')\x81}' + s('args') + s(cmd) +
                                    b's' + b'b'),
    }


# the ones that do run under a plain pickle.loads (the others need more of the object's life)
LIVE = ('REDUCE os.system', 'REDUCE posix.system (GLOBAL)', 'REDUCE subprocess.call', 'INST os.system',
        'OBJ os.system', 'REDUCE builtins.eval', 'REDUCE builtins.exec', 'getattr chain')


def runs_in_python(body, marker):
    """Whether CPython's pickle.loads of body makes marker exist (in a child process)."""
    import subprocess
    subprocess.run([sys.executable, '-c', 'import pickle, sys; pickle.loads(sys.stdin.buffer.read())'],
                   input=b'\x80\x04' + body + b'.', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ran = os.path.exists(marker)
    if ran:
        os.unlink(marker)
    return ran


def request(ident, method, args_body):
    """A protocol-4 request (ident, method, (args...), {}) around raw argument bodies."""
    ident_b = s(ident) if ident is not None else b'N'
    return b'\x80\x04(' + ident_b + s(method) + b'(' + args_body + b't}t.'


def call(conn, ident, method, args_body=b''):
    conn.send_bytes(request(ident, method, args_body))
    return conn.recv_bytes()


def answered(reply, what):
    """A #RETURN reply (raw bytes); anything else fails the test, showing it."""
    harness.eq(kind(reply), '#RETURN', '%s is answered (%r)' % (what, reply[:300]))
    return reply


class Rec(object):
    """What a global, a call or a state in a pickle was, recorded instead of done."""

    def __init__(self, v):
        self.v = v

    def __call__(self, *args, **kwds):
        return Rec(('call', self.v, args, tuple(sorted(kwds.items()))))

    def __setstate__(self, state):
        self.v = ('built', self.v, state)

    def __eq__(self, other):
        return isinstance(other, Rec) and self.v == other.v

    def __repr__(self):
        return 'Rec(%r)' % (self.v,)


class Recorder(pickle.Unpickler):
    """An unpickler that runs nothing: every global is a stub whose calls are recorded."""

    def find_class(self, module, name):
        class Stub(object):
            def __new__(cls, *args, **kwds):
                return Rec(('make', module, name, args, tuple(sorted(kwds.items()))))
        return Stub


def recorded(data):
    import io
    return Recorder(io.BytesIO(data)).load()


def kind(reply):
    """The reply's kind, read from its first string (no unpickling of what follows)."""
    for k in (b'#RETURN', b'#ERROR', b'#TRACEBACK', b'#UNSERIALIZABLE', b'#PROXY'):
        if k in reply[:40]:
            return k.decode()
    return '?'


def tower(levels):
    """A tuple holding the same tuple twice, `levels` deep: 2 bytes a level as a pickle, but
    2**levels paths through it for whatever walks it naively (hash, ==, repr)."""
    return b')' + b'2\x86' * levels  # EMPTY_TUPLE, then DUP + TUPLE2 per level


def shared_structure(srv, c):
    """Values whose shared structure would make hash, == or repr run 2**40 steps: each is
    answered at once (a hang would time the test out), a long repr is cut, nothing breaks."""
    m = harness.sync_manager(srv)
    d, lst = m.dict(), m.list()
    answered(call(c, d._token.id, '__setitem__', tower(40) + b'K\x01'), 'a 40-level tower as a dict key')
    r = answered(call(c, d._token.id, '__contains__', tower(40)), 'an equal tower, built apart, looked up')
    harness.check(b'\x88' in r, 'and found (True): %r' % r[-12:])
    answered(call(c, lst._token.id, 'append', tower(40)), 'a tower stored in a list')
    text = str(lst)
    harness.check(len(text) < 2 << 20 and '...' in text[-100:], 'its repr is cut at 1 MiB (%d chars, ends %r)' % (len(text), text[-60:]))
    harness.eq(len(d), 1, 'the dict answers afterwards')


def serving(srv):
    c = harness.raw_client(srv)
    c.send((None, 'accept_connection', ('hostile',), {}))
    harness.eq(c.recv(), ('#RETURN', None), 'accept_connection')
    return c


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("CPython's server runs these pickles: that is what this test shows shmgr never does")
    tmp = tempfile.mkdtemp(prefix='shmgr-hostile-')
    try:
        with harness.server(harness.conf('pair.lua')) as srv:
            m = harness.sync_manager(srv)
            q = m.Queue()
            c = serving(srv)
            marker = os.path.join(tmp, 'marker')
            for name, body in sorted(hostile(marker).items()):
                if name in LIVE:  # the payload is real: Python itself runs it
                    harness.check(runs_in_python(body, marker), '%s: pickle.loads runs it' % name)
                # 1. a method argument, stored in a queue, then fetched back as it went in
                answered(call(c, q._token.id, 'put', body), '%s: put' % name)
                back = answered(call(c, q._token.id, 'get_nowait'), '%s: get' % name)
                want = recorded(b'\x80\x04' + body + b'.')
                harness.eq(recorded(back)[1], want, '%s: comes back as it went in' % name)
                # 2. create arguments (fresh connections): a dict holding it, a Lua type built from it
                answered(call(harness.raw_client(srv), None, 'create', s('dict') + b'}' + s('k') + body + b's'),
                         '%s: dict' % name)
                answered(call(harness.raw_client(srv), None, 'create', s('Pair') + body + b'K\x01'),
                         '%s: Pair' % name)
                harness.check(not os.path.exists(marker), '%s: nothing ran (%s exists)' % (name, marker))
                if os.path.exists(marker):
                    os.unlink(marker)
            shared_structure(srv, c)
            harness.eq(q.qsize(), 0, 'every item was fetched back')
            q.put('still serving')
            harness.eq(q.get(), 'still serving', 'the server goes on serving')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
