/* objects.c: shared objects and the ident table with clients' refcounts. */
#include "alloc.h"
#include "objects.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ident "0" is reserved, as in CPython; the server starts at a random base (see
   obj_ident_base), the fuzz targets and tools at 1 */
static uint64_t first_id = 1, next_id = 1;

void obj_ident_base(uint64_t base) {
  if (base) first_id = next_id = base;
}

/* Every live object, by id: a chained hash grown by doubling. Whether an object is in the
   clients' table (CPython's id_to_refcount) is its in_table flag; one that left the table
   stays findable while something (a proxy stored in a container) still holds it. */
static shobj **slots;
static size_t nslots, nlive, in_table;

static size_t slot_of(uint64_t id) { return (size_t)(id * 0x9E3779B97F4A7C15ull >> 20) & (nslots - 1); }

static void grow(void) {
  size_t n = nslots ? nslots * 2 : 256;
  shobj **old = slots;
  size_t oldn = nslots;
  slots = xcalloc(n, sizeof *slots);
  nslots = n;
  for (size_t i = 0; i < oldn; i++) {
    for (shobj *o = old[i], *nx; o; o = nx) {
      nx = o->next;
      size_t k = slot_of(o->id);
      o->next = slots[k];
      slots[k] = o;
    }
  }
  free(old);
}

shobj *obj_new(const otype *t, void *state, uint64_t id) {
  shobj *o = xcalloc(1, sizeof *o);
  o->type = t;
  o->cls = t->name;
  o->state = state;
  o->holds = 1;
  o->id = id ? id : next_id++;
  if (nlive + 1 > nslots) grow();
  size_t k = slot_of(o->id);
  o->next = slots[k];
  slots[k] = o;
  nlive++;
  return o;
}

void obj_release(shobj *o) {
  if (--o->holds) return;
  shobj **p = &slots[slot_of(o->id)];
  while (*p != o) p = &(*p)->next;
  *p = o->next;
  if (--nlive == 0) { /* nothing left: give the slots back (and leak checkers see nothing) */
    free(slots);
    slots = NULL;
    nslots = 0;
  }
  v_decref(o->exposed);
  v_decref(o->m2t);
  o->type->free(o);
  free(o);
}

obj_info obj_describe(const shobj *o) {
  obj_info info = {.size = -1};
  if (o->type->info) o->type->info(o, &info);
  return info;
}

void obj_each(void (*f)(shobj *o, void *ctx), void *ctx) {
  for (size_t k = 0; k < nslots; k++)
    for (shobj *o = slots[k]; o; o = o->next) f(o, ctx);
}

const char *obj_ident(const shobj *o) {
  static char text[20];
  snprintf(text, sizeof text, "%" PRIx64, o->id);
  return text;
}

shobj *obj_find(const char *ident, size_t len) {
  if (!nslots || len == 0 || len > 16) return NULL;
  if (len > 1 && ident[0] == '0') return NULL; /* "%x" never has a leading zero */
  uint64_t id = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = ident[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (d < 0) return NULL;
    id = id << 4 | (uint64_t)d;
  }
  for (shobj *o = slots[slot_of(id)]; o; o = o->next)
    if (o->id == id) return o;
  return NULL;
}

void table_enter(shobj *o, value *exposed, value *m2t) {
  v_decref(o->exposed);
  v_decref(o->m2t);
  o->exposed = exposed;
  o->m2t = m2t;
  if (!o->in_table) {
    o->in_table = true;
    o->refcount = 0;
    in_table++;
    obj_hold(o);
  }
  o->refcount++;
}

shobj *table_find(const char *ident, size_t len) {
  shobj *o = obj_find(ident, len);
  return o && o->in_table ? o : NULL;
}

bool table_incref(shobj *o) {
  if (!o->in_table) return false;
  if (o->inflight > 0) o->inflight--; /* counted when the proxy went out */
  else o->refcount++;
  return true;
}

void table_send(shobj *o) {
  if (!o->exposed) return;
  if (!o->in_table) table_enter(o, v_incref(o->exposed), o->m2t ? v_incref(o->m2t) : NULL);
  else o->refcount++;
  o->inflight++;
}

static void leave_table(shobj *o) {
  o->in_table = false;
  o->inflight = 0;
  in_table--;
  obj_release(o);
}

void table_decref(shobj *o) {
  if (--o->refcount <= 0) leave_table(o);
}

size_t table_count(void) { return in_table; }

