/* hist.h: a latency histogram for the load generator: log-linear buckets, ~1.6% precision. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64                 /* buckets per power of two: each within 1/64 of its values */
#define HIST_BUCKETS (HIST_SUB * 40) /* up to 2^40 ns (about 18 minutes) */

typedef struct hist {
  uint64_t n;
  uint64_t count[HIST_BUCKETS];
} hist;

/* Count one latency of ns nanoseconds (longer ones land in the last bucket). */
void hist_add(hist *h, uint64_t ns);
/* The latency at quantile q (0 < q <= 1) in nanoseconds: the upper edge of the bucket
   holding it, so a reported p99 is never below the true one by more than the precision.
   0 when nothing was counted. */
uint64_t hist_quantile(const hist *h, double q);

#endif
