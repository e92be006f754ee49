/* t_lock.c: the built-in Lock, RLock, Semaphore and BoundedSemaphore (Python's threading), in C. */
#include "alloc.h"
#include "t_lock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "log.h"
#include "owner.h"
#include "stats.h"


static const char *const lock_methods[] = {"acquire", "locked", "release", NULL};
static const char *const sem_methods[] = {"acquire", "release", NULL};

/* ---- arguments ---- */

/* A C method without parameters (lock.release, RLock.locked, ...), worded as CPython's
   METH_NOARGS methods are. */
static value *no_args(const char *fname, const value *args, const value *kwds) {
  char msg[160];
  if (kwds && dict_len(kwds)) {
    snprintf(msg, sizeof msg, "%s() takes no keyword arguments", fname);
    return v_exception_msg("TypeError", msg);
  }
  if (args && args->u.seq.len) {
    snprintf(msg, sizeof msg, "%s() takes no arguments (%zu given)", fname, args->u.seq.len);
    return v_exception_msg("TypeError", msg);
  }
  return NULL;
}

value *sync_timeout(const value *v, bool added, double *seconds) {
  double t;
  if (!v || v->kind == VK_NONE) {
    *seconds = -1;
    return NULL;
  }
  if (v->kind == VK_INT) t = (double)v->u.i;
  else if (v->kind == VK_BOOL) t = v->u.b;
  else if (v->kind == VK_FLOAT) t = v->u.f;
  else if (v->kind == VK_BIGINT) t = (v->u.s.data[v->u.s.len - 1] & 0x80) ? -HUGE_VAL : HUGE_VAL;
  else {
    char msg[160];
    if (added) snprintf(msg, sizeof msg, "unsupported operand type(s) for +: 'float' and '%s'", v_typename(v));
    else snprintf(msg, sizeof msg, "'>' not supported between instances of '%s' and 'int'", v_typename(v));
    return v_exception_msg("TypeError", msg);
  }
  if (isnan(t)) {
    /* Condition.wait tests `timeout > 0` (false: do not wait); Semaphore and Barrier
       compute a deadline that no clock reaches, and so wait until they are woken */
    *seconds = added ? -1 : 0;
    return NULL;
  }
  if (t <= 0) {
    *seconds = 0;
    return NULL;
  }
  if (t > TIMEOUT_MAX)
    return v_exception_msg("OverflowError", v->kind == VK_BIGINT && !added
                                                ? "timestamp too large to convert to C PyTime_t"
                                                : "timestamp out of range for platform time_t");
  *seconds = t;
  return NULL;
}

/* _thread's lock_acquire_parse_args (Lock and RLock): acquire(blocking=True, timeout=-1).
   *timeout gets -1 (forever), 0 (do not wait) or seconds. */
static value *parse_acquire(const value *args, const value *kwds, double *timeout) {
  static const char *const names[] = {"blocking", "timeout"};
  const value *a[2] = {0};
  char msg[160];
  size_t npos = args ? args->u.seq.len : 0;
  if (npos > 2) {
    snprintf(msg, sizeof msg, "acquire() takes at most 2 arguments (%zu given)", npos);
    return v_exception_msg("TypeError", msg);
  }
  for (size_t i = 0; i < npos; i++) a[i] = args->u.seq.items[i];
  size_t pos = 0;
  value *k, *v;
  while (kwds && dict_next(kwds, &pos, &k, &v)) {
    size_t i = 0;
    while (i < 2 && !v_is_str(k, names[i])) i++;
    if (i == 2) {
      snprintf(msg, sizeof msg, "acquire() got an unexpected keyword argument '%s'",
               k->kind == VK_STR ? k->u.s.data : "?");
      return v_exception_msg("TypeError", msg);
    }
    if (a[i]) {
      snprintf(msg, sizeof msg, "argument for acquire() given by name ('%s') and position (%zu)", names[i], i + 1);
      return v_exception_msg("TypeError", msg);
    }
    a[i] = v;
  }
  bool blocking = !a[0] || v_truth(a[0]);
  double t = -1;
  if (a[1]) {
    const value *x = a[1];
    if (x->kind == VK_INT) t = (double)x->u.i;
    else if (x->kind == VK_BOOL) t = x->u.b;
    else if (x->kind == VK_FLOAT) t = x->u.f;
    else if (x->kind == VK_BIGINT)
      return v_exception_msg("OverflowError", "timestamp too large to convert to C PyTime_t");
    else {
      snprintf(msg, sizeof msg, "'%s' object cannot be interpreted as an integer", v_typename(x));
      return v_exception_msg("TypeError", msg);
    }
    if (isnan(t)) return v_exception_msg("ValueError", "Invalid value NaN (not a number)");
    if (fabs(t) > TIMEOUT_MAX)
      return v_exception_msg("OverflowError", "timestamp out of range for platform time_t");
  }
  if (!blocking && t != -1)
    return v_exception_msg("ValueError", "can't specify a timeout for a non-blocking call");
  if (t < 0 && t != -1) return v_exception_msg("ValueError", "timeout value must be a non-negative number");
  *timeout = blocking ? t : 0;
  return NULL;
}

