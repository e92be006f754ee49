/* value.c: the value model: refcounts and cycle collection, dicts and sets, Python's ==, hash and repr. */
#include "alloc.h"
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "ptrmap.h"

/* ---- allocation: like buf.c, out of memory is fatal ---- */

static void too_big(void) {
  fputs("shmgr: allocation size overflow\n", stderr);
  abort();
}

/* n * size, refusing sizes that wrap around. */
static size_t mul_size(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) too_big();
  return n * size;
}

static value *new_value(vkind kind, size_t extra) {
  if (extra > SIZE_MAX - sizeof(value)) too_big();
  value *v = xmalloc(sizeof(value) + extra);
  v->refs = 1;
  v->kind = (uint8_t)kind;
  return v;
}

void (*v_release_shared)(struct shobj *obj);

/* ---- the insertion-ordered hash table behind dict, set and frozenset ---- */

#define IX_EMPTY ((size_t)-1)
#define IX_DUMMY ((size_t)-2)

typedef struct dentry {
  int64_t hash;
  value *key, *val; /* key NULL: deleted */
} dentry;

struct vdict {
  size_t len;    /* live entries */
  size_t used;   /* entry slots used, deleted ones included */
  size_t cap;    /* entry slots allocated: two thirds of the index */
  size_t mask;   /* index size - 1 */
  size_t *index; /* entry number, IX_EMPTY or IX_DUMMY */
  dentry *ent;
};

static bool eq_elem(const value *a, const value *b);
static bool hash_value(const value *v, int64_t *out, const value **bad, int depth);

/* The entry holding k, or IX_EMPTY; *slot gets k's index slot, or where to insert it. */
static size_t vd_find(const vdict *d, const value *k, int64_t h, size_t *slot) {
  *slot = IX_EMPTY;
  if (!d->index) return IX_EMPTY;
  uint64_t perturb = (uint64_t)h;
  size_t i = (size_t)perturb & d->mask, freeslot = IX_EMPTY;
  for (;;) {
    size_t ix = d->index[i];
    if (ix == IX_EMPTY) {
      *slot = freeslot != IX_EMPTY ? freeslot : i;
      return IX_EMPTY;
    }
    if (ix == IX_DUMMY) {
      if (freeslot == IX_EMPTY) freeslot = i;
    } else {
      const dentry *e = &d->ent[ix];
      if (e->key == k || (e->hash == h && eq_elem(e->key, k))) {
        *slot = i;
        return ix;
      }
    }
    perturb >>= 5;
    i = (i * 5 + (size_t)perturb + 1) & d->mask;
  }
}

static size_t vd_empty_slot(const vdict *d, int64_t h) {
  uint64_t perturb = (uint64_t)h;
  size_t i = (size_t)perturb & d->mask;
  while (d->index[i] != IX_EMPTY) {
    perturb >>= 5;
    i = (i * 5 + (size_t)perturb + 1) & d->mask;
  }
  return i;
}

/* Rebuild with room for at least `need` entries, dropping deleted ones (order kept). */
static void vd_resize(vdict *d, size_t need) {
  size_t size = 8;
  while (size / 3 * 2 < need) size = mul_size(size, 2);
  size_t n = 0;
  for (size_t i = 0; i < d->used; i++)
    if (d->ent[i].key) d->ent[n++] = d->ent[i];
  d->cap = size / 3 * 2;
  d->ent = xrealloc(d->ent, mul_size(d->cap, sizeof(dentry)));
  d->used = n;
  d->mask = size - 1;
  free(d->index);
  d->index = xmalloc(mul_size(size, sizeof(size_t)));
  memset(d->index, 0xff, size * sizeof(size_t)); /* IX_EMPTY */
  for (size_t i = 0; i < n; i++) d->index[vd_empty_slot(d, d->ent[i].hash)] = i;
}

