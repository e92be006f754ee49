/* metrics_page.c: the /metrics page: the operators' figures in Prometheus' text format. */
#include "alloc.h"
#include "metrics_page.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "lx.h"
#include "memcount.h"
#include "objects.h"
#include "segments.h"
#include "server.h"
#include "shm.h"
#include "stats.h"
#include "store.h"
#include "t_queue.h"

/* ---- the format's pieces. A family is its # HELP and # TYPE lines and then every sample
   of it, together (the format wants a family's samples in one run). Help texts are ours:
   nothing in them needs escaping. ---- */

static void head(buf *o, const char *name, const char *type, const char *help) {
  buf_str(o, "# HELP ");
  buf_str(o, name);
  buf_byte(o, ' ');
  buf_str(o, help);
  buf_str(o, "\n# TYPE ");
  buf_str(o, name);
  buf_byte(o, ' ');
  buf_str(o, type);
  buf_byte(o, '\n');
}

/* A label value between its quotes: backslash, double quote and newline escaped, the rest
   as it is (names come from the config, the registry and exposed methods: UTF-8 already). */
static void label_value(buf *o, const char *s) {
  for (;;) {
    size_t run = strcspn(s, "\\\"\n");
    buf_put(o, s, run);
    s += run;
    if (!*s) return;
    buf_str(o, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
    s++;
  }
}

/* The start of a sample line: name, then nlabels pairs of (label name, value) as const
   char * arguments; one of the num_ functions ends the line. */
static void sample(buf *o, const char *name, int nlabels, ...) {
  buf_str(o, name);
  if (nlabels) {
    va_list ap;
    va_start(ap, nlabels);
    for (int i = 0; i < nlabels; i++) {
      buf_byte(o, i ? ',' : '{');
      buf_str(o, va_arg(ap, const char *));
      buf_str(o, "=\"");
      label_value(o, va_arg(ap, const char *));
      buf_byte(o, '"');
    }
    va_end(ap);
    buf_byte(o, '}');
  }
}

static void num_u(buf *o, uint64_t v) {
  char t[32];
  buf_put(o, t, (size_t)snprintf(t, sizeof t, " %" PRIu64 "\n", v));
}

static void num_i(buf *o, int64_t v) {
  char t[32];
  buf_put(o, t, (size_t)snprintf(t, sizeof t, " %" PRId64 "\n", v));
}

/* A float as the format spells it; 15 digits round monotonically, so a counter that grew
   never prints smaller. */
static void float_text(buf *o, double v) {
  char t[40];
  if (isnan(v)) buf_str(o, "NaN");
  else if (isinf(v)) buf_str(o, v > 0 ? "+Inf" : "-Inf");
  else buf_put(o, t, (size_t)snprintf(t, sizeof t, "%.15g", v));
}

static void num_f(buf *o, double v) {
  buf_byte(o, ' ');
  float_text(o, v);
  buf_byte(o, '\n');
}

/* Families of one sample without labels. */
static void counter(buf *o, const char *name, const char *help, uint64_t v) {
  head(o, name, "counter", help);
  sample(o, name, 0);
  num_u(o, v);
}

static void gauge(buf *o, const char *name, const char *help, int64_t v) {
  head(o, name, "gauge", help);
  sample(o, name, 0);
  num_i(o, v);
}

/* ---- the server, connections ---- */

static void server_part(buf *o) {
  const stats *s = &the_stats;
  head(o, "shmgr_build_info", "gauge", "Always 1; the version of shmgr serving.");
  sample(o, "shmgr_build_info", 1, "version", SHMGR_VERSION);
  num_u(o, 1);
  head(o, "shmgr_start_time_seconds", "gauge", "When shmgr started, in seconds since the Unix epoch.");
  sample(o, "shmgr_start_time_seconds", 0);
  num_f(o, s->started);

  gauge(o, "shmgr_connections_open", "Client connections open now.", (int64_t)the_server.nconns);
  counter(o, "shmgr_connections_total", "Client connections accepted.", s->conns_total);
  head(o, "shmgr_connections_turned_away_total", "counter",
       "Connections closed at once, before their handshake, by reason.");
  for (int r = 0; r < TA_COUNT; r++) {
    sample(o, "shmgr_connections_turned_away_total", 1, "reason", turned_away_name[r]);
    num_u(o, s->turned_away[r]);
  }
  counter(o, "shmgr_handshake_failures_total",
          "Handshakes that failed: a wrong key, garbage, or not finished within limits.handshake_timeout.",
          s->auth_failures);
  head(o, "shmgr_limits_hit_total", "counter", "Times a configured limit stopped a client, by limit.");
  for (int l = 0; l < LIM_COUNT; l++) {
    sample(o, "shmgr_limits_hit_total", 1, "limit", limit_name[l]);
    num_u(o, s->limits[l]);
  }
  counter(o, "shmgr_bytes_received_total", "Bytes read from clients.", s->bytes_in);
  counter(o, "shmgr_bytes_sent_total", "Bytes written to clients.", s->bytes_out);
}

/* ---- calls ---- */

typedef struct methods {
  const methodstat **v;
  size_t len, cap;
} methods;

static void add_method(const methodstat *m, void *ctx) {
  methods *ms = ctx;
  ms->v = xgrow(ms->v, &ms->cap, ms->len, sizeof *ms->v);
  ms->v[ms->len++] = m;
}

static int by_typeid_method(const void *a, const void *b) {
  const methodstat *x = *(const methodstat *const *)a, *y = *(const methodstat *const *)b;
  int c = strcmp(x->typeid, y->typeid);
  return c ? c : strcmp(x->method, y->method);
}

static void calls_part(buf *o) {
  const stats *s = &the_stats;
  methods ms = {0};
  stats_each_method(add_method, &ms);
  if (ms.len) qsort(ms.v, ms.len, sizeof *ms.v, by_typeid_method); /* a stable order reads and diffs well */
  head(o, "shmgr_calls_total", "counter",
       "Calls served, by typeid and method (server methods under typeid \"Server\").");
  for (size_t i = 0; i < ms.len; i++) {
    sample(o, "shmgr_calls_total", 2, "typeid", ms.v[i]->typeid, "method", ms.v[i]->method);
    num_u(o, ms.v[i]->calls);
  }
  head(o, "shmgr_call_errors_total", "counter", "Calls answered with an exception, by typeid and method.");
  for (size_t i = 0; i < ms.len; i++) {
    sample(o, "shmgr_call_errors_total", 2, "typeid", ms.v[i]->typeid, "method", ms.v[i]->method);
    num_u(o, ms.v[i]->errors);
  }
  head(o, "shmgr_call_seconds_total", "counter",
       "Time the event loop spent on calls, by typeid and method (time parked, waiting, not counted).");
  for (size_t i = 0; i < ms.len; i++) {
    sample(o, "shmgr_call_seconds_total", 2, "typeid", ms.v[i]->typeid, "method", ms.v[i]->method);
    num_f(o, ms.v[i]->seconds);
  }
  free(ms.v);

  size_t parked = 0;
  for (const conn *c = the_server.conns; c; c = c->next) parked += c->req && c->parked_at;
  gauge(o, "shmgr_calls_parked_now", "Calls waiting now (a get on an empty queue, an acquire of a taken lock, ...).",
        (int64_t)parked);
  counter(o, "shmgr_calls_parked_total", "Calls that had to wait.", s->parked_total);
  counter(o, "shmgr_slow_calls_total", "Calls that kept the loop busy longer than slowlog_threshold.", s->slow_calls);

  /* the stats keep a count per bucket; the format wants each bucket to count everything
     at or below its bound */
  const char *h = "shmgr_call_duration_seconds";
  head(o, h, "histogram", "Time the event loop spent on each call, in seconds.");
  uint64_t cum = 0;
  for (int b = 0; b <= STATS_BUCKETS; b++) {
    cum += s->hist[b];
    buf_str(o, "shmgr_call_duration_seconds_bucket{le=\"");
    if (b < STATS_BUCKETS) float_text(o, stats_bucket_le[b]);
    else buf_str(o, "+Inf");
    buf_str(o, "\"}");
    num_u(o, cum);
  }
  sample(o, "shmgr_call_duration_seconds_sum", 0);
  num_f(o, s->hist_sum);
  sample(o, "shmgr_call_duration_seconds_count", 0);
  num_u(o, cum);
}

/* ---- objects and named queues, from one walk over the live objects. Only queues a
   config declared with a name get series: a client can create any number of queues, and
   a series each would have no bound. ---- */

typedef struct typecount {
  const char *typeid;
  uint64_t n;
} typecount;

typedef struct qrow {
  queue_figures f;
  uint64_t id;
  char label[300]; /* the name; "name@ident" when two queues share it */
} qrow;

typedef struct census {
  typecount *types;
  size_t ntypes, captypes, last; /* last: the entry the previous object counted under */
  qrow *queues;
  size_t nqueues, capqueues;
} census;

/* Objects come in runs of one typeid, and typeids are few and mostly the registry's own
   strings: the last entry, then the same address, then the same text. */
static void count_typeid(census *c, const char *id) {
  size_t i = c->last;
  if (i >= c->ntypes || c->types[i].typeid != id) {
    for (i = 0; i < c->ntypes && c->types[i].typeid != id; i++) {}
    if (i == c->ntypes)
      for (i = 0; i < c->ntypes && strcmp(c->types[i].typeid, id) != 0; i++) {}
    if (i == c->ntypes) {
      c->types = xgrow(c->types, &c->captypes, c->ntypes, sizeof *c->types);
      c->types[c->ntypes++] = (typecount){id, 0};
    }
  }
  c->types[i].n++;
  c->last = i;
}

static void take_census(shobj *ob, void *ctx) {
  census *c = ctx;
  count_typeid(c, obj_typeid(ob));
  if (!queue_name(ob)) return;
  c->queues = xgrow(c->queues, &c->capqueues, c->nqueues, sizeof *c->queues);
  qrow *r = &c->queues[c->nqueues++];
  queue_figures_of(ob, &r->f);
  r->id = ob->id;
}

static int by_typeid(const void *a, const void *b) {
  return strcmp(((const typecount *)a)->typeid, ((const typecount *)b)->typeid);
}

static int by_name(const void *a, const void *b) {
  const qrow *x = a, *y = b;
  int c = strcmp(x->f.name, y->f.name);
  return c ? c : (x->id > y->id) - (x->id < y->id);
}

static void objects_part(buf *o, const census *c) {
  head(o, "shmgr_objects", "gauge",
       "Live objects by typeid: shared with clients, or held inside other objects or by parked calls.");
  for (size_t i = 0; i < c->ntypes; i++) {
    sample(o, "shmgr_objects", 1, "typeid", c->types[i].typeid);
    num_u(o, c->types[i].n);
  }
  gauge(o, "shmgr_shared_objects", "Objects in the ident table (what number_of_objects counts).",
        (int64_t)table_count());
}

typedef enum qfig { Q_DEPTH, Q_INFLIGHT, Q_PUTS, Q_GETS, Q_REDELIVERED } qfig;

static void queue_family(buf *o, const census *c, const char *name, const char *type, const char *help, qfig which) {
  head(o, name, type, help);
  for (size_t i = 0; i < c->nqueues; i++) {
    const queue_figures *f = &c->queues[i].f;
    sample(o, name, 1, "queue", c->queues[i].label);
    switch (which) {
    case Q_DEPTH: num_i(o, f->depth); break;
    case Q_INFLIGHT: num_i(o, f->inflight); break;
    case Q_PUTS: num_u(o, f->puts); break;
    case Q_GETS: num_u(o, f->gets); break;
    case Q_REDELIVERED: num_u(o, f->redelivered); break;
    }
  }
}

static void queues_part(buf *o, census *c) {
  qrow *q = c->queues;
  for (size_t i = 0; i < c->nqueues; i++) { /* a name two queues share (not durable) gets their idents */
    bool shared = (i > 0 && strcmp(q[i - 1].f.name, q[i].f.name) == 0) ||
                  (i + 1 < c->nqueues && strcmp(q[i + 1].f.name, q[i].f.name) == 0);
    if (shared) snprintf(q[i].label, sizeof q[i].label, "%s@%" PRIx64, q[i].f.name, q[i].id);
    else snprintf(q[i].label, sizeof q[i].label, "%s", q[i].f.name);
  }
  queue_family(o, c, "shmgr_queue_depth", "gauge", "Items in a named queue, ready to get.", Q_DEPTH);
  queue_family(o, c, "shmgr_queue_in_flight", "gauge",
               "Items of a named queue (redeliver = true) got and not yet task_done.", Q_INFLIGHT);
  const char *w = "shmgr_queue_waiters";
  head(o, w, "gauge", "Calls parked on a named queue, by kind: get (empty), put (full), join (unfinished).");
  for (size_t i = 0; i < c->nqueues; i++) {
    sample(o, w, 2, "queue", q[i].label, "kind", "get");
    num_u(o, q[i].f.getters);
    sample(o, w, 2, "queue", q[i].label, "kind", "put");
    num_u(o, q[i].f.putters);
    sample(o, w, 2, "queue", q[i].label, "kind", "join");
    num_u(o, q[i].f.joiners);
  }
  queue_family(o, c, "shmgr_queue_puts_total", "counter", "Items put into a named queue.", Q_PUTS);
  queue_family(o, c, "shmgr_queue_gets_total", "counter", "Items got from a named queue.", Q_GETS);
  queue_family(o, c, "shmgr_queue_redelivered_total", "counter",
               "Items of a named queue put back because the client that got them went away.", Q_REDELIVERED);
  const char *a = "shmgr_queue_oldest_item_age_seconds";
  head(o, a, "gauge", "Seconds the head item of a named queue has waited (since a restart for stored items); 0 when empty.");
  for (size_t i = 0; i < c->nqueues; i++) {
    sample(o, a, 1, "queue", q[i].label);
    num_f(o, q[i].f.oldest_age > 0 ? q[i].f.oldest_age : 0);
  }
}

/* ---- what clients left behind, memory, the store ---- */

static void rest_part(buf *o) {
  const stats *s = &the_stats;
  counter(o, "shmgr_items_redelivered_total",
          "Queue items put back because the client that got them went away (every queue).", s->redelivered);
  counter(o, "shmgr_locks_released_total", "Lock takes given back for clients that went away (lock_policy).",
          s->locks_released);
  gauge(o, "shmgr_resident_memory_bytes", "The server process's resident memory.", stats_rss_bytes());
  gauge(o, "shmgr_memory_used_bytes",
        "What the server holds: its heap (every allocation, libraries' too) and its shared memory segments.",
        (int64_t)mem_used());
  gauge(o, "shmgr_memory_limit_bytes", "limits.max_memory: past it calls that add data are refused (0: no limit).",
        (int64_t)mem_limit());
  gauge(o, "shmgr_lua_memory_bytes", "Memory the Lua state holds (what limits.lua_memory bounds).",
        (int64_t)lx_memory());
  shm_figures sf = shm_stats();
  gauge(o, "shmgr_shm_segments", "Shared memory segments of the Shared* objects (in /dev/shm).", (int64_t)sf.segments);
  gauge(o, "shmgr_shm_bytes", "Bytes of those segments (reserved in /dev/shm).", (int64_t)sf.mapped);
  gauge(o, "shmgr_shm_block_bytes", "Bytes the Shared* objects use of them.", (int64_t)sf.used);
  gauge(o, "shmgr_tracked_segments",
        "Segments SharedMemoryManager clients made and asked shmgr to track (track_segment): unlinked when it stops.",
        (int64_t)segments_count());
  store_info si;
  if (!store_figures(&si)) return;
  gauge(o, "shmgr_store_bytes", "Size of the store's database on disk, with its write-ahead log.", si.bytes);
  counter(o, "shmgr_store_commits_total", "Commits of the store (one per loop turn that changed durable state).",
          si.commits);
  counter(o, "shmgr_store_failed_commits_total", "Commits that failed (their changes rolled back, their calls failed).",
          si.failed);
}

void metrics_page(buf *out) {
  census c = {0};
  obj_each(take_census, &c);
  if (c.ntypes) qsort(c.types, c.ntypes, sizeof *c.types, by_typeid); /* a stable order reads and diffs well */
  if (c.nqueues) qsort(c.queues, c.nqueues, sizeof *c.queues, by_name);
  buf_reserve(out, 16384);
  server_part(out);
  calls_part(out);
  objects_part(out, &c);
  queues_part(out, &c);
  rest_part(out);
  free(c.types);
  free(c.queues);
}