/* ---- who holds what (owner.h) ---- */

/* holder took one unit of a Lock or Semaphore. */
static void take(lockcore *l, shobj *o, void *holder) {
  own_take(holder, o);
  if (!holder) return;
  for (size_t i = 0; i < l->ntakers; i++)
    if (l->takers[i] == holder) return;
  if (l->ntakers == l->captakers) {
    l->captakers = l->captakers ? l->captakers * 2 : 4;
    l->takers = xrealloc(l->takers, l->captakers * sizeof *l->takers);
  }
  l->takers[l->ntakers++] = holder;
}

/* Takers stay in the order they first took: the earliest is given back first. */
static void forget_taker(lockcore *l, size_t i) {
  memmove(&l->takers[i], &l->takers[i + 1], (--l->ntakers - i) * sizeof *l->takers);
}

/* One unit of a Lock or Semaphore came back, released by releaser. Python lets anyone
   release, so the unit given back is the releaser's own take if it has one, else the take
   of the earliest other taker still holding one: then when one client took and another
   released (a lock handed over, a semaphore used as a signal), nothing is left behind to
   be released a second time when the taker goes away. Returns false when nobody holds a
   take any more. */
static bool give(lockcore *l, shobj *o, void *releaser) {
  size_t i = 0;
  if (releaser && own_count(releaser, o) > 0) {
    while (i < l->ntakers && l->takers[i] != releaser) i++;
    if (i == l->ntakers) { /* not a taker of ours: cannot happen, but its take is what to give */
      own_give(releaser, o);
      return true;
    }
  } else {
    /* a taker with no take left (defensive: give and abandon forget them) is dropped */
    while (i < l->ntakers && own_count(l->takers[i], o) == 0) forget_taker(l, i);
    if (i == l->ntakers) return false;
  }
  own_give(l->takers[i], o);
  if (own_count(l->takers[i], o) == 0) forget_taker(l, i);
  return true;
}

/* ---- granting ---- */

/* Deliver a waiter its answer: True for an acquire, the Condition's answer for a restore. */
static void answer(call *w) {
  value *a = w->arg;
  w->arg = NULL;
  wait_finish(w, out_value(a ? a : v_bool(true)));
}

/* The lock became free (or a semaphore grew): hand it to waiters in arrival order. State
   changes before the answers, so an answer that runs code at once (a Lua method resuming)
   sees the lock as it is: every unit there is goes to a waiter first, then the waiters are
   answered, so that one answered first that acquires again at once waits behind the others
   (waiters are served strictly in arrival order). */
