/* t_shared_array.h: SharedArray, a fixed-length array.array whose items live in shared memory. */
#ifndef SHMGR_T_SHARED_ARRAY_H
#define SHMGR_T_SHARED_ARRAY_H

#include "objects.h"

extern const otype shared_array_type;

/* The registry constructor: SharedArray(format, sequence), format an array typecode and the
   items as array.array(format, sequence) takes them (with its checks and messages). The
   items go into a block of shared memory (shm.h), in array.array's layout. Returns a new
   object (one hold), or NULL with *err a new exception (an OSError when no shared memory
   can be had). */
shobj *shared_array_create(value *args, value *kwds, value **err);

#endif
