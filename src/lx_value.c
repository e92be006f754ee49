/* lx_value.c: values <-> Lua: natural Lua values where nothing is lost, userdata elsewhere. */
#include <lauxlib.h>
#include <string.h>

#include "lx.h"

#define VALUE_MT "shmgr.value"
#define MAX_TABLE_DEPTH 200 /* a Lua table nested deeper (or a cycle) cannot go to Python */

typedef struct lv {
  value *v; /* one reference */
} lv;

/* Strict UTF-8: what a Python str is, so a Lua string that passes becomes a str again. */
static bool utf8_valid(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || i + len > n) return false;
    unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    static const unsigned minimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minimum[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

static void push_ud(lua_State *L, value *v) {
  lv *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->v = v_incref(v);
  luaL_setmetatable(L, VALUE_MT);
}

void lx_push(lua_State *L, value *v) {
  switch (v->kind) {
  case VK_NONE: lua_pushnil(L); break;
  case VK_BOOL: lua_pushboolean(L, v->u.b); break;
  case VK_INT: lua_pushinteger(L, v->u.i); break;
  case VK_FLOAT: lua_pushnumber(L, v->u.f); break;
  case VK_STR:
    /* a str with lone surrogates would come back as bytes: keep it wrapped instead */
    if (utf8_valid((const unsigned char *)v->u.s.data, v->u.s.len)) lua_pushlstring(L, v->u.s.data, v->u.s.len);
    else push_ud(L, v);
    break;
  default: push_ud(L, v);
  }
}

static value *cannot(const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "a Lua %s cannot be sent to Python", what);
  return v_exception_msg("TypeError", msg);
}

/* A table is a sequence when its keys are exactly 1..n. */
static bool is_sequence(lua_State *L, int t, lua_Integer *n) {
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return false;
    }
    count++;
  }
  *n = count;
  return luaL_len(L, t) == count && (count == 0 || (lua_geti(L, t, count), lua_pop(L, 1), true));
}

static value *to_value(lua_State *L, int idx, int depth, value **err);

static value *table_to_value(lua_State *L, int t, int depth, value **err) {
  if (depth > MAX_TABLE_DEPTH) {
    *err = v_exception_msg("ValueError", "a Lua table nested too deeply (or containing itself) cannot be sent to Python");
    return NULL;
  }
  luaL_checkstack(L, 4, "table_to_value");
  lua_Integer n;
  if (is_sequence(L, t, &n)) {
    value *list = v_list((size_t)n);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, t, i);
      value *item = to_value(L, lua_gettop(L), depth + 1, err);
      lua_pop(L, 1);
      if (!item) return v_decref(list), NULL;
      list_append(list, item);
    }
    return list;
  }
  value *d = v_dict();
  lua_pushnil(L);
  while (lua_next(L, t)) { /* [.., k, v] */
    value *k = to_value(L, lua_gettop(L) - 1, depth + 1, err);
    value *v = k ? to_value(L, lua_gettop(L), depth + 1, err) : NULL;
    lua_pop(L, 1);
    const char *why;
    if (!v || dict_set(d, k, v, &why) < 0) {
      if (!v) v_decref(k);
      else *err = v_exception_msg("TypeError", why);
      lua_pop(L, 1);
      return v_decref(d), NULL;
    }
  }
  return d;
}

static value *to_value(lua_State *L, int idx, int depth, value **err) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: case LUA_TNONE: return v_none();
  case LUA_TBOOLEAN: return v_bool(lua_toboolean(L, idx));
  case LUA_TNUMBER: return lua_isinteger(L, idx) ? v_int(lua_tointeger(L, idx)) : v_float(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return utf8_valid((const unsigned char *)s, n) ? v_str(s, n) : v_bytes(s, n);
  }
  case LUA_TTABLE: return table_to_value(L, lua_absindex(L, idx), depth, err);
  case LUA_TUSERDATA: {
    lv *u = luaL_testudata(L, idx, VALUE_MT);
    if (u) return v_incref(u->v);
    *err = cannot("shared object (storing proxies comes with nested shared objects)");
    return NULL;
  }
  default:
    *err = cannot(luaL_typename(L, idx));
    return NULL;
  }
}

value *lx_to(lua_State *L, int idx, value **err) {
  *err = NULL;
  return to_value(L, lua_absindex(L, idx), 0, err);
}

/* ---- the shmgr.value userdata: read, and for lists and dicts write, from Lua ---- */

