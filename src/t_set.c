/* t_set.c: the built-in set (SyncManager.set and SetProxy of Python 3.14), in C. */
#include "alloc.h"
#include "t_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "iterargs.h"
#include "seq.h"
#include "wait.h"

/* A set is one VK_SET value. It keeps insertion order, where CPython's order is that of its
   hash table (random for str from one process to the next): iteration, repr and which
   member pop() takes may differ in order, never in content. */
typedef struct pyset {
  value *s;
  size_t finger; /* where pop() looks first, so that popping all is linear */
} pyset;

/* CPython 3.14's SetProxy exposes these, in this order. */
static const char *const methods[] = {
    "__and__",  "__class_getitem__", "__contains__", "__iand__", "__ior__", "__isub__", "__iter__", "__ixor__",
    "__len__",  "__or__",            "__rand__",     "__ror__",  "__rsub__", "__rxor__", "__sub__",  "__xor__",
    "__ge__",   "__gt__",            "__le__",       "__lt__",   "add",      "clear",    "copy",     "difference",
    "difference_update", "discard",  "intersection", "intersection_update", "isdisjoint", "issubset",
    "issuperset", "pop",             "remove",       "symmetric_difference", "symmetric_difference_update",
    "union",    "update",            NULL};
static const char *const adds[] = {"__ior__", "__ixor__", "add", "symmetric_difference_update", "update",
                                   NULL}; /* refused past max_memory */

static bool setlike(const value *v) { return v->kind == VK_SET || v->kind == VK_FROZENSET; }

static value *not_implemented(void) { return v_global("builtins", "NotImplemented"); }

/* Add k (borrowed) to s: NULL or a new TypeError for an unhashable k. */
static value *add(value *s, const value *k) {
  const char *msg;
  if (dict_set(s, v_incref((value *)k), NULL, &msg) < 0) return v_exception_msg("TypeError", msg);
  return NULL;
}

static value *new_table(vkind kind) { return v_set(kind == VK_FROZENSET); }

/* A new set of the given kind with the members of the set-like v. */
static value *copy_as(const value *v, vkind kind) {
  value *r = new_table(kind), *k;
  size_t pos = 0;
  while (dict_next(v, &pos, &k, NULL)) dict_set(r, v_incref(k), NULL, NULL);
  return r;
}

/* The members of any iterable as a set (v itself when it is one): new, or NULL with *err. */
static value *to_set(const value *v, value **err) {
  if (setlike(v)) return v_incref((value *)v);
  value *pending, *items = iterargs_items(v, &pending);
  if (!items) {
    *err = pending;
    return NULL;
  }
  value *r = v_set(false);
  *err = NULL;
  for (size_t i = 0; !*err && i < items->u.seq.len; i++) *err = add(r, items->u.seq.items[i]);
  v_decref(items);
  if ((*err = iterargs_error(*err, pending))) {
    v_decref(r);
    return NULL;
  }
  return r;
}

/* k as set.__contains__, remove and discard look it up: a set is tried as a frozenset.
   New reference, or NULL with *err a TypeError for what cannot be hashed. */
static value *lookup_key(const value *k, value **err) {
  if (k->kind == VK_SET) return copy_as(k, VK_FROZENSET);
  const char *msg = v_unhashable(k);
  if (msg) {
    *err = v_exception_msg("TypeError", msg);
    return NULL;
  }
  return v_incref((value *)k);
}

/* Hashable or a new TypeError. */
static value *check_hashable(const value *k) {
  const char *msg = v_unhashable(k);
  return msg ? v_exception_msg("TypeError", msg) : NULL;
}

static bool subset(const value *a, const value *b) {
  if (dict_len(a) > dict_len(b)) return false;
  size_t pos = 0;
  value *k;
  while (dict_next(a, &pos, &k, NULL))
    if (!dict_get(b, k)) return false;
  return true;
}

/* so & other for two set-likes, as CPython builds it: the members come from the smaller
   one (from other when they are as large), in a set of the given kind. */
