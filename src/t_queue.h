/* t_queue.h: the built-in Queue / JoinableQueue (Python's queue.Queue), in C. */
#ifndef SHMGR_T_QUEUE_H
#define SHMGR_T_QUEUE_H

#include "objects.h"

extern const otype queue_type;

/* A new queue with one hold (the caller's). maxsize <= 0 means unbounded. */
shobj *queue_new(int64_t maxsize);

/* The registry constructor: Queue(maxsize=0). Returns a new object, or NULL with *err a
   new exception (TypeError for a bad argument). */
shobj *queue_create(value *args, value *kwds, value **err);

#endif
