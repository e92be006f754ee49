/* admin.c: the operators' server methods (shmgr_info, _clients, _objects, _queues, _slowlog, _kill): figures as plain data. */
#include "admin.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "bigcache.h"
#include "lx.h"
#include "memcount.h"
#include "owner.h"
#include "segments.h"
#include "server.h"
#include "shm.h"
#include "stats.h"
#include "store.h"
#include "t_queue.h"
#include "wait.h"

/* The keys of one answer, each made once: rows repeat the same keys, and the pickler writes a
   key it has written before as a 2-byte memo reference, so an answer of 10,000 rows costs the
   client a tenth of what fresh keys would (each of those a new string to decode and memoize).
   The few words that values repeat (a connection's state) are made once the same way.
   Keyed by the address of the string literal naming it; emptied at the end of each answer. */
#define NKEYS 128
static struct {
  const char *lit;
  value *v;
} keys[NKEYS];

static size_t nkeys;

static value *key_of(const char *lit) {
  if (nkeys >= NKEYS / 2) return v_strz(lit); /* more kinds of key than expected: made each time */
  size_t i = ((uintptr_t)lit >> 3) % NKEYS;
  while (keys[i].lit && keys[i].lit != lit) i = (i + 1) % NKEYS;
  if (!keys[i].lit) keys[i].lit = lit, keys[i].v = v_strz(lit), nkeys++;
  return v_incref(keys[i].v);
}

static void keys_clear(void) {
  for (size_t i = 0; i < NKEYS; i++)
    if (keys[i].lit) v_decref(keys[i].v), keys[i].lit = NULL;
  nkeys = 0;
}

/* d[key] = v (stolen). key is a string literal (see key_of); never unhashable. */
static void put(value *d, const char *key, value *v) {
  const char *err;
  dict_set(d, key_of(key), v, &err);
}

static value *str_or_none(const char *s) { return s ? v_strz(s) : v_none(); }

/* A holder (owner.h: a connection's serial as a pointer) as the client id operators see. */
static value *client_id(const void *holder) { return holder ? v_int((int64_t)(uintptr_t)holder) : v_none(); }

/* ---- info ---- */

static void count_object(shobj *o, void *ctx) {
  const value *n = dict_get_str(ctx, obj_typeid(o));
  put(ctx, obj_typeid(o), v_int(n ? n->u.i + 1 : 1));
}

static value *counters(const char *const names[], const uint64_t *n, size_t count) {
  value *d = v_dict();
  for (size_t i = 0; i < count; i++) put(d, names[i], v_int((int64_t)n[i]));
  return d;
}