static int by_ident(const void *a, const void *b) {
  /* CPython sorts the ident strings, so "10" comes before "9" */
  char x[20], y[20];
  snprintf(x, sizeof x, "%" PRIx64, (*(shobj *const *)a)->id);
  snprintf(y, sizeof y, "%" PRIx64, (*(shobj *const *)b)->id);
  return strcmp(x, y);
}

/* The objects in the table, in a new array of table_count() entries. */
static shobj **table_members(void) {
  shobj **all = xmalloc((in_table ? in_table : 1) * sizeof *all);
  size_t n = 0;
  for (size_t i = 0; i < nslots; i++)
    for (shobj *o = slots[i]; o; o = o->next)
      if (o->in_table) all[n++] = o;
  return all;
}

void table_debug_info(buf *out) {
  if (!in_table) return;
  size_t n = in_table;
  shobj **all = table_members();
  qsort(all, n, sizeof *all, by_ident);
  buf text = {0};
  for (size_t i = 0; i < n; i++) {
    if (i) buf_byte(out, '\n');
    buf_printf(out, "  %s:       refcount=%" PRId64 "\n    ", obj_ident(all[i]), all[i]->refcount);
    buf_clear(&text);
    all[i]->type->repr(all[i], &text);
    buf_put(out, text.data, text.len < 75 ? text.len : 75);
  }
  buf_free(&text);
  free(all);
}

/* Objects of one type under one registration share one exposed tuple: a dict's 23 method
   names would otherwise cost each dict about a kilobyte. The cache holds references to
   its keys, so a replaced registration's exposed or m2t cannot be mistaken for a new one. */
#define EXPOSED_CACHE 64
static struct {
  const otype *type;
  value *exposed, *m2t, *tuple; /* owned */
} cache[EXPOSED_CACHE];
static size_t ncache;

void table_clear(void) {
  size_t n = in_table;
  shobj **all = table_members();
  for (size_t i = 0; i < n; i++) obj_hold(all[i]); /* releasing one may free another */
  for (size_t i = 0; i < n; i++) {
    if (all[i]->in_table) leave_table(all[i]);
    obj_release(all[i]);
  }
  free(all);
  if (!nlive) next_id = first_id; /* no object left to be confused with: idents may start again */
  for (size_t i = 0; i < ncache; i++) {
    v_decref(cache[i].exposed);
    v_decref(cache[i].m2t);
    v_decref(cache[i].tuple);
  }
  ncache = 0;
}

/* The exposed tuple as a registration makes it: exposed if given, else the public methods
   (those of the object, else of its type), then method_to_typeid's keys. */
static value *make_exposed(shobj *o, const value *exposed, const value *m2t) {
  value *base = NULL;
  if (exposed) base = v_incref((value *)exposed);
  else if (o->type->public_methods) base = o->type->public_methods(o);
  if (!base) {
    size_t n = 0;
    while (o->type->methods[n]) n++;
    base = v_tuple(n);
    for (size_t i = 0; i < n; i++) base->u.seq.items[i] = v_strz(o->type->methods[i]);
  }
  if (!m2t || !dict_len(m2t)) return base;
  size_t n = base->u.seq.len, extra = dict_len(m2t), pos = 0;
  value *all = v_tuple(n + extra), *k, *v;
  for (size_t i = 0; i < n; i++) all->u.seq.items[i] = v_incref(base->u.seq.items[i]);
  while (dict_next(m2t, &pos, &k, &v)) all->u.seq.items[n++] = v_incref(k);
  v_decref(base);
  return all;
}

value *obj_exposed(shobj *o, const value *exposed, const value *m2t) {
  if (o->type->public_methods && !exposed) return make_exposed(o, exposed, m2t); /* varies per object */
  for (size_t i = 0; i < ncache; i++)
    if (cache[i].type == o->type && cache[i].exposed == exposed && cache[i].m2t == m2t)
      return v_incref(cache[i].tuple);
  value *t = make_exposed(o, exposed, m2t);
  if (ncache < EXPOSED_CACHE) {
    cache[ncache].type = o->type;
    cache[ncache].exposed = exposed ? v_incref((value *)exposed) : NULL;
    cache[ncache].m2t = m2t ? v_incref((value *)m2t) : NULL;
    cache[ncache++].tuple = v_incref(t);
  }
  return t;
}

bool obj_exposes(const shobj *o, const char *method) {
  if (!o->exposed) return false;
  for (size_t i = 0; i < o->exposed->u.seq.len; i++)
    if (v_is_str(o->exposed->u.seq.items[i], method)) return true;
  return false;
}
