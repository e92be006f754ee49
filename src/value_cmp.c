/* value_cmp.c: Python's ==, hash and < over values, meeting shared structure once. */
#include "alloc.h"
#include "value_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "ptrmap.h"

/* ---- numbers: Python's cross-kind equality and numeric hash ---- */

static bool is_number(const value *v) {
  return v->kind == VK_BOOL || v->kind == VK_INT || v->kind == VK_BIGINT || v->kind == VK_FLOAT;
}

static int64_t as_i64(const value *v) { return v->kind == VK_BOOL ? (int64_t)v->u.b : v->u.i; }

/* An integral finite double as minimal little-endian two's complement (at most 130 bytes). */
static size_t double_to_le(double f, uint8_t *out) {
  bool neg = f < 0;
  double m = fabs(f);
  int e;
  double frac = frexp(m, &e); /* m = frac * 2^e, 0.5 <= frac < 1 */
  uint64_t mant = (uint64_t)ldexp(frac, 53);
  int shift = e - 53; /* m = mant * 2^shift; shift >= 0 for numbers beyond int64 */
  size_t n = (size_t)(e / 8 + 2);
  memset(out, 0, n);
  for (int b = 0; b < 64; b++) {
    if (!((mant >> b) & 1)) continue;
    int pos = b + shift;
    if (pos >= 0) out[pos / 8] |= (uint8_t)(1u << (pos % 8));
  }
  if (neg) {
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) {
      unsigned x = (uint8_t)~out[i] + carry;
      out[i] = (uint8_t)x;
      carry = x >> 8;
    }
  }
  return minimal_le(out, n);
}

static bool float_eq_int(double f, int64_t i) {
  if (!isfinite(f) || f != floor(f)) return false;
  if (f < -9223372036854775808.0 || f >= 9223372036854775808.0) return false;
  return (int64_t)f == i;
}

static bool float_eq_big(double f, const value *big) {
  if (!isfinite(f) || f != floor(f) || fabs(f) < 9223372036854775808.0) return false;
  uint8_t le[140];
  size_t n = double_to_le(f, le);
  return n == big->u.s.len && memcmp(le, big->u.s.data, n) == 0;
}

static bool number_eq(const value *a, const value *b) {
  if (a->kind == VK_FLOAT && b->kind == VK_FLOAT) return a->u.f == b->u.f;
  if (b->kind == VK_FLOAT) {
    const value *t = a;
    a = b;
    b = t;
  }
  if (a->kind == VK_FLOAT) return b->kind == VK_BIGINT ? float_eq_big(a->u.f, b) : float_eq_int(a->u.f, as_i64(b));
  if (a->kind == VK_BIGINT || b->kind == VK_BIGINT)
    return a->kind == b->kind && a->u.s.len == b->u.s.len && memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0;
  return as_i64(a) == as_i64(b);
}

#define HASH_MOD ((((uint64_t)1) << 61) - 1)

static int64_t signed_hash(uint64_t x, bool neg) {
  int64_t r = neg ? -(int64_t)x : (int64_t)x;
  return r == -1 ? -2 : r;
}

static int64_t hash_i64(int64_t i) {
  uint64_t m = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
  return signed_hash(m % HASH_MOD, i < 0);
}

static int64_t hash_bigint(const value *v) {
  size_t n = v->u.s.len;
  const uint8_t *le = (const uint8_t *)v->u.s.data;
  bool neg = le[n - 1] & 0x80;
  uint8_t *mag = xmalloc(n);
  unsigned carry = 1;
  for (size_t i = 0; i < n; i++) {
    if (neg) {
      unsigned x = (uint8_t)~le[i] + carry;
      mag[i] = (uint8_t)x;
      carry = x >> 8;
    } else {
      mag[i] = le[i];
    }
  }
  uint64_t x = 0;
  for (size_t i = n; i-- > 0;) { /* x = x * 256 + byte, mod 2**61 - 1 */
    x = ((x << 8) & HASH_MOD) | (x >> 53);
    x += mag[i];
    if (x >= HASH_MOD) x -= HASH_MOD;
  }
  free(mag);
  return signed_hash(x, neg);
}

