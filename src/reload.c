/* reload.c: re-read the config on SIGHUP and apply what can change live. */
#include "reload.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "log.h"
#include "lx.h"
#include "owner.h"
#include "server.h"
#include "store.h"
#include "t_queue.h"

/* A reload is all or nothing: the config is read and checked into a scratch config first
   (lx_check_config), and only a config that passed everything is applied, setting by setting,
   to the running one. What is applied takes effect at the next use: the server reads its
   settings from the running config (the_server.cfg) where it needs them, so most changes are
   a copy; the few settings copied elsewhere at start are set again here. */

/* The closing line says what a reload never does, whatever changed. */
#define NOT_RERUN "registrations, declared objects and type scripts are not re-run: a restart changes them"

/* ---- the limits: every one applies live ---- */

typedef enum { L_SIZE, L_SECONDS, L_COUNT } limit_kind; /* size_t, double, long long */

static const struct limit {
  const char *name;
  size_t off; /* in config */
  limit_kind kind;
} limits[] = {
    {"max_message", offsetof(config, max_message), L_SIZE},
    {"handshake_timeout", offsetof(config, handshake_timeout), L_SECONDS},
    {"max_depth", offsetof(config, max_depth), L_SIZE},
    {"max_objects", offsetof(config, max_objects), L_SIZE},
    {"lua_instructions", offsetof(config, lua_instructions), L_COUNT},
    {"lua_memory", offsetof(config, lua_memory), L_SIZE},
    {"max_connections", offsetof(config, max_connections), L_SIZE},
    {"send_timeout", offsetof(config, send_timeout), L_SECONDS},
    {"max_auth_failures", offsetof(config, max_auth_failures), L_SIZE},
    {"idle_timeout", offsetof(config, idle_timeout), L_SECONDS},
    {"max_store_bytes", offsetof(config, max_store_bytes), L_SIZE},
    {"max_memory", offsetof(config, max_memory), L_SIZE},
    {"memory_wait", offsetof(config, memory_wait), L_SECONDS},
};

static size_t limit_size(const struct limit *l) {
  return l->kind == L_SECONDS ? sizeof(double) : l->kind == L_COUNT ? sizeof(long long) : sizeof(size_t);
}

static void limit_text(const struct limit *l, const config *c, char *out, size_t outlen) {
  const char *p = (const char *)c + l->off;
  if (l->kind == L_SECONDS) snprintf(out, outlen, "%g s", *(const double *)p);
  else if (l->kind == L_COUNT) snprintf(out, outlen, "%lld", *(const long long *)p);
  else snprintf(out, outlen, "%zu", *(const size_t *)p);
}

/* Copy each limit that changed from next to run, saying so; how many changed. */
static int apply_limits(config *run, const config *next) {
  int changed = 0;
  for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
    const struct limit *l = &limits[i];
    char *to = (char *)run + l->off;
    const char *from = (const char *)next + l->off;
    if (memcmp(to, from, limit_size(l)) == 0) continue;
    char was[64], now[64];
    limit_text(l, run, was, sizeof was);
    limit_text(l, next, now, sizeof now);
    logmsg(LOG_INFO, "reload: limits.%s %s -> %s", l->name, was, now);
    memcpy(to, from, limit_size(l));
    changed++;
  }
  /* the ones server_start and open_store copied out of the config: set again as they set them */
  queue_set_item_limits(run->max_depth, run->max_objects);
  server_apply_settings(run);
  if (run->lua_memory && lx_memory() > run->lua_memory)
    logmsg(LOG_WARN, "reload: Lua holds %zu bytes, past limits.lua_memory: Lua code that needs more fails until it holds less",
           lx_memory());
  return changed;
}

/* The store is the one thing applying can fail at (it is SQLite's to set): it goes first, so
   that a failure still changes nothing. The cap in force is logged when it is not the one
   asked for (a store already larger is held at its size). */
