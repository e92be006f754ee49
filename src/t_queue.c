/* t_queue.c: the built-in Queue / JoinableQueue (Python's queue.Queue), in C, with redelivery. */
#include "alloc.h"
#include "t_queue_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "log.h"
#include "owner.h"
#include "stats.h"

/* block=False for get_nowait and put_nowait; never freed */
static value no_block = {.refs = 1, .kind = VK_BOOL, .u.b = false};

static const char *const methods[] = {"empty", "full", "get", "get_nowait", "join", "put",
                                      "put_nowait", "qsize", "shutdown", "task_done", NULL};
static const char *const adds[] = {"put", "put_nowait", NULL}; /* refused past max_memory */

static bool is_full(const queue *q) { return q->maxsize > 0 && (int64_t)q->len >= q->maxsize; }

const char *q_label(const queue *q) {
  static char text[200];
  if (q->name) snprintf(text, sizeof text, "'%s'", q->name);
  else snprintf(text, sizeof text, "%s", obj_ident(q->self));
  return text;
}

/* A full ring buffer of len elements of `size` bytes (*cap of them at ring, starting at
   *head) doubled (or given `first` places) and unwrapped: returns the new buffer, its
   elements from 0, *head 0; ring is freed. */
static void *ring_grow(void *ring, size_t size, size_t *head, size_t len, size_t *cap, size_t first) {
  size_t n = *cap ? *cap * 2 : first, tail = *cap - *head;
  char *to = xmalloc(n * size);
  const char *from = ring;
  if (len) {
    memcpy(to, from + *head * size, (len < tail ? len : tail) * size);
    if (len > tail) memcpy(to + tail * size, from, (len - tail) * size);
  }
  free(ring);
  *cap = n;
  *head = 0;
  return to;
}

static void grow(queue *q) { q->ring = ring_grow(q->ring, sizeof *q->ring, &q->head, q->len, &q->cap, 8); }

void q_push(queue *q, value *item, int64_t pos) {
  if (q->len == q->cap) grow(q);
  q->ring[(q->head + q->len++) % q->cap] = (qitem){item, pos, ev_now(wait_loop)};
}

void q_push_front(queue *q, value *item, int64_t pos) {
  if (q->len == q->cap) grow(q);
  q->head = (q->head + q->cap - 1) % q->cap;
  q->ring[q->head] = (qitem){item, pos, ev_now(wait_loop)};
  q->len++;
}

/* Start a new second of q's rates when the loop's clock has moved to one: the counts of the
   second just over are kept (a second or more without any, zero). */
static void tick(queue *q) {
  int64_t now = (int64_t)ev_now(wait_loop);
  if (now == q->rate_sec) return;
  q->last_puts = now == q->rate_sec + 1 ? q->cur_puts : 0;
  q->last_gets = now == q->rate_sec + 1 ? q->cur_gets : 0;
  q->cur_puts = q->cur_gets = 0;
  q->rate_sec = now;
}

static void count_put(queue *q) {
  tick(q);
  q->puts++;
  q->cur_puts++;
}

static void count_get(queue *q) {
  tick(q);
  q->gets++;
  q->cur_gets++;
}

static qitem pop(queue *q) {
  qitem it = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->len--;
  return it;
}

/* unfinished changed: a durable queue records it (written once at the commit) */
static void count_changed(queue *q) {
  if (q->so) store_obj_count(q->so, q->unfinished);
}

/* ---- items in flight (redeliver) ---- */

static flight *flight_of(queue *q, const void *holder) {
  size_t *i = holder ? ptrmap_get(&q->flight_of, holder) : NULL;
  return i ? &q->flights[*i] : NULL;
}

/* The turn whose commit a reply written now waits for, 0 when it goes out at once (no change
   is pending: turn.h). If that commit fails, so does the reply, and an item it carried must
   come back: q takes part in the turn (its rollback runs). */
static uint64_t held_turn(queue *q) {
  if (!q->so || !store_pending()) return 0;
  store_obj_touch(q->so);
  return store_turn();
}

