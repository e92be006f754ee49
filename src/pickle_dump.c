/* pickle_dump.c: values -> pickle bytes, written as CPython's protocol 4 and 5 pickler writes them. */
#include "pickle.h"

#include "alloc.h"
#include "pickle_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_TARGET (64 * 1024) /* CPython starts a new frame past this many bytes */
#define FRAME_HEADER 9
#define NO_FRAME SIZE_MAX
#define ENCODE_DEPTH_MAX 10000
#define BATCH 1000

/* Pointer -> memo index. Slots carry a generation, so a new pickle starts with an empty
   table without clearing it. Keys are kept scrambled: the stale ones a new pickle leaves in
   place would otherwise look like live references to a leak checker, hiding a value that
   leaked (fuzz_lua's leak checks missed one that way). Not a ptrmap (ptrmap.h): this is the
   hottest map of all (each str and container a dump writes is looked up, most are added),
   used by every dump: emptied by a stamp rather than a pass over its slots, and with its
   32-bit index in the slot beside the key, so that a probe and its answer share a cache
   line (on ptrmap, pickle_roundtrip over the fuzz corpus took 6 to 10% longer). */
typedef struct mslot {
  uintptr_t key; /* the value's address ^ SCRAMBLE */
  uint32_t gen, idx;
} mslot;
#define SCRAMBLE ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)

typedef struct memotab {
  mslot *slot;
  size_t mask, count;
  uint32_t gen;
} memotab;

static memotab reusable; /* the server is single-threaded: one table serves every dump */
static bool reusable_busy;

static void mt_begin(memotab *m) {
  m->count = 0;
  if (++m->gen == 0) { /* wrapped: stale stamps could look current */
    if (m->slot) memset(m->slot, 0, (m->mask + 1) * sizeof(mslot));
    m->gen = 1;
  }
}

static mslot *mt_find(const memotab *m, const value *v) {
  if (!m->slot) return NULL;
  uintptr_t k = (uintptr_t)v ^ SCRAMBLE;
  uint64_t x = (uint64_t)k;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  for (size_t i = (size_t)x & m->mask;; i = (i + 1) & m->mask) {
    mslot *s = &m->slot[i];
    if (s->gen != m->gen || s->key == k) return s;
  }
}

static void mt_put(memotab *m, const value *k, uint32_t idx) {
  if (!m->slot || (m->count + 1) * 2 > m->mask + 1) {
    memotab old = *m;
    size_t size = old.slot ? (old.mask + 1) * 2 : 256;
    m->slot = xrealloc(NULL, size * sizeof(mslot));
    memset(m->slot, 0, size * sizeof(mslot));
    m->mask = size - 1;
    for (size_t i = 0; old.slot && i <= old.mask; i++)
      if (old.slot[i].gen == m->gen) *mt_find(m, (const value *)(old.slot[i].key ^ SCRAMBLE)) = old.slot[i];
    free(old.slot);
  }
  mslot *s = mt_find(m, k);
  *s = (mslot){(uintptr_t)k ^ SCRAMBLE, m->gen, idx};
  m->count++;
}

static bool mt_get(const memotab *m, const value *k, uint32_t *idx) {
  const mslot *s = mt_find(m, k);
  if (!s || s->gen != m->gen) return false;
  *idx = s->idx;
  return true;
}

/* A container written in steps: how many items are out, and whether a step is being written
   (a fill met inside it waits: it would put items in the middle of an open batch). */
typedef struct fill {
  const value *c;
  size_t written;
  size_t pos; /* a dict's or set's dict_next position after those (entries are only added) */
  bool busy;
} fill;

typedef struct enc {
  buf *out;
  int proto;
  bool framing;
  size_t frame_start; /* offset of the open frame's header, or NO_FRAME */
  memotab *memo;
  uint32_t nmemo;
  int depth;
  const value **later; /* effects anchored to objects written: written at the end if not before */
  size_t nlater, latercap;
  struct fill *fills;   /* lists, dicts and sets written in steps (v_early), in the order met */
  size_t nfills, fillcap;
  memotab fillix;       /* container -> its index in fills */
  pickle_spans *spans; /* where large payloads go instead of out, or NULL */
  char *err;
  size_t errlen;
} enc;

static bool efail(enc *e, const char *msg) {
  if (e->errlen) snprintf(e->err, e->errlen, "pickle: %s", msg);
  return false;
}

