/* t_namespace.c: the built-in Namespace (multiprocessing.managers.Namespace), in C. */
#include "alloc.h"
#include "t_namespace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "wait.h"

/* A Namespace is its __dict__: one VK_DICT value of attribute names (str) to values.
   NamespaceProxy sends object.__getattribute__/__setattr__/__delattr__ calls. */

static const char *const methods[] = {"__getattribute__", "__setattr__", "__delattr__", NULL};
static const char *const adds[] = {"__setattr__", NULL}; /* refused past max_memory */

/* What a Namespace instance finds on its class (object's and Namespace's methods, as
   Python 3.13 has them): bound to the instance, they pickle as getattr(obj, name). */
static const char *const bound_methods[] = {
    "__delattr__", "__dir__",       "__eq__",     "__format__", "__ge__",       "__getattribute__",
    "__getstate__", "__gt__",       "__hash__",   "__init__",   "__le__",       "__lt__",
    "__ne__",      "__reduce__",    "__reduce_ex__", "__repr__", "__setattr__", "__sizeof__",
    "__str__",     NULL};

static value *attrs_of(const shobj *o) { return o->state; }

static value *ns_class(void) { return v_global("multiprocessing.managers", "Namespace"); }

static value *attr_error(const char *name) {
  char msg[300];
  snprintf(msg, sizeof msg, "'Namespace' object has no attribute '%.200s'", name);
  return v_exception_msg("AttributeError", msg);
}

static value *copy_dict(const value *d) {
  value *r = v_dict(), *k, *v;
  size_t pos = 0;
  while (dict_next(d, &pos, &k, &v)) dict_set(r, v_incref(k), v_incref(v), NULL);
  return r;
}

/* The instance as CPython pickles it: Namespace.__new__(Namespace), then its __dict__ as
   state (no state at all when the dict is empty). */
static value *as_object(const value *d) {
  value *obj = v_opaque(OPQ_NEWOBJ, ns_class(), v_tuple(0), NULL);
  if (dict_len(d)) opaque_op(obj, OPQ_BUILD, copy_dict(d), NULL);
  return obj;
}

/* obj.name, for a name found on the class: getattr(target, name) as pickle writes it. */
static value *getattr_recipe(value *target, const char *name) {
  value *args = v_tuple(2);
  args->u.seq.items[0] = target;
  args->u.seq.items[1] = v_strz(name);
  return v_opaque(OPQ_REDUCE, v_global("builtins", "getattr"), args, NULL);
}

static value *weakref_error(void) {
  return v_exception_msg("AttributeError", "attribute '__weakref__' of 'Namespace' objects is not writable");
}

static value *name_error(const value *name) {
  char msg[200];
  snprintf(msg, sizeof msg, "attribute name must be string, not '%.100s'", v_typename(name));
  return v_exception_msg("TypeError", msg);
}

static outcome get_attr(value *d, const value *name) {
  if (name->kind != VK_STR) return out_error(name_error(name));
  const char *s = name->u.s.data;
  /* data descriptors of the class come before the instance's __dict__ */
  if (strcmp(s, "__dict__") == 0) return out_value(copy_dict(d));
  if (strcmp(s, "__class__") == 0) return out_value(ns_class());
  if (strcmp(s, "__weakref__") == 0) return out_value(v_none());
  value *v = dict_get(d, name);
  if (v) return out_value(v_incref(v));
  if (strcmp(s, "__module__") == 0) return out_value(v_strz("multiprocessing.managers"));
  if (strcmp(s, "__doc__") == 0) return out_value(v_none());
  for (const char *const *m = bound_methods; *m; m++)
    if (strcmp(s, *m) == 0) return out_value(getattr_recipe(as_object(d), s));
  if (strcmp(s, "__init_subclass__") == 0 || strcmp(s, "__subclasshook__") == 0)
    return out_value(getattr_recipe(ns_class(), s));
  if (strcmp(s, "__new__") == 0) return out_value(getattr_recipe(v_global("builtins", "object"), s));
  return out_error(attr_error(s));
}