static void vd_clear(vdict *d) {
  dentry *ent = d->ent;
  size_t used = d->used;
  free(d->index);
  memset(d, 0, sizeof *d);
  for (size_t i = 0; i < used; i++) {
    v_decref(ent[i].key);
    v_decref(ent[i].val);
  }
  free(ent);
}

/* Dict, set and frozenset hold the table; anything else is a caller's bug. */
static vdict *dict_of(const value *d) {
  if (d->kind != VK_DICT && d->kind != VK_SET && d->kind != VK_FROZENSET) {
    fprintf(stderr, "shmgr: dict operation on a %s\n", v_typename(d));
    abort();
  }
  return d->u.d;
}

static const char *unhashable_msg(const value *bad) {
  switch (bad->kind) {
  case VK_LIST: return "unhashable type: 'list'";
  case VK_DICT: return "unhashable type: 'dict'";
  case VK_SET: return "unhashable type: 'set'";
  case VK_BYTEARRAY: return "unhashable type: 'bytearray'";
  default: return "unhashable type: 'object'";
  }
}

int dict_set(value *dv, value *k, value *v, const char **err) {
  vdict *d = dict_of(dv);
  int64_t h;
  const value *bad = NULL;
  if (!hash_value(k, &h, &bad, 0)) {
    if (err) *err = unhashable_msg(bad ? bad : k);
    v_decref(k);
    v_decref(v);
    return -1;
  }
  size_t slot, ix = vd_find(d, k, h, &slot);
  if (ix != IX_EMPTY) { /* an equal key keeps its first form */
    dentry *e = &d->ent[ix];
    value *old = e->val;
    e->val = dv->kind == VK_DICT ? v : NULL;
    if (dv->kind != VK_DICT) v_decref(v);
    v_decref(old);
    v_decref(k);
    return 1;
  }
  if (dv->kind != VK_DICT) {
    v_decref(v);
    v = NULL;
  }
  if (d->used == d->cap) {
    vd_resize(d, d->len * 2 + 1);
    slot = vd_empty_slot(d, h);
  }
  d->ent[d->used] = (dentry){h, k, v};
  d->index[slot] = d->used++;
  d->len++;
  return 0;
}

void dict_rehash(value *dv) {
  vdict *d = dict_of(dv);
  for (size_t i = 0; i < d->used; i++) {
    int64_t h;
    const value *bad = NULL;
    if (d->ent[i].key && hash_value(d->ent[i].key, &h, &bad, 0)) d->ent[i].hash = h;
  }
  if (d->index) vd_resize(d, d->len);
}

value *dict_get(const value *dv, const value *k) {
  const vdict *d = dict_of(dv);
  int64_t h;
  const value *bad;
  if (!d->len || !hash_value(k, &h, &bad, 0)) return NULL;
  size_t slot, ix = vd_find(d, k, h, &slot);
  if (ix == IX_EMPTY) return NULL;
  return dv->kind == VK_DICT ? d->ent[ix].val : d->ent[ix].key;
}

value *dict_get_str(const value *dv, const char *key) {
  value tmp;
  tmp.refs = 1;
  tmp.kind = VK_STR;
  tmp.u.s.len = strlen(key);
  tmp.u.s.data = (char *)key; /* only read */
  return dict_get(dv, &tmp);
}

value *dict_pop(value *dv, const value *k) {
  vdict *d = dict_of(dv);
  int64_t h;
  const value *bad;
  if (!d->len || !hash_value(k, &h, &bad, 0)) return NULL;
  size_t slot, ix = vd_find(d, k, h, &slot);
  if (ix == IX_EMPTY) return NULL;
  dentry *e = &d->ent[ix];
  value *key = e->key, *val = e->val;
  e->key = e->val = NULL;
  d->index[slot] = IX_DUMMY;
  d->len--;
  if (dv->kind == VK_DICT) {
    v_decref(key);
    return val;
  }
  return key;
}

size_t dict_len(const value *d) { return dict_of(d)->len; }

