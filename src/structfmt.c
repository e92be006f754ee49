/* structfmt.c: Python's struct formats in C: a format's layout, and values packed into and unpacked from it. */
#include "alloc.h"
#include "structfmt.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "args.h"

/* Py_ssize_t's limit: CPython refuses any size past it, and so do we, in its words. */
#define SIZE_LIMIT ((size_t)PTRDIFF_MAX)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define NATIVE_LITTLE false
#else
#define NATIVE_LITTLE true
#endif

#define struct_error(...) v_exception_fmt("struct", "error", __VA_ARGS__)

/* UnicodeEncodeError(encoding, text, start, end, reason): the client prints it from these. */
static value *encode_error(const char *encoding, const value *text, int64_t start, int64_t end, const char *reason) {
  value *args = v_tuple(5);
  args->u.seq.items[0] = v_strz(encoding);
  args->u.seq.items[1] = v_incref((value *)text);
  args->u.seq.items[2] = v_int(start);
  args->u.seq.items[3] = v_int(end);
  args->u.seq.items[4] = v_strz(reason);
  return v_exception("builtins", "UnicodeEncodeError", args);
}

static size_t utf8_len(uint8_t b) { return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4; }

/* The first run of code points of text (shmgr's UTF-8) that bad() picks, as code point
   indexes [*start, *end): where Python's strict encoders report their error. */
static bool bad_run(const value *text, bool (*bad)(const uint8_t *s, size_t i, size_t n), int64_t *start,
                    int64_t *end) {
  const uint8_t *s = (const uint8_t *)text->u.s.data;
  size_t n = text->u.s.len;
  int64_t cp = 0;
  *start = -1;
  for (size_t i = 0; i < n; i += utf8_len(s[i]), cp++) {
    bool b = bad(s, i, n);
    if (b && *start < 0) *start = cp;
    if (!b && *start >= 0) break;
  }
  *end = cp;
  return *start >= 0;
}

static bool non_ascii(const uint8_t *s, size_t i, size_t n) {
  (void)n;
  return s[i] >= 0x80;
}

/* shmgr keeps a lone surrogate as pickle's surrogatepass writes it: ED A0..BF xx. */
static bool surrogate(const uint8_t *s, size_t i, size_t n) { return s[i] == 0xed && i + 1 < n && s[i + 1] >= 0xa0; }

/* ---- the layout ---- */

/* Native sizes and alignments: what this compiler lays out, as CPython's native table
   measures them ('e' is stored in and aligned as a short there). */
static bool native_code(int c, size_t *size, size_t *align) {
#define AS(T) (*size = sizeof(T), *align = _Alignof(T), true)
  switch (c) {
  case 'x': case 'c': case 'b': case 'B': case 's': case 'p': return AS(char);
  case '?': return AS(_Bool);
  case 'h': case 'H': case 'e': return AS(short);
  case 'i': case 'I': return AS(int);
  case 'l': case 'L': return AS(long);
  case 'q': case 'Q': return AS(long long);
  case 'n': return AS(ssize_t);
  case 'N': return AS(size_t);
  case 'f': return AS(float);
  case 'd': return AS(double);
  case 'P': return AS(void *);
  default: return false;
  }
#undef AS
}

/* Standard sizes ('=', '<', '>', '!'): fixed, never aligned; no n, N or P. */
static bool standard_code(int c, size_t *size, size_t *align) {
  *align = 1;
  switch (c) {
  case 'x': case 'c': case 'b': case 'B': case 's': case 'p': case '?': *size = 1; return true;
  case 'h': case 'H': case 'e': *size = 2; return true;
  case 'i': case 'I': case 'l': case 'L': case 'f': *size = 4; return true;
  case 'q': case 'Q': case 'd': *size = 8; return true;
  default: return false;
  }
}

static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

void sf_free(structfmt *f) {
  free(f->fields);
  memset(f, 0, sizeof *f);
}