/* Append bytes, opening a frame (its header filled in at commit) when none is open. */
static void w(enc *e, const void *p, size_t n) {
  if (e->framing && e->frame_start == NO_FRAME) {
    e->frame_start = e->out->len;
    buf_reserve(e->out, FRAME_HEADER);
    memset(e->out->data + e->out->len, 0xfe, FRAME_HEADER);
    e->out->len += FRAME_HEADER;
  }
  buf_put(e->out, p, n);
}

static void w1(enc *e, uint8_t op) { w(e, &op, 1); }

static void put_le(uint8_t *p, uint64_t x, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(x >> (8 * i));
}

/* Close the open frame: a FRAME header when it holds at least 4 bytes, else no header. */
static void commit_frame(enc *e) {
  if (e->frame_start == NO_FRAME) return;
  size_t start = e->frame_start, n = e->out->len - start - FRAME_HEADER;
  uint8_t *p = e->out->data + start;
  if (n >= 4) {
    p[0] = OP_FRAME;
    put_le(p + 1, n, 8);
  } else {
    memmove(p, p + FRAME_HEADER, n);
    e->out->len -= FRAME_HEADER;
  }
  e->frame_start = NO_FRAME;
}

static void opcode_boundary(enc *e) {
  if (e->framing && e->frame_start != NO_FRAME && e->out->len - e->frame_start - FRAME_HEADER >= FRAME_TARGET)
    commit_frame(e);
}

/* A header and its payload; payloads of 64 KiB and more go outside any frame, as CPython's. */
static void w_payload(enc *e, const uint8_t *hdr, size_t hn, const void *data, size_t n) {
  bool framing = e->framing;
  if (n >= FRAME_TARGET) {
    commit_frame(e);
    e->framing = false;
  }
  w(e, hdr, hn);
  w(e, data, n);
  e->framing = framing;
}

/* op1/op4/op8: the opcodes for 1-, 4- and 8-byte lengths (op1 0: none). */
static void w_sized(enc *e, uint8_t op1, uint8_t op4, uint8_t op8, const void *data, size_t n) {
  uint8_t hdr[9];
  size_t hn;
  if (op1 && n <= 0xff) {
    hdr[0] = op1;
    hdr[1] = (uint8_t)n;
    hn = 2;
  } else if (op4 && n <= 0xffffffffu) {
    hdr[0] = op4;
    put_le(hdr + 1, n, 4);
    hn = 5;
  } else {
    hdr[0] = op8;
    put_le(hdr + 1, n, 8);
    hn = 9;
  }
  w_payload(e, hdr, hn, data, n);
}

/* A str's or bytes' opcode and payload: a large payload becomes a span (e->spans), the rest
   is copied into out. */
static void w_text(enc *e, uint8_t op1, uint8_t op4, uint8_t op8, const value *v) {
  size_t n = v->u.s.len;
  if (!e->spans || n < FRAME_TARGET || n < e->spans->min) return w_sized(e, op1, op4, op8, v->u.s.data, n);
  uint8_t hdr[9];
  size_t hn = 9;
  hdr[0] = n <= 0xffffffffu ? op4 : op8;
  if (n <= 0xffffffffu) hn = 5;
  put_le(hdr + 1, n, (int)hn - 1);
  commit_frame(e); /* a payload this large goes outside any frame, as CPython's */
  bool framing = e->framing;
  e->framing = false;
  w(e, hdr, hn);
  e->framing = framing;
  pickle_spans *s = e->spans;
  s->items = xgrow(s->items, &s->cap, s->n, sizeof *s->items);
  s->items[s->n++] = (pickle_span){e->out->len, v_incref((value *)v)};
}

/* MEMOIZE the object just written; k NULL for a temporary no one can meet again. */
static void memo_add(enc *e, const value *k) {
  w1(e, OP_MEMOIZE);
  if (k) mt_put(e->memo, k, e->nmemo);
  e->nmemo++;
}

static void memo_ref(enc *e, uint32_t idx) {
  uint8_t b[5];
  if (idx < 256) {
    b[0] = OP_BINGET;
    b[1] = (uint8_t)idx;
    w(e, b, 2);
  } else {
    b[0] = OP_LONG_BINGET;
    put_le(b + 1, idx, 4);
    w(e, b, 5);
  }
}

/* If v got memoized while its parts were written (it is reachable from them), throw the
   parts away and refer to the memo instead, as CPython does for recursive tuples. */
