/* store_sqlite.c: the store (store.h) in an SQLite database, WAL mode, one transaction a turn. */
#include "alloc.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"

/* Why SQLite: an operator can open the store with the sqlite3 shell while shmgr runs (WAL
   lets readers in beside the one writer), a commit is atomic whatever dies, and the file
   format is stable and documented. shmgr is the only writer: one connection, statements
   prepared once, one transaction per turn of the event loop. */

#define FORMAT 1                /* the layout below; a store of another format is refused */
#define APPLICATION_ID 0x73686d67 /* "shmg": PRAGMA application_id marks the file as ours */
#define BUSY_MS 200             /* a reader checkpointing or an operator's write: wait this long */

static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value ANY);"
    "CREATE TABLE objects(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
    " maxsize INTEGER NOT NULL, count INTEGER NOT NULL, redeliver INTEGER NOT NULL);"
    /* the items of each object by position; an item is its pickle (protocol 4) */
    "CREATE TABLE items(obj INTEGER NOT NULL REFERENCES objects(id), pos INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY(obj, pos)) WITHOUT ROWID;"
    "CREATE VIEW queue_items AS SELECT o.name AS queue, i.pos AS pos, length(i.data) AS bytes, i.data AS data"
    " FROM items i JOIN objects o ON o.id = i.obj ORDER BY o.name, i.pos;";

enum { S_BEGIN, S_COMMIT, S_ROLLBACK, S_ADD, S_DEL, S_MOVE, S_COUNT, S_LOAD, S_FIND, S_NEW, S_UPDATE, S_ALL, NSTMT };
static const char *const sql[NSTMT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    /* INSERT ... SELECT and IN (SELECT ...), not VALUES and pos = ?2: statements SQLite may
       have to undo halfway, which it gives a statement journal. On SQLITE_FULL (the disk, or
       max_page_count) such a statement is undone alone; the plain forms, which touch one row,
       have none, and SQLite then rolls back the whole transaction: every change of the turn,
       other clients' gets (which free room) with it, would fail with the one put too big. */
    [S_ADD] = "INSERT INTO items(obj, pos, data) SELECT ?1, ?2, ?3",
    [S_DEL] = "DELETE FROM items WHERE obj = ?1 AND pos = ?2",
    [S_MOVE] = "UPDATE items SET pos = ?3 WHERE obj = ?1 AND pos IN (SELECT ?2)",
    [S_COUNT] = "UPDATE objects SET count = ?2 WHERE id = ?1",
    [S_LOAD] = "SELECT pos, data FROM items WHERE obj = ?1 ORDER BY pos",
    [S_FIND] = "SELECT id, count FROM objects WHERE name = ?1",
    [S_NEW] = "INSERT INTO objects(name, kind, maxsize, count, redeliver) VALUES(?1, ?2, ?3, 0, ?4)",
    [S_UPDATE] = "UPDATE objects SET kind = ?2, maxsize = ?3, redeliver = ?4 WHERE id = ?1",
    [S_ALL] = "SELECT name, kind, maxsize, count, redeliver, (SELECT count(*) FROM items WHERE obj = id) FROM objects ORDER BY name",
};

struct store_obj {
  int64_t id;        /* objects.id */
  char *name;
  void (*rollback)(void *ctx, uint64_t turn);
  void *ctx;
  int64_t count;     /* to write at the commit, when count_dirty */
  bool count_dirty;
  bool changed;      /* has changes in the open turn (listed in turn_objs) */
  store_obj *next;   /* every attached object */
};

static struct {
  sqlite3 *db;
  sqlite3_stmt *st[NSTMT];
  char path[1024];
  int lock_fd;
  store_obj *objs;
  bool in_turn;      /* a transaction is open (BEGIN ran) */
  bool turn_lost;    /* SQLite rolled the open transaction back by itself: the commit must fail */
  char lost_why[200];
  store_obj **turn_objs; /* the objects changed in the open turn */
  size_t nturn, capturn;
  uint64_t changes;
  uint64_t turn;
  uint64_t commits, failed; /* counted for the log at close (and operators' figures) */
  store_obj **rb;    /* the objects a failed commit is rolling back */
  size_t nrb;
  int64_t no_cap_pages; /* SQLite's max_page_count when none is set (its build's maximum) */
} S = {.lock_fd = -1, .turn = 1};