static outcome set_attr(value *d, const value *name, const value *v) {
  if (name->kind != VK_STR) return out_error(name_error(name));
  const char *s = name->u.s.data;
  char msg[200];
  if (strcmp(s, "__dict__") == 0) {
    if (v->kind != VK_DICT) {
      snprintf(msg, sizeof msg, "__dict__ must be set to a dictionary, not a '%.100s'", v_typename(v));
      return out_error(v_exception_msg("TypeError", msg));
    }
    value *fresh = copy_dict(v), *k, *x; /* the same dict value stays: clear and refill it */
    size_t pos = 0;
    dict_clear(d);
    while (dict_next(fresh, &pos, &k, &x)) dict_set(d, v_incref(k), v_incref(x), NULL);
    v_decref(fresh);
    return out_value(v_none());
  }
  if (strcmp(s, "__class__") == 0) {
    value *cls = ns_class();
    bool same = v_eq(v, cls);
    v_decref(cls);
    if (same) return out_value(v_none());
    if (v->kind == VK_GLOBAL) /* another class: CPython checks layouts, which shmgr cannot see */
      return out_error(v_exception_msg("TypeError", "shmgr cannot change the class of a Namespace"));
    snprintf(msg, sizeof msg, "__class__ must be set to a class, not '%.100s' object", v_typename(v));
    return out_error(v_exception_msg("TypeError", msg));
  }
  if (strcmp(s, "__weakref__") == 0) return out_error(weakref_error());
  dict_set(d, v_incref((value *)name), v_incref((value *)v), NULL);
  return out_value(v_none());
}

static outcome del_attr(value *d, const value *name) {
  if (name->kind != VK_STR) return out_error(name_error(name));
  const char *s = name->u.s.data;
  if (strcmp(s, "__dict__") == 0) { /* the next use finds a new, empty one */
    dict_clear(d);
    return out_value(v_none());
  }
  if (strcmp(s, "__class__") == 0) return out_error(v_exception_msg("TypeError", "can't delete __class__ attribute"));
  if (strcmp(s, "__weakref__") == 0) return out_error(weakref_error());
  value *v = dict_pop(d, name);
  if (!v) return out_error(attr_error(s));
  v_decref(v);
  return out_value(v_none());
}

static outcome ns_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  value *d = attrs_of(o), *a[2] = {0}, *err = NULL;
  if (strcmp(m, "__getattribute__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return get_attr(d, a[0]);
  } else if (strcmp(m, "__setattr__") == 0) {
    if (!(err = args_slot(m, 2, true, args, kwds, a))) return set_attr(d, a[0], a[1]);
  } else if (strcmp(m, "__delattr__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return del_attr(d, a[0]);
  } else {
    err = attr_error(m);
  }
  return out_error(err);
}

static void ns_free(shobj *o) { v_decref(attrs_of(o)); }

static int by_text(const void *a, const void *b) {
  const buf *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->data, y->data, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Namespace.__repr__: 'name=repr' for names not starting with '_', sorted as strings. */
static void ns_repr(const shobj *o, buf *out) {
  const value *d = attrs_of(o);
  buf *parts = xcalloc(dict_len(d) + 1, sizeof *parts);
  size_t n = 0, pos = 0;
  value *k, *v;
  while (dict_next(d, &pos, &k, &v)) {
    if (k->kind != VK_STR || (k->u.s.len && k->u.s.data[0] == '_')) continue;
    buf_put(&parts[n], k->u.s.data, k->u.s.len);
    buf_byte(&parts[n], '=');
    v_repr(&parts[n], v);
    n++;
  }
  qsort(parts, n, sizeof *parts, by_text);
  buf_str(out, "Namespace(");
  for (size_t i = 0; i < n; i++) {
    if (i) buf_str(out, ", ");
    buf_put(out, parts[i].data, parts[i].len);
    buf_free(&parts[i]);
  }
  buf_byte(out, ')');
  free(parts);
}

static value *ns_getvalue(shobj *o, value **err) {
  (void)err;
  return as_object(attrs_of(o));
}

static void ns_info(const shobj *o, obj_info *out) { out->size = (int64_t)dict_len(attrs_of(o)); }

const otype namespace_type = {
    .name = "Namespace",
    .methods = methods,
    .adds = adds,
    .call = ns_call,
    .free = ns_free,
    .repr = ns_repr,
    .getvalue = ns_getvalue,
    .info = ns_info,
};

shobj *namespace_create(value *args, value *kwds, value **err) {
  if (args && args->u.seq.len) {
    char msg[160];
    snprintf(msg, sizeof msg, "Namespace.__init__() takes 1 positional argument but %zu were given",
             args->u.seq.len + 1);
    *err = v_exception_msg("TypeError", msg);
    return NULL;
  }
  return obj_new(&namespace_type, kwds ? copy_dict(kwds) : v_dict(), 0);
}
