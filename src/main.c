/* main.c: the command line, loading the config, start-up, and an orderly exit. */
#include <signal.h>
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
#include "starter.h"
#include "stats.h"
#include "store.h"
#include "t_queue.h"
#include "wait.h"

static void usage(FILE *f) {
  fputs("usage: shmgr [--config FILE | --no-config] [--listen ADDR]... [--types SCRIPT]...\n"
        "             [--log-level LEVEL] [--authkey-fd N] [--watch-fd N] [--ready-fd N]\n"
        "             [--remove-dir DIR] [--help] [--version]\n"
        "\n"
        "A manager server for Python's multiprocessing.managers clients.\n"
        "\n"
        "  --config FILE    the Lua configuration (default: shmgr.conf.lua)\n"
        "  --no-config      read no configuration file: every setting its default\n"
        "  --listen ADDR    listen on ADDR instead of the config's addresses; repeatable.\n"
        "                   HOST:PORT (port 0 picks a free port) or unix:PATH\n"
        "  --types SCRIPT   also run this type script, after the config's types; repeatable\n"
        "  --log-level L    debug, info, warn or error, over the config's log_level\n"
        "  --authkey-fd N   read the authkey from descriptor N to its end (every byte),\n"
        "                   then close it; over the config's key and SHMGR_AUTHKEY\n"
        "  --watch-fd N     stop, as on SIGTERM, when descriptor N (a pipe) reaches its end:\n"
        "                   whoever holds its write end owns this server\n"
        "  --ready-fd N     write the \"listening on\" lines to descriptor N, not stderr,\n"
        "                   once every listener is open, then close it; until then error\n"
        "                   messages are copied there too\n"
        "  --remove-dir DIR remove the folder DIR at exit (if empty by then): a private\n"
        "                   folder holding a --listen unix: socket\n"
        "  --help           this text\n"
        "  --version        the version\n"
        "\n"
        "The authkey comes from --authkey-fd, else the config (authkey or authkey_file),\n"
        "else the environment variable SHMGR_AUTHKEY. Without one (or with an empty one),\n"
        "shmgr listens only on loopback and Unix sockets, with an empty key.\n",
        f);
}

/* The one way out after start-up began: an orderly teardown, so that leak checkers see
   nothing left whether shmgr stops normally or could not start. */