static bool refer_if_memoized(enc *e, const value *v, const uint8_t *pops, size_t npops) {
  uint32_t idx;
  if (!mt_get(e->memo, v, &idx)) return false;
  w(e, pops, npops);
  memo_ref(e, idx);
  return true;
}

static void save_int(enc *e, int64_t i) {
  uint8_t b[10];
  if (i >= INT32_MIN && i <= INT32_MAX) {
    uint32_t u = (uint32_t)i;
    put_le(b + 1, u, 4);
    size_t n = (b[3] || b[4]) ? 5 : b[2] ? 3 : 2;
    b[0] = n == 5 ? OP_BININT : n == 3 ? OP_BININT2 : OP_BININT1;
    w(e, b, n);
    return;
  }
  uint8_t le[8];
  put_le(le, (uint64_t)i, 8);
  size_t n = 8;
  while (n > 1 && ((le[n - 1] == 0 && !(le[n - 2] & 0x80)) || (le[n - 1] == 0xff && (le[n - 2] & 0x80)))) n--;
  b[0] = OP_LONG1;
  b[1] = (uint8_t)n;
  memcpy(b + 2, le, n);
  w(e, b, n + 2);
}

static void save_bigint(enc *e, const value *v) {
  uint8_t hdr[5];
  size_t n = v->u.s.len;
  if (n < 256) {
    hdr[0] = OP_LONG1;
    hdr[1] = (uint8_t)n;
    w(e, hdr, 2);
  } else {
    hdr[0] = OP_LONG4;
    put_le(hdr + 1, n, 4);
    w(e, hdr, 5);
  }
  w(e, v->u.s.data, n);
}

static void save_float(enc *e, double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  uint8_t b[9];
  b[0] = OP_BINFLOAT;
  for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
  w(e, b, 9);
}

static bool save(enc *e, const value *v);

static bool save_items(enc *e, value *const *items, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!save(e, items[i])) return false;
  return true;
}

static bool save_tuple(enc *e, const value *v) {
  size_t n = v->u.seq.len;
  if (n == 0) {
    w1(e, OP_EMPTY_TUPLE);
    return true;
  }
  static const uint8_t pops[3] = {OP_POP, OP_POP, OP_POP}, pop_mark = OP_POP_MARK;
  if (n > 3) w1(e, OP_MARK);
  if (!save_items(e, v->u.seq.items, n)) return false;
  if (refer_if_memoized(e, v, n > 3 ? &pop_mark : pops, n > 3 ? 1 : n)) return true;
  w1(e, n == 1 ? OP_TUPLE1 : n == 2 ? OP_TUPLE2 : n == 3 ? OP_TUPLE3 : OP_TUPLE);
  memo_add(e, v);
  return true;
}

/* Items [from, to) of a list, as CPython batches them (a lone one with APPEND). */
static bool list_items(enc *e, const value *v, size_t from, size_t to) {
  if (to - from == 1) {
    if (!save(e, v->u.seq.items[from])) return false;
    w1(e, OP_APPEND);
    return true;
  }
  while (from < to) {
    size_t k = to - from < BATCH ? to - from : BATCH;
    w1(e, OP_MARK);
    if (!save_items(e, v->u.seq.items + from, k)) return false;
    w1(e, OP_APPENDS);
    from += k;
  }
  return true;
}

static size_t items_of(const value *c) { return c->kind == VK_LIST ? c->u.seq.len : dict_len(c); }

static bool table_items(enc *e, const value *v, size_t *pos, size_t n);

/* Items [from, to) of c; *pos: for a dict or set, the dict_next position of item `from`,
   moved past item `to` (a list needs none). */
static bool some_items(enc *e, const value *c, size_t from, size_t to, size_t *pos) {
  return c->kind == VK_LIST ? list_items(e, c, from, to) : table_items(e, c, pos, to - from);
}

/* The items of a container just made (EMPTY_LIST and the like, memoized): all of them, or
   only the early ones of one its pickle filled in steps (the rest: write_fill). */
static bool save_contents(enc *e, const value *c) {
  size_t n = items_of(c), early = v_early(c), pos = 0;
  if (early >= n) return some_items(e, c, 0, n, &pos);
  uint32_t fi = (uint32_t)e->nfills;
  e->fills = xgrow(e->fills, &e->fillcap, e->nfills, sizeof *e->fills);
  e->fills[e->nfills++] = (fill){c, early, 0, true};
  mt_put(&e->fillix, c, fi);
  bool ok = some_items(e, c, 0, early, &pos);
  e->fills[fi].pos = pos;
  e->fills[fi].busy = false;
  return ok;
}

