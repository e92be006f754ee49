/* value.h: the value model: what Python clients send, held as inert, refcounted data. */
#ifndef SHMGR_VALUE_H
#define SHMGR_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Every value is a heap object with a reference count. Ownership rule everywhere in shmgr:
   a function that returns `value *` hands the caller one reference ("new"); a function
   that takes `value *` only borrows it unless its contract says it "steals" it.
   Containers are mutable only where Python's are (list, dict, set, bytearray). The same
   pointer may appear in several places: that is how shared structure (pickle memo
   references) survives a round trip. */
typedef enum vkind {
  VK_NONE,
  VK_BOOL,
  VK_INT,       /* fits in int64_t */
  VK_BIGINT,    /* does not fit: little-endian two's complement bytes, minimal length */
  VK_FLOAT,
  VK_STR,       /* UTF-8 (with surrogates passed through as Python's pickle writes them) */
  VK_BYTES,
  VK_BYTEARRAY,
  VK_TUPLE,
  VK_LIST,
  VK_DICT,      /* insertion-ordered, keys hashed with Python's equality */
  VK_SET,
  VK_FROZENSET,
  VK_GLOBAL,    /* a name `module.qualname` from a pickle; never imported */
  VK_OPAQUE,    /* an object built from a global: kept as its recipe, never run */
} vkind;

typedef struct value value;
typedef struct vdict vdict;

/* How an opaque object was made in the pickle, so it is re-made the same way. */
typedef enum opq_how {
  OPQ_REDUCE,    /* callable(*args) */
  OPQ_NEWOBJ,    /* cls.__new__(cls, *args) */
  OPQ_NEWOBJ_EX, /* cls.__new__(cls, *args, **kwargs) */
  OPQ_OBJ,       /* protocol 0/1 INST or OBJ: cls(*args), re-encoded with OBJ */
} opq_how;

/* What was done to an opaque object after it was made, in order. */
typedef enum opq_opkind {
  OPQ_APPEND,  /* obj.append(a) (APPEND/APPENDS) */
  OPQ_SETITEM, /* obj[a] = b (SETITEM/SETITEMS) */
  OPQ_ADDITEM, /* obj.add(a) (ADDITEMS) */
  OPQ_BUILD,   /* obj.__setstate__(a) or __dict__ update (BUILD) */
  /* A value the pickle built here only for its effect and then discarded (a call whose result
     was POPped, as dill fills a closure's cell): written after the steps before it, then
     popped. Unpickling it runs the call again, in the same place. */
  OPQ_EFFECT,
  /* An effect a (an OPQ_EFFECT of some other object) names this object in its arguments: a
     pickle holding this object writes a too, at its end if nothing wrote it sooner, so the
     effect travels with each object it may change. Not written in place. */
  OPQ_ANCHOR,
  /* The pickle filled list, dict or set a again here, after it had been used (dill fills a
     function's globals after making the function): the items up to count b (an int) are
     written here, those before v_early(a) where a is first written. */
  OPQ_FILL,
} opq_opkind;

typedef struct opq_op {
  uint8_t op;   /* opq_opkind */
  value *a, *b; /* owned; b only for OPQ_SETITEM (the value) and OPQ_FILL (the count) */
} opq_op;

struct shobj;

typedef struct opaque {
  uint8_t how;     /* opq_how */
  value *callable; /* owned: usually a VK_GLOBAL */
  value *args;     /* owned: a VK_TUPLE (a pickle may put anything here; kept as is) */
  value *kwargs;   /* owned, only for OPQ_NEWOBJ_EX, else NULL */
  size_t nops, capops;
  opq_op *ops;     /* owned */
  /* When this is a proxy of one of this server's objects (a RebuildProxy recipe whose Token
     names it), the object, held for as long as the proxy is stored: see token.c. */
  struct shobj *shared;
} opaque;

/* How a value lets go of the object a stored proxy holds (set by the server; the tools that
   link the codec alone never make such proxies). */
extern void (*v_release_shared)(struct shobj *obj);

