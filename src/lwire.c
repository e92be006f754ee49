/* lwire.c: the Lua module shmgr.wire: the pickle codec and the handshake's HMAC, for Lua
   clients and specs. Built as a shared module (build/lua/shmgr/wire.so), not into shmgr. */
#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "auth.h"
#include "lx.h"
#include "pickle.h"

int luaopen_shmgr_wire(lua_State *L);

static int raise_value(lua_State *L, value *exc) {
  lx_push(L, exc);
  v_decref(exc);
  return lua_error(L);
}

/* wire.dumps(x [, proto]) -> the pickle of x (what a Python client would read) */
static int w_dumps(lua_State *L) {
  int proto = (int)luaL_optinteger(L, 2, 4);
  luaL_argcheck(L, proto == 4 || proto == 5, 2, "protocol 4 or 5");
  value *err = NULL, *v = lx_to(L, 1, &err);
  if (!v) return raise_value(L, err);
  buf out = {0};
  char msg[256];
  int rc = pickle_dump(&out, v, proto, msg, sizeof msg);
  v_decref(v);
  if (rc < 0) {
    buf_free(&out);
    return luaL_error(L, "%s", msg);
  }
  lua_pushlstring(L, (const char *)out.data, out.len);
  buf_free(&out);
  return 1;
}

/* wire.loads(bytes) -> the value, its protocol | nil, error message */
static int w_loads(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  pickle_limits lim = {1000, 10u << 20, NULL};
  int proto = 0;
  char msg[256];
  value *v = pickle_load((const uint8_t *)s, n, &lim, &proto, msg, sizeof msg);
  if (!v) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  lx_push(L, v);
  v_decref(v);
  lua_pushinteger(L, proto);
  return 2;
}

/* wire.answer(key, challenge) -> the response to a challenge (the bytes after #CHALLENGE#) */
static int w_answer(lua_State *L) {
  size_t kn, mn;
  const char *k = luaL_checklstring(L, 1, &kn), *m = luaL_checklstring(L, 2, &mn), *why = NULL;
  buf out = {0};
  if (!auth_answer((const uint8_t *)k, kn, (const uint8_t *)m, mn, &out, &why)) {
    buf_free(&out);
    return luaL_error(L, "%s", why);
  }
  lua_pushlstring(L, (const char *)out.data, out.len);
  buf_free(&out);
  return 1;
}

/* wire.hmac(digest, key, msg) -> the raw HMAC ("md5", "sha256", ... as OpenSSL names them) */
static int w_hmac(lua_State *L) {
  size_t kn, mn;
  const char *name = luaL_checkstring(L, 1), *k = luaL_checklstring(L, 2, &kn), *m = luaL_checklstring(L, 3, &mn);
  const EVP_MD *md = EVP_get_digestbyname(name);
  if (!md) return luaL_error(L, "unknown digest '%s'", name);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  HMAC(md, kn ? k : "", (int)kn, (const unsigned char *)m, mn, mac, &n);
  lua_pushlstring(L, (const char *)mac, n);
  return 1;
}

/* wire.token(t) -> typeid, id, address of a Token (as a #PROXY reply carries it), else nil */
static int w_token(lua_State *L) {
  value *err = NULL, *v = lx_to(L, 1, &err);
  if (!v) return raise_value(L, err);
  int n = 0;
  for (size_t i = 0; v->kind == VK_OPAQUE && i < v->u.o->nops && !n; i++) {
    const value *st = v->u.o->ops[i].a;
    if (v->u.o->ops[i].op == OPQ_BUILD && st->kind == VK_TUPLE && st->u.seq.len == 3) {
      for (int k = 0; k < 3; k++) lx_push(L, st->u.seq.items[k == 2 ? 1 : k == 1 ? 2 : 0]);
      n = 3;
    }
  }
  v_decref(v);
  if (!n) lua_pushnil(L), n = 1;
  return n;
}

/* wire.check(key, challenge, answer) -> true | false, why */
static int w_check(lua_State *L) {
  size_t kn, mn, an;
  const char *k = luaL_checklstring(L, 1, &kn), *m = luaL_checklstring(L, 2, &mn);
  const char *a = luaL_checklstring(L, 3, &an), *why = NULL;
  bool ok = auth_check_answer((const uint8_t *)k, kn, (const uint8_t *)m, mn, (const uint8_t *)a, an, &why);
  lua_pushboolean(L, ok);
  if (ok) return 1;
  lua_pushstring(L, why);
  return 2;
}

/* wire.repr(x) -> Python's repr of what x becomes */
static int w_repr(lua_State *L) {
  value *err = NULL, *v = lx_to(L, 1, &err);
  if (!v) return raise_value(L, err);
  buf out = {0};
  v_repr(&out, v);
  v_decref(v);
  lua_pushlstring(L, out.data ? (const char *)out.data : "", out.len);
  buf_free(&out);
  return 1;
}

/* wire.exception(module, name, ...) -> an exception value, as a server sends in #ERROR */
static int w_exception(lua_State *L) {
  const char *mod = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2);
  int n = lua_gettop(L) - 2;
  value *args = v_tuple((size_t)n), *err = NULL;
  for (int i = 0; i < n; i++) {
    if (!(args->u.seq.items[i] = lx_to(L, i + 3, &err))) {
      for (int k = i; k < n; k++) args->u.seq.items[k] = v_none();
      v_decref(args);
      return raise_value(L, err);
    }
  }
  value *exc = v_exception(mod, name, args);
  lx_push(L, exc);
  v_decref(exc);
  return 1;
}

/* wire.opaque_name(x) -> "module.name" of an opaque object or global, else nil */
static int w_opaque_name(lua_State *L) {
  value *err = NULL, *v = lx_to(L, 1, &err);
  if (!v) return raise_value(L, err);
  const value *g = v->kind == VK_GLOBAL ? v : v->kind == VK_OPAQUE ? v->u.o->callable : NULL;
  if (g && g->kind == VK_GLOBAL) lua_pushfstring(L, "%s.%s", g->u.g.module->u.s.data, g->u.g.name->u.s.data);
  else lua_pushnil(L);
  v_decref(v);
  return 1;
}

/* wire.args(x) -> the args tuple of an opaque object (an exception's), else nil */
static int w_args(lua_State *L) {
  value *err = NULL, *v = lx_to(L, 1, &err);
  if (!v) return raise_value(L, err);
  if (v->kind == VK_OPAQUE) lx_push(L, v->u.o->args);
  else lua_pushnil(L);
  v_decref(v);
  return 1;
}

int luaopen_shmgr_wire(lua_State *L) {
  static const luaL_Reg fns[] = {{"dumps", w_dumps}, {"loads", w_loads}, {"answer", w_answer},
                                 {"check", w_check}, {"hmac", w_hmac}, {"token", w_token}, {"repr", w_repr}, {"exception", w_exception},
                                 {"opaque_name", w_opaque_name}, {"args", w_args}, {NULL, NULL}};
  luaL_newlib(L, fns);     /* [wire] */
  lx_value_open(L);        /* adds tuple, list, dict, set, frozenset, bytes, kind, None */
  return 1;
}
