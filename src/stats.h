/* stats.h: what the server counts for operators: connections, calls and their durations, limits hit, the slowlog. */
#ifndef SHMGR_STATS_H
#define SHMGR_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A build with -DSHMGR_NO_STATS reads no clock and counts nothing per call: the baseline
   that `make bench` measures the cost of the statistics against. Everything else is kept. */
#ifdef SHMGR_NO_STATS
#define STATS_PER_CALL 0
#else
#define STATS_PER_CALL 1
#endif

/* Why a connection was turned away before its handshake. */
typedef enum {
  TA_MAX_CONNECTIONS, /* limits.max_connections */
  TA_AUTH_FAILURES,   /* limits.max_auth_failures: its address failed too often */
  TA_NO_FDS,          /* out of file descriptors */
  TA_COUNT
} turned_away;

/* The limits whose hits are counted (each also logged where it is hit). */
typedef enum {
  LIM_MAX_MESSAGE,
  LIM_HANDSHAKE_TIMEOUT,
  LIM_SEND_TIMEOUT,
  LIM_IDLE_TIMEOUT,
  LIM_MAX_CONNECTIONS,
  LIM_MAX_AUTH_FAILURES,
  LIM_BAD_REQUEST,      /* a request that does not decode (incl. max_depth, max_objects) */
  LIM_LUA_INSTRUCTIONS,
  LIM_LUA_MEMORY,
  LIM_MAX_STORE_BYTES,
  LIM_MAX_MEMORY,       /* a call or a request refused under limits.max_memory */
  LIM_COUNT
} limit_id;

/* Count a hit of limit id and log why (printf-style) at warn, at most once a second per
   limit: a script that keeps running into lua_memory must not flood the log. A line after
   a quiet spell says how many hits went unlogged. */
void stats_limit(limit_id id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Call durations are counted in these buckets (seconds, upper bounds; one more for +Inf):
   from what a lock acquire costs to what a huge pickle does. */
#define STATS_BUCKETS 14
extern const double stats_bucket_le[STATS_BUCKETS];

/* The server-wide counters. Plain fields: the loop is the only writer and reader. */
typedef struct stats {
  double started;          /* wall-clock time (time(2) seconds, fractional) at start-up */
  double started_mono;     /* the same moment on the monotonic clock */
  uint64_t conns_total;    /* connections accepted and served a handshake */
  uint64_t turned_away[TA_COUNT];
  uint64_t auth_failures;  /* failed handshakes (wrong key, timeouts, garbage) */
  uint64_t calls;          /* requests served: method calls and server methods */
  uint64_t errors;         /* of which answered with an exception */
  uint64_t parked_total;   /* calls that had to wait (a get on an empty queue, ...) */
  uint64_t bytes_in, bytes_out;
  uint64_t limits[LIM_COUNT];
  uint64_t redelivered;    /* queue items put back because their client went away */
  uint64_t locks_released; /* lock takes given back for a vanished client (lock_policy) */
  uint64_t slow_calls;     /* calls over slowlog_threshold */
  int64_t rate_sec;        /* the loop's whole second that cur_calls counts */
  uint64_t cur_calls, last_calls; /* calls in it, and in the second before */
  /* the histogram of call durations on the loop (seconds): counts per bucket, +Inf last */
  uint64_t hist[STATS_BUCKETS + 1];
  double hist_sum;
} stats;

extern stats the_stats;

/* Names as the config, the CLI and the metrics spell them. */
extern const char *const turned_away_name[TA_COUNT];
extern const char *const limit_name[LIM_COUNT];

/* The monotonic clock in seconds (call durations, ages). */
double stats_clock(void);
/* Record the start-up moment. */
void stats_start(void);

/* One per typeid and method: how often it was called, failed, and for how long. */
typedef struct methodstat {
  const char *typeid;  /* borrowed: a registry entry's or an otype's name, living as long */
  char *method;        /* owned */
  uint64_t calls, errors;
  double seconds;      /* time on the loop, summed */
} methodstat;

/* The counter of (typeid, method), made on first use; it stays where it is until
   stats_clear (a parked call keeps it). typeid is borrowed and must outlive
   the statistics (registry typeids and type names do); method is copied. At most
   STATS_MAX_METHODS pairs are kept: past that, calls count under method "(other)". */
#define STATS_MAX_METHODS 4096
methodstat *stats_method(const char *typeid, const char *method, size_t mlen);
/* Each pair counted so far, in no particular order: f(m, ctx). Their calls add up to
   the_stats.calls, their errors to the_stats.errors. */
void stats_each_method(void (*f)(const methodstat *m, void *ctx), void *ctx);

/* A call ended: count it under m (NULL: under typeid and method "(none)", a request that
   named no object), with its time on the loop (seconds) and whether it failed. Enters the slowlog when over the threshold. */
void stats_call(methodstat *m, double seconds, bool failed, uint64_t client, const char *peer);

/* The slowlog: the last SLOWLOG_LEN calls over slowlog_threshold, newest first. */
#define SLOWLOG_LEN 128
typedef struct slowentry {
  uint64_t id;         /* counts up from 1 over the server's life */
  double when;         /* wall-clock time the call ended */
  uint64_t client;     /* the connection's id */
  char peer[80];
  const char *typeid;  /* borrowed, as in methodstat */
  char method[64];
  double seconds;
} slowentry;
/* Calls over this many seconds are logged; <= 0 turns the slowlog off. */
extern double stats_slow_seconds;
/* The i-th newest entry (0 = newest), or NULL past the last. */
const slowentry *stats_slowlog(size_t i);
/* Calls in the last whole second of the loop's clock. */
uint64_t stats_calls_last_second(void);
/* The process's resident memory in bytes, from /proc (0 where there is none). */
int64_t stats_rss_bytes(void);
/* Forget the per-method counters (shutdown). */
void stats_clear(void);

#endif
