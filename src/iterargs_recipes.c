/* iterargs_recipes.c: how each iterator a client can send as pure data is recognised and rebuilt. */
#include "iterargs_impl.h"

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

/* ---- errors ---- */

value *ia_fail(ctx *c, bool python, const char *cls, const char *fmt, ...) {
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
void ia_type_name(const value *v, char *out, size_t n) {
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
  ia_type_name(v, name, sizeof name);
  return ia_fail(c, true, "TypeError", "'%.150s' object is not iterable", name);
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
  ia_type_name(v, name, sizeof name);
  if (func) {
    function_name(func, fn, sizeof fn);
    snprintf(detail, sizeof detail, " (%.100s with %s)", v->u.o->callable->u.g.name->u.s.data, fn);
  }
  return ia_fail(c, false, "TypeError", "shmgr does not run client code: cannot iterate a '%.150s' object%s; pass a list instead",
                 name, detail);
}

static bool is_int(const value *v) { return v->kind == VK_INT || v->kind == VK_BOOL || v->kind == VK_BIGINT; }


/* ---- making iterators ---- */

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

/* The byte offset of character k of s, or of its end when s is shorter (*k then cut to its
   length); each character passed is a step. */
static bool str_offset(ctx *c, const value *s, int64_t *k, size_t *off, value **err) {
  size_t o = 0;
  int64_t n = 0;
  for (; n < *k && o < s->u.s.len; n++) o += utf8_len((uint8_t)s->u.s.data[o]);
  if (o > s->u.s.len) o = s->u.s.len;
  if (!ia_step(c, (size_t)n, err)) return false;
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
    it *i = ia_new_it(c, IT_STR);
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
  it *i = ia_new_it(c, bytes ? IT_BYTES : IT_SEQ);
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
  it *i = ia_new_it(c, IT_KEYS);
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
  if (items && !ia_step(c, items->u.seq.len, err)) {
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
    it *i = ia_make(c, args->u.seq.items[0], depth + 1, err);
    value *first = i ? ia_drain(c, i, err) : NULL;
    if (!first) {
      v_decref(out);
      return NULL;
    }
    v_decref(out);
    out = first;
  }
  const opaque *o = v->u.o;
  if (!ia_step(c, o->nops, err)) { /* copied anew for each use of the deque: counted */
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
  if (copy && !ia_step(c, copy->kind == VK_LIST ? copy->u.seq.len : dict_len(copy), err)) {
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
  return ia_fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(state));
}

/* range(start, stop, step) from a recipe's arguments: the bounds, or an exception as
   range() raises it. */
static value *range_bounds(ctx *c, const value *args, const value *b[3]) {
  static value zero = {.refs = 1u << 30, .kind = VK_INT, .u.i = 0}, one = {.refs = 1u << 30, .kind = VK_INT, .u.i = 1};
  size_t n = args->u.seq.len;
  if (n < 1 || n > 3) return ia_fail(c, true, "TypeError", "range expected at most 3 arguments, got %zu", n);
  b[0] = n == 1 ? &zero : args->u.seq.items[0];
  b[1] = n == 1 ? args->u.seq.items[0] : args->u.seq.items[1];
  b[2] = n == 3 ? args->u.seq.items[2] : &one;
  for (int k = 0; k < 3; k++)
    if (!is_int(b[k]))
      return ia_fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(b[k]));
  if (b[2]->kind != VK_BIGINT && small(b[2]) == 0) return ia_fail(c, true, "ValueError", "range() arg 3 must not be zero");
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
    return *err = ia_fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(index)),
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
    it *i = ia_new_it(c, IT_RANGE);
    i->u.range.left = count - (uint64_t)pos;
    /* an item that exists fits in 64 bits, whatever the intermediate product does */
    i->u.range.cur = i->u.range.left ? (int64_t)((uint64_t)start + (uint64_t)pos * (uint64_t)st) : 0;
    i->u.range.step = st;
    return i;
  }