static value *info(void) {
  const stats *s = &the_stats;
  value *d = v_dict();
  put(d, "version", v_strz(SHMGR_VERSION));
  put(d, "pid", v_int(getpid()));
  put(d, "started", v_float(s->started));
  put(d, "uptime", v_float(stats_clock() - s->started_mono));
  value *ls = v_list(the_server.nls);
  for (size_t i = 0; i < the_server.nls; i++) list_append(ls, v_strz(the_server.ls[i].name));
  put(d, "listeners", ls);

  value *conns = v_dict();
  put(conns, "open", v_int((int64_t)the_server.nconns));
  put(conns, "total", v_int((int64_t)s->conns_total));
  put(conns, "turned_away", counters(turned_away_name, s->turned_away, TA_COUNT));
  put(conns, "auth_failures", v_int((int64_t)s->auth_failures));
  put(d, "connections", conns);

  value *by_type = v_dict();
  obj_each(count_object, by_type);
  value *objs = v_dict();
  put(objs, "shared", v_int((int64_t)table_count()));
  put(objs, "by_typeid", by_type);
  put(d, "objects", objs);

  size_t parked = 0;
  for (conn *c = the_server.conns; c; c = c->next) parked += c->req && c->parked_at;
  value *calls = v_dict();
  put(calls, "total", v_int((int64_t)s->calls));
  put(calls, "per_second", v_int((int64_t)stats_calls_last_second()));
  put(calls, "errors", v_int((int64_t)s->errors));
  put(calls, "parked", v_int((int64_t)parked));
  put(calls, "parked_total", v_int((int64_t)s->parked_total));
  put(calls, "slow", v_int((int64_t)s->slow_calls));
  put(calls, "bytes_in", v_int((int64_t)s->bytes_in));
  put(calls, "bytes_out", v_int((int64_t)s->bytes_out));
  put(d, "calls", calls);
  put(d, "limits_hit", counters(limit_name, s->limits, LIM_COUNT));

  value *held = v_dict();
  put(held, "redelivered", v_int((int64_t)s->redelivered));
  put(held, "locks_released", v_int((int64_t)s->locks_released));
  put(d, "abandoned", held);

  value *mem = v_dict();
  put(mem, "rss", v_int(stats_rss_bytes()));
  put(mem, "used", v_int((int64_t)mem_used())); /* what limits.max_memory bounds (memcount.h) */
  put(mem, "heap", v_int((int64_t)mem_heap()));
  put(mem, "kept", v_int((int64_t)bigcache_kept())); /* a freed large buffer kept for reuse */
  put(mem, "max_memory", v_int((int64_t)mem_limit()));
  put(mem, "lua", v_int((int64_t)lx_memory()));
  put(d, "memory", mem);

  shm_figures sf = shm_stats(); /* the Shared* objects' segments (shm.c) */
  value *shm = v_dict();
  put(shm, "segments", v_int((int64_t)sf.segments));
  put(shm, "bytes", v_int((int64_t)sf.mapped));
  put(shm, "blocks", v_int((int64_t)sf.blocks));
  put(shm, "block_bytes", v_int((int64_t)sf.used));
  put(shm, "tracked_segments", v_int((int64_t)segments_count())); /* SharedMemoryManager clients' (segments.c) */
  put(d, "shared_memory", shm);

  store_info si;
  if (store_figures(&si)) {
    value *st = v_dict();
    put(st, "path", v_strz(si.path));
    put(st, "bytes", v_int(si.bytes));
    put(st, "commits", v_int((int64_t)si.commits));
    put(st, "failed_commits", v_int((int64_t)si.failed));
    put(st, "changes", v_int((int64_t)si.changes));
    put(d, "store", st);
  } else {
    put(d, "store", v_none());
  }
  put(d, "slowlog_threshold_ms", v_float(stats_slow_seconds > 0 ? stats_slow_seconds * 1e3 : 0));
  return d;
}

/* ---- clients ---- */

static void add_holding(shobj *o, int count, void *ctx) {
  value *h = v_dict();
  put(h, "ident", v_strz(obj_ident(o)));
  put(h, "typeid", v_strz(obj_typeid(o)));
  put(h, "count", v_int(count));
  list_append(ctx, h);
}

static const char *state_of(const conn *c) {
  switch (c->st) {
  case CS_AUTH_ANSWER:
  case CS_AUTH_CHALLENGE:
  case CS_AUTH_WELCOME: return "handshake";
  case CS_FIRST: return c->req ? "request" : "fresh";
  case CS_SERVING: return !c->req ? "idle" : c->parked_at ? "parked" : "call";
  default: return "closing";
  }
}

/* A connection's figures, in this order: shmgr_clients' dict keys, or its columns. */
enum { CL_ID, CL_PEER, CL_NAME, CL_STATE, CL_AGE, CL_IDLE, CL_CALLS, CL_IN, CL_OUT, CL_PARKED, CL_RUNNING, CL_HOLDS, CL_N };
static const char *const client_cols[CL_N] = {"id",        "peer",      "name",   "state",   "age",     "idle",
                                              "calls",     "bytes_in",  "bytes_out", "parked", "running", "holds"};

/* c's figures into v[CL_N] (new references); parked, running and holds are None when empty. */
static void client_values(const conn *c, double now, value *v[CL_N]) {
  v[CL_ID] = v_int((int64_t)c->id);
  v[CL_PEER] = v_strz(c->peer);
  v[CL_NAME] = c->name[0] ? v_strz(c->name) : key_of(""); /* most connections have none */
  v[CL_STATE] = key_of(state_of(c));
  v[CL_AGE] = v_float(now - c->opened);
  v[CL_IDLE] = v_float(c->req ? 0 : now - c->last);
  v[CL_CALLS] = v_int((int64_t)c->calls);
  v[CL_IN] = v_int((int64_t)c->bytes_in);
  v[CL_OUT] = v_int((int64_t)c->bytes_out);
  v[CL_PARKED] = v_none();
  v[CL_RUNNING] = v_none();
  if (c->req && c->target) {
    value *p = v_dict();
    put(p, "ident", v_strz(obj_ident(c->target)));
    put(p, "typeid", v_strz(obj_typeid(c->target)));
    put(p, "method", v_incref(c->req->u.seq.items[1]));
    put(p, "seconds", v_float(c->parked_at ? now - c->parked_at : 0));
    int at = c->parked_at ? CL_PARKED : CL_RUNNING;
    v_decref(v[at]);
    v[at] = p;
  }
  value *holds = v_list(0);
  own_each(c->holder, add_holding, holds);
  if (holds->u.seq.len) {
    v[CL_HOLDS] = holds;
  } else {
    v_decref(holds);
    v[CL_HOLDS] = v_none();
  }
}

