/* lx_obj.c: shared objects in Lua: handles to built-ins, Lua-typed objects, calls in coroutines. */
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "memcount.h"
#include "lx.h"
#include "stats.h"
#include "t_queue.h"
#include "wait.h"

#define HANDLE_MT "shmgr.object"
#define IDS "shmgr.ids"   /* weak-keyed: table -> the id its object had, so it keeps its ident */
#define LIVE "shmgr.live" /* table -> its live object (lightuserdata), while the object lives */

/* ---- one method call running in a coroutine ---- */

typedef struct luacall {
  call inner;     /* the slot the coroutine parks on a built-in with */
  call *outer;    /* the caller waiting for this method's outcome */
  lua_State *co;  /* the coroutine */
  int coref;      /* keeps co alive */
  shobj *self;    /* the object, held while the call runs */
  const char *method;
  outcome waited; /* what the built-in answered, for the continuation */
  bool calling;   /* inside a built-in's call: an answer now is not a resumption */
  bool answered;  /* the built-in answered while calling was set: waited holds it */
} luacall;

static luacall **ctx_of(lua_State *L) { return (luacall **)lua_getextraspace(L); }

/* The object of the handle at idx; a Lua error if it is no handle, or was collected already
   (its hold is gone: a finalizer can reach a handle whose own finalizer has run). */
static shobj *checkobj(lua_State *L, int idx) {
  shobj *o = *(shobj **)luaL_checkudata(L, idx, HANDLE_MT);
  if (!o) luaL_error(L, "a shared object used after it was collected (by a finalizer?)");
  return o;
}

static int raise_value(lua_State *L, value *exc) { return lx_raise(L, exc); }

/* Push a handle for o and drop the caller's hold, leaking none if the push raises (out of
   memory): the hold then waits for the next call (as lx_push_owned does for values). */
static void push_object_owned(lua_State *L, shobj *o) {
  static shobj *pushing;
  if (pushing) obj_release(pushing);
  pushing = o;
  lx_push_object(L, o);
  pushing = NULL;
  obj_release(o);
}

/* Push a built-in's outcome as Lua results (or raise it); consumes r. */
static int push_outcome(lua_State *L, outcome r) {
  if (r.st == CALL_ERROR || r.st == CALL_TRACEBACK) return raise_value(L, r.v);
  if (r.st == CALL_OBJECT) {
    push_object_owned(L, r.obj);
    return 1;
  }
  lx_push_owned(L, r.v);
  return 1;
}

static int after_wait(lua_State *L, int status, lua_KContext k) {
  (void)status;
  luacall *ctx = (luacall *)k;
  outcome r = ctx->waited;
  ctx->waited = (outcome){0};
  return push_outcome(L, r);
}

static void resume(luacall *ctx, int nargs);

/* A built-in the coroutine waited on has answered: carry on with the method. */
static void inner_done(call *k, outcome r) {
  luacall *ctx = k->owner;
  ctx->waited = r;
  if (ctx->calling) { /* the coroutine is running, inside the call: handle_method takes it */
    ctx->answered = true;
    return;
  }
  resume(ctx, 0);
}

/* Where a call that cannot wait (no coroutine to suspend) keeps an answer given at once. */
typedef struct now_answer {
  outcome r;
  bool answered;
} now_answer;

static void answered_now(call *k, outcome r) {
  now_answer *a = k->owner;
  a->r = r;
  a->answered = true;
}

