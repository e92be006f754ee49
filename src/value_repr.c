/* value_repr.c: Python's repr of values, and the type names messages give them. */
#include "alloc.h"
#include "value_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decode one code point of shmgr's UTF-8 (surrogates allowed); -1 for a stray byte. */
static int32_t utf8_next(const uint8_t *s, size_t n, size_t *i) {
  uint8_t c = s[*i];
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (!len || *i + (size_t)len > n) {
    (*i)++;
    return -1;
  }
  int32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; k++) {
    if ((s[*i + (size_t)k] & 0xc0) != 0x80) {
      (*i)++;
      return -1;
    }
    cp = (cp << 6) | (s[*i + (size_t)k] & 0x3f);
  }
  *i += (size_t)len;
  return cp;
}

/* Python's str.isprintable for non-ASCII, approximated: the separators, format and
   control characters a client is likely to meet; unassigned code points are not known. */
static bool printable(int32_t c) {
  static const int32_t ranges[][2] = {
      {0x80, 0xa0},       {0xad, 0xad},       {0x600, 0x605},     {0x61c, 0x61c},
      {0x6dd, 0x6dd},     {0x70f, 0x70f},     {0x1680, 0x1680},   {0x180e, 0x180e},
      {0x2000, 0x200f},   {0x2028, 0x202f},   {0x205f, 0x206f},   {0x3000, 0x3000},
      {0xd800, 0xdfff},   {0xe000, 0xf8ff},   {0xfeff, 0xfeff},   {0xfff9, 0xfffb},
      {0xfffe, 0xffff},   {0x110bd, 0x110bd}, {0x1d173, 0x1d17a}, {0xe0000, 0xe00ff},
      {0xe01f0, 0xe0fff}, {0xf0000, 0x10ffff},
  };
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
    if (c >= ranges[i][0] && c <= ranges[i][1]) return false;
  return true;
}

/* Python's quote choice: single quotes unless the text has ' and no ". */
static char quote_for(const char *s, size_t n) {
  bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
  return sq && !dq ? '"' : '\'';
}

static void repr_str(buf *out, const char *s, size_t n) {
  char q = quote_for(s, n);
  const uint8_t *u = (const uint8_t *)s;
  buf_byte(out, (uint8_t)q);
  for (size_t i = 0; i < n;) {
    size_t start = i;
    int32_t c = utf8_next(u, n, &i);
    if (c < 0) buf_printf(out, "\\x%02x", u[start]);
    else if (c == q || c == '\\') {
      buf_byte(out, '\\');
      buf_byte(out, (uint8_t)c);
    } else if (c == '\n') buf_str(out, "\\n");
    else if (c == '\r') buf_str(out, "\\r");
    else if (c == '\t') buf_str(out, "\\t");
    else if (c < 0x20 || c == 0x7f) buf_printf(out, "\\x%02x", (unsigned)c);
    else if (c < 0x80 || printable(c)) buf_put(out, s + start, i - start);
    else if (c < 0x100) buf_printf(out, "\\x%02x", (unsigned)c);
    else if (c < 0x10000) buf_printf(out, "\\u%04x", (unsigned)c);
    else buf_printf(out, "\\U%08x", (unsigned)c);
  }
  buf_byte(out, (uint8_t)q);
}

static void repr_bytes(buf *out, const char *s, size_t n) {
  char q = quote_for(s, n);
  buf_byte(out, 'b');
  buf_byte(out, (uint8_t)q);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c == q || c == '\\') {
      buf_byte(out, '\\');
      buf_byte(out, c);
    } else if (c == '\n') buf_str(out, "\\n");
    else if (c == '\r') buf_str(out, "\\r");
    else if (c == '\t') buf_str(out, "\\t");
    else if (c < 0x20 || c >= 0x7f) buf_printf(out, "\\x%02x", c);
    else buf_byte(out, c);
  }
  buf_byte(out, (uint8_t)q);
}

