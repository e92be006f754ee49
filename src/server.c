/* server.c: the event loop, the listeners (TCP and Unix), accept, and shutdown. */
#include "alloc.h"
#include "server.h"
#include "shm.h"
#include "starter.h"
#include "stats.h"
#include "turn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "authlimit.h"
#include "bigcache.h"
#include "conn.h"
#include "iterargs.h"
#include "log.h"
#include "metrics.h"
#include "objects.h"
#include "pickle.h"
#include "reload.h"
#include "segments.h"
#include "wait.h"

server the_server;

bool server_split_hostport(const char *addr, char *host, size_t hostlen, char *port, size_t portlen) {
  const char *colon = strrchr(addr, ':');
  if (!colon || !colon[1]) return false;
  size_t hl = (size_t)(colon - addr);
  const char *h = addr;
  if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') h++, hl -= 2;
  if (hl >= hostlen || strlen(colon + 1) >= portlen) return false;
  memcpy(host, h, hl);
  host[hl] = 0;
  strcpy(port, colon + 1);
  for (const char *p = port; *p; p++)
    if (*p < '0' || *p > '9') return false;
  return true;
}

/* An open file kept in reserve: out of descriptors, accept() fails and the pending connection
   stays queued, so the listener stays readable and the loop would spin. Giving the spare back
   lets us take that connection, tell it why, and close it. */
static int spare_fd = -1;

static void reserve_spare(void) {
  if (spare_fd < 0) spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Say why, at most once a second (a flood must not flood the log too). */
static void warn_turned_away(const char *why) {
  static ev_tstamp last;
  static unsigned long count;
  count++;
  if (ev_now(the_server.loop) - last < 1.0) return;
  last = ev_now(the_server.loop);
  logmsg(LOG_WARN, "turning connections away: %s (%lu so far)", why, count);
}

/* Refuse a connection with a message in place of the challenge: Python clients expect a
   challenge and raise an error that shows what they got instead. */
static void turn_away(int fd, turned_away reason, const char *why) {
  the_stats.turned_away[reason]++;
  if (reason == TA_MAX_CONNECTIONS) the_stats.limits[LIM_MAX_CONNECTIONS]++;
  if (reason == TA_AUTH_FAILURES) the_stats.limits[LIM_MAX_AUTH_FAILURES]++;
  char text[200];
  int n = snprintf(text, sizeof text, "shmgr: %s; try again later", why);
  uint8_t frame[4 + sizeof text];
  frame[0] = 0, frame[1] = 0, frame[2] = 0, frame[3] = (uint8_t)n;
  memcpy(frame + 4, text, (size_t)n);
  ssize_t w = send(fd, frame, 4 + (size_t)n, MSG_NOSIGNAL); /* a fresh socket takes it whole */
  (void)w;
  close(fd);
  warn_turned_away(why);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  listener *l = (listener *)w;
  for (int i = 0; i < 64; i++) { /* a burst per wake-up, then let others run */
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    int fd = accept4(l->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
      close(spare_fd);
      spare_fd = -1;
      fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) turn_away(fd, TA_NO_FDS, "out of file descriptors (raise ulimit -n, or lower limits.max_connections)");
      reserve_spare();
      continue;
    }
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        logmsg(LOG_WARN, "accept: %s", strerror(errno));
      return;
    }
    if (the_server.nconns >= the_server.cfg->max_connections) {
      turn_away(fd, TA_MAX_CONNECTIONS, "too many connections (limits.max_connections)");
      continue;
    }
    char peer[80] = "unix";
    bool tcp = sa.ss_family == AF_INET || sa.ss_family == AF_INET6;
    if (tcp) {
      char host[INET6_ADDRSTRLEN], port[8];
      getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV);
      snprintf(peer, sizeof peer, "%s:%s", host, port);
      if (authlimit_blocked(host, ev_now(loop), the_server.cfg->max_auth_failures)) {
        turn_away(fd, TA_AUTH_FAILURES, "too many failed handshakes from this address (limits.max_auth_failures)");
        continue;
      }
      int one = 1;
      /* Python clients write header and body separately; answer without Nagle delays */
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    conn_open(fd, peer, tcp);
  }
}