/* item (owned) at pos leaves the queue for holder: it stays in flight on it. */
static void fly(queue *q, void *holder, value *item, int64_t pos) {
  flight *f = flight_of(q, holder);
  if (!f) {
    if (q->nflights == q->capflights) {
      q->capflights = q->capflights ? q->capflights * 2 : 4;
      q->flights = xrealloc(q->flights, q->capflights * sizeof *q->flights);
    }
    bool added;
    *ptrmap_put(&q->flight_of, holder, q->nflights, &added) = q->nflights;
    f = &q->flights[q->nflights++];
    *f = (flight){.holder = holder};
  }
  if (f->len == f->cap) f->items = ring_grow(f->items, sizeof *f->items, &f->head, f->len, &f->cap, 4);
  f->items[(f->head + f->len++) % f->cap] = (fitem){item, pos, held_turn(q)};
  q->inflight++;
  own_take(holder, q->self); /* told when holder goes: abandon */
}

void q_drop_flight(queue *q, flight *f) {
  size_t i = (size_t)(f - q->flights);
  ptrmap_del(&q->flight_of, f->holder);
  free(f->items);
  if (i != --q->nflights) {
    q->flights[i] = q->flights[q->nflights];
    *ptrmap_get(&q->flight_of, q->flights[i].holder) = i;
  }
}

/* The oldest item in flight on f is done with: NULL, or the store's error (nothing done). */
static value *settle(queue *q, flight *f) {
  fitem it = f->items[f->head];
  if (q->so) {
    value *err = store_item_del(q->so, it.pos);
    if (err) return err;
  }
  f->head = (f->head + 1) % f->cap;
  q->inflight--;
  void *holder = f->holder;
  if (!--f->len) q_drop_flight(q, f);
  v_decref(it.v);
  own_give(holder, q->self);
  return NULL;
}

/* The head item leaves the queue for holder's call: a new reference in *item, or NULL and
   the store's error with nothing changed. */
static value *take(queue *q, void *holder, value **item) {
  qitem it = q->ring[q->head];
  if (q->redeliver && holder) {
    fly(q, holder, v_incref(it.v), it.pos); /* still in the store until task_done */
  } else if (q->so) {
    value *err = store_item_del(q->so, it.pos);
    if (err) return err;
  }
  pop(q);
  count_get(q);
  *item = it.v;
  return NULL;
}

/* ---- get, put, and the waiters ---- */

static outcome get_timeout(call *c) {
  (void)c;
  /* CPython 3.7+ pickles this as _queue.Empty, which Python 3.6 cannot load; queue.Empty
     is the same class everywhere */
  return out_error(v_exception("queue", "Empty", v_tuple(0)));
}

static outcome put_timeout(call *c) {
  (void)c;
  return out_error(v_exception("queue", "Full", v_tuple(0)));
}

static value *shut_down(void) { return v_exception("queue", "ShutDown", v_tuple(0)); }

/* item (owned) arrives from a put: recorded (durable), then to the longest-waiting getter
   at once, else queued. NULL, or the store's error with item dropped and nothing changed. */
static value *put_item(queue *q, value *item) {
  call *g = waitq_first(&q->getters);
  bool flies = g && q->redeliver && g->holder;
  int64_t pos = q->high + 1;
  if (q->so && (!g || flies)) { /* an item handed over at once, and done with, needs no record */
    buf bytes = {0};
    value *err = q_encode(item, &bytes);
    if (!err) err = store_item_add(q->so, pos, bytes.data, bytes.len);
    buf_free(&bytes);
    if (err) {
      v_decref(item);
      return err;
    }
  }
  q->high = pos;
  q->unfinished++;
  count_changed(q);
  count_put(q);
  if (!g) {
    q_push(q, item, pos);
  } else {
    count_get(q);
    if (flies) fly(q, g->holder, v_incref(item), pos);
    wait_finish(g, out_value(item));
  }
  return NULL;
}

