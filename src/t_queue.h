/* t_queue.h: the built-in Queue / JoinableQueue (Python's queue.Queue), in C, durable if declared so. */
#ifndef SHMGR_T_QUEUE_H
#define SHMGR_T_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.h"

extern const otype queue_type;

/* A new queue with one hold (the caller's). maxsize <= 0 means unbounded. */
shobj *queue_new(int64_t maxsize);

/* The registry constructor: Queue(maxsize=0). Returns a new object, or NULL with *err a
   new exception (TypeError for a bad argument). */
shobj *queue_create(value *args, value *kwds, value **err);

/* What a server-side declaration (shmgr.Queue{...} in Lua) may ask for. */
typedef struct queue_options {
  const char *kind;  /* "Queue" or "JoinableQueue" (the same object; kept in the store) */
  const char *name;  /* NULL, or the queue's name (required, and unique, when durable) */
  int64_t maxsize;
  bool durable;      /* kept in the store: survives restarts and crashes */
  bool redeliver;    /* an item got stays in flight on its client until task_done; if the
                        client goes first, the item goes back to the head of the queue */
} queue_options;

/* A queue as declared: a new object with one hold, or NULL with *err a new exception. A
   durable queue declared before the store is open is attached by queue_attach_pending;
   after, at once (its items loaded from the store). */
shobj *queue_declare(const queue_options *opt, value **err);
/* True when a durable queue waits for the store (the config declared one). */
bool queue_durable_waiting(void);
/* Attach every durable queue declared so far to the store just opened, loading their
   items. false with err naming the queue and why. */
bool queue_attach_waiting(char *err, size_t errlen);
/* What operators see of a queue (shmgr-cli queues, metrics). */
typedef struct queue_figures {
  const char *name;     /* NULL for a queue a client created */
  const char *kind;     /* "Queue" or "JoinableQueue" */
  bool durable, redeliver, shut;
  int64_t maxsize, depth, inflight, unfinished;
  size_t getters, putters, joiners; /* calls parked on it */
  uint64_t puts, gets, redelivered; /* ever */
  uint32_t puts_last_second, gets_last_second; /* in the last whole second */
  double oldest_age;    /* seconds the head item has waited (since a restart for stored
                           items); -1 when empty */
} queue_figures;
/* The name a config declared o under when o is a queue that has one; NULL otherwise. A
   cheap look, to pick the named queues among many without their figures. */
const char *queue_name(const shobj *o);
/* Fill f for o and return true when o is a queue; false otherwise. */
bool queue_figures_of(const shobj *o, queue_figures *f);

/* Limits for decoding the items read back from the store (the requests' own, set at
   start-up, with room for what re-encoding adds). */
void queue_set_item_limits(size_t max_depth, size_t max_objects);

#endif
