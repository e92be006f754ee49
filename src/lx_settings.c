/* lx_settings.c: the globals a config leaves behind, checked and read into a config. */
#include "lx.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "owner.h"

/* Start-up and a reload (reload.c) read a config the same way, through lx_read_settings:
   nothing here applies a setting, so a config that fails a check changes nothing. */

static bool get_size(lua_State *L, int t, const char *k, size_t *out, char *err, size_t errlen) {
  lua_getfield(L, t, k);
  bool ok = true;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) {
      snprintf(err, errlen, "limits.%s must be a non-negative integer", k);
      ok = false;
    } else {
      *out = (size_t)lua_tointeger(L, -1);
    }
  }
  lua_pop(L, 1);
  return ok;
}

static bool get_seconds(lua_State *L, int t, const char *k, double *out, char *err, size_t errlen) {
  lua_getfield(L, t, k); /* +1 */
  bool ok = true;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 0) {
      snprintf(err, errlen, "limits.%s must be a non-negative number of seconds", k);
      ok = false;
    } else {
      *out = lua_tonumber(L, -1);
    }
  }
  lua_pop(L, 1); /* 0 */
  return ok;
}

static bool read_limits(lua_State *L, int env, config *cfg, char *err, size_t errlen) {
  lua_getfield(L, env, "limits");
  if (lua_isnil(L, -1)) return lua_pop(L, 1), true;
  if (!lua_istable(L, -1)) return lua_pop(L, 1), snprintf(err, errlen, "limits must be a table"), false;
  int t = lua_gettop(L);
  static const char *const known[] = {"max_message", "handshake_timeout", "max_depth", "max_objects",
                                      "lua_instructions", "lua_memory", "max_connections", "send_timeout",
                                      "max_auth_failures", "idle_timeout", "max_store_bytes", "max_memory",
                                      "memory_wait", NULL};
  lua_pushnil(L);
  while (lua_next(L, t)) {
    bool found = false;
    for (size_t i = 0; known[i] && lua_type(L, -2) == LUA_TSTRING; i++) found |= strcmp(known[i], lua_tostring(L, -2)) == 0;
    if (!found) {
      snprintf(err, errlen, "unknown limit '%s' (known: max_message, handshake_timeout, max_depth, max_objects, lua_instructions, lua_memory, max_connections, send_timeout, max_auth_failures, idle_timeout, max_store_bytes, max_memory, memory_wait)", luaL_tolstring(L, -2, NULL));
      lua_settop(L, t - 1);
      return false;
    }
    lua_pop(L, 1);
  }
  size_t instr = (size_t)cfg->lua_instructions;
  bool ok = get_size(L, t, "max_message", &cfg->max_message, err, errlen) &&
            get_size(L, t, "max_depth", &cfg->max_depth, err, errlen) &&
            get_size(L, t, "max_objects", &cfg->max_objects, err, errlen) &&
            get_size(L, t, "lua_instructions", &instr, err, errlen) &&
            get_size(L, t, "lua_memory", &cfg->lua_memory, err, errlen) &&
            get_size(L, t, "max_connections", &cfg->max_connections, err, errlen) &&
            get_size(L, t, "max_auth_failures", &cfg->max_auth_failures, err, errlen) &&
            get_size(L, t, "max_store_bytes", &cfg->max_store_bytes, err, errlen) &&
            get_size(L, t, "max_memory", &cfg->max_memory, err, errlen);
  cfg->lua_instructions = (long long)instr;
  ok = ok && get_seconds(L, t, "handshake_timeout", &cfg->handshake_timeout, err, errlen) &&
       get_seconds(L, t, "send_timeout", &cfg->send_timeout, err, errlen) &&
       get_seconds(L, t, "idle_timeout", &cfg->idle_timeout, err, errlen) &&
       get_seconds(L, t, "memory_wait", &cfg->memory_wait, err, errlen);
  lua_settop(L, t - 1);
  return ok;
}

