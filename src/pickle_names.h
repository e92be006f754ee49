/* pickle_names.h: what the globals and calls in a pickle stand for, as Python 3 loads them. */
#ifndef SHMGR_PICKLE_NAMES_H
#define SHMGR_PICKLE_NAMES_H

#include <stdbool.h>

#include "value.h"

/* Python 3's name for a Python 2 global, as Python 3's unpickler renames them below protocol 3
   (_compat_pickle): true with *m2 and *n2 set (static strings, or name itself), false when
   the name is unchanged. */
bool compat_name(const char *module, const char *name, const char **m2, const char **n2);

/* A REDUCE of fn(*args) that only rebuilds plain data (set, frozenset, bytearray and bytes as
   older protocols write them): that data (new reference), else NULL, with *bad a static
   TypeError message when it is such a call whose data cannot be built (an unhashable
   member). fn and args are borrowed. */
value *plain_reduce(const value *fn, const value *args, const char **bad);

/* dill's dill._dill._load_type('slice') as the global it returns (builtins.slice, a new
   reference), so that built-in types from dill's picklers are what they are; NULL for any
   other call. */
value *dill_builtin_type(const value *fn, const value *args);

/* True when m (a VK_STR) names a module whose RebuildProxy makes a proxy:
   multiprocessing.managers, and the forks that speak its protocol (multiprocess, billiard). */
bool managers_module(const value *m);

#endif
