/* lx.c: the Lua bridge: the state, the sandbox, the config, the shmgr API and the one gateway. */
#include "lx.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "memcount.h"
#include "owner.h"
#include "stats.h"

lua_State *lx_L;
#define HOOK_EVERY 1000     /* instructions between two checks of the budget */
#define CALL_ALLOWANCE (64 * 1024) /* what a call may take past limits.max_memory (lx_alloc) */

/* What the allocator and the hook keep for one Lua state (their ud): the server's state, or
   the scratch state a reload runs the config in (lx_check_config). */
typedef struct lx_account {
  lua_State *main;      /* the state's main thread */
  const config *limits; /* its lua_memory and lua_instructions, read at each check: a
                           reload changes the server's in place */
  size_t bytes;         /* bytes the state holds now */
  long long budget;     /* instructions left for the call running now */
  bool server_full;     /* the running call was refused memory under limits.max_memory */
  size_t call_base;     /* bytes when the running call began (or resumed) */
} lx_account;

static lx_account live; /* lx_L's */

static lx_account *account_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* The allocator: Lua's memory, bounded by lua_memory. */
static void *lx_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lx_account *a = ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    free(ptr);
    a->bytes -= osize;
    return NULL;
  }
  size_t limit = a->limits ? a->limits->lua_memory : 0;
  if (limit && nsize > osize && a->bytes + (nsize - osize) > limit) { /* Lua raises "not enough memory" */
    if (a == &live) /* a reload's scratch state is no client's call: the reload says why it failed */
      stats_limit(LIM_LUA_MEMORY, "lua: an allocation of %zu bytes refused: limits.lua_memory (%zu bytes) reached", nsize - osize, limit);
    return NULL;
  }
  /* Past limits.max_memory Lua may still take a sixteenth more; past that, a call may take
     CALL_ALLOWANCE (a method that only reads needs that much to run: its coroutine, its
     temporaries), and one that needs more is refused. */
  size_t server = a == &live ? mem_limit() : 0;
  if (server && nsize > osize && mem_used() + (nsize - osize) > server + server / 16 &&
      a->bytes + (nsize - osize) > a->call_base + CALL_ALLOWANCE) {
    stats_limit(LIM_MAX_MEMORY, "lua: an allocation of %zu bytes refused: limits.max_memory (%zu bytes) passed", nsize - osize, server);
    a->server_full = true;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) a->bytes = a->bytes - osize + nsize;
  return p;
}

static void hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lx_account *a = account_of(L);
  if (a->limits->lua_instructions && (a->budget -= HOOK_EVERY) < 0) {
    if (a == &live)
      stats_limit(LIM_LUA_INSTRUCTIONS, "lua: a call stopped after limits.lua_instructions (%lld)", a->limits->lua_instructions);
    luaL_error(L, "instruction limit exceeded (lua_instructions = %I)", (lua_Integer)a->limits->lua_instructions);
  }
}

void lx_budget(lua_State *L) {
  /* threads inherit their state's hook; the budget is the running call's */
  lx_account *a = account_of(L);
  a->budget = a->limits->lua_instructions;
  a->call_base = a->bytes;
}

void lx_call_start(lua_State *L) {
  lx_budget(L);
  account_of(L)->server_full = false;
}