static void grant(lockcore *l, shobj *o) {
  call *w;
  if (l->kind == LK_RLOCK) {
    if (l->depth == 0 && (w = waitq_first(&l->waiters))) {
      l->owner = w->holder;
      l->depth = w->op;
      for (int i = 0; i < w->op; i++) own_take(w->holder, o);
      answer(w);
    }
    return;
  }
  size_t n = 0;
  for (w = waitq_first(&l->waiters); w && (int64_t)n < l->value; w = w->next) n++;
  waitq batch = {0};
  waitq_split(&l->waiters, n, &batch);
  l->value -= (int64_t)n;
  for (w = waitq_first(&batch); w; w = w->next) take(l, o, w->holder);
  while ((w = waitq_first(&batch))) answer(w);
}

static outcome answer_false(call *c) {
  (void)c;
  return out_value(v_bool(false));
}

/* Park an acquire of one unit (one RLock level); timeout -1 waits forever. */
static outcome park(lockcore *l, call *c, double timeout) {
  wait_park(c, &l->waiters, timeout, answer_false, NULL);
  c->op = 1;
  return out_parked();
}

/* ---- the methods ---- */

static outcome acquire(lockcore *l, shobj *o, value *args, value *kwds, call *c) {
  double timeout = -1;
  value *err = parse_acquire(args, kwds, &timeout);
  if (err) return out_error(err);
  if (l->kind == LK_RLOCK) {
    if (l->depth > 0 && l->owner == c->holder) {
      l->depth++;
      own_take(c->holder, o);
      return out_value(v_bool(true));
    }
    if (l->depth == 0) {
      l->owner = c->holder;
      l->depth = 1;
      own_take(c->holder, o);
      return out_value(v_bool(true));
    }
  } else if (l->value > 0) {
    l->value--;
    take(l, o, c->holder);
    return out_value(v_bool(true));
  }
  if (timeout == 0) return out_value(v_bool(false));
  return park(l, c, timeout);
}

/* Semaphore.acquire(blocking=True, timeout=None): threading.py's, a Python def. */
static outcome sem_acquire(lockcore *l, shobj *o, value *args, value *kwds, call *c) {
  static const char *const names[] = {"blocking", "timeout"};
  value *a[2] = {0}, *err;
  double timeout = -1;
  if ((err = args_bind("Semaphore.acquire", names, 2, 0, args, kwds, a))) return out_error(err);
  bool blocking = !a[0] || v_truth(a[0]);
  if (!blocking && a[1] && a[1]->kind != VK_NONE)
    return out_error(v_exception_msg("ValueError", "can't specify timeout for non-blocking acquire"));
  if (l->value > 0) {
    l->value--;
    take(l, o, c->holder);
    return out_value(v_bool(true));
  }
  if (!blocking) return out_value(v_bool(false));
  if ((err = sync_timeout(a[1], true, &timeout))) return out_error(err);
  if (timeout == 0) return out_value(v_bool(false));
  return park(l, c, timeout);
}

static outcome release(lockcore *l, shobj *o, value *args, value *kwds, call *c) {
  value *err = no_args(l->kind == LK_RLOCK ? "RLock.release" : "lock.release", args, kwds);
  if (err) return out_error(err);
  if (l->kind == LK_RLOCK) {
    if (!rlock_owned_by(l, c->holder))
      return out_error(v_exception_msg("RuntimeError", "cannot release un-acquired lock"));
    own_give(c->holder, o);
    if (--l->depth == 0) {
      l->owner = NULL;
      grant(l, o);
    }
    return out_value(v_none());
  }
  if (l->value > 0) return out_error(v_exception_msg("RuntimeError", "release unlocked lock"));
  l->value = 1;
  give(l, o, c->holder);
  grant(l, o);
  return out_value(v_none());
}