/* prepare_s's walk, in its order of checks, so that a bad format fails as it does there. */
value *sf_parse(const value *format, structfmt *out) {
  memset(out, 0, sizeof *out);
  if (format->kind != VK_STR && format->kind != VK_BYTES) {
    char msg[160];
    snprintf(msg, sizeof msg, "Struct() argument 1 must be a str or bytes object, not %.100s", v_typename(format));
    return v_exception_msg("TypeError", msg);
  }
  int64_t start, end;
  if (format->kind == VK_STR && bad_run(format, non_ascii, &start, &end))
    return encode_error("ascii", format, start, end, "ordinal not in range(128)");
  const char *s = format->u.s.data;
  size_t len = format->u.s.len, i = 0;
  if (memchr(s, 0, len)) return struct_error("embedded null character");
  out->order = '@';
  if (len && strchr("@=<>!", s[0])) out->order = s[0] == '!' ? '>' : s[0], i = 1;
  out->fields = xmalloc((len + 1) * sizeof *out->fields);
  size_t size = 0;
  while (i < len) {
    int c = (unsigned char)s[i++];
    if (is_space(c)) continue;
    size_t num = 1;
    if (is_digit(c)) {
      num = (size_t)(c - '0');
      while (i < len && is_digit(s[i])) {
        size_t d = (size_t)(s[i++] - '0');
        if (num > (SIZE_LIMIT - d) / 10) goto overflow;
        num = num * 10 + d;
      }
      if (i == len) {
        sf_free(out);
        return struct_error("repeat count given without format specifier");
      }
      c = (unsigned char)s[i++];
    }
    size_t isz, ial;
    if (!(out->order == '@' ? native_code(c, &isz, &ial) : standard_code(c, &isz, &ial))) {
      sf_free(out);
      return struct_error("bad char in struct format");
    }
    if (ial > 1 && size > 0) { /* CPython aligns even a field of count 0 ("c0i" is 4 bytes) */
      size_t extra = (ial - 1) - (size - 1) % ial;
      if (extra > SIZE_LIMIT - size) goto overflow;
      size += extra;
    }
    if (num > (SIZE_LIMIT - size) / isz) goto overflow;
    if (c == 's' || c == 'p') {
      out->fields[out->nfields++] = (sf_field){(char)c, size, num, 1};
      out->nitems++;
    } else if (c != 'x' && num) {
      out->fields[out->nfields++] = (sf_field){(char)c, size, isz, num};
      out->nitems += num;
    }
    size += num * isz;
  }
  out->size = size;
  return NULL;
overflow:
  sf_free(out);
  return struct_error("total struct size too long");
}

/* ---- numbers ---- */

static void put_uint(char order, uint64_t x, size_t n, uint8_t *p) {
  bool little = order == '<' || (order != '>' && NATIVE_LITTLE);
  for (size_t i = 0; i < n; i++) p[little ? i : n - 1 - i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get_uint(char order, const uint8_t *p, size_t n) {
  bool little = order == '<' || (order != '>' && NATIVE_LITTLE);
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x |= (uint64_t)p[little ? i : n - 1 - i] << (8 * i);
  return x;
}

/* An int value: -1 when v is none (bool counts), 0 when it fits int64_t (*s), 1 when it is
   past INT64_MAX but fits uint64_t (*u), 2 when it fits neither. */
static int int_of(const value *v, int64_t *s, uint64_t *u) {
  switch (v->kind) {
  case VK_INT: *s = v->u.i; return 0;
  case VK_BOOL: *s = v->u.b; return 0;
  case VK_BIGINT: {
    size_t n = v->u.s.len;
    const uint8_t *le = (const uint8_t *)v->u.s.data;
    if ((le[n - 1] & 0x80) || n > 9 || (n == 9 && le[8])) return 2; /* minimal: 9 bytes at most for 2**64-1 */
    *u = 0;
    for (size_t i = 0; i < 8 && i < n; i++) *u |= (uint64_t)le[i] << (8 * i);
    return 1;
  }
  default: return -1;
  }
}

static value *range_error(int c, size_t n, bool is_unsigned) {
  uint64_t largest = n >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * n)) - 1;
  if (is_unsigned) return struct_error("'%c' format requires 0 <= number <= %llu", c, (unsigned long long)largest);
  return struct_error("'%c' format requires %lld <= number <= %lld", c, -(long long)(largest >> 1) - 1,
                      (long long)(largest >> 1));
}