/* Decimal digits of a two's complement number, by repeated division by 10**9. */
static void repr_bigint(buf *out, const uint8_t *le, size_t n) {
  bool neg = n && (le[n - 1] & 0x80);
  size_t nl = (n + 3) / 4;
  uint32_t *limb = xmalloc(mul_size(nl + 1, sizeof(uint32_t)));
  memset(limb, 0, (nl + 1) * sizeof(uint32_t));
  unsigned carry = 1;
  for (size_t i = 0; i < n; i++) {
    unsigned byte = le[i];
    if (neg) {
      byte = (uint8_t)~le[i] + carry;
      carry = byte >> 8;
      byte &= 0xff;
    }
    limb[i / 4] |= (uint32_t)byte << (8 * (i % 4));
  }
  uint32_t *chunk = xmalloc(mul_size(nl * 10 / 9 + 2, sizeof(uint32_t)));
  size_t nchunk = 0;
  while (nl && !limb[nl - 1]) nl--;
  while (nl) {
    uint64_t rem = 0;
    for (size_t i = nl; i-- > 0;) {
      uint64_t cur = (rem << 32) | limb[i];
      limb[i] = (uint32_t)(cur / 1000000000u);
      rem = cur % 1000000000u;
    }
    chunk[nchunk++] = (uint32_t)rem;
    while (nl && !limb[nl - 1]) nl--;
  }
  if (neg) buf_byte(out, '-');
  if (!nchunk) buf_byte(out, '0');
  for (size_t i = nchunk; i-- > 0;) buf_printf(out, i == nchunk - 1 ? "%u" : "%09u", chunk[i]);
  free(chunk);
  free(limb);
}

/* Shortest decimal digits that read back as f (f > 0, finite): digits and the exponent of
   the first one. Correct rounding at each precision, then its neighbours, find Python's
   choice even where the gap below a power of two is half the gap above. */
static void shortest_digits(double f, char *digits, int *exp10) {
  char tmp[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
    char *e = strchr(tmp, 'e');
    int x = atoi(e + 1);
    uint64_t m = 0;
    for (char *c = tmp; c < e; c++)
      if (*c >= '0' && *c <= '9') m = m * 10 + (uint64_t)(*c - '0');
    uint64_t lo = 1;
    for (int k = 1; k < p; k++) lo *= 10;
    uint64_t tries[3] = {m, m + 1, m - 1};
    for (int c = 0; c < 3; c++) {
      if (tries[c] < lo || tries[c] >= lo * 10) continue;
      char num[40];
      snprintf(num, sizeof num, "%llue%d", (unsigned long long)tries[c], x - (p - 1));
      if (strtod(num, NULL) != f) continue;
      snprintf(digits, 24, "%llu", (unsigned long long)tries[c]);
      size_t len = strlen(digits);
      while (len > 1 && digits[len - 1] == '0') digits[--len] = 0;
      *exp10 = x;
      return;
    }
  }
  snprintf(tmp, sizeof tmp, "%.16e", f); /* not reached: 17 digits always read back */
  digits[0] = tmp[0];
  memcpy(digits + 1, tmp + 2, 16);
  digits[17] = 0;
  *exp10 = atoi(strchr(tmp, 'e') + 1);
}

