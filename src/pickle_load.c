/* pickle_load.c: pickle bytes -> values: a protocol 0-5 decoder that only builds data. */
#include "pickle.h"

#include "alloc.h"
#include "effects.h"
#include "pickle_names.h"
#include "pickle_ops.h"
#include "pickle_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t x = 0;
  for (int i = n; i-- > 0;) x = (x << 8) | p[i];
  return x;
}

typedef struct slot {
  value *v;
  size_t depth; /* nesting of v as far as the decoder has seen it built */
  value *near;  /* the nearest opaque object at or under this slot, or NULL (effects.c) */
  bool again;   /* pushed again by GET or DUP, not where it was made */
} slot;

typedef struct dec {
  const uint8_t *data, *p, *end;
  size_t op_at; /* offset of the opcode being run */
  const pickle_limits *lim;
  slot *stack;
  size_t sp, stackcap;
  size_t *marks;
  size_t nmarks, markcap;
  slot *memo;
  size_t memocap, memolen; /* memolen counts filled entries, as len(memo) in Python */
  size_t objects;
  int proto;
  bool shared; /* a container was pushed a second time (GET, DUP): graphs, maybe cycles */
  value **dead; /* values let go of once shared: released with the stack and memo, at once */
  size_t ndead, deadcap;
  pk_made *made; /* every opaque object made, in order, held until the end (effects.c) */
  size_t nmade, madecap;
  bool lost;     /* a container or object was let go of: something made may be lost */
  pickle_adopt *adopt; /* may keep a payload in place (pickle_load_adopt), or NULL */
  value *adopted; /* the value that did, held until the end: the rest of the pickle lies in
                     its block */
  char *err;
  size_t errlen;
} dec;

static bool fail(dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(dec *d, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (d->errlen) snprintf(d->err, d->errlen, "pickle: %s at offset %zu", msg, d->op_at);
  return false;
}

/* Let go of a value the decoder owned. Once graphs exist it may close a cycle, so it waits
   for the one collection at the end (a collection per POP would cost quadratic time). */
static void drop(dec *d, value *v) {
  if (v_is_container(v)) d->lost = true;
  if (!d->shared) {
    v_decref(v);
    return;
  }
  d->dead = xgrow(d->dead, &d->deadcap, d->ndead, sizeof(value *));
  d->dead[d->ndead++] = v;
}

static bool need(dec *d, size_t n) {
  if ((size_t)(d->end - d->p) < n) return fail(d, "truncated data");
  return true;
}

static bool read_uint(dec *d, int n, uint64_t *out) {
  if (!need(d, (size_t)n)) return false;
  *out = get_le(d->p, n);
  d->p += n;
  return true;
}

/* A protocol 0 argument: the bytes up to the next newline (consumed, not included). */
static bool read_line(dec *d, const uint8_t **s, size_t *n) {
  const uint8_t *nl = memchr(d->p, '\n', (size_t)(d->end - d->p));
  if (!nl) return fail(d, "truncated data (no newline)");
  *s = d->p;
  *n = (size_t)(nl - d->p);
  d->p = nl + 1;
  return true;
}

/* A length-prefixed argument; lengths are checked against the data before any use. */
static bool read_sized(dec *d, int lenbytes, bool is_signed, const uint8_t **s, size_t *n) {
  uint64_t len;
  if (!read_uint(d, lenbytes, &len)) return false;
  if (is_signed && lenbytes == 4 && (len & 0x80000000u)) return fail(d, "negative byte count");
  if (len > (uint64_t)(d->end - d->p))
    return fail(d, "truncated data (%llu bytes announced)", (unsigned long long)len);
  *s = d->p;
  *n = (size_t)len;
  d->p += len;
  return true;
}

static size_t fence(const dec *d) { return d->nmarks ? d->marks[d->nmarks - 1] : 0; }

static bool need_items(dec *d, size_t k, const char *op) {
  if (d->sp - fence(d) < k) return fail(d, "stack underflow in %s", op);
  return true;
}

/* For a tree the depth the stack shows is exact, so too deep is refused at once. Once memo
   references are in play it can be off either way (a container filled after it was fetched
   again is stale; a cycle is counted round once more than any walk goes), so the exact walk
   at the end decides (pickle_load). */
static bool check_depth(dec *d, size_t depth) {
  if (depth > d->lim->max_depth && !d->shared) return fail(d, "nesting deeper than %zu", d->lim->max_depth);
  return true;
}

static bool push_slot(dec *d, value *v, size_t depth) {
  if (!check_depth(d, depth)) {
    drop(d, v);
    return false;
  }
  d->stack = xgrow(d->stack, &d->stackcap, d->sp, sizeof(slot));
  value *below = d->sp ? d->stack[d->sp - 1].near : NULL;
  d->stack[d->sp] = (slot){v, depth, v->kind == VK_OPAQUE ? v : below, false};
  d->sp++;
  return true;
}

/* Push a value just made (stolen), counting it against max_objects. */
static bool push_new(dec *d, value *v, size_t depth) {
  if (++d->objects > d->lim->max_objects) {
    drop(d, v);
    return fail(d, "more than %zu objects", d->lim->max_objects);
  }
  return push_slot(d, v, depth);
}

/* Push another reference to a value already held (GET, DUP). */
static bool push_again(dec *d, slot s) {
  if (v_is_container(s.v)) d->shared = true;
  if (!push_slot(d, v_incref(s.v), s.depth)) return false;
  d->stack[d->sp - 1].again = true;
  return true;
}

static slot pop(dec *d) { return d->stack[--d->sp]; }

static bool pop_mark(dec *d, size_t *start, const char *op) {
  if (!d->nmarks) return fail(d, "%s without MARK", op);
  *start = d->marks[--d->nmarks];
  return true;
}

/* Release the stack items from `from` up (an error path or a POP). */
static void drop_items(dec *d, size_t from) {
  while (d->sp > from) drop(d, d->stack[--d->sp].v);
}

/* A tuple of the stack items from `start` up, which it takes over. */
static value *tuple_from(dec *d, size_t start, size_t *depth) {
  size_t n = d->sp - start, deepest = 0;
  value *t = v_tuple(n);
  for (size_t i = 0; i < n; i++) {
    t->u.seq.items[i] = d->stack[start + i].v;
    if (d->stack[start + i].depth > deepest) deepest = d->stack[start + i].depth;
  }
  d->sp = start;
  *depth = deepest + 1;
  return t;
}

/* Raise the recorded nesting of the container in stack slot i for a new member. */
static bool deepen(dec *d, size_t i, size_t member_depth) {
  if (member_depth + 1 > d->stack[i].depth) d->stack[i].depth = member_depth + 1;
  return check_depth(d, d->stack[i].depth);
}

/* ---- numbers ---- */

static bool op_binint(dec *d, int n) {
  uint64_t u;
  if (!read_uint(d, n, &u)) return false;
  int64_t i = n == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
  return push_new(d, v_int(i), 0);
}

static bool op_long_bin(dec *d, int lenbytes) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, true, &s, &n)) return false;
  return push_new(d, v_bigint_le(s, n), 0);
}