/* The method of a built-in, called from Lua as handle:method(...). Upvalue 1: the name. */
static int handle_method(lua_State *L) {
  shobj *o = checkobj(L, 1);
  const char *m = lua_tostring(L, lua_upvalueindex(1));
  if (mem_over() && mem_adds(o->type->adds, m)) { /* as a client's call would be */
    stats_limit(LIM_MAX_MEMORY, "lua: %s.%s refused: limits.max_memory (%zu bytes) passed", o->cls, m, mem_limit());
    return raise_value(L, mem_error(m, 0));
  }
  int n = lua_gettop(L) - 1;
  value *args = v_tuple((size_t)n), *kwds = v_dict(), *err = NULL;
  for (int i = 0; i < n; i++) {
    value *a = lx_to(L, i + 2, &err);
    if (!a) {
      for (int k = i; k < n; k++) args->u.seq.items[k] = v_none();
      v_decref(args), v_decref(kwds);
      return raise_value(L, err);
    }
    args->u.seq.items[i] = a;
  }
  luacall *ctx = *ctx_of(L);
  now_answer now = {0};
  call tmp = {.done = answered_now, .owner = &now};
  call *slot = ctx && lua_isyieldable(L) ? &ctx->inner : &tmp;
  if (slot != &tmp) {
    slot->done = inner_done;
    slot->owner = ctx;
  }
  slot->holder = ctx ? ctx->outer->holder : NULL; /* a method acquires for its client */
  /* A call that parks may still be answered before it returns (a Condition wait whose
     release lets a Lua method run that notifies it and gives the lock back): then there is
     nothing to wait for, and resuming a coroutine that is running would fail. */
  if (slot != &tmp) ctx->calling = true;
  outcome r = o->type->call(o, m, args, kwds, slot);
  if (slot != &tmp) ctx->calling = false;
  v_decref(args), v_decref(kwds);
  if (r.st == CALL_PARKED && slot != &tmp && ctx->answered) {
    ctx->answered = false;
    r = ctx->waited;
    ctx->waited = (outcome){0};
  } else if (r.st == CALL_PARKED && now.answered) {
    r = now.r;
  }
  if (r.st != CALL_PARKED) return push_outcome(L, r);
  if (slot == &tmp) {
    wait_cancel(&tmp);
    return luaL_error(L, "%s.%s would block, and only a method can wait (not a constructor or the config)", o->cls, m);
  }
  return lua_yieldk(L, 0, (lua_KContext)ctx, after_wait);
}

static void free_ctx(luacall *ctx) {
  luaL_unref(lx_L, LUA_REGISTRYINDEX, ctx->coref);
  obj_release(ctx->self);
  free(ctx);
}

typedef struct toobj {
  const char *cls;
  shobj *obj;
} toobj;

/* lx_to_object under lx_protect (it makes references and table entries, which allocate):
   argument 1 the value, 2 the toobj. */
static int to_object(lua_State *L) {
  toobj *a = lua_touserdata(L, 2);
  a->obj = lx_to_object(L, 1, a->cls);
  return 0;
}

/* The coroutine's results as an outcome: none -> None, one -> it, more -> a tuple; a
   method in method_to_typeid whose typeid takes an object yields that object. */
static outcome results(luacall *ctx, int nres) {
  lua_State *co = ctx->co;
  shobj *o = ctx->self;
  value *err = NULL, *r;
  const value *typeid = o->m2t ? dict_get_str(o->m2t, ctx->method) : NULL;
  const typeinfo *ti = typeid && typeid->kind == VK_STR ? registry_find(typeid->u.s.data, typeid->u.s.len) : NULL;
  if (ti && !typeinfo_callable(ti) && nres >= 1) {
    toobj a = {ti->typeid, NULL};
    value *exc;
    if (!lua_checkstack(co, 1) || !lua_checkstack(lx_L, 4)) {
      exc = v_exception_msg("MemoryError", "no room on the Lua stack");
    } else {
      lua_pushvalue(co, -nres);
      lua_xmove(co, lx_L, 1);
      exc = lx_protect(lx_L, to_object, &a, 1, 0);
    }
    lua_pop(co, nres);
    if (exc) return out_error(exc);
    if (a.obj) return (outcome){CALL_OBJECT, NULL, a.obj};
    return out_error(v_exception_msg("TypeError", "a method in method_to_typeid must return a table of methods or a shared object"));
  }
  if (nres == 0) {
    r = v_none();
  } else if (nres == 1) {
    r = lx_to(co, -1, &err);
  } else {
    r = v_tuple((size_t)nres);
    for (int i = 0; i < nres && !err; i++) r->u.seq.items[i] = lx_to(co, i - nres, &err);
    for (int i = 0; i < nres; i++)
      if (!r->u.seq.items[i]) r->u.seq.items[i] = v_none();
    if (err) v_decref(r), r = NULL;
  }
  lua_pop(co, nres);
  return r ? out_value(r) : out_error(err);
}

typedef struct traceback {
  lua_State *co;
  const char *msg;
} traceback;

/* Under lx_protect: log where the coroutine's error came from (building it allocates). */
static int log_traceback(lua_State *L) {
  traceback *t = lua_touserdata(L, 1);
  luaL_traceback(L, t->co, t->msg, 0);
  logmsg(LOG_INFO, "lua: %s", lua_tostring(L, -1));
  return 0;
}

