"""Random sequences of large values, made the same way against CPython's own server and against
shmgr at once, each reply compared with the other server's and with a model kept here.

Values are str and bytes of sizes drawn around the edges where shmgr changes how it moves
them (64 KiB: a request read into a buffer of its own and a reply's payload sent from where it
lies; 95% of the frame: a payload kept in the bytes it arrived in; 32 MiB: a buffer kept for the
next request), alone or inside a tuple, a list or a dict, ASCII, other text (2-, 3- and 4-byte
UTF-8) or bytes, with marks at both ends so that a shifted or truncated payload shows. They go
through a Queue (put, get), a list (append, __getitem__, pop) and a dict (__setitem__, get, pop).

Under Debian's python3 sizes reach 48 MiB; under other interpreters 4 MiB (what is checked is
the server's side, and every interpreter would multiply the cost). SHMGR_BIG_SEED replays a
seed; SHMGR_BIG_STEPS sets the calls (default 80)."""
# run.py: timeout 400

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import collections  # noqa: E402
import random  # noqa: E402

STEPS = int(os.environ.get('SHMGR_BIG_STEPS', '80'))
SEED = int(os.environ.get('SHMGR_BIG_SEED') or random.SystemRandom().randrange(1 << 30))
KIB, MIB = 1024, 1024 * 1024
HELD_MAX = 160 * MIB  # what the model holds at most: past it the next calls remove
# sizes where shmgr changes course, and either side of them
EDGES = ([64 * KIB + d for d in (-64, -1, 0, 1, 64)] + [int(64 * KIB / 0.95) + d for d in (-8, 0, 8)]
         + [MIB, 4 * MIB - 1] + [32 * MIB + d for d in (-4096, -1, 0, 1, 4096)])
TEXT = u'a\u00e9\u20ac\U0001d11e'  # 1, 2, 3 and 4 bytes in UTF-8


def size_of(rng, most):
    r = rng.random()
    if r < 0.3:
        n = rng.choice(EDGES)
    elif r < 0.55:
        n = rng.randrange(1, 64 * KIB)
    elif r < 0.9:
        n = rng.randrange(64 * KIB, 4 * MIB)
    else:
        n = rng.randrange(4 * MIB, 48 * MIB)
    return min(n, most)


