/* iterargs.c: the items of an argument a method iterates, lazy iterators included, as data. */
#include "iterargs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "objects.h"
#include "ptrmap.h"
#include "seq.h"
#include "t_array.h"
#include "t_dict.h"
#include "t_iterator.h"
#include "t_list.h"
#include "t_set.h"

size_t iterargs_max_steps = 10u << 20;

/* Iterators nested in one another, and next() calls nested at run time: a pickle can nest
   recipes a thousand deep, and a chain can be made to yield itself. */
#define MAX_NESTING 100

/* A client's iterator, rebuilt from its recipe as a small state machine. CPython's server
   would unpickle the real iterator and call next() on it; each kind here does what that
   next() does, on values. */
typedef enum itkind {
  IT_SEQ,      /* the items of a list or tuple, forward or backward from a position */
  IT_BYTES,    /* the ints of a bytes or bytearray, the same way */
  IT_STR,      /* the characters of a str, the same way */
  IT_KEYS,     /* the keys of a dict, the members of a set */
  IT_SHARED,   /* a shared Iterator of this server (a proxy of it was sent): its __next__ */
  IT_RANGE,    /* range within 64 bits */
  IT_BIGRANGE, /* range with a bound beyond 64 bits, in value arithmetic */
  IT_ZIP,
  IT_ENUM,
  IT_TRUTH,  /* filter(None, it) */
  IT_COUNT,  /* itertools.count */
  IT_REPEAT, /* itertools.repeat */
  IT_ISLICE, /* itertools.islice */
  IT_CHAIN,  /* itertools.chain */
} itkind;

typedef struct it it;
struct it {
  uint8_t kind;
  bool busy; /* inside its own next(): a cycle (a chain yielding itself) is an error */
  union {
    struct { value *items; size_t pos, left; bool rev; } seq;       /* items held; also IT_BYTES */
    struct { value *s; size_t pos; bool rev; } str;                 /* s held; pos: a byte offset */
    struct { value *d; size_t pos; } keys;                          /* d held; pos: dict_next's */
    shobj *shared;                                                  /* held by the argument */
    struct { int64_t cur, step; uint64_t left; } range;
    struct { value *next, *step, *stop; } big;                      /* held */
    struct { it **its; size_t n; bool strict; } zip;
    struct { it *src; value *index; } en;                           /* index held */
    struct { it *src; } truth;
    struct { value *cur, *step; } count;                            /* held */
    struct { value *v; int64_t left; } rep;                         /* v held; left < 0: for ever */
    struct { it *src; int64_t next, stop, step, cnt; } isl;         /* stop -1: None; src NULL: done */
    struct { it *source, *active; } chain;                          /* source NULL: done */
  } u;
};

/* One evaluation: every iterator made (freed together at the end), the recipes already
   made into iterators (so that one iterator sent twice is one iterator), the step count. */
typedef struct ctx {
  const value *root;
  size_t steps;
  int running;       /* nested next() calls */
  bool python_error; /* the error is one CPython raises at the same point, not a refusal */
  it **all;
  size_t nall, capall;
  ptrmap memo;       /* recipe (held) -> the iterator it made */
} ctx;

/* ---- errors ---- */

static value *fail(ctx *c, bool python, const char *cls, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  c->python_error = python;
  return v_exception_msg(cls, msg);
}

static bool is_global(const value *g, const char *module, const char *name) {
  return g && g->kind == VK_GLOBAL && v_is_str(g->u.g.module, module) && (!name || v_is_str(g->u.g.name, name));
}

/* The name Python gives the type of what v makes ('zip', 'list_iterator',
   'itertools.count'), for messages. */
static void type_name(const value *v, char *out, size_t n) {
  const value *g = v->kind == VK_OPAQUE && !v->u.o->shared ? v->u.o->callable : NULL;
  const value *args = g ? v->u.o->args : NULL;
  size_t nargs = args && args->kind == VK_TUPLE ? args->u.seq.len : 0;
  if (is_global(g, "builtins", "iter") && nargs == 2) snprintf(out, n, "callable_iterator");
  else if (is_global(g, "builtins", "iter") && nargs == 1)
    snprintf(out, n, "%.100s_iterator", seq_typename(args->u.seq.items[0]));
  else if (is_global(g, "builtins", "reversed") && nargs == 1 && args->u.seq.items[0]->kind == VK_LIST)
    snprintf(out, n, "list_reverseiterator");
  else if (is_global(g, "itertools", NULL) && g->u.g.name->kind == VK_STR)
    snprintf(out, n, "itertools.%s", g->u.g.name->u.s.data);
  else snprintf(out, n, "%s", seq_typename(v));
}

static value *not_iterable(ctx *c, const value *v) {
  char name[160];
  type_name(v, name, sizeof name);
  return fail(c, true, "TypeError", "'%.150s' object is not iterable", name);
}

/* How a function argument reads in a message: "function int", "function str.isdigit",
   "function mymodule.parse", "a 'partial' object". */