static int64_t hash_double(double f) {
  if (isinf(f)) return f > 0 ? 314159 : -314159;
  if (isnan(f)) return 0;
  int e;
  double m = frexp(f, &e);
  bool neg = m < 0;
  if (neg) m = -m;
  uint64_t x = 0;
  while (m) {
    x = ((x << 28) & HASH_MOD) | (x >> (61 - 28));
    m *= 268435456.0;
    e -= 28;
    uint64_t y = (uint64_t)m;
    m -= (double)y;
    x += y;
    if (x >= HASH_MOD) x -= HASH_MOD;
  }
  e = e >= 0 ? e % 61 : 61 - 1 - ((-1 - e) % 61);
  x = ((x << e) & HASH_MOD) | (x >> (61 - e));
  return signed_hash(x, neg);
}

static int64_t hash_bytes(const void *p, size_t n) {
  const uint8_t *s = p;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  int64_t r;
  memcpy(&r, &h, sizeof r);
  return r == -1 ? -2 : r;
}

/* ---- equality ---- */

static bool eq_rec(const value *a, const value *b, int depth);

/* What one comparison learnt about pairs of containers, so that shared structure (a tuple
   or dict holding the same one twice, forty levels down: 80 bytes of pickle) is compared
   once per pair, not once per path through it (2^40 times): (a, b) -> open while that
   comparison runs, then its outcome. A pair met again while open is a cycle that Python
   would follow until its RecursionError: unequal, as past RECURSION_MAX. Kept across the
   nested comparisons a dict or set lookup makes, emptied when the outermost ends, so no
   pointer outlives the values it named (single-threaded, as all of this). */
typedef struct eqpair {
  const value *a, *b; /* a NULL: a free slot */
  int state;
} eqpair;
enum { EQ_OPEN = 1, EQ_SAME, EQ_DIFF };
static struct {
  eqpair *slot;
  size_t mask, n;
} eq_memo;
static int eq_nest;       /* comparisons running (dict lookups nest them) */
static int eq_level = -1; /* the depth of the innermost eq_rec running, -1 when none */

static eqpair *eq_slot(const value *a, const value *b) {
  size_t i = (ptrmap_hash(a) ^ ptrmap_hash(b) * 31) & eq_memo.mask;
  while (eq_memo.slot[i].a && (eq_memo.slot[i].a != a || eq_memo.slot[i].b != b)) i = (i + 1) & eq_memo.mask;
  return &eq_memo.slot[i];
}

/* The pair's entry, added (state 0) when absent; valid until the next call. */
static eqpair *eq_pair(const value *a, const value *b) {
  if (!eq_memo.slot || (eq_memo.n + 1) * 2 > eq_memo.mask + 1) {
    eqpair *old = eq_memo.slot;
    size_t oldsize = old ? eq_memo.mask + 1 : 0, size = old ? oldsize * 2 : 64;
    eq_memo.slot = xmalloc(mul_size(size, sizeof(eqpair)));
    memset(eq_memo.slot, 0, size * sizeof(eqpair));
    eq_memo.mask = size - 1;
    for (size_t i = 0; i < oldsize; i++)
      if (old[i].a) *eq_slot(old[i].a, old[i].b) = old[i];
    free(old);
  }
  eqpair *p = eq_slot(a, b);
  if (!p->a) *p = (eqpair){a, b, 0}, eq_memo.n++;
  return p;
}

static void eq_forget(void) {
  free(eq_memo.slot);
  memset(&eq_memo, 0, sizeof eq_memo);
}

/* A whole comparison, or one nested in a lookup that a comparison makes (then as deep as
   the comparison that made it, so that RECURSION_MAX still bounds the C stack). */
static bool eq_top(const value *a, const value *b) {
  eq_nest++;
  bool same = eq_rec(a, b, eq_level + 1);
  if (--eq_nest == 0 && eq_memo.n) eq_forget();
  return same;
}

static bool eq_elem_rec(const value *a, const value *b, int depth) { return a == b || eq_rec(a, b, depth + 1); }
bool eq_elem(const value *a, const value *b) { return a == b || eq_top(a, b); }

/* The pickle of an opaque object: how opaque objects compare and hash. */
static bool encoded(const value *v, buf *out) {
  char err[128];
  return pickle_dump(out, v, 4, err, sizeof err) == 0;
}