static bool set_store_cap(const config *run, const config *next, char *err, size_t errlen) {
  if (next->max_store_bytes == run->max_store_bytes || !store_is_open()) return true;
  int64_t cap = store_set_max_bytes((int64_t)next->max_store_bytes, err, errlen);
  if (cap < 0) return false;
  if (next->max_store_bytes && (uint64_t)cap > next->max_store_bytes)
    logmsg(LOG_WARN, "reload: %s already holds more than limits.max_store_bytes = %zu: it may not grow past %lld bytes",
           store_path(), next->max_store_bytes, (long long)cap);
  return true;
}

/* ---- the authkey ---- */

static bool key_changed(const config *a, const config *b) {
  if (a->have_key != b->have_key || a->authkey.len != b->authkey.len) return true;
  return a->authkey.len && CRYPTO_memcmp(a->authkey.data, b->authkey.data, a->authkey.len) != 0;
}

/* The first TCP listener not on loopback, its name in out; false when there is none. One
   whose address cannot be read counts as not on loopback. */
static bool non_loopback_listener(char *out, size_t outlen) {
  for (size_t i = 0; i < the_server.nls; i++) {
    const listener *l = &the_server.ls[i];
    if (l->unix_path) continue;
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    bool got = getsockname(l->fd, (struct sockaddr *)&sa, &salen) == 0;
    if (got && sa.ss_family == AF_INET && ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr) >> 24 == 127) continue;
    if (got && sa.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&sa)->sin6_addr)) continue;
    snprintf(out, outlen, "%s", l->name);
    return true;
  }
  return false;
}

/* A key that goes away must not leave a listener open to the network with the empty key:
   start-up refuses that (server.c, listen_tcp), and so does a reload. */
static bool check_key(const config *run, const config *next, char *err, size_t errlen) {
  char where[sizeof the_server.ls[0].name];
  if (run->have_key && !next->have_key && non_loopback_listener(where, sizeof where))
    return snprintf(err, errlen, "no authkey any more (authkey, authkey_file or SHMGR_AUTHKEY), but shmgr listens on %s, "
                    "which is not loopback and needs one", where), false;
  return true;
}

/* Take next's key (swapped: next frees the old one). New handshakes check against it;
   a connection already authenticated is not asked again. */
static int apply_key(config *run, config *next) {
  bool changed = key_changed(run, next);
  if (changed && !next->have_key)
    logmsg(LOG_WARN, "reload: authkey removed: new connections use an empty key (loopback and Unix sockets only); "
           "connected clients stay");
  else if (changed)
    logmsg(LOG_INFO, "reload: authkey %s (from %s): new connections must use it; connected clients stay",
           run->have_key ? "changed" : "set", next->key_source);
  buf swap = run->authkey;
  run->authkey = next->authkey;
  next->authkey = swap;
  run->have_key = next->have_key;
  run->key_source = next->key_source;
  return changed;
}

/* ---- what only a restart applies ---- */

/* Say that what changed from was to now needs a restart; 1 if it changed, else 0. */
static int needs_restart(const char *what, const char *was, const char *now) {
  if (strcmp(was, now) == 0) return 0;
  logmsg(LOG_WARN, "reload: %s %s -> %s needs a restart (%s stays in force until then)", what, *was ? was : "none",
         *now ? now : "none", *was ? was : "none");
  return 1;
}

/* The listen addresses of c, comma-separated, into out. */
static void listen_text(const config *c, buf *out) {
  for (size_t i = 0; i < c->nlisten; i++) buf_printf(out, "%s%s", i ? ", " : "", c->listen[i]);
  buf_byte(out, 0);
}

/* The type scripts of c (NUL-separated there), comma-separated, into out. */
static void types_text(const config *c, buf *out) {
  for (size_t at = 0; at < c->types.len; at += strlen((const char *)c->types.data + at) + 1)
    buf_printf(out, "%s%s", at ? ", " : "", (const char *)c->types.data + at);
  buf_byte(out, 0);
}

/* Warn about each setting that changed but only a restart applies; how many. The running
   config keeps them: what it says is what the server does. */
