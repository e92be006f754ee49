/* conn.c: one client connection: buffers, framing, the handshake, and its one teardown path. */
#include "alloc.h"
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authlimit.h"
#include "dispatch.h"
#include "log.h"
#include "objects.h"
#include "owner.h"
#include "pickle.h"
#include "server.h"
#include "stats.h"
#include "token.h"
#include "turn.h"
#include "xmlrpc.h"

#define READ_CHUNK 4096   /* a read's minimum room; a known frame length reserves all it needs */
#define KEEP_BUFFER 65536 /* an idle connection gives back buffers larger than this */
#define DISCARD_GRACE 5.0 /* seconds we go on reading a refused request's body before closing */
#define SNIFF_GRACE 0.2   /* seconds an oversized first request's header waits for a body byte */
#define LARGE_FRAME 0x7fffffff /* above this, multiprocessing uses the -1 + 8-byte form */
#define OUT_HIGH (256 * 1024) /* unsent reply bytes past which a connection's requests wait */

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents);
static void on_resume(struct ev_loop *loop, ev_prepare *w, int revents);
static void on_stalled(struct ev_loop *loop, ev_timer *w, int revents);

/* Queue one frame: the length as multiprocessing writes it, then the payload. */
static void put_frame(conn *c, const void *p, size_t n) {
  uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  buf_put(&c->out, h, 4);
  buf_put(&c->out, p, n);
}

static conn *held_first; /* the connections whose reply waits for the turn's commit */

/* Write what we can now; the rest waits for the socket to drain, and a held reply for the
   turn's commit. */
static void flush(conn *c) {
  /* a closing TCP connection holds back its last bytes (MSG_MORE) so that close() sends
     them with our FIN in one packet: a fresh connection's reply costs one packet less */
  int flags = c->tcp && c->st == CS_CLOSING ? MSG_MORE : 0;
  while ((c->held ? c->held_at : c->out.len) && !c->dead) {
    ssize_t n = send(c->fd, c->out.data, c->held ? c->held_at : c->out.len, flags);
    if (n > 0) {
      c->bytes_out += (uint64_t)n;
      the_stats.bytes_out += (uint64_t)n;
      buf_consume(&c->out, (size_t)n);
      if (c->held) c->held_at -= (size_t)n;
      if (ev_is_active(&c->stalled)) ev_timer_again(the_server.loop, &c->stalled); /* it reads */
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!ev_is_active(&c->wio)) ev_io_start(the_server.loop, &c->wio);
      if (!ev_is_active(&c->stalled) && the_server.cfg->send_timeout > 0) ev_timer_again(the_server.loop, &c->stalled);
      if (c->out.len > OUT_HIGH && !c->backlogged) {
        /* read no more requests until the client reads its replies: the kernel then holds
           back its writes, and a client that never reads cannot make us buffer without end */
        c->backlogged = true;
        ev_io_stop(the_server.loop, &c->rio);
      }
      return;
    } else {
      c->dead = true; /* closed by its own read callback, never under someone else's */
      ev_feed_event(the_server.loop, &c->rio, EV_READ);
    }
  }
  if (c->held) return; /* the rest goes after the commit */
  if (ev_is_active(&c->wio)) ev_io_stop(the_server.loop, &c->wio);
  ev_timer_stop(the_server.loop, &c->stalled);
  if (c->backlogged && !c->dead) {
    c->backlogged = false;
    ev_io_start(the_server.loop, &c->rio);
    conn_resume(c); /* the requests that waited */
  }
  if (c->out.cap > KEEP_BUFFER) buf_free(&c->out); /* one big reply must not pin its buffer */
  if (c->st == CS_CLOSING) ev_feed_event(the_server.loop, &c->rio, EV_READ);
  if (c->st == CS_DISCARD && !c->half_closed) {
    /* the peer reads our error, then EOF, while we still swallow what it sends: closing
       with its bytes unread would reset the connection before it could read why */
    shutdown(c->fd, SHUT_WR);
    c->half_closed = true;
  }
}