def payload(rng, most):
    """A str or bytes of about a drawn size (in UTF-8 for a str), marked at both ends."""
    n = size_of(rng, most)
    mark = '<%08x>' % rng.getrandbits(32)
    kind = rng.choice(('bytes', 'ascii', 'text'))
    if kind == 'bytes':
        block = bytes(bytearray(rng.getrandbits(8) for _ in range(4096)))
        body = (block * (n // 4096 + 1))[:max(n - 2 * len(mark), 0)]
        return mark.encode('ascii') + body + mark.encode('ascii')
    unit = 'xyzw' if kind == 'ascii' else TEXT  # 4 and 10 bytes of UTF-8
    return mark + unit * (n // len(unit.encode('utf-8'))) + mark


def value(rng, most):
    """A payload alone (mostly: the case a payload may stay in its frame) or in a container."""
    p = payload(rng, most)
    shape = rng.random()
    if shape < 0.6:
        return p
    if shape < 0.75:
        return (p, rng.randrange(1000))
    if shape < 0.9:
        return [rng.randrange(1000), p, payload(rng, 64 * KIB)]
    return {'k': p, 'n': None}


def weight(v):
    if isinstance(v, (bytes, str)):
        return len(v)
    if isinstance(v, dict):
        return sum(weight(x) for x in v.values())
    if isinstance(v, (tuple, list)):
        return sum(weight(x) for x in v)
    return 8


def describe(v):
    if isinstance(v, (bytes, str)):
        return '%s of %d' % (type(v).__name__, len(v))
    if isinstance(v, dict):
        return '{%s}' % ', '.join('%r: %s' % (k, describe(x)) for k, x in v.items())
    if isinstance(v, (tuple, list)):
        return '%s(%s)' % (type(v).__name__, ', '.join(describe(x) for x in v))
    return repr(v)


class Model(object):
    """What the two servers should hold: a queue, a list and a dict."""

    def __init__(self):
        self.q, self.l, self.d = collections.deque(), [], {}

    def held(self):
        return sum(weight(v) for v in self.q) + sum(weight(v) for v in self.l) + sum(weight(v) for v in self.d.values())


def call(objs, method, *args):
    """The reply of each server's object: ('return', value) or ('raise', class name)."""
    out = []
    for o in objs:
        try:
            out.append(('return', getattr(o, method)(*args)))
        except Exception as e:  # a difference is what is looked for: any exception is a reply
            out.append(('raise', type(e).__name__ + ': ' + str(e)[-300:]))
    return out


def step(rng, model, ref, shm, most, history):
    """One call on both servers and the model; False once a reply differs."""
    removing = model.held() > HELD_MAX
    where = rng.choice('qld')
    if where == 'q':
        if model.q and (removing or rng.random() < 0.45):
            method, args, want = 'get', (), ('return', model.q.popleft())
        elif removing:
            method, args, want = 'qsize', (), ('return', 0)
        else:
            v = value(rng, most)
            model.q.append(v)
            method, args, want = 'put', (v,), ('return', None)
    elif where == 'l':
        if model.l and (removing or rng.random() < 0.3):
            i = rng.randrange(-len(model.l), len(model.l))
            method, args, want = 'pop', (i,), ('return', model.l.pop(i))
        elif model.l and rng.random() < 0.4:
            i = rng.randrange(-len(model.l), len(model.l))
            method, args, want = '__getitem__', (i,), ('return', model.l[i])
        else:
            v = value(rng, most)
            model.l.append(v)
            method, args, want = 'append', (v,), ('return', None)
    else:
        k = rng.randrange(6)
        if removing or (k in model.d and rng.random() < 0.3):
            method, args, want = 'pop', (k, None), ('return', model.d.pop(k, None))
        elif rng.random() < 0.35:
            method, args, want = 'get', (k,), ('return', model.d.get(k))
        else:
            v = value(rng, most)
            model.d[k] = v
            method, args, want = '__setitem__', (k, v), ('return', None)
    objs = {'q': 0, 'l': 1, 'd': 2}[where]
    history.append('%s.%s(%s)' % ('qld'[objs], method, ', '.join(describe(a) for a in args)))
    got_ref, got_shm = call([ref[objs], shm[objs]], method, *args)
    if not (harness.same(got_ref, want) and harness.same(got_shm, want)):
        harness.fail('seed %d, call %d: %s\n  want:    %s\n  CPython: %s\n  shmgr:   %s\n  calls so far:\n    %s'
                     % (SEED, len(history), history[-1], describe_reply(want), describe_reply(got_ref),
                        describe_reply(got_shm), '\n    '.join(history[-12:])))
        return False
    return True


def describe_reply(r):
    return '%s %s' % (r[0], describe(r[1]) if r[0] == 'return' else r[1])


def main():
    if harness.BACKEND == 'cpython':
        harness.skip("compares shmgr with CPython's server itself (run it with the shmgr backend)")
    most = 48 * MIB
    if not harness.heavy('values over 4 MiB', 'a few hundred megabytes through both servers'):
        most = 4 * MIB
    harness.note('seed %d (SHMGR_BIG_SEED=%d replays it), %d calls, values up to %d MiB'
                 % (SEED, SEED, STEPS, most // MIB))
    rng = random.Random(SEED)
    with harness.server(backend='cpython') as ref_srv, harness.server(backend='shmgr') as shm_srv:
        ref_m, shm_m = harness.sync_manager(ref_srv), harness.sync_manager(shm_srv)
        ref = (ref_m.Queue(), ref_m.list(), ref_m.dict())
        shm = (shm_m.Queue(), shm_m.list(), shm_m.dict())
        model, history = Model(), []
        for _ in range(STEPS):
            if not step(rng, model, ref, shm, most, history):
                break
        else:
            # what is left comes back whole, in order, from both
            for name, idx, want in (('queue', 0, list(model.q)), ('list', 1, model.l), ('dict', 2, model.d)):
                if idx == 0:
                    got = [[o.get() for _ in range(len(want))] for o in (ref[0], shm[0])]
                else:
                    got = [o._getvalue() for o in (ref[idx], shm[idx])]
                harness.check(harness.same(got[0], want) and harness.same(got[1], want),
                              'seed %d: what the %s holds at the end is the same on both servers and the model' % (SEED, name))
        harness.check(shm_srv.alive(), 'shmgr is alive')
    harness.note('%d calls compared' % len(history))
    harness.done()


if __name__ == '__main__':
    main()
