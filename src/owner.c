/* owner.c: what each client holds (locks, semaphores, queue items) and what becomes of it when it goes. */
#include "owner.h"

#include "alloc.h"
#include "ptrmap.h"

own_policy own_policy_now = OWN_KEEP; /* CPython's behaviour */

typedef struct holding {
  shobj *obj;
  int count;
} holding;

/* One client's holdings: few objects (a handful of locks, the queues it takes items from),
   so a flat array each; clients are many (a worker each), so they are found by a map. */
typedef struct holder_rec {
  void *holder;
  holding *h;
  size_t n, cap;
} holder_rec;

static ptrmap index_of; /* holder -> its place in recs */
static holder_rec *recs;
static size_t nrecs, caprecs;

static holder_rec *rec_of(const void *holder) {
  size_t *i = ptrmap_get(&index_of, holder);
  return i ? &recs[*i] : NULL;
}

static holding *find(holder_rec *r, const shobj *o) {
  for (size_t i = 0; r && i < r->n; i++)
    if (r->h[i].obj == o) return &r->h[i];
  return NULL;
}

void own_take(void *holder, shobj *o) {
  if (!holder) return;
  holder_rec *r = rec_of(holder);
  if (!r) {
    if (nrecs == caprecs) {
      caprecs = caprecs ? caprecs * 2 : 16;
      recs = xrealloc(recs, caprecs * sizeof *recs);
    }
    bool added;
    *ptrmap_put(&index_of, holder, nrecs, &added) = nrecs;
    r = &recs[nrecs++];
    *r = (holder_rec){holder, NULL, 0, 0};
  }
  holding *h = find(r, o);
  if (h) {
    h->count++;
    return;
  }
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 4;
    r->h = xrealloc(r->h, r->cap * sizeof *r->h);
  }
  obj_hold(o);
  r->h[r->n++] = (holding){o, 1};
}

/* Forget holder's record (it holds nothing any more): the last record takes its place. */
static void drop_rec(holder_rec *r) {
  size_t i = (size_t)(r - recs);
  ptrmap_del(&index_of, r->holder);
  free(r->h);
  if (i != --nrecs) {
    recs[i] = recs[nrecs];
    *ptrmap_get(&index_of, recs[i].holder) = i;
  }
  if (!nrecs) { /* all gone: give the memory back */
    free(recs);
    recs = NULL;
    caprecs = 0;
    ptrmap_free(&index_of);
  }
}

void own_give(void *holder, shobj *o) {
  holder_rec *r = holder ? rec_of(holder) : NULL;
  holding *h = find(r, o);
  if (!h || --h->count) return;
  *h = r->h[--r->n];
  if (!r->n) drop_rec(r);
  obj_release(o);
}

int own_count(const void *holder, const shobj *o) {
  holding *h = find(rec_of(holder), o);
  return h ? h->count : 0;
}

void own_each(const void *holder, void (*f)(shobj *o, int count, void *ctx), void *ctx) {
  holder_rec *r = rec_of(holder);
  for (size_t i = 0; r && i < r->n; i++) f(r->h[i].obj, r->h[i].count, ctx);
}

void own_abandon(void *holder, const char *peer) {
  holder_rec *r = rec_of(holder);
  if (!r) return;
  /* the record is taken out first, so that abandon's own gives find nothing to give back,
     and a take it makes for this holder (it cannot: the holder is gone) starts afresh */
  holding *h = r->h;
  size_t n = r->n;
  r->h = NULL;
  drop_rec(r);
  bool release = own_policy_now == OWN_RELEASE;
  for (size_t i = 0; i < n; i++) {
    if (h[i].obj->type->abandon) h[i].obj->type->abandon(h[i].obj, holder, h[i].count, release, peer); /* may wake waiters */
    obj_release(h[i].obj);
  }
  free(h);
}
