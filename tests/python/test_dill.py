"""Pickles made by dill (what the multiprocess package sends) go into a Queue, JoinableQueue,
list, dict, Namespace, Value and a Lua type (types/pair.lua) through a stock client's
connection, as raw bytes, and come back: closures, lambdas, nested closures, recursive functions
(direct, mutual, through globals), classes and instances defined in __main__, functools.partial,
bound methods, callable objects, objects whose __reduce__ returns state, with dill's default
settings, recurse=True and byref=True. They are made by a child process whose __main__ defines
them and checked here, where none of them exists: each comes back doing what the original does
(called, compared), and making the same calls when unpickled, the ones whose result dill throws
away included (`_setattr(cell, 'cell_contents', f)` fills a closure's cell). Two closures that
share a cell, or mutually recursive functions, stored as separate list items and fetched one by
one, still work. The same is done with multiprocess's own server (dill unpickles there), which
must agree. Needs dill (Debian's python3-dill) and, for the comparison, multiprocess (Debian's
python3-multiprocess).

With SHMGR_TEST_SERVER=cpython: CPython's own server cannot unpickle dill's pickles (they name
`__builtin__.__main__`), so that part is skipped and only multiprocess's server is checked."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import base64  # noqa: E402
import collections  # noqa: E402
import pickle  # noqa: E402
import pickletools  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

try:
    import dill
except ImportError:
    harness.skip('dill is not installed for this Python (Debian: python3-dill, for /usr/bin/python3)')


# ---- the objects, made in a child process whose __main__ defines them ----

PRODUCER = r'''
import base64, functools, pickle, sys, warnings
import dill
warnings.simplefilter('ignore')

def adder(n):
    return lambda y: y + n

def nested(a):
    def mid(b):
        def inner(c):
            return a * 100 + b * 10 + c
        return inner
    return mid

def make_rec():
    def rec(n):
        return 1 if n <= 1 else n * rec(n - 1)
    return rec

def make_mutual():
    def even(n):
        return True if n == 0 else odd(n - 1)
    def odd(n):
        return False if n == 0 else even(n - 1)
    return even, odd

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def make_shared():
    box = [7]
    return [lambda: box[0], lambda: box[0] + 1]

def make_counter():
    count = 0
    def bump():
        nonlocal count
        count += 1
        return count
    return bump

class Shape(object):
    sides = 0
    def __init__(self, name):
        self.name = name
    def describe(self):
        return '%s has %d sides' % (self.name, self.sides)

class Square(Shape):
    sides = 4
    def describe(self):
        return super().describe() + '!'

class Money(object):
    def __init__(self, cents):
        self.cents = cents
    def __reduce__(self):
        return (Money, (0,), {'cents': self.cents, 'currency': 'EUR'})

class Scaler(object):
    def __init__(self, k):
        self.k = k
    def __call__(self, x):
        return self.k * x

OBJECTS = {
    'closure': adder(10),
    'lambda': lambda x: x * 2,
    'nested closure': nested(1)(2),
    'recursive closure': make_rec(),
    'mutual recursion': make_mutual(),
    'recursion through globals': fib,
    'partial': functools.partial(adder(3), 4),
    'shared cell': make_shared(),
    'nonlocal state': make_counter(),
    'class': Square,
    'instance': Square('box'),
    'reduce with state': Money(250),
    'bound method': Square('sq').describe,
    'callable object': Scaler(3),
    'mixed': {'f': adder(1), 'objs': [Square('a'), Money(5)], 'rec': make_rec(), 'n': 3},
}
VARIANTS = [('default', {}), ('recurse', {'recurse': True}), ('byref', {'byref': True})]
out = []
for name, obj in OBJECTS.items():
    for vname, kw in VARIANTS:
        try:
            blob = dill.dumps(obj, **kw)
        except RecursionError:  # dill 0.3.6: recurse=True on a closure that refers to itself
            out.append((name, vname, None))
            continue
        out.append((name, vname, blob))
sys.stdout.write(base64.b64encode(pickle.dumps(out)).decode())
'''


def use_closure(f):
    return f(5)


def use_pair(t):
    return t[0](10), t[0](7), t[1](4)


def use_shared(fs):
    return [g() for g in fs]


def use_counter(f):
    return f(), f()


def use_class(cls):
    return cls('made here').describe(), cls.sides, cls.__name__


def use_instance(o):
    return o.describe(), o.name, type(o).__name__


def use_money(o):
    return o.cents, o.currency


def use_mixed(d):
    return d['f'](1), [o.describe() if hasattr(o, 'describe') else o.cents for o in d['objs']], d['rec'](5), d['n']


USE = {  # name -> what a user does with it: the result must be the same after the round trip
    'closure': use_closure,
    'lambda': lambda f: f(21),
    'nested closure': lambda f: f(3),
    'recursive closure': lambda f: f(6),
    'mutual recursion': use_pair,
    'recursion through globals': lambda f: f(10),
    'partial': lambda p: (p(), p.args),
    'shared cell': use_shared,
    'nonlocal state': use_counter,
    'class': use_class,
    'instance': use_instance,
    'reduce with state': use_money,
    'bound method': lambda m: m(),
    'callable object': lambda o: o(14),
    'mixed': use_mixed,
}


def produce():
    p = subprocess.Popen([sys.executable, '-c', PRODUCER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    if p.returncode != 0:
        harness.fail('the producer failed: %s' % err.decode('utf-8', 'replace')[-2000:])
        harness.done()
    return pickle.loads(base64.b64decode(out))


def outcome(blob, use):
    """What using the unpickled object gives, or the exception it raises (by type)."""
    try:
        return ('ok', use(dill.loads(blob)))
    except Exception as e:
        return ('raises', type(e).__name__)


# ---- raw requests: the dill pickle spliced in as an argument ----

def s(text):
    b = text.encode('utf-8')
    return b'\x8c' + bytes([len(b)]) + b


def body(blob):
    """The opcodes of a pickle without PROTO, FRAME and STOP: they push its object. Its memo
    keys are kept, so the request around it must memoize nothing of its own."""
    ops = list(pickletools.genops(blob))
    out = []
    for i, (op, _, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(blob)
        if op.name not in ('PROTO', 'FRAME', 'STOP'):
            out.append(blob[pos:end])
    return b''.join(out)


def request(ident, method, args_body):
    return b'\x80\x04(' + (s(ident) if ident is not None else b'N') + s(method) + b'(' + args_body + b't}t.'


def kind_of(reply):
    """The reply's kind, read from its first string (nothing unpickled)."""
    for k in (b'#RETURN', b'#ERROR', b'#TRACEBACK', b'#UNSERIALIZABLE', b'#PROXY'):
        if k in reply[:40]:
            return k.decode()
    return '?'


