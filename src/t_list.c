/* t_list.c: the built-in list (SyncManager.list, ListProxy), in C. */
#include "alloc.h"
#include "t_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "iterargs.h"
#include "seq.h"
#include "wait.h"

/* A list is one VK_LIST value (o->state), so that #GETVALUE and slices are plain copies. */

/* Results larger than this many items (l * n) are refused with MemoryError rather than
   attempted: out of memory ends shmgr (alloc.h), where CPython would raise */
#define MAX_ITEMS ((size_t)1 << 27)

/* CPython 3.14's ListProxy exposes these, in this order (create returns them). */
static const char *const methods[] = {"__add__",    "__contains__", "__delitem__", "__getitem__", "__imul__",
                                      "__len__",    "__mul__",      "__reversed__", "__rmul__",   "__setitem__",
                                      "append",     "clear",        "copy",        "count",       "extend",
                                      "index",      "insert",       "pop",         "remove",      "reverse",
                                      "sort",       NULL};
static const char *const adds[] = {"__iadd__", "__imul__", "__setitem__", "append", "extend", "insert",
                                   NULL}; /* refused past max_memory */

static value *items_of(const shobj *o) { return o->state; }

/* A new list holding items[0..n) (each one more reference). */
static value *list_of(value *const *items, size_t n) {
  value *l = v_list(n);
  for (size_t i = 0; i < n; i++) l->u.seq.items[i] = v_incref(items[i]);
  l->u.seq.len = n;
  return l;
}

static value *error_fmt(const char *cls, const char *fmt, const char *a) {
  char msg[300];
  snprintf(msg, sizeof msg, fmt, a);
  return v_exception_msg(cls, msg);
}

static value *memory_error(void) { return v_exception("builtins", "MemoryError", v_tuple(0)); }

static void reserve(value *l, size_t n) {
  if (n <= l->u.seq.cap) return;
  size_t cap = l->u.seq.cap ? l->u.seq.cap : 4;
  while (cap < n) cap *= 2;
  l->u.seq.items = xrealloc(l->u.seq.items, cap * sizeof(value *));
  l->u.seq.cap = cap;
}

/* Replace l[lo:hi] by items[0..n) (borrowed): list_ass_slice. */
static void splice(value *l, size_t lo, size_t hi, value *const *items, size_t n) {
  size_t len = l->u.seq.len, gone = hi - lo;
  value **old = gone ? xmalloc(gone * sizeof *old) : NULL;
  if (gone) memcpy(old, l->u.seq.items + lo, gone * sizeof *old);
  for (size_t i = 0; i < n; i++) v_incref(items[i]); /* first: items may be what goes */
  reserve(l, len - gone + n);
  if (len > hi) memmove(l->u.seq.items + lo + n, l->u.seq.items + hi, (len - hi) * sizeof(value *));
  if (n) memcpy(l->u.seq.items + lo, items, n * sizeof(value *));
  l->u.seq.len = len - gone + n;
  for (size_t i = 0; i < gone; i++) v_decref(old[i]);
  free(old);
}

/* ---- sorting: CPython's listsort, in the parts that decide what a client can see ---- */

static void reverse_items(value **a, size_t n) {
  for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
    value *t = a[i];
    a[i] = a[j - 1];
    a[j - 1] = t;
  }
}

/* The length of the run at lo (at most rem items), made ascending in place: a descending
   run is reversed, runs of equal items inside it first, so that the sort stays stable
   (CPython 3.13's count_run, which makes the same comparisons in the same order). -1 on
   error. */
static int64_t count_run(value **lo, size_t rem, value **err) {
  size_t n = 1, neq = 0;
  int k;
  for (; n < rem; n++) {
    if ((k = v_less(lo[n], lo[n - 1], err)) < 0) return -1;
    if (k) break;
  }
  if (n == rem) return (int64_t)n;
  if (n > 1) { /* an ascending run ends here, unless all of it was equal */
    if ((k = v_less(lo[0], lo[n - 1], err)) < 0) return -1;
    if (k) return (int64_t)n;
    reverse_items(lo, n);
  }
  for (n++; n < rem; n++) { /* descending */
    if ((k = v_less(lo[n], lo[n - 1], err)) < 0) return -1;
    if (k) {
      if (neq) reverse_items(lo + n - neq - 1, neq + 1);
      neq = 0;
      continue;
    }
    if ((k = v_less(lo[n - 1], lo[n], err)) < 0) return -1;
    if (k) break;
    neq++;
  }
  if (neq) reverse_items(lo + n - neq - 1, neq + 1);
  reverse_items(lo, n);
  for (; n < rem; n++) { /* an ascending tail may follow */
    if ((k = v_less(lo[n], lo[n - 1], err)) < 0) return -1;
    if (k) break;
  }
  return (int64_t)n;
}

