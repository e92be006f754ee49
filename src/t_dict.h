/* t_dict.h: the built-in dict (SyncManager.dict, DictProxy), in C. */
#ifndef SHMGR_T_DICT_H
#define SHMGR_T_DICT_H

#include "objects.h"

extern const otype dict_type;

/* The registry constructor: dict(mapping_or_pairs=(), **kwds). Returns a new object (one
   hold), or NULL with *err a new exception (TypeError, ValueError as dict() raises them). */
shobj *dict_create(value *args, value *kwds, value **err);

/* d.update(other) into the VK_DICT value d, as dict.update reads other: a dict (or a proxy
   of one, an OrderedDict, defaultdict or Counter), else an iterable of pairs. Returns NULL,
   or a new exception; what was merged before an error stays, as in CPython. */
value *dict_merge(value *d, const value *other);

#endif
