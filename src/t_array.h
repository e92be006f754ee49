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

/* ---- the item codec, shared with SharedArray (t_shared_array.c) ---- */

/* An array's items as C numbers of the typecode's type, native byte order. */
typedef struct array_data {
  char tc;
  size_t size;      /* bytes per item */
  size_t len, cap;  /* items */
  uint8_t *data;    /* malloc'd, owned by whoever holds the array_data */
} array_data;

/* array.array(typecode, init) with array_new's checks and messages: fills *a (its data
   the caller's to free) and returns NULL, or returns a new exception with *a empty. */
value *array_build(const value *typecode, const value *init, array_data *a);
/* a[key] (an index or a slice) as array.array gives it: an item, or an array value. */
outcome array_getitem(const array_data *a, const value *key);
/* a[key] = v for an index key (not a slice), with array.array's checks and messages: NULL,
   or a new exception with a unchanged. */
value *array_setitem_at(array_data *a, const value *key, const value *v);
/* Bytes per item of typecode tc, 0 when array.array does not know it. */
size_t array_item_size(int tc);
/* Convert v for typecode tc into out (array_item_size(tc) bytes): NULL, or a new exception
   worded as array.array words it (out may then be partly written). */
value *array_pack(int tc, const value *v, uint8_t *out);
/* The item at p of typecode tc: new, or NULL with *err a new exception (a 'u' or 'w' item
   that is no code point). */
value *array_unpack(int tc, const uint8_t *p, value **err);
/* The items as a list (new), or NULL with *err. */
value *array_item_list(int tc, const uint8_t *data, size_t nbytes, value **err);
/* An array.array value (as managers.py pickles one: array.array(typecode, bytes)), new. */
value *array_new_value(int tc, const uint8_t *data, size_t nbytes);
/* Whether v is such an array value: its typecode and bytes (borrowed from v). */
bool array_parts(const value *v, int *tc, const uint8_t **data, size_t *nbytes);

#endif
