/* t_barrier.c: the built-in Barrier (Python's threading.Barrier), in C. */
#include "alloc.h"
#include "t_barrier.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "t_lock.h"
#include "wait.h"

/* Python's Barrier has four states: filling, draining, resetting, broken. Here a barrier
   drains (or resets) in one step, answering every waiter at once, so only filling and
   broken remain; n_waiting and broken read the same as Python's once its threads ran. */
typedef struct barrier {
  value *parties;  /* as given: the `parties` property returns it */
  double nparties; /* what `index + 1 == parties` compares with (Python allows a float) */
  value *timeout;  /* the default for wait(None), as given: checked when a wait uses it */
  int64_t count;   /* parties waiting now */
  bool broken;
  waitq waiters;   /* parked wait(), in arrival order; call.op = the index it will answer */
} barrier;

static const char *const methods[] = {"__getattribute__", "abort", "reset", "wait", NULL};

static value *broken_error(void) { return v_exception("threading", "BrokenBarrierError", v_tuple(0)); }

/* Answer the waiters parked now (count of them: a waiter answered at once that waits again
   is not among them): with their index when released, else with BrokenBarrierError. */
static void wake_all(barrier *b, bool released) {
  waitq batch = {0};
  waitq_split(&b->waiters, (size_t)b->count, &batch); /* see waitq_split: a Lua waiter that
                                                          resumes may wait or abort anew */
  b->count = 0;
  for (call *w; (w = waitq_first(&batch));)
    wait_finish(w, released ? out_value(v_int(w->op)) : out_error(broken_error()));
}

/* A waiting client went away (wait_cancel has unparked it). CPython's server would leave
   its thread waiting, so it would still count; shmgr takes the arrival back instead, as it
   gives back what a vanished client held: the parties still waiting need one more arrival,
   and those behind it move up one index so that indices stay 0..parties-1. */
static void left(call *c) {
  barrier *b = c->inner;
  b->count--;
  for (call *w = waitq_first(&b->waiters); w; w = w->next)
    if (w->op > c->op) w->op--;
}

/* A waiter's time is up: it breaks the barrier for everyone, as Python's _wait does. */
static outcome timed_out(call *c) {
  barrier *b = (barrier *)((char *)c->q - offsetof(barrier, waiters));
  wait_unpark(c);
  b->count--;
  b->broken = true;
  wake_all(b, false);
  return out_error(broken_error());
}

static outcome barrier_wait(barrier *b, const value *timeout, call *c) {
  double secs;
  if (b->broken) return out_error(broken_error());
  int64_t index = b->count;
  if ((double)(index + 1) == b->nparties) { /* the last party releases the others */
    wake_all(b, true);
    return out_value(v_int(index));
  }
  value *err = sync_timeout(timeout && timeout->kind != VK_NONE ? timeout : b->timeout, true, &secs);
  if (err) return out_error(err);
  if (secs == 0) { /* wait_for gives up at once: broken */
    b->broken = true;
    wake_all(b, false);
    return out_error(broken_error());
  }
  b->count++;
  wait_park(c, &b->waiters, secs, timed_out, NULL);
  c->op = (int)index;
  wait_pending(c, left, b); /* wait_unpark clears it: it runs only if the caller goes away */
  return out_parked();
}

/* The properties BarrierProxy reads through __getattribute__ (a slot wrapper's checks). */
static outcome attribute(barrier *b, const value *args, const value *kwds) {
  char msg[160];
  size_t n = args ? args->u.seq.len : 0;
  if (kwds && dict_len(kwds))
    return out_error(v_exception_msg("TypeError", "wrapper __getattribute__() takes no keyword arguments"));
  if (n != 1) {
    snprintf(msg, sizeof msg, "expected 1 argument, got %zu", n);
    return out_error(v_exception_msg("TypeError", msg));
  }
  const value *name = args->u.seq.items[0];
  if (name->kind != VK_STR) {
    snprintf(msg, sizeof msg, "attribute name must be string, not '%s'", v_typename(name));
    return out_error(v_exception_msg("TypeError", msg));
  }
  if (v_is_str(name, "parties")) return out_value(v_incref(b->parties));
  if (v_is_str(name, "n_waiting")) return out_value(v_int(b->broken ? 0 : b->count));
  if (v_is_str(name, "broken")) return out_value(v_bool(b->broken));
  snprintf(msg, sizeof msg, "'Barrier' object has no attribute '%.100s'", name->u.s.data);
  return out_error(v_exception_msg("AttributeError", msg));
}

