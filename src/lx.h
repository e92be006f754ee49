/* lx.h: the Lua bridge: one state for the config and type scripts, sandboxed. */
#ifndef SHMGR_LX_H
#define SHMGR_LX_H

#include <lua.h>
#include <stdbool.h>

#include "config.h"
#include "objects.h"
#include "registry.h"

/* ---- lx.c: the state, the sandbox, the config ---- */
/* Create the Lua state (with cfg's memory limit) and run the config file cfg->path in a
   sandbox, then the type scripts it names. Fills cfg from the config's globals; `--listen`
   addresses already in cfg win over the config's. Returns false with a message in err. */
bool lx_load_config(config *cfg, bool listen_given, char *err, size_t errlen);
/* Bytes the Lua state holds now (what limits.lua_memory bounds). */
size_t lx_memory(void);
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
/* Arm the instruction budget for a call running on thread L. */
void lx_budget(lua_State *L);
/* The Python exception for the Lua error object at the top of L (popped). New. L may be a
   coroutine that died of it; no Lua error escapes (a __tostring runs protected). */
value *lx_error_value(lua_State *L);

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