/* Binary insertion of a[ok..n) into the sorted a[0..ok). */
static int binarysort(value **a, size_t n, size_t ok, value **err) {
  if (!ok) ok = 1;
  for (; ok < n; ok++) {
    value *pivot = a[ok];
    size_t l = 0, r = ok;
    while (l < r) {
      size_t m = (l + r) / 2;
      int k = v_less(pivot, a[m], err);
      if (k < 0) return -1;
      if (k) r = m;
      else l = m + 1;
    }
    memmove(a + l + 1, a + l, (ok - l) * sizeof *a);
    a[l] = pivot;
  }
  return 0;
}

/* Merge the sorted a[0..na) and a[na..na+nb) stably; tmp has room for na. On error the
   items are still all there (what was in tmp is put back in the gap). */
static int merge(value **a, size_t na, size_t nb, value **tmp, value **err) {
  memcpy(tmp, a, na * sizeof *a);
  size_t i = 0, j = na, d = 0, end = na + nb;
  int rc = 0;
  while (i < na && j < end) {
    int k = v_less(a[j], tmp[i], err);
    if (k < 0) {
      rc = -1;
      break;
    }
    a[d++] = k ? a[j++] : tmp[i++];
  }
  memcpy(a + d, tmp + i, (na - i) * sizeof *a);
  return rc;
}

/* CPython's minrun: n's six leading bits, plus one if any of the rest is set. */
static size_t compute_minrun(size_t n) {
  size_t r = 0;
  while (n >= 64) {
    r |= n & 1;
    n >>= 1;
  }
  return n + r;
}

int list_sort_items(value **items, size_t n, value **err) {
  if (n < 2) return 0;
  size_t minrun = compute_minrun(n), nruns = 0, *runs = xmalloc((n / minrun + 2) * sizeof *runs);
  int rc = 0;
  for (size_t lo = 0; lo < n;) { /* runs, each at least minrun long (but the last) */
    int64_t r = count_run(items + lo, n - lo, err);
    if (r < 0) {
      rc = -1;
      break;
    }
    size_t len = (size_t)r;
    if (len < minrun) {
      size_t force = n - lo <= minrun ? n - lo : minrun;
      if (binarysort(items + lo, force, len, err) < 0) {
        rc = -1;
        break;
      }
      len = force;
    }
    runs[nruns++] = len;
    lo += len;
  }
  /* merge neighbouring runs pairwise until one is left: any stable merge order gives the
     same result as CPython's for a consistent ordering */
  value **tmp = rc == 0 && nruns > 1 ? xmalloc(n * sizeof *tmp) : NULL;
  while (rc == 0 && nruns > 1) {
    size_t out = 0, base = 0;
    for (size_t i = 0; i < nruns; i += 2) {
      size_t len = runs[i];
      if (i + 1 < nruns) {
        if (merge(items + base, runs[i], runs[i + 1], tmp, err) < 0) {
          rc = -1;
          break;
        }
        len += runs[i + 1];
      }
      runs[out++] = len;
      base += len;
    }
    nruns = out;
  }
  free(tmp);
  free(runs);
  return rc;
}

/* ---- the methods ---- */

/* An item index (l[i], del l[i], l[i] = x): *i from 0, or a new exception. */
static value *item_index(const value *key, size_t len, int64_t *i, const char *range_msg) {
  int r = seq_index(key, i);
  if (r > 0) return v_exception_msg("IndexError", "cannot fit 'int' into an index-sized integer");
  if (r < 0) return error_fmt("TypeError", "list indices must be integers or slices, not %.200s", seq_typename(key));
  if (*i < 0) *i += (int64_t)len;
  if (*i < 0 || *i >= (int64_t)len) return v_exception_msg("IndexError", range_msg);
  return NULL;
}

