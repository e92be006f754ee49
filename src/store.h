/* store.h: durable state: what durable objects record, committed once per loop turn. */
#ifndef SHMGR_STORE_H
#define SHMGR_STORE_H

/* The interface between durable objects and where their state is kept. A durable object
   (today a Queue declared durable in the config) is a named record: a few numbers and an
   ordered run of items, each item the pickle bytes shmgr sends back out, at a position
   (an int64 the object chooses; positions order the items and never repeat within an
   object). The object records each change as it makes it; nothing is written for good
   until the loop ends its turn and calls store_commit, which makes every change of the turn
   durable at once (or none of them). Types see only this header: the backend behind it
   (store_sqlite.c, SQLite in WAL mode) could be replaced without touching them.

   Errors are Python exceptions (new values) that a type hands to its caller as they are:
   a change that cannot be recorded fails the call that made it, with nothing changed. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

typedef enum durability {
  DURABLE_PROCESS, /* a commit survives the server being killed (written to the OS) */
  DURABLE_POWER,   /* and a power cut (synced to the disk at each commit) */
} durability;

typedef struct store_obj store_obj;

/* What an object's record holds besides its items. */
typedef struct store_meta {
  const char *kind;  /* the typeid it was declared as ("JoinableQueue") */
  int64_t maxsize;   /* as declared (informative: the declaration in force wins) */
  int64_t count;     /* the object's own number (a queue's unfinished tasks) */
  bool redeliver;
} store_meta;

/* Open the store kept in dir (which must exist and be writable), creating it there on
   first use, and lock dir against a second server. Returns false with a message naming the
   file and the reason in err: a missing or read-only dir, a dir in use by another shmgr, a
   corrupt database or one of an unknown format. max_bytes > 0 caps the database's size:
   changes past it fail as a full disk does. */
bool store_open(const char *dir, durability mode, int64_t max_bytes, char *err, size_t errlen);
/* Cap the open store's database at max_bytes (0: as the disk allows), at once: changes past
   it fail as a full disk does. A cap below the file's size holds the file at its size.
   Returns the cap now in force in bytes (0: none; a store not open takes any, and returns
   it), or -1 with the reason in err, the cap then as it was. */
int64_t store_set_max_bytes(int64_t max_bytes, char *err, size_t errlen);
/* True once store_open succeeded (and until store_close). */
bool store_is_open(void);
/* The database file, for messages ("data/shmgr.db"); "" when closed. */
const char *store_path(void);
/* What operators see of the store (shmgr-cli info, metrics). */
typedef struct store_info {
  const char *path;  /* the database file, borrowed */
  int64_t bytes;     /* its size on disk, with its write-ahead log */
  uint64_t commits, failed, changes; /* since start-up */
} store_info;
/* Fill f and return true when a store is open; false otherwise. */
bool store_figures(store_info *f);
/* Commit what is pending, then close the store and unlock its directory. */
void store_close(void);

/* Attach the durable object name (unique among attached objects) to the store: its record
   is created if new, else its kind, maxsize and redeliver are updated to meta's. Returns a
   handle, or NULL with *err a new exception (the name attached already, or a read error).
   rollback(ctx, turn) runs if the commit of turn, which held changes of this object,
   fails: the object must then bring itself back to what the store holds (store_obj_load). */
store_obj *store_obj_attach(const char *name, const store_meta *meta, void (*rollback)(void *ctx, uint64_t turn),
                            void *ctx, value **err);
/* The object is gone from memory; its record stays in the store. */
void store_obj_detach(store_obj *so);
/* Read so's record: its count, then each item in position order to item(ctx, pos, data,
   len), which returns NULL to go on or a new exception to stop with. Returns NULL or a new
   exception (a read error, or item's). */
value *store_obj_load(store_obj *so, int64_t *count,
                      value *(*item)(void *ctx, int64_t pos, const uint8_t *data, size_t len), void *ctx);

/* Record one change of so in the current turn. Each returns NULL when recorded, else a new
   exception (OSError: the disk or data_max_size is full, an I/O error), with nothing
   recorded. */
value *store_item_add(store_obj *so, int64_t pos, const uint8_t *data, size_t len);
value *store_item_del(store_obj *so, int64_t pos);
value *store_item_move(store_obj *so, int64_t from, int64_t to);
/* so took part in the current turn without changing the store (an item it handed out in a
   reply that waits for the commit): its rollback runs too if the commit fails. */
void store_obj_touch(store_obj *so);
/* so's count becomes count; written once at the commit, whatever it was set to before. */
void store_obj_count(store_obj *so, int64_t count);

/* The number of the current turn (from 1; one more after each commit, failed or not). */
uint64_t store_turn(void);
/* The current turn has recorded changes that are not committed yet. */
bool store_pending(void);
/* How many changes were ever recorded: a call that moved it made a change. */
uint64_t store_changes(void);
/* Called (once per turn) when the first change of a turn is recorded, so that the loop
   commits before it waits: set by the loop. */
extern void (*store_on_change)(void);
/* Commit the turn's changes. Returns NULL, or a new OSError saying why they are lost: the
   changes are then rolled back, and each object that had changed has had its rollback run. */
value *store_commit(void);

/* Forget the changes of the current turn: rolled back, with no object's rollback run. For a
   start-up that gives up: its objects go without being served, and the store stays as it was. */
void store_discard(void);

/* For each record in the store that no attached object claims: f(name, meta, items, ctx).
   What a start-up warns about: durable objects kept but no longer declared. */
void store_each_unattached(void (*f)(const char *name, const store_meta *meta, int64_t items, void *ctx), void *ctx);

#endif
