/* lx_value.c: values <-> Lua: natural Lua values where nothing is lost, userdata elsewhere. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "lx.h"
#include "ptrmap.h"

#define VALUE_MT "shmgr.value"
#define MAX_TABLE_DEPTH 200 /* a Lua table nested deeper cannot go to Python */

typedef struct lv {
  value *v; /* one reference; NULL once collected (a finalizer may still reach it) */
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

/* Push an empty shmgr.value userdata: made before the value it will hold, so that a memory
   error raised here leaves no reference behind. */
static lv *new_ud(lua_State *L) {
  lv *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->v = NULL;
  luaL_setmetatable(L, VALUE_MT);
  return u;
}

static void push_ud(lua_State *L, value *v) {
  lv *u = new_ud(L); /* first, in a statement of its own: it may raise, and then v is not held */
  u->v = v_incref(v);
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

/* A reference a push may leave behind: a push raises when Lua is out of memory, and the
   caller's value must not leak then. The next call lets go of it (at most one waits). One
   slot is enough because no push runs inside another: the collector a push may trigger runs
   no Lua code (scripts cannot set __gc, see lx.c), only the C finalizers, which push nothing. */
static value *pushing;

void lx_push_owned(lua_State *L, value *v) {
  v_decref(pushing);
  pushing = v;
  lx_push(L, v);
  pushing = NULL;
  v_decref(v);
}

int lx_raise(lua_State *L, value *err) {
  lx_push_owned(L, err);
  return lua_error(L);
}

/* A buffer for text on its way to Lua (a repr), reused: if the push raises it is not lost. */
buf *lx_scratch(void) {
  static buf text;
  if (text.cap > (1u << 16)) buf_free(&text); /* keep a small one only */
  buf_clear(&text);
  return &text;
}

/* ---- Lua values to values: lx_to ---- */

/* One conversion. lx_to runs where no Lua error may be raised (on a coroutine that has just
   ended, outside any protected call): it reads tables raw, so no metamethod runs, and grows
   the stack with lua_checkstack, which fails instead of raising. The tables met so far map to
   the values they became, so that a table met twice becomes one value met twice (Lua's shared
   structure is kept, and is converted once, not once per path through it) and a table met
   inside itself becomes a container holding itself. Its memory is kept between conversions,
   emptied after each. A table's number is 0 until its value is made, then that value
   (borrowed: its parent holds it) ^ SCRAMBLE: left in place after the conversion, a plain
   pointer would look like a live reference to a leak checker and hide a value that leaked.
   Its low bit (0 in an aligned pointer and in SCRAMBLE) is OPEN while the table is still
   being filled: meeting it again is a cycle. */
static ptrmap tmemo;
#define SCRAMBLE ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)
#define OPEN ((size_t)1)

typedef struct conv {
  lua_State *L;
  bool cyclic; /* some table was met inside itself: the result needs v_track_cycles */
  value *err;  /* the exception, when the conversion failed */
} conv;

static value *fail(conv *c, const char *cls, const char *msg) {
  if (!c->err) c->err = v_exception_msg(cls, msg);
  return NULL;
}

static value *cannot(conv *c, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "a Lua %s cannot be sent to Python", what);
  return fail(c, "TypeError", msg);
}

/* Is the table at t a sequence, its keys exactly 1..n? (*n: how many keys it has.) Raw. */
static bool is_sequence(lua_State *L, int t, lua_Integer *n) {
  lua_Integer count = 0, max = 0;
  bool positive = true; /* every key an integer >= 1 */
  lua_pushnil(L); /* [.., nil] */
  while (lua_next(L, t)) { /* [.., k, v] */
    lua_pop(L, 1);         /* [.., k] */
    count++;
    if (positive && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    } else {
      positive = false;
    }
  } /* [..] */
  *n = count;
  return positive && max == count; /* count distinct keys in 1..max fill it */
}

static value *to_value(conv *c, int idx, int depth);

/* Let go of a container being filled: what it holds may hold it again (a cycle). */
static value *drop(value *x) {
  v_decref_many(&x, 1);
  return NULL;
}

static value *table_to_value(conv *c, int t, int depth) {
  lua_State *L = c->L;
  bool added;
  size_t *s = ptrmap_put(&tmemo, lua_topointer(L, t), 0, &added);
  if (*s) { /* met before: the same value again */
    if (*s & OPEN) c->cyclic = true;
    return v_incref((value *)((*s & ~OPEN) ^ SCRAMBLE));
  }
  if (depth > MAX_TABLE_DEPTH) {
    char msg[120];
    snprintf(msg, sizeof msg, "a Lua table nested deeper than %d cannot be sent to Python", MAX_TABLE_DEPTH);
    return fail(c, "ValueError", msg);
  }
  if (!lua_checkstack(L, 4)) return fail(c, "MemoryError", "no room on the Lua stack to convert a table");
  lua_Integer n;
  bool seq = is_sequence(L, t, &n);
  value *x = seq ? v_list((size_t)n) : v_dict();
  *s = ((uintptr_t)x ^ SCRAMBLE) | OPEN; /* s stays valid until the next ptrmap_put */
  if (seq) {
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, t, i); /* [.., item] */
      value *item = to_value(c, lua_gettop(L), depth + 1);
      lua_pop(L, 1);        /* [..] */
      if (!item) return drop(x);
      list_append(x, item);
    }
  } else {
    /* Every check comes before dict_set, which would drop what it refuses without looking for
       cycles: a table key can never be hashed (a list or dict), a userdata key may not be,
       and a boolean or userdata key may equal another key (1 and true, 0 and false, two
       equal tuples), where Python would keep one entry of two. */
    lua_pushnil(L); /* [.., nil] */
    while (lua_next(L, t)) { /* [.., k, v] */
      int kt = lua_type(L, -2);
      if (kt == LUA_TTABLE) {
        lua_Integer unused;
        bool list = is_sequence(L, lua_absindex(L, -2), &unused);
        return lua_pop(L, 2), drop(x), fail(c, "TypeError", list ? "unhashable type: 'list'" : "unhashable type: 'dict'");
      }
      value *k = to_value(c, lua_gettop(L) - 1, depth + 1);
      value *v = k ? to_value(c, lua_gettop(L), depth + 1) : NULL;
      lua_pop(L, 1); /* [.., k]: where the traversal goes on from */
      const char *why = v && kt == LUA_TUSERDATA ? v_unhashable(k) : NULL;
      bool twice = v && !why && (kt == LUA_TBOOLEAN || kt == LUA_TUSERDATA) && dict_get(x, k);
      if (!v || why || twice) {
        lua_pop(L, 1);
        drop(k), drop(v), drop(x);
        if (why) return fail(c, "TypeError", why);
        if (twice) return fail(c, "ValueError", "a Lua table whose keys are equal in Python (such as 1 and true) cannot be sent to Python");
        return NULL;
      }
      dict_set(x, k, v, &why); /* cannot fail now */
    } /* [..] */
  }
  *ptrmap_get(&tmemo, lua_topointer(L, t)) &= ~OPEN;
  return x;
}