bool dict_next(const value *dv, size_t *pos, value **k, value **v) {
  const vdict *d = dict_of(dv);
  while (*pos < d->used) {
    const dentry *e = &d->ent[(*pos)++];
    if (e->key) {
      *k = e->key;
      if (v) *v = e->val;
      return true;
    }
  }
  return false;
}

/* ---- constructors ---- */

static value none_v = {.refs = 1u << 30, .kind = VK_NONE};
static value true_v = {.refs = 1u << 30, .kind = VK_BOOL, .u.b = true};
static value false_v = {.refs = 1u << 30, .kind = VK_BOOL, .u.b = false};

value *v_none(void) { return v_incref(&none_v); }
value *v_bool(bool b) { return v_incref(b ? &true_v : &false_v); }

value *v_int(int64_t i) {
  value *v = new_value(VK_INT, 0);
  v->u.i = i;
  return v;
}

/* Bytes of a two's complement number that only repeat the sign can go. */
static size_t minimal_le(const uint8_t *le, size_t n) {
  while (n > 1 && ((le[n - 1] == 0 && !(le[n - 2] & 0x80)) ||
                   (le[n - 1] == 0xff && (le[n - 2] & 0x80))))
    n--;
  return n;
}

value *v_bigint_le(const uint8_t *le, size_t n) {
  n = minimal_le(le, n);
  if (n <= 8) {
    uint64_t u = (n && (le[n - 1] & 0x80)) ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++) u = (u & ~((uint64_t)0xff << (8 * i))) | ((uint64_t)le[i] << (8 * i));
    int64_t i64;
    memcpy(&i64, &u, sizeof i64);
    return v_int(i64);
  }
  value *v = new_value(VK_BIGINT, n + 1);
  v->u.s.len = n;
  v->u.s.data = (char *)(v + 1);
  memcpy(v->u.s.data, le, n);
  v->u.s.data[n] = 0;
  return v;
}

value *v_float(double f) {
  value *v = new_value(VK_FLOAT, 0);
  v->u.f = f;
  return v;
}

/* STR and BYTES are immutable: their bytes live in the value's own allocation. */
static value *inline_bytes(vkind kind, const void *p, size_t n) {
  value *v = new_value(kind, n + 1);
  v->u.s.len = n;
  v->u.s.data = (char *)(v + 1);
  if (n) memcpy(v->u.s.data, p, n);
  v->u.s.data[n] = 0;
  return v;
}

value *v_str(const char *s, size_t n) { return inline_bytes(VK_STR, s, n); }
value *v_strz(const char *s) { return v_str(s, strlen(s)); }
value *v_bytes(const void *p, size_t n) { return inline_bytes(VK_BYTES, p, n); }

value *v_bytearray(const void *p, size_t n) {
  value *v = new_value(VK_BYTEARRAY, 0);
  v->u.s.len = n;
  v->u.s.data = xmalloc(n + 1);
  if (n) memcpy(v->u.s.data, p, n);
  v->u.s.data[n] = 0;
  return v;
}

value *v_tuple(size_t n) {
  value *v = new_value(VK_TUPLE, mul_size(n, sizeof(value *)));
  v->u.seq.len = v->u.seq.cap = n;
  v->u.seq.items = (value **)(v + 1);
  for (size_t i = 0; i < n; i++) v->u.seq.items[i] = NULL;
  return v;
}

value *v_list(size_t cap) {
  value *v = new_value(VK_LIST, 0);
  v->u.seq.len = 0;
  v->u.seq.cap = cap;
  v->u.seq.items = cap ? xmalloc(mul_size(cap, sizeof(value *))) : NULL;
  return v;
}

static value *new_table(vkind kind) {
  value *v = new_value(kind, 0);
  v->u.d = xmalloc(sizeof(vdict));
  memset(v->u.d, 0, sizeof(vdict));
  return v;
}

value *v_dict(void) { return new_table(VK_DICT); }
value *v_set(bool frozen) { return new_table(frozen ? VK_FROZENSET : VK_SET); }