static void function_name(const value *f, char *out, size_t n) {
  if (f->kind == VK_GLOBAL && f->u.g.module->kind == VK_STR && f->u.g.name->kind == VK_STR) {
    if (v_is_str(f->u.g.module, "builtins")) snprintf(out, n, "function %.100s", f->u.g.name->u.s.data);
    else snprintf(out, n, "function %.100s.%.100s", f->u.g.module->u.s.data, f->u.g.name->u.s.data);
    return;
  }
  /* a method is pickled as getattr(owner, name) */
  const value *args = f->kind == VK_OPAQUE ? f->u.o->args : NULL;
  if (f->kind == VK_OPAQUE && is_global(f->u.o->callable, "builtins", "getattr") && args && args->kind == VK_TUPLE &&
      args->u.seq.len == 2 && args->u.seq.items[1]->kind == VK_STR && args->u.seq.items[0]->kind == VK_GLOBAL) {
    char owner[180];
    function_name(args->u.seq.items[0], owner, sizeof owner);
    snprintf(out, n, "%.179s.%.100s", owner, args->u.seq.items[1]->u.s.data);
    return;
  }
  if (f->kind == VK_NONE) snprintf(out, n, "None");
  else snprintf(out, n, "a '%.100s' object", seq_typename(f));
}

/* What only running code could iterate: said so, naming what it is and, when one was sent
   with it, the function it would call. */
static value *refuse(ctx *c, const value *v, const value *func) {
  char name[160], fn[300] = "", detail[420] = "";
  type_name(v, name, sizeof name);
  if (func) {
    function_name(func, fn, sizeof fn);
    snprintf(detail, sizeof detail, " (%.100s with %s)", v->u.o->callable->u.g.name->u.s.data, fn);
  }
  return fail(c, false, "TypeError", "shmgr does not run client code: cannot iterate a '%.150s' object%s; pass a list instead",
              name, detail);
}

static value *too_big(ctx *c) {
  char name[160];
  type_name(c->root, name, sizeof name);
  return fail(c, false, "MemoryError",
              "'%.150s' object too large for shmgr: evaluating an iterable argument may take at most %zu steps "
              "(4 x limits.max_objects)",
              name, iterargs_max_steps);
}

/* ---- ints of any size: what range, count and enumerate add ---- */

static bool is_int(const value *v) { return v->kind == VK_INT || v->kind == VK_BOOL || v->kind == VK_BIGINT; }

static int64_t small(const value *v) { return v->kind == VK_BOOL ? v->u.b : v->u.i; }

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

/* ---- making iterators ---- */

