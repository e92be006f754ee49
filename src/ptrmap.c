/* ptrmap.c: a map from addresses to numbers, for the walks and memos that meet each object once. */
#include "ptrmap.h"

#include "alloc.h"

/* Keys are kept scrambled: the stale ones a reused map leaves in place (the encoder's memo,
   the Lua bridge's table memo) would otherwise look like live references to a leak checker,
   hiding a value that leaked (fuzz_lua's leak checks missed one that way). */
#define SCRAMBLE ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)

struct ptrslot {
  uintptr_t key; /* the address ^ SCRAMBLE */
  uint32_t gen;  /* the map's generation when it was set; any other: empty (0 never is one) */
};

size_t ptrmap_hash(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

static size_t home(const ptrmap *m, uintptr_t key) { return ptrmap_hash((const void *)(key ^ SCRAMBLE)) & m->mask; }

static bool live(const ptrmap *m, size_t i) { return m->slot[i].gen == m->gen; }

/* The index of k's slot, or of the empty one where it would go (m has slots). */
static size_t find(const ptrmap *m, const void *k) {
  uintptr_t key = (uintptr_t)k ^ SCRAMBLE;
  size_t i = home(m, key);
  while (live(m, i) && m->slot[i].key != key) i = (i + 1) & m->mask;
  return i;
}

static void grow(ptrmap *m) {
  ptrmap old = *m;
  size_t size = old.slot ? (old.mask + 1) * 2 : 64;
  if (size < old.mask + 1) oom(); /* wrapped around */
  m->slot = xcalloc(size, sizeof *m->slot);
  m->val = xmalloc(mul_size(size, sizeof *m->val));
  m->mask = size - 1;
  if (!m->gen) m->gen = 1;
  for (size_t i = 0; old.slot && i <= old.mask; i++)
    if (live(&old, i)) {
      size_t j = find(m, (const void *)(old.slot[i].key ^ SCRAMBLE));
      m->slot[j] = (ptrslot){old.slot[i].key, m->gen};
      m->val[j] = old.val[i];
    }
  free(old.slot);
  free(old.val);
}

size_t *ptrmap_get(const ptrmap *m, const void *k) {
  if (!m->n) return NULL;
  size_t i = find(m, k);
  return live(m, i) ? &m->val[i] : NULL;
}

size_t *ptrmap_put(ptrmap *m, const void *k, size_t init, bool *added) {
  if (!m->slot || (m->n + 1) * 2 > m->mask + 1) grow(m);
  size_t i = find(m, k);
  *added = !live(m, i);
  if (*added) {
    m->slot[i] = (ptrslot){(uintptr_t)k ^ SCRAMBLE, m->gen};
    m->val[i] = init;
    m->n++;
  }
  return &m->val[i];
}

void ptrmap_del(ptrmap *m, const void *k) {
  if (!m->n) return;
  size_t i = find(m, k);
  if (!live(m, i)) return;
  m->slot[i].gen = 0;
  m->n--;
  /* pull back later members of the run that the hole would hide */
  for (size_t j = (i + 1) & m->mask; live(m, j); j = (j + 1) & m->mask) {
    size_t h = home(m, m->slot[j].key);
    if (((j - h) & m->mask) >= ((j - i) & m->mask)) {
      m->slot[i] = m->slot[j];
      m->val[i] = m->val[j];
      m->slot[j].gen = 0;
      i = j;
    }
  }
}

bool ptrmap_next(const ptrmap *m, size_t *pos, const void **k, size_t *val) {
  while (m->slot && *pos <= m->mask) {
    size_t i = (*pos)++;
    if (live(m, i)) {
      *k = (const void *)(m->slot[i].key ^ SCRAMBLE);
      if (val) *val = m->val[i];
      return true;
    }
  }
  return false;
}

void ptrmap_clear(ptrmap *m) {
  m->n = 0;
  if (++m->gen == 0) { /* wrapped: stale stamps could look current */
    if (m->slot) memset(m->slot, 0, (m->mask + 1) * sizeof *m->slot);
    m->gen = 1;
  }
}

void ptrmap_trim(ptrmap *m, size_t most) {
  if (m->slot && m->mask >= most) ptrmap_free(m);
}

void ptrmap_free(ptrmap *m) {
  free(m->slot);
  free(m->val);
  memset(m, 0, sizeof *m);
}
