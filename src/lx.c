/* lx.c: the Lua bridge: the state, the sandbox, the config, the shmgr API and the one gateway. */
#include "lx.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "owner.h"
#include "stats.h"

lua_State *lx_L;
static config *cfg_now;     /* the config being loaded, for the API functions */
static size_t lua_bytes;    /* bytes the state holds now */
static long long budget;    /* instructions left for the call running now */
#define HOOK_EVERY 1000     /* instructions between two checks of the budget */

/* The allocator: Lua's memory, bounded by lua_memory. */
static void *lx_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    free(ptr);
    lua_bytes -= osize;
    return NULL;
  }
  size_t limit = cfg_now ? cfg_now->lua_memory : 0;
  if (limit && nsize > osize && lua_bytes + (nsize - osize) > limit) { /* Lua raises "not enough memory" */
    stats_limit(LIM_LUA_MEMORY, "lua: an allocation of %zu bytes refused: limits.lua_memory (%zu bytes) reached", nsize - osize, limit);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) lua_bytes = lua_bytes - osize + nsize;
  return p;
}

static void hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (cfg_now->lua_instructions && (budget -= HOOK_EVERY) < 0) {
    stats_limit(LIM_LUA_INSTRUCTIONS, "lua: a call stopped after limits.lua_instructions (%lld)", cfg_now->lua_instructions);
    luaL_error(L, "instruction limit exceeded (lua_instructions = %I)", (lua_Integer)cfg_now->lua_instructions);
  }
}

size_t lx_memory(void) { return lua_bytes; }

void lx_budget(lua_State *L) {
  (void)L; /* threads inherit the main state's hook; the budget is the running call's */
  budget = cfg_now->lua_instructions;
}

/* luaL_tolstring, run by lx_error_value under protection: __tostring is Lua code. */
static int error_text(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

value *lx_error_value(lua_State *L) {
  static bool nested; /* an error object whose __tostring fails with itself: no second try */
  value *exc = NULL;
  char text[160];
  int t = lua_type(L, -1);
  if (t == LUA_TUSERDATA) { /* shmgr.raise: an exception value */
    value *err = NULL, *v = lx_to(L, -1, &err);
    v_decref(err);
    if (v && v->kind == VK_OPAQUE) exc = v;
    else v_decref(v);
  }
  if (!exc && t == LUA_TSTRING) {
    exc = v_exception_msg("RuntimeError", lua_tostring(L, -1));
  } else if (!exc && t == LUA_TNUMBER) { /* formatted here: lua_tostring would allocate */
    if (lua_isinteger(L, -1)) snprintf(text, sizeof text, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -1));
    else snprintf(text, sizeof text, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, -1));
    exc = v_exception_msg("RuntimeError", text);
  } else if (!exc) {
    snprintf(text, sizeof text, "(error object is a %s value)", luaL_typename(L, -1));
    if (!nested && lua_checkstack(lx_L, 1)) { /* its __tostring, if any, runs protected on the main thread */
      if (L != lx_L) lua_xmove(L, lx_L, 1);
      else lua_pushvalue(L, -1);
      nested = true;
      value *failed = lx_protect(lx_L, error_text, NULL, 1, 1); /* [text] or nothing */
      nested = false;
      if (!failed) exc = v_exception_msg("RuntimeError", lua_tostring(lx_L, -1)), lua_pop(lx_L, 1);
      v_decref(failed);
      if (L != lx_L) return exc ? exc : v_exception_msg("RuntimeError", text); /* nothing left on L */
    }
    if (!exc) exc = v_exception_msg("RuntimeError", text);
  }
  lua_pop(L, 1);
  return exc;
}

/* Message handler: log where a Lua error came from; the client gets the message only. */
static int msgh(lua_State *L) {
  if (lua_type(L, -1) == LUA_TSTRING) {
    luaL_traceback(L, L, lua_tostring(L, -1), 1); /* [err, tb] */
    logmsg(LOG_INFO, "lua: %s", lua_tostring(L, -1));
    lua_pop(L, 1); /* [err] */
  }
  return 1;
}