void conn_open(int fd, const char *peer, bool tcp) {
  static uintptr_t clients; /* the last holder key given out */
  conn *c = xcalloc(1, sizeof *c);
  c->fd = fd;
  c->holder = (void *)++clients;
  c->id = (uint64_t)clients;
  c->proto = 4;
  c->tcp = tcp;
  c->opened = c->last = ev_now(the_server.loop);
  snprintf(c->peer, sizeof c->peer, "%s", peer);
  snprintf(c->label, sizeof c->label, "#%llu %s", (unsigned long long)c->id, peer);
  the_stats.conns_total++;
  logmsg(LOG_DEBUG, "%s: connected", c->label);
  ev_io_init(&c->rio, on_read, fd, EV_READ);
  ev_io_init(&c->wio, on_write, fd, EV_WRITE);
  ev_timer_init(&c->timer, on_timeout, the_server.cfg->handshake_timeout, 0.);
  ev_prepare_init(&c->resume, on_resume); /* never started: conn_resume feeds it */
  ev_init(&c->stalled, on_stalled);
  c->stalled.repeat = the_server.cfg->send_timeout;
  c->next = the_server.conns;
  if (c->next) c->next->prev = c;
  the_server.conns = c;
  the_server.nconns++;
  buf msg = {0};
  if (!auth_put_challenge(&msg, c->challenge)) {
    logmsg(LOG_ERROR, "%s: no random bytes for a challenge; dropping it", c->label);
    conn_close(c, NULL);
    return;
  }
  put_frame(c, msg.data, msg.len);
  buf_free(&msg);
  c->st = CS_AUTH_ANSWER;
  ev_io_start(the_server.loop, &c->rio);
  if (the_server.cfg->handshake_timeout > 0) ev_timer_start(the_server.loop, &c->timer);
  flush(c);
}

/* c's replies from now on wait for the turn's commit. */
static void hold(conn *c) {
  c->held = true;
  c->held_at = c->out.len;
  c->hprev = NULL;
  c->hnext = held_first;
  if (held_first) held_first->hprev = c;
  held_first = c;
}

static void unhold(conn *c) {
  if (c->hprev) c->hprev->hnext = c->hnext;
  else held_first = c->hnext;
  if (c->hnext) c->hnext->hprev = c->hprev;
  c->held = c->touched = false;
}

void conn_release_held(const value *exc) {
  /* the list is taken whole first: a reply written below may be held again, by a turn that
     a rollback's wake-ups began, and must then wait for that turn's commit */
  conn *c = held_first;
  held_first = NULL;
  while (c) {
    conn *next = c->hnext;
    bool failed = exc && c->touched;
    c->held = c->touched = false;
    c->hprev = c->hnext = NULL;
    if (failed) { /* what it said is not stored: it says so instead */
      c->out.len = c->held_at;
      conn_reply(c, "#ERROR", v_incref((value *)exc));
    } else {
      flush(c);
    }
    conn_resume(c);
    c = next;
  }
}

static void exc_line(buf *out, const value *exc);

/* The class xmlrpclib names for a dict view (managers.py pickles one as builtins.list([...])),
   from the method in flight: "dict_keys" for keys(). NULL for any other call. */
static const char *view_class(const conn *c) {
  const value *m = c->req && c->req->u.seq.len > 1 ? c->req->u.seq.items[1] : NULL;
  if (!m) return NULL;
  if (v_is_str(m, "keys")) return "dict_keys";
  if (v_is_str(m, "values")) return "dict_values";
  if (v_is_str(m, "items")) return "dict_items";
  return NULL;
}

