/* config.c: the server's settings and their defaults. */
#include "alloc.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "memcount.h"
#include "owner.h"

void config_defaults(config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->path = "shmgr.conf.lua";
  cfg->unix_mode = 0600;
  cfg->shm_mode = 0600;
  /* as large as the classic frame header can say: a big array goes through as on CPython's
     server (which has no limit), and max_memory, not this, bounds what clients can hand over */
  cfg->max_message = (size_t)2 << 30;
  cfg->handshake_timeout = 10.0;
  cfg->max_depth = 1000;
  cfg->max_objects = 10u << 20;
  cfg->lua_instructions = 10000000;
  cfg->lua_memory = 256u << 20;
  cfg->max_connections = 65536;
  cfg->send_timeout = 60.0;
  cfg->max_memory = mem_default_limit();
  cfg->memory_wait = 2.0;
  cfg->max_auth_failures = 10;
  cfg->slowlog_threshold = 10.0;
  cfg->log_level = LOG_INFO;
  cfg->lock_policy = OWN_KEEP; /* CPython's behaviour */
}

void config_free(config *cfg) {
  for (size_t i = 0; i < cfg->nlisten; i++) free(cfg->listen[i]);
  cfg->nlisten = 0;
  buf_free(&cfg->authkey);
  buf_free(&cfg->types);
  buf_free(&cfg->cli_types);
}

const char *config_label(const config *cfg) { return cfg->path ? cfg->path : "(none: --no-config)"; }

bool config_add_listen(config *cfg, const char *addr, bool clear) {
  if (clear) {
    for (size_t i = 0; i < cfg->nlisten; i++) free(cfg->listen[i]);
    cfg->nlisten = 0;
  }
  if (cfg->nlisten == MAX_LISTEN) return false;
  cfg->listen[cfg->nlisten] = xstrdup(addr);
  cfg->nlisten++;
  return true;
}