value *lx_pcall(lua_State *L, int nargs, int nres) {
  if (!lua_checkstack(L, 1)) {
    lua_pop(L, nargs + 1);
    return v_exception_msg("MemoryError", "no room on the Lua stack");
  }
  int fn = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msgh);
  lua_insert(L, fn); /* [msgh, f, args...] */
  lx_budget(L);
  int rc = lua_pcall(L, nargs, nres, fn);
  lua_remove(L, fn); /* [results...] or [err] */
  return rc == LUA_OK ? NULL : lx_error_value(L);
}

value *lx_protect(lua_State *L, lua_CFunction fn, void *ud, int nargs, int nres) {
  if (!lua_checkstack(L, 3)) {
    lua_pop(L, nargs);
    return v_exception_msg("MemoryError", "no room on the Lua stack");
  }
  lua_pushcfunction(L, fn);
  lua_insert(L, -nargs - 1);   /* [fn, args...] */
  lua_pushlightuserdata(L, ud); /* [fn, args..., ud] */
  return lx_pcall(L, nargs + 1, nres);
}

/* ---- the shmgr API ---- */

/* shmgr.register(typeid, constructor, options) */
static int api_register(lua_State *L) {
  const char *typeid = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  typeinfo *old = registry_find(typeid, strlen(typeid));
  if (old && old->ctor) return luaL_error(L, "typeid '%s' is built in and cannot be registered again", typeid);
  value *exposed = NULL, *m2t = NULL;
  bool create_method = true;
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* [.., key, val] */
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      if (strcmp(k, "exposed") == 0) {
        luaL_checktype(L, -1, LUA_TTABLE);
        size_t n = (size_t)luaL_len(L, -1);
        exposed = v_tuple(n);
        for (size_t i = 0; i < n; i++) {
          lua_geti(L, -1, (lua_Integer)i + 1);
          exposed->u.seq.items[i] = lua_type(L, -1) == LUA_TSTRING ? v_strz(lua_tostring(L, -1)) : v_none();
          bool ok = lua_type(L, -1) == LUA_TSTRING;
          lua_pop(L, 1);
          if (!ok) {
            v_decref(exposed);
            v_decref(m2t);
            return luaL_error(L, "register('%s'): exposed must be a list of method names", typeid);
          }
        }
      } else if (strcmp(k, "method_to_typeid") == 0) {
        luaL_checktype(L, -1, LUA_TTABLE);
        m2t = v_dict();
        lua_pushnil(L);
        while (lua_next(L, -2)) { /* [.., m2t, name, typeid] */
          if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            v_decref(exposed);
            v_decref(m2t);
            return luaL_error(L, "register('%s'): method_to_typeid maps method names to typeids", typeid);
          }
          const char *e;
          dict_set(m2t, v_strz(lua_tostring(L, -2)), v_strz(lua_tostring(L, -1)), &e);
          lua_pop(L, 1);
        }
      } else if (strcmp(k, "create_method") == 0) {
        create_method = lua_toboolean(L, -1);
      } else {
        v_decref(exposed);
        v_decref(m2t);
        return luaL_error(L, "register('%s'): unknown option '%s' (exposed, method_to_typeid, create_method)", typeid, k);
      }
      lua_pop(L, 1);
    }
  }
  if (old) luaL_unref(L, LUA_REGISTRYINDEX, old->lua_ctor);
  typeinfo *ti = registry_put(typeid);
  ti->exposed = exposed;
  ti->m2t = m2t;
  ti->create_method = create_method;
  if (lua_isfunction(L, 2)) {
    lua_pushvalue(L, 2);
    ti->lua_ctor = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

/* shmgr.raise(class, ...): raise a Python exception class ("ValueError", "queue.Empty"). */
static int api_raise(lua_State *L) {
  const char *cls = luaL_checkstring(L, 1);
  const char *dot = strrchr(cls, '.');
  int n = lua_gettop(L);
  value *args = v_tuple((size_t)(n - 1)), *err = NULL;
  for (int i = 2; i <= n; i++) {
    value *a = lx_to(L, i, &err);
    if (!a) {
      v_decref(args);
      v_decref(err);
      return luaL_error(L, "shmgr.raise: argument %d cannot be sent to Python", i);
    }
    args->u.seq.items[i - 2] = a;
  }
  char mod[128] = "builtins";
  if (dot && (size_t)(dot - cls) < sizeof mod) {
    memcpy(mod, cls, (size_t)(dot - cls));
    mod[dot - cls] = 0;
  }
  return lx_raise(L, v_exception(mod, dot ? dot + 1 : cls, args));
}

/* print(...) in a script: a log line. */
static int api_print(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1, n = lua_gettop(L); i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  logmsg(LOG_INFO, "lua: %s", lua_tostring(L, -1));
  return 0;
}

/* setmetatable(t, mt) for scripts: Lua's, except that a metatable with __gc is refused. A
   finalizer runs inside the collector, at whatever allocation triggers it (inside the bridge's
   C code too, which must not be re-entered there), and with hooks off, so out of reach of the
   instruction limit: a looping one stopped the server for good. (Lua only finalizes what had
   __gc when its metatable was set, so checking here is enough.) */
static int api_setmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    bool gc = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    if (gc) return luaL_error(L, "__gc is not available to shmgr scripts (a finalizer runs outside the instruction limit)");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* require "shmgr" is the one module a sandboxed script can load. */
static int api_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "shmgr") != 0) return luaL_error(L, "module '%s' is not available to shmgr scripts", name);
  lua_getfield(L, LUA_REGISTRYINDEX, "shmgr.api");
  return 1;
}

