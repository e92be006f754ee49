/* segments.c: the segments SharedMemoryManager clients ask the server to track, unlinked when it stops. */
#include "segments.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "args.h"
#include "buf.h"
#include "log.h"

/* The names as clients sent them, in order: CPython's _SharedMemoryTracker keeps a list of
   whatever track_segment was given (any value, duplicates too), and list.remove and
   list_segments show that, so this keeps values, not C strings. */
static value **names;
static size_t count, cap;

size_t segments_count(void) { return count; }

/* Why a segment was not unlinked: the Python exception CPython's server raises there, as
   its class and str() (for the log), and for an OSError its errno and filename (the
   exception a client gets is OSError(errno, strerror, filename), which conn.c prints as
   Python does: the subclass the errno makes, "[Errno N] text: 'filename'"). */
typedef struct failure {
  const char *cls;
  buf msg;
  int err;         /* 0 unless an OSError */
  value *filename; /* with err, unless NULL: owned */
} failure;

static void failure_free(failure *f) {
  buf_free(&f->msg);
  if (f->filename) v_decref(f->filename);
}

static void fail_msg(failure *f, const char *cls, const char *msg) {
  f->cls = cls;
  buf_str(&f->msg, msg);
}

/* OSError as _posixshmem raises it: the subclass errno picks (for the log), "[Errno N]
   text: 'filename'". */
static void fail_errno(failure *f, int e, const value *filename) {
  f->err = e;
  f->filename = v_incref((value *)filename);
  f->cls = v_os_error_class(e);
  buf_printf(&f->msg, "[Errno %d] %s: ", e, strerror(e));
  v_repr(&f->msg, filename);
}

/* str.encode('utf-8') of the path fails on a lone surrogate (shmgr's strings keep them, as
   pickle's surrogatepass does): the first run of them, with character positions. */
static bool surrogates(const value *path, failure *f) {
  const uint8_t *s = (const uint8_t *)path->u.s.data;
  size_t n = path->u.s.len, chars = 0, first = 0, run = 0;
  unsigned cp = 0;
  for (size_t i = 0; i < n; i++) {
    if ((s[i] & 0xc0) == 0x80) continue;
    bool sur = s[i] == 0xed && i + 2 < n && s[i + 1] >= 0xa0;
    if (sur && !run) first = chars, cp = 0xd000u | (s[i + 1] & 0x3fu) << 6 | (s[i + 2] & 0x3fu);
    if (sur) run++;
    else if (run) break;
    chars++;
  }
  if (!run) return false;
  f->cls = "UnicodeEncodeError";
  if (run == 1)
    buf_printf(&f->msg, "'utf-8' codec can't encode character '\\u%04x' in position %zu: surrogates not allowed", cp, first);
  else
    buf_printf(&f->msg, "'utf-8' codec can't encode characters in position %zu-%zu: surrogates not allowed", first,
               first + run - 1);
  return true;
}

/* glibc's own rule for a POSIX shared memory name, checked here too so that safety does
   not rest on one libc's version: leading slashes dropped, the rest one path component
   that is not empty, "." or "..". (glibc 2.36's shm_unlink lets "/.." through to unlink().) */
static bool valid_shm_name(const char *p) {
  while (*p == '/') p++;
  return *p && !strchr(p, '/') && strcmp(p, ".") != 0 && strcmp(p, "..") != 0;
}