static void repr_float(buf *out, double f) {
  if (isnan(f)) {
    buf_str(out, "nan");
    return;
  }
  if (signbit(f)) buf_byte(out, '-');
  f = fabs(f);
  if (isinf(f)) {
    buf_str(out, "inf");
    return;
  }
  if (f == 0) {
    buf_str(out, "0.0");
    return;
  }
  char d[24];
  int x;
  shortest_digits(f, d, &x);
  int nd = (int)strlen(d), decpt = x + 1;
  if (decpt <= -4 || decpt > 16) {
    buf_byte(out, (uint8_t)d[0]);
    if (nd > 1) {
      buf_byte(out, '.');
      buf_str(out, d + 1);
    }
    buf_printf(out, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
  } else if (decpt <= 0) {
    buf_str(out, "0.");
    for (int i = 0; i < -decpt; i++) buf_byte(out, '0');
    buf_str(out, d);
  } else if (decpt >= nd) {
    buf_str(out, d);
    for (int i = nd; i < decpt; i++) buf_byte(out, '0');
    buf_str(out, ".0");
  } else {
    buf_put(out, d, (size_t)decpt);
    buf_byte(out, '.');
    buf_str(out, d + decpt);
  }
}

/* The containers being printed, so a container met inside itself prints as "..." */
#define REPR_MAX (1u << 20) /* bytes of one repr, past which it ends in "..." */

typedef struct reprstack {
  const value **v;
  size_t n, cap;
  size_t limit; /* the output's length past which the repr is cut */
  bool cut;
} reprstack;

static void repr_rec(buf *out, const value *v, reprstack *st);

static void repr_items(buf *out, value **items, size_t n, reprstack *st) {
  for (size_t i = 0; i < n; i++) {
    if (i) buf_str(out, ", ");
    repr_rec(out, items[i], st);
  }
}

static void repr_table(buf *out, const value *v, reprstack *st) {
  size_t pos = 0, i = 0;
  value *k, *val;
  while (dict_next(v, &pos, &k, &val)) {
    if (i++) buf_str(out, ", ");
    repr_rec(out, k, st);
    if (v->kind == VK_DICT) {
      buf_str(out, ": ");
      repr_rec(out, val, st);
    }
  }
}

/* The class an opaque object was made from (NULL when it is not a plain global). */
static const value *opaque_class(const value *v) {
  const opaque *o = v->u.o;
  const value *c = o->callable;
  if (!c || c->kind != VK_GLOBAL) return NULL;
  if (o->how == OPQ_REDUCE && v_is_str(c->u.g.module, "copyreg") && v_is_str(c->u.g.name, "_reconstructor") &&
      o->args && o->args->kind == VK_TUPLE && o->args->u.seq.len && o->args->u.seq.items[0]->kind == VK_GLOBAL)
    return o->args->u.seq.items[0];
  return c;
}

static const char *last_part(const value *name) {
  if (name->kind != VK_STR) return "object";
  const char *dot = strrchr(name->u.s.data, '.');
  return dot ? dot + 1 : name->u.s.data;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Exceptions print as Name(args); the names say which classes are exceptions ("error":
   struct.error, zlib.error, re.error and their kin). */
static bool exception_like(const char *name) {
  static const char *const names[] = {"Empty", "Full", "ShutDown", "StopIteration", "StopAsyncIteration",
                                      "GeneratorExit", "KeyboardInterrupt", "BaseException", "error"};
  if (ends_with(name, "Error") || ends_with(name, "Exception") || ends_with(name, "Warning") ||
      ends_with(name, "Exit") || ends_with(name, "ExceptionGroup"))
    return true;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i]) == 0) return true;
  return false;
}

static void repr_opaque(buf *out, const value *v, reprstack *st) {
  const opaque *o = v->u.o;
  const value *cls = opaque_class(v);
  const char *name = cls ? last_part(cls->u.g.name) : "object";
  bool builtin = cls && v_is_str(cls->u.g.module, "builtins");
  bool plain = o->how == OPQ_REDUCE && cls == o->callable && o->args && o->args->kind == VK_TUPLE;
  builtin = builtin && plain && !o->nops; /* slice and range are only ever made whole */
  if (builtin && strcmp(name, "range") == 0 && o->args->u.seq.len == 3 && o->args->u.seq.items[2]->kind == VK_INT &&
      o->args->u.seq.items[2]->u.i == 1) { /* range(a, b, 1) prints as range(a, b) */
    buf_str(out, "range(");
    repr_items(out, o->args->u.seq.items, 2, st);
    buf_byte(out, ')');
    return;
  }
  if ((builtin && (strcmp(name, "slice") == 0 || strcmp(name, "range") == 0)) || (plain && exception_like(name))) {
    buf_str(out, name);
    buf_byte(out, '(');
    repr_items(out, o->args->u.seq.items, o->args->u.seq.len, st);
    buf_byte(out, ')');
    return;
  }
  buf_byte(out, '<');
  if (cls && cls->u.g.module->kind == VK_STR && cls->u.g.name->kind == VK_STR)
    buf_printf(out, "%s.%s", cls->u.g.module->u.s.data, cls->u.g.name->u.s.data);
  else buf_str(out, "opaque");
  buf_str(out, " object>");
}

/* What Python prints for a container found inside itself. */
static const char *recursion_mark(const value *v) {
  switch (v->kind) {
  case VK_LIST: return "[...]";
  case VK_TUPLE: return "(...)";
  case VK_DICT: return "{...}";
  case VK_SET: return "set(...)";
  case VK_FROZENSET: return "frozenset(...)";
  default: return "...";
  }
}

