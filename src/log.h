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

/* While >= 0, each error line (LOG_ERROR, whatever log_level says, and log_plain's lines) is
   also written to this descriptor, bare (no time, no level): the --ready-fd pipe until shmgr
   is ready, so that whoever started it reads why it did not start (starter.c sets it). */
extern int log_copy_fd;
/* Write one line as it is on stderr (a command-line or config error at start, before the
   log's format applies), and to log_copy_fd. */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Map "debug", "info", "warn", "error" to a level; -1 for anything else. */
int log_level_named(const char *name);
/* The name of level (LOG_DEBUG .. LOG_ERROR); "off" above them. */
const char *log_level_name(int level);

#endif