value *v_global_of(value *module, value *name) {
  value *v = new_value(VK_GLOBAL, 0);
  v->u.g.module = module;
  v->u.g.name = name;
  return v;
}

value *v_global(const char *module, const char *name) {
  return v_global_of(v_strz(module), v_strz(name));
}

value *v_opaque(opq_how how, value *callable, value *args, value *kwargs) {
  value *v = new_value(VK_OPAQUE, 0);
  opaque *o = xmalloc(sizeof *o);
  memset(o, 0, sizeof *o);
  o->how = (uint8_t)how;
  o->callable = callable;
  o->args = args;
  o->kwargs = kwargs;
  v->u.o = o;
  return v;
}

value *v_exception(const char *module, const char *name, value *args) {
  return v_opaque(OPQ_REDUCE, v_global(module, name), args, NULL);
}

value *v_exception_msg(const char *name, const char *msg) {
  value *args = v_tuple(1);
  args->u.seq.items[0] = v_strz(msg);
  return v_exception("builtins", name, args);
}

void list_append(value *list, value *item) {
  if (list->u.seq.len == list->u.seq.cap) {
    size_t cap = list->u.seq.cap ? mul_size(list->u.seq.cap, 2) : 4;
    list->u.seq.items = xrealloc(list->u.seq.items, mul_size(cap, sizeof(value *)));
    list->u.seq.cap = cap;
  }
  list->u.seq.items[list->u.seq.len++] = item;
}

void opaque_op(value *obj, opq_opkind op, value *a, value *b) {
  opaque *o = obj->u.o;
  if (o->nops == o->capops) {
    o->capops = o->capops ? mul_size(o->capops, 2) : 4;
    o->ops = xrealloc(o->ops, mul_size(o->capops, sizeof(opq_op)));
  }
  o->ops[o->nops++] = (opq_op){(uint8_t)op, a, b};
}

bool v_is_str(const value *v, const char *s) {
  size_t n = strlen(s);
  return v->kind == VK_STR && v->u.s.len == n && memcmp(v->u.s.data, s, n) == 0;
}

/* ---- walking the graph: the children of a value, one at a time ---- */

/* Next child of v from *pos on (NULL slots skipped); false at the end. Leaves have none. */
static bool child_next(const value *v, size_t *pos, value **out) {
  for (;;) {
    size_t i = (*pos)++;
    value *c = NULL;
    switch (v->kind) {
    case VK_TUPLE:
    case VK_LIST:
      if (i >= v->u.seq.len) return false;
      c = v->u.seq.items[i];
      break;
    case VK_DICT:
    case VK_SET:
    case VK_FROZENSET:
      if (i / 2 >= v->u.d->used) return false;
      c = i % 2 ? v->u.d->ent[i / 2].val : v->u.d->ent[i / 2].key;
      break;
    case VK_GLOBAL:
      if (i >= 2) return false;
      c = i ? v->u.g.name : v->u.g.module;
      break;
    case VK_OPAQUE: {
      const opaque *o = v->u.o;
      if (i < 3) c = i == 0 ? o->callable : i == 1 ? o->args : o->kwargs;
      else if ((i - 3) / 2 >= o->nops) return false;
      else c = (i - 3) % 2 ? o->ops[(i - 3) / 2].b : o->ops[(i - 3) / 2].a;
      break;
    }
    default:
      return false;
    }
    if (c) {
      *out = c;
      return true;
    }
  }
}

/* Lists, dicts and sets filled in steps -> their early item count (rare: a side table, so a
   value needs no room for it). */
static ptrmap early;

void v_set_early(value *c, size_t n) {
  bool added;
  *ptrmap_put(&early, c, n, &added) = n;
}

size_t v_early(const value *c) {
  size_t *n = early.n ? ptrmap_get(&early, c) : NULL;
  return n ? *n : SIZE_MAX;
}

/* ---- freeing: bounded recursion, and cycle collection for tracked containers ---- */

