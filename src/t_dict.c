/* t_dict.c: the built-in dict (SyncManager.dict, DictProxy), in C. */
#include "alloc.h"
#include "t_dict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "iterargs.h"
#include "seq.h"
#include "t_iterator.h"
#include "wait.h"

/* A dict is one VK_DICT value (o->state) that lives as long as the object: iterators hold
   it and watch its size. */

/* CPython 3.14's DictProxy exposes these, in this order ('__iter__' comes again at the end
   of what create returns, from method_to_typeid). */
static const char *const methods[] = {"__contains__", "__delitem__", "__getitem__", "__ior__", "__iter__",
                                      "__len__",      "__or__",      "__reversed__", "__ror__", "__setitem__",
                                      "clear",        "copy",        "fromkeys",    "get",     "items",
                                      "keys",         "pop",         "popitem",     "setdefault", "update",
                                      "values",       NULL};
static const char *const adds[] = {"__ior__", "__setitem__", "setdefault", "update", NULL}; /* refused past max_memory */

static value *dict_of_obj(const shobj *o) { return o->state; }

static value *exc_with(const char *name, const value *arg) {
  value *args = v_tuple(1);
  args->u.seq.items[0] = v_incref((value *)arg);
  return v_exception("builtins", name, args);
}

/* TypeError("unhashable type: 'list'") when key cannot be a key, else NULL. */
static value *check_hashable(const value *key) {
  const char *msg = v_unhashable(key);
  return msg ? v_exception_msg("TypeError", msg) : NULL;
}

/* d[k] = v, both borrowed; NULL or a new TypeError. */
static value *store(value *d, const value *k, const value *v) {
  const char *msg;
  if (dict_set(d, v_incref((value *)k), v_incref((value *)v), &msg) < 0) return v_exception_msg("TypeError", msg);
  return NULL;
}

static value *copy_of(const value *d) {
  value *r = v_dict(), *k, *v;
  size_t pos = 0;
  while (dict_next(d, &pos, &k, &v)) dict_set(r, v_incref(k), v_incref(v), NULL);
  return r;
}

static bool made_by(const value *v, const char *module, const char *name) {
  if (v->kind != VK_OPAQUE || v->u.o->how != OPQ_REDUCE) return false;
  const value *g = v->u.o->callable;
  return g->kind == VK_GLOBAL && v_is_str(g->u.g.module, module) && v_is_str(g->u.g.name, name) && v->u.o->args &&
         v->u.o->args->kind == VK_TUPLE;
}

/* Merge a mapping other into d when other is one (*handled), as PyDict_Merge would. */
static value *merge_mapping(value *d, const value *other, bool *handled) {
  *handled = true;
  value *k, *v, *err = NULL;
  size_t pos = 0;
  if (other->kind == VK_DICT) {
    while (!err && dict_next(other, &pos, &k, &v)) err = store(d, k, v);
    return err;
  }
  if (other->kind == VK_OPAQUE && other->u.o->shared && other->u.o->shared->type == &dict_type)
    return merge_mapping(d, dict_of_obj(other->u.o->shared), handled);
  bool counter = made_by(other, "collections", "Counter");
  if (counter || made_by(other, "collections", "OrderedDict") || made_by(other, "collections", "defaultdict")) {
    const opaque *o = other->u.o;
    if (counter && o->args->u.seq.len && (err = dict_merge(d, o->args->u.seq.items[0]))) return err;
    for (size_t i = 0; !err && i < o->nops; i++)
      if (o->ops[i].op == OPQ_SETITEM) err = store(d, o->ops[i].a, o->ops[i].b);
    return err;
  }
  *handled = false;
  return NULL;
}

value *dict_merge(value *d, const value *other) {
  bool handled;
  value *err = merge_mapping(d, other, &handled);
  if (handled) return err;
  value *pending, *items = iterargs_items(other, &pending); /* update keeps the pairs before an error */
  if (!items) return pending;
  for (size_t i = 0; !err && i < items->u.seq.len; i++) {
    value *pair = iterargs_items(items->u.seq.items[i], &err);
    char msg[160];
    if (err) { /* PySequence_Fast's TypeErrors are said so; shmgr's refusals and limits as they are */
      if (seq_is_error(err, "TypeError") && (pair || iterargs_not_iterable(items->u.seq.items[i], err))) {
        v_decref(err);
        snprintf(msg, sizeof msg, "cannot convert dictionary update sequence element #%zu to a sequence", i);
        err = v_exception_msg("TypeError", msg);
      }
    } else if (pair->u.seq.len != 2) {
      snprintf(msg, sizeof msg, "dictionary update sequence element #%zu has length %zu; 2 is required", i,
               pair->u.seq.len);
      err = v_exception_msg("ValueError", msg);
    } else {
      err = store(d, pair->u.seq.items[0], pair->u.seq.items[1]);
    }
    v_decref(pair);
  }
  v_decref(items);
  return iterargs_error(err, pending);
}

