/* wait.c: parked calls: waiters in arrival order, timers, wake-ups, cancellation. */
#include "wait.h"

#include <stddef.h>

struct ev_loop *wait_loop;

static void timed_out(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop, (void)revents;
  call *c = (call *)((char *)t - offsetof(call, timer));
  outcome r = c->on_timeout(c);
  if (r.st != CALL_PARKED) wait_finish(c, r); /* else the handler parked c again (t_condition.c) */
}

void wait_park(call *c, waitq *q, double timeout, outcome (*on_timeout)(call *c), value *arg) {
  ev_timer_stop(wait_loop, &c->timer); /* ev_timer_init must not meet a pending watcher */
  c->q = q;
  c->next = NULL;
  c->prev = q->tail;
  if (q->tail) q->tail->next = c;
  else q->head = c;
  q->tail = c;
  c->arg = arg;
  c->on_timeout = on_timeout;
  if (timeout >= 0) {
    ev_timer_init(&c->timer, timed_out, timeout, 0.);
    ev_timer_start(wait_loop, &c->timer);
  }
}

void waitq_split(waitq *q, size_t n, waitq *batch) {
  while (n-- > 0 && q->head) {
    call *c = q->head;
    q->head = c->next;
    if (q->head) q->head->prev = NULL;
    else q->tail = NULL;
    c->q = batch;
    c->next = NULL;
    c->prev = batch->tail;
    if (batch->tail) batch->tail->next = c;
    else batch->head = c;
    batch->tail = c;
  }
}

size_t waitq_len(const waitq *q) {
  size_t n = 0;
  for (const call *c = q->head; c; c = c->next) n++;
  return n;
}

void wait_pending(call *c, void (*on_cancel)(call *c), void *inner) {
  c->on_cancel = on_cancel;
  c->inner = inner;
}

void wait_unpark(call *c) {
  if (c->q) {
    if (c->prev) c->prev->next = c->next;
    else c->q->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else c->q->tail = c->prev;
    c->q = NULL;
    c->prev = c->next = NULL;
  }
  /* Always, not only while active: a one-shot timer that expired in this loop turn is no
     longer active but still pending, and if another event of the same turn ended the call
     (a Barrier timeout breaking the barrier for every waiter, a put meeting a getter), its
     callback would still run, for a call that has been answered and perhaps parked anew.
     ev_timer_stop forgets the pending event too. */
  ev_timer_stop(wait_loop, &c->timer);
  c->on_cancel = NULL;
  c->inner = NULL;
}

void wait_finish(call *c, outcome r) {
  value *arg = c->arg;
  c->arg = NULL;
  wait_unpark(c);
  v_decref(arg);
  c->done(c, r);
}

void wait_cancel(call *c) {
  void (*on_cancel)(call *) = c->on_cancel;
  void *inner = c->inner;
  value *arg = c->arg;
  c->arg = NULL;
  wait_unpark(c);
  v_decref(arg);
  if (on_cancel) {
    c->inner = inner; /* on_cancel finds the nested wait there */
    on_cancel(c);
    c->inner = NULL;
  }
}

bool wait_is_pending(const call *c) { return c->q != NULL || c->on_cancel != NULL; }

void outcome_free(outcome r) {
  v_decref(r.v);
  if (r.obj) obj_release(r.obj);
}
