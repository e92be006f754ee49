/* main.c: the command line, loading the config, start-up, and an orderly exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "lx.h"
#include "objects.h"
#include "registry.h"
#include "server.h"

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
  table_clear();
  lx_close();
  registry_clear();
  config_free(cfg);
  return rc;
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

  char err[1024];
  if (!lx_load_config(&cfg, listen_given, err, sizeof err)) {
    fprintf(stderr, "shmgr: config %s: %s\n", cfg.path, err);
    return teardown(&cfg, 1);
  }
  if (cfg.have_key) logmsg(LOG_DEBUG, "authkey from %s", cfg.key_source);
  else logmsg(LOG_WARN, "no authkey (set SHMGR_AUTHKEY or authkey_file): serving loopback and Unix sockets with an empty key");

  if (!server_start(&cfg)) return teardown(&cfg, 1);
  server_run();
  teardown(&cfg, 0);
  logmsg(LOG_INFO, "stopped");
  return 0;
}
