/* workload.c: the load generator's workloads, each a small state machine on one libev loop. */
#include "workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bclient.h"
#include "procstat.h"

#define HANDSHAKES_AT_ONCE 8 /* fewer than the backlog of CPython's server (16; 128 in 3.13) */
#define FILL_WINDOW 16        /* fill: puts in flight per connection (pipelined) */
#define SETTLE 0.5            /* idle: seconds to let the server settle before reading its RSS */

static const char *const names[] = {"queue", "dict", "list", "create", "idle", "fill", "objects", "park",
                                    "transfer"};

const char *workload_name(wkind w) { return names[w]; }

bool workload_parse(const char *name, wkind *w) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i]) == 0) return *w = (wkind)i, true;
  return false;
}

bool workload_is_rate(wkind w) { return w <= W_CREATE; }

bool workload_on_queue(wkind w) {
  return w == W_QUEUE || w == W_IDLE || w == W_FILL || w == W_PARK || w == W_TRANSFER;
}

/* ---- the run's state: one run per process ---- */

/* A connection's step counts up from 0 through its calls; below 0 it is out of the run. */
enum { STEP_FAILED = -1, STEP_SETUP = -2, STEP_DONE = -3 };

static const bench_opts *O;
static bench_result *R;
static bconn *conns;        /* the serving connections, or the fresh-connection slots */
static size_t nconns;       /* how many of them there are (park: the control one is last) */
static char (*idents)[32];  /* create: the object each slot is working on */
static bconn ctl;           /* setup and clean-up: one fresh connection at a time */
static char ident[32];      /* the shared object of this run */
static size_t opened, handshaking, ready, failed, busy;
static uint64_t launched, sent, answered; /* operations started; fill/objects/park counters */
static bool stopping;       /* the measured window is over: no new operations */
static double t0, t_wake;
static procstat ps0;
static ev_timer window, deadline, settle;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void error(const char *fmt, ...) {
  if (R->errors++) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(R->error, sizeof R->error, fmt, ap);
  va_end(ap);
}

static void finish(void) { ev_break(bc_loop, EVBREAK_ALL); }

static void read_server(procstat *ps) {
  if (O->pid && !procstat_read(O->pid, ps)) error("cannot read /proc/%d: is the server running?", (int)O->pid);
}

static value *tup1(value *a) {
  value *t = v_tuple(1);
  t->u.seq.items[0] = a;
  return t;
}

static value *tup2(value *a, value *b) {
  value *t = v_tuple(2);
  t->u.seq.items[0] = a, t->u.seq.items[1] = b;
  return t;
}

/* The result of a #RETURN reply (borrowed from reply), or NULL after counting the error. */
static const value *returned(const value *reply, const char *what) {
  const value *res;
  const char *kind = bc_reply_kind(reply, &res);
  if (kind && strcmp(kind, "#RETURN") == 0) return res;
  buf text = {0};
  v_repr(&text, reply);
  error("%s: %.*s", what, text.len > 200 ? 200 : (int)text.len, (const char *)text.data);
  buf_free(&text);
  return NULL;
}

static bool is_int(const value *v, int64_t *i) {
  if (!v || v->kind != VK_INT) return false;
  if (i) *i = v->u.i;
  return true;
}

/* ---- one fresh connection for a server method: setup and clean-up ---- */

static void server_call(const char *method, value *args, void (*then)(void));
static void (*ctl_then)(void);
static const char *ctl_method;
static const char *ctl_what; /* the call, as messages name it */
static value *ctl_args;

static void ctl_ready(bconn *c) {
  value *a = ctl_args;
  ctl_args = NULL;
  bc_call(c, NULL, ctl_method, a);
}

/* Whether a create reply's exposed names (a tuple or list of str) include name; when the
   server does not list them, it is taken at its word. */
static bool exposes(const value *exposed, const char *name) {
  if (!exposed || (exposed->kind != VK_TUPLE && exposed->kind != VK_LIST)) return true;
  for (size_t i = 0; i < exposed->u.seq.len; i++)
    if (v_is_str(exposed->u.seq.items[i], name)) return true;
  return false;
}

