/* t_array.c: the built-in Array (managers.Array: an array.array, ArrayProxy), in C. */
#include "alloc.h"
#include "t_array.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "args.h"
#include "iterargs.h"
#include "seq.h"
#include "wait.h"

/* An array is its items as C numbers of the typecode's type, in native byte order: what
   array.array holds and what its pickle (managers.py's reduce_array: array.array(typecode,
   bytes)) carries. */
typedef array_data arr;

/* ArrayProxy exposes these. */
static const char *const methods[] = {"__len__", "__getitem__", "__setitem__", NULL};

/* Bytes per item of typecode tc, 0 when array.array does not know it ('w' is 3.13's). */
size_t array_item_size(int tc) {
  switch (tc) {
  case 'b': case 'B': return 1;
  case 'h': case 'H': return sizeof(short);
  case 'i': case 'I': return sizeof(int);
  case 'l': case 'L': return sizeof(long);
  case 'q': case 'Q': return sizeof(long long);
  case 'f': return sizeof(float);
  case 'd': return sizeof(double);
  case 'u': return sizeof(wchar_t);
  case 'w': return 4;
  default: return 0;
  }
}

#define error(cls, ...) v_exception_fmt("builtins", cls, __VA_ARGS__)

/* ---- one item: value -> C bytes, with array.array's checks and messages (3.10+) ---- */

/* A big int as an unsigned 64-bit number: false when it does not fit (or is negative). */
static bool big_u64(const value *v, uint64_t *out) {
  size_t n = v->u.s.len;
  const uint8_t *le = (const uint8_t *)v->u.s.data;
  if (le[n - 1] & 0x80) return false;
  if (n > 9 || (n == 9 && le[8] != 0)) return false;
  uint64_t u = 0;
  for (size_t i = 0; i < n && i < 8; i++) u |= (uint64_t)le[i] << (8 * i);
  *out = u;
  return true;
}

static bool big_negative(const value *v) { return v->u.s.data[v->u.s.len - 1] & 0x80; }

static value *not_integer(const value *v) {
  return error("TypeError", "'%.200s' object cannot be interpreted as an integer", seq_typename(v));
}

/* The signed types go through C long (PyArg_Parse), then their own range checks. */
static value *to_long(const value *v, int64_t *x) {
  if (v->kind == VK_BIGINT) return v_exception_msg("OverflowError", "Python int too large to convert to C long");
  if (seq_index(v, x) < 0) return not_integer(v);
  return NULL;
}

static value *range_check(int64_t x, int64_t lo, int64_t hi, const char *what) {
  if (x < lo) return error("OverflowError", "%s is less than minimum", what);
  if (x > hi) return error("OverflowError", "%s is greater than maximum", what);
  return NULL;
}

/* The unsigned I and L (PyLong_AsUnsignedLong), and Q (PyLong_AsUnsignedLongLong). */
static value *to_unsigned(const value *v, bool q, uint64_t *u) {
  const char *negative = q ? "can't convert negative int to unsigned"
                           : "can't convert negative value to unsigned int";
  const char *too_big = q ? "int too big to convert" : "Python int too large to convert to C unsigned long";
  int64_t x;
  if (v->kind == VK_BIGINT) {
    if (big_negative(v)) return v_exception_msg("OverflowError", negative);
    if (!big_u64(v, u)) return v_exception_msg("OverflowError", too_big);
    return NULL;
  }
  if (seq_index(v, &x) < 0) return not_integer(v);
  if (x < 0) return v_exception_msg("OverflowError", negative);
  *u = (uint64_t)x;
  return NULL;
}

static value *to_double(const value *v, double *d) {
  int64_t x;
  if (v->kind == VK_FLOAT) *d = v->u.f;
  else if (v->kind == VK_BIGINT) {
    if (!v_bigint_double(v, d)) return v_exception_msg("OverflowError", "int too large to convert to float");
  } else if (seq_index(v, &x) == 0) *d = (double)x;
  else return error("TypeError", "must be real number, not %.200s", seq_typename(v));
  return NULL;
}