big:
  if (rev) {
    *err = ia_fail(c, false, "OverflowError", "shmgr cannot reverse a range with bounds beyond 64 bits");
    return NULL;
  }
  it *i = ia_new_it(c, IT_BIGRANGE); /* range() takes a bool as the int it is */
  i->u.big.next = b[0]->kind == VK_BOOL ? v_int(b[0]->u.b) : v_incref((value *)b[0]);
  i->u.big.step = b[2]->kind == VK_BOOL ? v_int(b[2]->u.b) : v_incref((value *)b[2]);
  i->u.big.stop = v_incref((value *)b[1]);
  for (int64_t k = 0; k < pos; k++) { /* skipped one step at a time, each one counted */
    value *x = ia_next(c, i, err);
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
  return ia_make(c, x, depth + 1, err);
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
      ia_type_name(x, name, sizeof name);
      *err = ia_fail(c, true, "TypeError", "'%.150s' object is not reversible", name);
      return NULL;
    }
    it *fwd = ia_make(c, x, depth + 1, err);
    if (!fwd || !(seq = ia_drain(c, fwd, err))) return NULL;
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
    *err = ia_fail(c, true, "TypeError", "enumerate() takes at most 2 arguments (%zu given)", n);
    return NULL;
  }
  const value *start = n == 2 ? args->u.seq.items[1] : NULL;
  if (start && !is_int(start)) {
    *err = ia_fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(start));
    return NULL;
  }
  it *src = ia_make(c, args->u.seq.items[0], depth + 1, err);
  if (!src) return NULL;
  it *i = ia_new_it(c, IT_ENUM);
  i->u.en.src = src;
  i->u.en.index = !start ? v_int(0) : start->kind == VK_BOOL ? v_int(start->u.b) : v_incref((value *)start);
  return i;
}

static it *zip_it(ctx *c, const value *args, const value *state, int depth, value **err) {
  size_t n = args->u.seq.len;
  it **its = xcalloc(n, sizeof *its);
  for (size_t k = 0; k < n; k++)
    if (!(its[k] = ia_make(c, args->u.seq.items[k], depth + 1, err))) {
      free(its);
      return NULL;
    }
  it *i = ia_new_it(c, IT_ZIP);
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
  it *i = ia_new_it(c, IT_COUNT);
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
  it *i = ia_new_it(c, IT_REPEAT);
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
    *err = ia_fail(c, true, "TypeError", "islice expected at most 4 arguments, got %zu", n);
    return NULL;
  }
  value *const *a = args->u.seq.items;
  if (n == 2) {
    if (!islice_bound(a[1], -1, &stop)) {
      *err = ia_fail(c, true, "ValueError",
                     "Stop argument for islice() must be None or an integer: 0 <= x <= sys.maxsize.");
      return NULL;
    }
  } else {
    if (!islice_bound(a[1], 0, &start) || !islice_bound(a[2], -1, &stop)) {
      *err = ia_fail(c, true, "ValueError",
                     "Indices for islice() must be None or an integer: 0 <= x <= sys.maxsize.");
      return NULL;
    }
    if (n == 4 && (!islice_bound(a[3], 1, &st) || st < 1)) {
      *err = ia_fail(c, true, "ValueError", "Step for islice() must be a positive integer or None.");
      return NULL;
    }
  }
  if (state && seq_index(state, &cnt) < 0) {
    *err = ia_fail(c, true, "TypeError", "'%.150s' object cannot be interpreted as an integer", seq_typename(state));
    return NULL;
  }
  it *src = ia_make(c, a[0], depth + 1, err);
  if (!src) return NULL;
  it *i = ia_new_it(c, IT_ISLICE);
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
      *err = ia_fail(c, true, "TypeError", "state is not a tuple");
      return NULL;
    }
    if (!(source = ia_make(c, state->u.seq.items[0], depth + 1, err))) return NULL;
    if (state->u.seq.len == 2 && !(active = ia_make(c, state->u.seq.items[1], depth + 1, err))) return NULL;
  } else {
    source = seq_it(c, v_incref((value *)args), 0, false, err);
  }
  it *i = ia_new_it(c, IT_CHAIN);
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
      it *i = ia_new_it(c, IT_SHARED);
      i->u.shared = o->shared;
      return i;
    }
    if (t != &list_type && t != &dict_type && t != &set_type) return *err = not_iterable(c, v), NULL;
    value *copy = shared_copy(c, v, err);
    if (!copy) return NULL;
    it *i = ia_make(c, copy, depth + 1, err);
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
      return n ? ia_make(c, a[0], depth + 1, err) : seq_it(c, v_list(0), 0, false, err);
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
      it *src = ia_make(c, a[1], depth + 1, err);
      if (!src) return NULL;
      it *i = ia_new_it(c, IT_TRUTH);
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
      if (!ia_step(c, o->nops, err)) { /* copied anew for each use: counted */
        v_decref(items);
        return NULL;
      }
      if (counter && n >= 1) {
        it *i = ia_make(c, a[0], depth + 1, err);
        v_decref(items);
        if (!i || !(items = ia_drain(c, i, err))) return NULL;
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
it *ia_make(ctx *c, const value *v, int depth, value **err) {
  *err = NULL;
  if (depth > MAX_NESTING) {
    *err = ia_fail(c, false, "RecursionError", "iterators nested more than %d deep in an argument", MAX_NESTING);
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
    *err = ia_fail(c, false, "TypeError", "shmgr does not run client code: cannot iterate %.100s.%.100s; pass a list instead",
                   v->u.g.module->u.s.data, v->u.g.name->u.s.data);
    return NULL;
  default: break;
  }
  *err = not_iterable(c, v);
  return NULL;
}
