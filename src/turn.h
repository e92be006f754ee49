/* turn.h: the end of a loop turn: commit what the turn stored, then let its replies go. */
#ifndef SHMGR_TURN_H
#define SHMGR_TURN_H

#include <ev.h>
#include <stdbool.h>

/* Make the loop commit the store once per turn: after every other event of the turn has
   run, and before the loop waits again. Replies written while the turn has uncommitted
   changes wait in their connections (conn_reply) and go out after the commit; if it
   fails, those of the calls that touched durable state are replaced by its error. */
void turn_init(struct ev_loop *loop);
/* The current turn has uncommitted changes: a reply written now must wait for them. */
bool turn_pending(void);
/* End the turn now (the server stopping): commit, and let the replies go. */
void turn_end(void);

#endif