/* One dict per connection (parked/running only when there is such a call; holds a list,
   empty or not); or, with columns, (column names, [one tuple per connection]): the same
   figures without 10,000 dicts for shmgr-cli's table to decode. */
static value *clients(bool columns) {
  value *l = v_list(the_server.nconns);
  double now = ev_now(the_server.loop);
  for (conn *c = the_server.conns; c; c = c->next) {
    value *v[CL_N];
    client_values(c, now, v);
    if (columns) {
      value *t = v_tuple(CL_N);
      for (int i = 0; i < CL_N; i++) t->u.seq.items[i] = v[i];
      list_append(l, t);
      continue;
    }
    value *d = v_dict();
    if (v[CL_HOLDS]->kind == VK_NONE) v_decref(v[CL_HOLDS]), v[CL_HOLDS] = v_list(0);
    for (int i = 0; i < CL_N; i++) {
      if ((i == CL_PARKED || i == CL_RUNNING) && v[i]->kind == VK_NONE) v_decref(v[i]);
      else put(d, client_cols[i], v[i]);
    }
    list_append(l, d);
  }
  if (!columns) return l;
  value *names = v_tuple(CL_N), *r = v_tuple(2);
  for (int i = 0; i < CL_N; i++) names->u.seq.items[i] = key_of(client_cols[i]);
  r->u.seq.items[0] = names;
  r->u.seq.items[1] = l;
  return r;
}

/* ---- objects, queues ---- */

typedef struct listing {
  value *list;
  const value *typeid; /* only objects of this typeid; NULL for all */
} listing;

static void object_row(shobj *o, void *ctx) {
  listing *ls = ctx;
  if (ls->typeid && !v_is_str(ls->typeid, obj_typeid(o))) return;
  obj_info in = obj_describe(o);
  value *d = v_dict();
  put(d, "ident", v_strz(obj_ident(o)));
  put(d, "typeid", v_strz(obj_typeid(o)));
  put(d, "name", str_or_none(in.name));
  put(d, "refcount", v_int(o->in_table ? o->refcount : 0));
  put(d, "size", in.size >= 0 ? v_int(in.size) : v_none());
  put(d, "waiters", v_int((int64_t)in.waiters));
  put(d, "holder", client_id(in.holder));
  put(d, "held", v_int(in.held));
  put(d, "orphaned", v_bool(in.orphaned));
  list_append(ls->list, d);
}

static void queue_row(shobj *o, void *ctx) {
  queue_figures f;
  if (!queue_figures_of(o, &f)) return;
  value *d = v_dict();
  put(d, "ident", v_strz(obj_ident(o)));
  put(d, "name", str_or_none(f.name));
  put(d, "kind", v_strz(f.kind));
  put(d, "durable", v_bool(f.durable));
  put(d, "redeliver", v_bool(f.redeliver));
  put(d, "shut_down", v_bool(f.shut));
  put(d, "maxsize", v_int(f.maxsize));
  put(d, "depth", v_int(f.depth));
  put(d, "in_flight", v_int(f.inflight));
  put(d, "unfinished", v_int(f.unfinished));
  put(d, "getters", v_int((int64_t)f.getters));
  put(d, "putters", v_int((int64_t)f.putters));
  put(d, "joiners", v_int((int64_t)f.joiners));
  put(d, "puts", v_int((int64_t)f.puts));
  put(d, "gets", v_int((int64_t)f.gets));
  put(d, "puts_per_second", v_int(f.puts_last_second));
  put(d, "gets_per_second", v_int(f.gets_last_second));
  put(d, "redelivered", v_int((int64_t)f.redelivered));
  put(d, "oldest_age", f.oldest_age >= 0 ? v_float(f.oldest_age) : v_none());
  list_append(ctx, d);
}

