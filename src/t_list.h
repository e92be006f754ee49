/* t_list.h: the built-in list (SyncManager.list, ListProxy), in C. */
#ifndef SHMGR_T_LIST_H
#define SHMGR_T_LIST_H

#include "objects.h"

extern const otype list_type;

/* The registry constructor: list(iterable=()), as CPython's create calls it. Returns a new
   object (one hold), or NULL with *err a new exception ("'int' object is not iterable"). */
shobj *list_create(value *args, value *kwds, value **err);

/* Sort items[0..n) in place as list.sort() does (stable, Python's <, CPython's run
   detection and insertion sort, so small lists fail on the same pair CPython fails on).
   Returns 0, or -1 with *err a new exception; the items are then some permutation of
   what they were, as CPython leaves them. */
int list_sort_items(value **items, size_t n, value **err);

#endif
