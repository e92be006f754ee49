/* starter.h: what the process that starts shmgr hands it on the command line (--authkey-fd,
   --watch-fd, --ready-fd, --remove-dir): a key on a descriptor, a pipe whose end means "stop",
   a pipe to say "listening" on, a private folder to remove at exit. The Python package
   (python/shmgr) starts shmgr this way; any other starter may. */
#ifndef SHMGR_STARTER_H
#define SHMGR_STARTER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* The descriptor number of a command-line argument ("0" .. INT_MAX), or -1 when text is not one. */
int starter_fd_arg(const char *text);

/* Read descriptor fd to its end into key (replacing what it held): every byte, NULs and
   newlines included. Closes fd, read or not. False with the reason in err when it cannot be
   read. */
bool starter_read_key(int fd, buf *key, char *err, size_t errlen);

/* Say "listening on ..." on descriptor fd, not on stderr, and copy error lines there until
   then (log_copy_fd), so that whoever waits on it reads either the addresses or why shmgr
   did not start. The descriptor is closed by starter_ready, or at exit. */
void starter_set_ready_fd(int fd);
/* A "listening on NAME" line: kept for the ready descriptor when there is one (written by
   starter_ready), else printed on stderr at once. */
void starter_listening(const char *name);
/* Every listener is open: write the kept lines to the ready descriptor and close it (errors
   are no longer copied). Nothing without one. */
void starter_ready(void);

/* Stop shmgr as SIGTERM does (server_stop) once descriptor fd reaches its end: the read end
   of a pipe whose write end the owner holds, so that its exit, however it comes, stops
   shmgr. Watched by an ev_io on loop; data read from it is ignored. False with the reason in
   err when fd is not open. */
bool starter_watch(struct ev_loop *loop, int fd, char *err, size_t errlen);

/* Remove folder dir at exit, after the Unix sockets' files (starter_close): a private
   folder the starter made for the socket. Only if it is empty then (rmdir). dir is borrowed
   (argv). */
void starter_set_remove_dir(const char *dir);

/* At exit, after the listeners are closed: stop watching, close the descriptors still open,
   remove the folder of starter_set_remove_dir. */
void starter_close(void);

#endif
