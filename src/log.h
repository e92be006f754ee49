/* log.h: one-line log messages on stderr, with a level the config can raise. */
#ifndef SHMGR_LOG_H
#define SHMGR_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped; set from the config's log_level. */
extern int log_level;

/* Write "shmgr: <level>: <message>\n" to stderr if level >= log_level. */
void logmsg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Map "debug", "info", "warn", "error" to a level; -1 for anything else. */
int log_level_named(const char *name);

#endif
