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

/* Python's bool(v) for plain values (opaque objects are true). */
bool v_truth(const value *v);

/* A timeout parameter as Python's blocking calls read it: NULL or None -> -1 (forever);
   an int or float >= 0 -> seconds. Returns NULL or a new exception: ValueError("'timeout'
   must be a non-negative number") or TypeError for other kinds. */
value *arg_timeout(const value *v, double *seconds);

/* An int parameter (bool counts, as in Python). Returns NULL or a new TypeError
   "'<what>' object cannot be interpreted as an integer". */
value *arg_int(const value *v, int64_t *out);

#endif
