/* t_shared.c: SharedValue and SharedStruct, struct-packed values whose bytes live in shared memory. */
#include "alloc.h"
#include "t_shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "shm.h"
#include "structfmt.h"
#include "wait.h"

/* A parsed format, shared by the objects made with an equal one: programs make many objects
   of a few formats, and a format and its parse per object would cost more than the
   object's own shared bytes. */
typedef struct layout {
  value *format;       /* as first given (str or bytes): shm_info and repr show it */
  structfmt f;
  size_t refs;         /* objects using it */
  unsigned bucket;
  struct layout *next; /* in its bucket */
} layout;

#define LAYOUT_BUCKETS 256
static layout *layouts[LAYOUT_BUCKETS];

/* The layout of format (borrowed), one reference more; NULL with *err struct's exception
   for a bad format (sf_parse's). */
static layout *layout_of(const value *format, value **err) {
  int64_t h = 0;
  if ((format->kind == VK_STR || format->kind == VK_BYTES) && v_hash(format, &h)) {
    for (layout *l = layouts[(uint64_t)h % LAYOUT_BUCKETS]; l; l = l->next)
      if (l->format->kind == format->kind && v_eq(l->format, format)) {
        l->refs++;
        return l;
      }
  }
  structfmt f;
  if ((*err = sf_parse(format, &f))) return NULL; /* also every format of another kind */
  layout *l = xcalloc(1, sizeof *l);
  l->format = v_incref((value *)format);
  l->f = f;
  l->refs = 1;
  l->bucket = (unsigned)((uint64_t)h % LAYOUT_BUCKETS);
  l->next = layouts[l->bucket];
  layouts[l->bucket] = l;
  return l;
}

static void layout_drop(layout *l) {
  if (--l->refs) return;
  layout **p = &layouts[l->bucket];
  while (*p != l) p = &(*p)->next;
  *p = l->next;
  sf_free(&l->f);
  v_decref(l->format);
  free(l);
}

/* The bytes are in b, as struct.pack lays them out: local processes map them (shm_info)
   and see every change at once, so nothing about them is cached here. What the bytes
   cannot say, whether an 's' or 'p' item was given as str or bytes, is kept here. */
typedef struct shstruct {
  layout *l;
  uint8_t *kinds;   /* per item: SF_STR or SF_BYTES (structfmt.h), as last written */
  uint8_t few[8];   /* kinds' room when the format has that few items: no allocation */
  shm_block b;
} shstruct;

/* Both types expose these. */
static const char *const methods[] = {"get", "set", "shm_info", NULL};

static bool is_value(const shobj *o) { return o->type == &shared_value_type; }

/* get(): a SharedValue's one item, a SharedStruct's tuple. */
static value *current(const shobj *o) {
  const shstruct *s = o->state;
  value *t = sf_unpack(&s->l->f, s->b.p, s->kinds);
  if (!is_value(o)) return t;
  value *item = v_incref(t->u.seq.items[0]);
  v_decref(t);
  return item;
}

/* A SharedStruct's items: a tuple or a list (a Lua table arrives as a list). */
static value *items_of(const char *what, const value *v, value *const **items, size_t *n) {
  if (v->kind != VK_TUPLE && v->kind != VK_LIST) {
    char msg[200];
    snprintf(msg, sizeof msg, "%s must be a tuple or list, not %.100s", what, v_typename(v));
    return v_exception_msg("TypeError", msg);
  }
  *items = v->u.seq.items;
  *n = v->u.seq.len;
  return NULL;
}

/* set(): everything is packed into scratch bytes first; a bad item changes nothing, not
   the bytes and not what kind each 's' or 'p' item reads back as. */
static value *store(shobj *o, const value *v) {
  shstruct *s = o->state;
  value *const *items = (value *const *)&v;
  size_t n = 1;
  value *err = is_value(o) ? NULL : items_of("SharedStruct.set() argument", v, &items, &n);
  if (err) return err;
  const structfmt *f = &s->l->f;
  uint8_t small[256], *scratch = f->size + f->nitems <= sizeof small ? small : xmalloc(f->size + f->nitems);
  uint8_t *kinds = scratch + f->size;
  if (!(err = sf_pack(f, items, n, scratch, kinds))) {
    memcpy(s->b.p, scratch, f->size);
    memcpy(s->kinds, kinds, f->nitems);
  }
  if (scratch != small) free(scratch);
  return err;
}

/* (segment name, offset, size, format): what a local process maps. size is calcsize, 0 for
   a format of no bytes (whose block has one, since a block is never empty). */
static value *info_tuple(const shstruct *s) {
  value *t = v_tuple(4);
  t->u.seq.items[0] = v_strz(shm_name(&s->b));
  t->u.seq.items[1] = v_int((int64_t)shm_offset(&s->b));
  t->u.seq.items[2] = v_int((int64_t)s->l->f.size);
  t->u.seq.items[3] = v_incref(s->l->format);
  return t;
}