/* (Bounded)Semaphore.release(n=1). */
static outcome sem_release(lockcore *l, shobj *o, value *args, value *kwds, call *c) {
  static const char *const names[] = {"n"};
  value *a[1] = {0}, *err;
  int64_t n = 1;
  if ((err = args_bind(l->kind == LK_BOUNDED ? "BoundedSemaphore.release" : "Semaphore.release", names, 1, 0, args,
                       kwds, a)))
    return out_error(err);
  if (a[0]) {
    const value *x = a[0];
    bool small = false;
    if (x->kind == VK_INT || x->kind == VK_BOOL) n = x->kind == VK_INT ? x->u.i : x->u.b;
    else if (x->kind == VK_FLOAT) small = !(x->u.f >= 1);
    else if (x->kind == VK_BIGINT) small = (x->u.s.data[x->u.s.len - 1] & 0x80) != 0;
    else {
      char msg[160];
      snprintf(msg, sizeof msg, "'<' not supported between instances of '%s' and 'int'", v_typename(x));
      return out_error(v_exception_msg("TypeError", msg));
    }
    if (small || ((x->kind == VK_INT || x->kind == VK_BOOL) && n < 1))
      return out_error(v_exception_msg("ValueError", "n must be one or more"));
    /* BoundedSemaphore checks its bound first, whatever n is */
    bool past = x->kind == VK_BIGINT || (x->kind == VK_FLOAT && (double)l->value + x->u.f > (double)l->initial);
    if (l->kind == LK_BOUNDED && past)
      return out_error(v_exception_msg("ValueError", "Semaphore released too many times"));
    /* Python would count by 2.5 or by 2**100; shmgr's counter is an int64 */
    if (x->kind == VK_FLOAT)
      return out_error(v_exception_msg("TypeError", "'float' object cannot be interpreted as an integer"));
    if (x->kind == VK_BIGINT)
      return out_error(v_exception_msg("OverflowError", "Python int too large to convert to C long"));
  }
  if (l->kind == LK_BOUNDED && n > l->initial - l->value) /* value + n > initial, without overflow */
    return out_error(v_exception_msg("ValueError", "Semaphore released too many times"));
  if (l->value > INT64_MAX - n)
    return out_error(v_exception_msg("OverflowError", "Python int too large to convert to C long"));
  l->value += n;
  for (int64_t i = 0; i < n; i++)
    if (!give(l, o, c->holder)) break; /* nobody holds a take any more */
  grant(l, o);
  return out_value(v_none());
}

outcome lockcore_call(lockcore *l, shobj *o, const char *cls, const char *m, value *args, value *kwds, call *c) {
  bool sem = l->kind == LK_SEMAPHORE || l->kind == LK_BOUNDED;
  if (strcmp(m, "acquire") == 0) return sem ? sem_acquire(l, o, args, kwds, c) : acquire(l, o, args, kwds, c);
  if (strcmp(m, "release") == 0) return sem ? sem_release(l, o, args, kwds, c) : release(l, o, args, kwds, c);
  if (strcmp(m, "locked") == 0 && !sem) {
    value *err = no_args(l->kind == LK_RLOCK ? "RLock.locked" : "lock.locked", args, kwds);
    if (err) return out_error(err);
    return out_value(v_bool(l->kind == LK_RLOCK ? l->depth > 0 : l->value == 0));
  }
  char msg[160];
  snprintf(msg, sizeof msg, "'%s' object has no attribute '%s'", cls, m);
  return out_error(v_exception_msg("AttributeError", msg));
}

/* ---- for t_condition.c ---- */

bool rlock_owned_by(const lockcore *l, const void *holder) { return l->depth > 0 && l->owner == holder; }

int64_t rlock_release_all(lockcore *l, shobj *o, void *holder) {
  int64_t levels = l->depth;
  for (int64_t i = 0; i < levels; i++) own_give(holder, o);
  l->depth = 0;
  l->owner = NULL;
  grant(l, o);
  return levels;
}

bool rlock_restore(lockcore *l, shobj *o, call *c, int64_t levels, bool result) {
  if (l->depth == 0) {
    l->owner = c->holder;
    l->depth = levels;
    for (int64_t i = 0; i < levels; i++) own_take(c->holder, o);
    return true;
  }
  wait_park(c, &l->waiters, -1, NULL, v_bool(result));
  c->op = (int)levels;
  return false;
}

/* The owner of an RLock whose holder went away under lock_policy "keep": no client is it,
   so nobody can release the RLock, as nobody can release a CPython RLock whose thread died. */
static char departed;