/* OPQ_FILL, and the end of a pickle: the items of c up to `to` not yet written, added to c
   fetched from the memo. Nothing when c is not out yet (its first items come where it is
   met, the rest at the end) or is being written. */
static bool write_fill(enc *e, const value *c, size_t to) {
  uint32_t fi, idx;
  if (!mt_get(&e->fillix, c, &fi) || e->fills[fi].busy || !mt_get(e->memo, c, &idx)) return true;
  size_t from = e->fills[fi].written, n = items_of(c), pos = e->fills[fi].pos;
  if (to > n) to = n;
  if (from >= to) return true;
  memo_ref(e, idx);
  e->fills[fi].busy = true;
  bool ok = some_items(e, c, from, to, &pos);
  e->fills[fi] = (fill){c, to, pos, false};
  w1(e, OP_POP);
  return ok;
}

static bool save_list(enc *e, const value *v) {
  w1(e, OP_EMPTY_LIST);
  memo_add(e, v);
  return save_contents(e, v);
}

/* n items of a dict or set from position *pos on: batches of 1000 while a batch comes out
   full (so an empty last batch follows a multiple of 1000, exactly as CPython writes it); a
   lone dict item uses SETITEM. */
static bool table_items(enc *e, const value *v, size_t *pos, size_t n) {
  bool dict = v->kind == VK_DICT;
  size_t i;
  value *k, *val;
  if (n == 0) return true;
  if (dict && n == 1) {
    dict_next(v, pos, &k, &val);
    if (!save(e, k) || !save(e, val)) return false;
    w1(e, OP_SETITEM);
    return true;
  }
  do {
    w1(e, OP_MARK);
    for (i = 0; i < BATCH && n && dict_next(v, pos, &k, &val); i++, n--)
      if (!save(e, k) || (dict && !save(e, val))) return false;
    w1(e, dict ? OP_SETITEMS : OP_ADDITEMS);
  } while (i == BATCH);
  return true;
}

static bool save_table(enc *e, const value *v) {
  w1(e, v->kind == VK_DICT ? OP_EMPTY_DICT : OP_EMPTY_SET);
  memo_add(e, v);
  return save_contents(e, v);
}

static bool save_frozenset(enc *e, const value *v) {
  static const uint8_t pop_mark = OP_POP_MARK;
  size_t pos = 0;
  value *k, *unused;
  w1(e, OP_MARK);
  while (dict_next(v, &pos, &k, &unused))
    if (!save(e, k)) return false;
  if (refer_if_memoized(e, v, &pop_mark, 1)) return true;
  w1(e, OP_FROZENSET);
  memo_add(e, v);
  return true;
}

static bool save_global(enc *e, const value *v) {
  if (v->u.g.module->kind != VK_STR || v->u.g.name->kind != VK_STR) return efail(e, "global name is not a str");
  if (!save(e, v->u.g.module) || !save(e, v->u.g.name)) return false;
  w1(e, OP_STACK_GLOBAL);
  memo_add(e, v);
  return true;
}

/* builtins.bytearray, for protocol 4 (which has no bytearray opcode). */
static value ba_module = {.refs = 1u << 30, .kind = VK_STR, .u.s = {8, "builtins", NULL}};
static value ba_name = {.refs = 1u << 30, .kind = VK_STR, .u.s = {9, "bytearray", NULL}};
static value ba_global = {.refs = 1u << 30, .kind = VK_GLOBAL, .u.g = {&ba_module, &ba_name}};

static bool save_bytearray(enc *e, const value *v) {
  if (e->proto >= 5) {
    uint8_t hdr[9] = {OP_BYTEARRAY8};
    put_le(hdr + 1, v->u.s.len, 8);
    w_payload(e, hdr, 9, v->u.s.data, v->u.s.len);
    memo_add(e, v);
    return true;
  }
  if (!save(e, &ba_global)) return false; /* bytearray(bytes(v)), as CPython reduces it */
  opcode_boundary(e);                       /* where CPython saves the argument tuple */
  if (v->u.s.len) {
    w_sized(e, OP_SHORT_BINBYTES, OP_BINBYTES, OP_BINBYTES8, v->u.s.data, v->u.s.len);
    memo_add(e, NULL);
    w1(e, OP_TUPLE1);
    memo_add(e, NULL);
  } else {
    w1(e, OP_EMPTY_TUPLE);
  }
  w1(e, OP_REDUCE);
  memo_add(e, v);
  return true;
}