static bool read_key_file(config *cfg, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) return snprintf(err, errlen, "authkey_file '%s' cannot be read", path), false;
  char chunk[4096];
  size_t n;
  buf_clear(&cfg->authkey);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&cfg->authkey, chunk, n);
  fclose(f);
  while (cfg->authkey.len && (cfg->authkey.data[cfg->authkey.len - 1] == '\n' || cfg->authkey.data[cfg->authkey.len - 1] == '\r'))
    cfg->authkey.len--; /* a key file usually ends with a newline that is not part of the key */
  if (!cfg->authkey.len) return snprintf(err, errlen, "authkey_file '%s' is empty", path), false;
  cfg->have_key = true;
  cfg->key_source = "authkey_file";
  return true;
}

void lx_config_relative(const config *cfg, const char *path, char *out, size_t outlen) {
  const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
  if (path[0] == '/' || !slash) snprintf(out, outlen, "%s", path);
  else snprintf(out, outlen, "%.*s/%s", (int)(slash - cfg->path), cfg->path, path);
}

/* types: the list of type scripts, kept as written (lx.c runs them, at start only). */
static bool read_types(lua_State *L, int env, config *cfg, char *err, size_t errlen) {
  lua_getfield(L, env, "types"); /* [types] */
  if (lua_isnil(L, -1)) return lua_pop(L, 1), true;
  if (!lua_istable(L, -1)) return lua_pop(L, 1), snprintf(err, errlen, "types must be a list of script paths"), false;
  buf_clear(&cfg->types);
  for (lua_Integer i = 1, n = luaL_len(L, -1); i <= n; i++) {
    lua_geti(L, -1, i); /* [types, path] */
    if (lua_type(L, -1) != LUA_TSTRING) return lua_pop(L, 2), snprintf(err, errlen, "types[%d] must be a path", (int)i), false;
    buf_str(&cfg->types, lua_tostring(L, -1));
    buf_byte(&cfg->types, 0);
    lua_pop(L, 1); /* [types] */
  }
  lua_pop(L, 1);
  return true;
}

/* The permission bits named `key` (an octal string such as "0600"), into *mode when set.
   Stack: balanced. */
static bool octal_mode(lua_State *L, int env, const char *key, int *mode, char *err, size_t errlen) {
  lua_getfield(L, env, key); /* [value] */
  bool ok = lua_isnil(L, -1);
  if (lua_type(L, -1) == LUA_TSTRING) {
    char *end;
    long m = strtol(lua_tostring(L, -1), &end, 8);
    ok = !*end && m >= 0 && m <= 0777;
    if (ok) *mode = (int)m;
  }
  lua_pop(L, 1); /* [] */
  if (!ok) snprintf(err, errlen, "%s must be an octal string such as \"0600\"", key);
  return ok;
}

/* Each setting in turn, checked; the first that fails ends it, leaving on the stack what it
   read (lx_read_settings clears it). */