void lockcore_info(const lockcore *l, obj_info *out) {
  out->waiters = waitq_len(&l->waiters);
  if (l->kind == LK_RLOCK) {
    out->orphaned = l->depth && l->owner == &departed;
    out->holder = l->depth && !out->orphaned ? l->owner : NULL;
    out->held = l->depth;
    return;
  }
  /* a Lock or Semaphore any client may release: the first taker that has not given all back */
  out->holder = l->ntakers ? l->takers[0] : NULL;
  if (l->kind == LK_LOCK) out->held = l->value ? 0 : 1, out->orphaned = !l->value && !l->ntakers;
  else out->size = l->value, out->held = (int64_t)l->ntakers;
}

void lockcore_abandon(lockcore *l, shobj *o, void *holder, int count, bool release, const char *peer) {
  logmsg(LOG_WARN, "%s disconnected holding %s %s (%d time%s): %s", peer, o->cls, obj_ident(o), count,
         count == 1 ? "" : "s", release ? "released" : "kept (lock_policy = \"keep\")");
  if (release) the_stats.locks_released += (uint64_t)count;
  if (l->kind == LK_RLOCK) {
    if (!rlock_owned_by(l, holder)) return;
    if (!release) {
      l->owner = &departed;
      return;
    }
    l->depth -= count;
    if (l->depth > 0) return; /* cannot happen: every level is one take */
    l->depth = 0;
    l->owner = NULL;
  } else {
    for (size_t i = 0; i < l->ntakers; i++)
      if (l->takers[i] == holder) {
        forget_taker(l, i);
        break;
      }
    if (!release) return; /* the units stay taken: anyone may release them, as Python allows */
    l->value += count;
    if (l->kind == LK_LOCK && l->value > 1) l->value = 1;
    if (l->kind == LK_BOUNDED && l->value > l->initial) l->value = l->initial;
  }
  grant(l, o);
}

void lockcore_repr(const lockcore *l, uint64_t id, buf *out) {
  unsigned long long at = (unsigned long long)id;
  switch (l->kind) {
  case LK_LOCK:
    buf_printf(out, "<%s _thread.lock object at 0x%llx>", l->value ? "unlocked" : "locked", at);
    break;
  case LK_RLOCK:
    /* CPython shows the owning thread's ident; a server address must not reach clients, so
       an owned RLock shows owner=1 (0 when free, as in CPython) */
    buf_printf(out, "<%s _thread.RLock object owner=%d count=%lld at 0x%llx>", l->depth ? "locked" : "unlocked",
               l->depth ? 1 : 0, (long long)l->depth, at);
    break;
  case LK_SEMAPHORE:
    buf_printf(out, "<threading.Semaphore at 0x%llx: value=%lld>", at, (long long)l->value);
    break;
  case LK_BOUNDED:
    buf_printf(out, "<threading.BoundedSemaphore at 0x%llx: value=%lld/%lld>", at, (long long)l->value,
               (long long)l->initial);
    break;
  }
}

void lockcore_init(lockcore *l, lock_kind kind, int64_t count) {
  memset(l, 0, sizeof *l);
  l->kind = kind;
  l->value = l->initial = count;
}

void lockcore_free(lockcore *l) { free(l->takers); }

/* ---- the otypes ---- */

static outcome lock_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  const char *cls = o->type == &lock_type ? "lock" : o->type == &rlock_type ? "RLock" : "Semaphore";
  return lockcore_call(o->state, o, cls, m, args, kwds, c);
}

static void lock_free(shobj *o) {
  lockcore_free(o->state);
  free(o->state);
}

static void lock_repr(const shobj *o, buf *out) { lockcore_repr(o->state, o->id, out); }

/* CPython pickles the object for #GETVALUE, which no lock survives. */
static value *lock_getvalue(shobj *o, value **err) {
  *err = v_exception_msg("TypeError", o->type == &rlock_type ? "cannot pickle '_thread.RLock' object"
                                                               : "cannot pickle '_thread.lock' object");
  return NULL;
}

static void lock_info(const shobj *o, obj_info *out) { lockcore_info(o->state, out); }