static bool opaque_eq(const value *a, const value *b) {
  buf x = {0}, y = {0};
  bool same = encoded(a, &x) && encoded(b, &y) && x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
  buf_free(&x);
  buf_free(&y);
  return same;
}

static bool table_eq(const value *a, const value *b, int depth) {
  const vdict *da = a->u.d, *db = b->u.d;
  if (da->len != db->len) return false;
  for (size_t i = 0; i < da->used; i++) {
    const dentry *e = &da->ent[i];
    if (!e->key) continue;
    size_t slot, ix = vd_find(db, e->key, e->hash, &slot);
    if (ix == IX_EMPTY) return false;
    if (a->kind == VK_DICT && !eq_elem_rec(e->val, db->ent[ix].val, depth)) return false;
  }
  return true;
}

/* a == b for any two values, without the memo. */
static bool eq_kind(const value *a, const value *b, int depth) {
  if (is_number(a) || is_number(b)) return is_number(a) && is_number(b) && number_eq(a, b);
  bool bytes_a = a->kind == VK_BYTES || a->kind == VK_BYTEARRAY;
  bool bytes_b = b->kind == VK_BYTES || b->kind == VK_BYTEARRAY;
  if (bytes_a || bytes_b)
    return bytes_a && bytes_b && a->u.s.len == b->u.s.len && memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0;
  bool set_a = a->kind == VK_SET || a->kind == VK_FROZENSET;
  bool set_b = b->kind == VK_SET || b->kind == VK_FROZENSET;
  if (set_a || set_b) return set_a && set_b && table_eq(a, b, depth);
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case VK_NONE:
    return true;
  case VK_STR:
    return a->u.s.len == b->u.s.len && memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0;
  case VK_TUPLE:
  case VK_LIST: {
    if (a->u.seq.len != b->u.seq.len) return false;
    for (size_t i = 0; i < a->u.seq.len; i++)
      if (!eq_elem_rec(a->u.seq.items[i], b->u.seq.items[i], depth)) return false;
    return true;
  }
  case VK_DICT:
    return table_eq(a, b, depth);
  case VK_GLOBAL:
    return eq_rec(a->u.g.module, b->u.g.module, depth + 1) && eq_rec(a->u.g.name, b->u.g.name, depth + 1);
  case VK_OPAQUE:
    return a == b || opaque_eq(a, b);
  default:
    return false;
  }
}

/* a == b through the memo: containers below the top are compared once per pair. */
static bool eq_rec(const value *a, const value *b, int depth) {
  if (depth > RECURSION_MAX) return false;
  bool memo = depth && v_is_container(a) && v_is_container(b); /* the top comes again only in a cycle, */
  if (memo) {                                               /* which its children meet */
    eqpair *p = eq_pair(a, b);
    if (p->state) return p->state == EQ_SAME; /* open: a cycle */
    p->state = EQ_OPEN;
  }
  int outer = eq_level;
  eq_level = depth;
  bool same = eq_kind(a, b, depth);
  eq_level = outer;
  if (memo) eq_pair(a, b)->state = same ? EQ_SAME : EQ_DIFF; /* the table may have moved */
  return same;
}

bool v_eq(const value *a, const value *b) {
  if (a == b && a->kind != VK_FLOAT) return true;
  return eq_top(a, b);
}

/* ---- hashing ---- */

#define XXPRIME_1 11400714785074694791ULL
#define XXPRIME_2 14029467366897019727ULL
#define XXPRIME_5 2870177450012600261ULL

/* Hashes of tuples inside the value being hashed: shared structure is hashed once, not once
   per path through it (see eq_memo). Emptied after each hash. */
static ptrmap hash_memo;

/* CPython's tuple hash (xxHash-based), so that hash order matches. */
static bool hash_tuple(const value *v, int64_t *out, const value **bad, int depth) {
  uint64_t acc = XXPRIME_5;
  for (size_t i = 0; i < v->u.seq.len; i++) {
    int64_t h;
    const value *item = v->u.seq.items[i];
    size_t *known = item->kind == VK_TUPLE ? ptrmap_get(&hash_memo, item) : NULL;
    if (known) {
      memcpy(&h, known, sizeof h);
    } else {
      if (!hash_value(item, &h, bad, depth + 1)) return false;
      if (item->kind == VK_TUPLE) {
        bool added;
        memcpy(ptrmap_put(&hash_memo, item, 0, &added), &h, sizeof h);
      }
    }
    acc += (uint64_t)h * XXPRIME_2;
    acc = (acc << 31) | (acc >> 33);
    acc *= XXPRIME_1;
  }
  acc += v->u.seq.len ^ (XXPRIME_5 ^ 3527539ULL);
  if (acc == UINT64_MAX) acc = 1546275796;
  memcpy(out, &acc, sizeof acc);
  return true;
}