/* Copy the fields named in names from the table at src into a new table; push it. */
static void copy_fields(lua_State *L, int src, const char *const names[]) {
  lua_newtable(L);
  for (size_t i = 0; names[i]; i++) {
    lua_getfield(L, src, names[i]);
    lua_setfield(L, -2, names[i]);
  }
}

/* Copy every field of the library table global `lib` into a new table; push it. Scripts
   get their own copies so one cannot change another's string or table functions. */
static void copy_lib(lua_State *L, const char *lib) {
  lua_getglobal(L, lib); /* [lib] */
  lua_newtable(L);       /* [lib, copy] */
  lua_pushnil(L);
  while (lua_next(L, -3)) { /* [lib, copy, k, v] */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4); /* [lib, copy, k] */
  }
  lua_remove(L, -2); /* [copy] */
}

/* Push a fresh environment for one script: safe base functions, copies of the safe
   libraries, shmgr, and (for the config only) os.getenv. */
static void push_sandbox(lua_State *L, bool is_config) {
  static const char *const base[] = {"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal",
                                     "rawget", "rawlen", "rawset", "select", "getmetatable",
                                     "tonumber", "tostring", "type", "xpcall", "_VERSION", NULL};
  static const char *const libs[] = {"string", "table", "math", "utf8", NULL};
  lua_pushglobaltable(L);
  copy_fields(L, lua_gettop(L), base); /* [G, env] */
  lua_remove(L, -2);                    /* [env] */
  for (size_t i = 0; libs[i]; i++) {
    copy_lib(L, libs[i]);
    lua_setfield(L, -2, libs[i]);
  }
  lua_getglobal(L, "os"); /* [env, os] */
  static const char *const os_safe[] = {"time", "clock", "date", "difftime", NULL};
  static const char *const os_config[] = {"time", "clock", "date", "difftime", "getenv", NULL};
  copy_fields(L, lua_gettop(L), is_config ? os_config : os_safe); /* [env, os, os'] */
  lua_setfield(L, -3, "os");
  lua_pop(L, 1); /* [env] */
  lua_pushcfunction(L, api_print);
  lua_setfield(L, -2, "print");
  lua_pushcfunction(L, api_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  lua_pushcfunction(L, api_require);
  lua_setfield(L, -2, "require");
  lua_getfield(L, LUA_REGISTRYINDEX, "shmgr.api");
  lua_setfield(L, -2, "shmgr");
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
}

/* Load the text of the script at path as a chunk named `name` (how errors will cite it:
   the path as the config wrote it, short enough that Lua does not cut it). */
static bool load_script(lua_State *L, const char *path, const char *name, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) return snprintf(err, errlen, "cannot open %s", path), false;
  buf text = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&text, chunk, n);
  fclose(f);
  char chunkname[1100];
  snprintf(chunkname, sizeof chunkname, "@%s", name);
  int rc = luaL_loadbufferx(L, text.data ? (const char *)text.data : "", text.len, chunkname, "t"); /* text only: no bytecode */
  buf_free(&text);
  if (rc != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return false;
  }
  return true;
}

