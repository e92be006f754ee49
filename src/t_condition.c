/* t_condition.c: the built-in Condition (Python's threading.Condition over its own RLock), in C. */
#include "alloc.h"
#include "t_condition.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "t_lock.h"
#include "wait.h"

typedef struct condition {
  lockcore lock;  /* the RLock it owns: acquire, release and locked are its */
  waitq waiters;  /* parked wait(), in arrival order; call.op = the RLock levels it gave up */
  shobj *self;    /* the object this is the state of (no hold: it lives as long) */
} condition;

static const char *const methods[] = {"acquire", "locked", "notify", "notify_all", "release", "wait", NULL};

/* A waiter leaves the condition (notified, or its time is up) and must hold the lock
   again before it answers, as Python's wait re-acquires before it returns: at once if the
   lock is free, else it parks on the lock's queue with its answer. c is not parked. */
static void restore(condition *cv, call *c, int64_t levels, bool notified) {
  if (rlock_restore(&cv->lock, cv->self, c, levels, notified)) wait_finish(c, out_value(v_bool(notified)));
}

/* A waiter's time is up: not notified, and it must hold the lock again before it answers,
   so it may park once more, on the lock's queue (then CALL_PARKED tells wait.c so). */
static outcome expired(call *c) {
  condition *cv = (condition *)((char *)c->q - offsetof(condition, waiters));
  int64_t levels = c->op;
  wait_unpark(c);
  if (rlock_restore(&cv->lock, cv->self, c, levels, false)) return out_value(v_bool(false));
  return out_parked();
}

static outcome cond_wait(condition *cv, shobj *o, const value *timeout, call *c) {
  double secs;
  if (!rlock_owned_by(&cv->lock, c->holder))
    return out_error(v_exception_msg("RuntimeError", "cannot wait on un-acquired lock"));
  value *err = sync_timeout(timeout, false, &secs);
  if (err) return out_error(err);
  if (secs == 0) { /* Python's waiter.acquire(False): not notified; then re-acquire */
    int64_t levels = rlock_release_all(&cv->lock, o, c->holder);
    if (rlock_restore(&cv->lock, o, c, levels, false)) return out_value(v_bool(false));
    return out_parked();
  }
  /* Waiting before the lock is released, as Python's wait() appends its waiter first: the
     release may hand the lock to a Lua method that runs at once (it was waiting for it) and
     notifies; that notify must find c. c may even be answered before this returns (the
     method then releases the lock too), hence the hold on o across the release. */
  wait_park(c, &cv->waiters, secs, expired, NULL);
  c->op = (int)cv->lock.depth;
  obj_hold(o);
  rlock_release_all(&cv->lock, o, c->holder);
  obj_release(o);
  return out_parked();
}

/* notify(n): the n longest waiters go back to the lock, notified. */
static outcome cond_notify(condition *cv, const value *nv, bool all, call *c) {
  if (!rlock_owned_by(&cv->lock, c->holder))
    return out_error(v_exception_msg("RuntimeError", "cannot notify on un-acquired lock"));
  size_t waiting = 0, n = 0;
  for (call *w = waitq_first(&cv->waiters); w; w = w->next) waiting++;
  if (!waiting) return out_value(v_none()); /* Python looks at n only while there are waiters */
  if (all || !nv) n = all ? waiting : 1;
  else if (nv->kind == VK_INT) n = nv->u.i > 0 ? (size_t)nv->u.i : 0;
  else if (nv->kind == VK_BOOL) n = nv->u.b;
  else if (nv->kind == VK_FLOAT) n = nv->u.f > 0 ? (size_t)ceil(fmin(nv->u.f, (double)waiting)) : 0;
  else if (nv->kind == VK_BIGINT) n = (nv->u.s.data[nv->u.s.len - 1] & 0x80) ? 0 : waiting;
  else {
    char msg[160];
    snprintf(msg, sizeof msg, "'>' not supported between instances of '%s' and 'int'", v_typename(nv));
    return out_error(v_exception_msg("TypeError", msg));
  }
  if (n > waiting) n = waiting;
  while (n--) {
    call *w = waitq_first(&cv->waiters);
    if (!w) break;
    int64_t levels = w->op;
    wait_unpark(w);
    restore(cv, w, levels, true);
  }
  return out_value(v_none());
}

static outcome condition_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  condition *cv = o->state;
  value *a[1] = {0}, *err = NULL;
  static const char *const wait_names[] = {"timeout"};
  static const char *const notify_names[] = {"n"};
  static const char *const none[] = {NULL};
  if (strcmp(m, "wait") == 0) {
    if (!(err = args_bind("Condition.wait", wait_names, 1, 0, args, kwds, a))) return cond_wait(cv, o, a[0], c);
  } else if (strcmp(m, "notify") == 0) {
    if (!(err = args_bind("Condition.notify", notify_names, 1, 0, args, kwds, a)))
      return cond_notify(cv, a[0], false, c);
  } else if (strcmp(m, "notify_all") == 0) {
    if (!(err = args_bind("Condition.notify_all", none, 0, 0, args, kwds, a)))
      return cond_notify(cv, NULL, true, c);
  } else {
    return lockcore_call(&cv->lock, o, "Condition", m, args, kwds, c);
  }
  return out_error(err);
}

static void condition_free(shobj *o) {
  condition *cv = o->state;
  lockcore_free(&cv->lock);
  free(cv);
}

static void condition_repr(const shobj *o, buf *out) {
  const condition *cv = o->state;
  size_t n = 0;
  for (const call *w = waitq_first(&cv->waiters); w; w = w->next) n++;
  buf_str(out, "<Condition(");
  lockcore_repr(&cv->lock, o->id, out);
  buf_printf(out, ", %zu)>", n);
}

/* CPython pickles the object for #GETVALUE: its RLock cannot be. */
static value *condition_getvalue(shobj *o, value **err) {
  (void)o;
  *err = v_exception_msg("TypeError", "cannot pickle '_thread.RLock' object");
  return NULL;
}

static void condition_abandon(shobj *o, void *holder, int count, bool release, const char *peer) {
  condition *cv = o->state;
  lockcore_abandon(&cv->lock, o, holder, count, release, peer);
}

static void condition_info(const shobj *o, obj_info *out) {
  const condition *cv = o->state;
  lockcore_info(&cv->lock, out);
  out->waiters += waitq_len(&cv->waiters);
}

const otype condition_type = {
    .name = "threading.Condition",
    .methods = methods,
    .call = condition_call,
    .free = condition_free,
    .repr = condition_repr,
    .getvalue = condition_getvalue,
    .abandon = condition_abandon,
    .info = condition_info,
};

shobj *condition_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"lock"};
  value *a[1] = {0};
  if ((*err = args_bind("Condition.__init__", names, 1, 0, args, kwds, a))) return NULL;
  if (a[0] && a[0]->kind != VK_NONE) {
    /* a Lock or RLock proxy arrives as an inert recipe, not as the shared lock it names */
    *err = v_exception_msg("TypeError", "shmgr's Condition makes its own lock: create it as Condition() "
                                        "(a Lock or RLock given as its lock is not supported yet)");
    return NULL;
  }
  condition *cv = xcalloc(1, sizeof *cv);
  lockcore_init(&cv->lock, LK_RLOCK, 0);
  shobj *o = obj_new(&condition_type, cv, 0);
  cv->self = o;
  return o;
}
