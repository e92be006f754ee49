/* metrics.h: the metrics listener: GET /metrics over HTTP (libmicrohttpd), on the server's own loop. */
#ifndef SHMGR_METRICS_H
#define SHMGR_METRICS_H

#include <ev.h>
#include <stdbool.h>

/* Serve GET /metrics (metrics_page.h) on addr, "HOST:PORT" (HOST an IPv4 or bracketed IPv6
   literal or a name; port 0 picks a free one), with libmicrohttpd driven by loop (borrowed,
   outliving metrics_stop): no thread of its own. Prints "metrics on HOST:PORT" (the real
   address) on stderr. Returns false, having logged why and opened nothing, when addr is
   malformed, does not resolve or cannot be bound. At most one listener at a time. */
bool metrics_start(struct ev_loop *loop, const char *addr);
/* Close the listener and every HTTP connection, and free what metrics_start made. Does
   nothing when none is running. */
void metrics_stop(void);

#endif
