/* owner.c: what each client holds (locks, semaphores) and what becomes of it when it goes. */
#include "owner.h"

#include "alloc.h"
#include "log.h"

own_policy own_policy_now = OWN_KEEP; /* CPython's behaviour */

/* Holdings are few (a client holds a handful of locks at a time): one flat array. */
typedef struct holding {
  void *holder;
  shobj *obj;
  int count;
} holding;

static holding *all;
static size_t n, cap;

static holding *find(const void *holder, const shobj *o) {
  for (size_t i = 0; i < n; i++)
    if (all[i].holder == holder && all[i].obj == o) return &all[i];
  return NULL;
}

void own_take(void *holder, shobj *o) {
  if (!holder) return;
  holding *h = find(holder, o);
  if (h) {
    h->count++;
    return;
  }
  if (n == cap) {
    cap = cap ? cap * 2 : 16;
    all = xrealloc(all, cap * sizeof *all);
  }
  obj_hold(o);
  all[n++] = (holding){holder, o, 1};
}

/* Take entry i out of the array; the caller now owns its hold on the object. */
static holding take_out(size_t i) {
  holding h = all[i];
  all[i] = all[--n];
  return h;
}

void own_give(void *holder, shobj *o) {
  holding *h = holder ? find(holder, o) : NULL;
  if (!h || --h->count) return;
  obj_release(take_out((size_t)(h - all)).obj);
}

int own_count(const void *holder, const shobj *o) {
  holding *h = find(holder, o);
  return h ? h->count : 0;
}

void own_abandon(void *holder, const char *peer) {
  for (size_t i = 0; i < n;) {
    if (all[i].holder != holder) {
      i++;
      continue;
    }
    holding h = take_out(i); /* first, so that abandon's own releases find nothing to give back */
    bool release = own_policy_now == OWN_RELEASE;
    logmsg(LOG_WARN, "%s disconnected holding %s %s (%d time%s): %s", peer, h.obj->cls, obj_ident(h.obj),
           h.count, h.count == 1 ? "" : "s", release ? "released" : "kept (lock_policy = \"keep\")");
    if (h.obj->type->abandon) h.obj->type->abandon(h.obj, holder, h.count, release); /* may wake waiters */
    obj_release(h.obj);
  }
}