/* Order-independent: each member's (stored) hash is scrambled, then xor-ed in. */
static int64_t hash_frozenset(const value *v) {
  const vdict *d = v->u.d;
  uint64_t h = 0;
  for (size_t i = 0; i < d->used; i++) {
    if (!d->ent[i].key) continue;
    uint64_t x = (uint64_t)d->ent[i].hash;
    h ^= ((x ^ 89869747ULL) ^ (x << 16)) * 3644798167ULL;
  }
  h ^= ((uint64_t)d->len + 1) * 1927868237ULL;
  h ^= (h >> 11) ^ (h >> 25);
  h = h * 69069U + 907133923ULL;
  if (h == UINT64_MAX) h = 590923713ULL;
  int64_t r;
  memcpy(&r, &h, sizeof r);
  return r;
}

static bool hash_rec(const value *v, int64_t *out, const value **bad, int depth);

bool hash_value(const value *v, int64_t *out, const value **bad, int depth) {
  bool ok = hash_rec(v, out, bad, depth);
  if (!depth && hash_memo.n) ptrmap_free(&hash_memo); /* a whole hash is done */
  return ok;
}

static bool hash_rec(const value *v, int64_t *out, const value **bad, int depth) {
  if (depth > RECURSION_MAX) {
    *bad = v;
    return false;
  }
  switch (v->kind) {
  case VK_NONE: *out = 0x5a17ee1; return true;
  case VK_BOOL:
  case VK_INT: *out = hash_i64(as_i64(v)); return true;
  case VK_BIGINT: *out = hash_bigint(v); return true;
  case VK_FLOAT: *out = hash_double(v->u.f); return true;
  case VK_STR:
  case VK_BYTES: *out = hash_bytes(v->u.s.data, v->u.s.len); return true;
  case VK_TUPLE: return hash_tuple(v, out, bad, depth);
  case VK_FROZENSET: *out = hash_frozenset(v); return true;
  case VK_GLOBAL: {
    int64_t m, n;
    if (!hash_value(v->u.g.module, &m, bad, depth + 1) || !hash_value(v->u.g.name, &n, bad, depth + 1))
      return false;
    *out = (int64_t)(((uint64_t)m * XXPRIME_1) ^ (uint64_t)n);
    return true;
  }
  case VK_OPAQUE: {
    buf b = {0};
    bool ok = encoded(v, &b);
    if (ok) *out = hash_bytes(b.data, b.len);
    else *bad = v;
    buf_free(&b);
    return ok;
  }
  default: /* list, dict, set, bytearray */
    *bad = v;
    return false;
  }
}

bool v_hash(const value *v, int64_t *out) {
  const value *bad = NULL;
  return hash_value(v, out, &bad, 0);
}

/* ---- ordering ---- */

/* -1, 0 or 1: a <=> b for minimal little-endian two's complement numbers. */
static int le_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
  bool nega = a[na - 1] & 0x80, negb = b[nb - 1] & 0x80;
  if (nega != negb) return nega ? -1 : 1;
  if (na != nb) return (na < nb) != nega ? -1 : 1; /* more bytes: further from zero */
  for (size_t i = na; i-- > 0;)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/* An int or bool as minimal little-endian bytes (out has room for 9). */
static size_t int_le(const value *v, uint8_t *out, const uint8_t **le) {
  if (v->kind == VK_BIGINT) {
    *le = (const uint8_t *)v->u.s.data;
    return v->u.s.len;
  }
  uint64_t u = (uint64_t)as_i64(v);
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(u >> (8 * i));
  *le = out;
  return minimal_le(out, 8);
}

