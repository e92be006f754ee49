/* registry.h: typeids: how each is constructed, what it exposes, what its methods return. */
#ifndef SHMGR_REGISTRY_H
#define SHMGR_REGISTRY_H

#include <stdbool.h>

#include <lauxlib.h>

#include "objects.h"

typedef struct typeinfo typeinfo;
struct typeinfo {
  char *typeid;
  /* one of: a C constructor (built-ins), a Lua constructor (registry ref), or neither
     (CPython's callable=None: the object is create's single argument) */
  shobj *(*ctor)(value *args, value *kwds, value **err);
  int lua_ctor;      /* LUA_NOREF when not a Lua constructor */
  value *exposed;    /* tuple of str, or NULL: the object's public methods */
  value *m2t;        /* dict str -> str (method_to_typeid), or NULL */
  bool create_method; /* kept for completeness: it only matters to clients */
  typeinfo *next;
};

/* True when ti makes its objects (C or Lua constructor) rather than taking one. */
static inline bool typeinfo_callable(const typeinfo *ti) { return ti->ctor || ti->lua_ctor != LUA_NOREF; }

/* Register the built-in typeids (Queue, JoinableQueue). Idempotent. */
void registry_builtins(void);
/* The entry for typeid, made empty if new, or emptied (its Lua ref left to the caller) if
   it existed: a later registration replaces an earlier one, as in CPython. */
typeinfo *registry_put(const char *typeid);
/* The first entry (then ->next), for walking them all. */
typeinfo *registry_first(void);
/* The entry for typeid, or NULL. */
typeinfo *registry_find(const char *typeid, size_t len);
/* Forget every entry (shutdown). Lua refs are the Lua bridge's to drop. */
void registry_clear(void);

/* Construct an object of ti from args (a tuple) and kwds (a dict), as CPython's create
   does: returns a new object (one hold), or NULL with *err a new exception. */
shobj *registry_construct(const typeinfo *ti, value *args, value *kwds, value **err);

#endif
