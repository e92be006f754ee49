/* starter.c: what the process that starts shmgr hands it: a key, a pipe to watch, a pipe to say ready on. */
#include "starter.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

static struct {
  int ready_fd;          /* --ready-fd, until starter_ready; -1 when none */
  buf lines;             /* the "listening on" lines kept for it */
  ev_io watch;           /* --watch-fd's descriptor, when watch_on */
  bool watch_on;
  struct ev_loop *loop;
  const char *remove_dir; /* --remove-dir, borrowed */
} S = {.ready_fd = -1};

int starter_fd_arg(const char *text) {
  char *end;
  errno = 0;
  long n = strtol(text, &end, 10);
  if (!*text || *end || errno || n < 0 || n > INT_MAX) return -1;
  return (int)n;
}

bool starter_read_key(int fd, buf *key, char *err, size_t errlen) {
  buf_clear(key);
  char chunk[4096];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buf_put(key, chunk, (size_t)n);
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      snprintf(err, errlen, "--authkey-fd %d: %s", fd, strerror(errno));
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

void starter_set_ready_fd(int fd) {
  signal(SIGPIPE, SIG_IGN); /* a starter gone before reading: an EPIPE, not our death */
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  S.ready_fd = fd;
  log_copy_fd = fd;
}

void starter_listening(const char *name) {
  if (S.ready_fd < 0) fprintf(stderr, "listening on %s\n", name);
  else buf_printf(&S.lines, "listening on %s\n", name);
}

void starter_ready(void) {
  if (S.ready_fd < 0) return;
  for (size_t at = 0; at < S.lines.len;) {
    ssize_t w = write(S.ready_fd, S.lines.data + at, S.lines.len - at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { /* the starter is gone or stopped reading: it will not see us ready; it may stop us */
      logmsg(LOG_WARN, "--ready-fd %d: %s", S.ready_fd, w < 0 ? strerror(errno) : "nothing written");
      break;
    }
    at += (size_t)w;
  }
  close(S.ready_fd);
  S.ready_fd = log_copy_fd = -1;
  buf_free(&S.lines);
}

/* The watched descriptor is readable: its end (or an error: the owner is as gone) stops shmgr. */
static void on_watch(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  char scrap[256];
  ssize_t n = read(w->fd, scrap, sizeof scrap);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return; /* not the end: ignored */
  ev_io_stop(loop, w);
  close(w->fd);
  S.watch_on = false;
  server_stop(n == 0 ? "its owner is gone (--watch-fd closed)" : "its owner is gone (--watch-fd failed)");
}

bool starter_watch(struct ev_loop *loop, int fd, char *err, size_t errlen) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return snprintf(err, errlen, "--watch-fd %d: %s", fd, strerror(errno)), false;
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  S.loop = loop;
  ev_io_init(&S.watch, on_watch, fd, EV_READ);
  ev_io_start(loop, &S.watch);
  S.watch_on = true;
  return true;
}

void starter_set_remove_dir(const char *dir) { S.remove_dir = dir; }

void starter_close(void) {
  if (S.watch_on) {
    ev_io_stop(S.loop, &S.watch);
    close(S.watch.fd);
    S.watch_on = false;
  }
  if (S.ready_fd >= 0) close(S.ready_fd);
  S.ready_fd = log_copy_fd = -1;
  buf_free(&S.lines);
  if (S.remove_dir && rmdir(S.remove_dir) < 0 && errno != ENOENT)
    logmsg(LOG_WARN, "--remove-dir %s: %s", S.remove_dir, strerror(errno));
  S.remove_dir = NULL;
}