/* f <=> an int, exactly (Python never rounds the int to a float to compare); 2 for NaN. */
static int float_cmp_int(double f, const value *i) {
  if (isnan(f)) return 2;
  if (isinf(f)) return f > 0 ? 1 : -1;
  if (i->kind != VK_BIGINT) {
    int64_t n = as_i64(i);
    if (f >= 9223372036854775808.0) return 1;
    if (f < -9223372036854775808.0) return -1;
    double t = trunc(f);
    int64_t ti = (int64_t)t; /* exact: t is integral and within int64 */
    if (ti != n) return ti < n ? -1 : 1;
    return f > t ? 1 : f < t ? -1 : 0;
  }
  bool neg = i->u.s.data[i->u.s.len - 1] & 0x80; /* a big int is beyond int64, f may not be */
  if (fabs(f) < 9223372036854775808.0) return neg ? 1 : -1;
  uint8_t le[140];
  size_t n = double_to_le(f, le); /* |f| >= 2**63 is integral */
  return le_cmp(le, n, (const uint8_t *)i->u.s.data, i->u.s.len);
}

/* a <=> b for two numbers; 2 when unordered (NaN). */
static int number_cmp(const value *a, const value *b) {
  if (a->kind == VK_FLOAT && b->kind == VK_FLOAT)
    return isnan(a->u.f) || isnan(b->u.f) ? 2 : a->u.f < b->u.f ? -1 : a->u.f > b->u.f;
  if (a->kind == VK_FLOAT) return float_cmp_int(a->u.f, b);
  if (b->kind == VK_FLOAT) {
    int r = float_cmp_int(b->u.f, a);
    return r == 2 ? 2 : -r;
  }
  if (a->kind != VK_BIGINT && b->kind != VK_BIGINT) {
    int64_t x = as_i64(a), y = as_i64(b);
    return x < y ? -1 : x > y;
  }
  uint8_t ba[9], bb[9];
  const uint8_t *la, *lb;
  size_t na = int_le(a, ba, &la), nb = int_le(b, bb, &lb);
  return le_cmp(la, na, lb, nb);
}

static int bytes_cmp(const value *a, const value *b) {
  size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
  int c = n ? memcmp(a->u.s.data, b->u.s.data, n) : 0;
  if (c) return c < 0 ? -1 : 1;
  return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
}

static int less_rec(const value *a, const value *b, int depth, value **err) {
  if (depth > RECURSION_MAX) {
    *err = v_exception_msg("RecursionError", "maximum recursion depth exceeded in comparison");
    return -1;
  }
  if (is_number(a) && is_number(b)) return number_cmp(a, b) == -1;
  bool bytes_a = a->kind == VK_BYTES || a->kind == VK_BYTEARRAY;
  bool bytes_b = b->kind == VK_BYTES || b->kind == VK_BYTEARRAY;
  if (bytes_a && bytes_b) return bytes_cmp(a, b) < 0;
  if (a->kind == VK_STR && b->kind == VK_STR) return bytes_cmp(a, b) < 0; /* UTF-8 keeps code point order */
  bool set_a = a->kind == VK_SET || a->kind == VK_FROZENSET;
  bool set_b = b->kind == VK_SET || b->kind == VK_FROZENSET;
  if (set_a && set_b) { /* a proper subset */
    if (dict_len(a) >= dict_len(b)) return 0;
    size_t pos = 0;
    value *k;
    while (dict_next(a, &pos, &k, NULL))
      if (!dict_get(b, k)) return 0;
    return 1;
  }
  if ((a->kind == VK_TUPLE || a->kind == VK_LIST) && a->kind == b->kind) {
    /* lexicographic: the first items that differ decide, else the lengths */
    size_t n = a->u.seq.len < b->u.seq.len ? a->u.seq.len : b->u.seq.len, i = 0;
    while (i < n && eq_elem_rec(a->u.seq.items[i], b->u.seq.items[i], depth)) i++;
    if (i == n) return a->u.seq.len < b->u.seq.len;
    return less_rec(a->u.seq.items[i], b->u.seq.items[i], depth + 1, err);
  }
  char msg[300];
  snprintf(msg, sizeof msg, "'<' not supported between instances of '%.100s' and '%.100s'", v_typename(a),
           v_typename(b));
  *err = v_exception_msg("TypeError", msg);
  return -1;
}

int v_less(const value *a, const value *b, value **err) {
  int r = less_rec(a, b, 0, err);
  if (eq_memo.n && !eq_nest) eq_forget(); /* what its equality tests learnt */
  return r;
}