static outcome getitem(value *l, const value *key) {
  if (seq_is_slice(key)) {
    seq_span s;
    value *err = seq_slice(key, l->u.seq.len, &s);
    if (err) return out_error(err);
    value *r = v_list((size_t)s.count);
    for (int64_t k = 0; k < s.count; k++) r->u.seq.items[k] = v_incref(l->u.seq.items[seq_at(&s, k)]);
    r->u.seq.len = (size_t)s.count;
    return out_value(r);
  }
  int64_t i;
  value *err = item_index(key, l->u.seq.len, &i, "list index out of range");
  return err ? out_error(err) : out_value(v_incref(l->u.seq.items[i]));
}

/* del l[s] for an extended slice: keep what the slice does not name. */
static void delete_extended(value *l, const seq_span *s) {
  size_t n = l->u.seq.len, keep = 0;
  bool *gone = xcalloc(n ? n : 1, sizeof *gone);
  for (int64_t k = 0; k < s->count; k++) gone[seq_at(s, k)] = true;
  value **items = l->u.seq.items;
  value **dropped = xmalloc((n ? n : 1) * sizeof *dropped);
  size_t ndropped = 0;
  for (size_t i = 0; i < n; i++) {
    if (gone[i]) dropped[ndropped++] = items[i];
    else items[keep++] = items[i];
  }
  l->u.seq.len = keep;
  for (size_t i = 0; i < ndropped; i++) v_decref(dropped[i]);
  free(dropped);
  free(gone);
}

static outcome delitem(value *l, const value *key) {
  if (seq_is_slice(key)) {
    seq_span s;
    value *err = seq_slice(key, l->u.seq.len, &s);
    if (err) return out_error(err);
    if (s.step == 1) splice(l, (size_t)s.start, (size_t)(s.stop > s.start ? s.stop : s.start), NULL, 0);
    else if (s.count) delete_extended(l, &s);
    return out_value(v_none());
  }
  int64_t i;
  value *err = item_index(key, l->u.seq.len, &i, "list assignment index out of range");
  if (err) return out_error(err);
  splice(l, (size_t)i, (size_t)i + 1, NULL, 0);
  return out_value(v_none());
}

static outcome setitem(value *l, const value *key, const value *x) {
  if (seq_is_slice(key)) {
    seq_span s;
    value *err = seq_slice(key, l->u.seq.len, &s);
    if (err) return out_error(err);
    value *items = iterargs_items(x, &err); /* list(x) first: any error of it, before any change */
    if (err) {
      v_decref(items);
      items = NULL;
    }
    if (!items && iterargs_not_iterable(x, err)) {
      /* CPython 3.13 words it so for every slice (3.12: "can only assign an iterable") */
      v_decref(err);
      return out_error(v_exception_msg("TypeError", "must assign iterable to extended slice"));
    }
    if (!items) return out_error(err);
    size_t n = items->u.seq.len;
    if (s.step == 1) {
      splice(l, (size_t)s.start, (size_t)(s.stop > s.start ? s.stop : s.start), items->u.seq.items, n);
    } else if ((int64_t)n != s.count) {
      char msg[160];
      snprintf(msg, sizeof msg, "attempt to assign sequence of size %zu to extended slice of size %lld", n,
               (long long)s.count);
      v_decref(items);
      return out_error(v_exception_msg("ValueError", msg));
    } else {
      for (int64_t k = 0; k < s.count; k++) {
        size_t i = seq_at(&s, k);
        value *old = l->u.seq.items[i];
        l->u.seq.items[i] = v_incref(items->u.seq.items[k]);
        v_decref(old);
      }
    }
    v_decref(items);
    return out_value(v_none());
  }
  int64_t i;
  value *err = item_index(key, l->u.seq.len, &i, "list assignment index out of range");
  if (err) return out_error(err);
  value *old = l->u.seq.items[i];
  l->u.seq.items[i] = v_incref((value *)x);
  v_decref(old);
  return out_value(v_none());
}

