/* bclient.h: one connection of the load generator, as a stock Python client makes it:
   connect, the mutual handshake, then framed pickle requests and replies. */
#ifndef BENCH_BCLIENT_H
#define BENCH_BCLIENT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "auth.h"
#include "buf.h"
#include "value.h"

/* Where and how to connect: set once by the caller before the first bc_open. */
typedef struct bc_target {
  struct sockaddr_storage sa;
  socklen_t salen;
  const uint8_t *key; /* the authkey, borrowed */
  size_t keylen;
} bc_target;

extern bc_target bc_server;
extern struct ev_loop *bc_loop;
/* A server whose accept queue overflows can leave a connection established on our side
   that it never accepts (CPython's server listens with a backlog of 16): with no challenge
   after this many seconds, the connection is made again and counted in bc_retries. */
#define BC_ACCEPT_TIMEOUT 3.0
extern unsigned long bc_retries;

typedef struct bconn bconn;

typedef enum bc_state {
  BC_CLOSED,
  BC_CONNECTING, /* connect() in progress */
  BC_CHALLENGED, /* waiting for the server's challenge */
  BC_WELCOME,    /* we answered; waiting for #WELCOME# */
  BC_VERIFY,     /* we sent our challenge; waiting for the server's answer */
  BC_READY,      /* authenticated: requests and replies */
} bc_state;

struct bconn {
  ev_io rio, wio;
  ev_timer accept_timer; /* until the server's challenge arrives */
  int fd;
  int open_errno;    /* why bc_open failed at once, reported from the loop */
  bc_state st;
  buf in, out;
  uint8_t challenge[AUTH_MSG_LEN]; /* the one we sent */
  /* the user's: called from the loop. on_ready once authenticated; on_reply for each reply,
     which it owns; on_error once, after which the connection is closed. */
  void (*on_ready)(bconn *c);
  void (*on_reply)(bconn *c, value *reply);
  void (*on_error)(bconn *c, const char *why);
  void *user;
  size_t idx;
  int step;          /* the user's position in its sequence of calls */
  double started;    /* the user's: when its current operation began */
  unsigned long ops; /* the user's: operations it completed */
};

/* Start connecting c to bc_server (c's user fields are kept; the rest is reset). Errors,
   even immediate ones, arrive through on_error from the loop. */
void bc_open(bconn *c);
/* Send the request (ident, method, args, {}) on a ready connection: ident NULL is None;
   args (a tuple, stolen) NULL is (). Writes at once what the socket takes. */
void bc_call(bconn *c, const char *ident, const char *method, value *args);
/* Close c (no callback runs). Safe on a closed connection. */
void bc_close(bconn *c);
/* Free c's buffers (after bc_close). */
void bc_free(bconn *c);

/* Parse "HOST:PORT" (an IPv4/IPv6 literal or a name) or "unix:PATH" into t; false with a
   message in err otherwise. */
bool bc_parse_address(const char *addr, bc_target *t, char *err, size_t errlen);

/* The reply's kind (#RETURN, #ERROR, ...) or NULL when it is not a (str, value) pair; the
   result in *result (borrowed). */
const char *bc_reply_kind(const value *reply, const value **result);

#endif