void conn_reply(conn *c, const char *kind, value *result) {
  if (!c->held) {
    if (turn_pending()) hold(c);
    else c->touched = false; /* a reply that goes out now: nothing can fail it any more */
  }
  value *msg = v_tuple(2);
  msg->u.seq.items[0] = v_strz(kind);
  msg->u.seq.items[1] = result;
  size_t at = c->out.len;
  buf_put(&c->out, "\0\0\0\0", 4); /* the length, filled in below */
  buf failed = {0}; /* why it cannot be sent: the traceback text of the reply sent instead */
  if (c->ser == SER_XML) {
    value *exc = NULL;
    /* a reply's document may be 4 x max_message long: XML-RPC writes shared structure out in
       full, and a pickle client may have stored a small value with 2**40 paths through it */
    size_t max_len = the_server.cfg->max_message > SIZE_MAX / 4 ? SIZE_MAX : 4 * the_server.cfg->max_message;
    if (xmlrpc_dump(&c->out, msg, view_class(c), max_len, &exc) < 0) {
      buf_str(&failed, "Traceback (most recent call last):\n  File \"shmgr\", in send\n");
      exc_line(&failed, exc);
      buf_byte(&failed, '\n');
      v_decref(exc);
    }
  } else {
    char err[256];
    if (pickle_dump(&c->out, msg, c->proto, err, sizeof err) < 0)
      buf_printf(&failed, "Traceback (most recent call last):\n  File \"shmgr\", in send\n%s\n", err);
  }
  if (failed.len) {
    v_decref(msg);
    c->out.len = at;
    if (strcmp(kind, "#UNSERIALIZABLE") == 0 || strcmp(kind, "#TRACEBACK") == 0) {
      /* not even the report can go: CPython's server gives up on the connection too */
      logmsg(LOG_WARN, "%s: cannot send a %s reply; closing", c->label, kind);
      buf_free(&failed);
      return conn_kill(c, "a reply it cannot be sent");
    }
    /* CPython's _handle_request (a fresh connection's one request) sends #TRACEBACK when its
       reply fails to go; serve_client sends #UNSERIALIZABLE */
    const char *instead = c->ser == SER_XML && c->st == CS_CLOSING ? "#TRACEBACK" : "#UNSERIALIZABLE";
    conn_reply(c, instead, v_str((const char *)failed.data, failed.len));
    buf_free(&failed);
    return;
  }
  v_decref(msg);
  size_t n = c->out.len - at - 4;
  uint8_t *h = c->out.data + at;
  if (n <= LARGE_FRAME) {
    h[0] = (uint8_t)(n >> 24), h[1] = (uint8_t)(n >> 16), h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n;
  } else { /* -1, then the length in 8 bytes */
    buf_reserve(&c->out, 8);
    h = c->out.data + at;
    memmove(h + 12, h + 4, n);
    memset(h, 0xff, 4);
    for (int i = 0; i < 8; i++) h[4 + i] = (uint8_t)(n >> (56 - 8 * i));
    c->out.len += 8;
  }
  flush(c);
}

/* OSError(errno, strerror[, filename]) as Python prints it: the subclass the errno makes,
   "[Errno N] strerror", then ": 'filename'". False when exc is no such OSError. */
static bool os_error_line(buf *out, const value *name, const value *args) {
  size_t n = args->u.seq.len;
  if (!v_is_str(name, "OSError") || n < 2 || n > 3 || args->u.seq.items[0]->kind != VK_INT ||
      args->u.seq.items[1]->kind != VK_STR)
    return false;
  int64_t e = args->u.seq.items[0]->u.i;
  const value *msg = args->u.seq.items[1];
  buf_printf(out, "%s: [Errno %lld] ", v_os_error_class(e), (long long)e);
  buf_put(out, msg->u.s.data, msg->u.s.len);
  if (n == 3) {
    buf_str(out, ": ");
    v_repr(out, args->u.seq.items[2]);
  }
  return true;
}

/* UnicodeEncodeError(encoding, text, start, end, reason) as its __str__ words it: the one
   character by its escape, or the run of them by position. False for anything else. */