static value *intersect(const value *so, const value *other, vkind kind) {
  const value *big = so, *small = other;
  if (dict_len(other) > dict_len(so)) {
    big = other;
    small = so;
  }
  value *r = new_table(kind), *k;
  size_t pos = 0;
  while (dict_next(small, &pos, &k, NULL))
    if (dict_get(big, k)) dict_set(r, v_incref(k), NULL, NULL);
  return r;
}

/* so & other for any iterable other (set.intersection): new, or NULL with *err. */
static value *intersect_any(const value *so, const value *other, value **err) {
  if (setlike(other)) return intersect(so, other, VK_SET);
  value *pending, *items = iterargs_items(other, &pending), *r = v_set(false);
  *err = NULL;
  for (size_t i = 0; items && !*err && i < items->u.seq.len; i++) {
    value *k = items->u.seq.items[i];
    if (!(*err = check_hashable(k)) && dict_get(so, k)) dict_set(r, v_incref(k), NULL, NULL);
  }
  v_decref(items);
  if ((*err = iterargs_error(*err, pending))) {
    v_decref(r);
    return NULL;
  }
  return r;
}

/* so - other, in a set of the given kind. other may be any iterable. */
static value *difference(const value *so, const value *other, vkind kind, value **err) {
  value *k;
  size_t pos = 0;
  if (setlike(other) || other->kind == VK_DICT) {
    value *r = new_table(kind);
    while (dict_next(so, &pos, &k, NULL))
      if (!dict_get(other, k)) dict_set(r, v_incref(k), NULL, NULL);
    return r;
  }
  value *pending, *items = iterargs_items(other, &pending);
  if (!items) {
    *err = pending;
    return NULL;
  }
  value *r = copy_as(so, kind);
  *err = NULL;
  for (size_t i = 0; !*err && i < items->u.seq.len; i++)
    if (!(*err = check_hashable(items->u.seq.items[i]))) v_decref(dict_pop(r, items->u.seq.items[i]));
  v_decref(items);
  if ((*err = iterargs_error(*err, pending))) {
    v_decref(r);
    return NULL;
  }
  return r;
}

/* so ^ other for two set-likes, in a set of the given kind. */
static value *symmetric(const value *so, const value *other, vkind kind) {
  value *r = copy_as(so, kind), *k;
  size_t pos = 0;
  while (dict_next(other, &pos, &k, NULL)) {
    value *gone = dict_pop(r, k);
    if (gone) v_decref(gone);
    else dict_set(r, v_incref(k), NULL, NULL);
  }
  return r;
}

static value *union_of(const value *so, const value *other, vkind kind) {
  value *r = copy_as(so, kind), *k;
  size_t pos = 0;
  while (dict_next(other, &pos, &k, NULL)) dict_set(r, v_incref(k), NULL, NULL);
  return r;
}

/* Replace the members of s by those of src (stolen): what the in-place operators do. */
static void replace(pyset *ps, value *src) {
  dict_clear(ps->s);
  size_t pos = 0;
  value *k;
  while (dict_next(src, &pos, &k, NULL)) dict_set(ps->s, v_incref(k), NULL, NULL);
  v_decref(src);
  ps->finger = 0;
}

/* iter(s) as CPython 3.14's server sends it: a set_iterator pickles as iter([members]). */
static value *iter_of(const value *s) {
  value *items = v_list(dict_len(s)), *k, *args = v_tuple(1);
  size_t pos = 0;
  while (dict_next(s, &pos, &k, NULL)) list_append(items, v_incref(k));
  args->u.seq.items[0] = items;
  return v_opaque(OPQ_REDUCE, v_global("builtins", "iter"), args, NULL);
}

/* set[x] (set.__class_getitem__): a types.GenericAlias, pickled as CPython pickles one. */
static value *generic_alias(const value *x) {
  value *params;
  if (x->kind == VK_TUPLE) {
    params = v_incref((value *)x);
  } else {
    params = v_tuple(1);
    params->u.seq.items[0] = v_incref((value *)x);
  }
  value *args = v_tuple(2);
  args->u.seq.items[0] = v_global("builtins", "set");
  args->u.seq.items[1] = params;
  return v_opaque(OPQ_REDUCE, v_global("types", "GenericAlias"), args, NULL);
}