static outcome ss_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  static const char *const set_names[] = {"value"};
  value *a[1] = {0}, *err = NULL;
  char fname[48];
  snprintf(fname, sizeof fname, "%s.%s", o->type->name, m);
  if (strcmp(m, "get") == 0) {
    if (!(err = args_bind(fname, set_names, 0, 0, args, kwds, a))) return out_value(current(o));
  } else if (strcmp(m, "set") == 0) {
    if (!(err = args_bind(fname, set_names, 1, 1, args, kwds, a)) && !(err = store(o, a[0])))
      return out_value(v_none());
  } else if (strcmp(m, "shm_info") == 0) {
    if (!(err = args_bind(fname, set_names, 0, 0, args, kwds, a))) return out_value(info_tuple(o->state));
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "'%s' object has no attribute '%.100s'", o->type->name, m);
    err = v_exception_msg("AttributeError", msg);
  }
  return out_error(err);
}

static void ss_free(shobj *o) {
  shstruct *s = o->state;
  shm_free(&s->b);
  layout_drop(s->l);
  if (s->kinds != s->few) free(s->kinds);
  free(s);
}

/* SharedValue('256p', 'hello'), SharedStruct('hh', (1, 2)): as the processing package
   printed them. */
static void ss_repr(const shobj *o, buf *out) {
  const shstruct *s = o->state;
  buf_str(out, o->type->name);
  buf_byte(out, '(');
  v_repr(out, s->l->format);
  buf_str(out, ", ");
  value *v = current(o);
  v_repr(out, v);
  v_decref(v);
  buf_byte(out, ')');
}

/* _getvalue(): what get() returns (there is no Python class to rebuild on the client). */
static value *ss_getvalue(shobj *o, value **err) {
  (void)err;
  return current(o);
}

/* A SharedStruct's size is its number of items, as a SharedArray's is its length; a
   SharedValue has none. */
static void ss_info(const shobj *o, obj_info *out) {
  if (!is_value(o)) out->size = (int64_t)((const shstruct *)o->state)->l->f.nitems;
}

const otype shared_value_type = {
    .name = "SharedValue",
    .methods = methods,
    .call = ss_call,
    .free = ss_free,
    .repr = ss_repr,
    .getvalue = ss_getvalue,
    .info = ss_info,
};

const otype shared_struct_type = {
    .name = "SharedStruct",
    .methods = methods,
    .call = ss_call,
    .free = ss_free,
    .repr = ss_repr,
    .getvalue = ss_getvalue,
    .info = ss_info,
};

static shobj *create(const otype *t, value *args, value *kwds, value **err) {
  static const char *const names[] = {"format", "value"};
  value *a[2] = {0};
  char fname[48];
  snprintf(fname, sizeof fname, "%s.__init__", t->name);
  if ((*err = args_bind(fname, names, 2, 2, args, kwds, a))) {
    if (!a[0] && !a[1] && args_missing(*err)) { /* Python names both at once */
      char msg[120];
      snprintf(msg, sizeof msg, "%s() missing 2 required positional arguments: 'format' and 'value'", fname);
      v_decref(*err);
      *err = v_exception_msg("TypeError", msg);
    }
    return NULL;
  }
  layout *l = layout_of(a[0], err);
  if (!l) return NULL;
  const structfmt *f = &l->f;
  value *const *items = &a[1];
  size_t n = 1;
  if (t == &shared_value_type && f->nitems != 1) {
    value *args1 = v_tuple(1);
    char msg[120];
    snprintf(msg, sizeof msg, "SharedValue needs a format of exactly one item, not %zu", f->nitems);
    args1->u.seq.items[0] = v_strz(msg);
    *err = v_exception("struct", "error", args1);
  } else if (t == &shared_struct_type) {
    *err = items_of("SharedStruct() argument 2", a[1], &items, &n);
  }
  if (*err) {
    layout_drop(l);
    return NULL;
  }
  shstruct *s = xcalloc(1, sizeof *s);
  s->l = l;
  s->kinds = f->nitems <= sizeof s->few ? s->few : xcalloc(f->nitems, 1);
  /* the new block is nobody's yet: pack into it, and give it back if an item is bad */
  if (!shm_alloc(f->size, &s->b, err) || (*err = sf_pack(f, items, n, s->b.p, s->kinds))) {
    if (s->b.p) shm_free(&s->b);
    layout_drop(l);
    if (s->kinds != s->few) free(s->kinds);
    free(s);
    return NULL;
  }
  return obj_new(t, s, 0);
}

shobj *shared_value_create(value *args, value *kwds, value **err) { return create(&shared_value_type, args, kwds, err); }

shobj *shared_struct_create(value *args, value *kwds, value **err) { return create(&shared_struct_type, args, kwds, err); }