void (*store_on_change)(void);

/* An OSError for the store failing at what, with SQLite's reason and the file. */
static value *os_error(const char *what, const char *why) {
  char msg[1500];
  snprintf(msg, sizeof msg, "shmgr could not %s: %s (%s)", what, why, S.path);
  return v_exception_msg("OSError", msg);
}

/* Run stmt to its end; SQLITE_DONE or the error code. The statement is reset either way. */
static int run(sqlite3_stmt *stmt) {
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {}
  sqlite3_reset(stmt);
  if (rc == SQLITE_FULL) /* the disk, or max_store_bytes: either is a limit hit */
    stats_limit(LIM_MAX_STORE_BYTES, "store: full (limits.max_store_bytes, or the disk): a change refused (%s)", S.path);
  return rc;
}

/* Run a statement of text (schema, pragmas) ; false with err set. */
static bool exec(const char *text, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(S.db, text, NULL, NULL, &msg) == SQLITE_OK) return true;
  snprintf(err, errlen, "%s: %s", S.path, msg ? msg : sqlite3_errmsg(S.db));
  sqlite3_free(msg);
  return false;
}

/* The one integer a query returns, or -1 with err set. */
static int64_t query_int(const char *text, char *err, size_t errlen) {
  sqlite3_stmt *q = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(S.db, text, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    v = sqlite3_column_int64(q, 0);
  else snprintf(err, errlen, "%s: %s", S.path, sqlite3_errmsg(S.db));
  sqlite3_finalize(q);
  return v;
}

/* Lock dir/shmgr.lock for this process (a second server on the same dir is refused) and
   write our pid in it, for the message the second one gives. */
static bool lock_dir(const char *dir, char *err, size_t errlen) {
  char path[1100];
  snprintf(path, sizeof path, "%s/shmgr.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return snprintf(err, errlen, "data_dir '%s' is not writable: %s: %s", dir, path, strerror(errno)), false;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(fd);
    return snprintf(err, errlen, "data_dir '%s' is in use by another shmgr (pid %s, holding %s)", dir, *pid ? pid : "?", path), false;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    snprintf(err, errlen, "data_dir '%s' is not writable: %s: %s", dir, path, strerror(errno));
    close(fd);
    return false;
  }
  S.lock_fd = fd;
  return true;
}

/* Make a new file a store, or check that an existing one is a store of our format. */
static bool check_or_create(char *err, size_t errlen) {
  int64_t app = query_int("PRAGMA application_id", err, errlen);
  if (app < 0) return false;
  int64_t tables = query_int("SELECT count(*) FROM sqlite_schema", err, errlen);
  if (tables < 0) return false;
  if (app == 0 && tables == 0) {
    char text[sizeof schema + 200];
    snprintf(text, sizeof text, "BEGIN; PRAGMA application_id = %d; %s INSERT INTO meta VALUES('format', %d), ('created_by', 'shmgr %s'); COMMIT;",
             APPLICATION_ID, schema, FORMAT, SHMGR_VERSION);
    if (!exec(text, err, errlen)) return false;
    logmsg(LOG_INFO, "store: created %s", S.path);
    return true;
  }
  if (app != APPLICATION_ID)
    return snprintf(err, errlen, "%s is not a shmgr store (an SQLite database with application_id %lld): refusing to use it", S.path, (long long)app), false;
  int64_t format = query_int("SELECT value FROM meta WHERE key = 'format'", err, errlen);
  if (format < 0) return false;
  if (format != FORMAT)
    return snprintf(err, errlen, "%s has store format %lld, which this shmgr (%s) does not read (it reads format %d)", S.path,
                    (long long)format, SHMGR_VERSION, FORMAT), false;
  /* every page read once: a damaged file is refused now, not found out item by item */
  sqlite3_stmt *q = NULL;
  bool ok = sqlite3_prepare_v2(S.db, "PRAGMA quick_check", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW;
  const char *res = ok ? (const char *)sqlite3_column_text(q, 0) : sqlite3_errmsg(S.db);
  if (!ok || !res || strcmp(res, "ok") != 0) snprintf(err, errlen, "%s is damaged: %s", S.path, res ? res : "?"), ok = false;
  sqlite3_finalize(q);
  return ok;
}

bool store_open(const char *dir, durability mode, int64_t max_bytes, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) < 0)
    return snprintf(err, errlen, "data_dir '%s': %s (create it, or point data_dir at the store)", dir, strerror(errno)), false;
  if (!S_ISDIR(st.st_mode)) return snprintf(err, errlen, "data_dir '%s' is not a directory", dir), false;
  if (access(dir, W_OK | X_OK) < 0) return snprintf(err, errlen, "data_dir '%s' is not writable: %s", dir, strerror(errno)), false;
  if (!lock_dir(dir, err, errlen)) return false;
  snprintf(S.path, sizeof S.path, "%s/shmgr.db", dir);
  if (access(S.path, F_OK) == 0 && access(S.path, R_OK | W_OK) < 0) {
    snprintf(err, errlen, "%s: %s", S.path, strerror(errno));
    goto fail;
  }
  if (sqlite3_open_v2(S.path, &S.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", S.path, S.db ? sqlite3_errmsg(S.db) : "cannot open");
    goto fail;
  }
  sqlite3_busy_timeout(S.db, BUSY_MS);
  if (!check_or_create(err, errlen)) goto fail;
  char pragmas[200];
  /* temp_store: the statement journals of S_ADD and S_MOVE (see there) in memory, not files */
  snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA temp_store = MEMORY;",
           mode == DURABLE_POWER ? "FULL" : "NORMAL");
  if (!exec(pragmas, err, errlen)) goto fail;
  if ((S.no_cap_pages = query_int("PRAGMA max_page_count", err, errlen)) <= 0) goto fail;
  if (max_bytes > 0 && store_set_max_bytes(max_bytes, err, errlen) < 0) goto fail;
  for (int i = 0; i < NSTMT; i++) {
    if (sqlite3_prepare_v3(S.db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &S.st[i], NULL) != SQLITE_OK) {
      snprintf(err, errlen, "%s: %s", S.path, sqlite3_errmsg(S.db));
      goto fail;
    }
  }
  logmsg(LOG_INFO, "store: %s (durability \"%s\")", S.path, mode == DURABLE_POWER ? "power" : "process");
  return true;
fail:
  store_close();
  return false;
}

