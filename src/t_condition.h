/* t_condition.h: the built-in Condition (Python's threading.Condition over its own RLock), in C. */
#ifndef SHMGR_T_CONDITION_H
#define SHMGR_T_CONDITION_H

#include "objects.h"

extern const otype condition_type;

/* The registry constructor: Condition(lock=None). Returns a new object owning a new RLock,
   or NULL with *err a new exception: TypeError when given a lock (shmgr's Condition makes
   its own) or bad arguments. */
shobj *condition_create(value *args, value *kwds, value **err);

#endif
