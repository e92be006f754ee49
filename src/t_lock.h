/* t_lock.h: the built-in Lock, RLock, Semaphore and BoundedSemaphore (Python's threading), in C. */
#ifndef SHMGR_T_LOCK_H
#define SHMGR_T_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "objects.h"
#include "wait.h"

typedef enum lock_kind { LK_LOCK, LK_RLOCK, LK_SEMAPHORE, LK_BOUNDED } lock_kind;

/* One lock of any kind. Each kind is its own otype (they expose different methods), all
   sharing this state; t_condition.c embeds an RLock's. A lock that is free has no waiters:
   whoever frees it hands it to the longest waiter at once. */
typedef struct lockcore {
  lock_kind kind;
  int64_t value;   /* Lock: 1 free, 0 taken; (Bounded)Semaphore: the counter */
  int64_t initial; /* BoundedSemaphore: the bound (and repr's value=v/initial) */
  int64_t depth;   /* RLock: levels the owner holds; 0 when free */
  void *owner;     /* RLock while depth > 0: the holder (NULL: the server's own Lua code) */
  void **takers;   /* Lock, Semaphore: holders that took it and may not have given all back */
  size_t ntakers, captakers;
  /* parked acquires, in arrival order: call.op = levels to take (an RLock restored by a
     Condition takes them all at once), call.arg = the answer when it is not True */
  waitq waiters;
} lockcore;

extern const otype lock_type, rlock_type, semaphore_type, bounded_semaphore_type;

/* The registry constructors: Lock(), RLock(*ignored), Semaphore(value=1),
   BoundedSemaphore(value=1). Each returns a new object, or NULL with *err a new exception
   (Python's TypeError/ValueError for bad arguments). */
shobj *lock_create(value *args, value *kwds, value **err);
shobj *rlock_create(value *args, value *kwds, value **err);
shobj *semaphore_create(value *args, value *kwds, value **err);
shobj *bounded_semaphore_create(value *args, value *kwds, value **err);

/* ---- for types built on a lock (t_condition.c); o is the object clients hold, which is
   what owner.h records the takes against ---- */
/* Make l a free lock of kind; count is a semaphore's initial value (Lock: 1, RLock: 0). */
void lockcore_init(lockcore *l, lock_kind kind, int64_t count);
/* Free what l owns; nothing may be parked on it. */
void lockcore_free(lockcore *l);
/* The lock's own methods: acquire, release, locked. method is one of those (or the result
   is an AttributeError naming cls); args (tuple) and kwds (dict or NULL) are borrowed. */
outcome lockcore_call(lockcore *l, shobj *o, const char *cls, const char *method, value *args, value *kwds,
                      call *c);
/* RLock: true when holder owns l (a NULL holder is the server's Lua code, one owner). */
bool rlock_owned_by(const lockcore *l, const void *holder);
/* RLock owned by holder: release every level at once (Condition.wait), handing the lock to
   the next waiter; returns the levels released. */
int64_t rlock_release_all(lockcore *l, shobj *o, void *holder);
/* RLock: take levels for c's holder at once if the lock is free, and return true (the
   caller answers c); otherwise park c (with no timeout: Python's Condition re-acquires
   without one) until it is handed the lock, answer it `answer` then, and return false.
   c must not be parked when this is called. */
bool rlock_restore(lockcore *l, shobj *o, call *c, int64_t levels, bool answer);
/* owner.h's abandon for an object built on l: holder vanished holding count takes, which
   are given back (release) or stay taken by nobody (lock_policy "keep"); logged, with
   peer naming the client. */
void lockcore_abandon(lockcore *l, shobj *o, void *holder, int count, bool release, const char *peer);
/* Append Python's repr of the lock (`<unlocked _thread.RLock object owner=0 count=0 at
   0x..>`); id stands for Python's id(). */
void lockcore_repr(const lockcore *l, uint64_t id, buf *out);
/* What operators see of l (obj_info): who holds it, how deep, who waits. */
void lockcore_info(const lockcore *l, obj_info *out);

/* A timeout as threading's Python code reads it (Event.wait, Condition.wait, Semaphore and
   Barrier waits): NULL or None -> -1 (forever); NaN -> -1 when `added` (Python then loops
   forever) else 0; <= 0 -> 0 (do not wait); > 0 -> seconds. Returns NULL or a new
   exception: TypeError for a non-number, worded for `timeout > 0` or, when added, for
   `_time() + timeout`; OverflowError past _thread.TIMEOUT_MAX, as the wait would raise. */
value *sync_timeout(const value *v, bool added, double *seconds);

#endif