static bool encode_error_line(buf *out, const value *name, const value *args) {
  if (!v_is_str(name, "UnicodeEncodeError") || args->u.seq.len != 5) return false;
  value *const *a = args->u.seq.items;
  if (a[0]->kind != VK_STR || a[1]->kind != VK_STR || a[2]->kind != VK_INT || a[3]->kind != VK_INT ||
      a[4]->kind != VK_STR || a[2]->u.i < 0 || a[3]->u.i <= a[2]->u.i)
    return false;
  char what[64];
  if (a[3]->u.i == a[2]->u.i + 1) {
    /* the code point at index start of the text (shmgr's UTF-8, surrogates included) */
    const uint8_t *t = (const uint8_t *)a[1]->u.s.data;
    size_t n = a[1]->u.s.len, i = 0;
    for (int64_t k = 0; k < a[2]->u.i && i < n; k++) i += t[i] < 0xc0 ? 1 : t[i] < 0xe0 ? 2 : t[i] < 0xf0 ? 3 : 4;
    if (i >= n) return false;
    size_t len = t[i] < 0x80 ? 1 : t[i] < 0xe0 ? 2 : t[i] < 0xf0 ? 3 : 4;
    uint32_t cp = len == 1 ? t[i] : len == 2 ? (t[i] & 0x1fu) : len == 3 ? (t[i] & 0x0fu) : (t[i] & 0x07u);
    for (size_t k = 1; k < len && i + k < n; k++) cp = cp << 6 | (t[i + k] & 0x3fu);
    char esc[16];
    if (cp <= 0xff) snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
    else if (cp <= 0xffff) snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
    else snprintf(esc, sizeof esc, "\\U%08x", (unsigned)cp);
    snprintf(what, sizeof what, "character '%s' in position %lld", esc, (long long)a[2]->u.i);
  } else {
    snprintf(what, sizeof what, "characters in position %lld-%lld", (long long)a[2]->u.i, (long long)a[3]->u.i - 1);
  }
  buf_str(out, "UnicodeEncodeError: '");
  buf_put(out, a[0]->u.s.data, a[0]->u.s.len);
  buf_printf(out, "' codec can't encode %s: ", what);
  buf_put(out, a[4]->u.s.data, a[4]->u.s.len);
  return true;
}

/* Python's str(exc) after "Name: ", as traceback.format_exception writes the last line. */
static void exc_line(buf *out, const value *exc) {
  const opaque *o = exc->kind == VK_OPAQUE ? exc->u.o : NULL;
  if (!o || o->callable->kind != VK_GLOBAL || o->args->kind != VK_TUPLE) {
    v_repr(out, exc);
    return;
  }
  const value *mod = o->callable->u.g.module, *name = o->callable->u.g.name;
  if (v_is_str(mod, "builtins") && (os_error_line(out, name, o->args) || encode_error_line(out, name, o->args)))
    return;
  if (!v_is_str(mod, "builtins")) {
    buf_put(out, mod->u.s.data, mod->u.s.len);
    buf_byte(out, '.');
  }
  buf_put(out, name->u.s.data, name->u.s.len);
  const value *args = o->args;
  if (args->u.seq.len == 0) return;
  buf_str(out, ": ");
  const value *a = args->u.seq.items[0];
  if (args->u.seq.len > 1) v_repr(out, args);
  else if (a->kind == VK_STR && !v_is_str(name, "KeyError")) buf_put(out, a->u.s.data, a->u.s.len);
  else v_repr(out, a);
}

void conn_traceback(conn *c, const char *where, value *exc) {
  buf text = {0};
  buf_printf(&text, "Traceback (most recent call last):\n  File \"shmgr\", in %s\n", where);
  exc_line(&text, exc);
  buf_byte(&text, '\n');
  v_decref(exc);
  conn_reply(c, "#TRACEBACK", v_str((const char *)text.data, text.len));
  buf_free(&text);
}

void conn_close_after_reply(conn *c) {
  c->st = CS_CLOSING;
  flush(c);
}

/* Restart the idle countdown (limits.idle_timeout) of an authenticated connection that has
   no call in flight: a client waiting for a parked call is not idle. */
static void not_idle(conn *c) {
  if ((c->st == CS_FIRST || c->st == CS_SERVING) && c->timer.repeat > 0) {
    if (c->req) ev_timer_stop(the_server.loop, &c->timer);
    else ev_timer_again(the_server.loop, &c->timer);
  }
}

void conn_resume(conn *c) {
  not_idle(c);
  /* Only what is already read: bytes that came since are the loop's to report, in turn
     with every other connection's. Reading them now would let a client whose calls end
     at once (a producer filling a queue) jump ahead of connections already waiting to
     be served, and cost a read() that mostly finds nothing. */
  if (c->in.len) ev_feed_event(the_server.loop, &c->resume, EV_CUSTOM);
}

void conn_kill(conn *c, const char *why) {
  c->dead = true;
  c->kill_why = why;
  ev_feed_event(the_server.loop, &c->rio, EV_READ); /* on_read closes it */
}