static bool op_int_text(dec *d, bool is_long) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  if (!is_long && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) /* protocol 0 bools */
    return push_new(d, v_bool(s[1] == '1'), 0);
  if (is_long && n && s[n - 1] == 'L') n--;
  value *v = parse_int(s, n);
  if (!v) return fail(d, "invalid literal for int");
  return push_new(d, v, 0);
}

static bool op_float_text(dec *d) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  char tmp[400];
  if (n == 0 || n >= sizeof tmp || memchr(s, 0, n)) return fail(d, "invalid float literal");
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *end;
  double f = strtod(tmp, &end);
  while (*end == ' ' || *end == '\t' || *end == '\r') end++;
  if (*end || end == tmp || strpbrk(tmp, "xX(")) return fail(d, "invalid float literal");
  return push_new(d, v_float(f), 0);
}

static bool op_binfloat(dec *d) {
  if (!need(d, 8)) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | d->p[i];
  d->p += 8;
  double f;
  memcpy(&f, &u, sizeof f);
  return push_new(d, v_float(f), 0);
}

/* ---- strings ---- */

/* A str or bytes of the n bytes at s: kept where it lies when the caller allows it and it is
   nearly all of the pickle's block (pickle_adopt), else copied. */
static value *payload(dec *d, vkind kind, const uint8_t *s, size_t n) {
  pickle_adopt *a = d->adopt;
  /* s + n < d->end: the byte after it, in the pickle, takes the NUL (pickle_load_adopt) */
  if (a && !a->taken && n >= a->min && a->size - n <= n / 20 && s + n < d->end) {
    a->taken = true;
    d->adopted = v_adopt(kind, (char *)s, n, a->block); /* s lies in the caller's writable block */
    return v_incref(d->adopted);
  }
  return kind == VK_STR ? v_str((const char *)s, n) : v_bytes(s, n);
}

static bool op_unicode_bin(dec *d, int lenbytes) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, false, &s, &n)) return false;
  if (!utf8_valid(s, n, true)) return fail(d, "invalid UTF-8 in str");
  return push_new(d, payload(d, VK_STR, s, n), 0);
}

static bool op_bytes_bin(dec *d, int lenbytes, bool array) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, false, &s, &n)) return false;
  return push_new(d, array ? v_bytearray(s, n) : payload(d, VK_BYTES, s, n), 0);
}