static int teardown(config *cfg, int rc) {
  starter_close(); /* after the listeners' socket files: their folder may go too */
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
    logmsg(LOG_ERROR, "config %s declares durable queues but sets no data_dir (where to keep them)", config_label(cfg));
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

/* The value of option argv[i] (argv[i + 1]), or NULL (said) when it is missing. */
static const char *option_value(int argc, char **argv, int i) {
  if (i + 1 < argc) return argv[i + 1];
  log_plain("shmgr: %s needs a value", argv[i]);
  return NULL;
}

/* --ready-fd first, wherever it is: errors in the options before it are copied there too. */
static void find_ready_fd(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--ready-fd") == 0 && starter_fd_arg(argv[i + 1]) >= 0) starter_set_ready_fd(starter_fd_arg(argv[i + 1]));
}

/* The options into cfg, and the starter's descriptors to their places. Returns 0 to go on, or
   the exit status (after saying why, or the help). */
static int read_options(int argc, char **argv, config *cfg, int *watch_fd) {
  bool listen_given = false, no_config = false, config_given = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return -1;
    } else if (strcmp(a, "--version") == 0) {
      printf("shmgr %s\n", SHMGR_VERSION);
      return -1;
    } else if (strcmp(a, "--no-config") == 0) {
      no_config = true;
      cfg->path = NULL;
      continue;
    }
    static const char *const with_value[] = {"--config", "--listen", "--types", "--log-level", "--authkey-fd",
                                             "--watch-fd", "--ready-fd", "--remove-dir", NULL};
    bool known = false;
    for (size_t k = 0; with_value[k]; k++) known |= strcmp(a, with_value[k]) == 0;
    if (!known) {
      log_plain("shmgr: %s '%s'", strncmp(a, "--", 2) == 0 && a[2] ? "unknown option" : "unexpected argument", a);
      usage(stderr);
      return 2;
    }
    if (!(v = option_value(argc, argv, i++))) return 2;
    int fd = strstr(a, "-fd") ? starter_fd_arg(v) : 0;
    if (fd < 0) {
      log_plain("shmgr: %s wants a descriptor number, not '%s'", a, v);
      return 2;
    }
    if (strcmp(a, "--config") == 0) {
      cfg->path = v;
      config_given = true;
    } else if (strcmp(a, "--listen") == 0) {
      if (!config_add_listen(cfg, v, !listen_given)) {
        log_plain("shmgr: at most %d --listen addresses", MAX_LISTEN);
        return 2;
      }
      listen_given = true;
    } else if (strcmp(a, "--types") == 0) {
      buf_str(&cfg->cli_types, v);
      buf_byte(&cfg->cli_types, 0);
    } else if (strcmp(a, "--log-level") == 0) {
      if (log_level_named(v) < 0) {
        log_plain("shmgr: --log-level must be one of debug, info, warn, error, not '%s'", v);
        return 2;
      }
      cfg->log_level = log_level = log_level_named(v);
      cfg->log_level_given = true;
    } else if (strcmp(a, "--authkey-fd") == 0) {
      char err[256];
      if (!starter_read_key(fd, &cfg->authkey, err, sizeof err)) {
        log_plain("shmgr: %s", err);
        return 2;
      }
      cfg->key_given = true;
      cfg->have_key = cfg->authkey.len > 0; /* an empty key is the empty key: loopback and Unix only */
      cfg->key_source = "--authkey-fd";
    } else if (strcmp(a, "--watch-fd") == 0) {
      *watch_fd = fd;
    } else if (strcmp(a, "--remove-dir") == 0) {
      starter_set_remove_dir(v);
    } /* --ready-fd: taken before (find_ready_fd) */
  }
  if (no_config && config_given) {
    log_plain("shmgr: --config and --no-config together: choose one");
    return 2;
  }
  cfg->listen_given = listen_given; /* a reload keeps --listen's addresses too */
  return 0;
}

int main(int argc, char **argv) {
  config cfg;
  config_defaults(&cfg);
  find_ready_fd(argc, argv);
  int watch_fd = -1, rc = read_options(argc, argv, &cfg, &watch_fd);
  if (rc) return teardown(&cfg, rc < 0 ? 0 : rc);
  bool listen_given = cfg.listen_given;
  char err[1024];
  random_ident_base(); /* before the config makes objects */
  /* the loop too (server_start takes this same default loop): queue items are stamped with
     its clock, and the config may put some, and the store loads the durable ones, before
     the server starts */
  wait_loop = ev_default_loop(EVFLAG_AUTO);
  if (!lx_load_config(&cfg, listen_given, err, sizeof err)) {
    log_plain("shmgr: config %s: %s", config_label(&cfg), err);
    return teardown(&cfg, 1);
  }
  if (cfg.max_memory) logmsg(LOG_DEBUG, "limits.max_memory: %zu bytes", cfg.max_memory);
  else logmsg(LOG_DEBUG, "limits.max_memory: none");
  if (cfg.have_key) logmsg(LOG_DEBUG, "authkey from %s", cfg.key_source);
  else if (cfg.key_given) logmsg(LOG_INFO, "an empty authkey from --authkey-fd: serving loopback and Unix sockets only");
  else logmsg(LOG_WARN, "no authkey (set SHMGR_AUTHKEY or authkey_file): serving loopback and Unix sockets with an empty key");

  if (!open_store(&cfg)) return teardown(&cfg, 1);
  if (watch_fd >= 0 && !starter_watch(wait_loop, watch_fd, err, sizeof err)) {
    log_plain("shmgr: %s", err);
    return teardown(&cfg, 2);
  }
  /* a server with an owner ignores SIGINT, as CPython's manager processes do: the owner stops
     it (its end, SIGTERM, shutdown), not a ^C meant for the owner (server_start then watches
     no SIGINT). Without an owner SIGINT stops shmgr, whatever disposition it inherited. */
  signal(SIGINT, watch_fd >= 0 ? SIG_IGN : SIG_DFL);
  if (!server_start(&cfg)) return teardown(&cfg, 1);
  server_run();
  teardown(&cfg, 0);
  logmsg(LOG_INFO, "stopped");
  return 0;
}
