/* ptrmap.h: a map from addresses to numbers, for the walks and memos that meet each object once. */
#ifndef SHMGR_PTRMAP_H
#define SHMGR_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open addressing with linear probing, keyed by address alone (the objects are never looked
   at). A zeroed ptrmap is an empty map; the single-threaded server keeps some in statics and
   reuses them, emptied in one step by ptrmap_clear. */
typedef struct ptrslot ptrslot;
typedef struct ptrmap {
  ptrslot *slot; /* owned; NULL until the first ptrmap_put */
  size_t *val;   /* owned: val[i] is the number of slot[i]'s key (apart: probing reads slots only) */
  size_t mask;   /* slots - 1 */
  size_t n;      /* keys held */
  uint32_t gen;  /* a slot stamped with another generation is empty */
} ptrmap;

/* The number stored for k, or NULL when k is absent. The pointer is valid until the next
   ptrmap_put, ptrmap_del, ptrmap_clear or ptrmap_free on m. */
size_t *ptrmap_get(const ptrmap *m, const void *k);

/* The number stored for k, added as `init` when absent (*added tells which); valid as
   ptrmap_get's. k is only an address: the map holds no reference to what it points at. */
size_t *ptrmap_put(ptrmap *m, const void *k, size_t init, bool *added);

/* Remove k (nothing when absent). */
void ptrmap_del(ptrmap *m, const void *k);

/* Iterate over the keys: *pos starts at 0; false at the end. Neither ptrmap_put nor
   ptrmap_del may run during the iteration. */
bool ptrmap_next(const ptrmap *m, size_t *pos, const void **k, size_t *val);

/* Empty m, keeping its memory for the next use: constant time, whatever its size. */
void ptrmap_clear(ptrmap *m);

/* Release m's memory when it has grown past `most` slots, so that one large use does not keep
   it for the small ones after it; m is then empty. Otherwise nothing. */
void ptrmap_trim(ptrmap *m, size_t most);

/* Release m's memory; m is an empty map again. */
void ptrmap_free(ptrmap *m);

/* The address hash ptrmap uses, for tables keyed otherwise (the equality memo's pairs). */
size_t ptrmap_hash(const void *p);

#endif
