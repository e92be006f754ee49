/* metrics.c: the metrics listener: GET /metrics over HTTP (libmicrohttpd), on the server's own loop. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "metrics_page.h"
#include "server.h"
#include "stats.h"

/* HTTP is libmicrohttpd's (Debian's libmicrohttpd-dev): parsing, keep-alive, HEAD, limits
   on headers. It runs in its "external epoll" mode: one epoll descriptor holds its sockets,
   and the loop calls MHD_run when that descriptor is readable or MHD's next deadline comes.
   Each MHD_run does a bounded amount of work: at most CONN_LIMIT connections, and one page
   built whatever number of them asks for it in that run. */
#define CONN_LIMIT 64          /* HTTP connections at once; more wait in the listen backlog */
#define CONN_TIMEOUT 10        /* seconds a connection may stay silent (or half-sent) */
#define CONN_MEMORY (16 * 1024) /* bytes per connection for its request line and headers */

static struct {
  struct MHD_Daemon *d;      /* NULL when not running */
  struct ev_loop *loop;
  ev_io io;                  /* MHD's epoll descriptor is readable */
  ev_timer timer;            /* MHD's next deadline: a silent client, work left over */
  struct MHD_Response *page; /* this run's page, shared by every request in it */
  char addr[128];            /* HOST:PORT as "metrics on" says it */
  char last_error[256];      /* MHD's last message, for start-up errors */
} m;

/* MHD's messages (a client's malformed request, a closed connection) are not ours to
   shout about: kept for a failed start, and logged at debug. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  vsnprintf(m.last_error, sizeof m.last_error, fmt, ap);
  m.last_error[strcspn(m.last_error, "\n")] = 0;
  logmsg(LOG_DEBUG, "metrics: %s", m.last_error);
}

/* The response to GET /metrics of this MHD_run: built at the first request, freed by MHD
   once the last connection queued with it is done (run() drops our reference). */
static struct MHD_Response *page_response(void) {
  if (m.page) return m.page;
  double t0 = stats_clock();
  buf b = {0};
  metrics_page(&b);
  m.page = MHD_create_response_from_buffer_with_free_callback(b.len, b.data, free);
  if (!m.page) {
    free(b.data);
    return NULL;
  }
  MHD_add_response_header(m.page, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  logmsg(LOG_DEBUG, "metrics: page of %zu bytes built in %.3f ms", b.len, (stats_clock() - t0) * 1e3);
  return m.page;
}

/* A short plain-text answer (the 4xx); allow, if not NULL, goes in an Allow header. */
static enum MHD_Result answer(struct MHD_Connection *mc, unsigned status, const char *text, const char *allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result rc = MHD_queue_response(mc, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* Every request. A wrong path or method is answered at the first call (headers read): a
   body is then never read, and MHD closes the connection after the answer. GET and HEAD
   (which MHD answers with GET's headers) wait for the request's end, so that the
   connection can be kept alive for the next scrape. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req_cls) {
  static char begun; /* *req_cls of a request whose first call has been */
  (void)cls, (void)version, (void)upload;
  if (strcmp(url, "/metrics") != 0)
    return answer(mc, MHD_HTTP_NOT_FOUND, "404 not found: shmgr serves GET /metrics only\n", NULL);
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return answer(mc, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed: GET /metrics\n", "GET, HEAD");
  if (!*req_cls) {
    *req_cls = &begun;
    return MHD_YES;
  }
  if (*upload_size) { /* a GET with a body: ignored */
    *upload_size = 0;
    return MHD_YES;
  }
  struct MHD_Response *r = page_response();
  return r ? MHD_queue_response(mc, MHD_HTTP_OK, r) : MHD_NO;
}

/* When MHD next needs a run without an event on its descriptor: a connection's timeout,
   or now (0) when it left ready work for later (its sockets are edge-triggered). */
static void arm(void) {
  MHD_UNSIGNED_LONG_LONG ms = 0;
  ev_timer_stop(m.loop, &m.timer);
  if (MHD_get_timeout(m.d, &ms) != MHD_YES) return;
  ev_timer_set(&m.timer, (double)ms / 1e3, 0.);
  ev_timer_start(m.loop, &m.timer);
}

static void run(void) {
  if (MHD_run(m.d) != MHD_YES) logmsg(LOG_WARN, "metrics: MHD_run failed: %s", m.last_error);
  if (m.page) { /* the connections that queued it keep it until sent */
    MHD_destroy_response(m.page);
    m.page = NULL;
  }
  arm();
}

static void on_ready(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)w, (void)revents;
  run();
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  run();
}

/* A listening TCP socket on addr, its real address in m.addr; -1 after logging why. Ours
   rather than MHD's (MHD_OPTION_SOCK_ADDR): the errors are then the system's own words,
   said as the managers' listeners say them, and port 0 is read back before MHD starts. */
static int listen_on(const char *addr, bool *v6) {
  char host[256], port[16];
  char *end;
  if (!server_split_hostport(addr, host, sizeof host, port, sizeof port) || strtol(port, &end, 10) > 65535) {
    logmsg(LOG_ERROR, "bad metrics_listen '%s': want HOST:PORT, as \"127.0.0.1:9150\" (port 0 picks a free one)", addr);
    return -1;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
  int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (rc) {
    logmsg(LOG_ERROR, "metrics_listen '%s': %s", addr, gai_strerror(rc));
    return -1;
  }
  tcp_name bound;
  int fd = server_tcp_socket(ai, CONN_LIMIT, &bound);
  freeaddrinfo(ai);
  if (fd < 0) {
    logmsg(LOG_ERROR, "cannot serve metrics on %s (metrics_listen): %s", addr, strerror(errno));
    return -1;
  }
  *v6 = bound.v6;
  snprintf(m.addr, sizeof m.addr, "%s", bound.text);
  return fd;
}

bool metrics_start(struct ev_loop *loop, const char *addr) {
  if (m.d) return false;
  bool v6 = false;
  int fd = listen_on(addr, &v6);
  if (fd < 0) return false;
  m.last_error[0] = 0;
  /* the logger first, so that MHD's start-up messages come to us */
  m.d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, on_request, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                         MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                         MHD_OPTION_END);
  const union MHD_DaemonInfo *info = m.d ? MHD_get_daemon_info(m.d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
  if (!info) {
    logmsg(LOG_ERROR, "cannot serve metrics on %s (metrics_listen): libmicrohttpd did not start%s%s", addr,
           m.last_error[0] ? ": " : "", m.last_error);
    if (m.d) MHD_stop_daemon(m.d); /* which closes fd */
    else if (fcntl(fd, F_GETFD) != -1) close(fd); /* unless MHD's failed start did */
    m.d = NULL;
    return false;
  }
  m.loop = loop;
  ev_io_init(&m.io, on_ready, info->epoll_fd, EV_READ);
  ev_timer_init(&m.timer, on_timer, 0., 0.);
  /* within a loop turn, the managers' clients go first */
  ev_set_priority(&m.io, EV_MINPRI);
  ev_set_priority(&m.timer, EV_MINPRI);
  ev_io_start(loop, &m.io);
  arm();
  fprintf(stderr, "metrics on %s\n", m.addr);
  return true;
}

void metrics_stop(void) {
  if (!m.d) return;
  ev_io_stop(m.loop, &m.io);
  ev_timer_stop(m.loop, &m.timer);
  MHD_stop_daemon(m.d); /* closes the listening socket and every connection */
  m.d = NULL;
}
