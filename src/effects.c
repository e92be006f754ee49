/* effects.c: what a pickle builds only for its side effects, kept with the objects it concerns. */
#include "effects.h"

#include "alloc.h"
#include "ptrmap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why this exists: an unpickler runs every call a pickle asks for, including those whose result
   it then throws away. dill fills a closure's cell that way (`_setattr(cell, 'cell_contents',
   f)` then POP), Python's own state_setter too. shmgr runs nothing, so such a call is kept as
   data and written back where it was made; dropping it would hand the next client a closure
   with an empty cell. Objects the result reaches need nothing: they are written anyway. */

/* ---- a number per object, 0 for one without ---- */

static size_t pm_get(const ptrmap *m, const value *k) {
  const size_t *n = ptrmap_get(m, k);
  return n ? *n : 0;
}

/* k's number, added as 0 when absent. The pointer lasts until the next pm_slot. */
static size_t *pm_slot(ptrmap *m, const value *k) {
  bool added;
  return ptrmap_put(m, k, 0, &added);
}

/* ---- reachability ---- */

enum { UNSEEN, SEEN, EMIT }; /* SEEN: reached from a lost object; EMIT: written with the result */

#define NONE SIZE_MAX

/* An effect's place: after `pos` steps of `carrier` (NONE: after all of them), in the order
   the effects were made (`seq`). */
typedef struct att {
  value *carrier;
  size_t pos, seq;
  value *obj;
} att;

typedef struct fx {
  const pk_made *made;
  size_t n;
  ptrmap ix;     /* made object -> its index + 1 */
  ptrmap mark;   /* container -> SEEN or EMIT */
  bool *root;    /* made[i] is a kept effect */
  size_t *wait;  /* made[i] -> the first effect waiting to follow it (an index), or NONE */
  size_t *next;  /* effect -> the next one waiting on the same object */
  bool *placed;  /* the effect has its place */
  att *att;      /* the places found, in no order */
  size_t natt;
  value **stack; /* the walk's to-do list */
  size_t sp, cap;
  value **tables; /* dicts and sets marked EMIT, in the order found */
  size_t ntables, captables;
} fx;

static void push(fx *f, value *v) {
  if (!v || !v_is_container(v)) return;
  if (f->sp == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 64;
    f->stack = xrealloc(f->stack, f->cap * sizeof *f->stack);
  }
  f->stack[f->sp++] = v;
}

static void push_children(fx *f, const value *v) {
  switch (v->kind) {
  case VK_TUPLE:
  case VK_LIST:
    for (size_t i = 0; i < v->u.seq.len; i++) push(f, v->u.seq.items[i]);
    break;
  case VK_DICT:
  case VK_SET:
  case VK_FROZENSET: {
    size_t pos = 0;
    value *k, *x;
    while (dict_next(v, &pos, &k, &x)) {
      push(f, k);
      push(f, x);
    }
    break;
  }
  case VK_OPAQUE: {
    const opaque *o = v->u.o;
    push(f, o->callable);
    push(f, o->args);
    push(f, o->kwargs);
    for (size_t i = 0; i < o->nops; i++) {
      push(f, o->ops[i].a);
      push(f, o->ops[i].b);
    }
    break;
  }
  default:
    break;
  }
}

/* Mark what start reaches as `state` (EMIT overrides SEEN). A SEEN walk that meets an effect
   chosen before (made later) takes it in: that one is no longer an effect of its own. An
   object that becomes EMIT lets the effects waiting on it follow it, and they are walked too. */
static void walk(fx *f, value *start, size_t state) {
  push(f, start);
  while (f->sp) {
    value *v = f->stack[--f->sp];
    size_t *s = pm_slot(&f->mark, v);
    if (*s >= state) {
      size_t i = v != start && state == SEEN ? pm_get(&f->ix, v) : 0;
      if (i) f->root[i - 1] = false;
      continue;
    }
    *s = state;
    if (state == EMIT && (v->kind == VK_DICT || v->kind == VK_SET || v->kind == VK_FROZENSET)) {
      if (f->ntables == f->captables) {
        f->captables = f->captables ? f->captables * 2 : 16;
        f->tables = xrealloc(f->tables, f->captables * sizeof *f->tables);
      }
      f->tables[f->ntables++] = v;
    }
    push_children(f, v);
    size_t i = state == EMIT && f->wait ? pm_get(&f->ix, v) : 0;
    for (size_t e = i ? f->wait[i - 1] : NONE; e != NONE; e = f->next[e]) {
      const pk_made *m = &f->made[e];
      if (f->placed[e]) continue; /* placed where it was made */
      f->placed[e] = true;
      f->att[f->natt++] = (att){m->carrier, m->pos, e, m->obj};
      push(f, m->obj);
    }
    if (i) f->wait[i - 1] = NONE;
  }
}

/* ---- attaching ---- */

static int att_cmp(const void *pa, const void *pb) {
  const att *a = pa, *b = pb;
  if (a->carrier != b->carrier) return (uintptr_t)a->carrier < (uintptr_t)b->carrier ? -1 : 1;
  if (a->pos != b->pos) return a->pos < b->pos ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Put effects a[0..k) (sorted by position) among the carrier's steps. */
static void merge(value *carrier, const att *a, size_t k) {
  opaque *o = carrier->u.o;
  size_t n = o->nops, r = 0, w = 0;
  opq_op *ops = xmalloc((n + k) * sizeof *ops);
  for (size_t i = 0; i < k; i++) {
    while (r < n && (a[i].pos == NONE || r < a[i].pos)) ops[w++] = o->ops[r++];
    ops[w++] = (opq_op){OPQ_EFFECT, v_incref(a[i].obj), NULL};
  }
  while (r < n) ops[w++] = o->ops[r++];
  free(o->ops);
  o->ops = ops;
  o->nops = o->capops = w;
}

static void anchor(fx *f, value *on, value *e, const value *carrier) {
  if (!on || on->kind != VK_OPAQUE || on == e || on == carrier || pm_get(&f->mark, on) == UNSEEN) return;
  const opaque *o = on->u.o;
  if (o->nops && o->ops[o->nops - 1].op == OPQ_ANCHOR && o->ops[o->nops - 1].a == e) return; /* named twice */
  opaque_op(on, OPQ_ANCHOR, v_incref(e), NULL);
}

static void anchor_items(fx *f, const value *args, value *e, const value *carrier) {
  if (!args) return;
  if (args->kind == VK_TUPLE) {
    for (size_t i = 0; i < args->u.seq.len; i++) anchor(f, args->u.seq.items[i], e, carrier);
  } else if (args->kind == VK_DICT) {
    size_t pos = 0;
    value *k, *x;
    while (dict_next(args, &pos, &k, &x)) anchor(f, x, e, carrier);
  } else {
    anchor(f, (value *)args, e, carrier);
  }
}

/* The objects an effect may change: the opaque objects among its arguments, and among those
   of its callable when that was made too (getattr(obj, 'append')(x) changes obj). */
static void anchor_effect(fx *f, value *e, const value *carrier) {
  const opaque *o = e->u.o;
  anchor_items(f, o->args, e, carrier);
  anchor_items(f, o->kwargs, e, carrier);
  if (o->callable && o->callable->kind == VK_OPAQUE) anchor_items(f, o->callable->u.o->args, e, carrier);
}

static bool table_key_changes(const value *t) {
  size_t pos = 0;
  value *k, *x;
  while (dict_next(t, &pos, &k, &x))
    if (k->kind == VK_OPAQUE || k->kind == VK_TUPLE || k->kind == VK_FROZENSET) return true;
  return false;
}

static void fx_free(fx *f) {
  ptrmap_free(&f->ix);
  ptrmap_free(&f->mark);
  free(f->root);
  free(f->wait);
  free(f->next);
  free(f->placed);
  free(f->att);
  free(f->stack);
  free(f->tables);
}

long effects_keep(value *result, const pk_made *made, size_t n, char *err, size_t errlen) {
  fx f;
  memset(&f, 0, sizeof f);
  f.made = made;
  f.n = n;
  walk(&f, result, EMIT);
  size_t lost = 0;
  for (size_t i = 0; i < n; i++) lost += pm_get(&f.mark, made[i].obj) == UNSEEN;
  if (!lost) {
    fx_free(&f);
    return 0;
  }
  for (size_t i = 0; i < n; i++) *pm_slot(&f.ix, made[i].obj) = i + 1;
  f.root = xcalloc(n, sizeof *f.root);

  /* The effects: lost objects no later lost object reaches (made last, taken first). */
  for (size_t i = n; i-- > 0;) {
    if (pm_get(&f.mark, made[i].obj) != UNSEEN) continue;
    f.root[i] = true;
    walk(&f, made[i].obj, SEEN);
  }
  long kept = 0;
  for (size_t i = 0; i < n; i++)
    if (f.root[i]) {
      kept++;
      anchor_effect(&f, made[i].obj, made[i].carrier);
    }

  /* Each goes where it was made, after the steps its carrier had then, once that carrier is
     written with the result (directly, or by an effect placed before): an effect never holds
     up the object it follows. */
  f.wait = xmalloc(n * sizeof *f.wait);
  f.next = xmalloc(n * sizeof *f.next);
  f.att = xmalloc(n * sizeof *f.att);
  f.placed = xcalloc(n, sizeof *f.placed);
  for (size_t i = 0; i < n; i++) f.wait[i] = NONE;
  for (size_t i = n; i-- > 0;) {
    size_t c = f.root[i] && made[i].carrier ? pm_get(&f.ix, made[i].carrier) : 0;
    if (!c || made[i].carrier == made[i].obj) continue;
    f.next[i] = f.wait[c - 1];
    f.wait[c - 1] = i;
  }
  ptrmap_free(&f.mark);
  f.ntables = 0;
  walk(&f, result, EMIT);

  /* One whose carrier is not written (or that had none) goes with the nearest object made
     before it that is written (after its steps), else the nearest made after it (first). */
  size_t *prev = xmalloc(n * sizeof *prev), *next = xmalloc(n * sizeof *next);
  for (size_t i = 0, last = NONE; i < n; i++) {
    prev[i] = last;
    if (pm_get(&f.mark, made[i].obj) == EMIT) last = i;
  }
  for (size_t i = n, last = NONE; i-- > 0;) {
    next[i] = last;
    if (pm_get(&f.mark, made[i].obj) == EMIT) last = i;
  }
  long rc = kept;
  for (size_t i = 0; i < n; i++) {
    if (!f.root[i] || pm_get(&f.mark, made[i].obj) == EMIT) continue;
    size_t t = prev[i] != NONE ? prev[i] : next[i];
    if (t == NONE) {
      if (errlen) snprintf(err, errlen, "a call made for its side effects (its result discarded) "
                                        "has no object to go with");
      rc = -1;
      break;
    }
    f.att[f.natt++] = (att){made[t].obj, prev[i] != NONE ? NONE : 0, i, made[i].obj};
    f.placed[i] = true; /* not also where it was made: its carrier is written only through it */
    walk(&f, made[i].obj, EMIT);
  }
  free(prev);
  free(next);

  qsort(f.att, f.natt, sizeof *f.att, att_cmp);
  for (size_t i = 0, j; i < f.natt; i = j) {
    for (j = i + 1; j < f.natt && f.att[j].carrier == f.att[i].carrier;) j++;
    merge(f.att[i].carrier, f.att + i, j - i);
  }

  /* Opaque keys hash by their pickle, which may have grown: inner tables first. */
  for (size_t i = f.ntables; rc > 0 && i-- > 0;)
    if (table_key_changes(f.tables[i])) dict_rehash(f.tables[i]);
  fx_free(&f);
  return rc;
}
