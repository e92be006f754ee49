/* args.c: binding a call's args and kwds to parameters, with Python's TypeError messages. */
#include "args.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/* args_bind with `implicit` leading parameters the caller does not pass (self; a Server
   method's connection too), counted in the messages' positional counts. */
static value *bind(const char *fname, const char *const names[], size_t n, size_t nreq, size_t implicit,
                   const value *args, const value *kwds, value *out[]) {
  /* CPython's order: keywords are matched before too many positional arguments are
     reported, so f(1, 2, 3, key=0) names the keyword */
  size_t npos = args ? args->u.seq.len : 0;
  for (size_t i = 0; i < n; i++) out[i] = i < npos ? args->u.seq.items[i] : NULL;
  size_t pos = 0;
  value *k, *v;
  while (kwds && dict_next(kwds, &pos, &k, &v)) {
    size_t i = 0;
    while (i < n && !v_is_str(k, names[i])) i++;
    if (k->kind != VK_STR || i == n) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s() got an unexpected keyword argument '%s'", fname,
               k->kind == VK_STR ? k->u.s.data : "?");
      return v_exception_msg("TypeError", msg);
    }
    if (out[i]) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s() got multiple values for argument '%s'", fname, names[i]);
      return v_exception_msg("TypeError", msg);
    }
    out[i] = v;
  }
  if (npos > n) {
    char msg[256];
    if (nreq == n)
      snprintf(msg, sizeof msg, "%s() takes %zu positional argument%s but %zu were given", fname,
               n + implicit, n + implicit == 1 ? "" : "s", npos + implicit);
    else
      snprintf(msg, sizeof msg, "%s() takes from %zu to %zu positional arguments but %zu were given",
               fname, nreq + implicit, n + implicit, npos + implicit);
    return v_exception_msg("TypeError", msg);
  }
  for (size_t i = 0; i < nreq; i++) {
    if (!out[i]) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s() missing 1 required positional argument: '%s'", fname,
               names[i]);
      return v_exception_msg("TypeError", msg);
    }
  }
  return NULL;
}

value *args_bind(const char *fname, const char *const names[], size_t n, size_t nreq,
                 const value *args, const value *kwds, value *out[]) {
  return bind(fname, names, n, nreq, 1, args, kwds, out);
}

value *args_bind_server(const char *fname, const char *const names[], size_t n, const value *args,
                        const value *kwds, value *out[]) {
  return bind(fname, names, n, n, 2, args, kwds, out);
}

bool v_truth(const value *v) {
  switch (v->kind) {
  case VK_NONE: return false;
  case VK_BOOL: return v->u.b;
  case VK_INT: return v->u.i != 0;
  case VK_FLOAT: return v->u.f != 0.0;
  case VK_STR: case VK_BYTES: case VK_BYTEARRAY: return v->u.s.len != 0;
  case VK_TUPLE: case VK_LIST: return v->u.seq.len != 0;
  case VK_DICT: case VK_SET: case VK_FROZENSET: return dict_len(v) != 0;
  default: return true; /* big ints are never zero; objects are true by default */
  }
}

value *arg_timeout(const value *v, double *seconds) {
  if (!v || v->kind == VK_NONE) {
    *seconds = -1;
    return NULL;
  }
  double t;
  if (v->kind == VK_INT) t = (double)v->u.i;
  else if (v->kind == VK_BOOL) t = v->u.b;
  else if (v->kind == VK_FLOAT) t = v->u.f;
  else if (v->kind == VK_BIGINT) t = (v->u.s.data[v->u.s.len - 1] & 0x80) ? -1 : HUGE_VAL;
  else {
    char msg[160];
    snprintf(msg, sizeof msg, "'<' not supported between instances of '%s' and 'int'", v_typename(v));
    return v_exception_msg("TypeError", msg);
  }
  if (t < 0) return v_exception_msg("ValueError", "'timeout' must be a non-negative number");
  *seconds = isnan(t) ? -1 : t;
  return NULL;
}