static void ctl_reply(bconn *c, value *reply) {
  const value *res = returned(reply, ctl_what);
  bool create = strcmp(ctl_method, "create") == 0, queue = true;
  if (res && create) {
    const value *id = res->kind == VK_TUPLE && res->u.seq.len == 2 ? res->u.seq.items[0] : NULL;
    if (id && id->kind == VK_STR && id->u.s.len < sizeof ident) memcpy(ident, id->u.s.data, id->u.s.len + 1);
    else error("%s: the reply is not (ident, exposed)", ctl_what);
    /* a registered typeid may return anything: the workloads want a queue */
    static const char *const wanted[] = {"put", "get", "qsize"};
    for (size_t i = 0; ident[0] && O->typeid && queue && i < sizeof wanted / sizeof wanted[0]; i++) {
      if (exposes(res->u.seq.items[1], wanted[i])) continue;
      error("%s: what it returns is not a queue (it exposes no %s())", ctl_what, wanted[i]);
      queue = false;
    }
  }
  v_decref(reply);
  bc_close(c);
  if (!res || (create && !ident[0])) return finish();
  if (!queue) return server_call("decref", tup1(v_strz(ident)), finish); /* the reference create gave us */
  ctl_then();
}

static void ctl_error(bconn *c, const char *why) {
  (void)c;
  error("%s: %s", ctl_what, why);
  finish();
}

/* Call the server method on a fresh connection (args stolen), then run then; what names
   the call in messages. */
static void server_call_as(const char *what, const char *method, value *args, void (*then)(void)) {
  ctl_method = method, ctl_what = what, ctl_args = args, ctl_then = then;
  ctl.on_ready = ctl_ready, ctl.on_reply = ctl_reply, ctl.on_error = ctl_error;
  bc_open(&ctl);
}

static void server_call(const char *method, value *args, void (*then)(void)) {
  server_call_as(method, method, args, then);
}

/* Create the queue workloads' queue: a new Queue, or the one a registered typeid returns. */
static void create_queue(void (*then)(void)) {
  static char what[300];
  if (!O->typeid) return server_call("create", tup1(v_strz("Queue")), then);
  snprintf(what, sizeof what, "--typeid %s: create('%s')", O->typeid, O->typeid);
  server_call_as(what, "create", tup1(v_strz(O->typeid)), then);
}

/* ---- serving connections: opened a few at a time, then accept_connection ---- */

static void (*all_ready)(void);
static void (*serving_reply)(bconn *c, value *reply);
static void open_more(void);

static void accept_sent(bconn *c) { bc_call(c, NULL, "accept_connection", tup1(v_strz("shmgr-bench"))); }

static void setup_done(bconn *c, bool ok) {
  handshaking--;
  if (ok) ready++;
  else failed++;
  c->step = ok ? 0 : STEP_FAILED;
  open_more();
  if (ready + failed == nconns) {
    if (!ready) return finish();
    all_ready();
  }
}

static void accepted(bconn *c, value *reply) {
  const value *res = returned(reply, "accept_connection");
  v_decref(reply);
  if (!res) {
    bc_close(c);
    return setup_done(c, false);
  }
  c->on_reply = serving_reply;
  setup_done(c, true);
}

static void serving_error(bconn *c, const char *why);

static void open_more(void) {
  while (opened < nconns && handshaking < HANDSHAKES_AT_ONCE) {
    bconn *c = &conns[opened];
    c->idx = opened++;
    c->step = STEP_SETUP;
    c->on_ready = accept_sent, c->on_reply = accepted, c->on_error = serving_error;
    handshaking++;
    bc_open(c);
  }
}

static void open_serving(size_t n, void (*then)(void), void (*on_reply)(bconn *, value *)) {
  nconns = n;
  all_ready = then, serving_reply = on_reply;
  open_more();
}

static void op_ended(bconn *c);

static void serving_error(bconn *c, const char *why) {
  error("connection %zu: %s", c->idx, why);
  if (c->step == STEP_SETUP) return setup_done(c, false);
  if (workload_is_rate(O->w)) {
    if (c->step < 0) return;
    c->step = STEP_FAILED;
    return op_ended(c);
  }
  c->step = STEP_FAILED;
  finish(); /* the other workloads' counts can no longer add up */
}

static void close_serving(void) {
  for (size_t i = 0; i < opened; i++) bc_close(&conns[i]);
}

/* ---- rate workloads: a closed loop per connection, as a stock client calls ---- */

static void end_window(void) {
  procstat ps;
  R->seconds = now() - t0;
  read_server(&ps);
  if (O->pid && R->errors == 0) {
    R->measured = true;
    R->cpu_s = ps.cpu_s - ps0.cpu_s;
    R->user_s = ps.user_s - ps0.user_s;
    R->rss_kb = ps.rss_kb;
    R->hwm_kb = ps.hwm_kb;
  }
  stopping = true;
  ev_timer_stop(bc_loop, &window);
}

