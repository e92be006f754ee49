/* t_array.h: the built-in Array (managers.Array: an array.array, ArrayProxy), in C. */
#ifndef SHMGR_T_ARRAY_H
#define SHMGR_T_ARRAY_H

#include "objects.h"

extern const otype array_type;

/* The registry constructor: Array(typecode, sequence, lock=True), i.e. array.array(typecode,
   sequence): items are checked and stored as C numbers of the typecode's width, native
   byte order. Returns a new object (one hold), or NULL with *err a new exception
   (ValueError('bad typecode ...'), OverflowError, TypeError as array.array raises them). */
shobj *array_create(value *args, value *kwds, value **err);

/* The items of v when it is an array.array as clients send it (array.array(typecode,
   bytes)): a new list of ints, floats or one-character strs; NULL when v is no such array
   (*err NULL) or its items cannot be read (*err a new exception). */
value *array_value_items(const value *v, value **err);

#endif
