/* value_impl.h: the value model's internals: the dict table's layout, the calls its files make to one another. */
#ifndef SHMGR_VALUE_IMPL_H
#define SHMGR_VALUE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

/* ---- the table behind dict, set and frozenset (value_dict.c) ---- */

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

/* The entry holding k (whose hash is h), or IX_EMPTY; *slot gets k's index slot, or where to
   insert it. Keys are compared by pointer first, then with eq_elem. */
size_t vd_find(const vdict *d, const value *k, int64_t h, size_t *slot);

/* Release every key and value d holds and its memory: d is an empty table again. */
void vd_clear(vdict *d);

/* ---- numbers (value.c) ---- */

/* How many of the n bytes of little-endian two's complement le are left once the top bytes
   that only repeat the sign are dropped (at least 1). */
size_t minimal_le(const uint8_t *le, size_t n);

/* ---- Python's == and hash as the table uses them (value_cmp.c) ---- */

#define RECURSION_MAX 3000 /* structures deeper than this compare/hash/print as cut off */

/* Python's == as a dict lookup applies it: the same value is equal to itself (a NaN key finds
   itself), others compare as v_eq. */
bool eq_elem(const value *a, const value *b);

/* Python's hash of v into *out; false when v is unhashable, with *bad the culprit (v, a list
   inside a tuple v, an opaque object that cannot be encoded, what lies deeper than
   RECURSION_MAX). depth is 0 for a whole hash, whose memo of shared tuples is emptied at its
   end. */
bool hash_value(const value *v, int64_t *out, const value **bad, int depth);

#endif
