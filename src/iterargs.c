/* iterargs.c: the items of an argument a method iterates, lazy iterators included, as data: the engine. */
#include "iterargs_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "objects.h"
#include "ptrmap.h"
#include "seq.h"

size_t iterargs_max_steps = 10u << 20;

/* ---- ints of any size: what range, count and enumerate add ---- */

/* v as n little-endian two's complement bytes (n at least its own length). */
static void le_bytes(const value *v, uint8_t *out, size_t n) {
  if (v->kind == VK_BIGINT) {
    size_t len = v->u.s.len;
    memcpy(out, v->u.s.data, len);
    memset(out + len, (v->u.s.data[len - 1] & 0x80) ? 0xff : 0, n - len);
    return;
  }
  uint64_t u = (uint64_t)small(v);
  for (size_t i = 0; i < n; i++) out[i] = i < 8 ? (uint8_t)(u >> (8 * i)) : (small(v) < 0 ? 0xff : 0);
}

/* a + b for two ints (a new value; an int when it fits). */
static value *int_add(const value *a, const value *b) {
  int64_t r;
  if (a->kind != VK_BIGINT && b->kind != VK_BIGINT && !__builtin_add_overflow(small(a), small(b), &r)) return v_int(r);
  size_t la = a->kind == VK_BIGINT ? a->u.s.len : 8, lb = b->kind == VK_BIGINT ? b->u.s.len : 8;
  size_t n = (la > lb ? la : lb) + 1;
  uint8_t *x = xmalloc(3 * n), *y = x + n, *s = y + n;
  le_bytes(a, x, n);
  le_bytes(b, y, n);
  unsigned carry = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned t = (unsigned)x[i] + y[i] + carry;
    s[i] = (uint8_t)t;
    carry = t >> 8;
  }
  value *v = v_bigint_le(s, n);
  free(x);
  return v;
}

/* An int as a double, roughly (for a size estimate only). */
static double as_double(const value *v) {
  if (v->kind != VK_BIGINT) return (double)small(v);
  double d = 0;
  for (size_t k = v->u.s.len; k-- > 0;) d = d * 256 + (uint8_t)v->u.s.data[k];
  return (v->u.s.data[v->u.s.len - 1] & 0x80) ? d - ldexp(1.0, 8 * (int)v->u.s.len) : d;
}

static bool negative(const value *v) {
  return v->kind == VK_BIGINT ? (v->u.s.data[v->u.s.len - 1] & 0x80) != 0 : small(v) < 0;
}

/* ---- the iterators made, and the steps they take ---- */

it *ia_new_it(ctx *c, itkind kind) {
  if (c->nall == c->capall) {
    c->capall = c->capall ? 2 * c->capall : 8;
    c->all = xrealloc(c->all, c->capall * sizeof *c->all);
  }
  it *i = xcalloc(1, sizeof *i);
  i->kind = (uint8_t)kind;
  c->all[c->nall++] = i;
  return i;
}

static void free_it(it *i) {
  switch (i->kind) {
  case IT_SEQ:
  case IT_BYTES: v_decref(i->u.seq.items); break;
  case IT_STR: v_decref(i->u.str.s); break;
  case IT_KEYS: v_decref(i->u.keys.d); break;
  case IT_BIGRANGE:
    v_decref(i->u.big.next);
    v_decref(i->u.big.step);
    v_decref(i->u.big.stop);
    break;
  case IT_ZIP: free(i->u.zip.its); break;
  case IT_ENUM: v_decref(i->u.en.index); break;
  case IT_COUNT:
    v_decref(i->u.count.cur);
    v_decref(i->u.count.step);
    break;
  case IT_REPEAT: v_decref(i->u.rep.v); break;
  default: break;
  }
  free(i);
}

static value *too_big(ctx *c) {
  char name[160];
  ia_type_name(c->root, name, sizeof name);
  return ia_fail(c, false, "MemoryError",
                 "'%.150s' object too large for shmgr: evaluating an iterable argument may take at most %zu steps "
                 "(4 x limits.max_objects)",
                 name, iterargs_max_steps);
}

