/* memcount.h: how much memory the server holds, and limits.max_memory's verdicts on it. */
#ifndef SHMGR_MEMCOUNT_H
#define SHMGR_MEMCOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

/* Heap bytes in use: every block malloc has handed out and not taken back, the libraries'
   (Lua, SQLite, OpenSSL, expat, libev) as well as shmgr's own, counted as they come and go. */
size_t mem_heap(void);
/* What the server holds: mem_heap() plus the shared memory segments of its Shared* objects,
   less a freed buffer kept for reuse (bigcache.h). This is the figure limits.max_memory bounds. */
size_t mem_used(void);
/* The effective limits.max_memory in bytes; 0 when there is none. */
size_t mem_limit(void);
/* True when a limit is set and the server holds more than it: calls that add data are refused.
   This and mem_fits free a kept buffer when their answer is no. */
bool mem_over(void);
/* Could n more bytes be taken without passing the limit? (Always true without one.) */
bool mem_fits(size_t n);
/* The MemoryError a call that adds data gets while mem_over(): what names the limit (new
   reference). what: the refused call ("put"), or a request's size when what is NULL. */
value *mem_error(const char *what, size_t request_bytes);
/* Is method one of those that add data to an object of this kind (otype->adds)? adds is a
   NULL-terminated list of method names, or NULL for none. */
bool mem_adds(const char *const *adds, const char *method);
/* The default limits.max_memory: half of what this machine (or the cgroup the server runs
   in, when its memory.max is lower) has; 0 when neither can be read. */
size_t mem_default_limit(void);

#endif
