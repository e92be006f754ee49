/* value.c: the value model: constructors, refcounts, reference cycles and the walks over shared structure. */
#include "alloc.h"
#include "value_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptrmap.h"

/* ---- allocation: like buf.c, out of memory is fatal ---- */

static value *new_value(vkind kind, size_t extra) {
  if (extra > SIZE_MAX - sizeof(value)) size_overflow();
  value *v = xmalloc(sizeof(value) + extra);
  v->refs = 1;
  v->kind = (uint8_t)kind;
  return v;
}

void (*v_release_shared)(struct shobj *obj);

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
size_t minimal_le(const uint8_t *le, size_t n) {
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

bool v_bigint_double(const value *v, double *out) {
  size_t n = v->u.s.len;
  const uint8_t *le = (const uint8_t *)v->u.s.data;
  bool neg = le[n - 1] & 0x80;
  uint8_t *mag = xmalloc(n);
  unsigned carry = 1;
  for (size_t i = 0; i < n; i++) { /* magnitude of the two's complement number */
    unsigned b = neg ? (uint8_t)~le[i] + carry : le[i];
    if (neg) carry = b >> 8;
    mag[i] = (uint8_t)b;
  }
  size_t top = n;
  while (top > 1 && !mag[top - 1]) top--;
  int hb = 7;
  while (hb > 0 && !(mag[top - 1] >> hb)) hb--;
  size_t nbits = (top - 1) * 8 + (size_t)hb + 1;
  /* the 64 bits below the top one, and whether anything below them is set */
  uint64_t hi = 0;
  bool sticky = false;
  for (size_t b = 0; b < nbits; b++) {
    size_t bit = nbits - 1 - b;
    int set = (mag[bit / 8] >> (bit % 8)) & 1;
    if (b < 64) hi |= (uint64_t)set << (63 - b);
    else if (set) sticky = true;
  }
  free(mag);
  uint64_t mant = hi >> 11, rest = hi & 0x7ff;
  if (rest > 0x400 || (rest == 0x400 && (sticky || (mant & 1)))) mant++;
  double d = ldexp((double)mant, (int)nbits - 53);
  if (isinf(d)) return false;
  *out = neg ? -d : d;
  return true;
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
  v->u.s.block = NULL;
  if (n) memcpy(v->u.s.data, p, n);
  v->u.s.data[n] = 0;
  return v;
}

value *v_str(const char *s, size_t n) { return inline_bytes(VK_STR, s, n); }
value *v_strz(const char *s) { return v_str(s, strlen(s)); }
value *v_bytes(const void *p, size_t n) { return inline_bytes(VK_BYTES, p, n); }

void (*v_block_free)(void *block) = free;

value *v_adopt(vkind kind, char *p, size_t n, void *block) {
  value *v = new_value(kind, 0);
  v->u.s.len = n;
  v->u.s.data = p;
  v->u.s.block = block;
  return v;
}

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

const char *v_os_error_class(int64_t e) {
  switch (e) {
  case EAGAIN: case EALREADY: case EINPROGRESS: return "BlockingIOError";
  case ECHILD: return "ChildProcessError";
  case EPIPE: case ESHUTDOWN: return "BrokenPipeError";
  case ECONNABORTED: return "ConnectionAbortedError";
  case ECONNREFUSED: return "ConnectionRefusedError";
  case ECONNRESET: return "ConnectionResetError";
  case EEXIST: return "FileExistsError";
  case ENOENT: return "FileNotFoundError";
  case EISDIR: return "IsADirectoryError";
  case ENOTDIR: return "NotADirectoryError";
  case EINTR: return "InterruptedError";
  case EACCES: case EPERM: return "PermissionError";
  case ESRCH: return "ProcessLookupError";
  case ETIMEDOUT: return "TimeoutError";
  default: return "OSError";
  }
}

value *v_exception_fmt(const char *module, const char *name, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  value *args = v_tuple(1);
  args->u.seq.items[0] = v_strz(msg);
  return v_exception(module, name, args);
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
  case VK_STR:
  case VK_BYTES:
    if (v->u.s.block) v_block_free(v->u.s.block); /* adopted; else the bytes are the value's own allocation */
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