/* Protocol 0 UNICODE: latin-1 bytes with \uXXXX and \UXXXXXXXX escapes (raw-unicode-escape). */
static bool op_unicode_text(dec *d) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  buf out = {0};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i++];
    if (c != '\\' || i == n || (s[i] != 'u' && s[i] != 'U')) {
      put_utf8(&out, c);
      if (c == '\\' && i < n) put_utf8(&out, s[i++]); /* a backslash pair stays as it is */
      continue;
    }
    size_t count = s[i++] == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (size_t k = 0; k < count; k++, i++) {
      int h = i < n ? hexval(s[i]) : -1;
      if (h < 0) {
        buf_free(&out);
        return fail(d, "truncated \\u escape in UNICODE");
      }
      cp = cp << 4 | (uint32_t)h;
    }
    if (cp > 0x10ffff) {
      buf_free(&out);
      return fail(d, "\\U escape out of range in UNICODE");
    }
    put_utf8(&out, cp);
  }
  value *v = v_str(out.data ? (const char *)out.data : "", out.len);
  buf_free(&out);
  return push_new(d, v, 0);
}

/* A Python 2 str: text when it is valid UTF-8, bytes otherwise. */
static bool push_py2_str(dec *d, const uint8_t *s, size_t n) {
  if (utf8_valid(s, n, false)) return push_new(d, v_str((const char *)s, n), 0);
  return push_new(d, v_bytes(s, n), 0);
}

static bool op_string_text(dec *d) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
    return fail(d, "the STRING opcode argument must be quoted");
  buf out = {0};
  if (!escape_decode(s + 1, n - 2, &out)) {
    buf_free(&out);
    return fail(d, "invalid escape in STRING");
  }
  bool ok = push_py2_str(d, out.data ? out.data : (const uint8_t *)"", out.len);
  buf_free(&out);
  return ok;
}

static bool op_binstring(dec *d, int lenbytes) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, true, &s, &n)) return false;
  return push_py2_str(d, s, n);
}

/* ---- containers ---- */

static bool op_tuple_n(dec *d, size_t n) {
  if (!need_items(d, n, "TUPLE")) return false;
  size_t depth;
  value *t = tuple_from(d, d->sp - n, &depth);
  return push_new(d, t, depth);
}

static bool op_marked(dec *d, uint8_t op) {
  size_t start = 0, depth = 0;
  if (!pop_mark(d, &start, op == OP_TUPLE ? "TUPLE" : "LIST")) return false;
  value *t = tuple_from(d, start, &depth);
  if (op == OP_TUPLE) return push_new(d, t, depth);
  value *l = v_list(t->u.seq.len); /* LIST: the same items in a list */
  for (size_t i = 0; i < t->u.seq.len; i++) list_append(l, t->u.seq.items[i]);
  t->u.seq.len = 0;
  v_decref(t);
  return push_new(d, l, depth);
}

/* Move stack items from `start` up into a dict (pairs) or set (members). */
static bool fill_table(dec *d, value *table, size_t start, bool pairs, size_t *depth) {
  size_t step = pairs ? 2 : 1, i = start;
  if (d->sp > start) dict_reserve(table, (d->sp - start) / step);
  for (; i + step <= d->sp; i += step) {
    slot k = d->stack[i], v = pairs ? d->stack[i + 1] : (slot){NULL, 0, NULL, false};
    if (k.depth > *depth) *depth = k.depth;
    if (v.depth > *depth) *depth = v.depth;
    d->stack[i].v = NULL;
    if (pairs) d->stack[i + 1].v = NULL;
    const char *err = NULL;
    int rc = dict_set(table, k.v, v.v, &err);
    if (rc > 0) d->lost = true; /* the key was there: the old value (or new key) is gone */
    if (rc < 0) {
      i += step;
      for (; i < d->sp; i++) drop(d, d->stack[i].v);
      d->sp = start;
      return fail(d, "TypeError: %s", err);
    }
  }
  d->sp = start;
  return true;
}

static bool op_dict_or_frozenset(dec *d, bool dict) {
  size_t start = 0, depth = 0;
  if (!pop_mark(d, &start, dict ? "DICT" : "FROZENSET")) return false;
  if (dict && (d->sp - start) % 2) {
    drop_items(d, start);
    return fail(d, "odd number of items for DICT");
  }
  value *t = dict ? v_dict() : v_set(true);
  if (!fill_table(d, t, start, dict, &depth)) {
    drop(d, t);
    return false;
  }
  return push_new(d, t, depth + 1);
}

/* ---- mutating the container under the items (APPEND, SETITEM, ADDITEMS, BUILD) ---- */

