/* hist.c: a latency histogram: log-linear buckets, constant memory, no sorting. */
#include "hist.h"

/* Values below HIST_SUB have a bucket each; above, each power of two [2^k, 2^(k+1)) is cut
   into HIST_SUB equal buckets. */
static unsigned bucket_of(uint64_t v) {
  if (v < HIST_SUB) return (unsigned)v;
  unsigned k = 63u - (unsigned)__builtin_clzll(v); /* 2^k <= v, k >= 6 */
  unsigned b = (k - 5) * HIST_SUB + (unsigned)((v >> (k - 6)) - HIST_SUB);
  return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The largest value that falls in bucket b. */
static uint64_t upper_of(unsigned b) {
  if (b < HIST_SUB) return b;
  unsigned k = b / HIST_SUB + 5, sub = b % HIST_SUB;
  return (((uint64_t)HIST_SUB + sub + 1) << (k - 6)) - 1;
}

void hist_add(hist *h, uint64_t ns) {
  h->count[bucket_of(ns)]++;
  h->n++;
}

uint64_t hist_quantile(const hist *h, double q) {
  if (!h->n) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
  if (rank < 1) rank = 1;
  for (unsigned b = 0; b < HIST_BUCKETS; b++)
    if ((seen += h->count[b]) >= rank) return upper_of(b);
  return upper_of(HIST_BUCKETS - 1);
}
