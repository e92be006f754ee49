/* t_value.c: the built-in Value (multiprocessing.managers.Value, ValueProxy), in C. */
#include "alloc.h"
#include "t_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "wait.h"

/* managers.Value is a plain holder: _typecode and _value, get and set. */
typedef struct valueobj {
  value *typecode, *val;
} valueobj;

static const char *const methods[] = {"get", "set", NULL};
static const char *const adds[] = {"set", NULL}; /* refused past max_memory */

static outcome vo_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  valueobj *vo = o->state;
  static const char *const set_names[] = {"value"};
  value *a[1] = {0}, *err = NULL;
  if (strcmp(m, "get") == 0) {
    if (!(err = args_bind("Value.get", set_names, 0, 0, args, kwds, a))) return out_value(v_incref(vo->val));
  } else if (strcmp(m, "set") == 0) {
    if (!(err = args_bind("Value.set", set_names, 1, 1, args, kwds, a))) {
      value *old = vo->val;
      vo->val = v_incref(a[0]);
      v_decref(old);
      return out_value(v_none());
    }
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "'Value' object has no attribute '%.100s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void vo_free(shobj *o) {
  valueobj *vo = o->state;
  v_decref(vo->typecode);
  v_decref(vo->val);
  free(vo);
}

/* Value.__repr__: 'Value(%r, %r)' of the typecode and the value. */
static void vo_repr(const shobj *o, buf *out) {
  const valueobj *vo = o->state;
  buf_str(out, "Value(");
  v_repr(out, vo->typecode);
  buf_str(out, ", ");
  v_repr(out, vo->val);
  buf_byte(out, ')');
}

/* The object as CPython pickles it: Value.__new__(Value), then BUILD its __dict__. */
static value *vo_getvalue(shobj *o, value **err) {
  (void)err;
  const valueobj *vo = o->state;
  value *obj = v_opaque(OPQ_NEWOBJ, v_global("multiprocessing.managers", "Value"), v_tuple(0), NULL);
  value *state = v_dict();
  dict_set(state, v_strz("_typecode"), v_incref(vo->typecode), NULL);
  dict_set(state, v_strz("_value"), v_incref(vo->val), NULL);
  opaque_op(obj, OPQ_BUILD, state, NULL);
  return obj;
}

const otype valueobj_type = {
    .name = "Value",
    .methods = methods,
    .adds = adds,
    .call = vo_call,
    .free = vo_free,
    .repr = vo_repr,
    .getvalue = vo_getvalue,
};

shobj *valueobj_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"typecode", "value", "lock"};
  value *a[3] = {0};
  if ((*err = args_bind("Value.__init__", names, 3, 2, args, kwds, a))) {
    if (!a[0] && !a[1] && args_missing(*err)) { /* Python names both at once */
      v_decref(*err);
      *err = v_exception_msg("TypeError",
                             "Value.__init__() missing 2 required positional arguments: 'typecode' and 'value'");
    }
    return NULL;
  }
  valueobj *vo = xcalloc(1, sizeof *vo);
  vo->typecode = v_incref(a[0]);
  vo->val = v_incref(a[1]);
  return obj_new(&valueobj_type, vo, 0);
}
