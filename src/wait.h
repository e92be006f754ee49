/* wait.h: parked calls: a caller's slot, queues of waiters, timers, wake-ups, cancellation. */
#ifndef SHMGR_WAIT_H
#define SHMGR_WAIT_H

#include <ev.h>
#include <stdbool.h>

#include "objects.h"

typedef struct waitq {
  call *head, *tail;
} waitq;

/* A caller's slot: each connection embeds one, and so does each Lua coroutine. The caller
   sets done (and owner) before calling a method; a method that must wait parks the slot on
   its object's queue, and later finishes it, which runs done exactly once. */
struct call {
  void (*done)(call *c, outcome r); /* deliver the outcome (owned by done from then on) */
  void *owner;                      /* the connection or coroutine behind the call */
  void *holder;                     /* the client it runs for (what it acquires is that
                                       client's: see owner.h); NULL for the server's own Lua */
  /* while parked: */
  waitq *q;
  call *prev, *next;
  ev_timer timer;
  outcome (*on_timeout)(call *c); /* what the call answers when its time is up */
  value *arg;                     /* what the waiter brings (an item to put); owned */
  int op;                         /* the type's own tag for what is awaited */
  void (*on_cancel)(call *c);     /* extra cleanup when the caller goes away (Lua) */
  void *inner;                    /* for on_cancel: the nested wait behind this one */
};

/* The loop every timer runs on; set once at start-up, before the config runs (queue items
   are stamped with its clock, and the store loads durable ones before the server starts). */
extern struct ev_loop *wait_loop;

/* Park c at the end of q. timeout < 0 waits forever; else on_timeout answers after that
   many seconds, or returns CALL_PARKED having parked c again elsewhere (a Condition waiter
   whose time is up still waits for its lock). arg (stolen, may be NULL) rides along. */
void wait_park(call *c, waitq *q, double timeout, outcome (*on_timeout)(call *c), value *arg);
/* Mark c as waiting on something that is not a queue (a Lua coroutine's nested call), or,
   after wait_park, as needing extra cleanup (a Barrier arrival to take back): on_cancel
   runs if the caller goes away first. */
void wait_pending(call *c, void (*on_cancel)(call *c), void *inner);
/* Take c off its queue and stop its timer; its arg is handed to the caller of this. */
void wait_unpark(call *c);
/* Move the first n waiters of q (all, if fewer) to the end of batch, in order, still
   parked (a local queue the caller answers them from). A wake-up that answers several
   waiters takes them out first: one of them answered may run code at once (a Lua method
   resuming) that waits on q again or wakes q's waiters itself, and neither that new wait
   nor the waiters still to be answered may be taken for the other. */
void waitq_split(waitq *q, size_t n, waitq *batch);
/* How many calls wait on q. */
size_t waitq_len(const waitq *q);
/* The first waiter of q, still parked, or NULL. */
static inline call *waitq_first(const waitq *q) { return q->head; }
/* Unpark c (if parked) and deliver r to it. */
void wait_finish(call *c, outcome r);
/* The caller is gone: unpark c, drop its arg, run on_cancel; done never runs. */
void wait_cancel(call *c);
/* True while c is parked on a queue or pending on a nested wait. */
bool wait_is_pending(const call *c);

static inline outcome out_value(value *v) { return (outcome){CALL_RETURN, v, NULL}; }
static inline outcome out_error(value *exc) { return (outcome){CALL_ERROR, exc, NULL}; }
static inline outcome out_parked(void) { return (outcome){CALL_PARKED, NULL, NULL}; }
/* Release what an outcome holds. */
void outcome_free(outcome r);

#endif
