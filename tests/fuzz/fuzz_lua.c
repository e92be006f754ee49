/* fuzz_lua.c: libFuzzer target for the Lua bridge (lx_value.c): values into and out of a Lua
   type's methods, run as the server runs them (the config sandbox, the instruction and memory
   limits, methods in coroutines), and values built in Lua out to pickles and back.

   The first byte picks the direction; the second, when not 0, leaves Lua only that many
   KiB of memory beyond what it holds, so that running out of memory strikes anywhere (then
   every method may fail, cleanly). Below 0x80, the rest is a pickle, decoded with the
   server's limits; its low bits pick which uses of the value run (tests/fuzz/fuzz_lua.lua
   holds the Lua side): passing it through (returned, twice, nested in tables, stored in
   fields, through a Queue and a dict), reading it (kind, repr, ==), a copy walked through the
   shmgr.value API, a copy changed and the value itself changed, and round trips through
   pickles. What comes back must be the value that went in: same kinds, same content, and
   the same shared structure (containers that were one object are one object again). A copy
   rebuilt in Lua must hold the same content. From 0x80 on, the rest is a program for a stack
   machine in Lua that builds tables and values; what lx_to makes of them must have the shape
   (lists, dicts, sharing, cycles) the Lua side describes, and survive a pickle round trip.
   Any method may fail instead, with a Python exception and a message, except where the value
   is only passed along. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lx.h"
#include "pickle.h"
#include "registry.h"
#include "shm.h"
#include "wait.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SCRIPT_DEFAULT "tests/fuzz/fuzz_lua.lua" /* from the repository's top, as make runs it */
#define SELF_KEY "self"                          /* where grow and inplace put the container itself */

enum {
  USE_PASS = 1,     /* echo, twice, nest, relay */
  USE_FIELD = 2,    /* stored in fields, fetched, #GETVALUE */
  USE_COPY = 4,     /* walked and rebuilt through the API */
  USE_GROW = 8,     /* a copy changed */
  USE_INPLACE = 16, /* the value itself changed */
  USE_READ = 32,    /* kind, repr, == */
  USE_AGAIN = 64,   /* passed through again after a pickle round trip */
};

static config cfg;
static pickle_limits lim;
static bool verbose; /* SHMGR_FUZZ_VERBOSE set: say how each method that failed failed */