static void repr_container(buf *out, const value *v, reprstack *st) {
  switch (v->kind) {
  case VK_TUPLE:
    buf_byte(out, '(');
    repr_items(out, v->u.seq.items, v->u.seq.len, st);
    buf_str(out, v->u.seq.len == 1 ? ",)" : ")");
    break;
  case VK_LIST:
    buf_byte(out, '[');
    repr_items(out, v->u.seq.items, v->u.seq.len, st);
    buf_byte(out, ']');
    break;
  case VK_DICT:
    buf_byte(out, '{');
    repr_table(out, v, st);
    buf_byte(out, '}');
    break;
  case VK_SET:
  case VK_FROZENSET: {
    bool frozen = v->kind == VK_FROZENSET;
    if (!v->u.d->len) {
      buf_str(out, frozen ? "frozenset()" : "set()");
      break;
    }
    buf_str(out, frozen ? "frozenset({" : "{");
    repr_table(out, v, st);
    buf_str(out, frozen ? "})" : "}");
    break;
  }
  default:
    repr_opaque(out, v, st);
    break;
  }
}

static void repr_rec(buf *out, const value *v, reprstack *st) {
  if (st->cut) return;
  if (out->len > st->limit) { /* shared structure can make a short value's repr endless */
    buf_str(out, "...");
    st->cut = true;
    return;
  }
  switch (v->kind) {
  case VK_NONE: buf_str(out, "None"); return;
  case VK_BOOL: buf_str(out, v->u.b ? "True" : "False"); return;
  case VK_INT: buf_printf(out, "%lld", (long long)v->u.i); return;
  case VK_BIGINT: repr_bigint(out, (const uint8_t *)v->u.s.data, v->u.s.len); return;
  case VK_FLOAT: repr_float(out, v->u.f); return;
  case VK_STR: repr_str(out, v->u.s.data, v->u.s.len); return;
  case VK_BYTES: repr_bytes(out, v->u.s.data, v->u.s.len); return;
  case VK_BYTEARRAY:
    buf_str(out, "bytearray(");
    repr_bytes(out, v->u.s.data, v->u.s.len);
    buf_byte(out, ')');
    return;
  case VK_GLOBAL:
    buf_str(out, "<class '");
    if (v->u.g.module->kind == VK_STR && v->u.g.name->kind == VK_STR)
      buf_printf(out, "%s.%s", v->u.g.module->u.s.data, v->u.g.name->u.s.data);
    buf_str(out, "'>");
    return;
  default:
    break;
  }
  for (size_t i = 0; i < st->n; i++)
    if (st->v[i] == v) {
      buf_str(out, recursion_mark(v));
      return;
    }
  if (st->n >= RECURSION_MAX) {
    buf_str(out, "...");
    return;
  }
  if (st->n == st->cap) {
    st->cap = st->cap ? st->cap * 2 : 16;
    st->v = xrealloc(st->v, mul_size(st->cap, sizeof(value *)));
  }
  st->v[st->n++] = v;
  repr_container(out, v, st);
  st->n--;
}

void v_repr(buf *out, const value *v) {
  reprstack st = {0};
  st.limit = out->len + REPR_MAX;
  repr_rec(out, v, &st);
  free(st.v);
}

const char *v_typename(const value *v) {
  switch (v->kind) {
  case VK_NONE: return "NoneType";
  case VK_BOOL: return "bool";
  case VK_INT:
  case VK_BIGINT: return "int";
  case VK_FLOAT: return "float";
  case VK_STR: return "str";
  case VK_BYTES: return "bytes";
  case VK_BYTEARRAY: return "bytearray";
  case VK_TUPLE: return "tuple";
  case VK_LIST: return "list";
  case VK_DICT: return "dict";
  case VK_SET: return "set";
  case VK_FROZENSET: return "frozenset";
  case VK_GLOBAL: return "type";
  case VK_OPAQUE: {
    const value *cls = opaque_class(v);
    return cls ? last_part(cls->u.g.name) : "object";
  }
  default: return "object";
  }
}