/* ---- slowlog, kill ---- */

static value *slowlog(int64_t count) {
  value *l = v_list(0);
  const slowentry *e;
  for (size_t i = 0; (count < 0 || (int64_t)i < count) && (e = stats_slowlog(i)); i++) {
    value *d = v_dict();
    put(d, "id", v_int((int64_t)e->id));
    put(d, "when", v_float(e->when));
    put(d, "client", v_int((int64_t)e->client));
    put(d, "peer", v_strz(e->peer));
    put(d, "typeid", v_strz(e->typeid));
    put(d, "method", v_strz(e->method));
    put(d, "duration_ms", v_float(e->seconds * 1e3));
    list_append(l, d);
  }
  return l;
}

static value *kill_client(conn *self, const value *id, value **err) {
  int64_t n = -1;
  if (id->kind != VK_INT || (n = id->u.i) <= 0) {
    *err = v_exception_msg("TypeError", "shmgr_kill(client_id): the id is a positive int, as shmgr_clients() shows it");
    return NULL;
  }
  conn *c = conn_by_id((uint64_t)n);
  if (!c) {
    char msg[80];
    snprintf(msg, sizeof msg, "no client with id %lld", (long long)n);
    *err = v_exception_msg("KeyError", msg);
    return NULL;
  }
  if (c != self) conn_kill(c, "killed by an operator (shmgr_kill)"); /* self closes after this reply anyway */
  return v_none();
}

static value *answer(conn *c, const char *name, value *args, value *kwds, value **err) {
  static const char *const no_names[] = {NULL}, *const one_typeid[] = {"typeid"}, *const one_count[] = {"count"},
                           *const one_id[] = {"client_id"},
                           *const one_columns[] = {"columns"};
  value *a[1] = {0};
  char fname[64];
  snprintf(fname, sizeof fname, "Server.%s", name);
  *err = NULL;
  if (strcmp(name, "shmgr_info") == 0) {
    if ((*err = args_bind(fname, no_names, 0, 0, args, kwds, a))) return NULL;
    return info();
  }
  if (strcmp(name, "shmgr_clients") == 0) {
    if ((*err = args_bind(fname, one_columns, 1, 0, args, kwds, a))) return NULL;
    return clients(a[0] && v_truth(a[0]));
  }
  if (strcmp(name, "shmgr_objects") == 0) {
    if ((*err = args_bind(fname, one_typeid, 1, 0, args, kwds, a))) return NULL;
    if (a[0] && a[0]->kind != VK_NONE && a[0]->kind != VK_STR) {
      *err = v_exception_msg("TypeError", "shmgr_objects(typeid=None): typeid is a str, or None for every object");
      return NULL;
    }
    listing ls = {v_list(0), a[0] && a[0]->kind != VK_NONE ? a[0] : NULL};
    obj_each(object_row, &ls);
    return ls.list;
  }
  if (strcmp(name, "shmgr_queues") == 0) {
    if ((*err = args_bind(fname, no_names, 0, 0, args, kwds, a))) return NULL;
    value *l = v_list(0);
    obj_each(queue_row, l);
    return l;
  }
  if (strcmp(name, "shmgr_slowlog") == 0) {
    if ((*err = args_bind(fname, one_count, 1, 0, args, kwds, a))) return NULL;
    if (a[0] && a[0]->kind != VK_NONE && (a[0]->kind != VK_INT || a[0]->u.i < 0)) {
      *err = v_exception_msg(a[0]->kind == VK_INT ? "ValueError" : "TypeError",
                             "shmgr_slowlog(count=None): count is an int >= 0, or None for every entry");
      return NULL;
    }
    return slowlog(a[0] && a[0]->kind == VK_INT ? a[0]->u.i : -1);
  }
  if (strcmp(name, "shmgr_kill") == 0) {
    if ((*err = args_bind(fname, one_id, 1, 1, args, kwds, a))) return NULL;
    return kill_client(c, a[0], err);
  }
  return NULL;
}

value *admin_method(conn *c, const char *name, value *args, value *kwds, value **err) {
  value *r = answer(c, name, args, kwds, err);
  keys_clear();
  return r;
}
