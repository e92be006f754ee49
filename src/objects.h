/* objects.h: shared objects, their idents, and the ident table with clients' refcounts. */
#ifndef SHMGR_OBJECTS_H
#define SHMGR_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "value.h"

typedef struct shobj shobj;
typedef struct call call;

/* How a method call ended (or did not yet). */
typedef enum callstatus {
  CALL_RETURN, /* v: the result */
  CALL_ERROR,  /* v: a Python exception instance (see v_exception) */
  CALL_OBJECT, /* obj: a shared object to hand out (method_to_typeid results) */
  CALL_PARKED, /* nothing yet: the call's done() runs later, exactly once, unless cancelled */
  CALL_TRACEBACK, /* v: an exception raised where CPython's server fails outside the method
                     (a getattr of an exposed name the object lacks): the client gets a
                     RemoteError (#TRACEBACK) ending with its line, not the exception */
} callstatus;

typedef struct outcome {
  callstatus st;
  value *v;    /* owned by whoever holds the outcome */
  shobj *obj;  /* one hold, owned likewise */
} outcome;

/* What operators see of an object (shmgr-cli objects), filled by its type's info. */
typedef struct obj_info {
  int64_t size;       /* len(), a queue's qsize(), a semaphore's value; -1: none */
  size_t waiters;     /* calls parked on it */
  const void *holder; /* the client holding it (owner.h's holder: a connection's id as a
                         pointer), or NULL: an RLock's owner, a Lock's or Semaphore's first taker */
  int64_t held;       /* takes outstanding: an RLock's depth, a Lock 1, a Semaphore's takers */
  bool orphaned;      /* held by a client that went away (lock_policy "keep") */
  const char *name;   /* the name a config declared it under, or NULL */
} obj_info;

/* An implementation of shared objects: a built-in C type or the Lua bridge. */
typedef struct otype {
  const char *name;           /* the class name clients see in messages and reprs */
  const char *const *methods; /* NULL-terminated, sorted: the public methods (default exposed) */
  /* NULL-terminated: the methods that can make the object hold more (put, append, ...),
     refused while the server holds more than limits.max_memory; NULL: none */
  const char *const *adds;
  /* Run method on o with args (a tuple) and kwds (a dict), both borrowed. c is the caller's
     slot for parking (see wait.h). Returns the outcome; CALL_PARKED only after parking c. */
  outcome (*call)(shobj *o, const char *method, value *args, value *kwds, call *c);
  void (*free)(shobj *o);                /* release o->state; nothing is parked on o */
  void (*repr)(const shobj *o, buf *out); /* Python's repr(obj) */
  /* #GETVALUE: a copy of the object as a value, or NULL with *err a new exception */
  value *(*getvalue)(shobj *o, value **err);
  /* the public methods of this object when they vary per object (Lua tables): a new tuple
     of str; NULL to use `methods` */
  value *(*public_methods)(shobj *o);
  /* holder went away holding o count times (owner.h): with release, give that much back,
     waking waiters; without, keep it taken, by nobody who can come back (a new client that
     reuses holder's address must not inherit it). NULL for types nobody holds. */
  void (*abandon)(shobj *o, void *holder, int count, bool release, const char *peer);
  /* fill what operators see of o (out is zeroed, size -1, before); NULL: nothing to say */
  void (*info)(const shobj *o, obj_info *out);
  /* its methods may call other objects (Lua types): a reply of theirs may rest on durable
     state changed in the same turn */
  bool scripted;
} otype;

struct shobj {
  const otype *type;
  const char *cls;   /* the class name in messages: type->name, or a Lua object's typeid */
  const char *typeid; /* the typeid it was first shared under (a registry entry's, living as
                         long as the server), or NULL: what operators' figures name it by */
  void *state;       /* the type's own */
  uint32_t holds;    /* internal references: the table's, Lua handles', parked calls' */
  uint64_t id;       /* ident = "%llx" of id; never reused */
  /* while in the table (clients hold proxies): */
  bool durable;      /* its state is in the store: a reply about it waits for the turn's
                        commit and fails with it */
  bool in_table;
  int64_t refcount;  /* the clients' count, as CPython's id_to_refcount */
  int64_t inflight;  /* of which counted for proxies sent out whose receivers have not
                        increfed yet (table_send) */
  value *exposed;    /* tuple of str, as create returned it */
  value *m2t;        /* dict str -> str (method_to_typeid), or NULL */
  shobj *next;       /* hash chain of all live objects */
};

/* A new object of type t with one hold (the caller's); state is the type's, owned by it.
   id 0 gives a fresh ident; a non-zero id revives one a Lua table had before (lx_obj.c). */
shobj *obj_new(const otype *t, void *state, uint64_t id);
/* Fresh idents count up from base (> 0; 1 unless set). The server sets a random base at
   start-up: clients keep proxies across a restart (a stock client that reconnects drops
   its old proxy, whose finalizer sends decref to the new server), and an ident from an
   earlier run must not name an object of this one. */
void obj_ident_base(uint64_t base);
static inline void obj_hold(shobj *o) { o->holds++; }
/* Drop one hold; frees the object (type's free) when none are left. */
void obj_release(shobj *o);

/* The name operators see for o's kind: its typeid, else its class. */
static inline const char *obj_typeid(const shobj *o) { return o->typeid ? o->typeid : o->cls; }

/* What operators see of o (its type's info). */
obj_info obj_describe(const shobj *o);
/* Each live object, in the table or not: f(o, ctx). f must not create or free objects. */
void obj_each(void (*f)(shobj *o, void *ctx), void *ctx);

/* The live object with ident (in the table or not), or NULL. Borrowed. */
shobj *obj_find(const char *ident, size_t len);
/* The ident text of o ("%llx"), in a static buffer valid until the next call. */
const char *obj_ident(const shobj *o);

/* Enter o in the table (or update an entry already there) with exposed (tuple, stolen) and
   m2t (dict or NULL, stolen), then add one client reference: what CPython's create does. */
void table_enter(shobj *o, value *exposed, value *m2t);
/* The object in the table under ident, or NULL. Borrowed. */
shobj *table_find(const char *ident, size_t len);
/* Client refcount +1; false when ident is not in the table. A reference counted in
   advance by table_send is taken instead of adding one. */
bool table_incref(shobj *o);
/* A proxy of o goes out to a client, which will incref it on a fresh connection; by then
   nothing else may hold o. Count that reference now (entering the table again if o had
   left it), and let the client's incref take it over. Objects never shared are skipped. */
void table_send(shobj *o);
/* Client refcount -1; at zero the object leaves the table and loses the table's hold. */
void table_decref(shobj *o);
/* How many objects are in the table (number_of_objects). */
size_t table_count(void);
/* Append CPython's debug_info text for the table to out. */
void table_debug_info(buf *out);
/* Empty the table, releasing every table hold, and the shared exposed tuples (shutdown);
   when no object is left alive, idents start from the base again. */
void table_clear(void);

/* The exposed tuple an object gets under a registration: exposed if given, else the
   object's public methods; then method_to_typeid's keys appended (as CPython does). New
   reference; objects of one type under one registration get the same tuple. */
value *obj_exposed(shobj *o, const value *exposed, const value *m2t);
/* True when method is in o's exposed tuple. */
bool obj_exposes(const shobj *o, const char *method);

#endif
