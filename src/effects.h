/* effects.h: what a pickle builds only for its side effects, kept with the objects it concerns. */
#ifndef SHMGR_EFFECTS_H
#define SHMGR_EFFECTS_H

#include <stddef.h>

#include "value.h"

/* An opaque object the decoder made, and where. */
typedef struct pk_made {
  value *obj;     /* the object; the decoder holds a reference until effects_keep is done */
  value *carrier; /* the nearest opaque object under it on the stack when it was made, or NULL */
  size_t pos;     /* how many steps (BUILD, APPEND, ...) the carrier had by then */
} pk_made;

/* made[0..n) are the opaque objects a pickle made, in order; the ones `result` does not reach
   were built for an effect and then lost (a call whose result was POPped, a value a later
   SETITEM replaced, what was left under the result at STOP). Each such object that no other
   one reaches becomes an OPQ_EFFECT step of its carrier at the same position (without a usable
   carrier: at the end of the nearest kept opaque object made before it, else at the start of
   the nearest made after it), and an OPQ_ANCHOR of the opaque objects its arguments name, so
   that it is written again wherever those go. Returns how many effects were kept (they may
   close reference cycles), or -1 with a message in err when one has no object to go with. */
long effects_keep(value *result, const pk_made *made, size_t n, char *err, size_t errlen);

#endif