void q_settle(queue *q) {
  call *c;
  while (q->len && (c = waitq_first(&q->getters))) {
    value *item, *err = take(q, c->holder, &item);
    wait_finish(c, err ? out_error(err) : out_value(item));
    if (err) break; /* the store refuses: the others keep waiting */
  }
  while (!is_full(q) && (c = waitq_first(&q->putters))) {
    value *item = c->arg;
    c->arg = NULL; /* now put_item's */
    value *err = put_item(q, item);
    wait_finish(c, err ? out_error(err) : out_value(v_none()));
  }
  if (q->unfinished == 0 && waitq_first(&q->joiners)) {
    waitq batch = {0}; /* see wake_all */
    waitq_split(&q->joiners, waitq_len(&q->joiners), &batch);
    while ((c = waitq_first(&batch))) wait_finish(c, out_value(v_none()));
  }
}

/* The checks come in queue.py's order: ShutDown first, then a blocking call's timeout
   (checked even when it need not wait), then the item or the wait. */
static outcome do_get(queue *q, const value *block, const value *timeout, call *c) {
  double secs = -1;
  bool blocking = !block || v_truth(block);
  if (q->shut && !q->len) return out_error(shut_down());
  if (blocking) {
    value *err = arg_timeout(timeout, &secs);
    if (err) return out_error(err);
  }
  if (q->len) {
    value *item, *err = take(q, c->holder, &item);
    if (err) return out_error(err);
    q_settle(q); /* a putter may take the place */
    flight *f = q->redeliver ? flight_of(q, c->holder) : NULL;
    if (f) f->items[(f->head + f->len - 1) % f->cap].turn = held_turn(q); /* a putter's change may hold our reply now */
    return out_value(item);
  }
  if (!blocking || secs == 0) return get_timeout(c);
  value *err = arg_timeout_wait(secs);
  if (err) return out_error(err);
  wait_park(c, &q->getters, secs, get_timeout, NULL);
  return out_parked();
}

static outcome do_put(queue *q, value *item, const value *block, const value *timeout, call *c) {
  double secs = -1;
  bool blocking = !block || v_truth(block);
  if (q->shut) return out_error(shut_down());
  if (q->maxsize > 0 && blocking) { /* queue.py looks at the timeout only for a bounded queue */
    value *err = arg_timeout(timeout, &secs);
    if (err) return out_error(err);
  }
  if (!is_full(q)) {
    value *err = put_item(q, v_incref(item));
    return err ? out_error(err) : out_value(v_none());
  }
  if (!blocking || secs == 0) return put_timeout(c);
  value *err = arg_timeout_wait(secs);
  if (err) return out_error(err);
  if (q->durable) { /* refused now rather than when a place frees up */
    buf bytes = {0};
    err = q_encode(item, &bytes);
    buf_free(&bytes);
    if (err) return out_error(err);
  }
  wait_park(c, &q->putters, secs, put_timeout, v_incref(item));
  return out_parked();
}

/* Answer every call parked on wq now: a new make() exception, or None when make is NULL.
   Taken out first (see waitq_split), so that a caller answered at once (a Lua method
   resuming) that parks again is not answered as one of them. */
static void wake_all(waitq *wq, value *(*make)(void)) {
  waitq batch = {0};
  waitq_split(wq, waitq_len(wq), &batch);
  for (call *w; (w = waitq_first(&batch));) wait_finish(w, make ? out_error(make()) : out_value(v_none()));
}

/* shutdown(immediate=False), Python 3.13's: puts fail from now on and gets once the queue
   is empty; immediate empties it now, each item counting as a task done. Parked getters
   (the queue is empty, or they would not wait) and putters get ShutDown; joiners return
   if no task is left unfinished. Not kept in the store: a restart opens the queue again. */
static outcome shutdown(queue *q, const value *immediate) {
  q->shut = true;
  if (immediate && v_truth(immediate)) {
    while (q->len) {
      if (q->so) {
        value *err = store_item_del(q->so, q->ring[q->head].pos);
        if (err) return out_error(err);
      }
      v_decref(pop(q).v);
      if (q->unfinished > 0) q->unfinished--;
    }
    count_changed(q);
    if (q->unfinished == 0) wake_all(&q->joiners, NULL);
  }
  wake_all(&q->getters, shut_down);
  wake_all(&q->putters, shut_down);
  return out_value(v_none());
}