static it *new_it(ctx *c, itkind kind) {
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

static it *memo_get(const ctx *c, const value *key) {
  const size_t *i = ptrmap_get(&c->memo, key);
  return i ? (it *)(uintptr_t)*i : NULL;
}

/* Remember that the recipe key made iterator i (key held until the end, so that its address
   is not reused by a value made meanwhile). */
static void memo_put(ctx *c, const value *key, it *i) {
  bool added;
  size_t *s = ptrmap_put(&c->memo, key, 0, &added);
  if (added) v_incref((value *)key);
  *s = (uintptr_t)i;
}

static it *make(ctx *c, const value *v, int depth, value **err);
static value *drain(ctx *c, it *i, value **err);
static value *next(ctx *c, it *i, value **err);

/* Count n steps; false (with *err) past the limit. */
static bool step(ctx *c, size_t n, value **err) {
  if (n > iterargs_max_steps - c->steps) {
    *err = too_big(c);
    return false;
  }
  c->steps += n;
  return true;
}

/* Length of the UTF-8 sequence that starts with byte b (1 for a stray byte). */
static size_t utf8_len(uint8_t b) { return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4; }

/* The byte offset of character k of s, or of its end when s is shorter (*k then cut to its
   length); each character passed is a step. */
static bool str_offset(ctx *c, const value *s, int64_t *k, size_t *off, value **err) {
  size_t o = 0;
  int64_t n = 0;
  for (; n < *k && o < s->u.s.len; n++) o += utf8_len((uint8_t)s->u.s.data[o]);
  if (o > s->u.s.len) o = s->u.s.len;
  if (!step(c, (size_t)n, err)) return false;
  *k = n;
  *off = o;
  return true;
}

/* Over a sequence (a list, tuple, bytes, bytearray or str, held): forward from position pos,
   or backward from pos down to 0, where the sequence iterators' setstate clips pos to [0, n]
   forward and [-1, n-1] backward (INT64_MAX: from the end). Nothing is copied. NULL with
   *err past the step limit (finding a position in a str is counted). */
static it *seq_it(ctx *c, value *seq, int64_t pos, bool rev, value **err) {
  if (seq->kind == VK_STR) {
    it *i = new_it(c, IT_STR);
    i->u.str.s = seq;
    i->u.str.rev = rev;
    size_t off = rev ? seq->u.s.len : 0;
    if (rev && pos < 0) off = 0;
    else if (rev && pos != INT64_MAX) { /* one past character pos */
      int64_t k = pos + 1;
      if (!str_offset(c, seq, &k, &off, err)) return NULL;
    } else if (!rev && pos > 0 && !str_offset(c, seq, &pos, &off, err)) {
      return NULL;
    }
    i->u.str.pos = off;
    return i;
  }
  bool bytes = seq->kind == VK_BYTES || seq->kind == VK_BYTEARRAY;
  it *i = new_it(c, bytes ? IT_BYTES : IT_SEQ);
  int64_t n = (int64_t)(bytes ? seq->u.s.len : seq->u.seq.len);
  i->u.seq.items = seq;
  i->u.seq.rev = rev;
  if (rev) {
    if (pos > n - 1) pos = n - 1;
    if (pos < -1) pos = -1;
    i->u.seq.pos = (size_t)(pos + 1); /* one past the next item, so that it stays unsigned */
    i->u.seq.left = (size_t)(pos + 1);
  } else {
    if (pos < 0) pos = 0;
    if (pos > n) pos = n;
    i->u.seq.pos = (size_t)pos;
    i->u.seq.left = (size_t)(n - pos);
  }
  return i;
}

/* Over the keys of a dict or the members of a set (held). */
static it *keys_it(ctx *c, value *d) {
  it *i = new_it(c, IT_KEYS);
  i->u.keys.d = d;
  return i;
}

/* A recipe by REDUCE of module.name with a tuple of arguments. */
static bool made_by(const value *v, const char *module, const char *name) {
  return v->kind == VK_OPAQUE && !v->u.o->shared && v->u.o->how == OPQ_REDUCE &&
         is_global(v->u.o->callable, module, name) && v->u.o->args && v->u.o->args->kind == VK_TUPLE;
}

/* Whether v's recipe has no step after it was made but at most one BUILD (*state, or NULL). */
static bool at_most_build(const value *v, const value **state) {
  const opaque *o = v->u.o;
  *state = NULL;
  if (o->nops > 1 || (o->nops == 1 && o->ops[0].op != OPQ_BUILD)) return false;
  if (o->nops) *state = o->ops[0].a;
  return true;
}

/* An array.array as clients send it: its items (made anew each time, so counted as steps),
   or NULL (with *err when it is one but cannot be read). */
static value *array_items_of(ctx *c, const value *v, value **err) {
  value *items = array_value_items(v, err);
  if (items && !step(c, items->u.seq.len, err)) {
    v_decref(items);
    return NULL;
  }
  return items;
}

/* The items of a deque recipe: deque(iterable, maxlen) then what was appended, keeping the
   last maxlen. A new list, or NULL with *err. */
static value *deque_items(ctx *c, const value *v, int depth, value **err) {
  const value *args = v->u.o->args;
  size_t n = args->u.seq.len;
  value *out = v_list(0);
  if (n >= 1) {
    it *i = make(c, args->u.seq.items[0], depth + 1, err);
    value *first = i ? drain(c, i, err) : NULL;
    if (!first) {
      v_decref(out);
      return NULL;
    }
    v_decref(out);
    out = first;
  }
  const opaque *o = v->u.o;
  if (!step(c, o->nops, err)) { /* copied anew for each use of the deque: counted */
    v_decref(out);
    return NULL;
  }
  for (size_t k = 0; k < o->nops; k++)
    if (o->ops[k].op == OPQ_APPEND) list_append(out, v_incref(o->ops[k].a));
  int64_t maxlen;
  if (n >= 2 && seq_index(args->u.seq.items[1], &maxlen) >= 0 && maxlen >= 0 && (uint64_t)maxlen < out->u.seq.len) {
    size_t drop = out->u.seq.len - (size_t)maxlen;
    for (size_t k = 0; k < drop; k++) v_decref(out->u.seq.items[k]);
    memmove(out->u.seq.items, out->u.seq.items + drop, (size_t)maxlen * sizeof(value *));
    out->u.seq.len = (size_t)maxlen;
  }
  return out;
}

/* A copy of what a proxy of this server's list, dict or set holds, counted as steps (made
   anew for each use); NULL with *err. */
static value *shared_copy(ctx *c, const value *proxy, value **err) {
  const shobj *o = proxy->u.o->shared;
  value *copy = o->type->getvalue((shobj *)o, err);
  if (copy && !step(c, copy->kind == VK_LIST ? copy->u.seq.len : dict_len(copy), err)) {
    v_decref(copy);
    return NULL;
  }
  return copy;
}

/* v itself when it is a sequence (what iter(v) and reversed(v) index by position), held;
   an array's items or a list proxy's, counted; NULL (*err NULL) when v is no sequence. */
static value *sequence(ctx *c, const value *v, value **err) {
  *err = NULL;
  switch (v->kind) {
  case VK_LIST:
  case VK_TUPLE:
  case VK_STR:
  case VK_BYTES:
  case VK_BYTEARRAY: return v_incref((value *)v);
  case VK_OPAQUE: /* iter(ListProxy) is Python's sequence iterator over the proxy: zip(proxy, ...) */
    if (v->u.o->shared) return v->u.o->shared->type == &list_type ? shared_copy(c, v, err) : NULL;
    return made_by(v, "array", "array") ? array_items_of(c, v, err) : NULL;
  default: return NULL;
  }
}

/* A position from BUILD (an int; a big one clips), or an exception. */
static value *position(ctx *c, const value *state, int64_t *pos) {
  if (!state || seq_index(state, pos) >= 0) return NULL;
  return fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(state));
}

/* range(start, stop, step) from a recipe's arguments: the bounds, or an exception as
   range() raises it. */