static outcome barrier_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  barrier *b = o->state;
  value *a[1] = {0}, *err = NULL;
  static const char *const wait_names[] = {"timeout"};
  static const char *const none[] = {NULL};
  if (strcmp(m, "wait") == 0) {
    if (!(err = args_bind("Barrier.wait", wait_names, 1, 0, args, kwds, a))) return barrier_wait(b, a[0], c);
  } else if (strcmp(m, "__getattribute__") == 0) {
    return attribute(b, args, kwds);
  } else if (strcmp(m, "abort") == 0) {
    if (!(err = args_bind("Barrier.abort", none, 0, 0, args, kwds, a))) {
      b->broken = true;
      wake_all(b, false);
      return out_value(v_none());
    }
  } else if (strcmp(m, "reset") == 0) {
    /* waiters get BrokenBarrierError, and the barrier is whole again (even if it was broken) */
    if (!(err = args_bind("Barrier.reset", none, 0, 0, args, kwds, a))) {
      b->broken = false;
      wake_all(b, false);
      return out_value(v_none());
    }
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "'Barrier' object has no attribute '%s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void barrier_free(shobj *o) {
  barrier *b = o->state;
  v_decref(b->parties);
  v_decref(b->timeout);
  free(b);
}

static void barrier_repr(const shobj *o, buf *out) {
  const barrier *b = o->state;
  buf_printf(out, "<threading.Barrier at 0x%llx: ", (unsigned long long)o->id);
  if (b->broken) {
    buf_str(out, "broken>");
    return;
  }
  buf_printf(out, "waiters=%lld/", (long long)b->count);
  v_repr(out, b->parties);
  buf_str(out, ">");
}

/* CPython pickles the object for #GETVALUE: the lock inside its Condition cannot be. */
static value *barrier_getvalue(shobj *o, value **err) {
  (void)o;
  *err = v_exception_msg("TypeError", "cannot pickle '_thread.lock' object");
  return NULL;
}

static void barrier_info(const shobj *o, obj_info *out) { out->waiters = waitq_len(&((const barrier *)o->state)->waiters); }

const otype barrier_type = {
    .name = "threading.Barrier",
    .methods = methods,
    .call = barrier_call,
    .free = barrier_free,
    .repr = barrier_repr,
    .getvalue = barrier_getvalue,
    .info = barrier_info,
};

shobj *barrier_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"parties", "action", "timeout"};
  value *a[3] = {0};
  double n;
  if ((*err = args_bind("Barrier.__init__", names, 3, 1, args, kwds, a))) return NULL;
  const value *p = a[0];
  if (p->kind == VK_INT) n = (double)p->u.i;
  else if (p->kind == VK_BOOL) n = p->u.b;
  else if (p->kind == VK_FLOAT) n = p->u.f;
  else if (p->kind == VK_BIGINT) n = (p->u.s.data[p->u.s.len - 1] & 0x80) ? -1 : 1e300;
  else {
    char msg[160];
    snprintf(msg, sizeof msg, "'<' not supported between instances of '%s' and 'int'", v_typename(p));
    *err = v_exception_msg("TypeError", msg);
    return NULL;
  }
  if (n < 1) {
    *err = v_exception_msg("ValueError", "parties must be > 0");
    return NULL;
  }
  if (a[1] && a[1]->kind != VK_NONE) {
    *err = v_exception_msg("TypeError", "shmgr's Barrier cannot run an action: it never runs client code "
                                        "(let the process whose wait() returns 0 run it instead)");
    return NULL;
  }
  barrier *b = xcalloc(1, sizeof *b);
  b->parties = v_incref(a[0]);
  b->nparties = n;
  b->timeout = a[2] ? v_incref(a[2]) : v_none();
  return obj_new(&barrier_type, b, 0);
}
