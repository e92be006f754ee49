/* t_queue_store.c: queues declared in Lua, and a durable queue's life in the store. */
#include "alloc.h"
#include "t_queue_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "owner.h"
#include "pickle.h"

static queue *waiting; /* durable queues declared before the store opened */
static pickle_limits item_limits = {1000, 10000000, NULL};

void queue_set_item_limits(size_t max_depth, size_t max_objects) {
  /* re-encoding may write a few more values than the request held (memo gets, marks) */
  item_limits.max_depth = max_depth + 16;
  item_limits.max_objects = max_objects > SIZE_MAX / 2 ? SIZE_MAX : max_objects * 2;
}

/* ---- items as the store keeps them ---- */

static size_t shared_met; /* proxies of this server's objects met by the encoder */
static void count_shared(struct shobj *o) {
  (void)o;
  shared_met++;
}

value *q_encode(const value *item, buf *out) {
  char err[256];
  /* pickle_dump reports each proxy of our objects it writes (to count a reference for the
     client that receives it): here nobody receives it, so it is only counted */
  void (*was)(struct shobj *) = pickle_on_shared;
  pickle_on_shared = count_shared;
  shared_met = 0;
  int rc = pickle_dump(out, item, 4, err, sizeof err);
  pickle_on_shared = was;
  if (rc < 0) return v_exception_msg("ValueError", err);
  if (shared_met)
    return v_exception_msg("TypeError", "a durable queue cannot hold a proxy of a shared object of this server: "
                                        "the object would not survive a restart");
  return NULL;
}

/* store_obj_load's item callback: decode and queue it. */
static value *load_item(void *ctx, int64_t pos, const uint8_t *data, size_t len) {
  queue *q = ctx;
  char err[256];
  int proto;
  value *v = pickle_load(data, len, &item_limits, &proto, err, sizeof err);
  if (!v) {
    char msg[600];
    snprintf(msg, sizeof msg, "item at position %lld of queue '%s' in %s cannot be read: %s", (long long)pos, q->name,
             store_path(), err);
    return v_exception_msg("ValueError", msg);
  }
  q_push(q, v, pos);
  if (pos < q->low) q->low = pos;
  if (pos > q->high) q->high = pos;
  return NULL;
}

/* ---- a failed commit ---- */

typedef struct skip {
  const int64_t *pos; /* sorted */
  size_t n;
  queue *q;
} skip;