/* Open, check and unlink the segment at cpath ("/" + name, NUL-free): true when unlinked. */
static bool unlink_path(const char *cpath, const value *path, failure *f) {
  if (!valid_shm_name(cpath)) {
    fail_errno(f, EINVAL, path);
    return false;
  }
  /* shmgr's own segments (shm.c: shmgr_<address>_<pid>_<n>, this server's or another's)
     share the namespace; a stock client never tracks one (its names are psm_...), and
     unlinking one would cut the Shared* objects in it off from every process mapping
     them by name */
  if (strncmp(cpath + strspn(cpath, "/"), "shmgr_", 6) == 0) {
    fail_errno(f, EPERM, path);
    return false;
  }
  struct stat st;
  int fd = shm_open(cpath, O_RDWR, 0600);
  if (fd < 0 || fstat(fd, &st) < 0) {
    fail_errno(f, errno, path);
  } else if (!S_ISREG(st.st_mode)) {
    /* CPython's mmap fails on it and its SharedMemory then unlinks it: shmgr leaves
       what is not a segment alone */
    f->cls = "OSError";
    f->err = EINVAL; /* no filename: mmap's error */
    buf_printf(&f->msg, "[Errno %d] %s", EINVAL, strerror(EINVAL));
  } else if (st.st_size == 0) {
    fail_msg(f, "ValueError", "cannot mmap an empty file"); /* and, as in CPython, not unlinked */
  } else if (shm_unlink(cpath) < 0) {
    fail_errno(f, errno, path);
  } else {
    close(fd);
    return true;
  }
  if (fd >= 0) close(fd);
  return false;
}

/* What CPython's _SharedMemoryTracker.destroy_segment does once the name is off the list:
   SharedMemory(name) (shm_open of "/" + name, read-write, no following links), close,
   unlink; so a name is unlinked only if it opens as a segment. true when unlinked; else
   false with f filled as CPython's server would raise. */
static bool destroy(const value *name, failure *f) {
  if (name->kind == VK_NONE) {
    fail_msg(f, "ValueError", "'name' can only be None if create=True");
    return false;
  }
  if (name->kind != VK_STR) {
    f->cls = "TypeError";
    buf_printf(&f->msg, "can only concatenate str (not \"%s\") to str", v_typename(name));
    return false;
  }
  buf p = {0};
  buf_byte(&p, '/');
  buf_put(&p, name->u.s.data, name->u.s.len);
  value *path = v_str((const char *)p.data, p.len); /* the filename in messages, as Python has it */
  buf_byte(&p, 0);
  bool ok = false;
  if (!surrogates(path, f)) { /* Python encodes first, then looks for a NUL */
    if (strlen((const char *)p.data) != path->u.s.len) fail_msg(f, "ValueError", "embedded null character");
    else ok = unlink_path((const char *)p.data, path, f);
  }
  v_decref(path);
  buf_free(&p);
  return ok;
}

/* Remove names[i], handing its reference to the caller. */
static value *take(size_t i) {
  value *v = names[i];
  memmove(names + i, names + i + 1, (count - i - 1) * sizeof *names);
  count--;
  if (!count) {
    free(names);
    names = NULL;
    cap = 0;
  }
  return v;
}

static value *track(const value *name, value **err) {
  if (count >= SEGMENTS_MAX) {
    char msg[120];
    snprintf(msg, sizeof msg, "shmgr tracks at most %d segments: release_segment some first", SEGMENTS_MAX);
    *err = v_exception_msg("MemoryError", msg);
    return NULL;
  }
  if (count == cap) {
    cap = cap ? cap * 2 : 16;
    names = xrealloc(names, cap * sizeof *names);
  }
  names[count++] = v_incref((value *)name);
  return v_none();
}

/* The exception a client gets for f. */
static value *exception(const failure *f) {
  if (!f->err) return v_exception_msg(f->cls, f->msg.len ? (const char *)f->msg.data : "");
  value *args = v_tuple(f->filename ? 3 : 2);
  args->u.seq.items[0] = v_int(f->err);
  args->u.seq.items[1] = v_strz(strerror(f->err));
  if (f->filename) args->u.seq.items[2] = v_incref(f->filename);
  return v_exception("builtins", "OSError", args);
}