static value *range_bounds(ctx *c, const value *args, const value *b[3]) {
  static value zero = {.refs = 1u << 30, .kind = VK_INT, .u.i = 0}, one = {.refs = 1u << 30, .kind = VK_INT, .u.i = 1};
  size_t n = args->u.seq.len;
  if (n < 1 || n > 3) return fail(c, true, "TypeError", "range expected at most 3 arguments, got %zu", n);
  b[0] = n == 1 ? &zero : args->u.seq.items[0];
  b[1] = n == 1 ? args->u.seq.items[0] : args->u.seq.items[1];
  b[2] = n == 3 ? args->u.seq.items[2] : &one;
  for (int k = 0; k < 3; k++)
    if (!is_int(b[k]))
      return fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(b[k]));
  if (b[2]->kind != VK_BIGINT && small(b[2]) == 0) return fail(c, true, "ValueError", "range() arg 3 must not be zero");
  return NULL;
}

/* Items left in a 64-bit range from start towards stop by step (unsigned, so that wide
   ranges cannot overflow). */
static uint64_t range_count(int64_t start, int64_t stop, int64_t step) {
  if (step > 0 && start < stop) return ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
  if (step < 0 && start > stop) return ((uint64_t)start - (uint64_t)stop - 1) / ((uint64_t)0 - (uint64_t)step) + 1;
  return 0;
}

/* The iterator of a range recipe: iter(range(...)) at position index (rangeiter_setstate
   clips it to [0, len]), reversed when rev. */
static it *range_it(ctx *c, const value *range, const value *index, bool rev, value **err) {
  const value *b[3];
  if ((*err = range_bounds(c, range->u.o->args, b))) return NULL;
  int64_t pos = 0;
  if (index && seq_index(index, &pos) < 0)
    return *err = fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(index)),
           NULL;
  if (b[0]->kind != VK_BIGINT && b[1]->kind != VK_BIGINT && b[2]->kind != VK_BIGINT) {
    int64_t start = small(b[0]), stop = small(b[1]), st = small(b[2]);
    uint64_t count = range_count(start, stop, st);
    if (rev && count) { /* reversed(range(...)) is the range from its last item back, by -step */
      if (st == INT64_MIN) goto big;
      start = (int64_t)((uint64_t)start + (count - 1) * (uint64_t)st);
      st = -st;
    }
    if (pos < 0) pos = 0;
    if ((uint64_t)pos > count) pos = (int64_t)count;
    it *i = new_it(c, IT_RANGE);
    i->u.range.left = count - (uint64_t)pos;
    /* an item that exists fits in 64 bits, whatever the intermediate product does */
    i->u.range.cur = i->u.range.left ? (int64_t)((uint64_t)start + (uint64_t)pos * (uint64_t)st) : 0;
    i->u.range.step = st;
    return i;
  }
big:
  if (rev) {
    *err = fail(c, false, "OverflowError", "shmgr cannot reverse a range with bounds beyond 64 bits");
    return NULL;
  }
  it *i = new_it(c, IT_BIGRANGE); /* range() takes a bool as the int it is */
  i->u.big.next = b[0]->kind == VK_BOOL ? v_int(b[0]->u.b) : v_incref((value *)b[0]);
  i->u.big.step = b[2]->kind == VK_BOOL ? v_int(b[2]->u.b) : v_incref((value *)b[2]);
  i->u.big.stop = v_incref((value *)b[1]);
  for (int64_t k = 0; k < pos; k++) { /* skipped one step at a time, each one counted */
    value *x = next(c, i, err);
    if (!x) return *err ? NULL : i;
    v_decref(x);
  }
  return i;
}

/* iter(x) with the position BUILD gave a partly consumed sequence iterator. */
static it *iter_it(ctx *c, const value *recipe, const value *x, const value *state, int depth, value **err) {
  if (made_by(x, "builtins", "range") && x->u.o->nops == 0) return range_it(c, x, state, false, err);
  value *seq = sequence(c, x, err);
  if (seq) {
    int64_t p = 0;
    if ((*err = position(c, state, &p))) {
      v_decref(seq);
      return NULL;
    }
    it *i = seq_it(c, seq, p, false, err); /* holds seq, even when NULL */
    return i;
  }
  if (*err) return NULL;
  if (state) { /* only sequence iterators take a position */
    *err = refuse(c, recipe, NULL);
    return NULL;
  }
  return make(c, x, depth + 1, err);
}

/* reversed(x) from a position (reversed_setstate), as CPython's reversed() picks its way. */
static it *reversed_it(ctx *c, const value *x, const value *state, int depth, value **err) {
  if (made_by(x, "builtins", "range") && x->u.o->nops == 0) return range_it(c, x, state, true, err);
  value *seq = sequence(c, x, err);
  if (*err) return NULL;
  if (!seq) {
    /* dict, OrderedDict and deque have __reversed__; their reverse iterators take no position */
    bool keyed = x->kind == VK_DICT || made_by(x, "collections", "OrderedDict") || made_by(x, "collections", "deque");
    if (!keyed || state) {
      if (x->kind == VK_OPAQUE && !keyed && !made_by(x, "builtins", NULL) && !made_by(x, "itertools", NULL)) {
        *err = refuse(c, x, NULL); /* a class of the client's: its __reversed__ would have to run */
        return NULL;
      }
      char name[160];
      type_name(x, name, sizeof name);
      *err = fail(c, true, "TypeError", "'%.150s' object is not reversible", name);
      return NULL;
    }
    it *fwd = make(c, x, depth + 1, err);
    if (!fwd || !(seq = drain(c, fwd, err))) return NULL;
  }
  int64_t p = INT64_MAX;
  if ((*err = position(c, state, &p))) {
    v_decref(seq);
    return NULL;
  }
  return seq_it(c, seq, p, true, err);
}