static void lock_abandon(shobj *o, void *holder, int count, bool release, const char *peer) {
  lockcore_abandon(o->state, o, holder, count, release, peer);
}

const otype lock_type = {.name = "_thread.lock", .methods = lock_methods, .call = lock_call, .free = lock_free,
                         .repr = lock_repr, .getvalue = lock_getvalue, .abandon = lock_abandon, .info = lock_info};
const otype rlock_type = {.name = "_thread.RLock", .methods = lock_methods, .call = lock_call, .free = lock_free,
                          .repr = lock_repr, .getvalue = lock_getvalue, .abandon = lock_abandon, .info = lock_info};
const otype semaphore_type = {.name = "threading.Semaphore", .methods = sem_methods, .call = lock_call,
                              .free = lock_free, .repr = lock_repr, .getvalue = lock_getvalue,
                              .abandon = lock_abandon, .info = lock_info};
const otype bounded_semaphore_type = {.name = "threading.BoundedSemaphore", .methods = sem_methods,
                                      .call = lock_call, .free = lock_free, .repr = lock_repr,
                                      .getvalue = lock_getvalue, .abandon = lock_abandon, .info = lock_info};

static shobj *new_lock(const otype *t, lock_kind kind, int64_t count) {
  lockcore *l = xmalloc(sizeof *l);
  lockcore_init(l, kind, count);
  return obj_new(t, l, 0);
}

shobj *lock_create(value *args, value *kwds, value **err) {
  if (kwds && dict_len(kwds)) {
    *err = v_exception_msg("TypeError", "lock() takes no keyword arguments");
    return NULL;
  }
  if (args && args->u.seq.len) {
    char msg[80];
    snprintf(msg, sizeof msg, "lock expected 0 arguments, got %zu", args->u.seq.len);
    *err = v_exception_msg("TypeError", msg);
    return NULL;
  }
  return new_lock(&lock_type, LK_LOCK, 1);
}

shobj *rlock_create(value *args, value *kwds, value **err) {
  (void)args, (void)kwds, (void)err; /* _thread.RLock ignores its arguments (deprecated in 3.14) */
  return new_lock(&rlock_type, LK_RLOCK, 0);
}

static shobj *sem_create(const otype *t, lock_kind kind, const char *fname, value *args, value *kwds,
                         value **err) {
  static const char *const names[] = {"value"};
  value *a[1] = {0};
  int64_t v = 1;
  if ((*err = args_bind(fname, names, 1, 0, args, kwds, a))) return NULL;
  if (a[0]) {
    if (a[0]->kind == VK_INT || a[0]->kind == VK_BOOL) {
      v = a[0]->kind == VK_INT ? a[0]->u.i : a[0]->u.b;
    } else if (a[0]->kind == VK_FLOAT || a[0]->kind == VK_BIGINT) {
      bool neg = a[0]->kind == VK_FLOAT ? a[0]->u.f < 0 : (a[0]->u.s.data[a[0]->u.s.len - 1] & 0x80) != 0;
      *err = neg ? v_exception_msg("ValueError", "semaphore initial value must be >= 0")
                 : v_exception_msg("TypeError", "shmgr's semaphores count with an int that fits in 64 bits");
      return NULL;
    } else {
      char msg[160];
      snprintf(msg, sizeof msg, "'<' not supported between instances of '%s' and 'int'", v_typename(a[0]));
      *err = v_exception_msg("TypeError", msg);
      return NULL;
    }
    if (v < 0) {
      *err = v_exception_msg("ValueError", "semaphore initial value must be >= 0");
      return NULL;
    }
  }
  return new_lock(t, kind, v);
}

shobj *semaphore_create(value *args, value *kwds, value **err) {
  return sem_create(&semaphore_type, LK_SEMAPHORE, "Semaphore.__init__", args, kwds, err);
}

shobj *bounded_semaphore_create(value *args, value *kwds, value **err) {
  return sem_create(&bounded_semaphore_type, LK_BOUNDED, "BoundedSemaphore.__init__", args, kwds, err);
}