/* A list, dict or set in slot ti went from `before` items to more, fetched again rather than
   where it was made: it was filled late, perhaps after a call took it as it was (dill makes a
   function with its globals, then fills them). Keep the steps: the early count on it, the
   fill where it happened, after the nearest opaque object under it. */
static void late_fill(dec *d, size_t ti, size_t before) {
  value *c = d->stack[ti].v;
  size_t after = c->kind == VK_LIST ? c->u.seq.len : dict_len(c);
  if (!d->stack[ti].again || after == before) return;
  if (v_early(c) == SIZE_MAX) v_set_early(c, before);
  value *carrier = ti ? d->stack[ti - 1].near : NULL;
  if (!carrier) return;
  opaque *o = carrier->u.o;
  opq_op *last = o->nops ? &o->ops[o->nops - 1] : NULL;
  if (last && last->op == OPQ_FILL && last->a == c) { /* the same fill going on */
    v_decref(last->b);
    last->b = v_int((int64_t)after);
    return;
  }
  opaque_op(carrier, OPQ_FILL, v_incref(c), v_int((int64_t)after));
}

static bool op_append(dec *d) {
  if (!need_items(d, 2, "APPEND")) return false;
  size_t ti = d->sp - 2;
  value *target = d->stack[ti].v;
  if (target->kind != VK_LIST && target->kind != VK_OPAQUE) return fail(d, "APPEND to a %s", v_typename(target));
  slot item = pop(d);
  if (target->kind == VK_LIST) {
    list_append(target, item.v);
    late_fill(d, ti, target->u.seq.len - 1);
  } else {
    opaque_op(target, OPQ_APPEND, item.v, NULL);
  }
  return deepen(d, ti, item.depth);
}

static bool op_appends(dec *d) {
  size_t start = 0;
  if (!pop_mark(d, &start, "APPENDS")) return false;
  if (start == 0 || start - 1 < fence(d)) {
    drop_items(d, start);
    return fail(d, "stack underflow in APPENDS");
  }
  value *target = d->stack[start - 1].v;
  if (target->kind != VK_LIST && target->kind != VK_OPAQUE) {
    drop_items(d, start);
    return fail(d, "APPENDS to a %s", v_typename(target));
  }
  size_t deepest = 0, before = target->kind == VK_LIST ? target->u.seq.len : 0;
  for (size_t i = start; i < d->sp; i++) {
    if (target->kind == VK_LIST) list_append(target, d->stack[i].v);
    else opaque_op(target, OPQ_APPEND, d->stack[i].v, NULL);
    if (d->stack[i].depth > deepest) deepest = d->stack[i].depth;
  }
  bool any = d->sp > start;
  d->sp = start;
  if (target->kind == VK_LIST) late_fill(d, start - 1, before);
  return !any || deepen(d, start - 1, deepest);
}

static bool op_setitem(dec *d) {
  if (!need_items(d, 3, "SETITEM")) return false;
  size_t ti = d->sp - 3;
  value *target = d->stack[ti].v;
  if (target->kind != VK_DICT && target->kind != VK_OPAQUE) return fail(d, "SETITEM on a %s", v_typename(target));
  slot v = pop(d), k = pop(d);
  size_t deepest = k.depth > v.depth ? k.depth : v.depth;
  if (target->kind == VK_OPAQUE) opaque_op(target, OPQ_SETITEM, k.v, v.v);
  else {
    const char *err = NULL;
    size_t before = dict_len(target);
    int rc = dict_set(target, k.v, v.v, &err);
    if (rc < 0) return fail(d, "TypeError: %s", err);
    if (rc > 0) d->lost = true;
    late_fill(d, ti, before);
  }
  return deepen(d, ti, deepest);
}

/* SETITEMS and ADDITEMS: the marked items go into the dict/set/opaque under the MARK. */
static bool op_setitems(dec *d, bool pairs) {
  const char *name = pairs ? "SETITEMS" : "ADDITEMS";
  size_t start = 0;
  if (!pop_mark(d, &start, name)) return false;
  if (start == 0 || start - 1 < fence(d)) {
    drop_items(d, start);
    return fail(d, "stack underflow in %s", name);
  }
  value *target = d->stack[start - 1].v;
  bool plain = target->kind == (pairs ? VK_DICT : VK_SET);
  if ((!plain && target->kind != VK_OPAQUE) || (pairs && (d->sp - start) % 2)) {
    drop_items(d, start);
    if (!plain && target->kind != VK_OPAQUE) return fail(d, "%s on a %s", name, v_typename(target));
    return fail(d, "odd number of items for SETITEMS");
  }
  size_t deepest = 0;
  bool any = d->sp > start;
  if (plain) {
    size_t before = dict_len(target);
    if (!fill_table(d, target, start, pairs, &deepest)) return false;
    late_fill(d, start - 1, before);
  } else {
    for (size_t i = start; i < d->sp; i += pairs ? 2 : 1) {
      slot k = d->stack[i], v = pairs ? d->stack[i + 1] : (slot){NULL, 0, NULL, false};
      opaque_op(target, pairs ? OPQ_SETITEM : OPQ_ADDITEM, k.v, v.v);
      if (k.depth > deepest) deepest = k.depth;
      if (v.depth > deepest) deepest = v.depth;
    }
    d->sp = start;
  }
  return !any || deepen(d, start - 1, deepest);
}