/* enumerate(iterable, start): start must be an int (PyNumber_Index: a bool counts as one). */
static it *enumerate_it(ctx *c, const value *args, int depth, value **err) {
  size_t n = args->u.seq.len;
  if (n < 1 || n > 2) {
    *err = fail(c, true, "TypeError", "enumerate() takes at most 2 arguments (%zu given)", n);
    return NULL;
  }
  const value *start = n == 2 ? args->u.seq.items[1] : NULL;
  if (start && !is_int(start)) {
    *err = fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(start));
    return NULL;
  }
  it *src = make(c, args->u.seq.items[0], depth + 1, err);
  if (!src) return NULL;
  it *i = new_it(c, IT_ENUM);
  i->u.en.src = src;
  i->u.en.index = !start ? v_int(0) : start->kind == VK_BOOL ? v_int(start->u.b) : v_incref((value *)start);
  return i;
}

static it *zip_it(ctx *c, const value *args, const value *state, int depth, value **err) {
  size_t n = args->u.seq.len;
  it **its = xcalloc(n, sizeof *its);
  for (size_t k = 0; k < n; k++)
    if (!(its[k] = make(c, args->u.seq.items[k], depth + 1, err))) {
      free(its);
      return NULL;
    }
  it *i = new_it(c, IT_ZIP);
  i->u.zip.its = its;
  i->u.zip.n = n;
  i->u.zip.strict = state && v_truth(state); /* zip_setstate: the strict flag */
  return i;
}

/* itertools.count(start=0, step=1) of ints or floats. */
static it *count_it(ctx *c, const value *recipe, const value *args, value **err) {
  size_t n = args->u.seq.len;
  const value *start = n >= 1 ? args->u.seq.items[0] : NULL, *st = n >= 2 ? args->u.seq.items[1] : NULL;
  bool floats = (start && start->kind == VK_FLOAT) || (st && st->kind == VK_FLOAT);
  bool ok = n <= 2;
  for (size_t k = 0; ok && k < n; k++) {
    const value *x = args->u.seq.items[k];
    ok = x->kind == VK_INT || x->kind == VK_BOOL || x->kind == VK_FLOAT || (x->kind == VK_BIGINT && !floats);
  }
  if (!ok) {
    *err = refuse(c, recipe, NULL);
    return NULL;
  }
  it *i = new_it(c, IT_COUNT);
  i->u.count.cur = !start ? v_int(0) : start->kind == VK_BOOL ? v_int(start->u.b) : v_incref((value *)start);
  i->u.count.step = !st ? v_int(1) : st->kind == VK_BOOL ? v_int(st->u.b) : v_incref((value *)st);
  return i;
}

/* itertools.repeat(object[, times]) */
static it *repeat_it(ctx *c, const value *recipe, const value *args, value **err) {
  size_t n = args->u.seq.len;
  int64_t times = -1;
  if (n < 1 || n > 2 || (n == 2 && seq_index(args->u.seq.items[1], &times) < 0)) {
    *err = refuse(c, recipe, NULL);
    return NULL;
  }
  it *i = new_it(c, IT_REPEAT);
  i->u.rep.v = v_incref(args->u.seq.items[0]);
  i->u.rep.left = n == 2 && times < 0 ? 0 : times;
  return i;
}

/* One islice bound: None (as none) or an int in [0, maxsize]. */
static bool islice_bound(const value *v, int64_t none, int64_t *out) {
  if (v->kind == VK_NONE) {
    *out = none;
    return true;
  }
  return seq_index(v, out) == 0 && *out >= 0;
}

/* itertools.islice(iterable, stop) or (iterable, start, stop[, step]), then setstate(cnt),
   with islice_new's checks and messages. */
static it *islice_it(ctx *c, const value *args, const value *state, int depth, value **err) {
  size_t n = args->u.seq.len;
  int64_t start = 0, stop = -1, st = 1, cnt = 0;
  if (n < 2 || n > 4) {
    *err = fail(c, true, "TypeError", "islice expected at most 4 arguments, got %zu", n);
    return NULL;
  }
  value *const *a = args->u.seq.items;
  if (n == 2) {
    if (!islice_bound(a[1], -1, &stop)) {
      *err = fail(c, true, "ValueError",
                  "Stop argument for islice() must be None or an integer: 0 <= x <= sys.maxsize.");
      return NULL;
    }
  } else {
    if (!islice_bound(a[1], 0, &start) || !islice_bound(a[2], -1, &stop)) {
      *err = fail(c, true, "ValueError",
                  "Indices for islice() must be None or an integer: 0 <= x <= sys.maxsize.");
      return NULL;
    }
    if (n == 4 && (!islice_bound(a[3], 1, &st) || st < 1)) {
      *err = fail(c, true, "ValueError", "Step for islice() must be a positive integer or None.");
      return NULL;
    }
  }
  if (state && seq_index(state, &cnt) < 0) {
    *err = fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(state));
    return NULL;
  }
  it *src = make(c, a[0], depth + 1, err);
  if (!src) return NULL;
  it *i = new_it(c, IT_ISLICE);
  i->u.isl.src = src;
  i->u.isl.next = start;
  i->u.isl.stop = stop;
  i->u.isl.step = st;
  i->u.isl.cnt = cnt;
  return i;
}