static int cmp_pos(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* load_item, for the items not in flight */
static value *reload_item(void *ctx, int64_t pos, const uint8_t *data, size_t len) {
  skip *s = ctx;
  if (s->n && bsearch(&pos, s->pos, s->n, sizeof pos, cmp_pos)) return NULL;
  return load_item(s->q, pos, data, len);
}

/* The commit of turn failed: q's changes in it are gone from the store, and q comes back
   to what the store holds. Items that left for a client in that turn are not in flight
   any more (that client's get failed); what the store holds and no client has in flight is
   the queue; unfinished is the stored count. Then waiters are served from what is there. */
static void rollback(void *ctx, uint64_t turn) {
  queue *q = ctx;
  obj_hold(q->self); /* the waiters it answers may let go of it */
  for (size_t i = q->nflights; i-- > 0;) { /* backwards: a flight dropped takes the last one's place */
    flight *f = &q->flights[i];
    void *holder = f->holder;
    bool gone = false;
    while (!gone && f->items[(f->head + f->len - 1) % f->cap].turn == turn) { /* the newest first */
      v_decref(f->items[(f->head + --f->len) % f->cap].v);
      q->inflight--;
      if ((gone = !f->len)) q_drop_flight(q, f);
      own_give(holder, q->self);
    }
  }
  int64_t *pos = xmalloc(((size_t)q->inflight + 1) * sizeof *pos);
  size_t n = 0;
  for (size_t i = 0; i < q->nflights; i++)
    for (size_t k = 0; k < q->flights[i].len; k++) pos[n++] = q->flights[i].items[(q->flights[i].head + k) % q->flights[i].cap].pos;
  qsort(pos, n, sizeof *pos, cmp_pos);
  while (q->len) {
    q->len--;
    v_decref(q->ring[(q->head + q->len) % q->cap].v);
  }
  q->head = 0;
  skip s = {pos, n, q};
  int64_t count = q->unfinished;
  value *err = store_obj_load(q->so, &count, reload_item, &s);
  free(pos);
  if (err) { /* what is in memory now is what could be read */
    logmsg(LOG_ERROR, "queue %s: could not read it back from the store after a failed commit", q_label(q));
    v_decref(err);
  }
  q->unfinished = count;
  logmsg(LOG_WARN, "queue %s: back to what the store holds: %zu queued, %lld in flight, %lld unfinished", q_label(q),
         q->len, (long long)q->inflight, (long long)q->unfinished);
  q_settle(q);
  obj_release(q->self);
}

/* ---- attaching ---- */

value *q_attach(queue *q) {
  store_meta meta = {q->kind, q->maxsize, 0, q->redeliver};
  value *err = NULL;
  q->so = store_obj_attach(q->name, &meta, rollback, q, &err);
  if (!q->so) return err;
  int64_t count = 0;
  q->low = INT64_MAX;
  q->high = INT64_MIN;
  err = store_obj_load(q->so, &count, load_item, q);
  if (!q->len) q->low = 1, q->high = 0;
  if (err) return err;
  q->unfinished = count;
  if (q->unfinished < (int64_t)q->len) { /* a store edited by hand: every item is a task */
    q->unfinished = (int64_t)q->len;
    store_obj_count(q->so, q->unfinished);
  }
  logmsg(LOG_INFO, "queue '%s': %zu item%s, %lld unfinished, from %s", q->name, q->len, q->len == 1 ? "" : "s",
         (long long)q->unfinished, store_path());
  return NULL;
}

void q_detach(queue *q) {
  for (queue **p = &waiting; *p; p = &(*p)->next_pending) {
    if (*p == q) {
      *p = q->next_pending;
      break;
    }
  }
  store_obj_detach(q->so);
  q->so = NULL;
}

bool queue_durable_waiting(void) { return waiting != NULL; }

bool queue_attach_waiting(char *err, size_t errlen) {
  /* in the order declared (the list is newest first) */
  size_t n = 0;
  for (queue *q = waiting; q; q = q->next_pending) n++;
  queue **all = xmalloc((n ? n : 1) * sizeof *all);
  size_t k = n;
  for (queue *q = waiting; q; q = q->next_pending) all[--k] = q;
  waiting = NULL;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    all[i]->next_pending = NULL;
    if (!ok) continue;
    value *e = q_attach(all[i]);
    if (e) {
      buf text = {0};
      v_repr(&text, e);
      snprintf(err, errlen, "durable queue '%s': %.*s", all[i]->name, (int)text.len, (const char *)text.data);
      buf_free(&text);
      v_decref(e);
      ok = false;
    }
  }
  free(all);
  return ok;
}

/* ---- declaring ---- */

shobj *queue_declare(const queue_options *opt, value **err) {
  if (opt->durable && (!opt->name || !*opt->name)) {
    *err = v_exception_msg("ValueError", "a durable queue needs a name (name = \"...\"), unique among durable objects");
    return NULL;
  }
  if (opt->durable) {
    for (queue *w = waiting; w; w = w->next_pending) {
      if (strcmp(w->name, opt->name) == 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "a durable object named '%s' exists already (durable names are unique)", opt->name);
        *err = v_exception_msg("ValueError", msg);
        return NULL;
      }
    }
  }
  shobj *o = queue_new(opt->maxsize);
  queue *q = o->state;
  snprintf(q->kind, sizeof q->kind, "%s", opt->kind && strcmp(opt->kind, "JoinableQueue") == 0 ? "JoinableQueue" : "Queue");
  q->name = opt->name ? xstrdup(opt->name) : NULL;
  q->redeliver = opt->redeliver;
  q->durable = o->durable = opt->durable;
  if (!opt->durable) return o;
  if (!store_is_open()) { /* the config is still running: attached at start-up */
    q->next_pending = waiting;
    waiting = q;
    return o;
  }
  if ((*err = q_attach(q))) {
    obj_release(o);
    return NULL;
  }
  return o;
}