/* What dict views become in replies: managers.py pickles them as builtins.list([...]). */
static value *as_list_recipe(value *list) {
  value *args = v_tuple(1);
  args->u.seq.items[0] = list;
  return v_opaque(OPQ_REDUCE, v_global("builtins", "list"), args, NULL);
}

/* keys (0), values (1) or items (2) of d, as a new list. */
static value *view(const value *d, int which) {
  value *l = v_list(dict_len(d)), *k, *v;
  size_t pos = 0;
  while (dict_next(d, &pos, &k, &v)) {
    if (which == 2) {
      value *t = v_tuple(2);
      t->u.seq.items[0] = v_incref(k);
      t->u.seq.items[1] = v_incref(v);
      list_append(l, t);
    } else {
      list_append(l, v_incref(which ? v : k));
    }
  }
  return l;
}

/* reversed(d) as CPython pickles a dict_reversekeyiterator: iter([keys, last first]). */
static value *reversed_keys(const value *d) {
  value *keys = view(d, 0);
  for (size_t i = 0, j = keys->u.seq.len; i + 1 < j; i++, j--) {
    value *t = keys->u.seq.items[i];
    keys->u.seq.items[i] = keys->u.seq.items[j - 1];
    keys->u.seq.items[j - 1] = t;
  }
  value *args = v_tuple(1);
  args->u.seq.items[0] = keys;
  return v_opaque(OPQ_REDUCE, v_global("builtins", "iter"), args, NULL);
}

static outcome lookup(value *d, const value *key, const value *dflt, bool key_error) {
  value *err = check_hashable(key);
  if (err) return out_error(err);
  value *v = dict_get(d, key);
  if (v) return out_value(v_incref(v));
  if (key_error) return out_error(exc_with("KeyError", key));
  return out_value(dflt ? v_incref((value *)dflt) : v_none());
}

static outcome pop(value *d, value *const a[2]) {
  if (!dict_len(d)) { /* CPython answers an empty dict before hashing the key */
    if (a[1]) return out_value(v_incref(a[1]));
    return out_error(exc_with("KeyError", a[0]));
  }
  value *err = check_hashable(a[0]);
  if (err) return out_error(err);
  value *v = dict_pop(d, a[0]);
  if (v) return out_value(v);
  if (a[1]) return out_value(v_incref(a[1]));
  return out_error(exc_with("KeyError", a[0]));
}

static outcome setdefault(value *d, value *const a[2]) {
  value *err = check_hashable(a[0]);
  if (err) return out_error(err);
  value *v = dict_get(d, a[0]);
  if (v) return out_value(v_incref(v));
  value *dflt = a[1] ? a[1] : v_none();
  dict_set(d, v_incref(a[0]), v_incref(dflt), NULL);
  if (!a[1]) v_decref(dflt);
  return out_value(v_incref(dict_get(d, a[0])));
}

static outcome update(value *d, const value *other, const value *kwds) {
  value *err = other ? dict_merge(d, other) : NULL;
  if (!err && kwds) err = dict_merge(d, kwds);
  return err ? out_error(err) : out_value(v_none());
}

static outcome fromkeys(value *const a[2]) {
  value *pending, *err = NULL, *keys = iterargs_items(a[0], &pending);
  if (!keys) return out_error(pending);
  value *r = v_dict(), *fill = a[1] ? v_incref(a[1]) : v_none();
  for (size_t i = 0; !err && i < keys->u.seq.len; i++) err = store(r, keys->u.seq.items[i], fill);
  v_decref(fill);
  v_decref(keys);
  if ((err = iterargs_error(err, pending))) {
    v_decref(r);
    return out_error(err);
  }
  return out_value(r);
}