conn *conn_by_id(uint64_t id) {
  for (conn *c = the_server.conns; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

void conn_close(conn *c, const char *why) {
  logmsg(LOG_DEBUG, "%s: closed%s%s (%llu calls in %.1f s)", c->label, why ? ": " : "", why ? why : "",
         (unsigned long long)c->calls, ev_now(the_server.loop) - c->opened);
  if (c->req) {
    if (wait_is_pending(&c->call)) wait_cancel(&c->call); /* nothing it awaited is lost */
    v_decref(c->req);
    c->req = NULL;
  }
  if (c->target) obj_release(c->target);
  if (c->held) unhold(c);
  own_abandon(c->holder, c->label); /* the locks it held: released or kept, as lock_policy says */
  ev_io_stop(the_server.loop, &c->rio); /* also forgets events fed to it */
  ev_io_stop(the_server.loop, &c->wio);
  ev_timer_stop(the_server.loop, &c->timer);
  ev_timer_stop(the_server.loop, &c->stalled);
  ev_clear_pending(the_server.loop, &c->resume);
  close(c->fd);
  buf_free(&c->in);
  buf_free(&c->out);
  if (c->prev) c->prev->next = c->next;
  else the_server.conns = c->next;
  if (c->next) c->next->prev = c->prev;
  the_server.nconns--;
  free(c);
}

void conn_abort_waiting(const char *why) {
  char msg[120];
  snprintf(msg, sizeof msg, "shmgr is stopping: %s", why);
  for (conn *c = the_server.conns; c; c = c->next) dispatch_abort(c, v_exception_msg("EOFError", msg));
}

void conn_close_all(void) {
  while (the_server.conns) conn_close(the_server.conns, "server stopping");
}

bool conn_any_unflushed(void) {
  for (conn *c = the_server.conns; c; c = c->next)
    if (c->out.len && !c->dead) return true;
  return false;
}

/* A handshake step failed: log it, and close once what is queued (#FAILURE#) is written. */
/* Count a failed handshake against the peer's address (limits.max_auth_failures). */
static void count_failure(const conn *c) {
  if (!c->tcp) return; /* Unix sockets are guarded by their file's permissions */
  char host[sizeof c->peer];
  snprintf(host, sizeof host, "%s", c->peer);
  char *colon = strrchr(host, ':'); /* "host:port", host possibly IPv6 */
  if (colon) *colon = 0;
  authlimit_failed(host, ev_now(the_server.loop));
}

static void auth_failed(conn *c, const char *why) {
  logmsg(LOG_WARN, "%s: authentication failed: %s", c->label, why);
  the_stats.auth_failures++;
  count_failure(c);
  c->st = CS_CLOSING;
}

static void handle_frame(conn *c, const uint8_t *p, size_t n) {
  const char *why = NULL;
  size_t cl = strlen(AUTH_CHALLENGE);
  switch (c->st) {
  case CS_AUTH_ANSWER:
    if (auth_check_answer(the_server.cfg->authkey.data, the_server.cfg->authkey.len, c->challenge, AUTH_MSG_LEN, p, n, &why)) {
      put_frame(c, AUTH_WELCOME, strlen(AUTH_WELCOME));
      c->st = CS_AUTH_CHALLENGE;
    } else {
      put_frame(c, AUTH_FAILURE, strlen(AUTH_FAILURE));
      auth_failed(c, why);
    }
    break;
  case CS_AUTH_CHALLENGE: {
    buf ans = {0};
    if (n < cl || memcmp(p, AUTH_CHALLENGE, cl) != 0) {
      auth_failed(c, "expected the client's challenge");
    } else if (!auth_answer(the_server.cfg->authkey.data, the_server.cfg->authkey.len, p + cl, n - cl, &ans, &why)) {
      auth_failed(c, why);
    } else {
      put_frame(c, ans.data, ans.len);
      c->st = CS_AUTH_WELCOME;
    }
    buf_free(&ans);
    break;
  }
  case CS_AUTH_WELCOME:
    if (n == strlen(AUTH_WELCOME) && memcmp(p, AUTH_WELCOME, n) == 0) {
      c->st = CS_FIRST;
      ev_timer_stop(the_server.loop, &c->timer);
      c->timer.repeat = the_server.cfg->idle_timeout; /* from now on the timer watches for idleness */
      ev_timer_again(the_server.loop, &c->timer);
    } else {
      auth_failed(c, "the client rejected our answer (is its authkey the same?)");
    }
    break;
  case CS_FIRST:
  case CS_SERVING: {
    if (c->ser == SER_UNKNOWN) c->ser = xmlrpc_sniff(p, n) ? SER_XML : SER_PICKLE;
    if (c->ser == SER_XML) {
      xmlrpc_limits lim = {the_server.cfg->max_depth, the_server.cfg->max_objects};
      value *exc = NULL, *req = xmlrpc_load(p, n, &lim, &exc);
      if (!req) {
        buf line = {0};
        exc_line(&line, exc);
        logmsg(LOG_INFO, "%s: bad XML-RPC request: %.*s", c->label, (int)line.len, (const char *)line.data);
        buf_free(&line);
        the_stats.limits[LIM_BAD_REQUEST]++;
        conn_traceback(c, "recv", exc);
        if (c->st == CS_FIRST) conn_close_after_reply(c);
        break;
      }
      dispatch_request(c, req);
      break;
    }
    char err[256];
    int proto = 0;
    pickle_limits lim = {the_server.cfg->max_depth, the_server.cfg->max_objects, token_on_proxy};
    value *req = pickle_load(p, n, &lim, &proto, err, sizeof err);
    if (proto >= 5) c->proto = 5;
    if (!req) {
      logmsg(LOG_INFO, "%s: bad request: %s", c->label, err);
      the_stats.limits[LIM_BAD_REQUEST]++;
      value *args = v_tuple(1);
      args->u.seq.items[0] = v_strz(err);
      conn_traceback(c, "recv", v_exception("_pickle", "UnpicklingError", args));
      if (c->st == CS_FIRST) conn_close_after_reply(c);
      break;
    }
    dispatch_request(c, req);
    break;
  }
  default:
    break;
  }
  flush(c);
}

/* Cut complete frames out of c->in and handle them, one request at a time. */
static void process(conn *c) {
  while (!c->req && !c->dead && c->st != CS_CLOSING && !c->backlogged && !c->held) {
    if (c->st == CS_DISCARD) {
      size_t k = c->discard < c->in.len ? c->discard : c->in.len;
      buf_consume(&c->in, k);
      if ((c->discard -= k) == 0) conn_close_after_reply(c);
      return;
    }
    if (c->in.len < 4) return;
    const uint8_t *h = c->in.data;
    int32_t len32 = (int32_t)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]);
    size_t hdr = 4, n = (size_t)len32;
    if (len32 == -1) {
      if (c->in.len < 12) return;
      uint64_t n64 = 0;
      for (int i = 0; i < 8; i++) n64 = n64 << 8 | h[4 + i];
      hdr = 12;
      n = n64 > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)n64;
    } else if (len32 < 0) {
      logmsg(LOG_WARN, "%s: bad frame length %d; closing", c->label, (int)len32);
      the_stats.limits[LIM_BAD_REQUEST]++;
      c->st = CS_CLOSING;
      return;
    }
    bool authed = c->st == CS_FIRST || c->st == CS_SERVING;
    size_t limit = authed ? the_server.cfg->max_message : AUTH_MAX_MESSAGE;
    if (n > limit) {
      if (!authed) {
        logmsg(LOG_WARN, "%s: handshake message of %zu bytes (limit %d); closing", c->label, n, AUTH_MAX_MESSAGE);
        the_stats.auth_failures++;
        c->st = CS_CLOSING;
        return;
      }
      if (c->ser == SER_UNKNOWN) { /* answer in the client's own serializer: its first byte says */
        if (c->in.len == hdr) { /* a large message's header comes alone, its body next; if none
                                   comes (a client that sent only a length), pickle it is */
          if (!c->sniffing) {
            c->sniffing = true;
            ev_timer_stop(the_server.loop, &c->timer);
            ev_timer_set(&c->timer, SNIFF_GRACE, 0.);
            ev_timer_start(the_server.loop, &c->timer);
          }
          return;
        }
        c->ser = xmlrpc_sniff(c->in.data + hdr, c->in.len - hdr) ? SER_XML : SER_PICKLE;
      }
      c->sniffing = false;
      char msg[160];
      snprintf(msg, sizeof msg, "message of %zu bytes exceeds the server's limit of %zu bytes (max_message)", n, limit);
      logmsg(LOG_WARN, "%s: %s; closing", c->label, msg);
      the_stats.limits[LIM_MAX_MESSAGE]++;
      conn_traceback(c, "recv", v_exception_msg("OSError", msg));
      c->st = CS_DISCARD; /* skip the body, for a while, so the client can read why */
      c->discard = hdr + n;
      ev_timer_stop(the_server.loop, &c->timer);
      ev_timer_set(&c->timer, DISCARD_GRACE, 0.);
      ev_timer_start(the_server.loop, &c->timer);
      flush(c);
      continue;
    }
    if (c->in.len - hdr < n) {
      buf_reserve(&c->in, hdr + n - c->in.len);
      return;
    }
    handle_frame(c, c->in.data + hdr, n);
    buf_consume(&c->in, hdr + n);
    if (!c->in.len && c->in.cap > KEEP_BUFFER) buf_free(&c->in); /* one big request must not pin its buffer */
  }
}

