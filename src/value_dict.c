/* value_dict.c: the insertion-ordered hash table behind dict, set and frozenset. */
#include "alloc.h"
#include "value_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entry holding k, or IX_EMPTY; *slot gets k's index slot, or where to insert it. */
size_t vd_find(const vdict *d, const value *k, int64_t h, size_t *slot) {
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

/* The room to make for n more entries: at least twice the live ones, so that a table filled
   one key (or one batch) at a time is rebuilt O(log n) times. */
static size_t grown(const vdict *d, size_t n) {
  size_t need = d->len + n, twice = d->len * 2 + 1;
  return need > twice ? need : twice;
}

void vd_clear(vdict *d) {
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
    vd_resize(d, grown(d, 1));
    slot = vd_empty_slot(d, h);
  }
  d->ent[d->used] = (dentry){h, k, v};
  d->index[slot] = d->used++;
  d->len++;
  return 0;
}

void dict_reserve(value *dv, size_t n) {
  vdict *d = dict_of(dv);
  if (d->cap - d->used < n) vd_resize(d, grown(d, n));
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

/* ---- for the built-in containers: clearing, LIFO pops, hashability ---- */

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