def call(conn, ident, method, args_body=b''):
    """(kind, reply bytes) of one request."""
    conn.send_bytes(request(ident, method, args_body))
    reply = conn.recv_bytes()
    return kind_of(reply), reply


def returned(reply, use, place=None):
    """What using the item of a #RETURN reply gives, or the exception it raises (by type)."""
    try:
        return ('ok', use(unwrap(place, dill.loads(reply)[1])))
    except Exception as e:
        return ('raises', type(e).__name__)


class Endpoint(object):
    """A server's address: `create` on a fresh connection each (the server answers one server
    method per connection), object methods on one connection that accepted them."""

    def __init__(self, address, authkey):
        self.address = address
        self.authkey = authkey
        self.conn = self.connect()
        self.conn.send((None, 'accept_connection', ('test_dill',), {}))
        harness.eq(self.conn.recv(), ('#RETURN', None), 'accept_connection')

    def connect(self):
        from multiprocessing.connection import Client
        return Client(self.address, authkey=self.authkey)

    def call(self, ident, method, args_body=b''):
        return call(self.conn, ident, method, args_body)

    def create(self, typeid, args_body=b''):
        c = self.connect()
        try:
            kind, reply = call(c, None, 'create', s(typeid) + args_body)
        finally:
            c.close()
        return pickle.loads(reply)[1][0] if kind == '#RETURN' else None

    def close(self):
        self.conn.close()


# ---- what an unpickler does, read from the opcodes (nothing is loaded) ----

class Obj(object):
    """A value on the symbolic stack: what made it, and whether it came from the memo."""

    def __init__(self, label, again=False, items=()):
        self.label = label
        self.again = again
        self.items = items