static bool op_build(dec *d) {
  if (!need_items(d, 2, "BUILD")) return false;
  size_t ti = d->sp - 2;
  value *target = d->stack[ti].v;
  if (target->kind != VK_OPAQUE) return fail(d, "BUILD on a %s", v_typename(target));
  slot state = pop(d);
  opaque_op(target, OPQ_BUILD, state.v, NULL);
  return deepen(d, ti, state.depth);
}

/* ---- globals and objects: names stay names, calls stay recipes ---- */

/* Remember an opaque object just made (before it is pushed), with the nearest opaque object
   under it: if the result does not reach it, it was made for an effect (effects.c). */
static void note_made(dec *d, value *o) {
  d->made = xgrow(d->made, &d->madecap, d->nmade, sizeof(pk_made));
  value *carrier = d->sp ? d->stack[d->sp - 1].near : NULL;
  d->made[d->nmade++] = (pk_made){v_incref(o), carrier, carrier ? carrier->u.o->nops : 0};
}

static bool push_global(dec *d, const uint8_t *m, size_t mn, const uint8_t *n, size_t nn, bool ascii) {
  if (memchr(m, 0, mn) || memchr(n, 0, nn) || !utf8_valid(m, mn, false) || !utf8_valid(n, nn, false))
    return fail(d, "invalid global name");
  for (size_t i = 0; ascii && i < mn + nn; i++)
    if ((i < mn ? m[i] : n[i - mn]) >= 0x80) return fail(d, "non-ASCII name in INST");
  char *mod = xrealloc(NULL, mn + nn + 2), *name = mod + mn + 1;
  memcpy(mod, m, mn);
  mod[mn] = 0;
  memcpy(name, n, nn);
  name[nn] = 0;
  const char *m2 = mod, *n2 = name;
  if (d->proto < 3) compat_name(mod, name, &m2, &n2);
  value *g = v_global(m2, n2);
  free(mod);
  return push_new(d, g, 0);
}

static bool op_global(dec *d) {
  const uint8_t *m = NULL, *n = NULL;
  size_t mn = 0, nn = 0;
  if (!read_line(d, &m, &mn) || !read_line(d, &n, &nn)) return false;
  return push_global(d, m, mn, n, nn, false);
}