static outcome pop(pyset *ps) {
  value *s = ps->s, *k;
  if (!dict_len(s)) return out_error(v_exception_msg("KeyError", "pop from an empty set"));
  size_t pos = ps->finger;
  if (!dict_next(s, &pos, &k, NULL)) { /* wrap around, as CPython's finger does */
    pos = 0;
    dict_next(s, &pos, &k, NULL);
  }
  ps->finger = pos;
  return out_value(dict_pop(s, k));
}

/* The methods taking *others: each other in turn. */
static outcome many(pyset *ps, const char *m, value *args) {
  value *s = ps->s, *err = NULL, *r = NULL;
  size_t n = args->u.seq.len;
  bool inplace = strstr(m, "_update") || strcmp(m, "update") == 0;
  if (strcmp(m, "union") == 0 || strcmp(m, "update") == 0) {
    value *dst = inplace ? s : copy_as(s, VK_SET);
    for (size_t i = 0; !err && i < n; i++) {
      value *pending, *items = iterargs_items(args->u.seq.items[i], &pending); /* update keeps what came first */
      for (size_t j = 0; items && !err && j < items->u.seq.len; j++) err = add(dst, items->u.seq.items[j]);
      v_decref(items);
      err = iterargs_error(err, pending);
    }
    if (!inplace) r = dst;
  } else if (strncmp(m, "intersection", 12) == 0) {
    r = copy_as(s, VK_SET);
    for (size_t i = 0; r && i < n; i++) {
      value *next = intersect_any(r, args->u.seq.items[i], &err);
      v_decref(r);
      r = next;
    }
    if (r && inplace) {
      replace(ps, r);
      r = NULL;
    }
  } else if (inplace) { /* difference_update: in place, so what came before an error is gone */
    for (size_t i = 0; !err && i < n; i++) {
      const value *other = args->u.seq.items[i];
      if (setlike(other) || other->kind == VK_DICT) {
        value *next = difference(s, other, VK_SET, &err);
        replace(ps, next);
        continue;
      }
      value *pending, *items = iterargs_items(other, &pending);
      for (size_t j = 0; items && !err && j < items->u.seq.len; j++)
        if (!(err = check_hashable(items->u.seq.items[j]))) v_decref(dict_pop(s, items->u.seq.items[j]));
      v_decref(items);
      err = iterargs_error(err, pending);
    }
  } else { /* difference */
    r = copy_as(s, VK_SET);
    for (size_t i = 0; r && i < n; i++) {
      value *next = difference(r, args->u.seq.items[i], VK_SET, &err);
      v_decref(r);
      r = next;
    }
  }
  if (err) {
    if (r && r != s) v_decref(r);
    return out_error(err);
  }
  return out_value(r ? r : v_none());
}

/* The binary operators and their reflections: set-likes only, else NotImplemented. */
static outcome binary(pyset *ps, const char *m, const value *other) {
  value *s = ps->s;
  if (!setlike(other)) return out_value(not_implemented());
  bool rev = m[2] == 'r'; /* __rand__, __ror__, __rsub__, __rxor__ */
  const char *op = m + (rev ? 3 : 2); /* "and__", "or__", "sub__", "xor__" */
  const value *left = rev ? other : s, *right = rev ? s : other;
  vkind kind = rev ? (vkind)other->kind : VK_SET; /* a reflected result has the left's type */
  value *err = NULL, *r;
  if (op[0] == 'a') r = intersect(left, right, kind);
  else if (op[0] == 'o') r = union_of(left, right, kind);
  else if (op[0] == 's') r = difference(left, right, kind, &err);
  else r = symmetric(left, right, kind);
  return r ? out_value(r) : out_error(err);
}