/* The integer codes, 3.12+'s way: every overflow is the code's range error, except for 'P'
   (PyLong_AsVoidPtr takes a signed or an unsigned pointer-sized number, and its
   OverflowError becomes s_pack_internal's "int too large to convert"). */
static value *pack_int(char order, const sf_field *fd, const value *v, uint8_t *p) {
  int64_t s = 0;
  uint64_t u = 0;
  int r = int_of(v, &s, &u);
  if (r < 0) return struct_error("required argument is not an integer");
  int c = fd->code;
  size_t n = fd->size;
  uint64_t umax = n >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * n)) - 1;
  int64_t smax = (int64_t)(umax >> 1), smin = -smax - 1;
  if (c == 'P') {
    if (r == 2 || (r == 0 && s < smin) || (r == 1 && u > umax) || (r == 0 && s > 0 && (uint64_t)s > umax))
      return struct_error("int too large to convert");
  } else if (strchr("BHILQN", c)) {
    if (r == 2 || (r == 0 && s < 0) || (r == 1 ? u : (uint64_t)s) > umax) return range_error(c, n, true);
  } else if (r != 0 || s < smin || s > smax) {
    return range_error(c, n, false);
  }
  put_uint(order, r == 1 ? u : (uint64_t)s, n, p);
  return NULL;
}

/* A double as C's conversion to float rounds it (what CPython's (float) cast does), without
   the conversion's undefined cases past FLT_MAX. */
static float to_float(double d) {
  if (isnan(d) || isinf(d) || fabs(d) <= FLT_MAX) return (float)d;
  float big = fabs(d) < 0x1.ffffffp127 ? FLT_MAX : INFINITY; /* past half an ulp over FLT_MAX: infinity */
  return d < 0 ? -big : big;
}

/* IEEE 754 binary16 bits of x, rounded to nearest even (PyFloat_Pack2); false when x is
   finite but too large for one. */
static bool half_bits(double x, uint16_t *out) {
  uint16_t sign = signbit(x) ? 0x8000 : 0, bits;
  if (isnan(x)) bits = 0x7e00; /* the quiet NaN, keeping only the sign */
  else if (isinf(x)) bits = 0x7c00;
  else if (x == 0) bits = 0;
  else {
    int e;
    double m = frexp(fabs(x), &e) * 2; /* |x| = m * 2**(e-1), 1 <= m < 2 */
    e--;
    if (e >= 16) return false;
    unsigned exp;
    if (e < -25) { /* below half the smallest subnormal: zero */
      exp = 0;
      m = 0;
    } else if (e < -14) { /* subnormal: in units of 2**-14 */
      exp = 0;
      m = ldexp(m, e + 14);
    } else {
      exp = (unsigned)(e + 15);
      m -= 1; /* the implicit leading bit */
    }
    m *= 1024; /* exact: only the exponent changes */
    unsigned mant = (unsigned)m;
    double rest = m - mant;
    if (rest > 0.5 || (rest == 0.5 && (mant & 1))) {
      if (++mant == 1024) { /* carried into the exponent */
        mant = 0;
        if (++exp == 31) return false;
      }
    }
    bits = (uint16_t)(exp << 10 | mant);
  }
  *out = sign | bits;
  return true;
}

static double half_value(uint16_t h) {
  double sign = h & 0x8000 ? -1 : 1;
  unsigned exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 31) return mant ? copysign(NAN, sign) : sign * INFINITY;
  if (exp == 0) return sign * ldexp(mant, -24);
  return sign * ldexp(mant + 1024, (int)exp - 25);
}

/* The float codes: PyFloat_AsDouble's failures are all "required argument is not a float";
   a float too large for 'e' (or for a standard 'f'; the native one becomes infinity, as a C
   cast does) is an OverflowError, which s_pack_internal rewords when the value was an int. */