/* The count of l * n: NULL with *count set, or a new exception. */
static value *repeat_count(const value *l, const value *n, size_t *count) {
  int64_t k;
  int r = seq_index(n, &k);
  /* the server calls list.__mul__ itself, whose wrapper wants an index (the * operator
     would say "can't multiply sequence by non-int") */
  if (r < 0) return error_fmt("TypeError", "'%.200s' object cannot be interpreted as an integer", seq_typename(n));
  if (r > 0) return v_exception_msg("OverflowError", "cannot fit 'int' into an index-sized integer");
  if (k <= 0 || l->u.seq.len == 0) {
    *count = 0;
    return NULL;
  }
  if ((uint64_t)k > MAX_ITEMS / l->u.seq.len) return memory_error();
  *count = (size_t)k;
  return NULL;
}

static value *repeat(const value *l, size_t count) {
  size_t n = l->u.seq.len;
  value *r = v_list(n * count);
  for (size_t c = 0; c < count; c++)
    for (size_t i = 0; i < n; i++) r->u.seq.items[r->u.seq.len++] = v_incref(l->u.seq.items[i]);
  return r;
}

/* A start or stop of list.index (_PyEval_SliceIndexNotNone), made to count from 0. */
static value *index_bound(const value *v, size_t len, int64_t *out) {
  if (seq_index(v, out) < 0)
    return v_exception_msg("TypeError", "slice indices must be integers or have an __index__ method");
  if (*out < 0) {
    *out += (int64_t)len;
    if (*out < 0) *out = 0;
  }
  return NULL;
}

static outcome index_of(value *l, value *const a[3]) {
  int64_t start = 0, stop = INT64_MAX;
  value *err = NULL;
  if (a[1] && (err = index_bound(a[1], l->u.seq.len, &start))) return out_error(err);
  if (a[2] && (err = index_bound(a[2], l->u.seq.len, &stop))) return out_error(err);
  for (int64_t i = start; i < stop && i < (int64_t)l->u.seq.len; i++)
    if (v_eq(l->u.seq.items[i], a[0])) return out_value(v_int(i));
  buf text = {0};
  v_repr(&text, a[0]); /* repr escapes NUL, so the text is a C string */
  buf_str(&text, " is not in list");
  buf_byte(&text, 0);
  value *e = v_exception_msg("ValueError", (const char *)text.data);
  buf_free(&text);
  return out_error(e);
}

/* An index argument of insert and pop (a Py_ssize_t parameter). */
static value *ssize_arg(const value *v, int64_t *out) {
  int r = seq_index(v, out);
  if (r < 0) return error_fmt("TypeError", "'%.200s' object cannot be interpreted as an integer", seq_typename(v));
  if (r > 0) return v_exception_msg("OverflowError", "Python int too large to convert to C ssize_t");
  return NULL;
}

static outcome insert(value *l, value *const a[2]) {
  int64_t i;
  value *err = ssize_arg(a[0], &i);
  if (err) return out_error(err);
  int64_t n = (int64_t)l->u.seq.len;
  if (i < 0) {
    i += n;
    if (i < 0) i = 0;
  }
  if (i > n) i = n;
  splice(l, (size_t)i, (size_t)i, &a[1], 1);
  return out_value(v_none());
}

static outcome pop(value *l, const value *index) {
  int64_t i = -1;
  value *err = index ? ssize_arg(index, &i) : NULL;
  if (err) return out_error(err);
  int64_t n = (int64_t)l->u.seq.len;
  if (n == 0) return out_error(v_exception_msg("IndexError", "pop from empty list"));
  if (i < 0) i += n;
  if (i < 0 || i >= n) return out_error(v_exception_msg("IndexError", "pop index out of range"));
  value *item = v_incref(l->u.seq.items[i]);
  splice(l, (size_t)i, (size_t)i + 1, NULL, 0);
  return out_value(item);
}