int64_t store_set_max_bytes(int64_t max_bytes, char *err, size_t errlen) {
  if (!S.db) return max_bytes > 0 ? max_bytes : 0;
  int64_t page = query_int("PRAGMA page_size", err, errlen);
  if (page <= 0) return -1;
  int64_t pages = max_bytes <= 0 ? S.no_cap_pages : max_bytes / page > 1 ? max_bytes / page : 1;
  char pragma[80];
  snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lld", (long long)pages);
  /* SQLite answers with the cap now in force: never below the pages the file has */
  int64_t now = query_int(pragma, err, errlen);
  if (now < 0) return -1;
  return now >= S.no_cap_pages ? 0 : now * page;
}

bool store_is_open(void) { return S.db != NULL; }

const char *store_path(void) { return S.db ? S.path : ""; }

bool store_figures(store_info *f) {
  if (!S.db) return false;
  f->path = S.path;
  f->bytes = 0;
  char wal[1100];
  snprintf(wal, sizeof wal, "%s-wal", S.path);
  struct stat st;
  if (stat(S.path, &st) == 0) f->bytes += (int64_t)st.st_size;
  if (stat(wal, &st) == 0) f->bytes += (int64_t)st.st_size;
  f->commits = S.commits;
  f->failed = S.failed;
  f->changes = S.changes;
  return true;
}

