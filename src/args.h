/* args.h: binding a call's args and kwds to parameters, with Python's TypeError messages. */
#ifndef SHMGR_ARGS_H
#define SHMGR_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

/* Bind args (a tuple) and kwds (a dict, may be NULL) to the n parameters names[] of the
   method fname ("Queue.get"), the first nreq required, as a Python def would. out[i] gets a
   borrowed value or NULL when not given. Returns NULL, or a new TypeError exception with
   Python's wording (self counted in positional counts, as CPython counts it). */
value *args_bind(const char *fname, const char *const names[], size_t n, size_t nreq,
                 const value *args, const value *kwds, value *out[]);

/* args_bind for a method of CPython's Server (or SharedMemoryServer): def m(self, c, ...),
   the connection c counted too in "takes N positional arguments"; every parameter is
   required. */
value *args_bind_server(const char *fname, const char *const names[], size_t n, const value *args,
                        const value *kwds, value *out[]);

/* Python's bool(v) for plain values (opaque objects are true). */
bool v_truth(const value *v);

/* A timeout parameter as queue.py reads it: NULL or None -> -1 (forever); NaN -> -1 too
   (queue.py's `remaining <= 0` never holds, so it waits until woken); an int or float >= 0
   -> seconds, possibly past TIMEOUT_MAX (see arg_timeout_wait). Returns NULL or a new
   exception: ValueError("'timeout' must be a non-negative number") or TypeError for other
   kinds. */
value *arg_timeout(const value *v, double *seconds);
/* _thread.TIMEOUT_MAX: a longer wait cannot be expressed in PyTime_t nanoseconds */
#define TIMEOUT_MAX 9223372036.0
/* When a queue must wait `seconds` (from arg_timeout): NULL, or the OverflowError that
   queue.py's Condition.wait(remaining) raises past TIMEOUT_MAX (remaining is a float). */
value *arg_timeout_wait(double seconds);

/* An int parameter (bool counts, as in Python). Returns NULL or a new TypeError
   "'<what>' object cannot be interpreted as an integer". */
value *arg_int(const value *v, int64_t *out);

/* CPython's C methods (list.append, dict.get, slot wrappers such as __len__) check their
   arguments in other words than a def does; these say what each kind says. fname is the
   qualified name ("list.append"); each returns NULL (out[] filled with borrowed values, NULL
   where not given) or a new TypeError. kwds may be NULL. */
/* METH_NOARGS: "list.clear() takes no arguments (1 given)". */
value *args_noargs(const char *fname, const value *args, const value *kwds);
/* METH_O: "list.append() takes exactly one argument (0 given)"; *out gets the argument. */
value *args_one(const char *fname, const value *args, const value *kwds, value **out);
/* Positional-only, min to max of them (out, unless NULL, has room for max): "pop expected
   at most 1 argument, got 2"; keywords, unless kw_ok: "list.pop() takes no keyword
   arguments". */
value *args_positional(const char *fname, size_t min, size_t max, bool kw_ok, const value *args, const value *kwds,
                       value *out[]);
/* A slot wrapper taking exactly n: "expected 1 argument, got 0" (" expected 2 arguments,
   got 1" with a leading space for the wrappers that unpack: __setitem__, __mul__, ...);
   keywords: "wrapper __len__() takes no keyword arguments". */
value *args_slot(const char *slot, size_t n, bool unpack, const value *args, const value *kwds, value *out[]);

/* True when exc is args_bind's "missing ... required positional argument" TypeError (a
   constructor that lacks two arguments names both, as Python does, where args_bind names
   the first). */
bool args_missing(const value *exc);

#endif
