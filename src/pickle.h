/* pickle.h: pickle bytes <-> values; a data decoder that never imports or calls anything. */
#ifndef SHMGR_PICKLE_H
#define SHMGR_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "value.h"

typedef struct pickle_limits {
  size_t max_depth;   /* deepest nesting of containers/opaque objects (stack of MARKs + nesting) */
  size_t max_objects; /* values created while decoding one pickle */
  /* Called on each proxy decoded (a REDUCE of RebuildProxy from multiprocessing.managers, or
     from multiprocess.managers or billiard.managers, forks with the same protocol), so the
     server can attach the object its Token names (opaque.shared). NULL: proxies stay inert. */
  void (*on_proxy)(value *proxy);
} pickle_limits;

/* Decode one pickle (protocols 0 to 5) from data[0..len). Returns a new reference, or NULL
   with a one-line message in err (e.g. "pickle: unknown opcode 0xab at offset 12",
   "pickle: nesting deeper than 1000"). *proto receives the PROTO opcode's number (0 without
   one). Globals become VK_GLOBAL, REDUCE/NEWOBJ/NEWOBJ_EX/INST/OBJ become VK_OPAQUE, except
   that builtins.set / frozenset / bytearray over plain data (as protocol 2 and 3 write them)
   become VK_SET / VK_FROZENSET / VK_BYTEARRAY. What the pickle does for its effects is kept
   too: an object made and then dropped (a call whose result is POPped) becomes an OPQ_EFFECT
   step of the object it followed (effects.c), a list, dict or set filled again after it was
   used keeps its steps (OPQ_FILL, v_early). Persistent ids and the extension registry are
   refused. Trailing bytes after STOP are an error. */
value *pickle_load(const uint8_t *data, size_t len, const pickle_limits *lim, int *proto,
                   char *err, size_t errlen);

/* How pickle_load_adopt may keep a large payload where it lies instead of copying it. */
typedef struct pickle_adopt {
  void *block;  /* the malloc'd allocation holding the pickle, writable */
  size_t size;  /* its size: a str or bytes payload is kept in place only when it is nearly all
                   of it (so that keeping the block costs at most 5% more than a copy would) */
  size_t min;   /* and only when it is at least this long */
  bool taken;   /* out: a value took block over (v_adopt); the caller must forget it, whether
                   or not the decode succeeded */
} pickle_adopt;

/* pickle_load, with the option of keeping one large str or bytes payload in place (adopt may
   be NULL: pickle_load). */
value *pickle_load_adopt(const uint8_t *data, size_t len, const pickle_limits *lim, pickle_adopt *adopt,
                         int *proto, char *err, size_t errlen);

/* Called for each proxy of this server's objects (opaque.shared) that pickle_dump writes:
   the server counts a reference for the client that will receive it (token.c). NULL: none. */
extern void (*pickle_on_shared)(struct shobj *obj);

/* A str or bytes payload pickle_dump_spans left out of out: in the stream, its bytes come
   right before out's byte at offset at. */
typedef struct pickle_span {
  size_t at;
  value *v; /* a reference: the STR or BYTES whose data they are (immutable, so safe to send
               from where they lie) */
} pickle_span;

typedef struct pickle_spans {
  pickle_span *items; /* owned, in the order of at */
  size_t n, cap;
  size_t min;         /* payloads at least this long become spans (64 KiB at the least) */
} pickle_spans;

/* pickle_dump, leaving each large str and bytes payload out of out as a span appended to
   spans (their writer sends them from where they lie: no copy). On failure the spans it
   added are released too. spans NULL: pickle_dump. */
int pickle_dump_spans(buf *out, const value *v, int proto, pickle_spans *spans, char *err, size_t errlen);

/* Append the pickle of v at protocol proto (4 or 5; 5 writes BYTEARRAY8) to out, framed as
   CPython frames it. Containers and opaque objects met twice are memoized once and referred
   to again (shared structure survives); kept effects and fills are written where they were
   made, or at the end when this pickle lacks that place. Returns 0, or -1 with err (nesting
   too deep, a cycle through a tuple); out is then left as it was. */
int pickle_dump(buf *out, const value *v, int proto, char *err, size_t errlen);

#endif
