/* procstat.h: what a server process has used, read from /proc: CPU time and memory. */
#ifndef BENCH_PROCSTAT_H
#define BENCH_PROCSTAT_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct procstat {
  double cpu_s;  /* user + system time of all its threads, dead ones included, in seconds */
  double user_s; /* of which user time: the server's own code, not the kernel's */
  long rss_kb;   /* resident set now (VmRSS) */
  long hwm_kb;   /* peak resident set (VmHWM) */
} procstat;

/* Read pid's figures into *ps; false (with *ps zeroed) when the process is gone or /proc
   cannot be read. CPU time has the kernel's clock-tick resolution (usually 10 ms). */
bool procstat_read(pid_t pid, procstat *ps);

#endif
