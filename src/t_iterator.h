/* t_iterator.h: the built-in Iterator (IteratorProxy): a dict's key iterator, shared. */
#ifndef SHMGR_T_ITERATOR_H
#define SHMGR_T_ITERATOR_H

#include "objects.h"

extern const otype iterator_type;

/* A new iterator (one hold) over the keys of dict (a VK_DICT value, held by the iterator),
   as iter(d) is on CPython's server: it follows the dict as it changes, and raises
   RuntimeError('dictionary changed size during iteration') once its size differs. The
   typeid "Iterator" has no constructor: only dict.__iter__ makes these. */
shobj *iterator_new(value *dict);

#endif