struct value {
  uint32_t refs;
  uint8_t kind; /* vkind */
  union {
    bool b;
    int64_t i;
    double f;
    /* STR, BYTES, BYTEARRAY, BIGINT; data NUL-terminated. block: NULL, or (a STR or BYTES
       that kept the bytes it arrived in: v_adopt) the allocation data lies in, owned */
    struct { size_t len; char *data; void *block; } s;
    struct { size_t len, cap; value **items; } seq; /* TUPLE (cap == len), LIST */
    vdict *d;                                      /* DICT, SET, FROZENSET (sets have no values) */
    struct { value *module, *name; } g;            /* GLOBAL: two VK_STR */
    opaque *o;                                     /* OPAQUE */
  } u;
};

/* ---- constructors: each returns a new reference ---- */
value *v_none(void);
value *v_bool(bool b);
value *v_int(int64_t i);
/* From little-endian two's complement bytes (pickle LONG1/LONG4); yields VK_INT when it fits. */
value *v_bigint_le(const uint8_t *le, size_t n);
value *v_float(double f);
value *v_str(const char *s, size_t n);   /* copies */
value *v_strz(const char *s);            /* copies a NUL-terminated string */
value *v_bytes(const void *p, size_t n); /* copies */
value *v_bytearray(const void *p, size_t n);
/* A STR or BYTES whose n bytes stay where they are, at p inside block (a malloc'd allocation
   it takes over, freed with the value): a large payload kept as it arrived, not copied. The
   byte at p[n] must lie inside block too: the caller sets it to the NUL data ends with once
   it has no more use for it (a decoder reads on past the payload). */
value *v_adopt(vkind kind, char *p, size_t n, void *block);
/* How a value gives back the block it adopted: free, unless the server keeps large ones for
   the next large frame (bigcache.c). */