value *arg_timeout_wait(double seconds) {
  if (seconds > TIMEOUT_MAX) return v_exception_msg("OverflowError", "timestamp out of range for platform time_t");
  return NULL;
}

value *arg_int(const value *v, int64_t *out) {
  if (v->kind == VK_INT) *out = v->u.i;
  else if (v->kind == VK_BOOL) *out = v->u.b;
  else {
    char msg[160];
    snprintf(msg, sizeof msg, "'%s' object cannot be interpreted as an integer", v_typename(v));
    return v_exception_msg("TypeError", msg);
  }
  return NULL;
}

/* ---- CPython's C methods check their arguments in their own words ---- */

static bool has_kwds(const value *kwds) { return kwds && dict_len(kwds); }

/* The method's name without its class: "list.pop" -> "pop". */
static const char *short_name(const char *fname) {
  const char *dot = strrchr(fname, '.');
  return dot ? dot + 1 : fname;
}

static value *type_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static value *type_error(const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return v_exception_msg("TypeError", msg);
}

value *args_noargs(const char *fname, const value *args, const value *kwds) {
  if (has_kwds(kwds)) return type_error("%s() takes no keyword arguments", fname);
  size_t n = args ? args->u.seq.len : 0;
  if (n) return type_error("%s() takes no arguments (%zu given)", fname, n);
  return NULL;
}

value *args_one(const char *fname, const value *args, const value *kwds, value **out) {
  if (has_kwds(kwds)) return type_error("%s() takes no keyword arguments", fname);
  size_t n = args ? args->u.seq.len : 0;
  if (n != 1) return type_error("%s() takes exactly one argument (%zu given)", fname, n);
  *out = args->u.seq.items[0];
  return NULL;
}

/* PyArg_UnpackTuple's wording: "<name> expected at most 1 argument, got 2". */
static value *unpack_error(const char *name, size_t min, size_t max, size_t n) {
  if (min == max) return type_error("%s expected %zu argument%s, got %zu", name, min, min == 1 ? "" : "s", n);
  if (n < min) return type_error("%s expected at least %zu argument%s, got %zu", name, min, min == 1 ? "" : "s", n);
  return type_error("%s expected at most %zu argument%s, got %zu", name, max, max == 1 ? "" : "s", n);
}

value *args_positional(const char *fname, size_t min, size_t max, bool kw_ok, const value *args, const value *kwds,
                       value *out[]) {
  if (!kw_ok && has_kwds(kwds)) return type_error("%s() takes no keyword arguments", fname);
  size_t n = args ? args->u.seq.len : 0;
  if (n < min || n > max) return unpack_error(short_name(fname), min, max, n);
  for (size_t i = 0; out && i < max; i++) out[i] = i < n ? args->u.seq.items[i] : NULL;
  return NULL;
}

value *args_slot(const char *slot, size_t n, bool unpack, const value *args, const value *kwds, value *out[]) {
  if (has_kwds(kwds)) return type_error("wrapper %s() takes no keyword arguments", slot);
  size_t got = args ? args->u.seq.len : 0;
  if (got != n) {
    /* check_num_args and PyArg_UnpackTuple("", ...) differ by a space: " expected" */
    if (unpack) return unpack_error("", n, n, got);
    return type_error("expected %zu argument%s, got %zu", n, n == 1 ? "" : "s", got);
  }
  for (size_t i = 0; i < n; i++) out[i] = args->u.seq.items[i];
  return NULL;
}

bool args_missing(const value *exc) {
  if (!exc || exc->kind != VK_OPAQUE || !exc->u.o->args || exc->u.o->args->kind != VK_TUPLE ||
      exc->u.o->args->u.seq.len != 1 || exc->u.o->args->u.seq.items[0]->kind != VK_STR)
    return false;
  return strstr(exc->u.o->args->u.seq.items[0]->u.s.data, "() missing ") != NULL;
}
