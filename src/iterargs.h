/* iterargs.h: the items of an argument a method iterates, lazy iterators included, as data. */
#ifndef SHMGR_ITERARGS_H
#define SHMGR_ITERARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

/* How many steps (items yielded by any iterator inside, characters or bytes split out)
   evaluating one argument may take: limits.max_objects, set at start-up. Past it the
   evaluation stops with MemoryError, as CPython's list(range(10**12)) does, before memory
   runs out. */
extern size_t iterargs_max_steps;

/* The items Python's list(v) would hold, as a new list value, for every place CPython's
   server iterates an argument (list(), list.extend, slice assignment, dict(), dict.update,
   dict.fromkeys, set() and the set methods taking iterables, Array()).
   v is borrowed. What it evaluates, without running anything:
   - lists, tuples, str (its characters), bytes and bytearray (ints), dicts (keys), sets;
   - what clients send for collections: dict views (list([...])), deque, OrderedDict,
     defaultdict, Counter, array.array, and proxies of this server's lists, dicts and sets;
   - lazy iterators as their recipes arrive: range, iter() of any of these (with the position
     a partly consumed iterator was pickled at), reversed(), zip() (strict too), enumerate(),
     filter(None, ...), itertools count, repeat, islice and chain, deque iterators, nested in
     one another, an iterator sent twice being one iterator (zip(it, it) pairs its items).
   Returns NULL with *err a new exception otherwise: Python's own TypeError ("'int' object is
   not iterable", "'set' object is not reversible") for what is not iterable at all, Python's
   errors where CPython raises them (zip(strict=True) of unequal lengths), TypeError("shmgr
   does not run client code: cannot iterate a 'map' object (map with function int); pass a
   list instead") for what only code could iterate (map, filter with a function, iter(f,
   sentinel), instances of other classes), MemoryError past iterargs_max_steps. */
value *iterargs_items(const value *v, value **err);

/* The same for the methods that change their object item by item (list.extend, set.update,
   set.difference_update, dict.update): when an error CPython itself raises part-way (zip
   strict, a chained member that is not iterable) stops the iteration, CPython keeps what
   came before it, so this returns those items with *err set. Any other error (a refusal,
   the step limit) comes with NULL: the method changes nothing. */
value *iterargs_items_upto(const value *v, value **err);

/* True when exc is the TypeError iterargs_items gives for a value that is not iterable at
   all ("'int' object is not iterable"), which some methods word their own way. */
bool iterargs_not_iterable(const value *exc);

#endif