/* A run of n ops of one kind, in CPython's batch_list/batch_dict shape: full batches of
   1000 under MARK, a lone last item with the single-item opcode (`one`, 0 if none). */
static bool save_run(enc *e, const opq_op *ops, size_t n, uint8_t one, uint8_t many) {
  bool pairs = ops[0].op == OPQ_SETITEM;
  while (n) {
    if (n == 1 && one) {
      if (!save(e, ops->a) || (pairs && !save(e, ops->b))) return false;
      w1(e, one);
      return true;
    }
    size_t k = n < BATCH ? n : BATCH;
    w1(e, OP_MARK);
    for (size_t i = 0; i < k; i++)
      if (!save(e, ops[i].a) || (pairs && !save(e, ops[i].b))) return false;
    w1(e, many);
    ops += k;
    n -= k;
  }
  return true;
}

static bool batched(uint8_t op) { return op == OPQ_APPEND || op == OPQ_SETITEM || op == OPQ_ADDITEM; }

static bool save_ops(enc *e, const opaque *o) {
  for (size_t i = 0; i < o->nops;) {
    const opq_op *op = &o->ops[i];
    size_t j = i + 1;
    while (batched(op->op) && j < o->nops && o->ops[j].op == op->op) j++;
    bool ok = true;
    uint32_t idx;
    switch (op->op) {
    case OPQ_APPEND: ok = save_run(e, op, j - i, OP_APPEND, OP_APPENDS); break;
    case OPQ_SETITEM: ok = save_run(e, op, j - i, OP_SETITEM, OP_SETITEMS); break;
    case OPQ_ADDITEM: ok = save_run(e, op, j - i, 0, OP_ADDITEMS); break;
    case OPQ_EFFECT: /* made for its effect, then discarded, as the pickle had it */
      ok = save(e, op->a);
      w1(e, OP_POP);
      break;
    case OPQ_FILL: /* items a container got here, after it was used */
      if (op->b && op->b->kind == VK_INT && op->b->u.i >= 0) ok = write_fill(e, op->a, (size_t)op->b->u.i);
      break;
    case OPQ_ANCHOR: /* an effect that may change this object must be in this pickle too */
      if (!mt_get(e->memo, op->a, &idx)) {
        e->later = xgrow(e->later, &e->latercap, e->nlater, sizeof *e->later);
        e->later[e->nlater++] = op->a;
      }
      break;
    default:
      ok = save(e, op->a);
      w1(e, OP_BUILD);
      break;
    }
    if (!ok) return false;
    i = j;
  }
  return true;
}

void (*pickle_on_shared)(struct shobj *obj);

/* An object reachable from its own arguments is made while they are written: then the
   arguments are dropped unused and the object fetched, rather than made twice (CPython's
   pickler makes it again and drops the copy; a call is an effect, so shmgr calls once). */
static bool save_opaque(enc *e, const value *v) {
  static const uint8_t pops[3] = {OP_POP, OP_POP, OP_POP}, pop_mark = OP_POP_MARK;
  const opaque *o = v->u.o;
  if (!o->callable || !o->args) return efail(e, "incomplete opaque object");
  if (o->shared && pickle_on_shared) pickle_on_shared(o->shared);
  if (o->how == OPQ_OBJ) {
    if (o->args->kind != VK_TUPLE) return efail(e, "OBJ arguments are not a tuple");
    w1(e, OP_MARK);
    if (!save(e, o->callable) || !save_items(e, o->args->u.seq.items, o->args->u.seq.len)) return false;
    if (refer_if_memoized(e, v, &pop_mark, 1)) return true;
    w1(e, OP_OBJ);
  } else {
    if (!save(e, o->callable) || !save(e, o->args)) return false;
    if (o->how == OPQ_NEWOBJ_EX) {
      if (o->kwargs && !save(e, o->kwargs)) return false;
      if (!o->kwargs) w1(e, OP_EMPTY_DICT);
    }
    if (refer_if_memoized(e, v, pops, o->how == OPQ_NEWOBJ_EX ? 3 : 2)) return true;
    w1(e, o->how == OPQ_REDUCE ? OP_REDUCE : o->how == OPQ_NEWOBJ ? OP_NEWOBJ : OP_NEWOBJ_EX);
  }
  memo_add(e, v);
  return save_ops(e, o);
}

