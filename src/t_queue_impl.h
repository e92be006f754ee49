/* t_queue_impl.h: the queue's state, shared by t_queue.c (its methods) and t_queue_store.c (durability). */
#ifndef SHMGR_T_QUEUE_IMPL_H
#define SHMGR_T_QUEUE_IMPL_H

#include "ptrmap.h"
#include "store.h"
#include "t_queue.h"
#include "wait.h"

/* An item and its position: positions order the items of a durable queue in the store and
   never repeat (puts take high + 1, items put back at the head low - 1). */
typedef struct qitem {
  value *v;
  int64_t pos;
  double at; /* when it entered the queue (ev_now): the age of the oldest item, for operators */
} qitem;

/* An item in flight (redeliver): got by a client that has not called task_done for it. */
typedef struct fitem {
  value *v;
  int64_t pos;
  uint64_t turn; /* the store turn it left in if its reply waits for that turn's commit,
                    which, if it fails, takes it back; else 0 */
} fitem;

/* One client's items in flight, oldest first (task_done settles the oldest). */
typedef struct flight {
  void *holder;
  fitem *items;
  size_t head, len, cap;
} flight;

typedef struct queue {
  shobj *self;
  qitem *ring;        /* items, a ring buffer: head, then len items wrapping at cap */
  size_t head, len, cap;
  int64_t low, high;  /* the lowest and highest positions given out */
  int64_t maxsize;    /* <= 0: unbounded */
  int64_t unfinished; /* puts not yet matched by task_done (JoinableQueue's join) */
  waitq getters;      /* parked get: waiting for an item, in arrival order */
  waitq putters;      /* parked put: each carries its item in call.arg */
  waitq joiners;      /* parked join: waiting for unfinished == 0 */
  bool shut;          /* shutdown() was called: puts fail, gets fail once it is empty */
  /* declared in Lua (shmgr.Queue{...}): */
  char *name;         /* NULL for a queue a client created */
  char kind[16];      /* "Queue" or "JoinableQueue" */
  bool redeliver;     /* items got stay in flight on their client until task_done */
  bool durable;
  store_obj *so;      /* the store's record, once attached (durable) */
  struct queue *next_pending; /* durable, declared before the store opened */
  /* items in flight, by client */
  ptrmap flight_of;   /* holder -> index in flights */
  flight *flights;
  size_t nflights, capflights;
  int64_t inflight;   /* items in flight, all clients */
  uint64_t redelivered; /* items put back because their client went away */
  /* for operators: items put and got, ever and per second (ev_now's whole seconds) */
  uint64_t puts, gets;
  int64_t rate_sec;   /* the second the cur_ counts are for */
  uint32_t cur_puts, cur_gets, last_puts, last_gets; /* in it, and in the second before */
} queue;

/* Append (item, pos) at the tail / push it at the head of q's ring; the ring owns item. */
void q_push(queue *q, value *item, int64_t pos);
void q_push_front(queue *q, value *item, int64_t pos);
/* Forget f, which holds nothing any more (the last flight takes its place). */
void q_drop_flight(queue *q, flight *f);
/* Hand items to parked getters and admit parked putters while they can go on, and wake
   joiners when no task is unfinished: after anything that changed q behind their backs. */
void q_settle(queue *q);
/* The name q is known by in messages: 'name' or its ident. Static buffer. */
const char *q_label(const queue *q);

/* Durability (t_queue_store.c). */
/* The pickle (protocol 4) of item for the store, in out; NULL or a new exception (an item
   holding a proxy of this server's objects, which would not survive a restart). */
value *q_encode(const value *item, buf *out);
/* Attach q (durable) to the open store and fill it from its record. NULL or a new
   exception naming the queue and why. */
value *q_attach(queue *q);
/* q goes: its record stays in the store; a queue waiting for the store stops waiting. */
void q_detach(queue *q);

#endif