/* Count n steps; false (with *err) past the limit. */
bool ia_step(ctx *c, size_t n, value **err) {
  if (n > iterargs_max_steps - c->steps) {
    *err = too_big(c);
    return false;
  }
  c->steps += n;
  return true;
}

/* ---- running them: next() of each kind, as CPython's ---- */

/* zip_next, with the strict checks of 3.10: which argument ran out first, and how. */
static value *zip_next(ctx *c, it *z, value **err) {
  size_t n = z->u.zip.n;
  if (!n) return NULL;
  value *t = v_tuple(n);
  for (size_t k = 0; k < n; k++) {
    value *x = ia_next(c, z->u.zip.its[k], err);
    if (x) {
      t->u.seq.items[k] = x;
      continue;
    }
    v_decref(t); /* its empty slots are NULL */
    if (*err || !z->u.zip.strict) return NULL;
    size_t bad = k;
    if (k == 0) { /* the first ran out: all the others must have too */
      for (bad = 1; bad < n; bad++) {
        value *y = ia_next(c, z->u.zip.its[bad], err);
        if (*err) return NULL;
        if (y) {
          v_decref(y);
          break;
        }
      }
      if (bad == n) return NULL;
    }
    *err = ia_fail(c, true, "ValueError", "zip() argument %zu is %s than argument%s%zu", bad + 1,
                   k ? "shorter" : "longer", bad == 1 ? " " : "s 1-", bad);
    return NULL;
  }
  if (!ia_step(c, 1, err)) {
    v_decref(t);
    return NULL;
  }
  return t;
}

static value *islice_next(ctx *c, it *s, value **err) {
  if (!s->u.isl.src) return NULL;
  while (s->u.isl.cnt < s->u.isl.next) {
    value *x = ia_next(c, s->u.isl.src, err);
    if (!x) goto empty;
    v_decref(x);
    s->u.isl.cnt++;
  }
  if (s->u.isl.stop != -1 && s->u.isl.cnt >= s->u.isl.stop) goto empty;
  value *x = ia_next(c, s->u.isl.src, err);
  if (!x) goto empty;
  s->u.isl.cnt++;
  int64_t old = s->u.isl.next;
  if (__builtin_add_overflow(old, s->u.isl.step, &s->u.isl.next) ||
      (s->u.isl.stop != -1 && s->u.isl.next > s->u.isl.stop))
    s->u.isl.next = s->u.isl.stop;
  return x;
empty:
  s->u.isl.src = NULL;
  return NULL;
}

static value *chain_next(ctx *c, it *ch, value **err) {
  while (ch->u.chain.source) {
    if (!ch->u.chain.active) {
      value *iterable = ia_next(c, ch->u.chain.source, err);
      if (iterable) {
        ch->u.chain.active = ia_make(c, iterable, 1, err);
        v_decref(iterable); /* what the iterator needs of it, it holds */
      }
      if (!ch->u.chain.active) {
        ch->u.chain.source = NULL;
        return NULL;
      }
    }
    value *x = ia_next(c, ch->u.chain.active, err);
    if (x || *err) return x;
    ch->u.chain.active = NULL;
  }
  return NULL;
}

static value *count_next(ctx *c, it *i, value **err) {
  if (!ia_step(c, 1, err)) return NULL;
  value *cur = i->u.count.cur, *st = i->u.count.step, *x;
  if (cur->kind == VK_FLOAT || st->kind == VK_FLOAT) {
    double a = cur->kind == VK_FLOAT ? cur->u.f : (double)small(cur), b = st->kind == VK_FLOAT ? st->u.f : (double)small(st);
    x = v_float(a + b);
  } else {
    x = int_add(cur, st);
  }
  i->u.count.cur = x;
  return cur; /* the reference the iterator held */
}

