/* bigcache.h: the last large buffer freed, kept a moment so that the next large frame is read
   into pages already in memory. */
#ifndef SHMGR_BIGCACHE_H
#define SHMGR_BIGCACHE_H

#include <stddef.h>

struct ev_loop;

/* Buffers of at least this many bytes are kept: glibc always gives blocks this large back to
   the kernel when they are freed (smaller ones it keeps and reuses itself). */
#define BIGCACHE_MIN ((size_t)32 << 20)

/* Start keeping buffers, each for at most a few seconds, on loop. Until then bigcache_free frees. */
void bigcache_start(struct ev_loop *loop);
/* Give back the kept buffer and keep none from now on: the loop has stopped, and what the
   teardown frees after it must go back to the system, not into a cache no timer empties. */
void bigcache_stop(void);
/* A block of at least n bytes, the caller's to free (with bigcache_free or free): for n of
   BIGCACHE_MIN and more, the kept buffer resized to n when there is one (its pages stay in
   memory), else a new allocation. Out of memory ends the process, as xmalloc does. */
void *bigcache_alloc(size_t n);
/* Free p (which may be NULL), or keep it, if it is a block of BIGCACHE_MIN bytes or more and
   keeping it stays under limits.max_memory; a buffer kept before goes then. */
void bigcache_free(void *p);
/* Free the kept buffer now, if there is one; the bytes freed. */
size_t bigcache_drop(void);
/* The usable bytes of the kept buffer (0 when none). memcount.c leaves them out of what the
   server holds: they are free memory, given back as soon as anything needs the room. */
size_t bigcache_kept(void);

#endif
