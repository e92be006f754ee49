/* iterargs_impl.h: iterators rebuilt from recipes: their state, and the calls between recipes and engine. */
#ifndef SHMGR_ITERARGS_IMPL_H
#define SHMGR_ITERARGS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iterargs.h"
#include "objects.h"
#include "ptrmap.h"

/* Iterators nested in one another, and next() calls nested at run time: a pickle can nest
   recipes a thousand deep, and a chain can be made to yield itself. */
#define MAX_NESTING 100

/* A client's iterator, rebuilt from its recipe as a small state machine. CPython's server
   would unpickle the real iterator and call next() on it; each kind here does what that
   next() does, on values. */
typedef enum itkind {
  IT_SEQ,      /* the items of a list or tuple, forward or backward from a position */
  IT_BYTES,    /* the ints of a bytes or bytearray, the same way */
  IT_STR,      /* the characters of a str, the same way */
  IT_KEYS,     /* the keys of a dict, the members of a set */
  IT_SHARED,   /* a shared Iterator of this server (a proxy of it was sent): its __next__ */
  IT_RANGE,    /* range within 64 bits */
  IT_BIGRANGE, /* range with a bound beyond 64 bits, in value arithmetic */
  IT_ZIP,
  IT_ENUM,
  IT_TRUTH,  /* filter(None, it) */
  IT_COUNT,  /* itertools.count */
  IT_REPEAT, /* itertools.repeat */
  IT_ISLICE, /* itertools.islice */
  IT_CHAIN,  /* itertools.chain */
} itkind;

typedef struct it it;
struct it {
  uint8_t kind;
  bool busy; /* inside its own next(): a cycle (a chain yielding itself) is an error */
  union {
    struct { value *items; size_t pos, left; bool rev; } seq;       /* items held; also IT_BYTES */
    struct { value *s; size_t pos; bool rev; } str;                 /* s held; pos: a byte offset */
    struct { value *d; size_t pos; } keys;                          /* d held; pos: dict_next's */
    shobj *shared;                                                  /* held by the argument */
    struct { int64_t cur, step; uint64_t left; } range;
    struct { value *next, *step, *stop; } big;                      /* held */
    struct { it **its; size_t n; bool strict; } zip;
    struct { it *src; value *index; } en;                           /* index held */
    struct { it *src; } truth;
    struct { value *cur, *step; } count;                            /* held */
    struct { value *v; int64_t left; } rep;                         /* v held; left < 0: for ever */
    struct { it *src; int64_t next, stop, step, cnt; } isl;         /* stop -1: None; src NULL: done */
    struct { it *source, *active; } chain;                          /* source NULL: done */
  } u;
};

/* One evaluation: every iterator made (freed together at the end), the recipes already
   made into iterators (so that one iterator sent twice is one iterator), the step count. */
typedef struct ctx {
  const value *root;
  size_t steps;
  int running;       /* nested next() calls */
  bool python_error; /* the error is one CPython raises at the same point, not a refusal */
  it **all;
  size_t nall, capall;
  ptrmap memo;       /* recipe (held) -> the iterator it made */
} ctx;

/* An int or bool within 64 bits, as int64_t. */
static inline int64_t small(const value *v) { return v->kind == VK_BOOL ? v->u.b : v->u.i; }

/* Length of the UTF-8 sequence that starts with byte b (1 for a stray byte). */
static inline size_t utf8_len(uint8_t b) { return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4; }

/* ---- the recipes (iterargs_recipes.c) ---- */

/* The iterator of v (borrowed), made once per recipe that is itself an iterator (sent twice,
   it is one iterator); owned by c. NULL with *err a new exception: v is not iterable, only
   code could iterate it, its recipe is broken, it nests deeper than MAX_NESTING, or making
   it takes more steps than the budget. */
it *ia_make(ctx *c, const value *v, int depth, value **err);

/* The name Python gives the type of what v makes ('zip', 'list_iterator',
   'itertools.count'), into out[0..n), for messages. */
void ia_type_name(const value *v, char *out, size_t n);

/* A new exception cls(message), the message made as printf makes it; python tells whether it
   is an error CPython raises at the same point (not a refusal of shmgr's), for the caller
   to report after the items before it. */
value *ia_fail(ctx *c, bool python, const char *cls, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- the engine (iterargs.c) ---- */

/* A new iterator of the kind, all else zero, owned by c (freed at the end of the evaluation). */
it *ia_new_it(ctx *c, itkind kind);

/* Count n steps; false (with *err) past the limit. */
bool ia_step(ctx *c, size_t n, value **err);

/* The next item of i (a new reference), or NULL: the end (*err NULL) or an error. */
value *ia_next(ctx *c, it *i, value **err);

/* Every item left in i, as a new list; NULL with *err on an error. */
value *ia_drain(ctx *c, it *i, value **err);

#endif
