/* registry.c: typeids: how each is constructed, what it exposes, what its methods return. */
#include "alloc.h"
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "lx.h"
#include "t_array.h"
#include "t_barrier.h"
#include "t_condition.h"
#include "t_dict.h"
#include "t_event.h"
#include "t_list.h"
#include "t_lock.h"
#include "t_namespace.h"
#include "t_queue.h"
#include "t_set.h"
#include "t_shared.h"
#include "t_shared_array.h"
#include "t_value.h"

static typeinfo *entries;

typeinfo *registry_first(void) { return entries; }

typeinfo *registry_find(const char *typeid, size_t len) {
  for (typeinfo *t = entries; t; t = t->next)
    if (strlen(t->typeid) == len && memcmp(t->typeid, typeid, len) == 0) return t;
  return NULL;
}

static void empty(typeinfo *t) {
  v_decref(t->exposed);
  v_decref(t->m2t);
  t->exposed = t->m2t = NULL;
  t->ctor = NULL;
  t->lua_ctor = LUA_NOREF;
  t->create_method = true;
}

typeinfo *registry_put(const char *typeid) {
  typeinfo *t = registry_find(typeid, strlen(typeid));
  if (t) {
    empty(t);
    return t;
  }
  t = xcalloc(1, sizeof *t);
  t->typeid = xstrdup(typeid);
  t->lua_ctor = LUA_NOREF;
  t->create_method = true;
  t->next = entries;
  entries = t;
  return t;
}

/* Pool would run Python callables: a data server cannot, and says so. */
static shobj *pool_create(value *args, value *kwds, value **err) {
  (void)args, (void)kwds;
  *err = v_exception_msg("NotImplementedError",
                         "shmgr cannot run a Pool: it never runs Python code sent by clients "
                         "(use a Pool in the client process instead)");
  return NULL;
}

/* The typeids of SyncManager, each with its C constructor (the t_*.c files). */
static const struct {
  const char *typeid;
  shobj *(*ctor)(value *args, value *kwds, value **err);
} builtins[] = {
    {"Queue", queue_create},
    {"JoinableQueue", queue_create},
    /* synchronisation (t_event.c t_lock.c t_condition.c t_barrier.c) */
    {"Event", event_create},
    {"Lock", lock_create},
    {"RLock", rlock_create},
    {"Semaphore", semaphore_create},
    {"BoundedSemaphore", bounded_semaphore_create},
    {"Condition", condition_create},
    {"Barrier", barrier_create},
    /* containers (t_list.c t_dict.c t_set.c t_namespace.c t_value.c t_array.c t_iterator.c) */
    {"list", list_create},
    {"dict", dict_create},
    {"set", set_create},
    {"Namespace", namespace_create},
    {"Value", valueobj_create},
    {"Array", array_create},
    {"Iterator", NULL}, /* callable None: only dict.__iter__ makes them (t_iterator.c) */
    {"Pool", pool_create},
    /* in shared memory, mapped by local processes too (t_shared.c t_shared_array.c) */
    {"SharedValue", shared_value_create},
    {"SharedStruct", shared_struct_create},
    {"SharedArray", shared_array_create},
};

void registry_builtins(void) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) registry_put(builtins[i].typeid)->ctor = builtins[i].ctor;
  /* DictProxy's method_to_typeid: d.__iter__() is shared as an Iterator (#PROXY) */
  typeinfo *dict = registry_find("dict", 4);
  dict->m2t = v_dict();
  dict_set(dict->m2t, v_strz("__iter__"), v_strz("Iterator"), NULL);
}

void registry_clear(void) {
  while (entries) {
    typeinfo *t = entries;
    entries = t->next;
    empty(t);
    free(t->typeid);
    free(t);
  }
}

shobj *registry_construct(const typeinfo *ti, value *args, value *kwds, value **err) {
  if (ti->ctor) return ti->ctor(args, kwds, err);
  if (ti->lua_ctor != LUA_NOREF) return lx_construct(ti, args, kwds, err);
  *err = v_exception_msg("ValueError", "Without callable, must have one non-keyword argument");
  return NULL;
}