/* Run (or go on running) the coroutine. Delivers the outcome to the outer caller when the
   method ends after having waited; returns it when it ends at once. */
static outcome run(luacall *ctx, int nargs) {
  int nres = 0;
  lx_budget(ctx->co);
  int rc = lua_resume(ctx->co, lx_L, nargs, &nres);
  if (rc == LUA_YIELD) return out_parked();
  outcome r;
  if (rc == LUA_OK) {
    r = results(ctx, nres);
  } else {
    if (lua_type(ctx->co, -1) == LUA_TSTRING) {
      traceback t = {ctx->co, lua_tostring(ctx->co, -1)};
      value *failed = lx_protect(lx_L, log_traceback, &t, 0, 0);
      if (failed) logmsg(LOG_INFO, "lua: %s", t.msg); /* no room for the traceback */
      v_decref(failed);
    }
    r = out_error(lx_error_value(ctx->co));
  }
  return r;
}

static void resume(luacall *ctx, int nargs) {
  outcome r = run(ctx, nargs);
  if (r.st == CALL_PARKED) return;
  call *outer = ctx->outer;
  free_ctx(ctx);
  wait_finish(outer, r);
}

/* The caller went away while the method waited: stop the wait and drop the coroutine. */
static void cancel_call(call *outer) {
  luacall *ctx = outer->inner;
  if (wait_is_pending(&ctx->inner)) wait_cancel(&ctx->inner);
  outcome_free(ctx->waited);
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(ctx->co, lx_L);
#else
  lua_resetthread(ctx->co);
#endif
  free_ctx(ctx);
}

/* ---- Lua-typed objects: a table of methods ---- */

typedef struct luaobj {
  int tref; /* the table, kept alive by the object */
} luaobj;

static void push_table(const shobj *o) { lua_rawgeti(lx_L, LUA_REGISTRYINDEX, ((luaobj *)o->state)->tref); }

typedef struct prep {
  shobj *o;
  const char *m;
  value *args;
  luacall *ctx;
  bool found; /* the table has a function of that name */
} prep;

/* Under lx_protect (a coroutine, a reference and the arguments allocate; the lookup may run
   an __index): the method's coroutine with [f, T, args...] on it, in p->ctx. */
static int prepare(lua_State *L) {
  prep *p = lua_touserdata(L, 1);
  push_table(p->o);          /* [p, T] */
  lua_getfield(L, -1, p->m); /* [p, T, f] */
  if (!lua_isfunction(L, -1)) return 0;
  size_t n = p->args->u.seq.len;
  lua_State *co = lua_newthread(L); /* [p, T, f, co] */
  if (n > LUAI_MAXSTACK || !lua_checkstack(co, (int)n + 2))
    return luaL_error(L, "%s.%s(): too many arguments (%d) for a Lua method", p->o->cls, p->m, (int)(n > INT_MAX ? INT_MAX : n));
  *ctx_of(co) = p->ctx;
  p->ctx->co = co;
  p->ctx->coref = luaL_ref(L, LUA_REGISTRYINDEX); /* [p, T, f] */
  lua_xmove(L, co, 1);                           /* L: [p, T]; co: [f] */
  lua_xmove(L, co, 1);                           /* L: [p]; co: [f, T] */
  for (size_t i = 0; i < n; i++) lx_push(co, p->args->u.seq.items[i]); /* an error here reaches L's handler */
  p->found = true;
  return 0;
}

static outcome luaobj_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  if (dict_len(kwds)) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s.%s() is a Lua method and takes no keyword arguments", o->cls, m);
    return out_error(v_exception_msg("TypeError", msg));
  }
  lx_call_start(lx_L); /* the call's allowances start here: its coroutine counts against them */
  luacall *ctx = xcalloc(1, sizeof *ctx);
  ctx->coref = LUA_NOREF;
  ctx->self = o;
  obj_hold(o);
  ctx->method = m;
  ctx->outer = c;
  prep p = {o, m, args, ctx, false};
  value *exc = lx_protect(lx_L, prepare, &p, 0, 0);
  if (exc || !p.found) {
    free_ctx(ctx);
    if (exc) return out_error(exc);
    char msg[160];
    snprintf(msg, sizeof msg, "'%s' object has no attribute '%s'", o->cls, m);
    return out_error(v_exception_msg("AttributeError", msg));
  }
  outcome r = run(ctx, (int)args->u.seq.len + 1);
  if (r.st == CALL_PARKED) {
    wait_pending(c, cancel_call, ctx); /* m stays valid: the request outlives the call */
  } else {
    free_ctx(ctx);
  }
  return r;
}

