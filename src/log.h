/* log.h: one-line log messages on stderr, with a level the config can raise. */
#ifndef SHMGR_LOG_H
#define SHMGR_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped; set from the config's log_level. */
extern int log_level;

/* If level >= log_level, write one line to stderr: "<UTC time> shmgr: <level>: <message>",
   or, when stderr is the journal (run by systemd), "<N>shmgr: <level>: <message>" with N
   the syslog priority, since the journal adds the time itself. */
void logmsg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Map "debug", "info", "warn", "error" to a level; -1 for anything else. */
int log_level_named(const char *name);
/* The name of level (LOG_DEBUG .. LOG_ERROR); "off" above them. */
const char *log_level_name(int level);

#endif