static bool read_settings(lua_State *L, int env, config *cfg, bool listen_given, char *err, size_t errlen) {
  lua_getfield(L, env, "listen");
  if (!listen_given && !lua_isnil(L, -1)) {
    if (lua_type(L, -1) == LUA_TSTRING) lua_newtable(L), lua_insert(L, -2), lua_seti(L, -2, 1);
    if (!lua_istable(L, -1)) return snprintf(err, errlen, "listen must be an address or a list of addresses"), false;
    for (lua_Integer i = 1, n = luaL_len(L, -1); i <= n; i++) {
      lua_geti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING || !config_add_listen(cfg, lua_tostring(L, -1), i == 1))
        return snprintf(err, errlen, "listen[%d] must be an address such as \"127.0.0.1:50000\" or \"unix:/path\" (at most %d)", (int)i, MAX_LISTEN), false;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "authkey");
  if (cfg->key_given) {
    /* --authkey-fd's key: the config's authkey and authkey_file are not read */
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *k = lua_tolstring(L, -1, &n);
    buf_clear(&cfg->authkey);
    buf_put(&cfg->authkey, k, n);
    cfg->have_key = true;
    cfg->key_source = "the config";
  } else if (!lua_isnil(L, -1)) {
    return snprintf(err, errlen, "authkey must be a string"), false;
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "authkey_file");
  if (!cfg->have_key && !cfg->key_given && lua_type(L, -1) == LUA_TSTRING) {
    char path[1024];
    lx_config_relative(cfg, lua_tostring(L, -1), path, sizeof path);
    if (!read_key_file(cfg, path, err, errlen)) return false;
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "log_level");
  if (lua_type(L, -1) == LUA_TSTRING) {
    int lvl = log_level_named(lua_tostring(L, -1));
    if (lvl < 0) return snprintf(err, errlen, "log_level must be one of debug, info, warn, error"), false;
    if (!cfg->log_level_given) cfg->log_level = lvl; /* --log-level wins */
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "lock_policy");
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "keep") == 0) cfg->lock_policy = OWN_KEEP;
  else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "release") == 0) cfg->lock_policy = OWN_RELEASE;
  else if (!lua_isnil(L, -1)) return snprintf(err, errlen, "lock_policy must be \"release\" or \"keep\""), false;
  lua_pop(L, 1);
  if (!octal_mode(L, env, "unix_mode", &cfg->unix_mode, err, errlen)) return false;
  if (!octal_mode(L, env, "shm_mode", &cfg->shm_mode, err, errlen)) return false;
  lua_getfield(L, env, "data_dir");
  if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1)) lx_config_relative(cfg, lua_tostring(L, -1), cfg->data_dir, sizeof cfg->data_dir);
  else if (!lua_isnil(L, -1)) return snprintf(err, errlen, "data_dir must be a path (a string)"), false;
  lua_pop(L, 1);
  lua_getfield(L, env, "slowlog_threshold");
  if (lua_isnumber(L, -1) && lua_tonumber(L, -1) >= 0) cfg->slowlog_threshold = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1)) return snprintf(err, errlen, "slowlog_threshold must be a non-negative number of milliseconds (0: off)"), false;
  lua_pop(L, 1);
  lua_getfield(L, env, "metrics_listen");
  if (lua_type(L, -1) == LUA_TSTRING && strlen(lua_tostring(L, -1)) < sizeof cfg->metrics_listen && strchr(lua_tostring(L, -1), ':'))
    snprintf(cfg->metrics_listen, sizeof cfg->metrics_listen, "%s", lua_tostring(L, -1));
  else if (!lua_isnil(L, -1)) return snprintf(err, errlen, "metrics_listen must be an address such as \"127.0.0.1:9150\""), false;
  lua_pop(L, 1);
  lua_getfield(L, env, "durability");
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "process") == 0) cfg->power_durable = false;
  else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "power") == 0) cfg->power_durable = true;
  else if (!lua_isnil(L, -1)) return snprintf(err, errlen, "durability must be \"process\" or \"power\""), false;
  lua_pop(L, 1);
  if (!read_limits(L, env, cfg, err, errlen) || !read_types(L, env, cfg, err, errlen)) return false;
  if (!cfg->have_key && !cfg->key_given) { /* the environment's key is the last resort, after the config's */
    const char *k = getenv("SHMGR_AUTHKEY");
    if (k && *k) {
      buf_put(&cfg->authkey, k, strlen(k));
      cfg->have_key = true;
      cfg->key_source = "SHMGR_AUTHKEY";
    }
  }
  return true;
}

bool lx_read_settings(lua_State *L, int env, config *cfg, bool listen_given, char *err, size_t errlen) {
  int top = lua_gettop(L);
  bool ok = read_settings(L, env, cfg, listen_given, err, errlen);
  lua_settop(L, top); /* a check that failed returns at once and leaves what it read */
  return ok;
}