static void on_window(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  end_window();
}

static void cleaned(void) { finish(); }

static void start_op(bconn *c);

/* c finished an operation (or failed): start the next, or wind down. */
static void op_ended(bconn *c) {
  if (c->step >= 0 && !stopping && (!O->ops || launched < (uint64_t)O->ops)) return start_op(c);
  c->step = STEP_DONE; /* an error on it now is counted, nothing more */
  if (--busy) return;
  if (!stopping) end_window();
  if (O->w == W_CREATE) return finish();
  close_serving();
  server_call("decref", tup1(v_strz(ident)), cleaned); /* the shared object goes */
}

static void op_done(bconn *c) {
  if (stopping) return op_ended(c); /* after the window: not counted */
  hist_add(&R->lat, (uint64_t)((now() - c->started) * 1e9));
  R->ops++;
  if (c->ops++ == 0) R->served++;
  if (O->ops && R->ops == (uint64_t)O->ops) end_window();
  op_ended(c);
}

static value *key_of(const bconn *c) {
  char k[32];
  snprintf(k, sizeof k, "k%zu", c->idx);
  return v_strz(k);
}

/* The two calls of one operation on a shared object. */
static void call_step(bconn *c) {
  int64_t i = (int64_t)launched;
  switch (O->w) {
  case W_QUEUE:
    if (c->step == 0) bc_call(c, ident, "put", tup1(v_int(i)));
    else bc_call(c, ident, "get", NULL);
    break;
  case W_DICT:
    if (c->step == 0) bc_call(c, ident, "__setitem__", tup2(key_of(c), v_int(i)));
    else bc_call(c, ident, "__getitem__", tup1(key_of(c)));
    break;
  case W_LIST:
    if (c->step == 0) bc_call(c, ident, "append", tup1(v_int(i)));
    else bc_call(c, ident, "__len__", NULL);
    break;
  default:
    break;
  }
}

static void object_reply(bconn *c, value *reply) {
  const value *res = returned(reply, c->step == 0 ? "first call" : "second call");
  bool ok = res && (c->step == 0 || O->w != W_LIST || is_int(res, NULL));
  if (res && !ok) error("__len__ did not return an int");
  v_decref(reply);
  if (!ok) {
    bc_close(c);
    c->step = STEP_FAILED;
    return op_ended(c);
  }
  R->calls++;
  if (c->step++ == 0) return call_step(c);
  op_done(c);
}

/* create: one fresh connection per step, as a stock client creates and drops a proxy */
static const char *const life[] = {"create", "incref", "decref", "decref"};

static void life_ready(bconn *c) {
  if (c->step == 0) bc_call(c, NULL, "create", tup1(v_strz("dict")));
  else bc_call(c, NULL, life[c->step], tup1(v_strz(idents[c->idx])));
}

static void life_reply(bconn *c, value *reply) {
  const value *res = returned(reply, life[c->step]);
  if (res && c->step == 0) {
    const value *id = res->kind == VK_TUPLE && res->u.seq.len == 2 ? res->u.seq.items[0] : NULL;
    if (id && id->kind == VK_STR && id->u.s.len < sizeof idents[0]) memcpy(idents[c->idx], id->u.s.data, id->u.s.len + 1);
    else res = NULL, error("create: the reply is not (ident, exposed)");
  }
  v_decref(reply);
  bc_close(c);
  if (!res) {
    c->step = STEP_FAILED;
    return op_ended(c);
  }
  R->calls++;
  if (++c->step < 4) return bc_open(c);
  op_done(c);
}

static void life_error(bconn *c, const char *why) {
  error("%s connection: %s", life[c->step], why);
  c->step = STEP_FAILED;
  op_ended(c);
}

static void start_op(bconn *c) {
  launched++;
  c->step = 0;
  c->started = now();
  if (O->w == W_CREATE) return bc_open(c);
  call_step(c);
}

static void start_window(void) {
  read_server(&ps0);
  t0 = now();
  if (!O->ops) {
    ev_timer_init(&window, on_window, O->duration, 0.);
    ev_timer_start(bc_loop, &window);
  }
  busy = 0;
  for (size_t i = 0; i < nconns; i++)
    if (conns[i].step >= 0) busy++;
  for (size_t i = 0; i < nconns; i++)
    if (conns[i].step >= 0) start_op(&conns[i]);
}

