/* memcount.c: how much memory the server holds, and limits.max_memory's verdicts on it. */
#include "memcount.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bigcache.h"
#include "server.h"
#include "shm.h"

/* The heap figure. A count kept beside every allocation is exact and costs a few cycles,
   where asking the allocator (mallinfo2) walks its free lists, and the resident size lags
   behind frees and counts pages never written. Counting in shmgr's own wrappers would miss
   what Lua, SQLite, OpenSSL and expat allocate: so the allocator's entry points themselves
   are wrapped (glibc documents replacing them, "Replacing malloc"), each forwarding to
   glibc's own (__libc_malloc, ...) and adding or taking away the block's usable size.
   Under AddressSanitizer, which owns the allocator, its own figure is used instead. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

#ifdef SANITIZED
#include <sanitizer/allocator_interface.h>

size_t mem_heap(void) { return __sanitizer_get_current_allocated_bytes(); }

#else
/* glibc's allocator, under the names it exports for allocators that wrap it */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

/* atomic although shmgr runs one thread: a library may start one of its own */
static _Atomic size_t heap;

static void *counted(void *p) {
  if (p) atomic_fetch_add_explicit(&heap, malloc_usable_size(p), memory_order_relaxed);
  return p;
}

static void uncount(void *p) {
  if (p) atomic_fetch_sub_explicit(&heap, malloc_usable_size(p), memory_order_relaxed);
}

size_t mem_heap(void) { return atomic_load_explicit(&heap, memory_order_relaxed); }

/* Every entry point that hands out or takes back a block is here: one left to glibc would
   hand out blocks uncounted that free() then takes away. */
void *malloc(size_t n) { return counted(__libc_malloc(n)); }

void free(void *p) {
  uncount(p);
  __libc_free(p);
}

void *calloc(size_t n, size_t size) { return counted(__libc_calloc(n, size)); }

void *realloc(void *p, size_t n) {
  size_t old = p ? malloc_usable_size(p) : 0;
  void *q = __libc_realloc(p, n);
  if (!q && n && p) return NULL; /* failed: p is as it was */
  atomic_fetch_sub_explicit(&heap, old, memory_order_relaxed); /* moved, resized or (n == 0) freed */
  return counted(q);
}

void *reallocarray(void *p, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n * size);
}

void *memalign(size_t align, size_t n) { return counted(__libc_memalign(align, n)); }

void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

int posix_memalign(void **out, size_t align, size_t n) {
  if (align % sizeof(void *) || (align & (align - 1))) return EINVAL;
  void *p = memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }

void *pvalloc(size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (n > SIZE_MAX - page) {
    errno = ENOMEM;
    return NULL;
  }
  return memalign(page, (n + page - 1) / page * page);
}
#endif

size_t mem_used(void) {
  size_t in_heap = mem_heap(), kept = bigcache_kept();
  return (in_heap > kept ? in_heap - kept : 0) + shm_stats().mapped;
}

size_t mem_limit(void) { return the_server.cfg ? the_server.cfg->max_memory : 0; }

/* Both verdicts give a kept buffer back when they refuse: mem_used() leaves it out already,
   but it is resident, and short of room the server keeps nothing it does not hold. */
bool mem_over(void) {
  size_t limit = mem_limit();
  bool over = limit && mem_used() > limit;
  if (over) bigcache_drop();
  return over;
}

bool mem_fits(size_t n) {
  size_t limit = mem_limit(), used = mem_used();
  bool fits = !limit || (used <= limit && n <= limit - used);
  if (!fits) bigcache_drop();
  return fits;
}

value *mem_error(const char *what, size_t request_bytes) {
  size_t limit = mem_limit(), used = mem_used();
  if (what)
    return v_exception_fmt("builtins", "MemoryError",
                           "%s refused: the server holds %zu bytes, more than limits.max_memory (%zu bytes); "
                           "calls that read or remove still work",
                           what, used, limit);
  return v_exception_fmt("builtins", "MemoryError",
                         "a request of %zu bytes refused: it does not fit under limits.max_memory (%zu bytes; "
                         "the server holds %zu)",
                         request_bytes, limit, used);
}

bool mem_adds(const char *const *adds, const char *method) {
  for (; adds && *adds; adds++)
    if (strcmp(*adds, method) == 0) return true;
  return false;
}

/* A cgroup v2 memory.max in bytes, or 0 ("max", or no cgroup v2). */
static uint64_t cgroup_max(void) {
  FILE *f = fopen("/proc/self/cgroup", "r");
  if (!f) return 0;
  char line[4096], path[4200] = "";
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "0::", 3) != 0) continue; /* the v2 hierarchy's line */
    line[strcspn(line, "\n")] = 0;
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
  }
  fclose(f);
  uint64_t max = 0;
  if (path[0] && (f = fopen(path, "r"))) {
    if (fscanf(f, "%" SCNu64, &max) != 1) max = 0;
    fclose(f);
  }
  return max;
}

size_t mem_default_limit(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  uint64_t total = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0, cg = cgroup_max();
  if (cg && (!total || cg < total)) total = cg;
  total /= 2;
  return total > SIZE_MAX ? SIZE_MAX : (size_t)total;
}
