/* t_event.c: the built-in Event (Python's threading.Event), in C. */
#include "alloc.h"
#include "t_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "t_lock.h"
#include "wait.h"

typedef struct event {
  bool flag;
  waitq waiters; /* parked wait(), in arrival order */
} event;

static const char *const methods[] = {"clear", "is_set", "set", "wait", NULL};

static outcome answer_false(call *c) {
  (void)c;
  return out_value(v_bool(false));
}

static outcome wait_for_flag(event *e, const value *timeout, call *c) {
  double secs;
  if (e->flag) return out_value(v_bool(true));
  value *err = sync_timeout(timeout, false, &secs);
  if (err) return out_error(err);
  if (secs == 0) return out_value(v_bool(false));
  wait_park(c, &e->waiters, secs, answer_false, NULL);
  return out_parked();
}

/* set(): every waiter parked now returns True, in arrival order. Taken out first (see
   waitq_split), so that a waiter answered at once (a Lua method resuming) that clears the
   flag and waits again is not answered as one of them. */
static void set_flag(event *e) {
  waitq batch = {0};
  e->flag = true;
  waitq_split(&e->waiters, waitq_len(&e->waiters), &batch);
  for (call *w; (w = waitq_first(&batch));) wait_finish(w, out_value(v_bool(true)));
}

static outcome event_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  event *e = o->state;
  value *a[1] = {0}, *err = NULL;
  static const char *const wait_names[] = {"timeout"};
  static const char *const none[] = {NULL};
  if (strcmp(m, "wait") == 0) {
    if (!(err = args_bind("Event.wait", wait_names, 1, 0, args, kwds, a))) return wait_for_flag(e, a[0], c);
  } else if (strcmp(m, "is_set") == 0) {
    if (!(err = args_bind("Event.is_set", none, 0, 0, args, kwds, a))) return out_value(v_bool(e->flag));
  } else if (strcmp(m, "set") == 0) {
    if (!(err = args_bind("Event.set", none, 0, 0, args, kwds, a))) {
      set_flag(e);
      return out_value(v_none());
    }
  } else if (strcmp(m, "clear") == 0) {
    if (!(err = args_bind("Event.clear", none, 0, 0, args, kwds, a))) {
      e->flag = false;
      return out_value(v_none());
    }
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "'Event' object has no attribute '%s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void event_free(shobj *o) { free(o->state); }

static void event_repr(const shobj *o, buf *out) {
  const event *e = o->state;
  buf_printf(out, "<threading.Event at 0x%llx: %s>", (unsigned long long)o->id, e->flag ? "set" : "unset");
}

/* CPython pickles the object for #GETVALUE: the lock inside its Condition cannot be. */
static value *event_getvalue(shobj *o, value **err) {
  (void)o;
  *err = v_exception_msg("TypeError", "cannot pickle '_thread.lock' object");
  return NULL;
}

static void event_info(const shobj *o, obj_info *out) { out->waiters = waitq_len(&((const event *)o->state)->waiters); }

const otype event_type = {
    .name = "threading.Event",
    .methods = methods,
    .call = event_call,
    .free = event_free,
    .repr = event_repr,
    .getvalue = event_getvalue,
    .info = event_info,
};

shobj *event_create(value *args, value *kwds, value **err) {
  static const char *const none[] = {NULL};
  value *a[1];
  if ((*err = args_bind("Event.__init__", none, 0, 0, args, kwds, a))) return NULL;
  return obj_new(&event_type, xcalloc(1, sizeof(event)), 0);
}