void store_close(void) {
  if (S.db) {
    value *e = store_commit();
    if (e) {
      logmsg(LOG_ERROR, "store: the last changes are lost: could not commit them at exit");
      v_decref(e);
    }
    logmsg(LOG_INFO, "store: closed after %llu commits carrying %llu changes (%llu commits failed)",
           (unsigned long long)S.commits, (unsigned long long)S.changes, (unsigned long long)S.failed);
    for (int i = 0; i < NSTMT; i++) sqlite3_finalize(S.st[i]);
    memset(S.st, 0, sizeof S.st);
    sqlite3_close(S.db); /* the last connection to close checkpoints the WAL into the file */
    S.db = NULL;
  }
  if (S.lock_fd >= 0) close(S.lock_fd);
  S.lock_fd = -1;
  free(S.turn_objs);
  S.turn_objs = NULL;
  S.nturn = S.capturn = 0;
}

/* The open turn lost its transaction (SQLite rolled it back after an error): it must fail. */
static void lose_turn(const char *why) {
  S.in_turn = false;
  S.turn_lost = true;
  snprintf(S.lost_why, sizeof S.lost_why, "%s", why);
}

/* The turn has a change of so: the loop is told at the turn's first (so that it commits, and
   lets the turn's held replies go, before it waits), and so is listed (its rollback runs if
   the commit fails). */
static void note_change(store_obj *so, bool was_pending) {
  if (!was_pending && store_on_change) store_on_change();
  if (!so->changed) {
    if (S.nturn == S.capturn) {
      S.capturn = S.capturn ? S.capturn * 2 : 16;
      S.turn_objs = xrealloc(S.turn_objs, S.capturn * sizeof *S.turn_objs);
    }
    S.turn_objs[S.nturn++] = so;
    so->changed = true;
  }
}

/* Open the turn's transaction if it is not open, and note so as changed in it. NULL, or a
   new exception when the transaction cannot begin (the database is locked, ...): then
   nothing is noted. */
static value *begin(store_obj *so) {
  bool was_pending = store_pending();
  if (!S.in_turn && !S.turn_lost) {
    if (run(S.st[S_BEGIN]) != SQLITE_DONE) return os_error("store this change", sqlite3_errmsg(S.db));
    S.in_turn = true;
  }
  note_change(so, was_pending);
  return NULL;
}

/* Run one change of the turn: NULL, or the call's error with nothing recorded. */
static value *change(store_obj *so, sqlite3_stmt *stmt) {
  value *e = begin(so);
  if (e) return e;
  if (S.turn_lost) return os_error("store this change", S.lost_why);
  int rc = run(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc == SQLITE_DONE) {
    S.changes++;
    return NULL;
  }
  const char *why = sqlite3_errmsg(S.db);
  if (sqlite3_get_autocommit(S.db)) lose_turn(why); /* the whole transaction went with it */
  return os_error("store this change", why);
}

value *store_item_add(store_obj *so, int64_t pos, const uint8_t *data, size_t len) {
  sqlite3_stmt *s = S.st[S_ADD];
  sqlite3_bind_int64(s, 1, so->id);
  sqlite3_bind_int64(s, 2, pos);
  sqlite3_bind_blob64(s, 3, data, len, SQLITE_STATIC); /* used before this returns */
  return change(so, s);
}

value *store_item_del(store_obj *so, int64_t pos) {
  sqlite3_stmt *s = S.st[S_DEL];
  sqlite3_bind_int64(s, 1, so->id);
  sqlite3_bind_int64(s, 2, pos);
  return change(so, s);
}

value *store_item_move(store_obj *so, int64_t from, int64_t to) {
  sqlite3_stmt *s = S.st[S_MOVE];
  sqlite3_bind_int64(s, 1, so->id);
  sqlite3_bind_int64(s, 2, from);
  sqlite3_bind_int64(s, 3, to);
  return change(so, s);
}

/* begin(so) for a change that cannot fail its call (it is written at the commit): if no
   transaction can begin, the turn is lost, its commit fails and so rolls back; noted either
   way, so that the loop commits (else every reply would wait for a commit that never comes). */