static value *release(const value *name, value **err) {
  size_t i = 0;
  while (i < count && !v_eq(names[i], name)) i++;
  if (i == count) {
    *err = v_exception_msg("ValueError", "list.remove(x): x not in list");
    return NULL;
  }
  value *v = take(i);
  failure f = {0};
  if (!destroy(name, &f)) { /* the name given, as CPython does: True releases a tracked 1 */
    buf_byte(&f.msg, 0);
    *err = exception(&f);
  }
  failure_free(&f);
  v_decref(v);
  return *err ? NULL : v_none();
}

static value *list(void) {
  value *l = v_list(count);
  for (size_t i = 0; i < count; i++) list_append(l, v_incref(names[i]));
  return l;
}

/* args_bind for a method of CPython's SharedMemoryServer: two implicit parameters (self and
   the connection) count in its "takes N positional arguments" message, where args_bind
   counts one. Every parameter is required. */
static value *bind(const char *fname, const char *const pnames[], size_t n, const value *args, const value *kwds,
                   value *out[]) {
  size_t npos = args->u.seq.len;
  if (npos <= n) return args_bind(fname, pnames, n, n, args, kwds, out);
  value *head = v_tuple(n); /* keywords are checked before the count, as CPython does */
  for (size_t i = 0; i < n; i++) head->u.seq.items[i] = v_incref(args->u.seq.items[i]);
  value *e = args_bind(fname, pnames, n, n, head, kwds, out);
  v_decref(head); /* out[] stays valid: args holds the same items */
  if (e) return e;
  char msg[160];
  snprintf(msg, sizeof msg, "%s() takes %zu positional arguments but %zu were given", fname, n + 2, npos + 2);
  return v_exception_msg("TypeError", msg);
}

value *segments_method(const char *name, const value *args, const value *kwds, value **err) {
  static const char *const one[] = {"segment_name"};
  value *a[1] = {0};
  *err = NULL;
  if (strcmp(name, "track_segment") == 0) {
    if ((*err = bind("SharedMemoryServer.track_segment", one, 1, args, kwds, a))) return NULL;
    return track(a[0], err);
  }
  if (strcmp(name, "release_segment") == 0) {
    if ((*err = bind("SharedMemoryServer.release_segment", one, 1, args, kwds, a))) return NULL;
    return release(a[0], err);
  }
  if (strcmp(name, "list_segments") == 0) {
    if ((*err = bind("SharedMemoryServer.list_segments", one, 0, args, kwds, a))) return NULL;
    return list();
  }
  return NULL;
}

/* Names whose failure a stop logs one by one; a client that tracked 65,536 made-up names
   gets one line for the rest. */
#define UNLINK_FAILURES_LOGGED 20

void segments_unlink_all(void) {
  if (!count) return;
  value **all = names; /* taken whole: one pass, in the order they were tracked */
  size_t n = count;
  names = NULL;
  count = cap = 0;
  logmsg(LOG_INFO, "unlinking %zu tracked shared memory segment%s", n, n == 1 ? "" : "s");
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    failure f = {0};
    if (!destroy(all[i], &f) && ++failed <= UNLINK_FAILURES_LOGGED) {
      /* CPython's server stops at the first failure, leaves the rest linked and goes on
         serving; a stopping server unlinks what it can and says what it could not */
      buf text = {0};
      v_repr(&text, all[i]);
      logmsg(strcmp(f.cls, "FileNotFoundError") == 0 ? LOG_INFO : LOG_WARN, "tracked segment %.*s%s not unlinked: %s: %.*s",
             text.len > 200 ? 200 : (int)text.len, (const char *)text.data, text.len > 200 ? "..." : "", f.cls,
             f.msg.len > 300 ? 300 : (int)f.msg.len, (const char *)f.msg.data);
      buf_free(&text);
    }
    failure_free(&f);
    v_decref(all[i]);
  }
  if (failed > UNLINK_FAILURES_LOGGED)
    logmsg(LOG_WARN, "%zu more tracked segments not unlinked", failed - UNLINK_FAILURES_LOGGED);
  free(all);
}
