/* t_barrier.h: the built-in Barrier (Python's threading.Barrier), in C. */
#ifndef SHMGR_T_BARRIER_H
#define SHMGR_T_BARRIER_H

#include "objects.h"

extern const otype barrier_type;

/* The registry constructor: Barrier(parties, action=None, timeout=None). Returns a new
   object, or NULL with *err a new exception: ValueError for parties < 1, TypeError for an
   action (shmgr runs no client code) or bad arguments. */
shobj *barrier_create(value *args, value *kwds, value **err);

#endif