static void rate_start(void) { open_serving((size_t)O->conns, start_window, object_reply); }

static void create_start(void) {
  nconns = (size_t)O->conns;
  idents = xcalloc(nconns, sizeof *idents);
  for (size_t i = 0; i < nconns; i++) {
    conns[i].idx = i;
    conns[i].on_ready = life_ready, conns[i].on_reply = life_reply, conns[i].on_error = life_error;
  }
  opened = nconns;
  start_window();
}

/* ---- idle: memory per held connection, then one call each ---- */

static void idle_reply(bconn *c, value *reply) {
  if (is_int(returned(reply, "qsize"), NULL)) R->served++;
  v_decref(reply);
  bc_close(c);
  if (++answered == ready) finish();
}

static void on_settled(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  procstat ps;
  read_server(&ps);
  R->rss_after_kb = ps.rss_kb;
  R->measured = O->pid != 0;
  for (size_t i = 0; i < nconns; i++)
    if (conns[i].step >= 0) bc_call(&conns[i], ident, "qsize", NULL);
}

static void idle_all_ready(void) {
  ev_timer_init(&settle, on_settled, SETTLE, 0.);
  ev_timer_start(bc_loop, &settle);
}

/* ---- fill: memory per queued item ---- */

static void fill_send(bconn *c) {
  if (sent < (uint64_t)O->items) bc_call(c, ident, "put", tup1(v_int((int64_t)sent++)));
}

static void fill_reply(bconn *c, value *reply) {
  if (c->step == 1) { /* the final qsize */
    int64_t n = -1;
    if (is_int(returned(reply, "qsize"), &n)) R->qsize = n;
    v_decref(reply);
    procstat ps;
    read_server(&ps);
    R->rss_after_kb = ps.rss_kb;
    R->measured = O->pid != 0;
    return finish();
  }
  if (!returned(reply, "put")) {
    v_decref(reply);
    return finish();
  }
  v_decref(reply);
  if (++answered == (uint64_t)O->items) {
    c->step = 1;
    return bc_call(c, ident, "qsize", NULL);
  }
  fill_send(c);
}

static void fill_all_ready(void) {
  for (size_t i = 0; i < nconns; i++)
    for (int k = 0; k < FILL_WINDOW && conns[i].step >= 0; k++) fill_send(&conns[i]);
}

/* ---- objects: memory per shared object ---- */

static void objects_next(bconn *c) {
  if (launched < (uint64_t)O->items) {
    launched++;
    bc_open(c);
  } else if (--busy == 0) {
    procstat ps;
    read_server(&ps);
    R->rss_after_kb = ps.rss_kb;
    R->measured = O->pid != 0;
    finish();
  }
}

static void objects_ready(bconn *c) { bc_call(c, NULL, "create", tup1(v_strz("dict"))); }

static void objects_reply(bconn *c, value *reply) {
  if (returned(reply, "create")) R->made++;
  v_decref(reply);
  bc_close(c);
  objects_next(c);
}

static void objects_error(bconn *c, const char *why) {
  error("create connection: %s", why);
  objects_next(c);
}

static void objects_start(void) {
  nconns = (size_t)O->conns;
  busy = nconns;
  for (size_t i = 0; i < nconns; i++) {
    conns[i].idx = i;
    conns[i].on_ready = objects_ready, conns[i].on_reply = objects_reply, conns[i].on_error = objects_error;
  }
  opened = nconns;
  for (size_t i = 0; i < nconns; i++) objects_next(&conns[i]);
}

/* ---- park: waiters parked in a known order, then woken ---- */

/* The control connection confirms each get is parked before the next is sent: its own
   round trip is read after the get that was written before it, so arrival order is known. */
static void park_next(void) {
  bconn *control = &conns[nconns - 1];
  while (sent < nconns - 1 && conns[sent].step < 0) sent++; /* a waiter that failed to connect */
  if (sent < nconns - 1) {
    bc_call(&conns[sent++], ident, "get", NULL);
    return bc_call(control, ident, "qsize", NULL);
  }
  t_wake = now();
  control->step = 1; /* now answering puts */
  for (size_t i = 0; i + 1 < nconns; i++) bc_call(control, ident, "put", tup1(v_int((int64_t)i)));
}