static bool op_stack_global(dec *d) {
  if (!need_items(d, 2, "STACK_GLOBAL")) return false;
  value *name = d->stack[d->sp - 1].v, *module = d->stack[d->sp - 2].v;
  if (name->kind != VK_STR || module->kind != VK_STR) return fail(d, "STACK_GLOBAL requires str");
  d->sp -= 2;
  const char *m2, *n2;
  if (d->proto < 3 && !memchr(module->u.s.data, 0, module->u.s.len) && !memchr(name->u.s.data, 0, name->u.s.len) &&
      compat_name(module->u.s.data, name->u.s.data, &m2, &n2)) {
    value *g = v_global(m2, n2);
    drop(d, module);
    drop(d, name);
    return push_new(d, g, 0);
  }
  return push_new(d, v_global_of(module, name), 0); /* the strings stay shared */
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* INST (names inline) and OBJ (class first after the MARK): cls(*args), kept as OPQ_OBJ. */
static bool op_inst_obj(dec *d, bool inst) {
  const uint8_t *m = NULL, *n = NULL;
  size_t mn = 0, nn = 0, start = 0, depth = 0;
  if (inst && (!read_line(d, &m, &mn) || !read_line(d, &n, &nn))) return false;
  if (!pop_mark(d, &start, inst ? "INST" : "OBJ")) return false;
  slot cls;
  if (inst) {
    size_t sp = d->sp;
    if (!push_global(d, m, mn, n, nn, true)) {
      drop_items(d, start);
      return false;
    }
    cls = d->stack[sp];
    memmove(d->stack + start + 1, d->stack + start, (sp - start) * sizeof(slot));
    d->stack[start] = cls;
  } else if (d->sp == start) {
    return fail(d, "OBJ without a class");
  }
  cls = d->stack[start];
  value *args = tuple_from(d, start + 1, &depth);
  d->sp = start;
  value *o = v_opaque(OPQ_OBJ, cls.v, args, NULL);
  note_made(d, o);
  return push_new(d, o, max3(cls.depth, depth, 0) + 1);
}

static bool op_newobj(dec *d, bool ex) {
  if (!need_items(d, ex ? 3 : 2, ex ? "NEWOBJ_EX" : "NEWOBJ")) return false;
  slot kwargs = ex ? pop(d) : (slot){NULL, 0, NULL, false};
  slot args = pop(d), cls = pop(d);
  value *o = v_opaque(ex ? OPQ_NEWOBJ_EX : OPQ_NEWOBJ, cls.v, args.v, kwargs.v);
  note_made(d, o);
  return push_new(d, o, max3(cls.depth, args.depth, kwargs.depth) + 1);
}

static bool op_reduce(dec *d) {
  if (!need_items(d, 2, "REDUCE")) return false;
  slot args = pop(d), fn = pop(d);
  value *type = dill_builtin_type(fn.v, args.v);
  if (type) {
    bool lost = d->lost; /* a name and its str argument: nothing made is lost */
    drop(d, fn.v);
    drop(d, args.v);
    d->lost = lost;
    return push_new(d, type, 0);
  }
  const char *bad = NULL;
  value *plain = plain_reduce(fn.v, args.v, &bad);
  if (plain || bad) {
    bool set = plain && (plain->kind == VK_SET || plain->kind == VK_FROZENSET);
    size_t depth = set ? (args.depth > 2 ? args.depth - 1 : 1) : 0; /* args ([items],) are one deeper */
    drop(d, fn.v);
    drop(d, args.v);
    if (!plain) return fail(d, "TypeError: %s", bad);
    return push_new(d, plain, depth);
  }
  bool proxy = d->lim->on_proxy && fn.v->kind == VK_GLOBAL && v_is_str(fn.v->u.g.name, "RebuildProxy") &&
               managers_module(fn.v->u.g.module);
  value *o = v_opaque(OPQ_REDUCE, fn.v, args.v, NULL);
  if (proxy) d->lim->on_proxy(o);
  note_made(d, o);
  return push_new(d, o, max3(fn.depth, args.depth, 0) + 1);
}

/* ---- memo ---- */

/* Memo keys past what this pickle could have made are refused before any allocation
   (CPython numbers its memo entries from 0; the slack allows for hand-made gaps). */
static bool memo_key_ok(dec *d, uint64_t key) {
  if (key > (uint64_t)d->objects + 1024) return fail(d, "memo key %llu out of range", (unsigned long long)key);
  return true;
}

static bool memo_put(dec *d, uint64_t key) {
  if (!need_items(d, 1, "PUT") || !memo_key_ok(d, key)) return false;
  size_t i = (size_t)key, old = d->memocap;
  d->memo = xgrow(d->memo, &d->memocap, i, sizeof(slot));
  if (d->memocap > old) memset(d->memo + old, 0, (d->memocap - old) * sizeof(slot));
  value *prev = d->memo[i].v;
  d->memo[i] = d->stack[d->sp - 1];
  v_incref(d->memo[i].v);
  if (prev) drop(d, prev);
  else d->memolen++;
  return true;
}

static bool memo_get(dec *d, uint64_t key) {
  if (key >= d->memocap || !d->memo[key].v) return fail(d, "memo key %llu missing", (unsigned long long)key);
  return push_again(d, d->memo[key]);
}

/* Protocol 0 PUT/GET: a decimal key on its own line. */
static bool read_key_text(dec *d, uint64_t *key) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  if (!n || n > 19) return fail(d, "invalid memo key");
  *key = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return fail(d, "invalid memo key");
    *key = *key * 10 + (uint64_t)(s[i] - '0');
  }
  return true;
}

static bool op_memo(dec *d, uint8_t op) {
  uint64_t key;
  switch (op) {
  case OP_PUT: return read_key_text(d, &key) && memo_put(d, key);
  case OP_BINPUT: return read_uint(d, 1, &key) && memo_put(d, key);
  case OP_LONG_BINPUT: return read_uint(d, 4, &key) && memo_put(d, key);
  case OP_MEMOIZE: return memo_put(d, d->memolen);
  case OP_GET: return read_key_text(d, &key) && memo_get(d, key);
  case OP_BINGET: return read_uint(d, 1, &key) && memo_get(d, key);
  default: return read_uint(d, 4, &key) && memo_get(d, key);
  }
}

/* ---- the stack itself ---- */

static bool op_mark(dec *d) {
  if (d->nmarks >= d->lim->max_depth) return fail(d, "nesting deeper than %zu", d->lim->max_depth);
  d->marks = xgrow(d->marks, &d->markcap, d->nmarks, sizeof(size_t));
  d->marks[d->nmarks++] = d->sp;
  return true;
}

