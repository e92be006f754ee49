/* bigcache.c: the last large buffer freed, kept a moment for the next large frame. A fresh
   allocation of tens of megabytes costs the kernel a zeroed page for each 4 KiB the socket's
   data lands in: a third of the server's CPU when a client moves 50 MiB values in a loop.
   One buffer is kept, for a few seconds, and only while the limit has room: a server that is idle
   or short of memory holds none. */
#include "bigcache.h"

#include <ev.h>
#include <malloc.h>
#include <stdlib.h>

#include "alloc.h"
#include "memcount.h"
#include "value.h"

/* Long enough for a client's next large request to come (its own work between two of them
   takes a fraction of a second, more on a loaded machine), short enough that an idle server
   soon gives the memory back. */
#define KEEP_SECONDS 3.0

static void *kept;         /* the kept buffer, or NULL */
static size_t kept_bytes;  /* its usable size */
static struct ev_loop *keep_loop;
static ev_timer keep_timer;

static void on_keep_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  bigcache_drop();
}

void bigcache_start(struct ev_loop *loop) {
  keep_loop = loop;
  ev_timer_init(&keep_timer, on_keep_timer, KEEP_SECONDS, 0.);
  v_block_free = bigcache_free; /* a large value adopted its frame: its block comes back here */
}

void bigcache_stop(void) {
  bigcache_drop();
  keep_loop = NULL;
  v_block_free = free;
}

size_t bigcache_kept(void) { return kept_bytes; }

size_t bigcache_drop(void) {
  size_t n = kept_bytes;
  if (!kept) return 0;
  if (keep_loop) ev_timer_stop(keep_loop, &keep_timer);
  free(kept);
  kept = NULL;
  kept_bytes = 0;
  return n;
}

void *bigcache_alloc(size_t n) {
  if (kept && n >= BIGCACHE_MIN) {
    void *p = kept;
    kept = NULL;
    kept_bytes = 0;
    ev_timer_stop(keep_loop, &keep_timer);
    /* both sizes are past glibc's mmap threshold: realloc is an mremap, which moves no byte
       and keeps the pages it keeps */
    void *q = realloc(p, n);
    if (q) return q;
    free(p);
  }
  return xmalloc(n);
}

void bigcache_free(void *p) {
  if (!p) return;
  size_t n = malloc_usable_size(p), limit = mem_limit();
  /* mem_used() counts p still: kept, the server's memory stays what it is now */
  if (!keep_loop || n < BIGCACHE_MIN || (limit && mem_used() > limit)) {
    free(p);
    return;
  }
  bigcache_drop(); /* the newer one is the likelier size of the next */
  kept = p;
  kept_bytes = n;
  ev_timer_set(&keep_timer, KEEP_SECONDS, 0.);
  ev_timer_start(keep_loop, &keep_timer);
}
