/* reload.h: re-read the config on SIGHUP and apply what can change live. */
#ifndef SHMGR_RELOAD_H
#define SHMGR_RELOAD_H

#include "config.h"

/* Read the config file run->path again, as at start but without re-running what it does to
   the server (lx_check_config: its shmgr.register and shmgr.Queue{...} calls do nothing, its
   type scripts are not loaded), and, when it loads and every setting passes its check, apply
   what can change live: log_level, lock_policy, slowlog_threshold, every limit, and the
   authkey (new handshakes use it; connections already authenticated stay). run is the
   running config (the_server.cfg), changed in place; `--listen` (run->listen_given) keeps
   winning over the config's listen. Logs one line per change, a warning per change that only
   a restart applies (those settings stay as they are), and a closing line. A config that does
   not load or fails a check, or that would leave a non-loopback listener without a key,
   changes nothing: that is logged at error level. Runs on the loop, between requests. */
void reload_config(config *run);

#endif