/* Load and run the script at path in a fresh sandbox; leaves its env on the stack. */
static bool run_script(lua_State *L, const char *path, const char *name, bool is_config, char *err, size_t errlen) {
  if (!load_script(L, path, name, err, errlen)) return false;
  push_sandbox(L, is_config);    /* [chunk, env] */
  lua_pushvalue(L, -1);
  lua_insert(L, -3);             /* [env, chunk, env] */
  lua_setupvalue(L, -2, 1);      /* chunk's _ENV = env; [env, chunk] */
  value *exc = lx_pcall(L, 0, 0); /* [env] */
  if (exc) {
    buf text = {0};
    v_repr(&text, exc);
    buf_byte(&text, 0);
    const opaque *o = exc->u.o;
    const value *a = o->args->u.seq.len ? o->args->u.seq.items[0] : NULL;
    snprintf(err, errlen, "%s", a && a->kind == VK_STR ? a->u.s.data : (char *)text.data);
    buf_free(&text);
    v_decref(exc);
    lua_pop(L, 1);
    return false;
  }
  return true;
}

/* ---- reading the config's settings ---- */

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
                                      "max_auth_failures", "idle_timeout", "max_store_bytes", NULL};
  lua_pushnil(L);
  while (lua_next(L, t)) {
    bool found = false;
    for (size_t i = 0; known[i] && lua_type(L, -2) == LUA_TSTRING; i++) found |= strcmp(known[i], lua_tostring(L, -2)) == 0;
    if (!found) {
      snprintf(err, errlen, "unknown limit '%s' (known: max_message, handshake_timeout, max_depth, max_objects, lua_instructions, lua_memory, max_connections, send_timeout, max_auth_failures, idle_timeout, max_store_bytes)", luaL_tolstring(L, -2, NULL));
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
            get_size(L, t, "max_store_bytes", &cfg->max_store_bytes, err, errlen);
  cfg->lua_instructions = (long long)instr;
  ok = ok && get_seconds(L, t, "handshake_timeout", &cfg->handshake_timeout, err, errlen) &&
       get_seconds(L, t, "send_timeout", &cfg->send_timeout, err, errlen) &&
       get_seconds(L, t, "idle_timeout", &cfg->idle_timeout, err, errlen);
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

/* A path named in the config, relative to the config file's folder. */
static void relative_to_config(const config *cfg, const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(cfg->path, '/');
  if (path[0] == '/' || !slash) snprintf(out, outlen, "%s", path);
  else snprintf(out, outlen, "%.*s/%s", (int)(slash - cfg->path), cfg->path, path);
}

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
  if (lua_type(L, -1) == LUA_TSTRING) {
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
  if (!cfg->have_key && lua_type(L, -1) == LUA_TSTRING) {
    char path[1024];
    relative_to_config(cfg, lua_tostring(L, -1), path, sizeof path);
    if (!read_key_file(cfg, path, err, errlen)) return false;
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "log_level");
  if (lua_type(L, -1) == LUA_TSTRING) {
    int lvl = log_level_named(lua_tostring(L, -1));
    if (lvl < 0) return snprintf(err, errlen, "log_level must be one of debug, info, warn, error"), false;
    log_level = lvl;
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "lock_policy");
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "keep") == 0) own_policy_now = OWN_KEEP;
  else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "release") == 0) own_policy_now = OWN_RELEASE;
  else if (!lua_isnil(L, -1)) return snprintf(err, errlen, "lock_policy must be \"release\" or \"keep\""), false;
  lua_pop(L, 1);
  lua_getfield(L, env, "unix_mode");
  if (lua_type(L, -1) == LUA_TSTRING) {
    char *end;
    long mode = strtol(lua_tostring(L, -1), &end, 8);
    if (*end || mode < 0 || mode > 0777) return snprintf(err, errlen, "unix_mode must be an octal string such as \"0600\""), false;
    cfg->unix_mode = (int)mode;
  } else if (!lua_isnil(L, -1)) {
    return snprintf(err, errlen, "unix_mode must be an octal string such as \"0600\""), false;
  }
  lua_pop(L, 1);
  lua_getfield(L, env, "data_dir");
  if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1)) relative_to_config(cfg, lua_tostring(L, -1), cfg->data_dir, sizeof cfg->data_dir);
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
  return read_limits(L, env, cfg, err, errlen);
}

