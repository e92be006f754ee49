/* ptrmap.c: a map from addresses to numbers, for the walks and memos that meet each object once. */
#include "ptrmap.h"

#include "alloc.h"

/* Keys are kept scrambled: the stale ones a reused map leaves in place (the encoder's memo,
   the Lua bridge's table memo) would otherwise look like live references to a leak checker,
   hiding a value that leaked (fuzz_lua's leak checks missed one that way). */
#define SCRAMBLE ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)

struct ptrslot {
  uintptr_t key; /* the address ^ SCRAMBLE */
  size_t val;
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

static bool live(const ptrmap *m, const ptrslot *s) { return s->gen == m->gen; }

/* k's slot, or the empty one where it would go (m has slots). */
static ptrslot *find(const ptrmap *m, const void *k) {
  uintptr_t key = (uintptr_t)k ^ SCRAMBLE;
  for (size_t i = home(m, key);; i = (i + 1) & m->mask) {
    ptrslot *s = &m->slot[i];
    if (!live(m, s) || s->key == key) return s;
  }
}

static void grow(ptrmap *m) {
  ptrmap old = *m;
  size_t size = old.slot ? (old.mask + 1) * 2 : 64;
  if (size < old.mask + 1) oom(); /* wrapped around */
  m->slot = xcalloc(size, sizeof *m->slot);
  m->mask = size - 1;
  if (!m->gen) m->gen = 1;
  for (size_t i = 0; old.slot && i <= old.mask; i++)
    if (live(&old, &old.slot[i])) {
      ptrslot *s = find(m, (const void *)(old.slot[i].key ^ SCRAMBLE));
      *s = old.slot[i];
      s->gen = m->gen;
    }
  free(old.slot);
}

size_t *ptrmap_get(const ptrmap *m, const void *k) {
  if (!m->n) return NULL;
  ptrslot *s = find(m, k);
  return live(m, s) ? &s->val : NULL;
}

size_t *ptrmap_put(ptrmap *m, const void *k, size_t init, bool *added) {
  if (!m->slot || (m->n + 1) * 2 > m->mask + 1) grow(m);
  ptrslot *s = find(m, k);
  *added = !live(m, s);
  if (*added) {
    *s = (ptrslot){(uintptr_t)k ^ SCRAMBLE, init, m->gen};
    m->n++;
  }
  return &s->val;
}

void ptrmap_del(ptrmap *m, const void *k) {
  if (!m->n) return;
  ptrslot *s = find(m, k);
  if (!live(m, s)) return;
  size_t i = (size_t)(s - m->slot);
  s->gen = 0;
  m->n--;
  /* pull back later members of the run that the hole would hide */
  for (size_t j = (i + 1) & m->mask; live(m, &m->slot[j]); j = (j + 1) & m->mask) {
    size_t h = home(m, m->slot[j].key);
    if (((j - h) & m->mask) >= ((j - i) & m->mask)) {
      m->slot[i] = m->slot[j];
      m->slot[j].gen = 0;
      i = j;
    }
  }
}

bool ptrmap_next(const ptrmap *m, size_t *pos, const void **k, size_t *val) {
  while (m->slot && *pos <= m->mask) {
    const ptrslot *s = &m->slot[(*pos)++];
    if (live(m, s)) {
      *k = (const void *)(s->key ^ SCRAMBLE);
      if (val) *val = s->val;
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
  memset(m, 0, sizeof *m);
}
