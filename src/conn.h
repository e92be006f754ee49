/* conn.h: one client connection: buffers, framing, the handshake, and its one teardown path. */
#ifndef SHMGR_CONN_H
#define SHMGR_CONN_H

#include <ev.h>
#include <stdbool.h>

#include "auth.h"
#include "buf.h"
#include "pickle.h"
#include "value.h"
#include "wait.h"

typedef struct conn conn;

typedef enum cstate {
  CS_AUTH_ANSWER,    /* we sent our challenge; waiting for the client's answer */
  CS_AUTH_CHALLENGE, /* we welcomed the client; waiting for its challenge */
  CS_AUTH_WELCOME,   /* we answered; waiting for #WELCOME# */
  CS_FIRST,          /* authenticated; waiting for the one request of a fresh connection */
  CS_SERVING,        /* accept_connection: method calls until EOF */
  CS_DISCARD,        /* refused a request before reading it whole (max_message, max_memory):
                        skipping the rest of its bytes, then back to discard_from */
  CS_CLOSING,        /* writing what is left, then closing */
} cstate;

struct conn {
  ev_io rio, wio;
  ev_timer timer;    /* the handshake deadline, then limits.idle_timeout; or, while a large
                        request waits for memory, limits.memory_wait; or (CS_DISCARD) how long
                        the rest of a refused request may take to come */
  ev_prepare resume; /* fed, never started: serves buffered requests after a call ends (conn_resume) */
  ev_timer stalled;  /* replies waiting and the client reads none: limits.send_timeout */
  int fd;
  cstate st;
  buf in, out;
  size_t in_at;      /* bytes of in already handled: the next frame starts there */
  size_t out_at;     /* bytes of out already sent */
  /* The large str and bytes payloads of the replies in out, sent from where they lie: each
     comes in the stream right before out's byte at its `at` (pickle_dump_spans). */
  pickle_spans spans;
  size_t span_sent;  /* bytes of the first span already sent */
  bool exact;        /* in is allocated for exactly the large frame being read, which may then
                        keep its payload in place (pickle_adopt): reads fill it, no more */
  bool mem_waiting;  /* a large frame's header came and its body has no room under
                        limits.max_memory: nothing more is read from c until there is */
  size_t mem_need;   /* the bytes it waits for */
  conn *mprev, *mnext; /* the connections waiting so, oldest first */
  size_t discard;    /* CS_DISCARD: bytes still to skip */
  cstate discard_from; /* CS_DISCARD: the state to go back to (CS_FIRST: close instead) */
  uint8_t challenge[AUTH_MSG_LEN];
  int proto;         /* pickle protocol of replies: 5 if the client speaks 5, else 4 */
  /* How this client serializes (serializer= of its manager): chosen by its first request
     (xmlrpc_sniff), then every request is decoded and every reply encoded that way. */
  enum { SER_UNKNOWN, SER_PICKLE, SER_XML } ser;
  call call;         /* the one request in flight */
  void *holder;      /* whom what its calls acquire belongs to (owner.h): a serial number,
                        never reused, not c's address: a lock kept for a vanished client
                        (lock_policy "keep") must not pass to a new connection that malloc
                        happens to place at the same address */
  value *req;        /* that request, kept for its method name; NULL when idle */
  struct shobj *target; /* the object it runs on, held until it ends */
  bool dead;         /* a write failed: close at the next chance */
  bool tcp;          /* a TCP peer (acknowledged at once: see on_read) */
  bool sniffing;     /* an oversized first request's header came alone: its first body byte
                        says which serializer the refusal speaks, or pickle after SNIFF_GRACE */
  bool backlogged;   /* replies pile up unread: no more requests are read until they drain */
  /* A reply written while the turn has uncommitted changes waits for the commit (turn.h):
     out holds it from held_at on, unsent, and no further request is served till then. */
  bool held;
  bool touched;      /* that reply's call touched durable state: a failed commit fails it */
  size_t held_at;
  conn *hprev, *hnext; /* the connections holding a reply */
  char peer[80];
  char label[104];   /* "#id peer": how the log names it */
  char name[64];     /* the name given to accept_connection */
  /* what operators see (shmgr-cli clients): */
  uint64_t id;       /* counts up from 1, never reused: the holder serial as a number */
  double opened, last; /* ev_now at accept, and when its last request came */
  uint64_t calls, bytes_in, bytes_out;
  double t0;         /* stats_clock() when the call in flight began */
  double exec;       /* the call in flight parked: its time on the loop until then */
  double parked_at;  /* ev_now when the call in flight parked; 0 while it has not */
  struct methodstat *ms; /* the counter the call in flight counts under */
  const char *kill_why; /* set with dead by conn_kill: why it closes */
  conn *prev, *next;
};

/* Take over an accepted, non-blocking fd (tcp: a TCP peer) and start the handshake. */
void conn_open(int fd, const char *peer, bool tcp);
/* Send the reply (kind, result) to c, stealing result. Never closes c synchronously: a
   failed write marks it dead and the loop closes it. */
void conn_reply(conn *c, const char *kind, value *result);
/* The turn's commit is over: each connection holding a reply sends it, unless exc (a
   failed commit's error, borrowed) replaces the replies of calls that touched durable
   state; then each serves its next request. */
void conn_release_held(const value *exc);
/* Reply with a #TRACEBACK whose last line is "<exc class>: <message>" for exc (stolen). */
void conn_traceback(conn *c, const char *where, value *exc);
/* Close c once what is queued, and the reply still to come if called before it, is written. */
void conn_close_after_reply(conn *c);
/* The call in flight ended: serve c's next buffered request, if any, from the loop (not
   from inside the caller, which may be serving another connection). */
void conn_resume(conn *c);
/* Close c from the loop, soon, not from inside the caller (which may be serving another
   connection): an operator's kill. why (static) is logged. */
void conn_kill(conn *c, const char *why);
/* The open connection with this id, or NULL. */
conn *conn_by_id(uint64_t id);
/* The single teardown path: cancel what c has parked, release its object, close the fd. */
void conn_close(conn *c, const char *why);
/* Every call still waiting fails with EOFError("shmgr is stopping: <why>") (shutdown). */
void conn_abort_waiting(const char *why);
/* Close every connection (shutdown). */
void conn_close_all(void);
/* True while some connection still has bytes to write. */
bool conn_any_unflushed(void);

#endif
