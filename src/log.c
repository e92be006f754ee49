/* log.c: one-line log messages on stderr: a timestamp (or journald's priority), the level, the message. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int log_level = LOG_INFO;
int log_copy_fd = -1;

static const char *const names[] = {"debug", "info", "warn", "error"};
static const int syslog_priority[] = {7, 6, 4, 3}; /* LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR */

/* True when stderr is the journal's stream (systemd sets JOURNAL_STREAM to its
   "device:inode"): the journal stamps each line itself and reads a "<N>" prefix as the
   line's priority, so that `journalctl -p warning` finds our warnings. */
static bool to_journal(void) {
  static int known = -1;
  if (known < 0) {
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    known = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
            (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
  }
  return known;
}

/* prefix, line and a newline to log_copy_fd, if set, in one write; a failure there is not
   ours to report */
static void copy_line(const char *prefix, const char *line) {
  if (log_copy_fd >= 0) dprintf(log_copy_fd, "%s%s\n", prefix, line);
}

void log_plain(const char *fmt, ...) {
  char line[1400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
  copy_line("", line);
}

void logmsg(int level, const char *fmt, ...) {
  if (level < log_level && !(level == LOG_ERROR && log_copy_fd >= 0)) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (level == LOG_ERROR) copy_line("shmgr: ", line);
  if (level < log_level) return;
  /* one fprintf per line so lines from one process never interleave mid-line */
  if (to_journal()) {
    fprintf(stderr, "<%d>shmgr: %s: %s\n", syslog_priority[level], names[level], line);
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ shmgr: %s: %s\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
          tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level], line);
}

int log_level_named(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

const char *log_level_name(int level) { return level >= LOG_DEBUG && level <= LOG_ERROR ? names[level] : "off"; }