/* The server is single-threaded and refcounts are plain integers, so this state is too. */
static ptrmap tracked;    /* containers on a reference cycle -> their candidate slot + 1, or 0 */
static value **cands;    /* tracked containers that lost a reference but live on: maybe garbage now */
static size_t ncands, capcands;
static bool collecting;  /* a collection is taking garbage apart: no nested ones */
static int free_depth;   /* recursion depth of release() */
static value **deferred; /* values whose freeing waits for the recursion to unwind */
static size_t ndeferred, capdeferred;
#define FREE_DEPTH_MAX 200

static bool is_singleton(const value *v) { return v == &none_v || v == &true_v || v == &false_v; }

static void untrack(value *v) {
  size_t *slot = ptrmap_get(&tracked, v);
  if (!slot) return;
  if (*slot) cands[*slot - 1] = NULL;
  ptrmap_del(&tracked, v);
}

static void free_value(value *v) {
  if (is_singleton(v)) {
    v->refs = 1u << 30;
    return;
  }
  if (tracked.n && v_is_container(v)) untrack(v);
  if (early.n) ptrmap_del(&early, v);
  switch (v->kind) {
  case VK_BYTEARRAY:
    free(v->u.s.data);
    break;
  case VK_TUPLE:
    for (size_t i = 0; i < v->u.seq.len; i++) v_decref(v->u.seq.items[i]);
    break;
  case VK_LIST:
    for (size_t i = 0; i < v->u.seq.len; i++) v_decref(v->u.seq.items[i]);
    free(v->u.seq.items);
    break;
  case VK_DICT:
  case VK_SET:
  case VK_FROZENSET:
    vd_clear(v->u.d);
    free(v->u.d);
    break;
  case VK_GLOBAL:
    v_decref(v->u.g.module);
    v_decref(v->u.g.name);
    break;
  case VK_OPAQUE: {
    opaque *o = v->u.o;
    if (o->shared) v_release_shared(o->shared);
    v_decref(o->callable);
    v_decref(o->args);
    v_decref(o->kwargs);
    for (size_t i = 0; i < o->nops; i++) {
      v_decref(o->ops[i].a);
      v_decref(o->ops[i].b);
    }
    free(o->ops);
    free(o);
    break;
  }
  default:
    break;
  }
  free(v);
}

/* Free v, whose count reached zero; deep chains are finished iteratively at the top. */
static void release(value *v) {
  if (free_depth >= FREE_DEPTH_MAX) {
    if (ndeferred == capdeferred) {
      capdeferred = capdeferred ? mul_size(capdeferred, 2) : 64;
      deferred = xrealloc(deferred, mul_size(capdeferred, sizeof(value *)));
    }
    deferred[ndeferred++] = v;
    return;
  }
  free_depth++;
  free_value(v);
  if (free_depth == 1) {
    while (ndeferred) free_value(deferred[--ndeferred]);
    free(deferred);
    deferred = NULL;
    capdeferred = 0;
  }
  free_depth--;
}

/* Drop v's references to its children, leaving an empty shell (cycle breaking). */
static void clear_children(value *v) {
  switch (v->kind) {
  case VK_TUPLE:
  case VK_LIST: {
    size_t n = v->u.seq.len;
    v->u.seq.len = 0;
    for (size_t i = 0; i < n; i++) v_decref(v->u.seq.items[i]);
    break;
  }
  case VK_DICT:
  case VK_SET:
  case VK_FROZENSET:
    vd_clear(v->u.d);
    break;
  case VK_OPAQUE: {
    opaque *o = v->u.o;
    value *c = o->callable, *a = o->args, *k = o->kwargs;
    size_t nops = o->nops;
    o->callable = o->args = o->kwargs = NULL;
    o->nops = 0;
    v_decref(c);
    v_decref(a);
    v_decref(k);
    for (size_t i = 0; i < nops; i++) {
      v_decref(o->ops[i].a);
      v_decref(o->ops[i].b);
    }
    break;
  }
  default:
    break;
  }
}