static value *pack_float(char order, const sf_field *fd, const value *v, uint8_t *p) {
  double d;
  bool is_int = true;
  switch (v->kind) {
  case VK_FLOAT: d = v->u.f, is_int = false; break;
  case VK_INT: d = (double)v->u.i; break;
  case VK_BOOL: d = v->u.b; break;
  case VK_BIGINT:
    if (v_bigint_double(v, &d)) break;
    /* fall through */
  default: return struct_error("required argument is not a float");
  }
  bool overflow = false;
  if (fd->code == 'd') {
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put_uint(order, bits, 8, p);
  } else if (fd->code == 'f') {
    float x = to_float(d);
    uint32_t bits;
    memcpy(&bits, &x, 4);
    overflow = order != '@' && isinf(x) && !isinf(d);
    if (!overflow) put_uint(order, bits, 4, p);
  } else {
    uint16_t h;
    overflow = !half_bits(d, &h);
    if (!overflow) put_uint(order, h, 2, p);
  }
  if (!overflow) return NULL;
  if (is_int) return struct_error("int too large to convert");
  char msg[60];
  snprintf(msg, sizeof msg, "float too large to pack with %c format", fd->code);
  return v_exception_msg("OverflowError", msg);
}

/* ---- characters and strings ---- */

/* 's' (the field's bytes) and 'p' (a length byte, then up to 255 of the others), and a str
   where the caller allows it: as UTF-8, cut before a character that would not fit whole,
   and for 'p' at most 255 bytes, so that it always reads back as the text it began with. */
static value *pack_chars(const sf_field *fd, const value *v, uint8_t *p, uint8_t *kind) {
  size_t room = fd->code == 's' ? fd->size : fd->size ? fd->size - 1 : 0, n;
  const uint8_t *src = (const uint8_t *)v->u.s.data;
  if (v->kind == VK_BYTES || v->kind == VK_BYTEARRAY) {
    n = v->u.s.len < room ? v->u.s.len : room;
    if (kind) *kind = SF_BYTES;
  } else if (v->kind == VK_STR && kind) {
    int64_t start, end;
    if (bad_run(v, surrogate, &start, &end)) return encode_error("utf-8", v, start, end, "surrogates not allowed");
    if (fd->code == 'p' && room > 255) room = 255;
    n = v->u.s.len;
    if (n > room) {
      n = room;
      while (n && (src[n] & 0xc0) == 0x80) n--; /* src[n] begins the first character left out */
    }
    *kind = SF_STR;
  } else {
    return struct_error("argument for '%c' must be a bytes object", fd->code);
  }
  if (n) memcpy(fd->code == 's' ? p : p + 1, src, n);
  if (fd->code == 'p' && fd->size) p[0] = (uint8_t)(n > 255 ? 255 : n);
  return NULL;
}

static value *pack_one(char order, const sf_field *fd, const value *v, uint8_t *p, uint8_t *kind) {
  switch (fd->code) {
  case 'c':
    if (v->kind != VK_BYTES || v->u.s.len != 1) return struct_error("char format requires a bytes object of length 1");
    *p = (uint8_t)v->u.s.data[0];
    return NULL;
  case 's': case 'p': return pack_chars(fd, v, p, kind);
  case '?': {
    if (v->kind == VK_OPAQUE) {
      char msg[320];
      snprintf(msg, sizeof msg,
               "cannot pack a '%.100s' object with the '?' format: its truth depends on its class's code, "
               "which the server never runs (pass bool(x))",
               v_typename(v));
      return v_exception_msg("TypeError", msg);
    }
    _Bool b = v_truth(v);
    if (order == '@') memcpy(p, &b, sizeof b);
    else *p = b;
    return NULL;
  }
  case 'e': case 'f': case 'd': return pack_float(order, fd, v, p);
  default: return pack_int(order, fd, v, p);
  }
}

