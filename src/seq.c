/* seq.c: Python's sequence protocol over values: type names, indexes and slices. */
#include "seq.h"

#include <stdio.h>
#include <string.h>

static bool is_global(const value *g, const char *module, const char *name) {
  return g && g->kind == VK_GLOBAL && v_is_str(g->u.g.module, module) && v_is_str(g->u.g.name, name);
}

/* The class an opaque object was made by when it is module.name(...) by REDUCE. */
static bool made_by(const value *v, const char *module, const char *name) {
  return v->kind == VK_OPAQUE && v->u.o->how == OPQ_REDUCE && is_global(v->u.o->callable, module, name) &&
         v->u.o->args && v->u.o->args->kind == VK_TUPLE;
}

const char *seq_typename(const value *v) {
  if (made_by(v, "multiprocessing.managers", "RebuildProxy") && v->u.o->args->u.seq.len &&
      v->u.o->args->u.seq.items[0]->kind == VK_GLOBAL && v->u.o->args->u.seq.items[0]->u.g.name->kind == VK_STR)
    return v->u.o->args->u.seq.items[0]->u.g.name->u.s.data;
  return v_typename(v);
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