/* Containers reachable from some roots, numbered in the order found. */
typedef struct graph {
  ptrmap index; /* value -> node number */
  value **node;
  size_t *inner; /* references from inside the graph (and from the roots being dropped) */
  bool *live;
  size_t n, cap;
} graph;

static size_t graph_add(graph *g, value *v) {
  bool added;
  size_t ix = *ptrmap_put(&g->index, v, g->n, &added);
  if (added) {
    if (g->n == g->cap) {
      g->cap = g->cap ? mul_size(g->cap, 2) : 64;
      g->node = xrealloc(g->node, mul_size(g->cap, sizeof(value *)));
      g->inner = xrealloc(g->inner, mul_size(g->cap, sizeof(size_t)));
      g->live = xrealloc(g->live, mul_size(g->cap, sizeof(bool)));
    }
    g->node[g->n] = v;
    g->inner[g->n] = 0;
    g->live[g->n] = false;
    g->n++;
  }
  return ix;
}

static void graph_free(graph *g) {
  ptrmap_free(&g->index);
  free(g->node);
  free(g->inner);
  free(g->live);
}

/* Which children a collection follows: every container, or only tracked ones (a garbage
   cycle of tracked values is made of tracked values only; the rest counts as outside). */
static bool followed(const value *c, bool only_tracked) {
  return v_is_container(c) && (!only_tracked || ptrmap_get(&tracked, c));
}

/* Trial deletion (as CPython's collector, restricted to what the roots reach): a container
   is alive when it has references from outside the graph or an alive container holds it;
   the rest is garbage that only references among itself keep. When `drop` is set, the
   callers' references to the roots are released as part of the same step. */
static void collect(value **roots, size_t nroots, bool drop, bool only_tracked) {
  graph g;
  memset(&g, 0, sizeof g);
  for (size_t i = 0; i < nroots; i++) {
    if (!roots[i] || !v_is_container(roots[i])) continue;
    size_t ix = graph_add(&g, roots[i]);
    if (drop) g.inner[ix]++;
  }
  for (size_t k = 0; k < g.n; k++) { /* the node array doubles as the breadth-first queue */
    size_t pos = 0;
    value *c;
    while (child_next(g.node[k], &pos, &c))
      if (followed(c, only_tracked)) {
        size_t ix = graph_add(&g, c);
        g.inner[ix]++;
      }
  }
  size_t *work = xmalloc(mul_size(g.n + 1, sizeof(size_t))), nwork = 0;
  for (size_t k = 0; k < g.n; k++)
    if (g.node[k]->refs > g.inner[k]) {
      g.live[k] = true;
      work[nwork++] = k;
    }
  while (nwork) {
    value *v = g.node[work[--nwork]], *c;
    size_t pos = 0;
    while (child_next(v, &pos, &c)) {
      size_t *ix = v_is_container(c) ? ptrmap_get(&g.index, c) : NULL;
      if (ix && !g.live[*ix]) {
        g.live[*ix] = true;
        work[nwork++] = *ix;
      }
    }
  }
  free(work);
  collecting = true;
  for (size_t k = 0; k < g.n; k++)
    if (!g.live[k]) v_incref(g.node[k]); /* hold garbage while it is taken apart */
  if (drop)
    for (size_t i = 0; i < nroots; i++) v_decref(roots[i]);
  for (size_t k = 0; k < g.n; k++)
    if (!g.live[k]) clear_children(g.node[k]);
  for (size_t k = 0; k < g.n; k++)
    if (!g.live[k]) v_decref(g.node[k]);
  collecting = false;
  graph_free(&g);
}

/* Collect from the candidates gathered during a cascade of frees, in one pass per round. */
static void collect_candidates(void) {
  while (ncands) {
    value **roots = cands;
    size_t n = 0;
    for (size_t i = 0; i < ncands; i++)
      if (roots[i]) {
        *ptrmap_get(&tracked, roots[i]) = 0;
        roots[n++] = roots[i];
      }
    cands = NULL;
    ncands = capcands = 0;
    collect(roots, n, false, true);
    free(roots);
  }
}