static void begin_or_lose(store_obj *so) {
  bool was_pending = store_pending();
  value *e = begin(so);
  if (e) {
    lose_turn(sqlite3_errmsg(S.db));
    note_change(so, was_pending);
    v_decref(e);
  }
}

void store_obj_touch(store_obj *so) { begin_or_lose(so); }

void store_obj_count(store_obj *so, int64_t count) {
  begin_or_lose(so);
  so->count = count;
  so->count_dirty = true;
  S.changes++;
}

bool store_pending(void) { return S.in_turn || S.turn_lost || S.nturn; }

uint64_t store_changes(void) { return S.changes; }

uint64_t store_turn(void) { return S.turn; }

/* The turn is over: forget which objects it changed. */
static void end_turn(void) {
  for (size_t i = 0; i < S.nturn; i++) S.turn_objs[i]->changed = S.turn_objs[i]->count_dirty = false;
  S.nturn = 0;
  S.in_turn = S.turn_lost = false;
  S.turn++;
}

value *store_commit(void) {
  if (!store_pending()) return NULL;
  const char *why = S.lost_why;
  if (!S.turn_lost) {
    for (size_t i = 0; i < S.nturn; i++) {
      store_obj *so = S.turn_objs[i];
      if (!so->count_dirty) continue;
      sqlite3_bind_int64(S.st[S_COUNT], 1, so->id);
      sqlite3_bind_int64(S.st[S_COUNT], 2, so->count);
      if (run(S.st[S_COUNT]) != SQLITE_DONE) goto failed;
    }
    if (run(S.st[S_COMMIT]) == SQLITE_DONE) {
      S.commits++;
      end_turn();
      return NULL;
    }
  failed:
    why = sqlite3_errmsg(S.db);
  }
  S.failed++;
  value *e = os_error("store the changes of this call", why);
  logmsg(LOG_ERROR, "store: a commit failed, its changes are rolled back: %s (%s)", why, S.path);
  if (!sqlite3_get_autocommit(S.db)) run(S.st[S_ROLLBACK]);
  /* each object comes back to what the store holds; the list is taken first, since a
     rollback may record changes of its own (a waiter it can now serve) in a new turn, and
     an object a rollback lets go of (its last holder answered) is struck off it (detach) */
  size_t n = S.nturn;
  uint64_t turn = S.turn;
  S.rb = xmalloc((n ? n : 1) * sizeof *S.rb);
  memcpy(S.rb, S.turn_objs, n * sizeof *S.rb);
  S.nrb = n;
  end_turn();
  for (size_t i = 0; i < S.nrb; i++)
    if (S.rb[i]) S.rb[i]->rollback(S.rb[i]->ctx, turn);
  free(S.rb);
  S.rb = NULL;
  S.nrb = 0;
  return e;
}

void store_discard(void) {
  if (!store_pending()) return;
  if (!sqlite3_get_autocommit(S.db)) run(S.st[S_ROLLBACK]);
  end_turn();
}

/* Take so off the list of objects the open turn changed. */
static void unlist(store_obj *so) {
  for (size_t i = 0; i < S.nturn; i++) {
    if (S.turn_objs[i] == so) {
      S.turn_objs[i] = S.turn_objs[--S.nturn];
      return;
    }
  }
}