def calls(blob):
    """Every call (REDUCE), instantiation (NEWOBJ, OBJ, INST), BUILD, step on a made object and
    late fill of a container fetched from the memo that unpickling blob performs, counted by
    what they apply to: the same objects made the same way, discarded calls included."""
    log = collections.Counter()
    stack, marks, memo = [], [], {}

    def pop_mark():
        i = marks.pop()
        items = stack[i:]
        del stack[i:]
        return items

    def fill(target, what):
        if target.label[0] == 'made':
            log[(what, target.label[1])] += 1
        elif target.again:
            log[('late ' + what, target.label[0])] += 1

    for op, arg, _ in pickletools.genops(blob):
        n = op.name
        if n in ('PROTO', 'FRAME', 'STOP'):
            continue
        if n == 'MARK':
            marks.append(len(stack))
        elif n in ('GLOBAL', 'INST'):
            name = arg.replace(' ', '.')
            if n == 'INST':
                pop_mark()
                log[('new', name)] += 1
                stack.append(Obj(('made', name)))
            else:
                stack.append(Obj(('global', name)))
        elif n == 'STACK_GLOBAL':
            name = stack.pop().label[1]
            module = stack.pop().label[1]
            stack.append(Obj(('global', '%s.%s' % (module, name))))
        elif n == 'REDUCE':
            args = stack.pop()
            fn = stack.pop()
            if fn.label == ('global', 'dill._dill._load_type') and len(args.items) == 1:
                # dill's name for a built-in type: the type itself (shmgr writes builtins.X)
                stack.append(Obj(('global', 'builtins.' + args.items[0].label[1])))
                continue
            callee = fn.label[1] if fn.label[0] in ('global', 'made') else fn.label[0]
            log[('call', callee)] += 1
            stack.append(Obj(('made', 'result of ' + callee)))
        elif n in ('NEWOBJ', 'NEWOBJ_EX'):
            del stack[len(stack) - (1 if n == 'NEWOBJ' else 2):]  # the arguments
            cls = stack.pop()
            log[('new', cls.label[1])] += 1
            stack.append(Obj(('made', 'instance of ' + cls.label[1])))
        elif n == 'OBJ':
            items = pop_mark()
            log[('new', items[0].label[1])] += 1
            stack.append(Obj(('made', 'instance of ' + items[0].label[1])))
        elif n == 'BUILD':
            stack.pop()
            log[('build', stack[-1].label[1])] += 1
        elif n in ('APPEND', 'SETITEM'):
            del stack[-(1 if n == 'APPEND' else 2):]
            fill(stack[-1], n.lower())
        elif n in ('APPENDS', 'SETITEMS', 'ADDITEMS'):
            pop_mark()
            fill(stack[-1], n.lower())
        elif n == 'POP':
            stack.pop()
        elif n == 'POP_MARK':
            pop_mark()
        elif n == 'DUP':
            stack.append(Obj(stack[-1].label, True))
        elif n in ('PUT', 'BINPUT', 'LONG_BINPUT', 'MEMOIZE'):
            memo[arg if n != 'MEMOIZE' else len(memo)] = stack[-1]
        elif n in ('GET', 'BINGET', 'LONG_BINGET'):
            stack.append(Obj(memo[arg].label, True))
        elif n in ('TUPLE', 'LIST', 'DICT', 'FROZENSET'):
            stack.append(Obj((n.lower(), None), items=pop_mark()))
        elif n in ('TUPLE1', 'TUPLE2', 'TUPLE3'):
            items = stack[len(stack) - int(n[-1]):]
            del stack[len(stack) - int(n[-1]):]
            stack.append(Obj(('tuple', None), items=items))
        elif n.startswith('EMPTY_'):
            stack.append(Obj((n[6:].lower(), None)))
        else:  # a str, bytes, number, None, bool
            stack.append(Obj(('atom', arg)))
    return log


# ---- where an item goes and how it comes back ----

PLACES = ('Queue', 'JoinableQueue', 'list', 'list, whole', 'dict', 'dict, whole', 'Namespace', 'Value', 'Pair')