static void luaobj_free(shobj *o) {
  luaobj *st = o->state;
  lua_State *L = lx_L;
  lua_getfield(L, LUA_REGISTRYINDEX, LIVE); /* [live] */
  push_table(o);                            /* [live, T] */
  lua_pushnil(L);
  lua_rawset(L, -3);                        /* live[T] = nil; [live] */
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, st->tref);
  free(st);
}

static void luaobj_repr(const shobj *o, buf *out) {
  buf_printf(out, "<%s object at 0x%llx>", o->cls, (unsigned long long)o->id);
}

/* The public methods of a table: its function fields not starting with '_', sorted. */
static value *luaobj_methods(shobj *o) {
  lua_State *L = lx_L;
  push_table(o); /* [T] */
  value *names = v_list(8);
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* [T, k, v] */
    if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1) && lua_tostring(L, -2)[0] != '_')
      list_append(names, v_strz(lua_tostring(L, -2)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* sort by name (insertion sort: a type has a handful of methods) */
  value **it = names->u.seq.items;
  for (size_t i = 1; i < names->u.seq.len; i++)
    for (size_t k = i; k > 0 && strcmp(it[k - 1]->u.s.data, it[k]->u.s.data) > 0; k--) {
      value *t = it[k];
      it[k] = it[k - 1];
      it[k - 1] = t;
    }
  value *tuple = v_tuple(names->u.seq.len);
  for (size_t i = 0; i < names->u.seq.len; i++) tuple->u.seq.items[i] = v_incref(it[i]);
  v_decref(names);
  return tuple;
}

/* #GETVALUE: a dict of the table's data fields (what a copy of the object holds). */
static value *luaobj_getvalue(shobj *o, value **err) {
  lua_State *L = lx_L;
  push_table(o);
  value *d = v_dict();
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* [T, k, v] */
    if (!lua_isfunction(L, -1)) {
      value *k = lx_to(L, -2, err), *v = k ? lx_to(L, -1, err) : NULL;
      const char *why;
      if (!v || dict_set(d, k, v, &why) < 0) {
        if (!v) v_decref(k);
        else *err = v_exception_msg("TypeError", why);
        lua_pop(L, 3);
        v_decref(d);
        return NULL;
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return d;
}

static const char *const no_methods[] = {NULL};
static const otype luaobj_type = {
    .name = "LuaObject",
    .methods = no_methods,
    .call = luaobj_call,
    .free = luaobj_free,
    .repr = luaobj_repr,
    .getvalue = luaobj_getvalue,
    .public_methods = luaobj_methods,
    .scripted = true,
};

shobj *lx_to_object(lua_State *L, int idx, const char *cls) {
  idx = lua_absindex(L, idx);
  shobj **h = luaL_testudata(L, idx, HANDLE_MT);
  if (h) return *h ? (obj_hold(*h), *h) : NULL; /* NULL: collected (see checkobj) */
  if (!lua_istable(L, idx)) return NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, LIVE); /* [live] */
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);                        /* [live, o?] */
  shobj *o = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (o) return obj_hold(o), o;
  /* every entry and reference is made before the object, so that running out of memory
     (raised from here) leaves no object behind; filling them in later allocates nothing */
  lua_getfield(L, LUA_REGISTRYINDEX, IDS);  /* [ids] */
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);                        /* [ids, id?] */
  uint64_t id = (uint64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);                            /* [ids] */
  lua_pushvalue(L, idx);
  lua_pushinteger(L, (lua_Integer)id);
  lua_rawset(L, -3);                        /* ids[T] = id for now */
  lua_getfield(L, LUA_REGISTRYINDEX, LIVE); /* [ids, live] */
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 0);
  lua_rawset(L, -3);                        /* live[T] = false for now */
  lua_pushvalue(L, idx);
  int tref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaobj *st = xmalloc(sizeof *st);
  st->tref = tref;
  o = obj_new(&luaobj_type, st, id);
  o->cls = cls;
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, o);
  lua_rawset(L, -3);                        /* live[T] = o; [ids, live] */
  lua_pushvalue(L, idx);
  lua_pushinteger(L, (lua_Integer)o->id);
  lua_rawset(L, -4);                        /* ids[T] = its id */
  lua_pop(L, 2);
  return o;
}