static value *checkv(lua_State *L, int idx) { return ((lv *)luaL_checkudata(L, idx, VALUE_MT))->v; }

/* Raise the exception err (stolen) as a Lua error. */
static int raise(lua_State *L, value *err) {
  lx_push(L, err);
  v_decref(err);
  return lua_error(L);
}

static int mt_gc(lua_State *L) {
  lv *u = luaL_checkudata(L, 1, VALUE_MT);
  v_decref(u->v);
  u->v = NULL;
  return 0;
}

static int mt_index(lua_State *L) {
  value *v = checkv(L, 1), *err;
  if (v->kind == VK_TUPLE || v->kind == VK_LIST) {
    lua_Integer i = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    if (i >= 1 && (size_t)i <= v->u.seq.len) lx_push(L, v->u.seq.items[i - 1]);
    else lua_pushnil(L);
    return 1;
  }
  if (v->kind == VK_DICT || v->kind == VK_SET || v->kind == VK_FROZENSET) {
    value *k = lx_to(L, 2, &err);
    if (!k) return raise(L, err);
    value *found = dict_get(v, k);
    v_decref(k);
    if (!found) lua_pushnil(L);
    else if (v->kind == VK_DICT) lx_push(L, found);
    else lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

static int mt_newindex(lua_State *L) {
  value *v = checkv(L, 1), *err;
  if (v->kind == VK_LIST) {
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (size_t)i > v->u.seq.len + 1) return luaL_error(L, "list index %d out of range 1..%d", (int)i, (int)v->u.seq.len + 1);
    value *x = lx_to(L, 3, &err);
    if (!x) return raise(L, err);
    if ((size_t)i == v->u.seq.len + 1) list_append(v, x);
    else v_decref(v->u.seq.items[i - 1]), v->u.seq.items[i - 1] = x;
    if (x->kind >= VK_TUPLE) v_track_cycles(v); /* Lua may have made v hold itself */
    return 0;
  }
  if (v->kind == VK_DICT) {
    value *k = lx_to(L, 2, &err);
    if (!k) return raise(L, err);
    if (lua_isnil(L, 3)) {
      v_decref(dict_pop(v, k));
      v_decref(k);
      return 0;
    }
    value *x = lx_to(L, 3, &err);
    const char *why;
    if (!x) return v_decref(k), raise(L, err);
    bool container = x->kind >= VK_TUPLE;
    if (dict_set(v, k, x, &why) < 0) return luaL_error(L, "%s", why);
    if (container) v_track_cycles(v); /* Lua may have made v hold itself */
    return 0;
  }
  return luaL_error(L, "a %s cannot be changed from Lua", v_typename(v));
}

static int mt_len(lua_State *L) {
  value *v = checkv(L, 1);
  switch (v->kind) {
  case VK_TUPLE: case VK_LIST: lua_pushinteger(L, (lua_Integer)v->u.seq.len); break;
  case VK_DICT: case VK_SET: case VK_FROZENSET: lua_pushinteger(L, (lua_Integer)dict_len(v)); break;
  case VK_STR: case VK_BYTES: case VK_BYTEARRAY: lua_pushinteger(L, (lua_Integer)v->u.s.len); break;
  default: return luaL_error(L, "a %s has no length", v_typename(v));
  }
  return 1;
}

/* The iterator pairs() returns: upvalue 1 is the next position. */
static int iter_next(lua_State *L) {
  value *v = checkv(L, 1);
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(1));
  if (v->kind == VK_TUPLE || v->kind == VK_LIST) {
    if ((size_t)pos >= v->u.seq.len) return 0;
    lua_pushinteger(L, pos + 1);
    lx_push(L, v->u.seq.items[pos]);
    if (lua_isnil(L, -1)) lua_pop(L, 1), push_ud(L, v->u.seq.items[pos]); /* nil would end the loop */
  } else {
    size_t p = (size_t)pos;
    value *k, *x;
    if (!dict_next(v, &p, &k, &x)) return 0;
    pos = (lua_Integer)p - 1; /* stored +1 below */
    lx_push(L, k);
    if (x) lx_push(L, x);
    else lua_pushboolean(L, 1);
  }
  lua_pushinteger(L, pos + 1);
  lua_replace(L, lua_upvalueindex(1));
  return 2;
}