def places(ep):
    """(place, store(body) -> the reply's kind, fetch() -> (kind, reply)) for each place an
    item can be kept. Each case gets fresh objects, so an item a server refused cannot leave
    an older one where it should be. A None store: the place before it, read another way."""
    out = []
    cur = {}

    def queue(typeid):
        ident = ep.create(typeid)
        return (typeid, lambda b: ep.call(ident, 'put', b)[0], lambda: ep.call(ident, 'get_nowait'))

    def fresh(key, typeid, args=b''):
        cur[key] = ep.create(typeid, args)
        return cur[key]

    out.append(queue('Queue'))
    out.append(queue('JoinableQueue'))
    out.append(('list', lambda b: ep.call(fresh('list', 'list'), 'append', b)[0],
                lambda: ep.call(cur['list'], '__getitem__', b'K\x00')))
    out.append(('list, whole', None, lambda: ep.call(cur['list'], '#GETVALUE')))
    out.append(('dict', lambda b: ep.call(fresh('dict', 'dict'), '__setitem__', s('k') + b)[0],
                lambda: ep.call(cur['dict'], '__getitem__', s('k'))))
    out.append(('dict, whole', None, lambda: ep.call(cur['dict'], '#GETVALUE')))
    out.append(('Namespace', lambda b: ep.call(fresh('ns', 'Namespace'), '__setattr__', s('attr') + b)[0],
                lambda: ep.call(cur['ns'], '__getattribute__', s('attr'))))
    out.append(('Value', lambda b: ep.call(fresh('value', 'Value', s('O') + b'N'), 'set', b)[0],
                lambda: ep.call(cur['value'], 'get')))
    out.append(('Pair', lambda b: '#RETURN' if fresh('pair', 'Pair', b + b'K\x00') else 'refused',
                lambda: ep.call(cur['pair'], 'get_x')))
    assert tuple(p[0] for p in out) == PLACES
    return out


def unwrap(place, value):
    """The item inside what a place returns (a whole list or dict holds it)."""
    if place == 'list, whole':
        return value[0] if isinstance(value, list) and len(value) == 1 else value
    if place == 'dict, whole':
        return value.get('k') if isinstance(value, dict) else value
    return value


def check_server(srv_name, ep, cases):
    """Each case through each place; returns {(place, name, variant): outcome}. The Pair is
    a Lua type in shmgr (types/pair.lua), a Python class in multiprocess's server."""
    where = places(ep)
    got = {}
    for name, variant, blob in cases:
        b = body(blob)
        want = outcome(blob, USE[name])
        stored = None
        for place, store, fetch in where:
            what = '%s: %s (%s) through %s' % (srv_name, name, variant, place)
            if store is not None:
                stored = store(b)
            if stored != '#RETURN':
                got[(place, name, variant)] = ('server refused', None)
                harness.check(srv_name != 'shmgr', '%s: not stored (%s)' % (what, stored))
                continue
            kind, reply = fetch()
            if kind != '#RETURN':
                # multiprocess's server cannot always pickle again what it unpickled (a
                # __reduce__ that names a class only the sender's __main__ has)
                got[(place, name, variant)] = ('server refused', None)
                harness.check(srv_name != 'shmgr', '%s: not fetched back: %r' % (what, reply[:300]))
                continue
            res = returned(reply, USE[name], place)
            got[(place, name, variant)] = res
            harness.check(res == want, '%s: gives %r, the original %r' % (what, res, want))
            if srv_name == 'shmgr' and place in ('Queue', 'list, whole', 'dict, whole', 'Namespace'):
                # the same calls and steps as the original, discarded ones included
                orig, back = calls(blob), calls(reply)
                harness.check(orig == back, '%s: unpickling makes other calls:\n  original %s\n  back     %s'
                              % (what, sorted((orig - back).items()), sorted((back - orig).items())))
    return got


