/* turn.c: the end of a loop turn: commit what the turn stored, then let its replies go. */
#include "turn.h"

#include "conn.h"
#include "store.h"

static struct ev_loop *loop;
/* Never started: fed when a turn records its first change. Its priority is the lowest, so
   it runs after every event of the turn, including those the turn's own callbacks feed
   (libev runs pending watchers by priority, going back up whenever one is fed), and before
   the loop polls again: one commit carries every change of the turn. */
static ev_prepare commit_w;

static void on_commit(struct ev_loop *l, ev_prepare *w, int revents) {
  (void)l, (void)w, (void)revents;
  turn_end();
}

/* The store's first change of a turn. */
static void on_change(void) {
  if (!ev_is_pending(&commit_w)) ev_feed_event(loop, &commit_w, EV_CUSTOM);
}

void turn_init(struct ev_loop *l) {
  loop = l;
  ev_prepare_init(&commit_w, on_commit);
  ev_set_priority(&commit_w, EV_MINPRI);
  store_on_change = on_change;
}

bool turn_pending(void) { return store_pending(); }

void turn_end(void) {
  if (loop) ev_clear_pending(loop, &commit_w);
  value *e = store_commit();
  conn_release_held(e); /* a change a rollback made (a waiter served) starts a new turn */
  v_decref(e);
}
