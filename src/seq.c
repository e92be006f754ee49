/* seq.c: Python's sequence protocol over values: what iter() yields, indexes and slices. */
#include "seq.h"

#include <stdio.h>
#include <string.h>

#include "objects.h"
#include "t_dict.h"
#include "t_list.h"
#include "t_set.h"

/* range() past this many items would exhaust memory here as it would in CPython: refused
   with MemoryError before trying */
#define MAX_RANGE_ITEMS ((int64_t)1 << 27)

static bool is_global(const value *g, const char *module, const char *name) {
  return g && g->kind == VK_GLOBAL && v_is_str(g->u.g.module, module) && v_is_str(g->u.g.name, name);
}

/* The class an opaque object was made by when it is module.name(...) by REDUCE. */
static bool made_by(const value *v, const char *module, const char *name) {
  return v->kind == VK_OPAQUE && v->u.o->how == OPQ_REDUCE && is_global(v->u.o->callable, module, name) &&
         v->u.o->args && v->u.o->args->kind == VK_TUPLE;
}

/* The argument of a BUILD step (an iterator's position), or NULL. */
static const value *build_state(const value *v) {
  const opaque *o = v->u.o;
  for (size_t i = 0; i < o->nops; i++)
    if (o->ops[i].op == OPQ_BUILD) return o->ops[i].a;
  return NULL;
}

const char *seq_typename(const value *v) {
  if (made_by(v, "multiprocessing.managers", "RebuildProxy") && v->u.o->args->u.seq.len &&
      v->u.o->args->u.seq.items[0]->kind == VK_GLOBAL && v->u.o->args->u.seq.items[0]->u.g.name->kind == VK_STR)
    return v->u.o->args->u.seq.items[0]->u.g.name->u.s.data;
  return v_typename(v);
}

static value *not_iterable(const value *v) {
  char msg[200];
  snprintf(msg, sizeof msg, "'%.150s' object is not iterable", seq_typename(v));
  return v_exception_msg("TypeError", msg);
}