value *sf_pack(const structfmt *f, value *const *items, size_t n, uint8_t *out, uint8_t *kinds) {
  if (n != f->nitems) return struct_error("pack expected %zu items for packing (got %zu)", f->nitems, n);
  memset(out, 0, f->size);
  if (kinds && f->nitems) memset(kinds, SF_BYTES, f->nitems);
  size_t k = 0;
  for (size_t i = 0; i < f->nfields; i++) {
    const sf_field *fd = &f->fields[i];
    for (size_t j = 0; j < fd->count; j++, k++) {
      value *err = pack_one(f->order, fd, items[k], out + fd->offset + j * fd->size, kinds ? kinds + k : NULL);
      if (err) return err;
    }
  }
  return NULL;
}

/* ---- unpacking ---- */

/* bytes.decode('utf-8', 'replace'): each maximal ill-formed subsequence becomes one U+FFFD,
   as CPython's decoder replaces them (surrogates are ill-formed there too). */
static value *decode_replace(const uint8_t *s, size_t n) {
  buf out = {0};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c < 0x80) {
      buf_byte(&out, c);
      i++;
      continue;
    }
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xbf; /* the second byte's range; later ones are 80..BF */
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    size_t k = 1;
    while (need && k <= need && i + k < n && s[i + k] >= (k == 1 ? lo : 0x80) && s[i + k] <= (k == 1 ? hi : 0xbf)) k++;
    if (need && k == need + 1) buf_put(&out, s + i, k);
    else buf_put(&out, "\xef\xbf\xbd", 3);
    i += k;
  }
  value *v = v_str(out.data ? (const char *)out.data : "", out.len);
  buf_free(&out);
  return v;
}

static value *u64_value(uint64_t u) {
  if (u <= INT64_MAX) return v_int((int64_t)u);
  uint8_t le[9];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(u >> (8 * i));
  le[8] = 0;
  return v_bigint_le(le, 9);
}

static value *unpack_one(char order, const sf_field *fd, const uint8_t *p, uint8_t kind) {
  size_t n = fd->size;
  switch (fd->code) {
  case 'c': return v_bytes(p, 1);
  case 's':
    if (kind != SF_STR) return v_bytes(p, n);
    while (n && !p[n - 1]) n--;
    return decode_replace(p, n);
  case 'p': {
    size_t len = n ? (p[0] < n ? p[0] : n - 1) : 0; /* 3.13's: a length past the field is cut */
    return kind == SF_STR ? decode_replace(p + 1, len) : v_bytes(p + 1, len);
  }
  case '?': {
    bool t = false;
    for (size_t i = 0; i < n; i++) t |= p[i] != 0;
    return v_bool(t);
  }
  case 'e': return v_float(half_value((uint16_t)get_uint(order, p, 2)));
  case 'f': {
    uint32_t bits = (uint32_t)get_uint(order, p, 4);
    float x;
    memcpy(&x, &bits, 4);
    return v_float(x);
  }
  case 'd': {
    uint64_t bits = get_uint(order, p, 8);
    double x;
    memcpy(&x, &bits, 8);
    return v_float(x);
  }
  default: {
    uint64_t x = get_uint(order, p, n);
    if (strchr("BHILQNP", fd->code)) return u64_value(x); /* PyLong_FromVoidPtr is unsigned */
    if (n < 8 && (x >> (8 * n - 1)) & 1) x |= UINT64_MAX << (8 * n); /* sign-extend */
    int64_t s;
    memcpy(&s, &x, 8);
    return v_int(s);
  }
  }
}

value *sf_unpack(const structfmt *f, const uint8_t *p, const uint8_t *kinds) {
  value *t = v_tuple(f->nitems);
  size_t k = 0;
  for (size_t i = 0; i < f->nfields; i++) {
    const sf_field *fd = &f->fields[i];
    for (size_t j = 0; j < fd->count; j++, k++)
      t->u.seq.items[k] = unpack_one(f->order, fd, p + fd->offset + j * fd->size, kinds ? kinds[k] : SF_BYTES);
  }
  return t;
}