/* itertools.chain(*iterables), or chain() with setstate((source, active)) as it pickles. */
static it *chain_it(ctx *c, const value *args, const value *state, int depth, value **err) {
  it *source, *active = NULL;
  if (state) {
    if (state->kind != VK_TUPLE || state->u.seq.len < 1 || state->u.seq.len > 2) {
      *err = fail(c, true, "TypeError", "state is not a tuple");
      return NULL;
    }
    if (!(source = make(c, state->u.seq.items[0], depth + 1, err))) return NULL;
    if (state->u.seq.len == 2 && !(active = make(c, state->u.seq.items[1], depth + 1, err))) return NULL;
  } else {
    source = seq_it(c, v_incref((value *)args), 0, false, err);
  }
  it *i = new_it(c, IT_CHAIN);
  i->u.chain.source = source;
  i->u.chain.active = active;
  return i;
}

/* The collections.deque iterators: (deque, index), index items already taken. */
static it *deque_it(ctx *c, const value *recipe, bool rev, int depth, value **err) {
  const value *args = recipe->u.o->args;
  int64_t index;
  if (args->u.seq.len != 2 || !made_by(args->u.seq.items[0], "collections", "deque") ||
      seq_index(args->u.seq.items[1], &index) < 0) {
    *err = refuse(c, recipe, NULL);
    return NULL;
  }
  value *items = deque_items(c, args->u.seq.items[0], depth, err);
  if (!items) return NULL;
  if (index < 0) index = 0;
  return seq_it(c, items, rev ? (int64_t)items->u.seq.len - 1 - index : index, rev, err);
}

/* Classes whose instances are not iterable at all (Python's own message for them), as far
   as the server can tell from a name; other classes might be, by code it does not run. */
static bool known_not_iterable(const value *g) {
  static const char *const names[][2] = {
      {"builtins", "complex"},    {"builtins", "slice"},       {"builtins", "object"},
      {"decimal", "Decimal"},     {"fractions", "Fraction"},   {"datetime", "date"},
      {"datetime", "datetime"},   {"datetime", "time"},        {"datetime", "timedelta"},
      {"datetime", "timezone"},   {"uuid", "UUID"},            {"functools", "partial"},
      {"multiprocessing.managers", "Token"},
  };
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
    if (is_global(g, names[k][0], names[k][1])) return true;
  if (!is_global(g, "builtins", NULL) || g->u.g.name->kind != VK_STR) return false;
  const char *n = g->u.g.name->u.s.data; /* the builtin exceptions */
  size_t len = strlen(n);
  static const char *const tails[] = {"Error", "Exception", "Warning", "Exit", "Interrupt", "StopIteration"};
  for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
    size_t t = strlen(tails[k]);
    if (len >= t && strcmp(n + len - t, tails[k]) == 0) return true;
  }
  return false;
}

/* The iterator iter(v) gives for an object sent as a recipe; *iterator tells whether v is
   itself an iterator (then sending it twice sends one iterator). */