/* Length of the UTF-8 sequence that starts with byte c (1 for a stray byte). */
static size_t utf8_len(uint8_t c) { return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

static void append_range(value *out, int64_t start, int64_t stop, int64_t step) {
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    list_append(out, v_int(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
}

/* range(start, stop, step) with 64-bit bounds: its ints, or an exception. */
static value *range_items(const value *args, value *out) {
  int64_t b[3] = {0, 0, 1};
  size_t n = args->u.seq.len;
  if (n < 1 || n > 3) return not_iterable(args);
  for (size_t i = 0; i < n; i++) {
    if (seq_index(args->u.seq.items[i], &b[n == 1 ? 1 : i]) != 0)
      return v_exception_msg("OverflowError", "range too large for shmgr to list (bounds beyond 64 bits)");
  }
  if (b[2] == 0) return v_exception_msg("ValueError", "range() arg 3 must not be zero");
  /* the count, in unsigned arithmetic so that wide ranges cannot overflow */
  uint64_t count = 0;
  if (b[2] > 0 && b[0] < b[1]) count = ((uint64_t)b[1] - (uint64_t)b[0] - 1) / (uint64_t)b[2] + 1;
  if (b[2] < 0 && b[0] > b[1]) count = ((uint64_t)b[0] - (uint64_t)b[1] - 1) / ((uint64_t)0 - (uint64_t)b[2]) + 1;
  if (count > (uint64_t)MAX_RANGE_ITEMS) return v_exception("builtins", "MemoryError", v_tuple(0));
  append_range(out, b[0], b[1], b[2]);
  return NULL;
}

/* Append the items of v to out; NULL or a new exception. depth guards nested recipes. */
static value *items_into(const value *v, value *out, int depth);

/* The keys a mapping-like collection received by SETITEM steps (OrderedDict, defaultdict). */
static void setitem_keys(const value *v, value *out) {
  const opaque *o = v->u.o;
  for (size_t i = 0; i < o->nops; i++)
    if (o->ops[i].op == OPQ_SETITEM) list_append(out, v_incref(o->ops[i].a));
}

static value *opaque_items(const value *v, value *out, int depth) {
  const opaque *o = v->u.o;
  const value *args = o->args;
  size_t nargs = args && args->kind == VK_TUPLE ? args->u.seq.len : 0;
  if (o->shared) { /* a proxy of one of this server's containers: what the proxy would yield */
    const otype *t = o->shared->type;
    if (t != &list_type && t != &dict_type && t != &set_type) return not_iterable(v);
    value *err = NULL, *copy = t->getvalue(o->shared, &err);
    if (!copy) return err;
    err = items_into(copy, out, depth + 1);
    v_decref(copy);
    return err;
  }
  if (made_by(v, "builtins", "list") || made_by(v, "builtins", "tuple") || made_by(v, "builtins", "set") ||
      made_by(v, "builtins", "frozenset")) /* dict views arrive as builtins.list([...]) */
    return nargs ? items_into(args->u.seq.items[0], out, depth + 1) : NULL;
  if ((made_by(v, "builtins", "iter") || made_by(v, "builtins", "reversed")) && nargs == 1) {
    bool rev = v_is_str(o->callable->u.g.name, "reversed");
    value *all = v_list(0), *err = items_into(args->u.seq.items[0], all, depth + 1);
    if (!err) { /* BUILD sets the position (listiter_setstate and friends clamp it) */
      int64_t n = (int64_t)all->u.seq.len, pos = rev ? n - 1 : 0;
      const value *st = build_state(v);
      if (st && seq_index(st, &pos) < 0) pos = rev ? n - 1 : 0;
      if (rev) {
        if (pos > n - 1) pos = n - 1;
        for (int64_t i = pos; i >= 0; i--) list_append(out, v_incref(all->u.seq.items[i]));
      } else {
        if (pos < 0) pos = 0;
        for (int64_t i = pos; i < n; i++) list_append(out, v_incref(all->u.seq.items[i]));
      }
    }
    v_decref(all);
    return err;
  }
  if (made_by(v, "builtins", "range")) return range_items(args, out);
  if (made_by(v, "collections", "OrderedDict") || made_by(v, "collections", "defaultdict")) {
    setitem_keys(v, out);
    return NULL;
  }
  if (made_by(v, "collections", "Counter")) {
    value *err = nargs ? items_into(args->u.seq.items[0], out, depth + 1) : NULL;
    if (!err) setitem_keys(v, out);
    return err;
  }
  if (made_by(v, "collections", "deque")) {
    value *err = nargs ? items_into(args->u.seq.items[0], out, depth + 1) : NULL;
    for (size_t i = 0; !err && i < o->nops; i++)
      if (o->ops[i].op == OPQ_APPEND) list_append(out, v_incref(o->ops[i].a));
    return err;
  }
  return not_iterable(v);
}

static value *items_into(const value *v, value *out, int depth) {
  if (depth > 100) return not_iterable(v);
  switch (v->kind) {
  case VK_TUPLE:
  case VK_LIST:
    for (size_t i = 0; i < v->u.seq.len; i++) list_append(out, v_incref(v->u.seq.items[i]));
    return NULL;
  case VK_STR:
    for (size_t i = 0; i < v->u.s.len;) {
      size_t n = utf8_len((uint8_t)v->u.s.data[i]);
      if (i + n > v->u.s.len) n = v->u.s.len - i;
      list_append(out, v_str(v->u.s.data + i, n));
      i += n;
    }
    return NULL;
  case VK_BYTES:
  case VK_BYTEARRAY:
    for (size_t i = 0; i < v->u.s.len; i++) list_append(out, v_int((uint8_t)v->u.s.data[i]));
    return NULL;
  case VK_DICT:
  case VK_SET:
  case VK_FROZENSET: {
    size_t pos = 0;
    value *k;
    while (dict_next(v, &pos, &k, NULL)) list_append(out, v_incref(k));
    return NULL;
  }
  case VK_OPAQUE:
    return opaque_items(v, out, depth);
  default:
    return not_iterable(v);
  }
}

value *seq_items(const value *v, value **err) {
  value *out = v_list(0);
  if ((*err = items_into(v, out, 0))) {
    v_decref(out);
    return NULL;
  }
  return out;
}

bool seq_is_error(const value *exc, const char *name) {
  return exc && exc->kind == VK_OPAQUE && is_global(exc->u.o->callable, "builtins", name);
}

int seq_index(const value *v, int64_t *out) {
  switch (v->kind) {
  case VK_INT: *out = v->u.i; return 0;
  case VK_BOOL: *out = v->u.b; return 0;
  case VK_BIGINT: *out = (v->u.s.data[v->u.s.len - 1] & 0x80) ? INT64_MIN : INT64_MAX; return 1;
  default: return -1;
  }
}

bool seq_is_slice(const value *v) {
  return made_by(v, "builtins", "slice") && v->u.o->args->u.seq.len >= 1 && v->u.o->args->u.seq.len <= 3 &&
         v->u.o->nops == 0;
}

/* One bound of a slice (_PyEval_SliceIndex): None keeps *out; big ints clamp. */
static bool slice_bound(const value *v, int64_t *out) {
  if (v->kind == VK_NONE) return true;
  return seq_index(v, out) >= 0;
}

value *seq_slice(const value *v, size_t len, seq_span *out) {
  const value *args = v->u.o->args;
  const value *none = NULL, *parts[3];
  size_t n = args->u.seq.len;
  /* slice(stop) and slice(start, stop) as Python's constructor reads them */
  parts[0] = n >= 2 ? args->u.seq.items[0] : none;
  parts[1] = n == 1 ? args->u.seq.items[0] : args->u.seq.items[1];
  parts[2] = n == 3 ? args->u.seq.items[2] : none;
  static const char *bad = "slice indices must be integers or None or have an __index__ method";
  int64_t step = 1;
  if (parts[2] && !slice_bound(parts[2], &step)) return v_exception_msg("TypeError", bad);
  if (step == 0) return v_exception_msg("ValueError", "slice step cannot be zero");
  if (step < -INT64_MAX) step = -INT64_MAX; /* so that -step cannot overflow */
  int64_t start = step < 0 ? INT64_MAX : 0, stop = step < 0 ? INT64_MIN : INT64_MAX;
  if (parts[0] && !slice_bound(parts[0], &start)) return v_exception_msg("TypeError", bad);
  if (!slice_bound(parts[1], &stop)) return v_exception_msg("TypeError", bad);
  int64_t length = (int64_t)len;
  if (start < 0) {
    start += length;
    if (start < 0) start = step < 0 ? -1 : 0;
  } else if (start >= length) {
    start = step < 0 ? length - 1 : length;
  }
  if (stop < 0) {
    stop += length;
    if (stop < 0) stop = step < 0 ? -1 : 0;
  } else if (stop >= length) {
    stop = step < 0 ? length - 1 : length;
  }
  int64_t count = 0;
  if (step < 0 && stop < start) count = (start - stop - 1) / (-step) + 1;
  if (step > 0 && start < stop) count = (stop - start - 1) / step + 1;
  *out = (seq_span){start, stop, step, count};
  return NULL;
}
