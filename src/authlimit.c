/* authlimit.c: peers that keep failing the handshake are turned away for a while. */
#include "authlimit.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A fixed table, so a flood from many addresses costs no memory: an address hashes to a
   short run of slots, and takes over the stalest of them when it is new. Forgetting an
   address under such a flood only lets it try again, which is the safe side. */
#define SLOTS 4096
#define PROBE 8

typedef struct entry {
  char host[46]; /* INET6_ADDRSTRLEN */
  unsigned failures;
  double since;  /* the start of its current window */
} entry;

static entry table[SLOTS];

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

/* host's entry, or NULL when it has none. */
static entry *find(const char *host) {
  uint32_t h = hash(host);
  for (int i = 0; i < PROBE; i++) {
    entry *e = &table[(h + (uint32_t)i) % SLOTS];
    if (e->host[0] && strcmp(e->host, host) == 0) return e;
  }
  return NULL;
}

void authlimit_failed(const char *host, double now) {
  entry *e = find(host);
  if (!e) {
    uint32_t h = hash(host);
    e = &table[h % SLOTS];
    for (int i = 1; i < PROBE; i++) {
      entry *o = &table[(h + (uint32_t)i) % SLOTS];
      if (!o->host[0] || o->since < e->since) e = o;
    }
    snprintf(e->host, sizeof e->host, "%s", host);
    e->failures = 0;
    e->since = now;
  }
  if (now - e->since > AUTHLIMIT_WINDOW) e->failures = 0, e->since = now;
  e->failures++;
}

bool authlimit_blocked(const char *host, double now, size_t limit) {
  if (!limit) return false;
  entry *e = find(host);
  return e && now - e->since <= AUTHLIMIT_WINDOW && e->failures >= limit;
}