static int mt_pairs(lua_State *L) {
  value *v = checkv(L, 1);
  if (v->kind != VK_TUPLE && v->kind != VK_LIST && v->kind != VK_DICT && v->kind != VK_SET && v->kind != VK_FROZENSET)
    return luaL_error(L, "a %s cannot be iterated", v_typename(v));
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, iter_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int mt_tostring(lua_State *L) {
  buf text = {0};
  v_repr(&text, checkv(L, 1));
  lua_pushlstring(L, text.data ? (const char *)text.data : "", text.len);
  buf_free(&text);
  return 1;
}

static int mt_eq(lua_State *L) {
  lua_pushboolean(L, v_eq(checkv(L, 1), checkv(L, 2)));
  return 1;
}

/* ---- constructors for what Lua has no natural form of ---- */

/* Build a sequence kind from the arguments (tuple) or from a table's items (list). */
static int make_tuple(lua_State *L) {
  int n = lua_gettop(L);
  value *t = v_tuple((size_t)n), *err = NULL;
  for (int i = 1; i <= n; i++) {
    value *x = lx_to(L, i, &err);
    if (!x) {
      for (int k = i; k <= n; k++) t->u.seq.items[k - 1] = v_none();
      v_decref(t);
      return raise(L, err);
    }
    t->u.seq.items[i - 1] = x;
  }
  push_ud(L, t);
  v_decref(t);
  return 1;
}

/* shmgr.list(t) / shmgr.dict(t) / shmgr.set(t) / shmgr.frozenset(t): from a Lua table. */
static int make_from_table(lua_State *L, vkind kind) {
  value *err = NULL, *r;
  if (lua_isnoneornil(L, 1)) {
    r = kind == VK_LIST ? v_list(0) : kind == VK_DICT ? v_dict() : v_set(kind == VK_FROZENSET);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    value *src = lx_to(L, 1, &err);
    if (!src) return raise(L, err);
    if (kind == VK_LIST || kind == VK_DICT) {
      if (src->kind == kind) r = src;
      else if (kind == VK_DICT) r = v_dict(), v_decref(src); /* an empty table reads as a list */
      else return v_decref(src), luaL_error(L, "shmgr.list wants a sequence");
    } else {
      if (src->kind != VK_LIST) return v_decref(src), luaL_error(L, "shmgr.set wants a sequence of items");
      r = v_set(kind == VK_FROZENSET);
      const char *why;
      for (size_t i = 0; i < src->u.seq.len; i++)
        if (dict_set(r, v_incref(src->u.seq.items[i]), NULL, &why) < 0) return v_decref(src), v_decref(r), luaL_error(L, "%s", why);
      v_decref(src);
    }
  }
  push_ud(L, r);
  v_decref(r);
  return 1;
}
static int make_list(lua_State *L) { return make_from_table(L, VK_LIST); }
static int make_dict(lua_State *L) { return make_from_table(L, VK_DICT); }
static int make_set(lua_State *L) { return make_from_table(L, VK_SET); }
static int make_frozenset(lua_State *L) { return make_from_table(L, VK_FROZENSET); }

static int make_bytes(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  value *v = v_bytes(s, n);
  push_ud(L, v);
  v_decref(v);
  return 1;
}

/* shmgr.kind(x): the Python type name of what x becomes ("int", "tuple", ...). */
static int kind_of(lua_State *L) {
  value *err, *v = lx_to(L, 1, &err);
  if (!v) return raise(L, err);
  lua_pushstring(L, v_typename(v));
  v_decref(v);
  return 1;
}

void lx_value_open(lua_State *L) {
  static const luaL_Reg mt[] = {{"__gc", mt_gc}, {"__index", mt_index}, {"__newindex", mt_newindex},
                                {"__len", mt_len}, {"__pairs", mt_pairs}, {"__tostring", mt_tostring},
                                {"__eq", mt_eq}, {NULL, NULL}};
  static const luaL_Reg api[] = {{"tuple", make_tuple}, {"list", make_list}, {"dict", make_dict},
                                 {"set", make_set}, {"frozenset", make_frozenset}, {"bytes", make_bytes},
                                 {"kind", kind_of}, {NULL, NULL}};
  luaL_newmetatable(L, VALUE_MT); /* [api, mt] */
  luaL_setfuncs(L, mt, 0);
  lua_pushliteral(L, "shmgr.value");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1); /* [api] */
  luaL_setfuncs(L, api, 0);
  value *none = v_none();
  push_ud(L, none); /* None where Lua's nil cannot stand: inside tables */
  v_decref(none);
  lua_setfield(L, -2, "None");
}
