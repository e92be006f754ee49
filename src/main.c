/* main.c: the command line, loading the config, start-up, and an orderly exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "lx.h"
#include "objects.h"
#include "registry.h"
#include "segments.h"
#include "server.h"
#include "shm.h"
#include "stats.h"
#include "store.h"
#include "t_queue.h"
#include "wait.h"

static void usage(FILE *f) {
  fputs("usage: shmgr [--config FILE] [--listen ADDR]... [--help] [--version]\n"
        "\n"
        "A manager server for Python's multiprocessing.managers clients.\n"
        "\n"
        "  --config FILE   the Lua configuration (default: shmgr.conf.lua)\n"
        "  --listen ADDR   listen on ADDR instead of the config's addresses; repeatable.\n"
        "                  HOST:PORT (port 0 picks a free port) or unix:PATH\n"
        "  --help          this text\n"
        "  --version       the version\n"
        "\n"
        "The authkey comes from the config (authkey or authkey_file), else from the\n"
        "environment variable SHMGR_AUTHKEY. Without one, shmgr listens only on loopback\n"
        "and Unix sockets, with an empty key.\n",
        f);
}

/* The one way out after start-up began: an orderly teardown, so that leak checkers see
   nothing left whether shmgr stops normally or could not start. */
static int teardown(config *cfg, int rc) {
  segments_unlink_all(); /* before the objects: a tracked name may be a stored proxy that holds one */
  table_clear();
  stats_clear();
  store_close(); /* after the objects (their last changes go in), before Lua holds none */
  lx_close();
  registry_clear();
  shm_close(); /* the segments the objects above did not give back */
  config_free(cfg);
  return rc;
}

/* This run's idents start at a random base, so that a proxy kept from an earlier run (a
   stock client that reconnects after a restart drops its old proxy, and the proxy's
   finalizer sends decref for the old ident to the new server) names no object of this run.
   Between 2^51 and 2^52 (13 hex digits, like the addresses CPython's idents are): two runs
   share a base once in 2^31, and a run reaches another's range only after 2^20 objects. */
static void random_ident_base(void) {
  uint32_t r = 0;
  if (getentropy(&r, sizeof r) != 0) r = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 12;
  obj_ident_base((uint64_t)1 << 51 | (uint64_t)(r & 0x7fffffffu) << 20);
}

/* A durable object found in the store that the config no longer declares: kept, and said. */
static void warn_undeclared(const char *name, const store_meta *m, int64_t items, void *ctx) {
  (void)ctx;
  logmsg(LOG_WARN, "store: durable %s '%s' (%lld item%s, %lld unfinished) is in %s but the config no longer declares it: "
         "kept as it is, not served", m->kind, name, (long long)items, items == 1 ? "" : "s", (long long)m->count, store_path());
}

/* Open the store when the config set data_dir, and give the durable queues it declared
   their items. Without data_dir, declaring one is an error. */
static bool open_store(config *cfg) {
  char err[1400];
  queue_set_item_limits(cfg->max_depth, cfg->max_objects);
  if (!cfg->data_dir[0]) {
    if (!queue_durable_waiting()) return true;
    logmsg(LOG_ERROR, "config %s declares durable queues but sets no data_dir (where to keep them)", cfg->path);
    return false;
  }
  if (!store_open(cfg->data_dir, cfg->power_durable ? DURABLE_POWER : DURABLE_PROCESS, (int64_t)cfg->max_store_bytes, err,
                  sizeof err)) {
    logmsg(LOG_ERROR, "store: %s", err);
    return false;
  }
  if (!queue_attach_waiting(err, sizeof err)) {
    logmsg(LOG_ERROR, "store: %s", err);
    store_discard(); /* refused: the records of the queues attached before stay as they were */
    return false;
  }
  value *e = store_commit(); /* the records of new objects, counts set right */
  if (e) {
    buf text = {0};
    v_repr(&text, e);
    logmsg(LOG_ERROR, "store: %.*s", (int)text.len, (const char *)text.data);
    buf_free(&text);
    v_decref(e);
    return false;
  }
  store_each_unattached(warn_undeclared, NULL);
  return true;
}

int main(int argc, char **argv) {
  config cfg;
  config_defaults(&cfg);
  bool listen_given = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("shmgr %s\n", SHMGR_VERSION);
      return 0;
    } else if ((strcmp(a, "--config") == 0 || strcmp(a, "--listen") == 0) && i + 1 < argc) {
      if (a[2] == 'c') {
        cfg.path = argv[++i];
      } else if (!config_add_listen(&cfg, argv[++i], !listen_given)) {
        fprintf(stderr, "shmgr: at most %d --listen addresses\n", MAX_LISTEN);
        return teardown(&cfg, 2);
      } else {
        listen_given = true;
      }
    } else {
      fprintf(stderr, "shmgr: %s '%s'\n", strncmp(a, "--", 2) == 0 && a[2] ? "unknown or incomplete option" : "unexpected argument", a);
      usage(stderr);
      return teardown(&cfg, 2);
    }
  }

  cfg.listen_given = listen_given; /* a reload keeps --listen's addresses too */
  char err[1024];
  random_ident_base(); /* before the config makes objects */
  /* the loop too (server_start takes this same default loop): queue items are stamped with
     its clock, and the config may put some, and the store loads the durable ones, before
     the server starts */
  wait_loop = ev_default_loop(EVFLAG_AUTO);
  if (!lx_load_config(&cfg, listen_given, err, sizeof err)) {
    fprintf(stderr, "shmgr: config %s: %s\n", cfg.path, err);
    return teardown(&cfg, 1);
  }
  if (cfg.have_key) logmsg(LOG_DEBUG, "authkey from %s", cfg.key_source);
  else logmsg(LOG_WARN, "no authkey (set SHMGR_AUTHKEY or authkey_file): serving loopback and Unix sockets with an empty key");

  if (!open_store(&cfg)) return teardown(&cfg, 1);
  if (!server_start(&cfg)) return teardown(&cfg, 1);
  server_run();
  teardown(&cfg, 0);
  logmsg(LOG_INFO, "stopped");
  return 0;
}