/* list.sort(*, key=None, reverse=False) */
static outcome sort(value *l, const value *args, const value *kwds) {
  size_t npos = args->u.seq.len, nkw = kwds ? dict_len(kwds) : 0;
  const value *key = NULL, *rev = NULL;
  if (npos + nkw > 2) {
    char msg[100];
    snprintf(msg, sizeof msg, "sort() takes at most 2 %sarguments (%zu given)", npos ? "" : "keyword ", npos + nkw);
    return out_error(v_exception_msg("TypeError", msg));
  }
  if (npos) return out_error(v_exception_msg("TypeError", "sort() takes no positional arguments"));
  size_t pos = 0;
  value *k, *v;
  while (kwds && dict_next(kwds, &pos, &k, &v)) {
    if (v_is_str(k, "key")) key = v;
    else if (v_is_str(k, "reverse")) rev = v;
    else
      return out_error(error_fmt("TypeError", "sort() got an unexpected keyword argument '%.100s'",
                                 k->kind == VK_STR ? k->u.s.data : "?"));
  }
  if (key && key->kind != VK_NONE) {
    buf text = {0};
    buf_str(&text, "shmgr cannot sort with key=");
    v_repr(&text, key);
    buf_str(&text, ": it never runs code a client sends; sort with key=None, or sort a copy in the client");
    buf_byte(&text, 0);
    value *e = v_exception_msg("TypeError", (const char *)text.data);
    buf_free(&text);
    return out_error(e);
  }
  bool reverse = rev && v_truth(rev); /* any object, as 3.12+ reads it */
  value *err = NULL;
  /* stability in reverse: reverse, sort, reverse back (also after a failure, as CPython) */
  if (reverse) reverse_items(l->u.seq.items, l->u.seq.len);
  int rc = list_sort_items(l->u.seq.items, l->u.seq.len, &err);
  if (reverse) reverse_items(l->u.seq.items, l->u.seq.len);
  return rc < 0 ? out_error(err) : out_value(v_none());
}

/* reversed(l) as CPython pickles a list_reverseiterator: builtins.reversed(list), then
   BUILD with the index to start from (an empty list pickles as reversed([]) alone) */
static value *reversed_of(const value *l) {
  value *args = v_tuple(1);
  args->u.seq.items[0] = list_of(l->u.seq.items, l->u.seq.len);
  value *r = v_opaque(OPQ_REDUCE, v_global("builtins", "reversed"), args, NULL);
  if (l->u.seq.len) opaque_op(r, OPQ_BUILD, v_int((int64_t)l->u.seq.len - 1), NULL);
  return r;
}

static size_t count_of(const value *l, const value *x) {
  size_t c = 0;
  for (size_t i = 0; i < l->u.seq.len; i++) c += v_eq(l->u.seq.items[i], x);
  return c;
}