static bool is_loopback(const struct addrinfo *ai) {
  if (ai->ai_family == AF_INET)
    return (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
  if (ai->ai_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
  return false;
}

int server_tcp_socket(const struct addrinfo *ai, int backlog, tcp_name *name) {
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  struct sockaddr_storage sa;
  socklen_t salen = sizeof sa;
  char p[NI_MAXSERV] = "?";
  snprintf(name->host, sizeof name->host, "?");
  if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
    getnameinfo((struct sockaddr *)&sa, salen, name->host, sizeof name->host, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV);
  name->port = atoi(p);
  name->v6 = sa.ss_family == AF_INET6;
  snprintf(name->text, sizeof name->text, name->v6 ? "[%s]:%s" : "%s:%s", name->host, p);
  return fd;
}

static int listen_tcp(const char *addr, listener *l, value **address) {
  char host[256], port[16];
  if (!server_split_hostport(addr, host, sizeof host, port, sizeof port)) {
    logmsg(LOG_ERROR, "bad listen address '%s' (want HOST:PORT or unix:PATH)", addr);
    return -1;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  struct addrinfo *ai;
  int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (rc) {
    logmsg(LOG_ERROR, "listen address '%s': %s", addr, gai_strerror(rc));
    return -1;
  }
  if (!the_server.cfg->have_key && !is_loopback(ai)) {
    logmsg(LOG_ERROR, "refusing to listen on non-loopback address '%s' without an authkey: "
           "set SHMGR_AUTHKEY or authkey/authkey_file in the config", addr);
    freeaddrinfo(ai);
    return -1;
  }
  tcp_name bound;
  int fd = server_tcp_socket(ai, 1024, &bound);
  if (fd < 0) {
    logmsg(LOG_ERROR, "cannot listen on %s: %s", addr, strerror(errno));
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  snprintf(l->name, sizeof l->name, "%s", bound.text);
  if (!*address) { /* Python's Listener.address: (host, port) */
    *address = v_tuple(2);
    (*address)->u.seq.items[0] = v_strz(bound.host);
    (*address)->u.seq.items[1] = v_int(bound.port);
  }
  l->fd = fd;
  l->port = bound.port;
  return 0;
}

/* Whether something accepts connections on the Unix socket sa names. */
static bool socket_answers(const struct sockaddr_un *sa) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool live = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
  if (fd >= 0) close(fd);
  return live;
}

static int listen_unix(const char *path, listener *l, value **address) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (!path[0] || strlen(path) >= sizeof sa.sun_path) {
    logmsg(LOG_ERROR, "bad Unix socket path '%s'", path);
    return -1;
  }
  strcpy(sa.sun_path, path);
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    if (socket_answers(&sa)) { /* a live server's: taking its path would orphan it (and sweep its segments) */
      logmsg(LOG_ERROR, "cannot listen on unix:%s: a running server listens there", path);
      return -1;
    }
    unlink(path); /* a stale socket */
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  mode_t old = umask(0777 & ~(mode_t)the_server.cfg->unix_mode); /* created with the mode, no window */
  int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof sa);
  umask(old);
  if (rc < 0 || chmod(path, (mode_t)the_server.cfg->unix_mode) < 0 || listen(fd, 1024) < 0) {
    logmsg(LOG_ERROR, "cannot listen on unix:%s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  snprintf(l->name, sizeof l->name, "unix:%s", path);
  if (!*address) *address = v_strz(path);
  l->fd = fd;
  l->unix_path = xstrdup(path);
  return 0;
}

/* whether SIGINT is to be ignored: main.c says so for a server with an owner (--watch-fd) */
static bool sigint_ignored(void) {
  struct sigaction sa;
  return sigaction(SIGINT, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop, (void)revents;
  server_stop(w->signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* SIGHUP: read the config again (reload.c), between two requests */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop, (void)w, (void)revents;
  reload_config(the_server.cfg);
}

#define DRAIN_TICK 0.01 /* seconds between two looks at what is left to write */
#define DRAIN_TICKS 200 /* give a peer that does not read 2 s, then stop anyway */

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents, (void)w;
  static int ticks;
  if (conn_any_unflushed() && ++ticks < DRAIN_TICKS) return;
  ev_break(loop, EVBREAK_ALL);
}

/* Each connection is a file descriptor: take all the open files the hard limit allows
   (often 1024 soft against far more hard), so that thousands of clients fit. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = was;
  }
  logmsg(LOG_DEBUG, "open files: up to %llu (connections are limited by this)", (unsigned long long)rl.rlim_cur);
}

void server_apply_settings(const config *cfg) {
  stats_slow_seconds = cfg->slowlog_threshold / 1e3;
  /* an argument evaluated may make as many items as a request may hold, and a few steps for
     each: zip(keys, values) of two lists a request can carry takes 3 steps a pair */
  iterargs_max_steps = cfg->max_objects > SIZE_MAX / 4 ? SIZE_MAX : cfg->max_objects * 4;
}

/* Close the managers' listeners (and unlink their sockets' files). */
static void close_listeners(void) {
  server *s = &the_server;
  for (size_t i = 0; i < s->nls; i++) {
    ev_io_stop(s->loop, &s->ls[i].io);
    close(s->ls[i].fd);
    if (s->ls[i].unix_path) unlink(s->ls[i].unix_path);
    free(s->ls[i].unix_path);
  }
  s->nls = 0;
  v_decref(s->address);
  s->address = NULL;
}

bool server_start(config *cfg) {
  server *s = &the_server;
  raise_fd_limit();
  reserve_spare();
  s->cfg = cfg;
  stats_start();
  server_apply_settings(cfg);
  s->loop = wait_loop = ev_default_loop(EVFLAG_AUTO);
  turn_init(s->loop); /* the store commits once per turn, before the turn's replies go */
  v_release_shared = obj_release; /* stored proxies hold objects (token.c) */
  pickle_on_shared = table_send;  /* and count a reference for whoever receives one */
  signal(SIGPIPE, SIG_IGN); /* a vanished peer is an EPIPE on its connection, not our death */
  signal(SIGXFSZ, SIG_IGN); /* a store past the file size limit is a failed commit, not our death */
  /* before the first "listening on": whoever starts shmgr may stop it as soon as it reads
     that line, and a SIGTERM before the watchers would kill it without its orderly stop */
  ev_signal_init(&s->sigint, on_signal, SIGINT);
  ev_signal_init(&s->sigterm, on_signal, SIGTERM);
  ev_signal_init(&s->sighup, on_sighup, SIGHUP); /* likewise: SIGHUP's default would end shmgr */
  /* a server with an owner ignores SIGINT (main.c), as CPython's manager processes do */
  if (!sigint_ignored())
    ev_signal_start(s->loop, &s->sigint);
  ev_signal_start(s->loop, &s->sigterm);
  ev_signal_start(s->loop, &s->sighup);
  for (size_t i = 0; i < cfg->nlisten; i++) {
    const char *a = cfg->listen[i];
    listener *l = &s->ls[s->nls];
    int rc = strncmp(a, "unix:", 5) == 0 ? listen_unix(a + 5, l, &s->address) : listen_tcp(a, l, &s->address);
    if (rc < 0) {
      close_listeners();
      return false;
    }
    ev_io_init(&l->io, on_accept, l->fd, EV_READ);
    ev_io_start(s->loop, &l->io);
    s->nls++;
  }
  if (!s->nls) {
    logmsg(LOG_ERROR, "no address to listen on: set listen in the config or pass --listen");
    return false;
  }
  /* the segments are named after the address, and a dead predecessor's swept, before
     anyone who reads "listening on" can see them */
  shm_set_mode(cfg->shm_mode);
  shm_claim(s->ls[0].name);
  for (size_t i = 0; i < s->nls; i++) starter_listening(s->ls[i].name);
  /* after the managers' addresses: their "listening on" lines come first, as ever */
  if (cfg->metrics_listen[0] && !metrics_start(s->loop, cfg->metrics_listen)) {
    close_listeners();
    return false;
  }
  starter_ready(); /* every listener is open: --ready-fd gets the lines above */
  ev_timer_init(&s->stopper, on_stop, 0., DRAIN_TICK);
  bigcache_start(s->loop);
  /* systemd (Type=notify) starts what depends on shmgr once this arrives; without
     NOTIFY_SOCKET in the environment it does nothing */
  sd_notifyf(0, "READY=1\nSTATUS=serving %zu address%s", s->nls, s->nls == 1 ? "" : "es");
  return true;
}

bool server_owns_address(const value *addr) {
  const server *s = &the_server;
  for (size_t i = 0; i < s->nls; i++) {
    const listener *l = &s->ls[i];
    if (l->unix_path ? v_is_str(addr, l->unix_path)
                     : addr->kind == VK_TUPLE && addr->u.seq.len == 2 && addr->u.seq.items[1]->kind == VK_INT &&
                           addr->u.seq.items[1]->u.i == l->port)
      return true;
  }
  return false;
}

void server_stop(const char *why) {
  server *s = &the_server;
  if (s->stopping) return;
  s->stopping = true;
  logmsg(LOG_INFO, "stopping: %s", why);
  sd_notify(0, "STOPPING=1");
  for (size_t i = 0; i < s->nls; i++) ev_io_stop(s->loop, &s->ls[i].io); /* accept no more */
  conn_abort_waiting(why); /* a waiting client learns why at once, rather than from an EOF */
  /* every way of stopping comes here once; before shutdown's reply goes, as in CPython's
     SharedMemoryServer (teardown takes any tracked while the replies drain) */
  segments_unlink_all();
  ev_timer_start(s->loop, &s->stopper);
}

void server_run(void) {
  server *s = &the_server;
  ev_run(s->loop, 0);
  metrics_stop();
  conn_close_all();
  bigcache_stop();
  close_listeners();
  if (spare_fd >= 0) close(spare_fd);
  spare_fd = -1;
}