static value *to_value(conv *c, int idx, int depth) {
  switch (lua_type(c->L, idx)) {
  case LUA_TNIL: case LUA_TNONE: return v_none();
  case LUA_TBOOLEAN: return v_bool(lua_toboolean(c->L, idx));
  case LUA_TNUMBER:
    return lua_isinteger(c->L, idx) ? v_int(lua_tointeger(c->L, idx)) : v_float(lua_tonumber(c->L, idx));
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(c->L, idx, &n);
    return utf8_valid((const unsigned char *)s, n) ? v_str(s, n) : v_bytes(s, n);
  }
  case LUA_TTABLE: return table_to_value(c, idx, depth);
  case LUA_TUSERDATA: {
    lv *u = luaL_testudata(c->L, idx, VALUE_MT); /* needs two stack slots: lx_to's and ours */
    if (u && u->v) return v_incref(u->v);
    if (u) return fail(c, "ValueError", "a shmgr value used after it was collected (by a finalizer?)");
    return cannot(c, "shared object (storing proxies comes with nested shared objects)");
  }
  default:
    return cannot(c, luaL_typename(c->L, idx));
  }
}

value *lx_to(lua_State *L, int idx, value **err) {
  conv c = {.L = L};
  idx = lua_absindex(L, idx);
  *err = NULL;
  if (!lua_checkstack(L, 2)) return *err = v_exception_msg("MemoryError", "no room on the Lua stack"), NULL;
  value *v = to_value(&c, idx, 0);
  ptrmap_trim(&tmemo, 64); /* emptying a big table costs more than making one anew */
  ptrmap_clear(&tmemo);
  if (v && c.cyclic) v_track_cycles(v);
  *err = c.err;
  return v;
}

/* ---- the shmgr.value userdata: read, and for lists and dicts write, from Lua ---- */

/* The value of the userdata at idx; a Lua error if it is none, or was collected already (a
   finalizer can reach a userdata whose own finalizer has run). */
