/* owner.h: what each client holds (locks, semaphores, queue items) and what becomes of it when it goes. */
#ifndef SHMGR_OWNER_H
#define SHMGR_OWNER_H

#include <stdbool.h>

#include "objects.h"

/* The policy for what a vanished client held (config: lock_policy). */
typedef enum { OWN_RELEASE, OWN_KEEP } own_policy;
extern own_policy own_policy_now;

/* holder (a client: conn.holder, a key never reused) took o once more: a Lock or
   Semaphore acquired, an RLock level entered, an item of a redelivering queue got. o is held until every take is given back or
   abandoned. A NULL holder (the server's own Lua code) is not recorded: it never goes away. */
void own_take(void *holder, shobj *o);
/* holder gave o back once (a release). */
void own_give(void *holder, shobj *o);
/* How many takes of o holder has not given back. */
int own_count(const void *holder, const shobj *o);
/* Each object holder holds, with how many takes: f(o, count, ctx). f must not take or give. */
void own_each(const void *holder, void (*f)(shobj *o, int count, void *ctx), void *ctx);
/* holder is gone: each object it still holds gets type->abandon(o, holder, count,
   release, peer). A lock under OWN_RELEASE gives the takes back, under OWN_KEEP (the
   default, CPython's behaviour) leaves them taken; a queue puts the items back. The type
   logs what it did, with peer naming the client. */
void own_abandon(void *holder, const char *peer);

#endif
