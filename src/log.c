/* log.c: one-line log messages on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int log_level = LOG_INFO;

static const char *const names[] = {"debug", "info", "warn", "error"};

void logmsg(int level, const char *fmt, ...) {
  if (level < log_level) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* one fprintf per line so lines from one process never interleave mid-line */
  fprintf(stderr, "shmgr: %s: %s\n", names[level], line);
}

int log_level_named(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}