static void after_input(conn *c, bool got_bytes);

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  conn *c = (conn *)((char *)w - offsetof(conn, rio));
  if (c->dead) return conn_close(c, c->kill_why ? c->kill_why : "write failed");
  if (c->st == CS_CLOSING && !c->out.len) return conn_close(c, NULL);
  buf_reserve(&c->in, READ_CHUNK);
  ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
  if (n == 0) return conn_close(c, "end of stream");
  if (n < 0 && errno != EAGAIN && errno != EINTR) return conn_close(c, strerror(errno));
  if (n > 0) {
    c->in.len += (size_t)n;
    c->bytes_in += (uint64_t)n;
    the_stats.bytes_in += (uint64_t)n;
  }
  process(c);
  if (n > 0) not_idle(c);
  after_input(c, n > 0);
}

/* A call ended and c has requests already buffered: serve the next one. */
static void on_resume(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)loop, (void)revents;
  conn *c = (conn *)((char *)w - offsetof(conn, resume));
  if (c->dead) return conn_close(c, c->kill_why ? c->kill_why : "write failed");
  process(c);
  not_idle(c); /* a buffered request may have parked: a waiting call is not idleness */
  after_input(c, false);
}

/* After c's input was served: acknowledge at once where the client would otherwise stall,
   and close c if it is done. got_bytes: this round read something from the socket. */