static outcome dict_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  value *d = dict_of_obj(o), *a[2] = {0}, *err = NULL;
  if (strcmp(m, "__getitem__") == 0) {
    if (!(err = args_one("dict.__getitem__", args, kwds, a))) return lookup(d, a[0], NULL, true);
  } else if (strcmp(m, "__setitem__") == 0) {
    if (!(err = args_slot(m, 2, true, args, kwds, a)) && !(err = store(d, a[0], a[1]))) return out_value(v_none());
  } else if (strcmp(m, "__delitem__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a)) && !(err = check_hashable(a[0]))) {
      value *v = dict_pop(d, a[0]);
      if (v) {
        v_decref(v);
        return out_value(v_none());
      }
      err = exc_with("KeyError", a[0]);
    }
  } else if (strcmp(m, "__contains__") == 0) {
    if (!(err = args_one("dict.__contains__", args, kwds, a)) && !(err = check_hashable(a[0])))
      return out_value(v_bool(dict_get(d, a[0]) != NULL));
  } else if (strcmp(m, "__len__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, a))) return out_value(v_int((int64_t)dict_len(d)));
  } else if (strcmp(m, "__iter__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, a))) return (outcome){CALL_OBJECT, NULL, iterator_new(d)};
  } else if (strcmp(m, "__reversed__") == 0) {
    if (!(err = args_noargs("dict.__reversed__", args, kwds))) return out_value(reversed_keys(d));
  } else if (strcmp(m, "get") == 0) {
    if (!(err = args_positional("dict.get", 1, 2, false, args, kwds, a))) return lookup(d, a[0], a[1], false);
  } else if (strcmp(m, "setdefault") == 0) {
    if (!(err = args_positional("dict.setdefault", 1, 2, false, args, kwds, a))) return setdefault(d, a);
  } else if (strcmp(m, "pop") == 0) {
    if (!(err = args_positional("dict.pop", 1, 2, false, args, kwds, a))) return pop(d, a);
  } else if (strcmp(m, "popitem") == 0) {
    if (!(err = args_noargs("dict.popitem", args, kwds))) {
      value *v, *k = dict_popitem(d, &v);
      if (!k) return out_error(v_exception_msg("KeyError", "popitem(): dictionary is empty"));
      value *t = v_tuple(2);
      t->u.seq.items[0] = k;
      t->u.seq.items[1] = v;
      return out_value(t);
    }
  } else if (strcmp(m, "keys") == 0 || strcmp(m, "values") == 0 || strcmp(m, "items") == 0) {
    char fname[20];
    snprintf(fname, sizeof fname, "dict.%s", m);
    if (!(err = args_noargs(fname, args, kwds)))
      return out_value(as_list_recipe(view(d, m[0] == 'k' ? 0 : m[0] == 'v' ? 1 : 2)));
  } else if (strcmp(m, "update") == 0) {
    if (!(err = args_positional("dict.update", 0, 1, true, args, kwds, a))) return update(d, a[0], kwds);
  } else if (strcmp(m, "clear") == 0) {
    if (!(err = args_noargs("dict.clear", args, kwds))) {
      dict_clear(d);
      return out_value(v_none());
    }
  } else if (strcmp(m, "copy") == 0) {
    if (!(err = args_noargs("dict.copy", args, kwds))) return out_value(copy_of(d));
  } else if (strcmp(m, "fromkeys") == 0) {
    if (!(err = args_positional("dict.fromkeys", 1, 2, false, args, kwds, a))) return fromkeys(a);
  } else if (strcmp(m, "__or__") == 0 || strcmp(m, "__ror__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) {
      /* d | other and other | d take dicts only; else Python tries the other operand */
      if (a[0]->kind != VK_DICT) return out_value(v_global("builtins", "NotImplemented"));
      bool right = m[2] == 'r';
      value *r = copy_of(right ? a[0] : d);
      err = dict_merge(r, right ? d : a[0]);
      if (!err) return out_value(r);
      v_decref(r);
    }
  } else if (strcmp(m, "__ior__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a)) && !(err = dict_merge(d, a[0])))
      return out_value(copy_of(d)); /* CPython returns the dict itself; the proxy ignores it */
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "'dict' object has no attribute '%.100s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void dict_free(shobj *o) { v_decref(dict_of_obj(o)); }

static void dict_repr(const shobj *o, buf *out) { v_repr(out, dict_of_obj(o)); }

static value *dict_getvalue(shobj *o, value **err) {
  (void)err;
  return copy_of(dict_of_obj(o));
}

static void dict_info(const shobj *o, obj_info *out) { out->size = (int64_t)dict_len(dict_of_obj(o)); }

const otype dict_type = {
    .name = "dict",
    .methods = methods,
    .adds = adds,
    .call = dict_call,
    .free = dict_free,
    .repr = dict_repr,
    .getvalue = dict_getvalue,
    .info = dict_info,
};

shobj *dict_create(value *args, value *kwds, value **err) {
  value *a[1] = {0};
  if ((*err = args_positional("dict", 0, 1, true, args, kwds, a))) return NULL;
  value *d = v_dict();
  if ((a[0] && (*err = dict_merge(d, a[0]))) || (kwds && (*err = dict_merge(d, kwds)))) {
    v_decref(d);
    return NULL;
  }
  return obj_new(&dict_type, d, 0);
}