static outcome inplace(pyset *ps, const char *m, const value *other) {
  if (!setlike(other)) return out_value(not_implemented());
  value *s = ps->s, *err = NULL, *r;
  switch (m[3]) {
  case 'o': r = union_of(s, other, VK_SET); break;
  case 'a': r = intersect(s, other, VK_SET); break;
  case 's': r = difference(s, other, VK_SET, &err); break;
  default: r = symmetric(s, other, VK_SET); break;
  }
  if (!r) return out_error(err);
  replace(ps, r);
  return out_value(copy_as(s, VK_SET)); /* CPython returns the set itself; the proxy ignores it */
}

static outcome compare(pyset *ps, const char *m, const value *other) {
  if (!setlike(other)) return out_value(not_implemented());
  const value *s = ps->s;
  bool r;
  if (m[2] == 'l') r = subset(s, other) && (m[3] == 'e' || dict_len(s) < dict_len(other));
  else r = subset(other, s) && (m[3] == 'e' || dict_len(other) < dict_len(s));
  return out_value(v_bool(r));
}

/* issubset, issuperset, isdisjoint, symmetric_difference(_update): one iterable. */
static outcome one_other(pyset *ps, const char *m, const value *other) {
  value *s = ps->s, *err = NULL;
  if (strcmp(m, "isdisjoint") == 0) {
    value *pending = NULL, *items = setlike(other) ? NULL : iterargs_items(other, &pending);
    if (!items && pending) return out_error(pending);
    bool disjoint = true;
    if (!items) {
      value *i = intersect(s, other, VK_SET);
      disjoint = dict_len(i) == 0;
      v_decref(i);
    } else {
      for (size_t j = 0; disjoint && !err && j < items->u.seq.len; j++)
        if (!(err = check_hashable(items->u.seq.items[j]))) disjoint = !dict_get(s, items->u.seq.items[j]);
      v_decref(items);
    }
    if (!disjoint) { /* the answer came before the iteration failed */
      v_decref(pending);
      pending = NULL;
    }
    err = iterargs_error(err, pending);
    return err ? out_error(err) : out_value(v_bool(disjoint));
  }
  if (strcmp(m, "issuperset") == 0 && !setlike(other)) { /* stops at the first one missing */
    value *pending, *items = iterargs_items(other, &pending);
    bool all = true;
    for (size_t j = 0; items && all && !err && j < items->u.seq.len; j++)
      if (!(err = check_hashable(items->u.seq.items[j]))) all = dict_get(s, items->u.seq.items[j]) != NULL;
    v_decref(items);
    if (!all) { /* the answer came before the iteration failed */
      v_decref(pending);
      pending = NULL;
    }
    err = iterargs_error(err, pending);
    return err ? out_error(err) : out_value(v_bool(all));
  }
  value *o = to_set(other, &err);
  if (!o) return out_error(err);
  outcome r;
  if (strcmp(m, "issubset") == 0) {
    r = out_value(v_bool(subset(s, o)));
  } else if (strcmp(m, "issuperset") == 0) {
    r = out_value(v_bool(subset(o, s)));
  } else if (strcmp(m, "symmetric_difference") == 0) {
    r = out_value(symmetric(s, o, VK_SET));
  } else {
    replace(ps, symmetric(s, o, VK_SET));
    r = out_value(v_none());
  }
  v_decref(o);
  return r;
}

