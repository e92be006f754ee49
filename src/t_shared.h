/* t_shared.h: SharedValue and SharedStruct, struct-packed values whose bytes live in shared memory. */
#ifndef SHMGR_T_SHARED_H
#define SHMGR_T_SHARED_H

#include "objects.h"

extern const otype shared_value_type, shared_struct_type;

/* The registry constructors: SharedValue(format, value), format a struct format of exactly
   one item; SharedStruct(format, value), value a tuple or list of the format's items. The
   bytes go into a block of shared memory (shm.h), laid out as struct.pack(format, ...) lays
   them out. Returns a new object (one hold), or NULL with *err a new exception: TypeError
   for the arguments (as a def __init__(self, format, value) words it), struct's own for the
   format and the items (structfmt.h), OSError when no shared memory can be had. */
shobj *shared_value_create(value *args, value *kwds, value **err);
shobj *shared_struct_create(value *args, value *kwds, value **err);

#endif
