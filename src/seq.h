/* seq.h: Python's sequence protocol over values: type names, indexes and slices
   (what iter() yields is iterargs.h's). */
#ifndef SHMGR_SEQ_H
#define SHMGR_SEQ_H

#include <stdbool.h>
#include <stdint.h>

#include "value.h"

/* The class name Python would print for v: v_typename, except that a proxy names its
   proxy class ("ListProxy"). */
const char *seq_typename(const value *v);

/* True when exc (an exception from v_exception) is of the builtin class name. */
bool seq_is_error(const value *exc, const char *name);

/* An index argument as Py_ssize_t: 0 for an int or bool (*out set), 1 for an int beyond
   64 bits (*out clamped to INT64_MAX or INT64_MIN, as slice bounds clamp), -1 when v is
   no integer at all. */
int seq_index(const value *v, int64_t *out);

/* A slice resolved against a length, as slice.indices(len) with the count of items. */
typedef struct seq_span {
  int64_t start, stop, step, count;
} seq_span;

/* The index of the k-th item a span names, 0 <= k < count (computed afresh each time: a
   running sum would overflow one step past the last item when the step is huge). */
static inline size_t seq_at(const seq_span *s, int64_t k) { return (size_t)(s->start + k * s->step); }

/* True when v is a slice as pickled by clients: builtins.slice(start, stop, step). */
bool seq_is_slice(const value *v);
/* Resolve slice v for a sequence of len items (PySlice_Unpack + PySlice_AdjustIndices).
   Returns NULL, or a new exception: ValueError('slice step cannot be zero'), TypeError for
   a bound that is not an int or None. */
value *seq_slice(const value *v, size_t len, seq_span *out);

#endif