static void note_candidate(value *v) {
  size_t *slot = ptrmap_get(&tracked, v);
  if (!slot || *slot) return;
  if (ncands == capcands) {
    capcands = capcands ? mul_size(capcands, 2) : 16;
    cands = xrealloc(cands, mul_size(capcands, sizeof(value *)));
  }
  cands[ncands++] = v;
  *slot = ncands;
}

void v_decref(value *v) {
  if (!v) return;
  if (--v->refs) {
    if (tracked.n && v_is_container(v)) note_candidate(v);
  } else {
    release(v);
  }
  if (ncands && !free_depth && !collecting) collect_candidates();
}

void v_decref_many(value **vs, size_t n) {
  bool any = false;
  for (size_t i = 0; i < n && !any; i++) any = vs[i] && v_is_container(vs[i]);
  if (!any || collecting) {
    for (size_t i = 0; i < n; i++) v_decref(vs[i]);
    return;
  }
  collect(vs, n, true, false);
  if (ncands && !free_depth) collect_candidates();
}

/* Tarjan's strongly connected components, without recursion: the containers that sit on a
   cycle (a component of two or more, or one holding itself) get tracked. */
typedef struct tframe {
  value *v;
  size_t pos, node;
} tframe;

void v_track_cycles(value *root) {
  if (!root || !v_is_container(root)) return;
  graph g; /* node numbers are discovery order; `inner` holds each node's low-link */
  memset(&g, 0, sizeof g);
  size_t cap = 64, top = 0, nscc = 0;
  tframe *st = xmalloc(cap * sizeof *st);
  size_t *scc = NULL, sccap = 0;
  bool *on = NULL, *self = NULL; /* on the component stack; holds itself */
  size_t oncap = 0;
  value *next = root;
  for (;;) {
    if (next) { /* discover */
      size_t ix = graph_add(&g, next);
      if (g.n > oncap) {
        oncap = g.cap;
        on = xrealloc(on, mul_size(oncap, sizeof(bool)));
        self = xrealloc(self, mul_size(oncap, sizeof(bool)));
      }
      g.inner[ix] = ix;
      on[ix] = true;
      self[ix] = false;
      if (nscc == sccap) scc = xrealloc(scc, mul_size(sccap = sccap ? sccap * 2 : 64, sizeof(size_t)));
      scc[nscc++] = ix;
      if (top == cap) st = xrealloc(st, mul_size(cap *= 2, sizeof *st));
      st[top++] = (tframe){next, 0, ix};
      next = NULL;
    }
    if (!top) break;
    tframe *f = &st[top - 1];
    value *c;
    if (child_next(f->v, &f->pos, &c)) {
      if (!v_is_container(c)) continue;
      size_t *ix = ptrmap_get(&g.index, c);
      if (!ix) next = c;
      else if (*ix == f->node) self[f->node] = true;
      else if (on[*ix] && *ix < g.inner[f->node]) g.inner[f->node] = *ix;
      continue;
    }
    size_t n = f->node;
    top--;
    if (top && g.inner[n] < g.inner[st[top - 1].node]) g.inner[st[top - 1].node] = g.inner[n];
    if (g.inner[n] != n) continue;
    size_t first = nscc; /* n roots a component: everything above it on the stack */
    while (scc[first - 1] != n) first--;
    first--;
    bool cyclic = nscc - first > 1 || self[n];
    for (size_t i = first; i < nscc; i++) {
      on[scc[i]] = false;
      bool added;
      if (cyclic) ptrmap_put(&tracked, g.node[scc[i]], 0, &added);
    }
    nscc = first;
  }
  free(st);
  free(scc);
  free(on);
  free(self);
  graph_free(&g);
}

