/* config.h: the server's settings, filled from defaults, shmgr.conf.lua and the command line. */
#ifndef SHMGR_CONFIG_H
#define SHMGR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define MAX_LISTEN 16

typedef struct config {
  const char *path;              /* the config file; NULL with --no-config (every setting
                                    its default, the key from --authkey-fd or SHMGR_AUTHKEY) */
  char *listen[MAX_LISTEN];      /* owned: "HOST:PORT" or "unix:PATH" */
  size_t nlisten;
  bool listen_given;             /* --listen named the addresses: the config's listen is not
                                    read, at start or at a reload */
  buf authkey;                   /* the key; empty with have_key false when none was given */
  bool have_key;
  bool key_given;                /* --authkey-fd gave the key (maybe empty): the config's and
                                    the environment's are not read, at start or at a reload */
  const char *key_source;        /* where the key came from, for the log */
  int unix_mode;                 /* permissions of Unix socket files (0600) */
  int shm_mode;                  /* permissions of the Shared* objects' segments in /dev/shm (0600) */
  char data_dir[1024];           /* where durable objects are kept ("" = none), relative to the
                                    config file's folder when not absolute */
  bool power_durable;            /* durability = "power": sync to the disk at each commit */
  double slowlog_threshold;      /* milliseconds: calls that take longer go to the slowlog; 0 = off */
  char metrics_listen[256];      /* "HOST:PORT" where GET /metrics is served ("" = nowhere) */
  int log_level;                 /* LOG_DEBUG .. LOG_ERROR (log.h) */
  bool log_level_given;          /* --log-level set it: the config's log_level is not read */
  int lock_policy;               /* an own_policy (owner.h): what a vanished client's locks become */
  buf types;                     /* the type scripts named, as the config wrote them, each
                                    followed by a NUL (compared whole at a reload) */
  buf cli_types;                 /* the --types scripts, the same way: run after the config's,
                                    their paths as given (relative to the working folder) */
  /* limits */
  size_t max_message;            /* bytes in one request after authentication */
  double handshake_timeout;      /* seconds from accept to a finished handshake */
  size_t max_depth;              /* nesting in one pickle */
  size_t max_objects;            /* values in one pickle */
  long long lua_instructions;    /* per Lua call; 0 = unlimited */
  size_t lua_memory;             /* bytes for all Lua state; 0 = unlimited */
  size_t max_connections;        /* open connections at once; more are turned away */
  double send_timeout;           /* seconds a client may leave its replies unread; 0 = forever */
  size_t max_auth_failures;      /* failed handshakes per TCP address a minute; 0 = no limit */
  double idle_timeout;           /* seconds an authenticated connection may send nothing; 0 = forever */
  size_t max_store_bytes;        /* the store's database may grow to this; 0 = as the disk allows */
  size_t max_memory;             /* bytes the server may hold before calls that add data are
                                    refused (memcount.h); 0 = no limit */
  double memory_wait;            /* seconds a large request that does not fit under max_memory
                                    waits for room before it is refused */
} config;

/* Fill cfg with the defaults (no address, no key). */
void config_defaults(config *cfg);
/* The config file as messages name it: its path, or "(none: --no-config)". */
const char *config_label(const config *cfg);
/* Release what cfg owns. */
void config_free(config *cfg);
/* Replace (on the first call of a run, clear=true) or add a listen address. Returns false
   when there are already MAX_LISTEN. */
bool config_add_listen(config *cfg, const char *addr, bool clear);

#endif