static bool op_pop(dec *d, bool to_mark) {
  size_t start = 0;
  if (!to_mark && d->sp > fence(d)) {
    drop(d, pop(d).v);
    return true;
  }
  if (!pop_mark(d, &start, to_mark ? "POP_MARK" : "POP")) return false;
  drop_items(d, start);
  return true;
}

static bool op_dup(dec *d) {
  if (!need_items(d, 1, "DUP")) return false;
  return push_again(d, d->stack[d->sp - 1]);
}

static bool op_proto(dec *d) {
  uint64_t p;
  if (!read_uint(d, 1, &p)) return false;
  if (p > 5) return fail(d, "unsupported pickle protocol: %llu", (unsigned long long)p);
  d->proto = (int)p;
  return true;
}

static bool op_frame(dec *d) {
  uint64_t n;
  if (!read_uint(d, 8, &n)) return false;
  if (n > (uint64_t)(d->end - d->p)) return fail(d, "frame of %llu bytes exceeds the data", (unsigned long long)n);
  return true; /* frames only group opcodes: nothing to do inside */
}

static bool op_refused(dec *d, uint8_t op) {
  switch (op) {
  case OP_PERSID:
  case OP_BINPERSID: return fail(d, "persistent IDs are not supported");
  case OP_EXT1:
  case OP_EXT2:
  case OP_EXT4: return fail(d, "extension registry codes are not supported");
  default: return fail(d, "out-of-band buffers are not supported");
  }
}

static bool step_data(dec *d, uint8_t op) {
  switch (op) {
  case OP_NONE: return push_new(d, v_none(), 0);
  case OP_NEWTRUE: return push_new(d, v_bool(true), 0);
  case OP_NEWFALSE: return push_new(d, v_bool(false), 0);
  case OP_INT: return op_int_text(d, false);
  case OP_LONG: return op_int_text(d, true);
  case OP_BININT: return op_binint(d, 4);
  case OP_BININT1: return op_binint(d, 1);
  case OP_BININT2: return op_binint(d, 2);
  case OP_LONG1: return op_long_bin(d, 1);
  case OP_LONG4: return op_long_bin(d, 4);
  case OP_FLOAT: return op_float_text(d);
  case OP_BINFLOAT: return op_binfloat(d);
  case OP_SHORT_BINUNICODE: return op_unicode_bin(d, 1);
  case OP_BINUNICODE: return op_unicode_bin(d, 4);
  case OP_BINUNICODE8: return op_unicode_bin(d, 8);
  case OP_UNICODE: return op_unicode_text(d);
  case OP_SHORT_BINBYTES: return op_bytes_bin(d, 1, false);
  case OP_BINBYTES: return op_bytes_bin(d, 4, false);
  case OP_BINBYTES8: return op_bytes_bin(d, 8, false);
  case OP_BYTEARRAY8: return op_bytes_bin(d, 8, true);
  case OP_STRING: return op_string_text(d);
  case OP_BINSTRING: return op_binstring(d, 4);
  case OP_SHORT_BINSTRING: return op_binstring(d, 1);
  default: return fail(d, "unknown opcode 0x%02x", op);
  }
}

static bool step(dec *d, uint8_t op) {
  switch (op) {
  case OP_EMPTY_TUPLE: return push_new(d, v_tuple(0), 1);
  case OP_EMPTY_LIST: return push_new(d, v_list(0), 1);
  case OP_EMPTY_DICT: return push_new(d, v_dict(), 1);
  case OP_EMPTY_SET: return push_new(d, v_set(false), 1);
  case OP_TUPLE1: return op_tuple_n(d, 1);
  case OP_TUPLE2: return op_tuple_n(d, 2);
  case OP_TUPLE3: return op_tuple_n(d, 3);
  case OP_TUPLE:
  case OP_LIST: return op_marked(d, op);
  case OP_DICT: return op_dict_or_frozenset(d, true);
  case OP_FROZENSET: return op_dict_or_frozenset(d, false);
  case OP_APPEND: return op_append(d);
  case OP_APPENDS: return op_appends(d);
  case OP_SETITEM: return op_setitem(d);
  case OP_SETITEMS: return op_setitems(d, true);
  case OP_ADDITEMS: return op_setitems(d, false);
  case OP_BUILD: return op_build(d);
  case OP_GLOBAL: return op_global(d);
  case OP_STACK_GLOBAL: return op_stack_global(d);
  case OP_INST: return op_inst_obj(d, true);
  case OP_OBJ: return op_inst_obj(d, false);
  case OP_NEWOBJ: return op_newobj(d, false);
  case OP_NEWOBJ_EX: return op_newobj(d, true);
  case OP_REDUCE: return op_reduce(d);
  case OP_PUT: case OP_BINPUT: case OP_LONG_BINPUT: case OP_MEMOIZE:
  case OP_GET: case OP_BINGET: case OP_LONG_BINGET: return op_memo(d, op);
  case OP_MARK: return op_mark(d);
  case OP_POP: return op_pop(d, false);
  case OP_POP_MARK: return op_pop(d, true);
  case OP_DUP: return op_dup(d);
  case OP_PROTO: return op_proto(d);
  case OP_FRAME: return op_frame(d);
  case OP_PERSID: case OP_BINPERSID: case OP_EXT1: case OP_EXT2: case OP_EXT4:
  case OP_NEXT_BUFFER: case OP_READONLY_BUFFER: return op_refused(d, op);
  default: return step_data(d, op);
  }
}