extern void (*v_block_free)(void *block);
/* A tuple of n slots, all NULL: the caller fills every u.seq.items[i] (stolen) before use. */
value *v_tuple(size_t n);
value *v_list(size_t cap);
value *v_dict(void);
value *v_set(bool frozen);
value *v_global(const char *module, const char *name);
/* An opaque object; steals callable, args and kwargs (kwargs may be NULL). */
value *v_opaque(opq_how how, value *callable, value *args, value *kwargs);
/* A Python exception instance: module.name(*args), as CPython pickles it. Steals args (a tuple). */
value *v_exception(const char *module, const char *name, value *args);
/* module.name(msg) with msg formatted as printf does (at most 400 bytes kept). */
value *v_exception_fmt(const char *module, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Shortcut: builtins.<name>(msg) with one str argument. */
value *v_exception_msg(const char *name, const char *msg);
/* The class Python's OSError(e, ...) makes itself into: "FileNotFoundError" for ENOENT, ...,
   "OSError" for an errno without a subclass. */
const char *v_os_error_class(int64_t e);

static inline value *v_incref(value *v) {
  v->refs++;
  return v;
}
/* Drop one reference; frees the value (and what only it holds) at zero. NULL is ignored. */
void v_decref(value *v);

/* ---- containers ---- */
/* Append to a list, stealing item. */
void list_append(value *list, value *item);
/* Record a step on an opaque object; steals a and b (b may be NULL). */
void opaque_op(value *obj, opq_opkind op, value *a, value *b);

/* Set d[k] = v (dict) or add k (set: pass v NULL); an equal key keeps its first form, as in
   Python. Steals k and v in every case. Returns 0 for a new key, 1 when an equal key was
   there (its old value, or the new key, released), or -1 when k is unhashable: then k and v
   are released and *err is a static TypeError message ("unhashable type: 'list'"). */
int dict_set(value *d, value *k, value *v, const char **err);
/* Make room in d (dict, set or frozenset) for n more keys, so that adding them resizes its
   table at most this once (a pickle's SETITEMS knows how many it brings). n is a bound: fewer
   may come (repeated keys). Growth stays geometric when batches of n follow each other. */
void dict_reserve(value *d, size_t n);
/* Borrowed value for key k, or NULL when absent or unhashable. */
/* (For a set or frozenset: the stored member equal to k, so non-NULL means "k in s".) */
value *dict_get(const value *d, const value *k);
/* Borrowed lookup by a str key, for kwargs. */
value *dict_get_str(const value *d, const char *key);
/* Remove k; returns the stolen value (new reference; for sets, k's stored key) or NULL. */
value *dict_pop(value *d, const value *k);
size_t dict_len(const value *d);
/* Iterate: *pos starts at 0; returns false at the end. k and v are borrowed (v NULL for sets). */
bool dict_next(const value *d, size_t *pos, value **k, value **v);

/* ---- Python semantics ---- */
/* A VK_BIGINT as the nearest double, ties to even (Python's int.__float__); false when it
   is too large for one (Python's OverflowError "int too large to convert to float"). */
bool v_bigint_double(const value *v, double *out);
/* Python ==, structural (1 == 1.0 == True, tuples elementwise, opaque by encoded form). */
bool v_eq(const value *a, const value *b);
/* Python-compatible hash (equal values hash equal). Returns false if unhashable. */
bool v_hash(const value *v, int64_t *out);
/* Append Python's repr(v) to out; past 1 MiB (shared structure can make a small value's
   repr exponentially long) it ends in "...". */
void v_repr(buf *out, const value *v);
/* Python's type name for messages: "int", "list", "dict", or the opaque's class name. */
const char *v_typename(const value *v);
/* True when v is a VK_STR equal to s. */
bool v_is_str(const value *v, const char *s);
/* True for the kinds that hold other values in their own right (tuple, list, dict, set,
   frozenset, opaque object): the ones that make shared structure and reference cycles. */
static inline bool v_is_container(const value *v) {
  switch (v->kind) {
  case VK_TUPLE: case VK_LIST: case VK_DICT: case VK_SET: case VK_FROZENSET: case VK_OPAQUE:
    return true;
  default:
    return false;
  }
}

/* ---- shared structure and reference cycles (what the pickle memo can build) ---- */
/* A global from two VK_STR values, stolen: the decoder keeps a memoized module name shared,
   so it is written once and referred to again, as CPython writes it. */
value *v_global_of(value *module, value *name);
/* The deepest nesting reachable from v (a scalar 0, a container of scalars 1), walking each
   shared container once and without recursion, so memo references cannot blow the C stack
   of whoever walks v later; *cyclic tells whether a container reaches itself. */
size_t v_walk(const value *v, bool *cyclic);
/* Does target sit inside from (or is it from)? Walks what from reaches, each container once:
   after storing x into v, a new cycle exists only if x reaches v. */
bool v_reaches(const value *from, const value *target);
/* Counting alone never frees a cycle (a list holding itself). Registers the containers v
   reaches: when the last outside reference to such a cycle goes, v_decref frees it. */
void v_track_cycles(value *v);
/* Drop one reference to each of vs[0..n) (NULLs skipped) in one step, also freeing the
   cycles only they kept alive: the decoder's way to let go of its stack and memo. */
void v_decref_many(value **vs, size_t n);

/* Hash the keys of a dict, set or frozenset again (opaque keys hash by their pickle, which the
   decoder may extend after they were inserted: effects.c), keeping their order. */
void dict_rehash(value *d);

/* A list, dict or set its pickle filled in steps: only its first `early` items were there
   when it was first written, the others came later (see OPQ_FILL); a call made in between
   saw only those, so the encoder keeps the steps. v_early is SIZE_MAX for one made at once. */
void v_set_early(value *c, size_t early);
size_t v_early(const value *c);

/* ---- for the built-in containers (t_list.c, t_dict.c, t_set.c, ...) ---- */
/* Remove every entry of a dict, set or frozenset. */
void dict_clear(value *d);
/* Remove the most recently inserted entry (dict.popitem's LIFO): returns its key (new
   reference) and, for a dict, hands over its value in *val (may be NULL to drop it); NULL
   when empty. */
value *dict_popitem(value *d, value **val);
/* NULL when v is hashable, else Python's TypeError message for the culprit (a static
   string: "unhashable type: 'list'", naming the inner list of a tuple that holds one). */
const char *v_unhashable(const value *v);
/* Python's a < b: 1 or 0, or -1 with *err a new exception (TypeError "'<' not supported
   between instances of 'str' and 'int'" for kinds Python cannot order). Numbers compare
   exactly across bool/int/float, str by code point, bytes with bytearray, tuples and lists
   lexicographically (== first, then <), sets by proper subset; opaque objects never order. */
int v_less(const value *a, const value *b, value **err);

#endif