/* A broken invariant: say which and abort, so the fuzzer keeps the input. */
static void broken(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_lua: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

static void setup(void) {
  config_defaults(&cfg);
  atexit(shm_close); /* segments of Shared* objects a script made go with the process */
  const char *script = getenv("SHMGR_FUZZ_LUA");
  cfg.path = script && *script ? script : SCRIPT_DEFAULT;
  verbose = getenv("SHMGR_FUZZ_VERBOSE") != NULL;
  /* the server's mechanism with smaller figures, so that one input stays quick: a walk that
     shared structure makes endless stops at the instruction limit */
  cfg.lua_instructions = 300000;
  cfg.lua_memory = 64u << 20;
  lim = (pickle_limits){cfg.max_depth, cfg.max_objects, NULL};
  wait_loop = ev_default_loop(EVFLAG_AUTO);
  log_level = cfg.log_level = LOG_ERROR + 1; /* quiet: Lua errors are expected (lx_load_config sets the config's) */
  char err[512];
  if (!lx_load_config(&cfg, true, err, sizeof err)) broken("cannot load the Lua side", err);
}

/* ---- comparing values ---- */

/* What must keep its identity through the bridge: Python's mutable objects and containers. */
static bool has_identity(const value *v) {
  return (v->kind >= VK_TUPLE && v->kind != VK_GLOBAL) || v->kind == VK_BYTEARRAY;
}

/* Pointer pairs already matched (a -> b and b -> a): linear probing, grown at half full. */
typedef struct pairs {
  const value **key, **val;
  size_t mask, n;
} pairs;

static const value **pairs_slot(pairs *m, const value *k) {
  size_t i = ((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ULL >> 20 & m->mask;
  while (m->key[i] && m->key[i] != k) i = (i + 1) & m->mask;
  return &m->key[i];
}

static const value *pairs_get(pairs *m, const value *k) {
  if (!m->key) return NULL;
  const value **s = pairs_slot(m, k);
  return *s ? m->val[s - m->key] : NULL;
}

static void pairs_put(pairs *m, const value *k, const value *v) {
  if (!m->key || (m->n + 1) * 2 > m->mask) {
    pairs old = *m;
    size_t size = old.key ? (old.mask + 1) * 2 : 64;
    m->key = calloc(size, sizeof *m->key);
    m->val = calloc(size, sizeof *m->val);
    m->mask = size - 1;
    m->n = 0;
    for (size_t i = 0; old.key && i <= old.mask; i++)
      if (old.key[i]) pairs_put(m, old.key[i], old.val[i]);
    free(old.key);
    free(old.val);
  }
  const value **s = pairs_slot(m, k);
  if (!*s) m->n++;
  *s = k;
  m->val[s - m->key] = v;
}

static void pairs_free(pairs *m) {
  free(m->key);
  free(m->val);
  memset(m, 0, sizeof *m);
}

typedef struct cmp {
  bool strict;      /* identity too: each container of a matches one container of b, and back */
  pairs fwd, back;  /* strict: the matching; loose: pairs taken as equal (cycles, sharing) */
  const char *why;  /* the first difference */
} cmp;

static bool same_rec(cmp *c, const value *a, const value *b, int depth);

static bool same_items(cmp *c, value *const *x, value *const *y, size_t n, int depth) {
  for (size_t i = 0; i < n; i++)
    if (!same_rec(c, x[i], y[i], depth + 1)) return false;
  return true;
}

static bool differ(cmp *c, const char *why) {
  if (!c->why) c->why = why;
  return false;
}

static bool same_rec(cmp *c, const value *a, const value *b, int depth) {
  if (!a || !b) return a == b ? true : differ(c, "a missing part");
  if (depth > 5000) return differ(c, "deeper than 5000");
  if (a->kind != b->kind) return differ(c, "a different kind");
  if (has_identity(a)) {
    const value *known = pairs_get(&c->fwd, a);
    if (c->strict) {
      if (known) return known == b ? true : differ(c, "shared structure differs");
      if (pairs_get(&c->back, b)) return differ(c, "two objects became one");
      pairs_put(&c->back, b, a);
    } else if (known == b) {
      return true;
    }
    pairs_put(&c->fwd, a, b);
  }
  switch (a->kind) {
  case VK_NONE: return true;
  case VK_BOOL: return a->u.b == b->u.b ? true : differ(c, "a bool differs");
  case VK_INT: return a->u.i == b->u.i ? true : differ(c, "an int differs");
  case VK_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0 ? true : differ(c, "a float differs");
  case VK_BIGINT: case VK_STR: case VK_BYTES: case VK_BYTEARRAY:
    return a->u.s.len == b->u.s.len && memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0 ? true
                                                                                         : differ(c, "a str, bytes or big int differs");
  case VK_TUPLE: case VK_LIST:
    if (a->u.seq.len != b->u.seq.len) return differ(c, "a length differs");
    return same_items(c, a->u.seq.items, b->u.seq.items, a->u.seq.len, depth);
  case VK_DICT: case VK_SET: case VK_FROZENSET: {
    if (dict_len(a) != dict_len(b)) return differ(c, "a dict or set has a different size");
    size_t pa = 0, pb = 0;
    value *ka, *va, *kb, *vb;
    while (dict_next(a, &pa, &ka, &va) && dict_next(b, &pb, &kb, &vb))
      if (!same_rec(c, ka, kb, depth + 1) || (a->kind == VK_DICT && !same_rec(c, va, vb, depth + 1))) return false;
    return true;
  }
  case VK_GLOBAL:
    return same_rec(c, a->u.g.module, b->u.g.module, depth + 1) && same_rec(c, a->u.g.name, b->u.g.name, depth + 1);
  case VK_OPAQUE: {
    const opaque *x = a->u.o, *y = b->u.o;
    if (x->how != y->how || x->nops != y->nops || x->shared != y->shared || !x->kwargs != !y->kwargs)
      return differ(c, "an opaque object differs");
    if (!same_rec(c, x->callable, y->callable, depth + 1) || !same_rec(c, x->args, y->args, depth + 1) ||
        (x->kwargs && !same_rec(c, x->kwargs, y->kwargs, depth + 1)))
      return false;
    for (size_t i = 0; i < x->nops; i++)
      if (x->ops[i].op != y->ops[i].op || !same_rec(c, x->ops[i].a, y->ops[i].a, depth + 1) ||
          !!x->ops[i].b != !!y->ops[i].b || (x->ops[i].b && !same_rec(c, x->ops[i].b, y->ops[i].b, depth + 1)))
        return differ(c, "an opaque object's steps differ");
    return true;
  }
  default: return differ(c, "an unknown kind");
  }
}

/* b holds what a holds; strict: with the same shared structure. Aborts naming what when not.
   b NULL: the method failed, for lack of memory (must_return): nothing to compare. */
static void expect_same(const value *a, const value *b, bool strict, const char *what) {
  if (!b) return;
  cmp c = {.strict = strict};
  bool ok = same_rec(&c, a, b, 0);
  pairs_free(&c.fwd);
  pairs_free(&c.back);
  if (!ok) broken(what, c.why);
}

/* Does v reach a float NaN (which is not equal to itself)? Each container once. */
static bool reaches_nan(const value *v, pairs *seen) {
  switch (v->kind) {
  case VK_FLOAT: return v->u.f != v->u.f;
  case VK_TUPLE: case VK_LIST:
    if (pairs_get(seen, v)) return false;
    pairs_put(seen, v, v);
    for (size_t i = 0; i < v->u.seq.len; i++)
      if (reaches_nan(v->u.seq.items[i], seen)) return true;
    return false;
  case VK_DICT: case VK_SET: case VK_FROZENSET: {
    if (pairs_get(seen, v)) return false;
    pairs_put(seen, v, v);
    size_t pos = 0;
    value *k, *x;
    while (dict_next(v, &pos, &k, &x))
      if (reaches_nan(k, seen) || (x && reaches_nan(x, seen))) return true;
    return false;
  }
  case VK_OPAQUE: return true; /* compared by their pickles: anything goes inside */
  default: return false;
  }
}

/* ---- calling the Probe ---- */

static void never_done(call *c, outcome r) {
  (void)c;
  (void)r;
  broken("a method that never parked finished later", NULL);
}

/* Call method on o with args (a tuple, stolen); the outcome. Nothing here may park. */
static outcome invoke(shobj *o, const char *method, value *args) {
  value *kwds = v_dict();
  call c = {.done = never_done};
  outcome r = o->type->call(o, method, args, kwds, &c);
  v_decref(args);
  v_decref(kwds);
  if (r.st == CALL_PARKED) broken("a method parked", method);
  return r;
}

static value *args1(value *a) {
  value *t = v_tuple(1);
  t->u.seq.items[0] = v_incref(a);
  return t;
}

static value *args2(value *a, value *b) {
  value *t = v_tuple(2);
  t->u.seq.items[0] = v_incref(a);
  t->u.seq.items[1] = v_incref(b);
  return t;
}

/* The message of an exception value (its first argument), or NULL when it has none. */
static const char *message_of(const value *exc) {
  if (!exc || exc->kind != VK_OPAQUE || !exc->u.o->args || exc->u.o->args->kind != VK_TUPLE) return NULL;
  const value *a = exc->u.o->args;
  return a->u.seq.len && a->u.seq.items[0]->kind == VK_STR ? a->u.seq.items[0]->u.s.data : NULL;
}

/* A method that may fail: a failure must be an exception with a message, and not one of the
   walk's own findings ("BUG: ..."). Returns the result (new) or NULL. */
static value *may_fail(outcome r, const char *method) {
  if (r.st == CALL_RETURN) return r.v;
  if (r.st != CALL_ERROR) broken("an unexpected outcome", method);
  const char *msg = message_of(r.v);
  if (!msg || !*msg) broken("a failure without a message", method);
  if (strstr(msg, "BUG:")) broken(method, msg);
  if (verbose) fprintf(stderr, "fuzz_lua: %s failed: %s\n", method, msg);
  v_decref(r.v);
  return NULL;
}

static bool tight; /* Lua's memory is nearly full: every method may fail */

/* A method that only passes values along and must not fail (but for lack of memory). Returns
   the result, or NULL when it failed for that. */
static value *must_return(outcome r, const char *method) {
  if (tight) return may_fail(r, method);
  if (r.st == CALL_ERROR) {
    const char *msg = message_of(r.v);
    broken(method, msg ? msg : "failed without a message");
  }
  if (r.st != CALL_RETURN) broken("an unexpected outcome", method);
  return r.v;
}

/* ---- pickles ---- */

/* v's pickle (protocol 4) in out; false (out empty) when v cannot be written, which needs a
   message. */
static bool encode(const value *v, buf *out) {
  char err[256] = "";
  buf_clear(out);
  if (pickle_dump(out, v, 4, err, sizeof err) == 0) return true;
  if (!err[0]) broken("a value refused by the encoder without a message", NULL);
  return false;
}

static value *decode(const buf *b) {
  char err[256] = "";
  int proto;
  value *v = pickle_load(b->data, b->len, &lim, &proto, err, sizeof err);
  if (!v) broken("our own pickle does not decode", err);
  return v;
}

static bool same_bytes(const buf *a, const buf *b) { return a->len == b->len && memcmp(a->data, b->data, a->len) == 0; }

/* ---- values from Python into Lua ---- */

/* Must lx_push hand v to Lua as a shmgr.value userdata? (A str may go either way.) */
static bool must_wrap(const value *v) {
  return v->kind != VK_NONE && v->kind != VK_BOOL && v->kind != VK_INT && v->kind != VK_FLOAT && v->kind != VK_STR;
}

static void passing(shobj *p, value *v) {
  value *r = must_return(invoke(p, "echo", args1(v)), "echo");
  expect_same(v, r, true, "echo");
  v_decref(r);

  r = must_return(invoke(p, "twice", args1(v)), "twice");
  value *want = args2(v, v);
  expect_same(want, r, true, "twice: (v, v)");
  v_decref(want), v_decref(r);

  r = must_return(invoke(p, "nest", args1(v)), "nest");
  want = v_list(2);
  list_append(want, v_incref(v));
  value *inner = v_list(2);
  list_append(inner, v_incref(v));
  list_append(inner, v_incref(v));
  list_append(want, inner);
  expect_same(want, r, true, "nest: [v, [v, v]]");
  v_decref(want), v_decref(r);

  r = must_return(invoke(p, "relay", args1(v)), "relay");
  expect_same(v, r, true, "relay: through a Queue and a dict");
  v_decref(r);
}

static void fields(shobj *p, value *v) {
  int stored = 0;
  for (int i = 0; i < 2; i++) {
    value *r = must_return(invoke(p, "field", args1(v)), "field");
    expect_same(v, r, true, "field");
    stored += r != NULL;
    v_decref(r);
  }
  value *r = must_return(invoke(p, "fetch", v_tuple(0)), "fetch");
  if (!r || stored < 2) { /* out of memory: a field call may have stored less */
    v_decref(r);
    return;
  }
  value *log = v_list(2);
  list_append(log, v_incref(v));
  list_append(log, v_incref(v));
  expect_same(log, r, true, "fetch: [v, v]");
  v_decref(r);
  value *err = NULL, *got = p->type->getvalue(p, &err);
  if (!got && (!tight || !message_of(err))) broken("#GETVALUE", message_of(err));
  if (!got) return v_decref(err), v_decref(log);
  value *want = v_dict(); /* in the order the Lua table gave, which a test cannot know */
  size_t pos = 0;
  value *k, *x;
  const char *why;
  while (dict_next(got, &pos, &k, &x)) {
    if (v_is_str(k, "slot")) dict_set(want, v_incref(k), v_incref(v), &why);
    else if (v_is_str(k, "log")) dict_set(want, v_incref(k), v_incref(log), &why);
    else broken("#GETVALUE: an unknown field", NULL);
  }
  expect_same(want, got, true, "#GETVALUE: {slot = v, log = [v, v]}");
  v_decref(want), v_decref(got), v_decref(log);
}

static void reading(shobj *p, value *v) {
  value *r = must_return(invoke(p, "kind", args1(v)), "kind");
  if (r && (r->kind != VK_STR || strcmp(r->u.s.data, v_typename(v)) != 0)) broken("shmgr.kind differs from the type name", v_typename(v));
  v_decref(r);
  r = must_return(invoke(p, "repr", args1(v)), "repr");
  if (r && r->kind == VK_NONE && must_wrap(v)) broken("a value reached Lua unwrapped", v_typename(v));
  if (r && r->kind != VK_NONE) {
    buf text = {0};
    v_repr(&text, v);
    if (r->kind != VK_STR || r->u.s.len != text.len || memcmp(r->u.s.data, text.data, text.len) != 0)
      broken("tostring differs from repr", NULL);
    buf_free(&text);
  }
  v_decref(r);
  buf once = {0};
  if (encode(v, &once)) { /* == against an equal value that shares nothing with v */
    value *w = decode(&once);
    r = must_return(invoke(p, "eq", args2(v, w)), "eq");
    pairs seen = {0};
    bool cyclic;
    v_walk(v, &cyclic);
    if (r && r->kind != VK_BOOL) broken("== gave no boolean", NULL);
    if (r && !r->u.b && !cyclic && !reaches_nan(v, &seen)) broken("a value is not == to its own pickle's value", NULL);
    pairs_free(&seen);
    v_decref(r), v_decref(w);
  }
  buf_free(&once);
}

static void copying(shobj *p, value *v) {
  value *r = may_fail(invoke(p, "copy", args1(v)), "copy");
  if (r) expect_same(v, r, false, "copy: a walk through the API rebuilt something else");
  v_decref(r);
}

/* The container Lua's grow must have made from v: its items (or entries) and itself. */
static value *grown(value *v, value *key) {
  const char *why;
  if (v->kind == VK_LIST || v->kind == VK_TUPLE) {
    value *c = v_list(v->u.seq.len + 1);
    for (size_t i = 0; i < v->u.seq.len; i++) list_append(c, v_incref(v->u.seq.items[i]));
    list_append(c, v_incref(c));
    return c;
  }
  if (v->kind == VK_DICT) {
    value *c = v_dict();
    size_t pos = 0;
    value *k, *x;
    while (dict_next(v, &pos, &k, &x)) dict_set(c, v_incref(k), v_incref(x), &why);
    dict_set(c, v_incref(key), v_incref(c), &why);
    return c;
  }
  return v_incref(v);
}

static void growing(shobj *p, value *v) {
  value *key = v_strz(SELF_KEY);
  value *r = must_return(invoke(p, "grow", args2(v, key)), "grow");
  value *want = grown(v, key);
  v_track_cycles(want);
  expect_same(want, r, true, "grow: a copy that holds itself");
  v_decref(want), v_decref(r), v_decref(key);
}

/* Change a fresh decoding of the input (v stays as it was): it must hold itself after. */
static void changing(shobj *p, const uint8_t *data, size_t size) {
  char err[256];
  int proto;
  value *w = pickle_load(data, size, &lim, &proto, err, sizeof err);
  if (!w) broken("the input decoded once only", err);
  value *key = v_strz(SELF_KEY);
  size_t before = w->kind == VK_LIST ? w->u.seq.len : 0;
  value *r = must_return(invoke(p, "inplace", args2(w, key)), "inplace");
  if (r && w->kind == VK_LIST && (w->u.seq.len != before + 1 || w->u.seq.items[before] != w))
    broken("inplace: a list does not end with itself", NULL);
  if (r && w->kind == VK_DICT && dict_get(w, key) != w) broken("inplace: a dict does not hold itself", NULL);
  v_decref(r), v_decref(key);
  v_decref(w); /* a cycle now: the collector must free it (the leak checker watches) */
}

static void again(shobj *p, value *v) {
  buf want = {0}, once = {0}, twice = {0};
  if (encode(v, &want)) {
    value *r = must_return(invoke(p, "echo", args1(v)), "echo");
    if (r && (!encode(r, &once) || !same_bytes(&want, &once))) broken("echo: another pickle than the value's", NULL);
    value *w = r ? decode(&once) : NULL;
    value *r2 = w ? must_return(invoke(p, "echo", args1(w)), "echo") : NULL;
    if (r2 && (!encode(r2, &twice) || !same_bytes(&once, &twice))) broken("echo: a second round trip changed the pickle", NULL);
    v_decref(r), v_decref(w), v_decref(r2);
  }
  buf_free(&want), buf_free(&once), buf_free(&twice);
}

static void from_python(shobj *p, unsigned uses, const uint8_t *data, size_t size) {
  char err[256] = "";
  int proto;
  value *v = pickle_load(data, size, &lim, &proto, err, sizeof err);
  if (!v) {
    if (!err[0]) broken("a refused pickle without a message", NULL);
    return;
  }
  if (uses & USE_PASS) passing(p, v);
  if (uses & USE_FIELD) fields(p, v);
  if (uses & USE_READ) reading(p, v);
  if (uses & USE_COPY) copying(p, v);
  if (uses & USE_GROW) growing(p, v);
  if (uses & USE_AGAIN) again(p, v);
  if (uses & USE_INPLACE) changing(p, data, size);
  v_decref(v);
}

/* ---- values built in Lua ---- */

typedef struct sig {
  const char *p, *end;
  const value **ids; /* Lua's numbering -> the value it became */
  size_t nids;
  pairs tables; /* a value made from a table -> 1: no two tables may become one value */
} sig;

static size_t sig_number(sig *s) {
  size_t n = 0;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') n = n * 10 + (size_t)(*s->p++ - '0');
  return n;
}

static void sig_expect(sig *s, char c) {
  if (s->p >= s->end || *s->p != c) broken("the Lua side's signature is malformed", s->p);
  s->p++;
}

static const value **sig_id(sig *s, size_t id) {
  if (id >= s->nids) {
    size_t n = id + 64;
    s->ids = realloc(s->ids, n * sizeof *s->ids);
    memset(s->ids + s->nids, 0, (n - s->nids) * sizeof *s->ids);
    s->nids = n;
  }
  return &s->ids[id];
}

/* Check that v has the shape the next part of the signature describes. */
static void sig_check(sig *s, const value *v) {
  if (s->p >= s->end) broken("lx_to made more than the Lua value held", NULL);
  char tag = *s->p++;
  switch (tag) {
  case 'L': case 'D': {
    const value **slot = sig_id(s, sig_number(s));
    sig_expect(s, ':');
    size_t n = sig_number(s);
    sig_expect(s, ';');
    if (v->kind != (tag == 'L' ? VK_LIST : VK_DICT)) broken(tag == 'L' ? "a sequence did not become a list" : "a table did not become a dict", v_typename(v));
    if (pairs_get(&s->tables, v)) broken("two Lua tables became one value", NULL);
    pairs_put(&s->tables, v, v);
    *slot = v;
    if (tag == 'L') {
      if (v->u.seq.len != n) broken("a list of another length than its table", NULL);
      for (size_t i = 0; i < n; i++) sig_check(s, v->u.seq.items[i]);
    } else {
      if (dict_len(v) != n) broken("a dict of another size than its table (entries lost or merged)", NULL);
      size_t pos = 0;
      value *k, *x;
      while (dict_next(v, &pos, &k, &x)) sig_check(s, k), sig_check(s, x);
    }
    return;
  }
  case 'R': case 'U': {
    const value **slot = sig_id(s, sig_number(s));
    sig_expect(s, ';');
    if (tag == 'R' && !*slot) broken("the signature names a table before it", NULL);
    if (*slot && *slot != v) broken(tag == 'R' ? "a table met twice became two values" : "a userdata met twice became two values", NULL);
    *slot = v;
    return;
  }
  case 'b': sig_expect(s, ';'); if (v->kind != VK_BOOL) broken("a boolean became something else", v_typename(v)); return;
  case 'i': sig_expect(s, ';'); if (v->kind != VK_INT) broken("an integer became something else", v_typename(v)); return;
  case 'f': sig_expect(s, ';'); if (v->kind != VK_FLOAT) broken("a float became something else", v_typename(v)); return;
  case 's':
    sig_expect(s, ';');
    if (v->kind != VK_STR && v->kind != VK_BYTES) broken("a string became something else", v_typename(v));
    return;
  default: broken("the Lua side's signature has an unknown tag", s->p - 1);
  }
}

static void from_lua(shobj *p, const uint8_t *data, size_t size) {
  value *prog = v_tuple(size);
  for (size_t i = 0; i < size; i++) prog->u.seq.items[i] = v_int(data[i]);
  value *r = may_fail(invoke(p, "build", args1(prog)), "build");
  v_decref(prog);
  if (!r) return;
  if (r->kind != VK_TUPLE || r->u.seq.len != 2 || r->u.seq.items[1]->kind != VK_STR) broken("build: not (value, signature)", NULL);
  value *built = r->u.seq.items[0];
  const value *text = r->u.seq.items[1];
  sig s = {.p = text->u.s.data, .end = text->u.s.data + text->u.s.len};
  sig_check(&s, built);
  if (s.p != s.end) broken("lx_to made less than the Lua value held", NULL);
  free(s.ids);
  pairs_free(&s.tables);

  buf once = {0}, twice = {0};
  if (encode(built, &once)) {
    value *w = decode(&once);
    if (!encode(w, &twice) || !same_bytes(&once, &twice)) broken("a built value's pickle is not stable", NULL);
    value *c = must_return(invoke(p, "compare", args1(w)), "compare");
    if (c && (c->kind != VK_BOOL || !c->u.b)) broken("compare: what came back differs from what Lua built", c->kind == VK_STR ? c->u.s.data : NULL);
    v_decref(c);
    value *e = must_return(invoke(p, "echo", args1(w)), "echo");
    expect_same(w, e, true, "echo of a built value");
    v_decref(e), v_decref(w);
  }
  buf_free(&once), buf_free(&twice);
  v_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  if (!ready) setup(), ready = true;
  if (size < 2) return 0;
  size_t memory = cfg.lua_memory;
  tight = data[1] != 0;
  if (tight) cfg.lua_memory = (size_t)lua_gc(lx_L, LUA_GCCOUNT) * 1024 + (size_t)data[1] * 1024;
  const typeinfo *ti = registry_find("Probe", 5);
  value *args = v_tuple(0), *kwds = v_dict(), *err = NULL;
  shobj *p = ti ? registry_construct(ti, args, kwds, &err) : NULL;
  v_decref(args), v_decref(kwds);
  if (p) {
    if (data[0] & 0x80) from_lua(p, data + 2, size - 2);
    else from_python(p, data[0], data + 2, size - 2);
    obj_release(p);
  } else if (!tight || !message_of(err)) {
    broken("cannot make a Probe", message_of(err));
  }
  v_decref(err);
  cfg.lua_memory = memory;
  lua_gc(lx_L, LUA_GCCOLLECT); /* what Lua held goes now, so that a leak is a leak */
  return 0;
}