size_t lx_memory(void) { return live.bytes; }

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
  if (!exc && t == LUA_TSTRING && account_of(L)->server_full && strcmp(lua_tostring(L, -1), "not enough memory") == 0) {
    exc = mem_error("a Lua method's allocation", 0); /* the server's limit, not Lua's own */
  } else if (!exc && t == LUA_TSTRING) {
    exc = v_exception_msg("RuntimeError", lua_tostring(L, -1));
  } else if (!exc && t == LUA_TNUMBER) { /* formatted here: lua_tostring would allocate */
    if (lua_isinteger(L, -1)) snprintf(text, sizeof text, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -1));
    else snprintf(text, sizeof text, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, -1));
    exc = v_exception_msg("RuntimeError", text);
  } else if (!exc) {
    snprintf(text, sizeof text, "(error object is a %s value)", luaL_typename(L, -1));
    lua_State *M = account_of(L)->main; /* L's own state's: the server's, or a reload's scratch one */
    if (!nested && lua_checkstack(M, 1)) { /* its __tostring, if any, runs protected on the main thread */
      if (L != M) lua_xmove(L, M, 1);
      else lua_pushvalue(L, -1);
      nested = true;
      value *failed = lx_protect(M, error_text, NULL, 1, 1); /* [text] or nothing */
      nested = false;
      if (!failed) exc = v_exception_msg("RuntimeError", lua_tostring(M, -1)), lua_pop(M, 1);
      v_decref(failed);
      if (L != M) return exc ? exc : v_exception_msg("RuntimeError", text); /* nothing left on L */
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
  int n = lua_gettop(L); /* before luaL_buffinit, which pushes a placeholder of its own */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
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

/* The text of the exception exc (consumed) in err: its message, else its repr. */
static void exception_text(value *exc, char *err, size_t errlen) {
  buf text = {0};
  v_repr(&text, exc);
  buf_byte(&text, 0);
  const opaque *o = exc->u.o;
  const value *a = o->args->u.seq.len ? o->args->u.seq.items[0] : NULL;
  snprintf(err, errlen, "%s", a && a->kind == VK_STR ? a->u.s.data : (char *)text.data);
  buf_free(&text);
  v_decref(exc);
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
    exception_text(exc, err, errlen);
    lua_pop(L, 1);
    return false;
  }
  return true;
}

/* The config file as errors cite it: its file name. */
static const char *config_name(const config *cfg) {
  const char *slash = strrchr(cfg->path, '/');
  return slash ? slash + 1 : cfg->path;
}

/* What read_protected reads into, and how it went. */
typedef struct reading {
  config *cfg;
  bool listen_given;
  char *err;
  size_t errlen;
  bool ok;
} reading;

/* Under lx_protect: [env, r] -> lx_read_settings. The config's tables may have metamethods
   (Lua code, under the instruction limit), and any step may run out of memory. */
static int read_protected(lua_State *L) {
  reading *r = lua_touserdata(L, 2);
  r->ok = lx_read_settings(L, 1, r->cfg, r->listen_given, r->err, r->errlen);
  return 0;
}

/* Fill cfg from the globals of the config's env, at the top of L (left there). */
static bool read_config(lua_State *L, config *cfg, bool listen_given, char *err, size_t errlen) {
  reading r = {cfg, listen_given, err, errlen, false};
  lua_pushvalue(L, -1);                                  /* [env, env] */
  value *exc = lx_protect(L, read_protected, &r, 1, 0); /* [env] */
  if (exc) return exception_text(exc, err, errlen), false;
  return r.ok;
}

/* Run each type script the config's `types` names (relative to the config's folder), then
   each --types one (as given). */
static bool load_types(lua_State *L, const config *cfg, char *err, size_t errlen) {
  for (int list = 0; list < 2; list++) {
    const buf *names = list ? &cfg->cli_types : &cfg->types;
    for (size_t at = 0; at < names->len;) {
      const char *name = (const char *)names->data + at;
      at += strlen(name) + 1;
      char path[1024];
      if (list) snprintf(path, sizeof path, "%s", name);
      else lx_config_relative(cfg, name, path, sizeof path);
      if (!run_script(L, path, name, false, err, errlen)) return false;
      lua_pop(L, 1); /* the script's env */
    }
  }
  return true;
}

/* Push the shmgr table: what scripts see as `shmgr` and get from require "shmgr". */
static void push_api(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, api_register);
  lua_setfield(L, -2, "register");
  lua_pushcfunction(L, api_raise);
  lua_setfield(L, -2, "raise");
  lua_pushstring(L, SHMGR_VERSION);
  lua_setfield(L, -2, "version");
  lx_value_open(L);
  lx_obj_open(L);
  lx_obj_builtins(L);
}

