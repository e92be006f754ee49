/* t_iterator.c: the built-in Iterator (IteratorProxy): a dict's key iterator, shared. */
#include "alloc.h"
#include "t_iterator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "wait.h"

/* CPython's dictiter, over shmgr's dict: a position in the entry array, the size the dict
   had when iteration began (a change is an error from then on), and how many keys are left. */
typedef struct iter {
  value *dict;   /* held; NULL once exhausted (then StopIteration for ever) */
  size_t pos;    /* dict_next position */
  size_t used;   /* dict_len when made */
  size_t left;   /* keys still expected */
  bool broken;   /* the size changed: every call says so (CPython makes it sticky) */
} iter;

/* IteratorProxy._exposed_, in its order. */
static const char *const methods[] = {"__next__", "send", "throw", "close", NULL};

static void drop_dict(iter *it) {
  v_decref(it->dict);
  it->dict = NULL;
}

static value *changed_size(void) {
  return v_exception_msg("RuntimeError", "dictionary changed size during iteration");
}

static outcome next_key(iter *it) {
  if (!it->dict) return out_error(v_exception("builtins", "StopIteration", v_tuple(0)));
  if (it->broken || dict_len(it->dict) != it->used) {
    it->broken = true;
    return out_error(changed_size());
  }
  value *k;
  if (!dict_next(it->dict, &it->pos, &k, NULL)) {
    drop_dict(it);
    return out_error(v_exception("builtins", "StopIteration", v_tuple(0)));
  }
  if (it->left == 0) { /* as many keys went as came: the set of keys changed */
    drop_dict(it);
    return out_error(v_exception_msg("RuntimeError", "dictionary keys changed during iteration"));
  }
  it->left--;
  return out_value(v_incref(k));
}

static outcome iter_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  iter *it = o->state;
  value *a[1], *err = NULL;
  if (strcmp(m, "__next__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, a))) return next_key(it);
  } else {
    /* a dict_keyiterator has no send, throw or close: CPython's server fails to getattr
       them, finds no fallback under that name either, and answers with a #TRACEBACK that
       ends with the KeyError of that search */
    value *name = v_tuple(1);
    name->u.seq.items[0] = v_strz(m);
    return (outcome){CALL_TRACEBACK, v_exception("builtins", "KeyError", name), NULL};
  }
  return out_error(err);
}

static void iter_free(shobj *o) {
  iter *it = o->state;
  v_decref(it->dict);
  free(it);
}

static void iter_repr(const shobj *o, buf *out) {
  buf_printf(out, "<dict_keyiterator object at 0x%llx>", (unsigned long long)o->id);
}

/* What pickling a dict_keyiterator gives: iter([the keys still to come]). */
static value *iter_getvalue(shobj *o, value **err) {
  iter *it = o->state;
  value *rest = v_list(0);
  if (it->dict) {
    if (it->broken || dict_len(it->dict) != it->used) {
      v_decref(rest);
      *err = changed_size();
      return NULL;
    }
    size_t pos = it->pos, n = 0;
    value *k;
    while (n < it->left && dict_next(it->dict, &pos, &k, NULL)) {
      list_append(rest, v_incref(k));
      n++;
    }
  }
  value *args = v_tuple(1);
  args->u.seq.items[0] = rest;
  return v_opaque(OPQ_REDUCE, v_global("builtins", "iter"), args, NULL);
}

const otype iterator_type = {
    .name = "dict_keyiterator",
    .methods = methods,
    .call = iter_call,
    .free = iter_free,
    .repr = iter_repr,
    .getvalue = iter_getvalue,
};

shobj *iterator_new(value *dict) {
  iter *it = xcalloc(1, sizeof *it);
  it->dict = v_incref(dict);
  it->used = it->left = dict_len(dict);
  return obj_new(&iterator_type, it, 0);
}
