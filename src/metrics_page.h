/* metrics_page.h: the /metrics page: the operators' figures in Prometheus' text format. */
#ifndef SHMGR_METRICS_PAGE_H
#define SHMGR_METRICS_PAGE_H

#include "buf.h"

/* Append to out (the caller's) the page GET /metrics answers: every shmgr_ metric with its
   # HELP and # TYPE lines, in Prometheus' text exposition format 0.0.4, from the figures as
   they are now (the_stats, connections, objects, named queues, the store, memory). It
   changes nothing a client could see, and takes time linear in the connections, objects
   and counted (typeid, method) pairs. */
void metrics_page(buf *out);

#endif
