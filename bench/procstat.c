/* procstat.c: a server process's CPU time and memory, from /proc/PID/stat and status. */
#include "procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* utime and stime, fields 14 and 15 of /proc/PID/stat: counted after the ")" that ends
   the command name, which may itself hold spaces and parentheses. */
static bool read_cpu(pid_t pid, double *secs, double *user) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *p = strrchr(text, ')');
  if (!p) return false;
  unsigned long long ut = 0, st = 0;
  /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return false;
  double tick = (double)sysconf(_SC_CLK_TCK);
  *secs = (double)(ut + st) / tick;
  *user = (double)ut / tick;
  return true;
}

static bool read_mem(pid_t pid, long *rss, long *hwm) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) *rss = atol(line + 6), found++;
    else if (strncmp(line, "VmHWM:", 6) == 0) *hwm = atol(line + 6), found++;
  }
  fclose(f);
  return found == 2;
}

bool procstat_read(pid_t pid, procstat *ps) {
  memset(ps, 0, sizeof *ps);
  if (read_cpu(pid, &ps->cpu_s, &ps->user_s) && read_mem(pid, &ps->rss_kb, &ps->hwm_kb)) return true;
  memset(ps, 0, sizeof *ps);
  return false;
}