/* task_done settles the oldest item in flight on the caller's connection, if it has one
   (redeliver); a task_done from elsewhere (another thread's connection) settles nothing,
   and those items go back to the queue if their connection closes first. */
static outcome task_done(queue *q, void *holder) {
  if (q->unfinished <= 0)
    return out_error(v_exception_msg("ValueError", "task_done() called too many times"));
  flight *f = flight_of(q, holder);
  if (f) {
    value *err = settle(q, f);
    if (err) return out_error(err);
  }
  q->unfinished--;
  count_changed(q);
  if (q->unfinished == 0) wake_all(&q->joiners, NULL);
  return out_value(v_none());
}

static outcome queue_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  queue *q = o->state;
  value *a[3] = {0}, *err = NULL;
  static const char *const get_names[] = {"block", "timeout"};
  static const char *const put_names[] = {"item", "block", "timeout"};
  static const char *const shutdown_names[] = {"immediate"};
  static const char *const none[] = {NULL};
  if (strcmp(m, "get") == 0) {
    if (!(err = args_bind("Queue.get", get_names, 2, 0, args, kwds, a))) return do_get(q, a[0], a[1], c);
  } else if (strcmp(m, "put") == 0) {
    if (!(err = args_bind("Queue.put", put_names, 3, 1, args, kwds, a))) return do_put(q, a[0], a[1], a[2], c);
  } else if (strcmp(m, "get_nowait") == 0) {
    if (!(err = args_bind("Queue.get_nowait", none, 0, 0, args, kwds, a))) return do_get(q, &no_block, NULL, c);
  } else if (strcmp(m, "put_nowait") == 0) {
    if (!(err = args_bind("Queue.put_nowait", put_names, 1, 1, args, kwds, a)))
      return do_put(q, a[0], &no_block, NULL, c);
  } else if (strcmp(m, "qsize") == 0) {
    if (!(err = args_bind("Queue.qsize", none, 0, 0, args, kwds, a))) return out_value(v_int((int64_t)q->len));
  } else if (strcmp(m, "empty") == 0) {
    if (!(err = args_bind("Queue.empty", none, 0, 0, args, kwds, a))) return out_value(v_bool(q->len == 0));
  } else if (strcmp(m, "full") == 0) {
    if (!(err = args_bind("Queue.full", none, 0, 0, args, kwds, a))) return out_value(v_bool(is_full(q)));
  } else if (strcmp(m, "task_done") == 0) {
    if (!(err = args_bind("Queue.task_done", none, 0, 0, args, kwds, a))) return task_done(q, c->holder);
  } else if (strcmp(m, "shutdown") == 0) {
    if (!(err = args_bind("Queue.shutdown", shutdown_names, 1, 0, args, kwds, a))) return shutdown(q, a[0]);
  } else if (strcmp(m, "join") == 0) {
    if (!(err = args_bind("Queue.join", none, 0, 0, args, kwds, a))) {
      if (q->unfinished == 0) return out_value(v_none());
      wait_park(c, &q->joiners, -1, NULL, NULL);
      return out_parked();
    }
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "'Queue' object has no attribute '%s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

/* holder (a client) went away with count items in flight: back to the head of the queue,
   in the order it got them, for the next getter; logged and counted. */
static void queue_abandon(shobj *o, void *holder, int count, bool release, const char *peer) {
  (void)count, (void)release; /* lock_policy is for locks: redelivery is the queue's own */
  queue *q = o->state;
  flight *f = flight_of(q, holder);
  if (!f) return;
  size_t n = f->len;
  for (size_t k = n; k-- > 0;) { /* newest first, each in front of the last */
    fitem it = f->items[(f->head + k) % f->cap];
    int64_t pos = q->low - 1;
    value *err = q->so ? store_item_move(q->so, it.pos, pos) : NULL;
    if (err) { /* it stays where it is in the store: a restart may order it otherwise */
      logmsg(LOG_ERROR, "queue %s: an item put back keeps its old place in the store (a restart puts it there)", q_label(q));
      v_decref(err);
      pos = it.pos;
    } else {
      q->low = pos;
    }
    q_push_front(q, it.v, pos);
  }
  q->inflight -= (int64_t)n;
  q->redelivered += n;
  the_stats.redelivered += n;
  q_drop_flight(q, f);
  /* every item queued or in flight is a task not done: a task_done made from another
     connection for an item now back must not leave join() thinking it is done */
  if (q->unfinished < (int64_t)q->len + q->inflight) {
    q->unfinished = (int64_t)q->len + q->inflight;
    count_changed(q);
  }
  logmsg(LOG_WARN, "queue %s: %zu item%s in flight on %s went back to the queue (its connection closed; %llu redelivered so far)",
         q_label(q), n, n == 1 ? "" : "s", peer, (unsigned long long)q->redelivered);
  q_settle(q);
}

static void queue_free(shobj *o) {
  queue *q = o->state;
  while (q->len) v_decref(pop(q).v);
  free(q->ring);
  /* no flight is left: each holds the object (own_take) */
  free(q->flights);
  ptrmap_free(&q->flight_of);
  q_detach(q);
  free(q->name);
  free(q);
}

static void queue_repr(const shobj *o, buf *out) {
  buf_printf(out, "<queue.Queue object at 0x%llx>", (unsigned long long)o->id);
}

static value *queue_getvalue(shobj *o, value **err) {
  (void)o;
  *err = v_exception_msg("TypeError", "cannot pickle '_thread.lock' object");
  return NULL;
}

const char *queue_name(const shobj *o) {
  return o->type == &queue_type ? ((const queue *)o->state)->name : NULL;
}

bool queue_figures_of(const shobj *o, queue_figures *f) {
  if (o->type != &queue_type) return false;
  queue *q = o->state;
  tick(q); /* rates of a queue that went quiet are not its last busy second's */
  *f = (queue_figures){.name = q->name, .kind = q->kind, .durable = q->durable, .redeliver = q->redeliver,
                       .maxsize = q->maxsize, .depth = (int64_t)q->len, .inflight = q->inflight,
                       .unfinished = q->unfinished, .getters = waitq_len(&q->getters),
                       .putters = waitq_len(&q->putters), .joiners = waitq_len(&q->joiners), .puts = q->puts,
                       .gets = q->gets, .redelivered = q->redelivered, .puts_last_second = q->last_puts,
                       .gets_last_second = q->last_gets,
                       .oldest_age = q->len ? ev_now(wait_loop) - q->ring[q->head].at : -1, .shut = q->shut};
  return true;
}

static void queue_info(const shobj *o, obj_info *out) {
  const queue *q = o->state;
  out->size = (int64_t)q->len;
  out->waiters = waitq_len(&q->getters) + waitq_len(&q->putters) + waitq_len(&q->joiners);
  out->name = q->name;
}

const otype queue_type = {
    .name = "Queue",
    .methods = methods,
    .adds = adds,
    .call = queue_call,
    .free = queue_free,
    .repr = queue_repr,
    .getvalue = queue_getvalue,
    .abandon = queue_abandon,
    .info = queue_info,
};

shobj *queue_new(int64_t maxsize) {
  queue *q = xcalloc(1, sizeof *q);
  q->maxsize = maxsize;
  snprintf(q->kind, sizeof q->kind, "Queue");
  return q->self = obj_new(&queue_type, q, 0);
}

shobj *queue_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"maxsize"};
  value *a[1] = {0};
  int64_t maxsize = 0;
  if ((*err = args_bind("Queue.__init__", names, 1, 0, args, kwds, a))) return NULL;
  if (a[0] && (*err = arg_int(a[0], &maxsize))) return NULL;
  return queue_new(maxsize);
}
