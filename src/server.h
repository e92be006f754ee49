/* server.h: the event loop, the listeners (TCP and Unix), accept, and shutdown. */
#ifndef SHMGR_SERVER_H
#define SHMGR_SERVER_H

#include <ev.h>
#include <netdb.h>
#include <stdbool.h>

#include "config.h"
#include "value.h"

typedef struct conn conn;

typedef struct listener {
  ev_io io;
  int fd;
  int port;        /* TCP: the port; 0 for a Unix socket */
  char *unix_path; /* owned; unlinked at shutdown */
  char name[128];  /* the address as "listening on" says it: HOST:PORT or unix:PATH */
} listener;

typedef struct server {
  struct ev_loop *loop;
  config *cfg;
  listener ls[MAX_LISTEN];
  size_t nls;
  conn *conns;       /* every open connection, for shutdown */
  size_t nconns;
  value *address;    /* the first listen address as Python writes it in a Token */
  ev_signal sigint, sigterm, sighup;
  ev_timer stopper;  /* stops the loop once pending replies (shutdown's own) are written */
  bool stopping;
} server;

/* The one server of this process. */
extern server the_server;

/* Open every address of cfg and say "listening on ..." for each (on stderr, or on --ready-fd:
   starter.h), then start the metrics listener, if any, and say ready. Returns false
   (after logging why) if one cannot be opened. cfg is borrowed for the server's life; a
   SIGHUP changes it in place (reload.c). */
bool server_start(config *cfg);
/* Where a listening TCP socket is bound (port 0 made real): host, port, and the two as
   "host:port" or "[host]:port". */
typedef struct tcp_name {
  char host[INET6_ADDRSTRLEN]; /* numeric */
  int port;
  bool v6;
  char text[INET6_ADDRSTRLEN + 16];
} tcp_name;
/* A non-blocking TCP socket bound to ai's address (SO_REUSEADDR) and listening with
   backlog: its fd, with *name filled, or -1 with errno saying why (nothing left open). */
int server_tcp_socket(const struct addrinfo *ai, int backlog, tcp_name *name);
/* Copy the settings that live outside the config (the slowlog threshold, the step budget
   of evaluated arguments) from cfg: at start, and again at each reload. */
void server_apply_settings(const config *cfg);
/* Run the loop until shutdown; then close every connection and listener. */
void server_run(void);
/* True when addr (a Token's address: (host, port) or a path) is one this server listens
   on: the port of a TCP listener (clients may name the host differently), or the path of
   a Unix one. */
bool server_owns_address(const value *addr);
/* Split addr, "HOST:PORT" (HOST may be a bracketed IPv6 literal, or empty for every
   address), into host and port, each NUL-terminated in the caller's buffers. false when
   it is malformed or a part does not fit. */
bool server_split_hostport(const char *addr, char *host, size_t hostlen, char *port, size_t portlen);
/* Ask the loop to stop after pending replies are written (the shutdown request, signals). */
void server_stop(const char *why);

#endif