static value *next_of(ctx *c, it *i, value **err) {
  switch (i->kind) {
  case IT_SEQ: {
    if (!i->u.seq.left) return NULL;
    if (!ia_step(c, 1, err)) return NULL;
    i->u.seq.left--;
    size_t k = i->u.seq.rev ? --i->u.seq.pos : i->u.seq.pos++;
    return v_incref(i->u.seq.items->u.seq.items[k]);
  }
  case IT_BYTES: {
    if (!i->u.seq.left) return NULL;
    if (!ia_step(c, 1, err)) return NULL;
    i->u.seq.left--;
    size_t k = i->u.seq.rev ? --i->u.seq.pos : i->u.seq.pos++;
    return v_int((uint8_t)i->u.seq.items->u.s.data[k]);
  }
  case IT_STR: {
    const value *s = i->u.str.s;
    size_t at = i->u.str.pos, n;
    if (i->u.str.rev) {
      if (!at) return NULL;
      while (--at > 0 && ((uint8_t)s->u.s.data[at] & 0xc0) == 0x80) {}
      n = i->u.str.pos - at;
      i->u.str.pos = at;
    } else {
      if (at >= s->u.s.len) return NULL;
      n = utf8_len((uint8_t)s->u.s.data[at]);
      if (n > s->u.s.len - at) n = s->u.s.len - at;
      i->u.str.pos += n;
    }
    return ia_step(c, 1, err) ? v_str(s->u.s.data + at, n) : NULL;
  }
  case IT_KEYS: {
    value *k;
    if (!dict_next(i->u.keys.d, &i->u.keys.pos, &k, NULL) || !ia_step(c, 1, err)) return NULL;
    return v_incref(k);
  }
  case IT_SHARED: {
    if (!ia_step(c, 1, err)) return NULL;
    value *none = v_tuple(0);
    outcome r = i->u.shared->type->call(i->u.shared, "__next__", none, NULL, NULL);
    v_decref(none);
    if (r.st == CALL_RETURN) return r.v;
    if (!seq_is_error(r.v, "StopIteration")) {
      c->python_error = true; /* RuntimeError: the dict changed size */
      *err = r.v;
    } else {
      v_decref(r.v);
    }
    return NULL;
  }
  case IT_RANGE: {
    if (!i->u.range.left) return NULL;
    if (!ia_step(c, 1, err)) return NULL;
    int64_t x = i->u.range.cur;
    if (--i->u.range.left) i->u.range.cur = (int64_t)((uint64_t)x + (uint64_t)i->u.range.step);
    return v_int(x);
  }
  case IT_BIGRANGE: {
    bool down = negative(i->u.big.step);
    int more = down ? v_less(i->u.big.stop, i->u.big.next, err) : v_less(i->u.big.next, i->u.big.stop, err);
    if (more <= 0 || !ia_step(c, 1, err)) return NULL;
    value *x = i->u.big.next;
    i->u.big.next = int_add(x, i->u.big.step);
    return x;
  }
  case IT_ZIP: return zip_next(c, i, err);
  case IT_ENUM: {
    value *x = ia_next(c, i->u.en.src, err);
    if (!x) return NULL;
    if (!ia_step(c, 1, err)) {
      v_decref(x);
      return NULL;
    }
    value *t = v_tuple(2), *one = v_int(1);
    t->u.seq.items[0] = i->u.en.index;
    t->u.seq.items[1] = x;
    i->u.en.index = int_add(i->u.en.index, one);
    v_decref(one);
    return t;
  }
  case IT_TRUTH:
    for (;;) {
      value *x = ia_next(c, i->u.truth.src, err);
      if (!x) return NULL;
      if (x->kind == VK_OPAQUE) { /* its truth is its class's __bool__ or __len__: code */
        char name[160];
        ia_type_name(x, name, sizeof name);
        v_decref(x);
        *err = ia_fail(c, false, "TypeError",
                       "shmgr does not run client code: cannot tell whether a '%.150s' object is true, as "
                       "filter(None, ...) must; pass a list instead",
                       name);
        return NULL;
      }
      if (v_truth(x)) return x;
      v_decref(x);
    }
  case IT_COUNT: return count_next(c, i, err);
  case IT_REPEAT:
    if (!i->u.rep.left || !ia_step(c, 1, err)) return NULL;
    if (i->u.rep.left > 0) i->u.rep.left--;
    return v_incref(i->u.rep.v);
  case IT_ISLICE: return islice_next(c, i, err);
  default: return chain_next(c, i, err);
  }
}

