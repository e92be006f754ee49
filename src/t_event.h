/* t_event.h: the built-in Event (Python's threading.Event), in C. */
#ifndef SHMGR_T_EVENT_H
#define SHMGR_T_EVENT_H

#include "objects.h"

extern const otype event_type;

/* The registry constructor: Event(). Returns a new object, or NULL with *err a new
   TypeError when given arguments. */
shobj *event_create(value *args, value *kwds, value **err);

#endif