static void after_input(conn *c, bool got_bytes) {
  if (got_bytes && c->tcp && !c->req && (c->st == CS_FIRST || (c->st == CS_SERVING && c->in.len))) {
    /* We wait for more of the client's bytes and have nothing to send that would carry
       our ACK. Python clients write #WELCOME# and then their request, two small writes
       in a row (and a large request as header, then body): under Nagle the second waits
       for our ACK of the first, which Linux delays (~40 ms). Acknowledge at once, here
       only: each such ACK is a packet of its own, and everywhere else it rides on a reply. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }
  if (c->st == CS_CLOSING && !c->out.len) conn_close(c, NULL);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  flush((conn *)((char *)w - offsetof(conn, wio)));
}

static void on_stalled(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  conn *c = (conn *)((char *)w - offsetof(conn, stalled));
  logmsg(LOG_WARN, "%s: read none of its replies for %g s (limits.send_timeout); closing", c->label,
         the_server.cfg->send_timeout);
  the_stats.limits[LIM_SEND_TIMEOUT]++;
  conn_close(c, NULL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  conn *c = (conn *)((char *)w - offsetof(conn, timer));
  if (c->st == CS_DISCARD) return conn_close(c, "end of the grace time after a refused request");
  if (c->sniffing) { /* no body byte came after an oversized length: refuse it in pickle */
    c->ser = SER_PICKLE;
    process(c);
    return;
  }
  if (c->st == CS_FIRST || c->st == CS_SERVING) {
    logmsg(LOG_INFO, "%s: idle for %g s (limits.idle_timeout); closing", c->label, the_server.cfg->idle_timeout);
    the_stats.limits[LIM_IDLE_TIMEOUT]++;
    return conn_close(c, NULL);
  }
  logmsg(LOG_WARN, "%s: handshake not finished within %g s; closing", c->label, the_server.cfg->handshake_timeout);
  the_stats.limits[LIM_HANDSHAKE_TIMEOUT]++;
  the_stats.auth_failures++;
  count_failure(c);
  conn_close(c, NULL);
}