store_obj *store_obj_attach(const char *name, const store_meta *meta, void (*rollback)(void *ctx, uint64_t turn),
                            void *ctx, value **err) {
  for (store_obj *o = S.objs; o; o = o->next) {
    if (strcmp(o->name, name) == 0) {
      char msg[300];
      snprintf(msg, sizeof msg, "a durable object named '%s' exists already (durable names are unique)", name);
      *err = v_exception_msg("ValueError", msg);
      return NULL;
    }
  }
  store_obj *so = xcalloc(1, sizeof *so);
  so->rollback = rollback;
  so->ctx = ctx;
  sqlite3_stmt *f = S.st[S_FIND];
  sqlite3_bind_text(f, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(f);
  bool found = rc == SQLITE_ROW;
  if (found) so->id = sqlite3_column_int64(f, 0), so->count = sqlite3_column_int64(f, 1);
  sqlite3_reset(f);
  sqlite3_clear_bindings(f);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    *err = os_error("read the store", sqlite3_errmsg(S.db));
    free(so);
    return NULL;
  }
  if ((*err = begin(so))) {
    free(so);
    return NULL;
  }
  sqlite3_stmt *w = S.st[found ? S_UPDATE : S_NEW];
  int at = 2; /* ?1 is the id (update) or the name (new) */
  if (found) sqlite3_bind_int64(w, 1, so->id);
  else sqlite3_bind_text(w, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(w, at + 0, meta->kind, -1, SQLITE_STATIC);
  sqlite3_bind_int64(w, at + 1, meta->maxsize);
  sqlite3_bind_int(w, at + 2, meta->redeliver);
  rc = run(w);
  sqlite3_clear_bindings(w);
  if (rc != SQLITE_DONE) {
    *err = os_error("record a durable object", sqlite3_errmsg(S.db));
    if (sqlite3_get_autocommit(S.db)) lose_turn(sqlite3_errmsg(S.db));
    unlist(so);
    free(so);
    return NULL;
  }
  if (!found) so->id = sqlite3_last_insert_rowid(S.db);
  S.changes++;
  so->name = xstrdup(name);
  so->next = S.objs;
  S.objs = so;
  return so;
}

void store_obj_detach(store_obj *so) {
  if (!so) return;
  for (size_t i = 0; i < S.nrb; i++)
    if (S.rb[i] == so) S.rb[i] = NULL;
  for (size_t i = 0; i < S.nturn; i++) {
    if (S.turn_objs[i] != so) continue;
    /* its count still goes in with the turn: keep a record without the object */
    if (so->count_dirty) {
      sqlite3_bind_int64(S.st[S_COUNT], 1, so->id);
      sqlite3_bind_int64(S.st[S_COUNT], 2, so->count);
      if (run(S.st[S_COUNT]) != SQLITE_DONE && sqlite3_get_autocommit(S.db)) lose_turn(sqlite3_errmsg(S.db));
    }
    unlist(so);
    break;
  }
  for (store_obj **p = &S.objs; *p; p = &(*p)->next) {
    if (*p == so) {
      *p = so->next;
      break;
    }
  }
  free(so->name);
  free(so);
}

value *store_obj_load(store_obj *so, int64_t *count,
                      value *(*item)(void *ctx, int64_t pos, const uint8_t *data, size_t len), void *ctx) {
  sqlite3_stmt *f = S.st[S_FIND];
  sqlite3_bind_text(f, 1, so->name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(f);
  if (rc == SQLITE_ROW) *count = sqlite3_column_int64(f, 1);
  sqlite3_reset(f);
  sqlite3_clear_bindings(f);
  if (rc != SQLITE_ROW) return os_error("read the store", rc == SQLITE_DONE ? "the object's record is missing" : sqlite3_errmsg(S.db));
  sqlite3_stmt *s = S.st[S_LOAD];
  sqlite3_bind_int64(s, 1, so->id);
  value *e = NULL;
  while (!e && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const void *data = sqlite3_column_blob(s, 1);
    size_t len = (size_t)sqlite3_column_bytes(s, 1);
    e = item(ctx, sqlite3_column_int64(s, 0), data ? data : "", len);
  }
  if (!e && rc != SQLITE_DONE) e = os_error("read the store", sqlite3_errmsg(S.db));
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return e;
}

void store_each_unattached(void (*f)(const char *name, const store_meta *meta, int64_t items, void *ctx), void *ctx) {
  sqlite3_stmt *s = S.st[S_ALL];
  while (sqlite3_step(s) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(s, 0);
    bool attached = false;
    for (store_obj *o = S.objs; o && !attached; o = o->next) attached = strcmp(o->name, name) == 0;
    if (attached) continue;
    store_meta m = {(const char *)sqlite3_column_text(s, 1), sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                    sqlite3_column_int(s, 4) != 0};
    f(name, &m, sqlite3_column_int64(s, 5), ctx);
  }
  sqlite3_reset(s);
}