static outcome set_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  pyset *ps = o->state;
  value *s = ps->s, *a[1] = {0}, *err = NULL;
  char fname[64];
  snprintf(fname, sizeof fname, "set.%s", m);
  if (strcmp(m, "__contains__") == 0 || strcmp(m, "remove") == 0 || strcmp(m, "discard") == 0) {
    if (!(err = args_one(fname, args, kwds, a))) {
      value *k = lookup_key(a[0], &err);
      if (k) {
        bool contains = m[0] == '_';
        value *found = contains ? dict_get(s, k) : dict_pop(s, k);
        if (!contains) v_decref(found);
        v_decref(k);
        if (contains) return out_value(v_bool(found != NULL));
        if (found || m[0] == 'd') return out_value(v_none());
        value *kargs = v_tuple(1);
        kargs->u.seq.items[0] = v_incref(a[0]);
        err = v_exception("builtins", "KeyError", kargs);
      }
    }
  } else if (strcmp(m, "add") == 0) {
    if (!(err = args_one(fname, args, kwds, a)) && !(err = add(s, a[0]))) return out_value(v_none());
  } else if (strcmp(m, "__len__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, a))) return out_value(v_int((int64_t)dict_len(s)));
  } else if (strcmp(m, "__iter__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, a))) return out_value(iter_of(s));
  } else if (strcmp(m, "clear") == 0) {
    if (!(err = args_noargs(fname, args, kwds))) {
      dict_clear(s);
      ps->finger = 0;
      return out_value(v_none());
    }
  } else if (strcmp(m, "copy") == 0) {
    if (!(err = args_noargs(fname, args, kwds))) return out_value(copy_as(s, VK_SET));
  } else if (strcmp(m, "pop") == 0) {
    if (!(err = args_noargs(fname, args, kwds))) return pop(ps);
  } else if (strcmp(m, "__class_getitem__") == 0) {
    if (!(err = args_one(fname, args, kwds, a))) return out_value(generic_alias(a[0]));
  } else if (strcmp(m, "union") == 0 || strcmp(m, "update") == 0 || strncmp(m, "intersection", 12) == 0 ||
             strncmp(m, "difference", 10) == 0) {
    if (!(err = args_positional(fname, 0, SIZE_MAX, false, args, kwds, NULL))) return many(ps, m, args);
  } else if (strcmp(m, "isdisjoint") == 0 || strcmp(m, "issubset") == 0 || strcmp(m, "issuperset") == 0 ||
             strncmp(m, "symmetric_difference", 20) == 0) {
    if (!(err = args_one(fname, args, kwds, a))) return one_other(ps, m, a[0]);
  } else if (strcmp(m, "__le__") == 0 || strcmp(m, "__lt__") == 0 || strcmp(m, "__ge__") == 0 ||
             strcmp(m, "__gt__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return compare(ps, m, a[0]);
  } else if (strcmp(m, "__ior__") == 0 || strcmp(m, "__iand__") == 0 || strcmp(m, "__isub__") == 0 ||
             strcmp(m, "__ixor__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return inplace(ps, m, a[0]);
  } else if (strcmp(m, "__and__") == 0 || strcmp(m, "__or__") == 0 || strcmp(m, "__sub__") == 0 ||
             strcmp(m, "__xor__") == 0 || strcmp(m, "__rand__") == 0 || strcmp(m, "__ror__") == 0 ||
             strcmp(m, "__rsub__") == 0 || strcmp(m, "__rxor__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return binary(ps, m, a[0]);
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "'set' object has no attribute '%.100s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void set_free(shobj *o) {
  pyset *ps = o->state;
  v_decref(ps->s);
  free(ps);
}

static void set_repr(const shobj *o, buf *out) { v_repr(out, ((pyset *)o->state)->s); }

static value *set_getvalue(shobj *o, value **err) {
  (void)err;
  return copy_as(((pyset *)o->state)->s, VK_SET);
}

static void set_info(const shobj *o, obj_info *out) { out->size = (int64_t)dict_len(((const pyset *)o->state)->s); }

const otype set_type = {
    .name = "set",
    .methods = methods,
    .adds = adds,
    .call = set_call,
    .free = set_free,
    .repr = set_repr,
    .getvalue = set_getvalue,
    .info = set_info,
};

shobj *set_create(value *args, value *kwds, value **err) {
  value *a[1] = {0};
  if ((*err = args_positional("set", 0, 1, false, args, kwds, a))) return NULL;
  value *s = v_set(false);
  if (a[0]) {
    value *pending, *items = iterargs_items(a[0], &pending);
    *err = NULL;
    for (size_t i = 0; items && !*err && i < items->u.seq.len; i++) *err = add(s, items->u.seq.items[i]);
    v_decref(items);
    if ((*err = iterargs_error(*err, pending))) {
      v_decref(s);
      return NULL;
    }
  }
  pyset *ps = xcalloc(1, sizeof *ps);
  ps->s = s;
  return obj_new(&set_type, ps, 0);
}