def check_split(srv_name, ep, cases):
    """Functions that share a cell, or call each other, stored as separate list items
    (list.extend) and fetched one at a time: each still works alone."""
    for name, variant, blob in cases:
        if name not in ('shared cell', 'mutual recursion'):
            continue
        want = outcome(blob, USE[name])
        lst = ep.create('list')
        kind, reply = ep.call(lst, 'extend', body(blob))
        if not harness.eq(kind, '#RETURN', '%s: extend with %s (%s)' % (srv_name, name, variant)):
            continue
        replies = [ep.call(lst, '__getitem__', b'K' + bytes([i]))[1] for i in (0, 1)]
        try:
            items = [dill.loads(r)[1] for r in replies]  # each from its own pickle
            res = ('ok', USE[name](items if name == 'shared cell' else tuple(items)))
        except Exception as e:
            res = ('raises', type(e).__name__)
        harness.check(res == want, '%s: %s (%s) fetched item by item gives %r, the original %r'
                      % (srv_name, name, variant, res, want))
        # the second item alone: its own pickle must hold the cell it shares with the first
        alone = returned(replies[1], (lambda f: f()) if name == 'shared cell' else (lambda f: f(5)))
        harness.eq(alone, ('ok', 8 if name == 'shared cell' else True),
                   '%s: %s (%s), second item alone' % (srv_name, name, variant))


MP_SERVER = r'''
import sys
from multiprocess.managers import SyncManager

class Pair(object):
    def __init__(self, x, y):
        self.x = x
        self.y = y
    def get_x(self):
        return self.x

SyncManager.register('Pair', Pair, exposed=('get_x',))
m = SyncManager(address=('127.0.0.1', 0), authkey=sys.argv[1].encode())
s = m.get_server()
print('address %s %d' % s.address, flush=True)
s.serve_forever()
'''


def multiprocess_server(authkey):
    try:
        import multiprocess  # noqa: F401
    except ImportError:
        return None, 'multiprocess is not installed for this Python (Debian: python3-multiprocess)'
    p = subprocess.Popen([sys.executable, '-c', MP_SERVER, authkey.decode()], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    line = p.stdout.readline()
    if not line.startswith('address '):
        p.kill()
        harness.fail('multiprocess server did not start: %r' % line)
        return None, 'it did not start'
    _, host, port = line.split()
    return (p, (host, int(port))), None


def main():
    made = produce()
    cases = [c for c in made if c[2] is not None]
    skipped = sorted('%s (%s)' % (n, v) for n, v, b in made if b is None)
    if skipped:
        harness.note('dill itself cannot pickle (RecursionError): %s' % ', '.join(skipped))
    harness.check(len(cases) >= 40, 'at least 40 dill pickles made, got %d' % len(cases))
    results = {}
    t0 = time.time()
    if harness.BACKEND == 'shmgr':
        with harness.server(harness.conf('pair.lua')) as srv:
            ep = Endpoint(srv.address, srv.authkey)
            results['shmgr'] = check_server('shmgr', ep, cases)
            check_split('shmgr', ep, cases)
            ep.close()
            harness.check(srv.alive(), 'shmgr is alive after the dill pickles')
    else:
        harness.skip_part('the stock server', "CPython's own server cannot unpickle dill's pickles "
                          "(they name __builtin__.__main__): only multiprocess's server is checked")
    mp, why = multiprocess_server(harness.DEFAULT_AUTHKEY)
    if mp is None:
        harness.skip_part("comparison with multiprocess's server", why)
    else:
        proc, address = mp
        try:
            ep = Endpoint(address, harness.DEFAULT_AUTHKEY)
            results['multiprocess'] = check_server('multiprocess', ep, cases)
            check_split('multiprocess', ep, cases)
            ep.close()
        finally:
            proc.kill()
            proc.wait()
    if 'shmgr' in results and 'multiprocess' in results:
        agree, refused = 0, set()
        for key, res in results['multiprocess'].items():
            if res[0] == 'server refused':  # byref: it cannot load a class only the sender has
                refused.add('%s (%s)' % key[1:])
                continue
            agree += 1
            harness.check(results['shmgr'][key] == res, 'shmgr and multiprocess disagree on %s: %r and %r'
                          % (key, results['shmgr'][key], res))
        harness.check(agree >= 300, 'compared with multiprocess on %d cases' % agree)
        harness.note('compared with multiprocess on %d cases; its server could not store or give back: %s'
                     % (agree, ', '.join(sorted(refused))))
    harness.note('%d dill pickles through %d places in %.1f s' % (len(cases), len(PLACES), time.time() - t0))
    harness.done()


if __name__ == '__main__':
    main()