/* Run opcodes up to STOP: the value it pops (new reference), or NULL. */
static value *run(dec *d) {
  while (d->p < d->end) {
    d->op_at = (size_t)(d->p - d->data);
    uint8_t op = *d->p++;
    if (op == OP_STOP) {
      if (!need_items(d, 1, "STOP")) return NULL;
      if (d->p != d->end) {
        fail(d, "%zu bytes after STOP", (size_t)(d->end - d->p));
        return NULL;
      }
      value *v = pop(d).v;
      if (d->sp) d->lost = true; /* what is left under the result was made and dropped */
      return v;
    }
    if (!step(d, op)) return NULL;
  }
  d->op_at = (size_t)(d->end - d->data);
  fail(d, "truncated data (no STOP)");
  return NULL;
}

/* Release what the decoder still holds: stack and memo, at once when graphs exist. */
static void dec_free(dec *d) {
  if (d->shared) {
    size_t n = 0;
    value **all = xrealloc(NULL, (d->sp + d->memocap + d->ndead + d->nmade + 1) * sizeof(value *));
    for (size_t i = 0; i < d->ndead; i++) all[n++] = d->dead[i];
    for (size_t i = 0; i < d->nmade; i++) all[n++] = d->made[i].obj;
    for (size_t i = 0; i < d->sp; i++) all[n++] = d->stack[i].v;
    for (size_t i = 0; i < d->memocap; i++)
      if (d->memo[i].v) all[n++] = d->memo[i].v;
    v_decref_many(all, n);
    free(all);
  } else {
    for (size_t i = 0; i < d->sp; i++) v_decref(d->stack[i].v);
    for (size_t i = 0; i < d->memocap; i++) v_decref(d->memo[i].v);
    for (size_t i = 0; i < d->nmade; i++) v_decref(d->made[i].obj);
  }
  free(d->made);
  free(d->stack);
  free(d->memo);
  free(d->marks);
  free(d->dead);
}

value *pickle_load(const uint8_t *data, size_t len, const pickle_limits *lim, int *proto, char *err,
                   size_t errlen) {
  return pickle_load_adopt(data, len, lim, NULL, proto, err, errlen);
}

value *pickle_load_adopt(const uint8_t *data, size_t len, const pickle_limits *lim, pickle_adopt *adopt,
                         int *proto, char *err, size_t errlen) {
  dec d;
  memset(&d, 0, sizeof d);
  d.data = d.p = data;
  d.end = data + len;
  d.lim = lim;
  d.adopt = adopt;
  d.err = err;
  d.errlen = errlen;
  if (errlen) err[0] = 0;
  value *v = run(&d);
  if (d.adopted) { /* nothing more is read: the payload's last byte can end its C string */
    d.adopted->u.s.data[d.adopted->u.s.len] = 0;
    v_decref(d.adopted); /* frees the block if the pickle dropped the payload, or failed */
  }
  if (v && d.lost && d.nmade) { /* calls made for their effects: keep them (effects.c) */
    long kept = effects_keep(v, d.made, d.nmade, d.err, d.errlen);
    if (kept < 0) {
      d.op_at = len;
      char why[160];
      snprintf(why, sizeof why, "%s", d.errlen ? d.err : "");
      fail(&d, "%s", why);
      d.shared = true;
      d.dead = xgrow(d.dead, &d.deadcap, d.ndead, sizeof(value *));
      d.dead[d.ndead++] = v;
      v = NULL;
    } else if (kept > 0) {
      d.shared = true; /* an effect names the object it follows: cycles */
    }
  }
  dec_free(&d);
  if (proto) *proto = d.proto;
  if (v && d.shared) { /* memo references can nest deeper than the stack showed, or loop */
    bool cyclic;
    size_t depth = v_walk(v, &cyclic);
    if (depth > lim->max_depth) {
      d.op_at = len;
      fail(&d, "nesting deeper than %zu", lim->max_depth);
      v_decref_many(&v, 1);
      return NULL;
    }
    if (cyclic) v_track_cycles(v);
  }
  return v;
}
