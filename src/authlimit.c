/* authlimit.c: peers that keep failing the handshake are turned away for a while. */
#include "authlimit.h"

#include <arpa/inet.h>
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

/* 127.0.0.0/8, ::1, or 127.x.x.x mapped into IPv6. Every local process shares these, so a
   count kept for them would let one worker with a stale key lock out all the others; a
   local process is not a remote guesser (and Unix sockets are not counted either). */
static bool is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

void authlimit_failed(const char *host, double now) {
  if (is_loopback(host)) return;
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