static it *opaque_it(ctx *c, const value *v, int depth, bool *iterator, value **err) {
  const opaque *o = v->u.o;
  *iterator = false;
  if (o->shared) { /* a proxy of one of this server's containers: what the proxy would yield */
    const otype *t = o->shared->type;
    if (t == &iterator_type) { /* CPython's server takes the items from the real iterator */
      *iterator = true;
      it *i = new_it(c, IT_SHARED);
      i->u.shared = o->shared;
      return i;
    }
    if (t != &list_type && t != &dict_type && t != &set_type) return *err = not_iterable(c, v), NULL;
    value *copy = shared_copy(c, v, err);
    if (!copy) return NULL;
    it *i = make(c, copy, depth + 1, err);
    v_decref(copy); /* the iterator holds what it needs of it */
    return i;
  }
  const value *g = o->callable, *args = o->args, *state = NULL;
  if (o->how != OPQ_REDUCE || !g || g->kind != VK_GLOBAL || !args || args->kind != VK_TUPLE ||
      g->u.g.name->kind != VK_STR)
    return *err = refuse(c, v, NULL), NULL;
  size_t n = args->u.seq.len;
  value *const *a = args->u.seq.items;
  const char *name = g->u.g.name->u.s.data;
  bool plain = at_most_build(v, &state); /* no step but at most a BUILD */
  if (is_global(g, "builtins", NULL)) {
    if ((!strcmp(name, "list") || !strcmp(name, "tuple") || !strcmp(name, "set") || !strcmp(name, "frozenset")) &&
        n <= 1) /* dict views arrive as list([...]); a subclass's state (BUILD) changes no item */
      return n ? make(c, a[0], depth + 1, err) : seq_it(c, v_list(0), 0, false, err);
    if (!strcmp(name, "iter") && n == 2) return *err = refuse(c, v, a[0]), NULL;
    if (!strcmp(name, "map") && n >= 1) return *err = refuse(c, v, a[0]), NULL;
    if (!strcmp(name, "filter") && n == 2 && a[0]->kind != VK_NONE) return *err = refuse(c, v, a[0]), NULL;
    if (!plain) return *err = refuse(c, v, NULL), NULL;
    *iterator = true; /* the ones with a position or a flag take it by BUILD */
    if (!strcmp(name, "iter") && n == 1) return iter_it(c, v, a[0], state, depth, err);
    if (!strcmp(name, "reversed") && n == 1) return reversed_it(c, a[0], state, depth, err);
    if (!strcmp(name, "zip")) return zip_it(c, args, state, depth, err);
    if (state) return *err = refuse(c, v, NULL), NULL;
    if (!strcmp(name, "enumerate")) return enumerate_it(c, args, depth, err);
    if (!strcmp(name, "filter") && n == 2) {
      it *src = make(c, a[1], depth + 1, err);
      if (!src) return NULL;
      it *i = new_it(c, IT_TRUTH);
      i->u.truth.src = src;
      return i;
    }
    *iterator = false;
    if (!strcmp(name, "range")) return range_it(c, v, NULL, false, err);
  } else if (is_global(g, "itertools", NULL)) {
    static const char *const with_function[] = {"starmap", "takewhile", "dropwhile", "filterfalse"};
    for (size_t k = 0; k < sizeof with_function / sizeof with_function[0]; k++)
      if (!strcmp(name, with_function[k]) && n >= 1 && a[0]->kind != VK_NONE) return *err = refuse(c, v, a[0]), NULL;
    if (!plain) return *err = refuse(c, v, NULL), NULL;
    *iterator = true;
    if (!strcmp(name, "islice")) return islice_it(c, args, state, depth, err);
    if (!strcmp(name, "chain") && (!state || n == 0)) return chain_it(c, args, state, depth, err);
    if (state) return *err = refuse(c, v, NULL), NULL;
    if (!strcmp(name, "count")) return count_it(c, v, args, err);
    if (!strcmp(name, "repeat")) return repeat_it(c, v, args, err);
    *iterator = false;
  } else if (is_global(g, "collections", NULL) || is_global(g, "_collections", NULL)) {
    if (!strcmp(name, "_deque_iterator") || !strcmp(name, "_deque_reverse_iterator")) {
      if (!plain || state) return *err = refuse(c, v, NULL), NULL;
      *iterator = true;
      return deque_it(c, v, name[7] == 'r', depth, err);
    }
    if (!strcmp(name, "deque")) {
      value *items = deque_items(c, v, depth, err);
      return items ? seq_it(c, items, 0, false, err) : NULL;
    }
    bool counter = !strcmp(name, "Counter");
    if (counter || !strcmp(name, "OrderedDict") || !strcmp(name, "defaultdict")) {
      /* the keys it received by SETITEM steps (a Counter also those of its argument) */
      value *items = v_list(0);
      if (!step(c, o->nops, err)) { /* copied anew for each use: counted */
        v_decref(items);
        return NULL;
      }
      if (counter && n >= 1) {
        it *i = make(c, a[0], depth + 1, err);
        v_decref(items);
        if (!i || !(items = drain(c, i, err))) return NULL;
      }
      for (size_t k = 0; k < o->nops; k++)
        if (o->ops[k].op == OPQ_SETITEM) list_append(items, v_incref(o->ops[k].a));
      return seq_it(c, items, 0, false, err);
    }
  } else if (is_global(g, "array", "array")) {
    value *items = array_items_of(c, v, err);
    if (items) return seq_it(c, items, 0, false, err);
    if (*err) return NULL;
  }
  if (known_not_iterable(g)) return *err = not_iterable(c, v), NULL;
  return *err = refuse(c, v, NULL), NULL;
}

/* The iterator of v, made once per recipe that is itself an iterator. */
static it *make(ctx *c, const value *v, int depth, value **err) {
  *err = NULL;
  if (depth > MAX_NESTING) {
    *err = fail(c, false, "RecursionError", "iterators nested more than %d deep in an argument", MAX_NESTING);
    return NULL;
  }
  switch (v->kind) {
  case VK_LIST:
  case VK_TUPLE:
  case VK_STR:
  case VK_BYTES:
  case VK_BYTEARRAY: return seq_it(c, v_incref((value *)v), 0, false, err);
  case VK_DICT:
  case VK_SET:
  case VK_FROZENSET: return keys_it(c, v_incref((value *)v));
  case VK_OPAQUE: {
    it *i = memo_get(c, v);
    if (i) return i;
    bool iterator;
    i = opaque_it(c, v, depth, &iterator, err);
    if (i && iterator) memo_put(c, v, i);
    return i;
  }
  case VK_GLOBAL: /* a class or function: builtins are not iterable, a client's class may be (an Enum) */
    if (is_global(v, "builtins", NULL) || v->u.g.module->kind != VK_STR || v->u.g.name->kind != VK_STR) break;
    *err = fail(c, false, "TypeError", "shmgr does not run client code: cannot iterate %.100s.%.100s; pass a list instead",
                v->u.g.module->u.s.data, v->u.g.name->u.s.data);
    return NULL;
  default: break;
  }
  *err = not_iterable(c, v);
  return NULL;
}

/* ---- running them: next() of each kind, as CPython's ---- */

