/* ptrmap.c: a map from addresses to numbers, for the walks and memos that meet each object once. */
#include "ptrmap.h"

#include "alloc.h"

size_t ptrmap_hash(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

size_t *ptrmap_get(const ptrmap *m, const void *k) {
  if (!m->keys) return NULL;
  for (size_t i = ptrmap_hash(k) & m->mask;; i = (i + 1) & m->mask) {
    if (m->keys[i] == k) return &m->vals[i];
    if (!m->keys[i]) return NULL;
  }
}

static void grow(ptrmap *m) {
  ptrmap old = *m;
  size_t size = old.keys ? (old.mask + 1) * 2 : 64;
  m->keys = xmalloc(mul_size(size, sizeof(void *)));
  m->vals = xmalloc(mul_size(size, sizeof(size_t)));
  memset(m->keys, 0, size * sizeof(void *));
  m->mask = size - 1;
  for (size_t i = 0; old.keys && i <= old.mask; i++) {
    if (!old.keys[i]) continue;
    size_t j = ptrmap_hash(old.keys[i]) & m->mask;
    while (m->keys[j]) j = (j + 1) & m->mask;
    m->keys[j] = old.keys[i];
    m->vals[j] = old.vals[i];
  }
  free(old.keys);
  free(old.vals);
}

size_t *ptrmap_put(ptrmap *m, const void *k, size_t init, bool *added) {
  if (!m->keys || (m->n + 1) * 2 > m->mask + 1) grow(m);
  size_t i = ptrmap_hash(k) & m->mask;
  for (; m->keys[i]; i = (i + 1) & m->mask)
    if (m->keys[i] == k) {
      *added = false;
      return &m->vals[i];
    }
  m->keys[i] = k;
  m->vals[i] = init;
  m->n++;
  *added = true;
  return &m->vals[i];
}

void ptrmap_del(ptrmap *m, const void *k) {
  if (!m->keys) return;
  size_t i = ptrmap_hash(k) & m->mask;
  for (; m->keys[i] != k; i = (i + 1) & m->mask)
    if (!m->keys[i]) return;
  m->keys[i] = NULL;
  m->n--;
  /* pull back later members of the run that the hole would hide */
  for (size_t j = (i + 1) & m->mask; m->keys[j]; j = (j + 1) & m->mask) {
    size_t home = ptrmap_hash(m->keys[j]) & m->mask;
    if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      m->keys[j] = NULL;
      i = j;
    }
  }
}

bool ptrmap_next(const ptrmap *m, size_t *pos, const void **k, size_t *val) {
  while (m->keys && *pos <= m->mask) {
    size_t i = (*pos)++;
    if (m->keys[i]) {
      *k = m->keys[i];
      if (val) *val = m->vals[i];
      return true;
    }
  }
  return false;
}

void ptrmap_clear(ptrmap *m) {
  if (m->n) memset(m->keys, 0, (m->mask + 1) * sizeof(void *));
  m->n = 0;
}

void ptrmap_trim(ptrmap *m, size_t most) {
  if (m->keys && m->mask >= most) ptrmap_free(m);
}

void ptrmap_free(ptrmap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}