/* The one code point of a one-character str, or -1. */
static int32_t one_char(const value *v) {
  if (v->kind != VK_STR || !v->u.s.len) return -1;
  const uint8_t *s = (const uint8_t *)v->u.s.data;
  size_t n = v->u.s.len, len = s[0] < 0x80 ? 1 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
  if (n != len) return -1;
  int32_t cp = len == 1 ? s[0] : len == 2 ? (s[0] & 0x1f) : len == 3 ? (s[0] & 0x0f) : (s[0] & 0x07);
  for (size_t i = 1; i < len; i++) cp = (cp << 6) | (s[i] & 0x3f);
  return cp;
}

/* A float from a double as C's conversion would round it, without its undefined cases. */
static float to_float(double d) {
  if (isnan(d) || isinf(d) || fabs(d) <= FLT_MAX) return (float)d;
  /* beyond FLT_MAX: what rounds down to it, and what overflows to infinity */
  float big = fabs(d) < 0x1.ffffffp127 ? FLT_MAX : INFINITY;
  return d < 0 ? -big : big;
}

/* Convert v for an array of typecode tc into out (array_item_size(tc) bytes): NULL, or a new
   exception worded as array.array words it. */
value *array_pack(int tc, const value *v, uint8_t *out) {
  int64_t x = 0;
  uint64_t u = 0;
  double d = 0;
  value *err = NULL;
  switch (tc) {
  case 'b': {
    if ((err = to_long(v, &x)) || (err = range_check(x, SHRT_MIN, SHRT_MAX, "signed short integer")) ||
        (err = range_check(x, SCHAR_MIN, SCHAR_MAX, "signed char")))
      return err;
    signed char c = (signed char)x;
    memcpy(out, &c, 1);
    return NULL;
  }
  case 'B': {
    if ((err = to_long(v, &x)) || (err = range_check(x, 0, UCHAR_MAX, "unsigned byte integer"))) return err;
    unsigned char c = (unsigned char)x;
    memcpy(out, &c, 1);
    return NULL;
  }
  case 'h': {
    if ((err = to_long(v, &x)) || (err = range_check(x, SHRT_MIN, SHRT_MAX, "signed short integer"))) return err;
    short s = (short)x;
    memcpy(out, &s, sizeof s);
    return NULL;
  }
  case 'H': {
    if ((err = to_long(v, &x)) || (err = range_check(x, INT_MIN, INT_MAX, "signed integer")) ||
        (err = range_check(x, 0, USHRT_MAX, "unsigned short")))
      return err;
    unsigned short s = (unsigned short)x;
    memcpy(out, &s, sizeof s);
    return NULL;
  }
  case 'i': {
    if ((err = to_long(v, &x)) || (err = range_check(x, INT_MIN, INT_MAX, "signed integer"))) return err;
    int i = (int)x;
    memcpy(out, &i, sizeof i);
    return NULL;
  }
  case 'I': {
    if ((err = to_unsigned(v, false, &u))) return err;
    if (u > UINT_MAX) return v_exception_msg("OverflowError", "unsigned int is greater than maximum");
    unsigned int i = (unsigned int)u;
    memcpy(out, &i, sizeof i);
    return NULL;
  }
  case 'l': {
    if ((err = to_long(v, &x))) return err;
    long l = (long)x;
    memcpy(out, &l, sizeof l);
    return NULL;
  }
  case 'L': {
    if ((err = to_unsigned(v, false, &u))) return err;
    unsigned long l = (unsigned long)u;
    memcpy(out, &l, sizeof l);
    return NULL;
  }
  case 'q': {
    if (v->kind == VK_BIGINT) return v_exception_msg("OverflowError", "int too big to convert");
    if (seq_index(v, &x) < 0) return not_integer(v);
    long long q = (long long)x;
    memcpy(out, &q, sizeof q);
    return NULL;
  }
  case 'Q': {
    if ((err = to_unsigned(v, true, &u))) return err;
    unsigned long long q = (unsigned long long)u;
    memcpy(out, &q, sizeof q);
    return NULL;
  }
  case 'f': {
    if ((err = to_double(v, &d))) return err;
    float f = to_float(d);
    memcpy(out, &f, sizeof f);
    return NULL;
  }
  case 'd':
    if ((err = to_double(v, &d))) return err;
    memcpy(out, &d, sizeof d);
    return NULL;
  case 'u': {
    int32_t cp = one_char(v);
    if (cp < 0) return v_exception_msg("TypeError", "array item must be unicode character");
    wchar_t w = (wchar_t)cp;
    memcpy(out, &w, sizeof w);
    return NULL;
  }
  default: { /* 'w' */
    int32_t cp = one_char(v);
    if (cp < 0) return v_exception_msg("TypeError", "array item must be unicode character");
    uint32_t w = (uint32_t)cp;
    memcpy(out, &w, sizeof w);
    return NULL;
  }
  }
}

