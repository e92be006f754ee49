/* shm.c: POSIX shared memory for the Shared* objects: this server's segments, and blocks in them. */
#include "alloc.h"
#include "shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Where glibc's shm_open keeps segments: renaming and sweeping them needs the directory. */
#define SHM_DIR "/dev/shm/"
/* Size classes 16 B .. 64 KiB (powers of two) share segments; a larger block gets its own. */
#define MIN_SHIFT 4
#define MAX_SHIFT 16
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
/* A shared segment holds at least 64 KiB and at least 16 blocks: few mappings, little waste. */
#define SLAB_MIN ((size_t)64 << 10)
#define SLAB_BLOCKS 16
/* No block beyond this: a size_t wrap or an absurd request fails as an error, not a crash. */
#define MAX_BLOCK ((size_t)1 << 40)

typedef struct shm_seg {
  char name[64];       /* without the leading '/' */
  uint8_t *base;
  size_t len;
  int cls;             /* size class, or -1: one large block */
  uint32_t nslots;     /* blocks it can hold */
  uint32_t used;       /* blocks handed out */
  uint32_t bump;       /* slots below this have been handed out at least once */
  uint32_t *free;      /* slots given back (a stack of nfree) */
  uint32_t nfree;
  struct shm_seg *prev, *next;
} shm_seg;

static struct {
  shm_seg *segs[NCLASS + 1]; /* per class; the last list holds the large blocks */
  char tag[40];              /* "p" until claimed, then the address's hash (16 hex digits) */
  uint64_t serial;           /* names never repeat within a run */
  bool closed;
  int mode;                  /* permission bits, 0 until set: 0600 */
  shm_figures fig;
} arena;

static shm_seg **list_of(int cls) { return &arena.segs[cls < 0 ? NCLASS : cls]; }

static void link_seg(shm_seg *s) {
  shm_seg **head = list_of(s->cls);
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
}

static void unlink_seg(shm_seg *s) {
  if (s->prev) s->prev->next = s->next;
  else *list_of(s->cls) = s->next;
  if (s->next) s->next->prev = s->prev;
}

/* Segment names are shmgr_<tag>_<pid>_<serial>: the tag tells a server its address's
   segments, the pid keeps a run's names from any earlier run's. */
static const char *tag(void) { return arena.tag[0] ? arena.tag : "p"; }

/* OSError(errno, "...") as Python's OSError(errno, strerror) carries it: a client sees
   the class errno maps to (FileNotFoundError, PermissionError, ...) and "[Errno N] ...". */
static value *os_error(int e, size_t size) { /* size: the segment's */
  char msg[300];
  snprintf(msg, sizeof msg, "%s (a shared memory segment of %zu bytes in %s)", strerror(e), size, SHM_DIR);
  value *args = v_tuple(2);
  args->u.seq.items[0] = v_int(e);
  args->u.seq.items[1] = v_strz(msg);
  return v_exception("builtins", "OSError", args);
}

/* A new segment of len bytes, its pages reserved (posix_fallocate: tmpfs counts them
   now, so a full /dev/shm fails here rather than as a SIGBUS on first touch); NULL with
   *err when the system refuses. */
static shm_seg *seg_new(size_t len, int cls, value **err) {
  shm_seg *s = xcalloc(1, sizeof *s);
  snprintf(s->name, sizeof s->name, "shmgr_%s_%ld_%llu", tag(), (long)getpid(), (unsigned long long)++arena.serial);
  char path[80];
  snprintf(path, sizeof path, "/%s", s->name);
  int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  int e = fd < 0 ? errno : 0;
  if (!e && arena.mode && fchmod(fd, (mode_t)arena.mode) < 0) e = errno; /* the umask does not apply */
  if (!e) e = posix_fallocate(fd, 0, (off_t)len); /* returns the error, errno untouched */
  if (!e) {
    s->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s->base == MAP_FAILED) e = errno;
  }
  if (fd >= 0) close(fd); /* the mapping keeps the memory: no descriptor per segment */
  if (e) {
    if (fd >= 0) shm_unlink(path);
    *err = os_error(e, len);
    logmsg(LOG_WARN, "shared memory: cannot make %s of %zu bytes: %s", path, len, strerror(e));
    free(s);
    return NULL;
  }
  s->len = len;
  s->cls = cls;
  s->nslots = cls < 0 ? 1 : (uint32_t)(len >> (cls + MIN_SHIFT));
  link_seg(s);
  arena.fig.segments++;
  arena.fig.mapped += len;
  return s;
}

static void seg_drop(shm_seg *s) {
  char path[80];
  snprintf(path, sizeof path, "/%s", s->name);
  munmap(s->base, s->len);
  shm_unlink(path);
  unlink_seg(s);
  arena.fig.segments--;
  arena.fig.mapped -= s->len;
  free(s->free);
  free(s);
}

static int class_of(size_t size) {
  int c = 0;
  while (((size_t)1 << (c + MIN_SHIFT)) < size) c++;
  return c < NCLASS ? c : -1;
}