/* The next item of i (a new reference), or NULL: the end (*err NULL) or an error. */
value *ia_next(ctx *c, it *i, value **err) {
  *err = NULL;
  if (i->busy || c->running >= MAX_NESTING) {
    *err = ia_fail(c, false, "RecursionError", "an iterator in the argument yields itself or is nested too deep");
    return NULL;
  }
  i->busy = true;
  c->running++;
  value *x = next_of(c, i, err);
  c->running--;
  i->busy = false;
  return x;
}

value *ia_drain(ctx *c, it *i, value **err) {
  value *out = v_list(0), *x;
  while ((x = ia_next(c, i, err))) list_append(out, x);
  if (*err) {
    v_decref(out);
    return NULL;
  }
  return out;
}

/* How many items i will give at least (UINT64_MAX: for ever), so that what can only end in
   MemoryError ends there at once: list(range(10**12)), list(itertools.count()). *budget
   bounds the walk: iterators shared in a pickle can form a lattice with exponentially many
   paths. */
static uint64_t at_least(const it *i, int *budget) {
  if (--*budget < 0) return 0;
  switch (i->kind) {
  case IT_SEQ:
  case IT_BYTES: return i->u.seq.left;
  case IT_STR: /* at most 4 bytes a character */
    return (i->u.str.rev ? i->u.str.pos : i->u.str.s->u.s.len - i->u.str.pos) / 4;
  case IT_KEYS: return i->u.keys.pos ? 0 : dict_len(i->u.keys.d);
  case IT_RANGE: return i->u.range.left;
  case IT_COUNT: return UINT64_MAX;
  case IT_REPEAT: return i->u.rep.left < 0 ? UINT64_MAX : (uint64_t)i->u.rep.left;
  case IT_ENUM: return at_least(i->u.en.src, budget);
  case IT_ZIP: {
    uint64_t m = i->u.zip.n ? UINT64_MAX : 0;
    for (size_t k = 0; k < i->u.zip.n; k++) {
      uint64_t x = at_least(i->u.zip.its[k], budget);
      if (x < m) m = x;
    }
    return m;
  }
  case IT_BIGRANGE: { /* beyond 64 bits: roughly, which is all a comparison with the limit needs */
    double d = (as_double(i->u.big.stop) - as_double(i->u.big.next)) / as_double(i->u.big.step);
    return d >= 1e18 ? UINT64_MAX : d > 2 ? (uint64_t)(d / 2) : 0;
  }
  default: return 0;
  }
}

value *iterargs_items(const value *v, value **err) {
  *err = NULL;
  if (v->kind == VK_LIST || v->kind == VK_TUPLE) { /* the common case, as it is */
    value *out = v_list(v->u.seq.len);
    for (size_t k = 0; k < v->u.seq.len; k++) list_append(out, v_incref(v->u.seq.items[k]));
    return out;
  }
  ctx c = {.root = v};
  value *out = NULL;
  it *i = ia_make(&c, v, 0, err);
  int budget = 1000;
  if (i && at_least(i, &budget) > iterargs_max_steps) *err = too_big(&c);
  else if (i) {
    out = v_list(0);
    value *x;
    while ((x = ia_next(&c, i, err))) list_append(out, x);
  }
  for (size_t k = 0; k < c.nall; k++) free_it(c.all[k]);
  free(c.all);
  size_t pos = 0;
  const void *key;
  while (ptrmap_next(&c.memo, &pos, &key, NULL)) v_decref((value *)key);
  ptrmap_free(&c.memo);
  if (*err && out && !c.python_error) {
    v_decref(out);
    out = NULL;
  }
  return out;
}

value *iterargs_error(value *own, value *pending) {
  if (!own) return pending;
  v_decref(pending);
  return own;
}

bool iterargs_not_iterable(const value *v, const value *exc) {
  if (!seq_is_error(exc, "TypeError")) return false;
  const value *args = exc->u.o->args;
  if (!args || args->kind != VK_TUPLE || args->u.seq.len != 1 || args->u.seq.items[0]->kind != VK_STR) return false;
  char name[160], msg[200];
  ia_type_name(v, name, sizeof name); /* v's own name: not a member of v that is not iterable */
  snprintf(msg, sizeof msg, "'%.150s' object is not iterable", name);
  return strcmp(args->u.seq.items[0]->u.s.data, msg) == 0;
}
