/* workload.h: what the load generator runs against a manager server, and what it found. */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

typedef enum wkind {
  W_QUEUE,   /* put(i) then get() on one shared Queue */
  W_DICT,    /* d['k<conn>'] = i then d['k<conn>'] on one shared dict */
  W_LIST,    /* append(i) then len() on one shared list */
  W_CREATE,  /* create('dict'), incref, decref, decref: each on a fresh connection */
  W_IDLE,    /* hold authenticated connections; measure memory; one call each */
  W_FILL,    /* put many small items into one queue; measure memory */
  W_OBJECTS, /* create many dicts and keep them; measure memory */
  W_PARK,    /* park a get() per connection in a known order; wake them all */
  W_TRANSFER, /* producers put distinct items into one queue, consumers get them: none lost */
} wkind;

typedef struct bench_opts {
  wkind w;
  long conns;      /* connections (or, for create and objects, fresh connections at once) */
  double duration; /* seconds of the measured window, when ops is 0 */
  long ops;        /* exactly this many operations instead */
  long items;      /* fill: items; objects: objects */
  pid_t pid;       /* the server's, for CPU and memory; 0: not measured */
  const char *typeid; /* the queue workloads: the queue is what create(typeid) returns (a
                         registered typeid taking no arguments, e.g. a durable queue that
                         shmgr's config declares); NULL: create('Queue'), a queue of the run's own */
  double timeout;  /* the whole run gives up after this many seconds */
} bench_opts;

typedef struct bench_result {
  uint64_t errors;
  char error[256];   /* the first error, "" when none */
  bool measured;     /* the server's figures below were read */
  unsigned long retries; /* connections made again: the server never accepted them */
  /* rate workloads */
  uint64_t ops;
  uint64_t calls;    /* the calls of operations answered, in the window and after it: the
                        operations in flight when it closes are finished, their calls counted
                        here, not the operations in ops */
  double seconds;
  hist lat;
  double cpu_s, user_s; /* the server's CPU time in the window, and the user part of it */
  long rss_kb, hwm_kb;
  /* memory workloads: RSS before and after the objects were made */
  long rss_before_kb, rss_after_kb;
  uint64_t served;   /* connections that answered their call (idle) or completed an
                        operation in the window (rate workloads) */
  int64_t qsize;     /* fill: the queue's size at the end */
  uint64_t made;     /* objects: created */
  /* park */
  uint64_t woken, in_order;
  double wake_seconds;
  /* transfer: items that arrived once, twice or more, and never */
  uint64_t received, duplicates, missing;
} bench_result;

/* The name of a workload ("queue", ...), and the workload of a name (false if unknown). */
const char *workload_name(wkind w);
bool workload_parse(const char *name, wkind *w);
/* True for the workloads whose figures are a rate (ops, latency, CPU per op). */
bool workload_is_rate(wkind w);
/* True for the workloads on one shared queue (the ones --typeid applies to). */
bool workload_on_queue(wkind w);

/* Run o's workload against bc_server (bclient.h) on a loop of its own. Fills *r (zeroed
   first); every failure is counted in r->errors with the first one in r->error. */
void workload_run(const bench_opts *o, bench_result *r);

#endif
