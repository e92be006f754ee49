/* iterargs.h: the items of an argument a method iterates, lazy iterators included, as data. */
#ifndef SHMGR_ITERARGS_H
#define SHMGR_ITERARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

/* How many steps (items yielded by any iterator inside, characters or bytes split out)
   evaluating one argument may take: 4 x limits.max_objects, set at start-up. Past it the
   evaluation stops with MemoryError, as CPython's list(range(10**12)) does, before memory
   runs out. */
extern size_t iterargs_max_steps;

/* The items iterating v yields, for every place CPython's server iterates an argument
   (list(), list.extend, slice assignment, dict(), dict.update, dict.fromkeys, set() and the
   set methods taking iterables, Array()): a new list; v is borrowed. What it evaluates,
   without running anything:
   - lists, tuples, str (its characters), bytes and bytearray (ints), dicts (keys), sets;
   - what clients send for collections: dict views (list([...])), deque, OrderedDict,
     defaultdict, Counter, array.array, and proxies of this server's lists, dicts and sets;
   - lazy iterators as their recipes arrive: range, iter() of any of these (with the position
     a partly consumed iterator was pickled at), reversed(), zip() (strict too), enumerate(),
     filter(None, ...), itertools count, repeat, islice and chain, deque iterators, nested in
     one another, an iterator sent twice being one iterator (zip(it, it) pairs its items).
   CPython's methods take items one at a time, so an error of theirs (an unhashable key, a
   bad array item) or an early answer (isdisjoint) can come before the iteration fails. So:
   when the iteration fails part-way with an error CPython raises there too (zip(strict=True)
   of unequal lengths, a chained member that is not iterable), the list holds the items before
   it and *err is that error, for the caller to report once it has used them all without an
   error or answer of its own (iterargs_error); an in-place method (extend, update) then
   keeps what it added, as CPython's does. Any other error comes with NULL and *err:
   Python's TypeError ("'int' object is not iterable", "'set' object is not reversible") for
   what is not iterable at all; TypeError("shmgr does not run client code: cannot iterate a
   'map' object (map with function int); pass a list instead") for what only code could
   iterate (map, filter with a function, iter(f, sentinel), instances of other classes);
   MemoryError past iterargs_max_steps. */
value *iterargs_items(const value *v, value **err);

/* The error a caller reports after using the items iterargs_items gave with *err pending:
   its own (which came first) if any, else the pending one; the other is released. Either
   may be NULL. */
value *iterargs_error(value *own, value *pending);

/* True when exc is the TypeError iterargs_items gives because v itself is not iterable
   ("'int' object is not iterable"), which some methods word their own way. */
bool iterargs_not_iterable(const value *v, const value *exc);

#endif