bool lx_load_config(config *cfg, bool listen_given, char *err, size_t errlen) {
  live = (lx_account){.limits = cfg};
  lua_State *L = lx_L = live.main = lua_newstate(lx_alloc, &live);
  if (!L) return snprintf(err, errlen, "cannot create the Lua state"), false;
  /* the extra space names the method call a coroutine runs (lx_obj.c); Lua leaves the main
     thread's uninitialised, and new threads copy it: no call is running on the main thread */
  memset(lua_getextraspace(L), 0, LUA_EXTRASPACE);
  luaL_openlibs(L); /* the full libraries stay in the real globals; scripts see copies */
  lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
  registry_builtins();
  push_api(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "shmgr.api");
  if (!cfg->path) lua_newtable(L); /* --no-config: no globals, every setting its default; [env] */
  else if (!run_script(L, cfg->path, config_name(cfg), true, err, errlen)) return false;
  bool ok = read_config(L, cfg, listen_given, err, errlen); /* [env] */
  lua_pop(L, 1);
  if (!ok) return false;
  log_level = cfg->log_level; /* the type scripts load under the config's log level */
  own_policy_now = cfg->lock_policy;
  return load_types(L, cfg, err, errlen);
}

/* ---- the config run again, in a scratch state (lx_check_config) ---- */

/* __index and __call of the inert object: whatever is asked of it, itself again. */
static int inert_self(lua_State *L) {
  lua_settop(L, 1);
  return 1;
}

/* An inert API function (upvalue 1: the inert object): does nothing, returns the object. */
static int inert_call(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* Make the shmgr table at the top of L inert: each function becomes one that does nothing and
   returns the inert object, and so does shmgr.None. Running the config again then registers,
   declares and makes nothing, while a config that uses what they return (`local q =
   shmgr.Queue{...}; q:put(1)`) still runs. The names and shmgr.version stay: a config that
   ran at start finds what it found then. */
static void make_inert(lua_State *L) {
  int api = lua_gettop(L);
  lua_newtable(L); /* [api, obj] */
  lua_newtable(L); /* [api, obj, mt] */
  lua_pushcfunction(L, inert_self);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, inert_self);
  lua_setfield(L, -2, "__call");
  lua_pushliteral(L, "shmgr.inert");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2); /* [api, obj] */
  lua_pushnil(L);
  while (lua_next(L, api)) { /* [api, obj, key, val] */
    int t = lua_type(L, -1);
    lua_pop(L, 1); /* [api, obj, key] */
    if (t != LUA_TFUNCTION && t != LUA_TUSERDATA) continue;
    lua_pushvalue(L, -1);     /* [api, obj, key, key] */
    lua_pushvalue(L, api + 1); /* [api, obj, key, key, obj] */
    if (t == LUA_TFUNCTION) lua_pushcclosure(L, inert_call, 1); /* [api, obj, key, key, fn] */
    lua_rawset(L, api);       /* an existing field: lua_next may go on; [api, obj, key] */
  }
  lua_pop(L, 1); /* [api] */
}

/* Under lx_protect, in a new state: its libraries and the inert shmgr table. */
static int open_inert(lua_State *L) {
  luaL_openlibs(L);
  push_api(L);
  make_inert(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "shmgr.api");
  return 0;
}

bool lx_check_config(config *cfg, bool listen_given, char *err, size_t errlen) {
  config start; /* the config runs under the limits it ran under at start: the defaults
                   (its own limits apply to what runs after it) */
  config_defaults(&start);
  lx_account scratch = {.limits = &start};
  lua_State *L = scratch.main = lua_newstate(lx_alloc, &scratch);
  if (!L) return snprintf(err, errlen, "cannot create a Lua state"), false;
  memset(lua_getextraspace(L), 0, LUA_EXTRASPACE); /* as lx_load_config's: no method call runs */
  lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
  value *exc = lx_protect(L, open_inert, NULL, 0, 0);
  bool ok = !exc;
  if (exc) exception_text(exc, err, errlen);
  ok = ok && run_script(L, cfg->path, config_name(cfg), true, err, errlen) && read_config(L, cfg, listen_given, err, errlen);
  lua_close(L); /* whatever the config made goes with it */
  config_free(&start);
  return ok;
}

void lx_close(void) {
  if (lx_L) lua_close(lx_L);
  lx_L = NULL;
}
