/* stats.c: what the server counts for operators: connections, calls and their durations, limits hit, the slowlog. */
#include "alloc.h"
#include "stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "wait.h"

stats the_stats;
double stats_slow_seconds = 0.010;

const double stats_bucket_le[STATS_BUCKETS] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                               0.0025,  0.005,    0.01,    0.025,  0.1,     0.5,    2.5};

const char *const turned_away_name[TA_COUNT] = {"max_connections", "max_auth_failures", "out_of_fds"};
const char *const limit_name[LIM_COUNT] = {"max_message",     "handshake_timeout",     "send_timeout",
                                           "idle_timeout",    "max_connections",       "max_auth_failures",
                                           "bad_request",     "lua_instructions",      "lua_memory",
                                           "max_store_bytes", "max_memory"};

double stats_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void stats_limit(limit_id id, const char *fmt, ...) {
  static double last[LIM_COUNT];
  static uint64_t unlogged[LIM_COUNT];
  the_stats.limits[id]++;
  double now = stats_clock();
  if (last[id] && now - last[id] < 1.0) {
    unlogged[id]++;
    return;
  }
  last[id] = now;
  char text[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (unlogged[id]) logmsg(LOG_WARN, "%s (and %llu more since the last such line)", text, (unsigned long long)unlogged[id]);
  else logmsg(LOG_WARN, "%s", text);
  unlogged[id] = 0;
}

void stats_start(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  the_stats.started = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  the_stats.started_mono = stats_clock();
}

/* ---- per (typeid, method): an open-addressing table of pointers. Pairs are few (typeids
   times their exposed methods) and looked up once per call, so a flat table keyed by the
   typeid's address and the method's bytes, never shrunk. Each counter is allocated on its own:
   a parked call keeps a pointer to its counter while other calls add pairs and the table grows. ---- */

static methodstat **slots; /* NULL: empty */
static size_t nslots, used;
static methodstat other;  /* where calls go once the table is full */
/* where calls that name no object go (a garbled request, an ident not in the table), so
   that the pairs add up to the totals */
static methodstat unrouted = {.typeid = "(none)", .method = "(none)"};

static size_t hash(const char *typeid, const char *m, size_t n) {
  uint64_t h = (uint64_t)(uintptr_t)typeid * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)m[i]) * 0x100000001B3ull;
  return (size_t)(h ^ h >> 29);
}

static methodstat **probe(methodstat **tab, size_t cap, const char *typeid, const char *m, size_t n) {
  for (size_t i = hash(typeid, m, n) & (cap - 1);; i = (i + 1) & (cap - 1)) {
    methodstat *s = tab[i];
    if (!s || (s->typeid == typeid && strncmp(s->method, m, n) == 0 && !s->method[n])) return &tab[i];
  }
}

methodstat *stats_method(const char *typeid, const char *method, size_t mlen) {
  if (nslots) {
    methodstat **s = probe(slots, nslots, typeid, method, mlen);
    if (*s) return *s;
  }
  if (used >= STATS_MAX_METHODS) {
    other.typeid = "(other)";
    other.method = "(other)";
    return &other;
  }
  if ((used + 1) * 2 > nslots) { /* at most half full: probes stay short */
    size_t cap = nslots ? nslots * 2 : 64;
    methodstat **tab = xcalloc(cap, sizeof *tab);
    for (size_t i = 0; i < nslots; i++)
      if (slots[i]) *probe(tab, cap, slots[i]->typeid, slots[i]->method, strlen(slots[i]->method)) = slots[i];
    free(slots);
    slots = tab;
    nslots = cap;
  }
  methodstat *m = xcalloc(1, sizeof *m);
  m->typeid = typeid;
  m->method = xmalloc(mlen + 1);
  memcpy(m->method, method, mlen);
  m->method[mlen] = 0;
  *probe(slots, nslots, typeid, method, mlen) = m;
  used++;
  return m;
}

void stats_each_method(void (*f)(const methodstat *m, void *ctx), void *ctx) {
  for (size_t i = 0; i < nslots; i++)
    if (slots[i]) f(slots[i], ctx);
  if (other.calls) f(&other, ctx);
  if (unrouted.calls) f(&unrouted, ctx);
}

/* ---- the slowlog: a ring, newest at next - 1 ---- */

static slowentry ring[SLOWLOG_LEN];
static uint64_t logged; /* entries ever written */

static void slowlog_add(const methodstat *m, double seconds, uint64_t client, const char *peer) {
  slowentry *e = &ring[logged % SLOWLOG_LEN];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  e->id = ++logged;
  e->when = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  e->client = client;
  snprintf(e->peer, sizeof e->peer, "%s", peer ? peer : "");
  e->typeid = m ? m->typeid : "";
  snprintf(e->method, sizeof e->method, "%s", m ? m->method : "");
  e->seconds = seconds;
  the_stats.slow_calls++;
  logmsg(LOG_WARN, "#%llu %s: slow call: %s.%s took %.1f ms (slowlog_threshold %.1f ms)", (unsigned long long)client,
         e->peer, e->typeid, e->method, seconds * 1e3, stats_slow_seconds * 1e3);
}

const slowentry *stats_slowlog(size_t i) {
  if (i >= SLOWLOG_LEN || i >= logged) return NULL;
  return &ring[(logged - 1 - i) % SLOWLOG_LEN];
}

/* Start a new second of the call rate when the loop's clock has moved to one. */
static void tick(void) {
  int64_t now = (int64_t)ev_now(wait_loop);
  if (now == the_stats.rate_sec) return;
  the_stats.last_calls = now == the_stats.rate_sec + 1 ? the_stats.cur_calls : 0;
  the_stats.cur_calls = 0;
  the_stats.rate_sec = now;
}

uint64_t stats_calls_last_second(void) {
  tick();
  return the_stats.last_calls;
}

void stats_call(methodstat *m, double seconds, bool failed, uint64_t client, const char *peer) {
  tick();
  the_stats.cur_calls++;
  the_stats.calls++;
  the_stats.errors += failed;
  methodstat *counted = m ? m : &unrouted;
  counted->calls++;
  counted->errors += failed;
  counted->seconds += seconds;
  size_t b = 0; /* buckets are few: a linear scan beats a search */
  while (b < STATS_BUCKETS && seconds > stats_bucket_le[b]) b++;
  the_stats.hist[b]++;
  the_stats.hist_sum += seconds;
  if (stats_slow_seconds > 0 && seconds > stats_slow_seconds) slowlog_add(m, seconds, client, peer);
}

int64_t stats_rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  int n = fscanf(f, "%ld %ld", &pages, &resident);
  fclose(f);
  return n == 2 ? (int64_t)resident * sysconf(_SC_PAGESIZE) : 0;
}

void stats_clear(void) {
  for (size_t i = 0; i < nslots; i++)
    if (slots[i]) free(slots[i]->method), free(slots[i]);
  free(slots);
  slots = NULL;
  nslots = used = 0;
}