/* ---- one item: C bytes -> value ---- */

static value *char_value(uint32_t cp, value **err) {
  if (cp > 0x10ffff) {
    *err = error("ValueError", "character U+%x is not in range [U+0000; U+10ffff]", (unsigned)cp);
    return NULL;
  }
  char s[4];
  size_t n;
  if (cp < 0x80) {
    s[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    s[0] = (char)(0xc0 | cp >> 6);
    s[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) { /* surrogates too, as shmgr's str keeps them */
    s[0] = (char)(0xe0 | cp >> 12);
    s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    s[0] = (char)(0xf0 | cp >> 18);
    s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return v_str(s, n);
}

static value *u64_value(uint64_t u) {
  if (u <= INT64_MAX) return v_int((int64_t)u);
  uint8_t le[9];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(u >> (8 * i));
  le[8] = 0;
  return v_bigint_le(le, 9);
}

/* The item at p of an array of typecode tc: new, or NULL with *err (a 'u' or 'w' item that
   is no code point). */
value *array_unpack(int tc, const uint8_t *p, value **err) {
  switch (tc) {
  case 'b': { signed char c; memcpy(&c, p, 1); return v_int(c); }
  case 'B': return v_int(*p);
  case 'h': { short s; memcpy(&s, p, sizeof s); return v_int(s); }
  case 'H': { unsigned short s; memcpy(&s, p, sizeof s); return v_int(s); }
  case 'i': { int i; memcpy(&i, p, sizeof i); return v_int(i); }
  case 'I': { unsigned int i; memcpy(&i, p, sizeof i); return v_int(i); }
  case 'l': { long l; memcpy(&l, p, sizeof l); return v_int(l); }
  case 'L': { unsigned long l; memcpy(&l, p, sizeof l); return u64_value(l); }
  case 'q': { long long q; memcpy(&q, p, sizeof q); return v_int(q); }
  case 'Q': { unsigned long long q; memcpy(&q, p, sizeof q); return u64_value(q); }
  case 'f': { float f; memcpy(&f, p, sizeof f); return v_float(f); }
  case 'd': { double d; memcpy(&d, p, sizeof d); return v_float(d); }
  case 'u': { wchar_t w; memcpy(&w, p, sizeof w); return char_value((uint32_t)w, err); }
  default: { uint32_t w; memcpy(&w, p, sizeof w); return char_value(w, err); }
  }
}

/* ---- arrays as values: array.array(typecode, bytes), as managers.py pickles them ---- */

value *array_new_value(int tc, const uint8_t *data, size_t nbytes) {
  char code = (char)tc;
  value *args = v_tuple(2);
  args->u.seq.items[0] = v_str(&code, 1);
  args->u.seq.items[1] = v_bytes(data, nbytes);
  return v_opaque(OPQ_REDUCE, v_global("array", "array"), args, NULL);
}

/* Whether v is such an array value; its typecode and bytes (borrowed). */
bool array_parts(const value *v, int *tc, const uint8_t **data, size_t *nbytes) {
  if (v->kind != VK_OPAQUE || v->u.o->how != OPQ_REDUCE || v->u.o->nops) return false;
  const value *g = v->u.o->callable, *args = v->u.o->args;
  if (g->kind != VK_GLOBAL || !v_is_str(g->u.g.module, "array") || !v_is_str(g->u.g.name, "array")) return false;
  if (!args || args->kind != VK_TUPLE || args->u.seq.len != 2) return false;
  int32_t c = one_char(args->u.seq.items[0]);
  const value *b = args->u.seq.items[1];
  size_t size = c > 0 ? array_item_size(c) : 0;
  if (!size || b->kind != VK_BYTES || b->u.s.len % size) return false;
  *tc = c;
  *data = (const uint8_t *)b->u.s.data;
  *nbytes = b->u.s.len;
  return true;
}

/* The items of an array value as a list, or NULL with *err. */
value *array_item_list(int tc, const uint8_t *data, size_t nbytes, value **err) {
  size_t size = array_item_size(tc);
  value *l = v_list(nbytes / size);
  for (size_t off = 0; off < nbytes; off += size) {
    value *x = array_unpack(tc, data + off, err);
    if (!x) {
      v_decref(l);
      return NULL;
    }
    list_append(l, x);
  }
  return l;
}

value *array_value_items(const value *v, value **err) {
  int tc;
  const uint8_t *data;
  size_t nbytes;
  *err = NULL;
  return array_parts(v, &tc, &data, &nbytes) ? array_item_list(tc, data, nbytes, err) : NULL;
}

/* ---- the object ---- */

static void resize(arr *a, size_t len) {
  if (len > a->cap) {
    size_t cap = a->cap ? a->cap : 4;
    while (cap < len) cap *= 2;
    a->data = xrealloc(a->data, cap * a->size);
    a->cap = cap;
  }
  a->len = len;
}

/* Append the items (a list value), converted; NULL or the first conversion's error. */
static value *append_items(arr *a, const value *items) {
  for (size_t i = 0; i < items->u.seq.len; i++) {
    uint8_t tmp[16];
    value *err = array_pack(a->tc, items->u.seq.items[i], tmp);
    if (err) return err;
    resize(a, a->len + 1);
    memcpy(a->data + (a->len - 1) * a->size, tmp, a->size);
  }
  return NULL;
}

static value *array_index(const value *key, size_t len, int64_t *i, const char *range_msg) {
  int r = seq_index(key, i);
  if (r > 0) return v_exception_msg("IndexError", "cannot fit 'int' into an index-sized integer");
  if (r < 0) return v_exception_msg("TypeError", "array indices must be integers");
  if (*i < 0) *i += (int64_t)len;
  if (*i < 0 || *i >= (int64_t)len) return v_exception_msg("IndexError", range_msg);
  return NULL;
}

outcome array_getitem(const array_data *a, const value *key) {
  value *err = NULL;
  if (seq_is_slice(key)) {
    seq_span s;
    if ((err = seq_slice(key, a->len, &s))) return out_error(err);
    uint8_t *part = xmalloc((size_t)s.count * a->size + 1);
    for (int64_t k = 0; k < s.count; k++)
      memcpy(part + (size_t)k * a->size, a->data + seq_at(&s, k) * a->size, a->size);
    value *r = array_new_value(a->tc, part, (size_t)s.count * a->size);
    free(part);
    return out_value(r);
  }
  int64_t i;
  if ((err = array_index(key, a->len, &i, "array index out of range"))) return out_error(err);
  value *r = array_unpack(a->tc, a->data + (size_t)i * a->size, &err);
  return r ? out_value(r) : out_error(err);
}

/* a[s] = other (an array value of the same typecode), array_ass_subscr's way: a simple
   slice may change the length; an extended one takes as many items as it names, or none
   (then its items are deleted). */
static outcome setslice(arr *a, const value *key, const value *v) {
  seq_span s;
  value *err = seq_slice(key, a->len, &s);
  if (err) return out_error(err);
  int tc;
  const uint8_t *src;
  size_t nbytes;
  if (!array_parts(v, &tc, &src, &nbytes))
    return out_error(error("TypeError", "can only assign array (not \"%.200s\") to array slice", seq_typename(v)));
  if (tc != a->tc) return out_error(v_exception_msg("TypeError", "bad argument type for built-in operation"));
  size_t needed = nbytes / a->size, sz = a->size;
  if (s.step == 1) {
    size_t start = (size_t)s.start, count = (size_t)s.count, len = a->len;
    uint8_t *copy = xmalloc(nbytes + 1); /* src may not outlive a resize of ours: copy first */
    if (nbytes) memcpy(copy, src, nbytes);
    if (needed > count) resize(a, len + needed - count);
    if (len > start + count)
      memmove(a->data + (start + needed) * sz, a->data + (start + count) * sz, (len - start - count) * sz);
    if (needed < count) resize(a, len + needed - count);
    if (nbytes) memcpy(a->data + start * sz, copy, nbytes);
    free(copy);
    return out_value(v_none());
  }
  if (needed == 0) { /* delete the items the extended slice names */
    bool *gone = xcalloc(a->len ? a->len : 1, 1);
    for (int64_t k = 0; k < s.count; k++) gone[seq_at(&s, k)] = true;
    size_t keep = 0;
    for (size_t i = 0; i < a->len; i++)
      if (!gone[i]) memmove(a->data + keep++ * sz, a->data + i * sz, sz);
    a->len = keep;
    free(gone);
    return out_value(v_none());
  }
  if ((int64_t)needed != s.count)
    return out_error(error("ValueError", "attempt to assign array of size %zu to extended slice of size %lld", needed,
                           (long long)s.count));
  for (int64_t k = 0; k < s.count; k++) memcpy(a->data + seq_at(&s, k) * sz, src + (size_t)k * sz, sz);
  return out_value(v_none());
}

value *array_setitem_at(array_data *a, const value *key, const value *v) {
  int64_t i;
  value *err = array_index(key, a->len, &i, "array assignment index out of range");
  return err ? err : array_pack(a->tc, v, a->data + (size_t)i * a->size);
}

static outcome setitem(arr *a, const value *key, const value *v) {
  if (seq_is_slice(key)) return setslice(a, key, v);
  value *err = array_setitem_at(a, key, v);
  return err ? out_error(err) : out_value(v_none());
}

static outcome array_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  arr *a = o->state;
  value *x[2] = {0}, *err = NULL;
  if (strcmp(m, "__len__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, x))) return out_value(v_int((int64_t)a->len));
  } else if (strcmp(m, "__getitem__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, x))) return array_getitem(a, x[0]);
  } else if (strcmp(m, "__setitem__") == 0) {
    if (!(err = args_slot(m, 2, true, args, kwds, x))) return setitem(a, x[0], x[1]);
  } else {
    err = error("AttributeError", "'array.array' object has no attribute '%.100s'", m);
  }
  return out_error(err);
}

static void array_free(shobj *o) {
  arr *a = o->state;
  free(a->data);
  free(a);
}

/* array.__repr__: array('i'), array('i', [1, 2]), array('u', 'ab'). */
static void array_repr(const shobj *o, buf *out) {
  const arr *a = o->state;
  buf_printf(out, "array('%c'", a->tc);
  if (a->len) {
    value *err = NULL, *items = array_item_list(a->tc, a->data, a->len * a->size, &err);
    buf_str(out, ", ");
    if (!items) {
      buf_str(out, "...");
      v_decref(err);
    } else if (a->tc == 'u' || a->tc == 'w') {
      buf text = {0};
      for (size_t i = 0; i < items->u.seq.len; i++) {
        const value *ch = items->u.seq.items[i];
        buf_put(&text, ch->u.s.data, ch->u.s.len);
      }
      value *s = v_str(text.data ? (const char *)text.data : "", text.len);
      v_repr(out, s);
      v_decref(s);
      buf_free(&text);
    } else {
      v_repr(out, items);
    }
    v_decref(items);
  }
  buf_byte(out, ')');
}

static value *array_getvalue(shobj *o, value **err) {
  (void)err;
  const arr *a = o->state;
  return array_new_value(a->tc, a->data, a->len * a->size);
}

static void array_info(const shobj *o, obj_info *out) { out->size = (int64_t)((const arr *)o->state)->len; }

const otype array_type = {
    .name = "array",
    .methods = methods,
    .call = array_call,
    .free = array_free,
    .repr = array_repr,
    .getvalue = array_getvalue,
    .info = array_info,
};

value *array_build(const value *typecode, const value *init, array_data *a) {
  value *e = NULL, **err = &e;
  memset(a, 0, sizeof *a);
  int32_t c = one_char(typecode);
  if (c < 0) {
    *err = error("TypeError", "array() argument 1 must be a unicode character, not %.200s", seq_typename(typecode));
    return *err;
  }
  const char *cstr = typecode->u.s.data; /* the code as text, for messages */
  bool unicode = c == 'u' || c == 'w';
  int itc = 0;
  const uint8_t *idata = NULL;
  size_t inbytes = 0;
  bool is_array = array_parts(init, &itc, &idata, &inbytes);
  if (!unicode && init->kind == VK_STR) {
    *err = error("TypeError", "cannot use a str to initialize an array with typecode '%s'", cstr);
    return *err;
  }
  if (!unicode && is_array && (itc == 'u' || itc == 'w')) {
    *err = error("TypeError", "cannot use a unicode array to initialize an array with typecode '%s'", cstr);
    return *err;
  }
  /* anything but these is iterated first, so that it fails before a bad typecode does */
  value *items = NULL, *pending = NULL; /* an error the iteration met after the items it gave */
  bool direct = init->kind == VK_LIST || init->kind == VK_TUPLE || init->kind == VK_BYTES ||
                init->kind == VK_BYTEARRAY || (unicode && init->kind == VK_STR) || (is_array && itc == c);
  if (!direct) {
    if (is_array) items = array_item_list(itc, idata, inbytes, err);
    else items = iterargs_items(init, &pending);
    if (!items) {
      if (!is_array) *err = pending; /* else array_item_list said why */
      return *err;
    }
  }
  size_t size = c < 128 ? array_item_size(c) : 0;
  if (!size) {
    v_decref(items);
    v_decref(pending);
    *err = v_exception_msg("ValueError", "bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
    return *err;
  }
  a->tc = (char)c;
  a->size = size;
  if (init->kind == VK_BYTES || init->kind == VK_BYTEARRAY || (is_array && itc == c)) { /* frombytes */
    const uint8_t *p = is_array ? idata : (const uint8_t *)init->u.s.data;
    size_t n = is_array ? inbytes : init->u.s.len;
    if (n % size) {
      *err = v_exception_msg("ValueError", "bytes length not a multiple of item size");
      return *err;
    }
    resize(a, n / size);
    if (n) memcpy(a->data, p, n);
  } else {
    if (!items) items = iterargs_items(init, &pending); /* list, tuple, or str for 'u' and 'w' */
    *err = items ? iterargs_error(append_items(a, items), pending) : pending; /* a str past the step limit */
    v_decref(items);
    if (*err) {
      free(a->data);
      a->data = NULL;
      return *err;
    }
  }
  return NULL;
}

/* array.array(typecode, initial) as a shared object. */
static shobj *make(const value *typecode, const value *init, value **err) {
  arr *a = xcalloc(1, sizeof *a);
  if ((*err = array_build(typecode, init, a))) {
    free(a);
    return NULL;
  }
  return obj_new(&array_type, a, 0);
}

shobj *array_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"typecode", "sequence", "lock"};
  value *a[3] = {0};
  size_t npos = args ? args->u.seq.len : 0;
  if (npos > 3) { /* managers.Array is a function: no self to count */
    *err = error("TypeError", "Array() takes from 2 to 3 positional arguments but %zu were given", npos);
    return NULL;
  }
  if ((*err = args_bind("Array", names, 3, 2, args, kwds, a))) {
    if (!a[0] && !a[1] && args_missing(*err)) {
      v_decref(*err);
      *err = v_exception_msg("TypeError",
                             "Array() missing 2 required positional arguments: 'typecode' and 'sequence'");
    }
    return NULL;
  }
  return make(a[0], a[1], err);
}
