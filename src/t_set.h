/* t_set.h: the built-in set (SyncManager.set and SetProxy of Python 3.14), in C. */
#ifndef SHMGR_T_SET_H
#define SHMGR_T_SET_H

#include "objects.h"

extern const otype set_type;

/* The registry constructor: set(iterable=()). Returns a new object (one hold), or NULL with
   *err a new exception ("'int' object is not iterable", "unhashable type: 'list'"). */
shobj *set_create(value *args, value *kwds, value **err);

#endif