bool shm_alloc(size_t size, shm_block *b, value **err) {
  memset(b, 0, sizeof *b);
  if (size > MAX_BLOCK) {
    *err = os_error(EFBIG, size);
    return false;
  }
  if (!size) size = 1;
  int cls = class_of(size);
  shm_seg *s = NULL;
  uint32_t slot = 0;
  if (cls < 0) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!(s = seg_new((size + page - 1) / page * page, -1, err))) return false;
  } else {
    for (s = *list_of(cls); s && s->used == s->nslots; s = s->next) {}
    if (!s) {
      size_t block = (size_t)1 << (cls + MIN_SHIFT), len = block * SLAB_BLOCKS;
      if (!(s = seg_new(len < SLAB_MIN ? SLAB_MIN : len, cls, err))) return false;
    }
    slot = s->nfree ? s->free[--s->nfree] : s->bump++;
  }
  s->used++;
  b->seg = s;
  b->slot = slot;
  b->size = size;
  b->p = s->base + ((size_t)slot << (cls < 0 ? 0 : cls + MIN_SHIFT));
  memset(b->p, 0, size); /* a reused slot holds its last owner's bytes */
  arena.fig.blocks++;
  arena.fig.used += size;
  return true;
}

/* Whether class cls has an empty segment besides s. */
static bool spare_besides(int cls, const shm_seg *s) {
  for (const shm_seg *t = *list_of(cls); t; t = t->next)
    if (t != s && !t->used) return true;
  return false;
}

void shm_free(shm_block *b) {
  shm_seg *s = b->seg;
  if (!s || arena.closed) { /* never allocated, or the server is past shm_close */
    memset(b, 0, sizeof *b);
    return;
  }
  arena.fig.blocks--;
  arena.fig.used -= b->size;
  s->used--;
  if (s->cls >= 0) {
    if (!s->free) s->free = xmalloc(sizeof *s->free * s->nslots);
    s->free[s->nfree++] = b->slot;
  }
  /* a large block's segment goes at once; a class keeps one empty segment, so that an
     object made and freed in a loop does not make and unlink a segment each time */
  if (!s->used && (s->cls < 0 || spare_besides(s->cls, s))) seg_drop(s);
  memset(b, 0, sizeof *b);
}

const char *shm_name(const shm_block *b) { return b->seg->name; }

size_t shm_offset(const shm_block *b) { return (size_t)(b->p - b->seg->base); }

void shm_set_mode(int mode) {
  arena.mode = mode;
  for (int c = 0; c <= NCLASS; c++)
    for (const shm_seg *s = arena.segs[c]; s; s = s->next) {
      char path[80];
      snprintf(path, sizeof path, SHM_DIR "%s", s->name);
      if (chmod(path, (mode_t)mode) < 0) logmsg(LOG_WARN, "shared memory: cannot chmod %s: %s", path, strerror(errno));
    }
}

/* FNV-1a, 64 bits: the address as a name part (any characters, fixed length). */
static uint64_t hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

/* Whether the segment name is shmgr_p_<pid>_N (made while a config ran, before its server
   listened: it had no address yet) for a pid that no longer runs. */
static bool orphan_of_dead_pid(const char *name) {
  if (strncmp(name, "shmgr_p_", 8) != 0) return false;
  char *end;
  long pid = strtol(name + 8, &end, 10);
  return end != name + 8 && *end == '_' && pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 &&
         errno == ESRCH;
}

static bool ours(const char *name) {
  for (int c = 0; c <= NCLASS; c++)
    for (const shm_seg *s = arena.segs[c]; s; s = s->next)
      if (strcmp(s->name, name) == 0) return true;
  return false;
}

void shm_claim(const char *address) {
  char prefix[48];
  snprintf(arena.tag, sizeof arena.tag, "%016llx", (unsigned long long)hash(address));
  snprintf(prefix, sizeof prefix, "shmgr_%s_", arena.tag);
  /* segments made while the config ran (before any client could learn a name) take the
     address's name, so that a crash from now on leaves only names the next server sweeps */
  for (int c = 0; c <= NCLASS; c++)
    for (shm_seg *s = arena.segs[c]; s; s = s->next) {
      char old[80], now[80], name[64];
      snprintf(name, sizeof name, "shmgr_%s_%ld_%llu", arena.tag, (long)getpid(), (unsigned long long)++arena.serial);
      snprintf(old, sizeof old, SHM_DIR "%s", s->name);
      snprintf(now, sizeof now, SHM_DIR "%s", name);
      if (rename(old, now) == 0) memcpy(s->name, name, sizeof name);
      else logmsg(LOG_WARN, "shared memory: cannot rename %s: %s", old, strerror(errno));
    }
  DIR *d = opendir(SHM_DIR);
  if (!d) return; /* no /dev/shm: nothing to sweep, and shm_alloc will say why */
  size_t swept = 0;
  for (struct dirent *e; (e = readdir(d));) {
    bool left = strncmp(e->d_name, prefix, strlen(prefix)) == 0 && !ours(e->d_name);
    if (!left && !orphan_of_dead_pid(e->d_name)) continue;
    char path[300];
    snprintf(path, sizeof path, "/%s", e->d_name);
    if (shm_unlink(path) == 0) swept++;
  }
  closedir(d);
  if (swept)
    logmsg(LOG_WARN, "shared memory: unlinked %zu segment%s left by an earlier server on %s", swept,
           swept == 1 ? "" : "s", address);
}

void shm_close(void) {
  for (int c = 0; c <= NCLASS; c++)
    while (arena.segs[c]) seg_drop(arena.segs[c]);
  arena.closed = true;
}

shm_figures shm_stats(void) { return arena.fig; }