static outcome list_call(shobj *o, const char *m, value *args, value *kwds, call *c) {
  (void)c;
  value *l = items_of(o), *a[3] = {0}, *err = NULL;
  if (strcmp(m, "__getitem__") == 0) {
    if (!(err = args_one("list.__getitem__", args, kwds, a))) return getitem(l, a[0]);
  } else if (strcmp(m, "__setitem__") == 0) {
    if (!(err = args_slot(m, 2, true, args, kwds, a))) return setitem(l, a[0], a[1]);
  } else if (strcmp(m, "__delitem__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return delitem(l, a[0]);
  } else if (strcmp(m, "__len__") == 0) {
    if (!(err = args_slot(m, 0, false, args, kwds, a))) return out_value(v_int((int64_t)l->u.seq.len));
  } else if (strcmp(m, "__contains__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) return out_value(v_bool(count_of(l, a[0]) > 0));
  } else if (strcmp(m, "append") == 0) {
    if (!(err = args_one("list.append", args, kwds, a))) {
      list_append(l, v_incref(a[0]));
      return out_value(v_none());
    }
  } else if (strcmp(m, "extend") == 0) {
    if (!(err = args_one("list.extend", args, kwds, a))) {
      value *items = iterargs_items(a[0], &err); /* with an error, what came before it stays */
      if (items) {
        splice(l, l->u.seq.len, l->u.seq.len, items->u.seq.items, items->u.seq.len);
        v_decref(items);
        if (!err) return out_value(v_none());
      }
    }
  } else if (strcmp(m, "insert") == 0) {
    if (!(err = args_positional("list.insert", 2, 2, false, args, kwds, a))) return insert(l, a);
  } else if (strcmp(m, "pop") == 0) {
    if (!(err = args_positional("list.pop", 0, 1, false, args, kwds, a))) return pop(l, a[0]);
  } else if (strcmp(m, "remove") == 0) {
    if (!(err = args_one("list.remove", args, kwds, a))) {
      for (size_t i = 0; i < l->u.seq.len; i++) {
        if (v_eq(l->u.seq.items[i], a[0])) {
          splice(l, i, i + 1, NULL, 0);
          return out_value(v_none());
        }
      }
      err = v_exception_msg("ValueError", "list.remove(x): x not in list");
    }
  } else if (strcmp(m, "index") == 0) {
    if (!(err = args_positional("list.index", 1, 3, false, args, kwds, a))) return index_of(l, a);
  } else if (strcmp(m, "count") == 0) {
    if (!(err = args_one("list.count", args, kwds, a))) return out_value(v_int((int64_t)count_of(l, a[0])));
  } else if (strcmp(m, "reverse") == 0) {
    if (!(err = args_noargs("list.reverse", args, kwds))) {
      reverse_items(l->u.seq.items, l->u.seq.len);
      return out_value(v_none());
    }
  } else if (strcmp(m, "sort") == 0) {
    return sort(l, args, kwds);
  } else if (strcmp(m, "clear") == 0) {
    if (!(err = args_noargs("list.clear", args, kwds))) {
      splice(l, 0, l->u.seq.len, NULL, 0);
      return out_value(v_none());
    }
  } else if (strcmp(m, "copy") == 0) {
    if (!(err = args_noargs("list.copy", args, kwds))) return out_value(list_of(l->u.seq.items, l->u.seq.len));
  } else if (strcmp(m, "__reversed__") == 0) {
    if (!(err = args_noargs("list.__reversed__", args, kwds))) return out_value(reversed_of(l));
  } else if (strcmp(m, "__add__") == 0) {
    if (!(err = args_slot(m, 1, false, args, kwds, a))) {
      if (a[0]->kind != VK_LIST)
        return out_error(
            error_fmt("TypeError", "can only concatenate list (not \"%.200s\") to list", seq_typename(a[0])));
      if (l->u.seq.len + a[0]->u.seq.len > MAX_ITEMS) return out_error(memory_error());
      value *r = list_of(l->u.seq.items, l->u.seq.len);
      splice(r, r->u.seq.len, r->u.seq.len, a[0]->u.seq.items, a[0]->u.seq.len);
      return out_value(r);
    }
  } else if (strcmp(m, "__mul__") == 0 || strcmp(m, "__rmul__") == 0 || strcmp(m, "__imul__") == 0) {
    size_t count = 0;
    if (!(err = args_slot(m, 1, true, args, kwds, a)) && !(err = repeat_count(l, a[0], &count))) {
      if (m[2] != 'i') return out_value(repeat(l, count));
      value *r = repeat(l, count); /* in place: l takes r's items, the proxy gets l back */
      splice(l, 0, l->u.seq.len, r->u.seq.items, r->u.seq.len);
      v_decref(r);
      return out_value(list_of(l->u.seq.items, l->u.seq.len));
    }
  } else {
    err = error_fmt("AttributeError", "'list' object has no attribute '%.100s'", m);
  }
  return out_error(err);
}

static void list_free(shobj *o) { v_decref(items_of(o)); }

static void list_repr(const shobj *o, buf *out) { v_repr(out, items_of(o)); }

static value *list_getvalue(shobj *o, value **err) {
  (void)err;
  value *l = items_of(o);
  return list_of(l->u.seq.items, l->u.seq.len);
}

static void list_info(const shobj *o, obj_info *out) { out->size = (int64_t)items_of(o)->u.seq.len; }

const otype list_type = {
    .name = "list",
    .methods = methods,
    .adds = adds,
    .call = list_call,
    .free = list_free,
    .repr = list_repr,
    .getvalue = list_getvalue,
    .info = list_info,
};

shobj *list_create(value *args, value *kwds, value **err) {
  value *a[1] = {0};
  if ((*err = args_positional("list", 0, 1, false, args, kwds, a))) return NULL;
  value *items = a[0] ? iterargs_items(a[0], err) : v_list(0);
  if (*err) {
    v_decref(items);
    return NULL;
  }
  return obj_new(&list_type, items, 0);
}
