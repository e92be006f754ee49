/* t_queue.c: the built-in Queue / JoinableQueue (Python's queue.Queue), in C. */
#include "alloc.h"
#include "t_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "wait.h"

typedef struct queue {
  value **ring;      /* items, a ring buffer: head, then len items wrapping at cap */
  size_t head, len, cap;
  int64_t maxsize;   /* <= 0: unbounded */
  int64_t unfinished; /* puts not yet matched by task_done (JoinableQueue's join) */
  waitq getters;     /* parked get: waiting for an item, in arrival order */
  waitq putters;     /* parked put: each carries its item in call.arg */
  waitq joiners;     /* parked join: waiting for unfinished == 0 */
  bool shut;         /* shutdown() was called: puts fail, gets fail once it is empty */
} queue;

/* block=False for get_nowait and put_nowait; never freed */
static value no_block = {.refs = 1, .kind = VK_BOOL, .u.b = false};

static const char *const methods[] = {"empty", "full", "get", "get_nowait", "join", "put",
                                      "put_nowait", "qsize", "shutdown", "task_done", NULL};

static bool is_full(const queue *q) { return q->maxsize > 0 && (int64_t)q->len >= q->maxsize; }

static void push(queue *q, value *item) {
  if (q->len == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 8;
    value **ring = xmalloc(cap * sizeof *ring);
    for (size_t i = 0; i < q->len; i++) ring[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
  }
  q->ring[(q->head + q->len++) % q->cap] = item;
}

static value *pop(queue *q) {
  value *item = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->len--;
  return item;
}

/* An item left the queue: the longest-waiting putter, if any, gets its place. */
static void admit_putter(queue *q) {
  call *c = waitq_first(&q->putters);
  if (!c || is_full(q)) return;
  push(q, c->arg);
  c->arg = NULL; /* now the queue's */
  q->unfinished++;
  wait_finish(c, out_value(v_none()));
}

/* An item arrives: the longest-waiting getter takes it at once, else it is queued. */
static void put_item(queue *q, value *item) {
  call *c = waitq_first(&q->getters);
  q->unfinished++;
  if (c) wait_finish(c, out_value(item));
  else push(q, item);
}

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
    value *item = pop(q);
    admit_putter(q);
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
    put_item(q, v_incref(item));
    return out_value(v_none());
  }
  if (!blocking || secs == 0) return put_timeout(c);
  value *err = arg_timeout_wait(secs);
  if (err) return out_error(err);
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
   if no task is left unfinished. */
static outcome shutdown(queue *q, const value *immediate) {
  q->shut = true;
  if (immediate && v_truth(immediate)) {
    while (q->len) {
      v_decref(pop(q));
      if (q->unfinished > 0) q->unfinished--;
    }
    if (q->unfinished == 0) wake_all(&q->joiners, NULL);
  }
  wake_all(&q->getters, shut_down);
  wake_all(&q->putters, shut_down);
  return out_value(v_none());
}

static outcome task_done(queue *q) {
  if (q->unfinished <= 0)
    return out_error(v_exception_msg("ValueError", "task_done() called too many times"));
  if (--q->unfinished == 0) wake_all(&q->joiners, NULL);
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
    if (!(err = args_bind("Queue.task_done", none, 0, 0, args, kwds, a))) return task_done(q);
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

static void queue_free(shobj *o) {
  queue *q = o->state;
  while (q->len) v_decref(pop(q));
  free(q->ring);
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

const otype queue_type = {
    .name = "Queue",
    .methods = methods,
    .call = queue_call,
    .free = queue_free,
    .repr = queue_repr,
    .getvalue = queue_getvalue,
};

shobj *queue_new(int64_t maxsize) {
  queue *q = xcalloc(1, sizeof *q);
  q->maxsize = maxsize;
  return obj_new(&queue_type, q, 0);
}

shobj *queue_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"maxsize"};
  value *a[1] = {0};
  int64_t maxsize = 0;
  if ((*err = args_bind("Queue.__init__", names, 1, 0, args, kwds, a))) return NULL;
  if (a[0] && (*err = arg_int(a[0], &maxsize))) return NULL;
  return queue_new(maxsize);
}