static bool save_container(enc *e, const value *v) {
  if (++e->depth > ENCODE_DEPTH_MAX) return efail(e, "nesting deeper than 10000 (or a cycle through a tuple)");
  bool ok;
  switch (v->kind) {
  case VK_TUPLE: ok = save_tuple(e, v); break;
  case VK_LIST: ok = save_list(e, v); break;
  case VK_DICT:
  case VK_SET: ok = save_table(e, v); break;
  case VK_FROZENSET: ok = save_frozenset(e, v); break;
  case VK_GLOBAL: ok = save_global(e, v); break;
  case VK_OPAQUE: ok = save_opaque(e, v); break;
  default: ok = efail(e, "unknown value kind");
  }
  e->depth--;
  return ok;
}

static bool save(enc *e, const value *v) {
  if (!v) return efail(e, "a container holds no value (an unfilled tuple slot?)");
  opcode_boundary(e);
  switch (v->kind) { /* atoms: never memoized */
  case VK_NONE: w1(e, OP_NONE); return true;
  case VK_BOOL: w1(e, v->u.b ? OP_NEWTRUE : OP_NEWFALSE); return true;
  case VK_INT: save_int(e, v->u.i); return true;
  case VK_BIGINT: save_bigint(e, v); return true;
  case VK_FLOAT: save_float(e, v->u.f); return true;
  default: break;
  }
  uint32_t idx;
  if (mt_get(e->memo, v, &idx)) {
    memo_ref(e, idx);
    return true;
  }
  switch (v->kind) {
  case VK_STR:
    w_text(e, OP_SHORT_BINUNICODE, OP_BINUNICODE, OP_BINUNICODE8, v);
    memo_add(e, v);
    return true;
  case VK_BYTES:
    w_text(e, OP_SHORT_BINBYTES, OP_BINBYTES, OP_BINBYTES8, v);
    memo_add(e, v);
    return true;
  case VK_BYTEARRAY: return save_bytearray(e, v);
  default: return save_container(e, v);
  }
}

int pickle_dump(buf *out, const value *v, int proto, char *err, size_t errlen) {
  return pickle_dump_spans(out, v, proto, NULL, err, errlen);
}

int pickle_dump_spans(buf *out, const value *v, int proto, pickle_spans *spans, char *err, size_t errlen) {
  enc e = {.out = out, .proto = proto, .frame_start = NO_FRAME, .spans = spans, .err = err, .errlen = errlen};
  size_t spans_before = spans ? spans->n : 0;
  if (proto != 4 && proto != 5) {
    efail(&e, "only protocols 4 and 5 are written");
    return -1;
  }
  memotab local = {0};
  bool own = !reusable_busy; /* a dump inside a dump (none today) gets its own table */
  e.memo = own ? &reusable : &local;
  reusable_busy = true;
  mt_begin(e.memo);
  size_t base = out->len;
  uint8_t hdr[2] = {OP_PROTO, (uint8_t)proto};
  w(&e, hdr, 2);
  e.framing = true;
  mt_begin(&e.fillix);
  bool ok = save(&e, v);
  for (size_t f = 0, l = 0; ok && (f < e.nfills || l < e.nlater);) { /* steps this pickle lacks */
    uint32_t idx;
    if (f < e.nfills) {
      ok = write_fill(&e, e.fills[f++].c, SIZE_MAX);
    } else if (!mt_get(e.memo, e.later[l++], &idx)) { /* an effect anchored to what was written */
      ok = save(&e, e.later[l - 1]);
      w1(&e, OP_POP);
    }
  }
  free(e.later);
  free(e.fills);
  free(e.fillix.slot);
  if (ok) {
    w1(&e, OP_STOP);
    commit_frame(&e);
  }
  if (own) {
    reusable_busy = false;
    if (reusable.mask > (1u << 20)) { /* do not keep a huge table for small pickles */
      free(reusable.slot);
      memset(&reusable, 0, sizeof reusable);
    }
  } else {
    free(local.slot);
  }
  if (!ok) {
    out->len = base;
    while (spans && spans->n > spans_before) v_decref(spans->items[--spans->n].v);
    return -1;
  }
  return 0;
}
