/* ptrmap.h: a map from addresses to numbers, for the walks and memos that meet each object once. */
#ifndef SHMGR_PTRMAP_H
#define SHMGR_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open addressing with linear probing and backward-shift deletion, keyed by address alone
   (the objects are never looked at). A zeroed ptrmap is an empty map. */
typedef struct ptrmap {
  const void **keys; /* owned; NULL until the first ptrmap_put; a NULL key is an empty slot */
  size_t *vals;      /* owned: vals[i] is the number of keys[i] */
  size_t mask;       /* slots - 1 */
  size_t n;          /* keys held */
} ptrmap;

/* The number stored for k, or NULL when k is absent. The pointer is valid until the next
   ptrmap_put, ptrmap_del, ptrmap_clear or ptrmap_free on m. */
size_t *ptrmap_get(const ptrmap *m, const void *k);

/* The number stored for k, added as `init` when absent (*added tells which); valid as
   ptrmap_get's. k (not NULL) is only an address: the map holds no reference to what it
   points at. */
size_t *ptrmap_put(ptrmap *m, const void *k, size_t init, bool *added);

/* Remove k (nothing when absent). */
void ptrmap_del(ptrmap *m, const void *k);

/* Iterate over the keys: *pos starts at 0; false at the end. Neither ptrmap_put nor
   ptrmap_del may run during the iteration. */
bool ptrmap_next(const ptrmap *m, size_t *pos, const void **k, size_t *val);

/* Empty m, keeping its memory for the next use; a pass over its slots. */
void ptrmap_clear(ptrmap *m);

/* Release m's memory when it has grown past `most` slots, so that one large use does not keep
   it for the small ones after it; m is then empty. Otherwise nothing. */
void ptrmap_trim(ptrmap *m, size_t most);

/* Release m's memory; m is an empty map again. */
void ptrmap_free(ptrmap *m);

/* The address hash ptrmap uses, for tables keyed otherwise (the equality memo's pairs). */
size_t ptrmap_hash(const void *p);

#endif