static void park_reply(bconn *c, value *reply) {
  const value *res = returned(reply, c == &conns[nconns - 1] ? "control call" : "get");
  int64_t got = -1;
  bool control = c == &conns[nconns - 1];
  if (!control && is_int(res, &got)) {
    R->woken++;
    if (got == (int64_t)c->idx) R->in_order++;
    if (R->woken == ready - 1) {
      R->wake_seconds = now() - t_wake;
      finish();
    }
  }
  v_decref(reply);
  if (!res) return finish();
  if (control && c->step == 0) park_next();
}

static void park_all_ready(void) {
  if (conns[nconns - 1].step < 0) {
    error("the control connection failed");
    return finish();
  }
  sent = 0;
  park_next();
}

/* ---- transfer: every item through one queue exactly once ---- */

/* The first half of the connections put items 0..items-1 (each the next unsent one), the
   other half get them in a closed loop; each item received is ticked off, so one lost or
   delivered twice shows. Consumers left waiting at the end are simply disconnected. */
static uint8_t *seen;

static bool producer(const bconn *c) { return c->idx < nconns / 2; }

static void transfer_next(bconn *c) {
  if (!producer(c)) return bc_call(c, ident, "get", NULL);
  if (sent < (uint64_t)O->items) bc_call(c, ident, "put", tup1(v_int((int64_t)sent++)));
}

static void transfer_reply(bconn *c, value *reply) {
  const value *res = returned(reply, producer(c) ? "put" : "get");
  int64_t item = -1;
  if (res && !producer(c)) {
    if (!is_int(res, &item) || item < 0 || item >= O->items) {
      error("get returned something that was never put");
    } else if (seen[item]++) {
      R->duplicates++;
    } else if (++R->received == (uint64_t)O->items) {
      R->seconds = now() - t0;
      v_decref(reply);
      return finish();
    }
  }
  v_decref(reply);
  if (!res) return finish();
  transfer_next(c);
}

static void transfer_all_ready(void) {
  if (ready < nconns) return finish(); /* a connection failed: counts cannot add up */
  seen = xcalloc((size_t)O->items, 1);
  t0 = now();
  for (size_t i = 0; i < nconns; i++) transfer_next(&conns[i]);
}

/* ---- the run ---- */

static void measure_before(void) {
  procstat ps;
  read_server(&ps);
  R->rss_before_kb = ps.rss_kb;
}

static void after_queue(void) {
  measure_before();
  switch (O->w) {
  case W_IDLE: return open_serving((size_t)O->conns, idle_all_ready, idle_reply);
  case W_FILL: return open_serving((size_t)O->conns, fill_all_ready, fill_reply);
  case W_PARK: return open_serving((size_t)O->conns + 1, park_all_ready, park_reply);
  case W_TRANSFER: return open_serving((size_t)O->conns, transfer_all_ready, transfer_reply);
  default: return;
  }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  error("gave up after %g s (--timeout)", O->timeout);
  finish();
}

void workload_run(const bench_opts *o, bench_result *r) {
  O = o, R = r;
  memset(r, 0, sizeof *r);
  size_t n = (size_t)o->conns + 1; /* park has a control connection */
  conns = xcalloc(n, sizeof *conns);
  for (size_t i = 0; i < n; i++) conns[i].fd = -1;
  ctl.fd = -1;
  ev_timer_init(&deadline, on_deadline, o->timeout, 0.);
  ev_timer_start(bc_loop, &deadline);
  switch (o->w) {
  case W_QUEUE: create_queue(rate_start); break;
  case W_DICT: server_call("create", tup1(v_strz("dict")), rate_start); break;
  case W_LIST: server_call("create", tup1(v_strz("list")), rate_start); break;
  case W_CREATE: create_start(); break;
  case W_OBJECTS: measure_before(); objects_start(); break;
  default: create_queue(after_queue); break;
  }
  ev_run(bc_loop, 0);
  r->retries = bc_retries;
  if (seen) {
    for (long i = 0; i < o->items; i++) r->missing += !seen[i];
    free(seen);
    seen = NULL;
    if (r->missing || r->duplicates)
      error("%llu items never arrived, %llu arrived more than once", (unsigned long long)r->missing,
            (unsigned long long)r->duplicates);
  }
  for (size_t i = 0; i < n; i++) {
    bc_close(&conns[i]);
    bc_free(&conns[i]);
  }
  bc_close(&ctl);
  bc_free(&ctl);
  free(conns);
  free(idents);
}
