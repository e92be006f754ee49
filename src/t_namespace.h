/* t_namespace.h: the built-in Namespace (multiprocessing.managers.Namespace), in C. */
#ifndef SHMGR_T_NAMESPACE_H
#define SHMGR_T_NAMESPACE_H

#include "objects.h"

extern const otype namespace_type;

/* The registry constructor: Namespace(**kwds). Returns a new object (one hold), or NULL
   with *err a new TypeError (positional arguments). */
shobj *namespace_create(value *args, value *kwds, value **err);

#endif
