/* segments.h: the segments SharedMemoryManager clients ask the server to track, unlinked when it stops. */
#ifndef SHMGR_SEGMENTS_H
#define SHMGR_SEGMENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

/* At most this many names are tracked at once; track_segment past it is an error (the
   client's SharedMemory() then unlinks the segment it made and raises). */
#define SEGMENTS_MAX 65536

/* SharedMemoryServer's server methods: track_segment(segment_name), release_segment(
   segment_name), list_segments(). When name is one of them: the reply (a new reference),
   or NULL with *err a new exception for a #TRACEBACK, as CPython's server gives it.
   Otherwise NULL with *err NULL. args is a tuple, kwds a dict; both borrowed. */
value *segments_method(const char *name, const value *args, const value *kwds, value **err);

/* Unlink every tracked segment and forget it, each as release_segment would, logging
   (not raising) what fails: a name whose segment is already gone, or that names none.
   Called when the server stops, whichever way; harmless to call again. */
void segments_unlink_all(void);

/* How many names are tracked (for operators). */
size_t segments_count(void);

#endif
