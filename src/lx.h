/* lx.h: the Lua bridge: one state for the config and type scripts, sandboxed. */
#ifndef SHMGR_LX_H
#define SHMGR_LX_H

#include <lua.h>
#include <stdbool.h>

#include "config.h"
#include "objects.h"
#include "registry.h"

/* ---- lx.c: the state, the sandbox, the config ---- */
/* Create the Lua state and run the config file cfg->path in a sandbox (under the default
   limits; no file when cfg->path is NULL), then the type scripts it names and those of
   cfg->cli_types (under the config's limits). Fills cfg from the config's
   globals (lx_read_settings); `--listen` addresses already in cfg win over the config's
   when listen_given. Sets log_level and own_policy_now from cfg before the type scripts
   run. The state keeps cfg (borrowed for its life) and reads lua_memory and
   lua_instructions from it at each check: changing them there changes the limits. Returns
   false with a message in err. */
bool lx_load_config(config *cfg, bool listen_given, char *err, size_t errlen);
/* Bytes the Lua state holds now (what limits.lua_memory bounds). */
size_t lx_memory(void);
/* Run the config file cfg->path again, for a reload: in a scratch Lua state of its own,
   closed before returning, with the same sandbox, under the limits it ran under at start,
   and with a shmgr table whose functions do nothing (nothing is registered, declared or made
   in the server), and without running type scripts. Fills cfg (fresh from config_defaults,
   owned by the caller) from the config's globals as lx_load_config does, and applies
   nothing. Returns false with a message in err when the config does not run or a setting
   fails its check. Touches neither lx_L nor the registry. */
bool lx_check_config(config *cfg, bool listen_given, char *err, size_t errlen);
/* Close the state (after every object is gone). */
void lx_close(void);
/* The state, for the other lx files. */
extern lua_State *lx_L;

/* Run the function at the top of L's stack with nargs arguments below it... as the one
   gateway: instruction limit on, errors turned into a Python exception. Pops the function
   and args; on success pushes nres results and returns NULL, else returns a new exception. */
value *lx_pcall(lua_State *L, int nargs, int nres);
/* The same for a C function fn that uses the Lua API where an error may be raised (out of
   memory, a metamethod): fn runs with the nargs values at the top of L as its arguments,
   then ud as a light userdata. Pops them; pushes nres results and returns NULL, or returns
   a new exception. No Lua error escapes it: outside a protected call, one would abort. */
value *lx_protect(lua_State *L, lua_CFunction fn, void *ud, int nargs, int nres);
/* Arm the instruction budget for a call running on thread L (and its memory allowance past
   limits.max_memory: see lx_alloc). */
void lx_budget(lua_State *L);
/* A client's call (a method, a constructor) begins on L: lx_budget, and forget whether the
   last one was refused memory under limits.max_memory (which decides how its "not enough
   memory" reads: lx_error_value). */
void lx_call_start(lua_State *L);
/* The Python exception for the Lua error object at the top of L (popped). New. L may be a
   coroutine that died of it; no Lua error escapes (a __tostring runs protected). */
value *lx_error_value(lua_State *L);

/* ---- lx_settings.c: the config's globals into a config ---- */
/* Fill cfg from the globals the config left in its env, the table at index env of L:
   listen (unless listen_given), the authkey (authkey, else authkey_file read now, else
   SHMGR_AUTHKEY; none of them when cfg->key_given), log_level (checked, not taken when
   cfg->log_level_given), lock_policy, unix_mode, data_dir, durability,
   slowlog_threshold, metrics_listen, limits and the types list (kept, not run). Each is
   checked; false with the reason in err, cfg then partly filled. Applies nothing. Reading a
   table may run its metamethods (Lua errors): call it under protection. The stack is left
   as it was. */
bool lx_read_settings(lua_State *L, int env, config *cfg, bool listen_given, char *err, size_t errlen);
/* path as the config names it (in types, authkey_file), relative to the config file's
   folder unless absolute (or there is no config file), into out. */
void lx_config_relative(const config *cfg, const char *path, char *out, size_t outlen);

/* ---- lx_value.c: values <-> Lua ---- */
/* Push v as a natural Lua value where nothing is lost, else as a shmgr.value userdata. */
void lx_push(lua_State *L, value *v);
/* Push v as lx_push does, and drop the caller's reference (stolen), leaking nothing if the
   push raises a Lua error (out of memory). */
void lx_push_owned(lua_State *L, value *v);
/* Raise the exception err (stolen) as a Lua error, the same way. */
int lx_raise(lua_State *L, value *err);
/* An empty buffer for text to push to Lua, owned by the bridge (not lost if the push raises);
   valid until the next call. */
buf *lx_scratch(void);
/* The value of the Lua value at idx: a new reference, or NULL with *err a new exception.
   Raises no Lua error and runs no Lua code (tables are read raw), so it may run anywhere. */
value *lx_to(lua_State *L, int idx, value **err);
/* Register the shmgr.value metatable and the value constructors in the table at the top. */
void lx_value_open(lua_State *L);

/* ---- lx_obj.c: shared objects in Lua ---- */
/* Push a Lua handle for the built-in object o (takes a hold of its own). */
void lx_push_object(lua_State *L, shobj *o);
/* The shared object of the Lua value at idx (a handle or a table of methods), with one
   new hold, or NULL when it is neither. A table becomes a Lua-typed object of class cls
   (a string that outlives it: a typeid of the registry), keeping the ident it had. Raises a
   Lua error when out of memory: call it under protection (lx_protect). */
shobj *lx_to_object(lua_State *L, int idx, const char *cls);
/* Construct an object of the Lua typeid ti: runs its constructor. See registry_construct. */
shobj *lx_construct(const typeinfo *ti, value *args, value *kwds, value **err);
/* Register the object metatables and shmgr.new in the table at the top. */
void lx_obj_open(lua_State *L);
/* Add shmgr.Queue, shmgr.Lock, ...: a constructor per built-in typeid with a capital (the
   lower-case ones, list and dict, are plain values in Lua: shmgr.list, shmgr.dict). */
void lx_obj_builtins(lua_State *L);

#endif
