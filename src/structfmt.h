/* structfmt.h: Python's struct formats in C: a format's layout, and values packed into and unpacked from it. */
#ifndef SHMGR_STRUCTFMT_H
#define SHMGR_STRUCTFMT_H

#include <stddef.h>
#include <stdint.h>

#include "value.h"

/* One code of a format with its repeat count: "3h" is one field of 3 items, "10s" one field
   of one 10-byte item. Pad bytes ('x') and zero counts of other codes make no field. */
typedef struct sf_field {
  char code;
  size_t offset; /* of its first item */
  size_t size;   /* bytes per item; for 's' and 'p' the repeat count */
  size_t count;  /* items: the repeat count, 1 for 's' and 'p' */
} sf_field;

/* A parsed format: exactly what struct.Struct(format) lays out. */
typedef struct structfmt {
  char order;       /* '@' native (sizes and alignment), '=' native order with standard sizes,
                       '<' little-endian, '>' big-endian ('!' too) */
  size_t size;      /* struct.calcsize(format) */
  size_t nitems;    /* values that pack takes and unpack gives ('s' and 'p' one each) */
  size_t nfields;
  sf_field *fields; /* owned */
} structfmt;

/* How an 's' or 'p' item was given, so that it reads back as it went in: bytes (struct's
   own), or a str, which shmgr stores as UTF-8 where struct would refuse it. */
enum { SF_BYTES = 0, SF_STR = 1 };

/* Parse format (a str or bytes, borrowed) as struct.Struct does into *out (its fields the
   caller's, freed with sf_free). Returns NULL, or a new exception worded as CPython 3.13's
   _struct.c words it, with *out empty: TypeError for a format of another kind,
   UnicodeEncodeError for a non-ASCII str, struct.error ("bad char in struct format",
   "repeat count given without format specifier", "total struct size too long", "embedded
   null character"). */
value *sf_parse(const value *format, structfmt *out);
/* Release f's fields; f is empty after. */
void sf_free(structfmt *f);

/* Pack the n values items[] (borrowed) into out (f->size bytes, zeroed first, pads stay
   zero) as struct.pack(format, *items) does, with its checks and messages: struct.error
   for a wrong count ("pack expected 2 items for packing (got 1)"), a value of the wrong
   type or out of range; OverflowError for a float too large for 'e' or '<f'. Returns NULL
   or a new exception; out is then partly written, so callers pack into scratch bytes and
   copy them on success only.
   kinds: NULL packs as struct does. Otherwise (f->nitems bytes, written like out) each
   's' or 'p' item may also be a str, stored as UTF-8 cut at a character boundary to fit,
   and kinds[i] says SF_STR or SF_BYTES for item i; a str with a surrogate raises
   UnicodeEncodeError as str.encode() would. A '?' item is a value's truth: TypeError for
   an object of a class the server cannot run (whose truth only its code knows). */
value *sf_pack(const structfmt *f, value *const *items, size_t n, uint8_t *out, uint8_t *kinds);
/* The values in p (f->size bytes) as struct.unpack(format, p) gives them: a new tuple of
   f->nitems values. kinds as sf_pack filled it, or NULL for bytes everywhere: an SF_STR
   item reads back as a str (an 's' one without its trailing NULs), bytes that are not
   UTF-8 (written through a map) decoded with U+FFFD as bytes.decode(errors='replace'). */
value *sf_unpack(const structfmt *f, const uint8_t *p, const uint8_t *kinds);

#endif