static int report_restart_only(const config *run, const config *next) {
  int n = 0;
  buf was = {0}, now = {0};
  if (!run->listen_given) { /* else --listen names the addresses, as at start */
    listen_text(run, &was);
    listen_text(next, &now);
    n += needs_restart("listen", (char *)was.data, (char *)now.data);
  }
  buf_clear(&was), buf_clear(&now);
  types_text(run, &was);
  types_text(next, &now);
  n += needs_restart("types", (char *)was.data, (char *)now.data);
  buf_free(&was), buf_free(&now);
  char a[16], b[16];
  snprintf(a, sizeof a, "%04o", run->unix_mode);
  snprintf(b, sizeof b, "%04o", next->unix_mode);
  n += needs_restart("unix_mode", a, b);
  snprintf(a, sizeof a, "%04o", run->shm_mode);
  snprintf(b, sizeof b, "%04o", next->shm_mode);
  n += needs_restart("shm_mode", a, b);
  n += needs_restart("data_dir", run->data_dir, next->data_dir);
  n += needs_restart("durability", run->power_durable ? "power" : "process", next->power_durable ? "power" : "process");
  n += needs_restart("metrics_listen", run->metrics_listen, next->metrics_listen);
  return n;
}

/* ---- the reload ---- */

void reload_config(config *run) {
  if (the_server.stopping) return; /* going anyway */
  if (!run->path) {
    logmsg(LOG_INFO, "reload: SIGHUP: no config file (--no-config): nothing to read");
    return;
  }
  logmsg(LOG_INFO, "reload: SIGHUP: reading %s", run->path);
  config next;
  config_defaults(&next);
  next.path = run->path;
  next.listen_given = run->listen_given;
  /* what the command line gave stays as it gave it: the key of --authkey-fd (read once, its
     descriptor closed since), the level of --log-level */
  if (run->key_given) {
    next.key_given = true;
    next.have_key = run->have_key;
    next.key_source = run->key_source;
    if (run->authkey.len) buf_put(&next.authkey, run->authkey.data, run->authkey.len);
  }
  next.log_level_given = run->log_level_given;
  if (run->log_level_given) next.log_level = run->log_level;
  char err[1200];
  if (!lx_check_config(&next, run->listen_given, err, sizeof err) || !check_key(run, &next, err, sizeof err) ||
      !set_store_cap(run, &next, err, sizeof err)) {
    logmsg(LOG_ERROR, "reload: %s: %s; the running config stays", run->path, err);
    config_free(&next);
    return;
  }
  /* from here on nothing fails */
  int applied = 0, restart = report_restart_only(run, &next);
  applied += apply_key(run, &next);
  applied += apply_limits(run, &next);
  if (next.lock_policy != run->lock_policy) {
    logmsg(LOG_INFO, "reload: lock_policy %s -> %s", run->lock_policy == OWN_KEEP ? "keep" : "release",
           next.lock_policy == OWN_KEEP ? "keep" : "release");
    run->lock_policy = next.lock_policy;
    own_policy_now = (own_policy)next.lock_policy;
    applied++;
  }
  if (next.slowlog_threshold != run->slowlog_threshold) {
    logmsg(LOG_INFO, "reload: slowlog_threshold %g -> %g ms", run->slowlog_threshold, next.slowlog_threshold);
    run->slowlog_threshold = next.slowlog_threshold;
    server_apply_settings(run);
    applied++;
  }
  bool level_changed = next.log_level != run->log_level;
  if (level_changed) logmsg(LOG_INFO, "reload: log_level %s -> %s", log_level_name(run->log_level), log_level_name(next.log_level));
  applied += level_changed;
  if (!applied && !restart) logmsg(LOG_INFO, "reload: nothing changed (" NOT_RERUN ")");
  else logmsg(LOG_INFO, "reload: done: %d applied, %d need%s a restart (" NOT_RERUN ")", applied, restart, restart == 1 ? "s" : "");
  /* last: the reload's own lines go out under the level it found */
  run->log_level = next.log_level;
  log_level = next.log_level;
  config_free(&next);
}