/* Run each type script the config's `types` names. */
static bool load_types(lua_State *L, int env, config *cfg, char *err, size_t errlen) {
  lua_getfield(L, env, "types");
  if (lua_isnil(L, -1)) return lua_pop(L, 1), true;
  if (!lua_istable(L, -1)) return lua_pop(L, 1), snprintf(err, errlen, "types must be a list of script paths"), false;
  for (lua_Integer i = 1, n = luaL_len(L, -1); i <= n; i++) {
    lua_geti(L, -1, i);
    if (lua_type(L, -1) != LUA_TSTRING) return snprintf(err, errlen, "types[%d] must be a path", (int)i), false;
    char path[1024], name[1024];
    snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
    relative_to_config(cfg, name, path, sizeof path);
    lua_pop(L, 1);
    if (!run_script(L, path, name, false, err, errlen)) return false;
    lua_pop(L, 1); /* the script's env */
  }
  lua_pop(L, 1);
  return true;
}

bool lx_load_config(config *cfg, bool listen_given, char *err, size_t errlen) {
  cfg_now = cfg;
  lua_State *L = lx_L = lua_newstate(lx_alloc, NULL);
  if (!L) return snprintf(err, errlen, "cannot create the Lua state"), false;
  /* the extra space names the method call a coroutine runs (lx_obj.c); Lua leaves the main
     thread's uninitialised, and new threads copy it: no call is running on the main thread */
  memset(lua_getextraspace(L), 0, LUA_EXTRASPACE);
  luaL_openlibs(L); /* the full libraries stay in the real globals; scripts see copies */
  lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
  lua_newtable(L); /* the shmgr table */
  lua_pushcfunction(L, api_register);
  lua_setfield(L, -2, "register");
  lua_pushcfunction(L, api_raise);
  lua_setfield(L, -2, "raise");
  lua_pushstring(L, SHMGR_VERSION);
  lua_setfield(L, -2, "version");
  lx_value_open(L);
  lx_obj_open(L);
  registry_builtins();
  lx_obj_builtins(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "shmgr.api");
  const char *slash = strrchr(cfg->path, '/'); /* the config is cited by its file name */
  if (!run_script(L, cfg->path, slash ? slash + 1 : cfg->path, true, err, errlen)) return false;
  int env = lua_gettop(L);
  bool ok = read_settings(L, env, cfg, listen_given, err, errlen) && load_types(L, env, cfg, err, errlen);
  lua_settop(L, env - 1);
  if (ok && !cfg->have_key) {
    const char *k = getenv("SHMGR_AUTHKEY");
    if (k && *k) {
      buf_put(&cfg->authkey, k, strlen(k));
      cfg->have_key = true;
      cfg->key_source = "SHMGR_AUTHKEY";
    }
  }
  return ok;
}

void lx_close(void) {
  if (lx_L) lua_close(lx_L);
  lx_L = NULL;
}