bool v_reaches(const value *from, const value *target) {
  if (from == target) return true;
  if (!v_is_container(from)) return false;
  ptrmap seen;
  memset(&seen, 0, sizeof seen);
  size_t cap = 64, n = 0;
  const value **todo = xmalloc(cap * sizeof *todo);
  bool added, found = false;
  ptrmap_put(&seen, from, 0, &added);
  todo[n++] = from;
  while (n && !found) { /* each container once, however many paths lead to it */
    const value *v = todo[--n], *c;
    size_t pos = 0;
    while (!found && child_next(v, &pos, (value **)&c)) {
      if (c == target) found = true;
      else if (v_is_container(c) && (ptrmap_put(&seen, c, 0, &added), added)) {
        if (n == cap) todo = xrealloc(todo, mul_size(cap *= 2, sizeof *todo));
        todo[n++] = c;
      }
    }
  }
  free(todo);
  ptrmap_free(&seen);
  return found;
}

#define WALK_OPEN SIZE_MAX /* a container whose walk has not finished: reaching it again is a cycle */

typedef struct walkframe {
  const value *v;
  size_t pos, height;
} walkframe;

size_t v_walk(const value *v, bool *cyclic) {
  *cyclic = false;
  if (!v || !v_is_container(v)) return 0;
  ptrmap seen;
  memset(&seen, 0, sizeof seen);
  size_t cap = 64, top = 0, result = 0;
  walkframe *st = xmalloc(cap * sizeof *st);
  bool added;
  ptrmap_put(&seen, v, WALK_OPEN, &added);
  st[top++] = (walkframe){v, 0, 1};
  while (top) {
    walkframe *f = &st[top - 1];
    value *c;
    if (child_next(f->v, &f->pos, &c)) {
      if (!v_is_container(c)) continue;
      size_t *h = ptrmap_put(&seen, c, WALK_OPEN, &added);
      if (added) {
        if (top == cap) st = xrealloc(st, mul_size(cap *= 2, sizeof *st));
        st[top++] = (walkframe){c, 0, 1};
      } else if (*h == WALK_OPEN) {
        *cyclic = true;
      } else if (*h + 1 > f->height) {
        f->height = *h + 1;
      }
      continue;
    }
    size_t height = f->height;
    *ptrmap_get(&seen, f->v) = height;
    top--;
    if (top && height + 1 > st[top - 1].height) st[top - 1].height = height + 1;
    if (!top) result = height;
  }
  free(st);
  ptrmap_free(&seen);
  return result;
}

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

#define RECURSION_MAX 3000 /* structures deeper than this compare/hash/print as cut off */

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
static bool eq_elem(const value *a, const value *b) { return a == b || eq_top(a, b); }

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

static bool hash_value(const value *v, int64_t *out, const value **bad, int depth) {
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

/* ---- repr ---- */

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

/* Exceptions print as Name(args); the names say which classes are exceptions. */
static bool exception_like(const char *name) {
  static const char *const names[] = {"Empty", "Full", "ShutDown", "StopIteration", "StopAsyncIteration",
                                      "GeneratorExit", "KeyboardInterrupt", "BaseException"};
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

/* ---- additions for the built-in containers: clearing, LIFO pops, hashability, ordering ---- */

void dict_clear(value *d) { vd_clear(dict_of(d)); }

value *dict_popitem(value *dv, value **val) {
  vdict *d = dict_of(dv);
  while (d->used && !d->ent[d->used - 1].key) d->used--; /* so that a drain stays linear */
  if (!d->len) return NULL;
  dentry *e = &d->ent[d->used - 1];
  size_t slot;
  vd_find(d, e->key, e->hash, &slot); /* finds e itself: keys are compared by pointer first */
  d->index[slot] = IX_DUMMY;
  value *key = e->key;
  if (val) *val = e->val;
  else v_decref(e->val);
  e->key = e->val = NULL;
  d->used--;
  d->len--;
  return key;
}

const char *v_unhashable(const value *v) {
  int64_t h;
  const value *bad = NULL;
  return hash_value(v, &h, &bad, 0) ? NULL : unhashable_msg(bad ? bad : v);
}

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
