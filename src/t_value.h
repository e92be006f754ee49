/* t_value.h: the built-in Value (multiprocessing.managers.Value, ValueProxy), in C. */
#ifndef SHMGR_T_VALUE_H
#define SHMGR_T_VALUE_H

#include "objects.h"

extern const otype valueobj_type;

/* The registry constructor: Value(typecode, value, lock=True). As in CPython, the typecode
   is kept, never checked, and any value is stored. Returns a new object (one hold), or
   NULL with *err a new TypeError for missing or extra arguments. */
shobj *valueobj_create(value *args, value *kwds, value **err);

#endif
