/* alloc.h: allocation with one failure policy: out of memory ends the process, loudly. */
#ifndef SHMGR_ALLOC_H
#define SHMGR_ALLOC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A server that cannot allocate cannot answer anyone correctly: rather than half-serve, it
   says so and stops (a supervisor restarts it). Every allocation in shmgr goes through here
   (Lua's own allocator excepted: it fails softly, per call, under limits.lua_memory). */
static inline void *oom(void) {
  fputs("shmgr: out of memory\n", stderr);
  abort();
}

/* realloc that never returns NULL (n == 0 allocates a minimal block). */
static inline void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  return p ? p : oom();
}

static inline void *xmalloc(size_t n) { return xrealloc(NULL, n); }

/* A size that wraps around: no allocation can be right, and the process ends as it does
   when memory runs out. */
static inline void *size_overflow(void) {
  fputs("shmgr: allocation size overflow\n", stderr);
  abort();
}

/* n * size, refusing sizes that wrap around. */
static inline size_t mul_size(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) size_overflow();
  return n * size;
}

/* Grow an array of *cap elements of `size` bytes so that index `need` fits. */
static inline void *xgrow(void *p, size_t *cap, size_t need, size_t size) {
  if (need < *cap) return p;
  size_t n = *cap ? *cap : 16;
  while (n <= need) {
    if (n > SIZE_MAX / 2 / size) size_overflow();
    n *= 2;
  }
  *cap = n;
  return xrealloc(p, n * size);
}

/* calloc that never returns NULL. */
static inline void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  return p ? p : oom();
}

static inline char *xstrdup(const char *s) {
  char *p = strdup(s);
  return p ? p : oom();
}

#endif