/* zip_next, with the strict checks of 3.10: which argument ran out first, and how. */
static value *zip_next(ctx *c, it *z, value **err) {
  size_t n = z->u.zip.n;
  if (!n) return NULL;
  value *t = v_tuple(n);
  for (size_t k = 0; k < n; k++) {
    value *x = next(c, z->u.zip.its[k], err);
    if (x) {
      t->u.seq.items[k] = x;
      continue;
    }
    v_decref(t); /* its empty slots are NULL */
    if (*err || !z->u.zip.strict) return NULL;
    size_t bad = k;
    if (k == 0) { /* the first ran out: all the others must have too */
      for (bad = 1; bad < n; bad++) {
        value *y = next(c, z->u.zip.its[bad], err);
        if (*err) return NULL;
        if (y) {
          v_decref(y);
          break;
        }
      }
      if (bad == n) return NULL;
    }
    *err = fail(c, true, "ValueError", "zip() argument %zu is %s than argument%s%zu", bad + 1,
                k ? "shorter" : "longer", bad == 1 ? " " : "s 1-", bad);
    return NULL;
  }
  if (!step(c, 1, err)) {
    v_decref(t);
    return NULL;
  }
  return t;
}

static value *islice_next(ctx *c, it *s, value **err) {
  if (!s->u.isl.src) return NULL;
  while (s->u.isl.cnt < s->u.isl.next) {
    value *x = next(c, s->u.isl.src, err);
    if (!x) goto empty;
    v_decref(x);
    s->u.isl.cnt++;
  }
  if (s->u.isl.stop != -1 && s->u.isl.cnt >= s->u.isl.stop) goto empty;
  value *x = next(c, s->u.isl.src, err);
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
      value *iterable = next(c, ch->u.chain.source, err);
      if (iterable) {
        ch->u.chain.active = make(c, iterable, 1, err);
        v_decref(iterable); /* what the iterator needs of it, it holds */
      }
      if (!ch->u.chain.active) {
        ch->u.chain.source = NULL;
        return NULL;
      }
    }
    value *x = next(c, ch->u.chain.active, err);
    if (x || *err) return x;
    ch->u.chain.active = NULL;
  }
  return NULL;
}

static value *count_next(ctx *c, it *i, value **err) {
  if (!step(c, 1, err)) return NULL;
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
    if (!step(c, 1, err)) return NULL;
    i->u.seq.left--;
    size_t k = i->u.seq.rev ? --i->u.seq.pos : i->u.seq.pos++;
    return v_incref(i->u.seq.items->u.seq.items[k]);
  }
  case IT_BYTES: {
    if (!i->u.seq.left) return NULL;
    if (!step(c, 1, err)) return NULL;
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
    return step(c, 1, err) ? v_str(s->u.s.data + at, n) : NULL;
  }
  case IT_KEYS: {
    value *k;
    if (!dict_next(i->u.keys.d, &i->u.keys.pos, &k, NULL) || !step(c, 1, err)) return NULL;
    return v_incref(k);
  }
  case IT_SHARED: {
    if (!step(c, 1, err)) return NULL;
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
    if (!step(c, 1, err)) return NULL;
    int64_t x = i->u.range.cur;
    if (--i->u.range.left) i->u.range.cur = (int64_t)((uint64_t)x + (uint64_t)i->u.range.step);
    return v_int(x);
  }
  case IT_BIGRANGE: {
    bool down = negative(i->u.big.step);
    int more = down ? v_less(i->u.big.stop, i->u.big.next, err) : v_less(i->u.big.next, i->u.big.stop, err);
    if (more <= 0 || !step(c, 1, err)) return NULL;
    value *x = i->u.big.next;
    i->u.big.next = int_add(x, i->u.big.step);
    return x;
  }
  case IT_ZIP: return zip_next(c, i, err);
  case IT_ENUM: {
    value *x = next(c, i->u.en.src, err);
    if (!x) return NULL;
    if (!step(c, 1, err)) {
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
      value *x = next(c, i->u.truth.src, err);
      if (!x) return NULL;
      if (x->kind == VK_OPAQUE) { /* its truth is its class's __bool__ or __len__: code */
        char name[160];
        type_name(x, name, sizeof name);
        v_decref(x);
        *err = fail(c, false, "TypeError",
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
    if (!i->u.rep.left || !step(c, 1, err)) return NULL;
    if (i->u.rep.left > 0) i->u.rep.left--;
    return v_incref(i->u.rep.v);
  case IT_ISLICE: return islice_next(c, i, err);
  default: return chain_next(c, i, err);
  }
}

/* The next item of i (a new reference), or NULL: the end (*err NULL) or an error. */
static value *next(ctx *c, it *i, value **err) {
  *err = NULL;
  if (i->busy || c->running >= MAX_NESTING) {
    *err = fail(c, false, "RecursionError", "an iterator in the argument yields itself or is nested too deep");
    return NULL;
  }
  i->busy = true;
  c->running++;
  value *x = next_of(c, i, err);
  c->running--;
  i->busy = false;
  return x;
}

static value *drain(ctx *c, it *i, value **err) {
  value *out = v_list(0), *x;
  while ((x = next(c, i, err))) list_append(out, x);
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
  it *i = make(&c, v, 0, err);
  int budget = 1000;
  if (i && at_least(i, &budget) > iterargs_max_steps) *err = too_big(&c);
  else if (i) {
    out = v_list(0);
    value *x;
    while ((x = next(&c, i, err))) list_append(out, x);
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
  type_name(v, name, sizeof name); /* v's own name: not a member of v that is not iterable */
  snprintf(msg, sizeof msg, "'%.150s' object is not iterable", name);
  return strcmp(args->u.seq.items[0]->u.s.data, msg) == 0;
}
