/* t_shared_array.c: SharedArray, a fixed-length array.array whose items live in shared memory. */
#include "alloc.h"
#include "t_shared_array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "iterargs.h"
#include "seq.h"
#include "shm.h"
#include "t_array.h"
#include "wait.h"

/* The items are in b, in array.array's layout: local processes map them (shm_info) and
   see every change at once, so nothing about them is cached here. */
typedef struct sharr {
  char tc;
  size_t size, len; /* bytes per item, items */
  shm_block b;
} sharr;

static const char *const methods[] = {"__getitem__", "__len__", "__setitem__", "shm_info", "tobytes", "tolist", NULL};

static uint8_t *at(const sharr *a, size_t i) { return a->b.p + i * a->size; }

/* The items as t_array.c's functions take them: a view, owning nothing. */
static array_data view(const sharr *a) {
  return (array_data){.tc = a->tc, .size = a->size, .len = a->len, .cap = a->len, .data = a->b.p};
}

/* a[s] = items: any iterable of exactly as many items as s names (the length is fixed,
   as a multiprocessing.Array's is, and says so in its words). Every item is converted
   before any is stored: a bad one changes nothing. */
static outcome setslice(sharr *a, const value *key, const value *v) {
  seq_span s;
  value *err = seq_slice(key, a->len, &s);
  if (err) return out_error(err);
  int tc;
  const uint8_t *src;
  size_t nbytes;
  uint8_t *packed;
  if (array_parts(v, &tc, &src, &nbytes) && tc == a->tc) { /* the bytes as they are */
    if (nbytes / a->size != (size_t)s.count)
      return out_error(v_exception_msg("ValueError", "Can only assign sequence of same size"));
    packed = xmalloc(nbytes + 1);
    memcpy(packed, src, nbytes);
  } else {
    value *pending = NULL, *items = iterargs_items(v, &pending);
    if (!items) return out_error(pending);
    if (pending || items->u.seq.len != (size_t)s.count) {
      v_decref(items);
      v_decref(pending);
      return out_error(v_exception_msg("ValueError", "Can only assign sequence of same size"));
    }
    packed = xmalloc((size_t)s.count * a->size + 1);
    for (size_t k = 0; k < items->u.seq.len && !err; k++)
      err = array_pack(a->tc, items->u.seq.items[k], packed + k * a->size);
    v_decref(items);
    if (err) {
      free(packed);
      return out_error(err);
    }
  }
  for (int64_t k = 0; k < s.count; k++) memcpy(at(a, seq_at(&s, k)), packed + (size_t)k * a->size, a->size);
  free(packed);
  return out_value(v_none());
}

static outcome setitem(sharr *a, const value *key, const value *v) {
  if (seq_is_slice(key)) return setslice(a, key, v);
  array_data d = view(a);
  value *err = array_setitem_at(&d, key, v); /* packs in place only once the item converts */
  return err ? out_error(err) : out_value(v_none());
}

/* (segment name, offset, size in bytes, typecode): what a local process maps. */
static value *info_tuple(const sharr *a) {
  value *t = v_tuple(4);
  t->u.seq.items[0] = v_strz(shm_name(&a->b));
  t->u.seq.items[1] = v_int((int64_t)shm_offset(&a->b));
  t->u.seq.items[2] = v_int((int64_t)(a->len * a->size));
  t->u.seq.items[3] = v_str(&a->tc, 1);
  return t;
}

static outcome sa_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  sharr *a = o->state;
  value *x[2] = {0}, *err = NULL;
  char fname[48];
  snprintf(fname, sizeof fname, "SharedArray.%s", m);
  if (strcmp(m, "__len__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, x))) return out_value(v_int((int64_t)a->len));
  } else if (strcmp(m, "__getitem__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, x))) {
      array_data d = view(a);
      return array_getitem(&d, x[0]);
    }
  } else if (strcmp(m, "__setitem__") == 0) {
    if (!(err = args_slot(m, 2, true, args, kwds, x))) return setitem(a, x[0], x[1]);
  } else if (strcmp(m, "tolist") == 0) {
    if (!(err = args_noargs(fname, args, kwds))) {
      value *l = array_item_list(a->tc, a->b.p, a->len * a->size, &err);
      if (l) return out_value(l);
    }
  } else if (strcmp(m, "tobytes") == 0) {
    if (!(err = args_noargs(fname, args, kwds))) return out_value(v_bytes(a->b.p, a->len * a->size));
  } else if (strcmp(m, "shm_info") == 0) {
    if (!(err = args_noargs(fname, args, kwds))) return out_value(info_tuple(a));
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "'SharedArray' object has no attribute '%.100s'", m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void sa_free(shobj *o) {
  sharr *a = o->state;
  shm_free(&a->b);
  free(a);
}

/* SharedArray('i', [1, 2, 3]): the typecode and tolist(), as the processing package printed it. */
static void sa_repr(const shobj *o, buf *out) {
  const sharr *a = o->state;
  value *err = NULL, *items = array_item_list(a->tc, a->b.p, a->len * a->size, &err);
  buf_printf(out, "SharedArray('%c', ", a->tc);
  if (items) v_repr(out, items);
  else buf_str(out, "[...]"); /* a 'u' item a direct writer made no code point */
  buf_byte(out, ')');
  v_decref(items);
  v_decref(err);
}

/* _getvalue(): the items as an array.array, as a[:] gives them. */
static value *sa_getvalue(shobj *o, value **err) {
  (void)err;
  const sharr *a = o->state;
  return array_new_value(a->tc, a->b.p, a->len * a->size);
}

static void sa_info(const shobj *o, obj_info *out) { out->size = (int64_t)((const sharr *)o->state)->len; }

const otype shared_array_type = {
    .name = "SharedArray",
    .methods = methods,
    .call = sa_call,
    .free = sa_free,
    .repr = sa_repr,
    .getvalue = sa_getvalue,
    .info = sa_info,
};

shobj *shared_array_create(value *args, value *kwds, value **err) {
  static const char *const names[] = {"format", "sequence"};
  value *a[2] = {0};
  if ((*err = args_bind("SharedArray.__init__", names, 2, 2, args, kwds, a))) {
    if (!a[0] && !a[1] && args_missing(*err)) { /* Python names both at once */
      v_decref(*err);
      *err = v_exception_msg("TypeError",
                             "SharedArray.__init__() missing 2 required positional arguments: 'format' and 'sequence'");
    }
    return NULL;
  }
  array_data d;
  if ((*err = array_build(a[0], a[1], &d))) return NULL;
  sharr *sa = xcalloc(1, sizeof *sa);
  sa->tc = d.tc;
  sa->size = d.size;
  sa->len = d.len;
  if (!shm_alloc(d.len * d.size, &sa->b, err)) {
    free(d.data);
    free(sa);
    return NULL;
  }
  if (d.len) memcpy(sa->b.p, d.data, d.len * d.size);
  free(d.data);
  return obj_new(&shared_array_type, sa, 0);
}