typedef struct construction {
  const typeinfo *ti;
  value *args;
  shobj *obj;           /* what the constructor made */
  const char *returned; /* else the Lua type it returned */
} construction;

/* Under lx_protect: push the constructor and its arguments, call it, make the result an
   object. */
static int construct_lua(lua_State *L) {
  construction *k = lua_touserdata(L, 1);
  size_t n = k->args->u.seq.len;
  if (n > LUAI_MAXSTACK || !lua_checkstack(L, (int)n + 2))
    return luaL_error(L, "%s(): too many arguments (%d) for a Lua constructor", k->ti->typeid, (int)(n > INT_MAX ? INT_MAX : n));
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->ti->lua_ctor); /* [k, ctor] */
  for (size_t i = 0; i < n; i++) lx_push(L, k->args->u.seq.items[i]);
  lua_call(L, (int)n, 1);                             /* [k, result] */
  k->obj = lx_to_object(L, -1, k->ti->typeid);
  k->returned = luaL_typename(L, -1);
  return 0;
}

shobj *lx_construct(const typeinfo *ti, value *args, value *kwds, value **err) {
  lua_State *L = lx_L;
  if (kwds && dict_len(kwds)) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s() is a Lua constructor and takes no keyword arguments", ti->typeid);
    *err = v_exception_msg("TypeError", msg);
    return NULL;
  }
  construction k = {ti, args, NULL, NULL};
  lx_call_start(L);
  if ((*err = lx_protect(L, construct_lua, &k, 0, 0))) return NULL;
  if (!k.obj) {
    char msg[200];
    snprintf(msg, sizeof msg, "the constructor of '%s' returned a %s, not a table of methods or a shared object",
             ti->typeid, k.returned);
    *err = v_exception_msg("TypeError", msg);
  }
  return k.obj;
}

/* ---- handles: built-in objects seen from Lua ---- */

void lx_push_object(lua_State *L, shobj *o) {
  shobj **h = lua_newuserdatauv(L, sizeof *h, 0);
  *h = o;
  obj_hold(o);
  luaL_setmetatable(L, HANDLE_MT);
}

static int handle_gc(lua_State *L) {
  shobj **h = luaL_checkudata(L, 1, HANDLE_MT);
  if (*h) obj_release(*h);
  *h = NULL;
  return 0;
}