static value *checkv(lua_State *L, int idx) {
  value *v = ((lv *)luaL_checkudata(L, idx, VALUE_MT))->v;
  if (!v) luaL_error(L, "a shmgr value used after it was collected (by a finalizer?)");
  return v;
}

static int raise(lua_State *L, value *err) { return lx_raise(L, err); }

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
    bool cycle = v_reaches(x, v); /* then Lua is making v hold itself: a cycle to track */
    if ((size_t)i == v->u.seq.len + 1) list_append(v, x);
    else v_decref(v->u.seq.items[i - 1]), v->u.seq.items[i - 1] = x;
    if (cycle) v_track_cycles(v); /* (walking x, not v: filling a list stays linear) */
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
    bool cycle = v_reaches(x, v) || v_reaches(k, v); /* a key can hold v too (inside an object) */
    if (dict_set(v, k, x, &why) < 0) return luaL_error(L, "%s", why);
    if (cycle) v_track_cycles(v);
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
    if (lua_isnil(L, -1)) lua_pop(L, 1), push_ud(L, k); /* a None key: nil would end the loop */
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
  buf *text = lx_scratch();
  v_repr(text, checkv(L, 1));
  lua_pushlstring(L, text->data ? (const char *)text->data : "", text->len);
  return 1;
}

/* a == b: Python's ==. Lua asks only when both are userdata; a shared object's handle is
   never equal to a value. */
static int mt_eq(lua_State *L) {
  lv *a = luaL_testudata(L, 1, VALUE_MT), *b = luaL_testudata(L, 2, VALUE_MT);
  if (!a || !b) return lua_pushboolean(L, 0), 1;
  lua_pushboolean(L, v_eq(checkv(L, 1), checkv(L, 2)));
  return 1;
}

/* ---- constructors for what Lua has no natural form of ---- */

/* Build a sequence kind from the arguments (tuple) or from a table's items (list). */
static int make_tuple(lua_State *L) {
  int n = lua_gettop(L);
  lv *u = new_ud(L); /* first: nothing raises after the tuple is made */
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
  u->v = t;
  return 1;
}

/* shmgr.list(t) / shmgr.dict(t) / shmgr.set(t) / shmgr.frozenset(t): from a Lua table. */
static int make_from_table(lua_State *L, vkind kind) {
  value *err = NULL, *r;
  bool empty = lua_isnoneornil(L, 1);
  if (!empty) luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lv *u = new_ud(L); /* [t, u] first: nothing raises after the value is made */
  if (empty) {
    r = kind == VK_LIST ? v_list(0) : kind == VK_DICT ? v_dict() : v_set(kind == VK_FROZENSET);
  } else {
    value *src = lx_to(L, 1, &err);
    if (!src) return raise(L, err);
    if (kind == VK_LIST || kind == VK_DICT) {
      if (src->kind == kind) r = src;
      else if (kind == VK_DICT) { /* a sequence (or empty) table reads as a list: its keys are 1..n */
        r = v_dict();
        for (size_t i = 0; i < src->u.seq.len; i++) dict_set(r, v_int((int64_t)i + 1), v_incref(src->u.seq.items[i]), NULL);
        v_decref(src);
      }
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
  u->v = r;
  return 1;
}
static int make_list(lua_State *L) { return make_from_table(L, VK_LIST); }
static int make_dict(lua_State *L) { return make_from_table(L, VK_DICT); }
static int make_set(lua_State *L) { return make_from_table(L, VK_SET); }
static int make_frozenset(lua_State *L) { return make_from_table(L, VK_FROZENSET); }

static int make_bytes(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lv *u = new_ud(L);
  u->v = v_bytes(s, n);
  return 1;
}

/* shmgr.kind(x): the Python type name of what x becomes ("int", "tuple", ...). */
static int kind_of(lua_State *L) {
  luaL_checkany(L, 1);
  lv *u = new_ud(L); /* holds the value while its name is pushed, which may raise */
  value *err;
  if (!(u->v = lx_to(L, 1, &err))) return raise(L, err);
  lua_pushstring(L, v_typename(u->v));
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
  lua_pushliteral(L, "shmgr.value"); /* what getmetatable gives: a script that could change it */
  lua_setfield(L, -2, "__metatable"); /* could make every value leak (__gc) or lie (__index) */
  lua_pop(L, 1); /* [api] */
  luaL_setfuncs(L, api, 0);
  lv *u = new_ud(L);
  u->v = v_none(); /* None where Lua's nil cannot stand: inside tables */
  lua_setfield(L, -2, "None");
}