/* handle.name: the method of that name, or nil. */
static int handle_index(lua_State *L) {
  shobj *o = checkobj(L, 1);
  const char *name = luaL_checkstring(L, 2);
  for (const char *const *m = o->type->methods; *m; m++) {
    if (strcmp(*m, name) == 0) {
      lua_pushstring(L, *m);
      lua_pushcclosure(L, handle_method, 1);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

static int handle_tostring(lua_State *L) {
  shobj *o = checkobj(L, 1);
  buf *text = lx_scratch();
  o->type->repr(o, text);
  lua_pushlstring(L, text->data ? (const char *)text->data : "", text->len);
  return 1;
}

/* Construct the built-in typeid ti with the Lua arguments from index `first` on; push a
   handle. Lua-typed typeids are constructed by calling their Lua functions directly. */
static int construct(lua_State *L, const typeinfo *ti, int first) {
  if (!ti || !ti->ctor) return luaL_error(L, "'%s' is not a built-in typeid", ti ? ti->typeid : lua_tostring(L, 1));
  int n = lua_gettop(L) - first + 1;
  value *args = v_tuple((size_t)(n > 0 ? n : 0)), *kwds = v_dict(), *err = NULL;
  for (int i = 0; i < n; i++) {
    if (!(args->u.seq.items[i] = lx_to(L, first + i, &err))) {
      for (int k = i; k < n; k++) args->u.seq.items[k] = v_none();
      v_decref(args), v_decref(kwds);
      return raise_value(L, err);
    }
  }
  shobj *o = ti->ctor(args, kwds, &err);
  v_decref(args), v_decref(kwds);
  if (!o) return raise_value(L, err);
  push_object_owned(L, o);
  return 1;
}

/* shmgr.new(typeid, ...): a new object of a built-in typeid, e.g. shmgr.new("Lock") */
static int new_object(lua_State *L) {
  size_t n;
  const char *typeid = luaL_checklstring(L, 1, &n);
  return construct(L, registry_find(typeid, n), 2);
}

/* The boolean field `key` of the options table at index 1 (false when absent). */
static bool opt_bool(lua_State *L, const char *fn, const char *key) {
  int t = lua_getfield(L, 1, key); /* [opts, v] */
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_error(L, "%s{%s = ...}: a boolean is needed, not %s", fn, key, luaL_typename(L, -1));
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1); /* [opts] */
  return b;
}

/* shmgr.Queue{name = ..., durable = ..., redeliver = ..., maxsize = ...} (JoinableQueue
   likewise): a queue declared with the server-side options clients cannot ask for. */
static int declare_queue(lua_State *L, const char *typeid) {
  static const char *const known[] = {"name", "durable", "redeliver", "maxsize", NULL};
  char fn[32];
  snprintf(fn, sizeof fn, "shmgr.%s", typeid);
  lua_pushnil(L); /* [opts, nil]: every key must be one we know */
  while (lua_next(L, 1)) { /* [opts, key, value] */
    bool ok = lua_type(L, -2) == LUA_TSTRING;
    for (int i = 0; ok && known[i]; i++)
      if (strcmp(lua_tostring(L, -2), known[i]) == 0) goto next;
    return luaL_error(L, "%s{...}: unknown option %s (the options are name, durable, redeliver, maxsize)", fn,
                      ok ? lua_tostring(L, -2) : luaL_typename(L, -2));
  next:
    lua_pop(L, 1); /* [opts, key] */
  }
  queue_options opt = {.kind = typeid};
  opt.durable = opt_bool(L, fn, "durable");
  opt.redeliver = opt_bool(L, fn, "redeliver");
  int t = lua_getfield(L, 1, "maxsize"); /* [opts, maxsize] */
  if (t != LUA_TNIL && !lua_isinteger(L, -1)) return luaL_error(L, "%s{maxsize = ...}: an integer is needed", fn);
  opt.maxsize = t == LUA_TNIL ? 0 : (int64_t)lua_tointeger(L, -1);
  t = lua_getfield(L, 1, "name"); /* [opts, maxsize, name] */
  if (t != LUA_TNIL && t != LUA_TSTRING) return luaL_error(L, "%s{name = ...}: a string is needed", fn);
  opt.name = lua_tostring(L, -1); /* stays on the stack while used */
  value *err = NULL;
  shobj *o = queue_declare(&opt, &err);
  lua_pop(L, 2); /* [opts] */
  if (!o) return raise_value(L, err);
  push_object_owned(L, o); /* [opts, handle] */
  return 1;
}

/* shmgr.Queue(...), shmgr.Lock(), ...: upvalue 1 is the typeid */
static int new_typed(lua_State *L) {
  size_t n;
  const char *typeid = lua_tolstring(L, lua_upvalueindex(1), &n);
  bool is_queue = strcmp(typeid, "Queue") == 0 || strcmp(typeid, "JoinableQueue") == 0;
  if (is_queue && lua_gettop(L) == 1 && lua_type(L, 1) == LUA_TTABLE) {
    if (!lua_getmetatable(L, 1)) return declare_queue(L, typeid); /* a plain table: options */
    lua_pop(L, 1); /* a tagged value (shmgr.int(...)): an argument */
  }
  return construct(L, registry_find(typeid, n), 1);
}

void lx_obj_builtins(lua_State *L) {
  for (const typeinfo *ti = registry_first(); ti; ti = ti->next) {
    if (!ti->ctor || ti->typeid[0] < 'A' || ti->typeid[0] > 'Z') continue; /* shmgr.list etc. are plain values */
    lua_pushstring(L, ti->typeid);
    lua_pushcclosure(L, new_typed, 1);
    lua_setfield(L, -2, ti->typeid);
  }
}

void lx_obj_open(lua_State *L) {
  static const luaL_Reg mt[] = {{"__gc", handle_gc}, {"__index", handle_index}, {"__tostring", handle_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, HANDLE_MT); /* [api, mt] */
  luaL_setfuncs(L, mt, 0);
  lua_pushliteral(L, HANDLE_MT); /* getmetatable gives this name, not the table (see lx_value.c) */
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  lua_newtable(L);                 /* [api, ids] */
  lua_newtable(L);                 /* [api, ids, mt] */
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");   /* weak keys: a table forgotten by Lua forgets its id */
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, IDS);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LIVE);
  lua_pushcfunction(L, new_object);
  lua_setfield(L, -2, "new");
}
