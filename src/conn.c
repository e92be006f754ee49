/* conn.c: one client connection: buffers, framing, the handshake, and its one teardown path. */
#include "alloc.h"
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "authlimit.h"
#include "bigcache.h"
#include "dispatch.h"
#include "log.h"
#include "memcount.h"
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
/* Frames and payloads from this size on are large: a large frame is read into an allocation
   of its own size, admitted under limits.max_memory; a large str or bytes is kept in the
   bytes it arrived in and sent from where it lies. */
#define LARGE (64 * 1024)
#define DISCARD_STALL 10.0 /* seconds a refused request's bytes may stop coming before we close */
#define SNIFF_GRACE 0.2   /* seconds an oversized first request's header waits for a body byte */
#define LARGE_FRAME 0x7fffffff /* above this, multiprocessing uses the -1 + 8-byte form */
#define OUT_HIGH (256 * 1024) /* unsent reply bytes past which a connection's requests wait */
#define HUGE_PAGE ((size_t)2 << 20)
#define IOV_BATCH 64      /* pieces of out and spans one sendmsg takes */

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents);
static void on_resume(struct ev_loop *loop, ev_prepare *w, int revents);
static void on_stalled(struct ev_loop *loop, ev_timer *w, int revents);
static void want_read(conn *c);
static void mem_unwait(conn *c);

static conn *held_first; /* the connections whose reply waits for the turn's commit */

/* Bytes queued to c and not sent yet, spans and held replies included. */
static size_t unsent(const conn *c) {
  size_t n = c->out.len - c->out_at - c->span_sent;
  for (size_t i = 0; i < c->spans.n; i++) n += c->spans.items[i].v->u.s.len;
  return n;
}

/* The pieces sendable now, in stream order: out from out_at, each span before out's byte at
   its offset, up to held_at when a reply waits for the commit. Returns how many. */
static int pieces(const conn *c, struct iovec *iov) {
  size_t end = c->held ? c->held_at : c->out.len, pos = c->out_at;
  int k = 0;
  for (size_t i = 0; i < c->spans.n; i++) {
    const pickle_span *s = &c->spans.items[i];
    if (s->at > end || (c->held && s->at == end)) break; /* a held reply's: it waits */
    if (k + 2 > IOV_BATCH) return k;
    if (s->at > pos) iov[k++] = (struct iovec){c->out.data + pos, s->at - pos};
    size_t off = i == 0 ? c->span_sent : 0;
    iov[k++] = (struct iovec){s->v->u.s.data + off, s->v->u.s.len - off};
    pos = s->at;
  }
  if (end > pos && k < IOV_BATCH) iov[k++] = (struct iovec){c->out.data + pos, end - pos};
  return k;
}

/* n more bytes went out: move past them, letting go of the spans sent whole. */
static void sent(conn *c, size_t n) {
  while (n) {
    pickle_span *s = c->spans.n ? &c->spans.items[0] : NULL;
    if (s && s->at == c->out_at) { /* the span comes first */
      size_t k = s->v->u.s.len - c->span_sent;
      if (k > n) k = n;
      c->span_sent += k;
      n -= k;
      if (c->span_sent == s->v->u.s.len) {
        v_decref(s->v);
        memmove(s, s + 1, (--c->spans.n) * sizeof *s);
        c->span_sent = 0;
      }
    } else {
      size_t k = (s ? s->at : c->out.len) - c->out_at;
      if (k > n) k = n;
      c->out_at += k;
      n -= k;
    }
  }
  if (c->out_at == c->out.len && !c->spans.n) {
    c->out.len = c->out_at = 0;
  } else if (c->out_at >= KEEP_BUFFER && c->out_at >= c->out.len / 2) { /* give the room back, rarely */
    size_t k = c->out_at;
    memmove(c->out.data, c->out.data + k, c->out.len - k);
    c->out.len -= k;
    c->out_at = 0;
    if (c->held) c->held_at -= k;
    for (size_t i = 0; i < c->spans.n; i++) c->spans.items[i].at -= k;
  }
}

/* Queue one frame: the length as multiprocessing writes it, then the payload. */
static void put_frame(conn *c, const void *p, size_t n) {
  uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  buf_put(&c->out, h, 4);
  buf_put(&c->out, p, n);
}

/* Write what we can now, in as few calls as the socket takes; the rest waits for the socket
   to drain, and a held reply for the turn's commit. */
static void flush(conn *c) {
  /* a closing TCP connection holds back its last bytes (MSG_MORE) so that close() sends
     them with our FIN in one packet: a fresh connection's reply costs one packet less */
  int flags = c->tcp && c->st == CS_CLOSING ? MSG_MORE : 0;
  struct iovec iov[IOV_BATCH];
  int k;
  while (!c->dead && (k = pieces(c, iov)) > 0) {
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)k};
    ssize_t n = sendmsg(c->fd, &msg, flags);
    if (n > 0) {
      c->bytes_out += (uint64_t)n;
      the_stats.bytes_out += (uint64_t)n;
      sent(c, (size_t)n);
      if (ev_is_active(&c->stalled)) ev_timer_again(the_server.loop, &c->stalled); /* it reads */
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!ev_is_active(&c->wio)) ev_io_start(the_server.loop, &c->wio);
      if (!ev_is_active(&c->stalled) && the_server.cfg->send_timeout > 0) ev_timer_again(the_server.loop, &c->stalled);
      if (!c->backlogged && unsent(c) > OUT_HIGH) {
        /* read no more requests until the client reads its replies: the kernel then holds
           back its writes, and a client that never reads cannot make us buffer without end */
        c->backlogged = true;
        want_read(c);
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
    want_read(c);
    conn_resume(c); /* the requests that waited */
  }
  if (!c->out.len && c->out.cap > KEEP_BUFFER) buf_free(&c->out); /* one big reply must not pin its buffer */
  if (c->st == CS_CLOSING) ev_feed_event(the_server.loop, &c->rio, EV_READ);
}

void conn_open(int fd, const char *peer, bool tcp) {
  static uintptr_t clients; /* the last holder key given out */
  conn *c = xcalloc(1, sizeof *c);
  c->fd = fd;
  c->holder = (void *)++clients;
  c->id = (uint64_t)clients;
  c->proto = 4;
  c->tcp = tcp;
  c->spans.min = LARGE;
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
      while (c->spans.n && c->spans.items[c->spans.n - 1].at >= c->held_at) v_decref(c->spans.items[--c->spans.n].v);
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
  size_t at = c->out.len, spans_before = c->spans.n;
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
    if (pickle_dump_spans(&c->out, msg, c->proto, &c->spans, err, sizeof err) < 0)
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
  size_t copied = c->out.len - at - 4, n = copied;
  for (size_t i = spans_before; i < c->spans.n; i++) n += c->spans.items[i].v->u.s.len;
  uint8_t *h = c->out.data + at;
  if (n <= LARGE_FRAME) {
    h[0] = (uint8_t)(n >> 24), h[1] = (uint8_t)(n >> 16), h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n;
  } else { /* -1, then the length in 8 bytes */
    buf_reserve(&c->out, 8);
    h = c->out.data + at;
    memmove(h + 12, h + 4, copied);
    memset(h, 0xff, 4);
    for (int i = 0; i < 8; i++) h[4 + i] = (uint8_t)(n >> (56 - 8 * i));
    c->out.len += 8;
    for (size_t i = spans_before; i < c->spans.n; i++) c->spans.items[i].at += 8;
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
  if (c->mem_waiting) mem_unwait(c);
  close(c->fd);
  buf_free(&c->in);
  buf_free(&c->out);
  while (c->spans.n) v_decref(c->spans.items[--c->spans.n].v);
  free(c->spans.items);
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
    if (unsent(c) && !c->dead) return true;
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

/* One whole frame. adopt: the frame fills an allocation of its own, which a large payload
   may keep (taken over: see pickle_adopt), or NULL. */
static void handle_frame(conn *c, const uint8_t *p, size_t n, pickle_adopt *adopt) {
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
    value *req = pickle_load_adopt(p, n, &lim, adopt, &proto, err, sizeof err);
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

/* ---- large frames under limits.max_memory ---- */

static conn *mem_first, *mem_last; /* the connections whose large frame waits for room */
static ev_prepare mem_watch;       /* started while some do: looks for room before each poll */

static void mem_unwait(conn *c) {
  if (c->mprev) c->mprev->mnext = c->mnext;
  else mem_first = c->mnext;
  if (c->mnext) c->mnext->mprev = c->mprev;
  else mem_last = c->mprev;
  c->mprev = c->mnext = NULL;
  c->mem_waiting = false;
  if (!mem_first) ev_prepare_stop(the_server.loop, &mem_watch);
}

/* Ask for transparent huge pages where the frame will land: the reads that fill it then take
   a page fault every 2 MiB, not every 4 KiB (a fault costs more than copying its page). */
static void huge_pages(void *p, size_t n) {
  uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1), e = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE_PAGE - 1);
  if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/* Read the large frame whose first bytes c->in holds from in_at into an allocation of its
   own size: its reads fill it and nothing else, and its payload may stay there. */
static void take_exact(conn *c, size_t frame) {
  size_t have = c->in.len - c->in_at;
  uint8_t *p = bigcache_alloc(frame);
  huge_pages(p, frame);
  memcpy(p, c->in.data + c->in_at, have);
  buf_free(&c->in);
  c->in = (buf){p, have, frame};
  c->in_at = 0;
  c->exact = true;
}

/* Before each poll while large frames wait: each that fits now, oldest first, is read. Freed
   memory comes from calls and closes, all of them callbacks that ran before this. */
static void on_mem_watch(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)loop, (void)w, (void)revents;
  for (conn *c = mem_first, *next; c; c = next) {
    next = c->mnext;
    if (!mem_fits(c->mem_need)) continue;
    mem_unwait(c);
    ev_timer_stop(the_server.loop, &c->timer);
    c->timer.repeat = the_server.cfg->idle_timeout; /* the timer watches for idleness again */
    not_idle(c);
    take_exact(c, c->mem_need);
    want_read(c);
    ev_feed_event(the_server.loop, &c->rio, EV_READ); /* what came meanwhile */
  }
}

/* c's large frame of `frame` bytes has no room: read nothing more from c until it has, for
   limits.memory_wait seconds at most (on_timeout then refuses it). */
static void mem_wait(conn *c, size_t frame) {
  if (!mem_first) {
    ev_prepare_init(&mem_watch, on_mem_watch);
    ev_prepare_start(the_server.loop, &mem_watch);
  }
  c->mem_waiting = true;
  c->mem_need = frame;
  c->mprev = mem_last;
  c->mnext = NULL;
  if (mem_last) mem_last->mnext = c;
  else mem_first = c;
  mem_last = c;
  ev_timer_stop(the_server.loop, &c->timer);
  ev_timer_set(&c->timer, the_server.cfg->memory_wait, 0.);
  ev_timer_start(the_server.loop, &c->timer);
  want_read(c);
}

/* Should c's socket be watched for input? Not while its replies pile up unread, while its
   large frame waits for memory, or while an exact buffer is full (the frame waits for the
   call before it to end). Sets the watcher so. */
static void want_read(conn *c) {
  if (c->dead) return; /* its read callback, fed, closes it: stopping it would forget that */
  bool on = !c->backlogged && !c->mem_waiting && !(c->exact && c->in.len == c->in.cap);
  if (on && !ev_is_active(&c->rio)) ev_io_start(the_server.loop, &c->rio);
  else if (!on && ev_is_active(&c->rio)) ev_io_stop(the_server.loop, &c->rio);
}

/* Refuse the request whose frame (hdr + n bytes from in_at) is not read whole: answer now with
   exc (stolen), as the client's serializer speaks, then skip its bytes as they come. Its frame
   was never admitted (c->exact is another frame's, already handled), so in holds only the few
   bytes read before the refusal. */
static void refuse_frame(conn *c, size_t frame, value *exc, bool traceback) {
  if (c->ser == SER_UNKNOWN) { /* a first request: its first body byte says which serializer */
    uint8_t b[16];
    size_t have = c->in.len - c->in_at;
    size_t hdr = have >= 4 && c->in.data[c->in_at] == 0xff ? 12 : 4;
    if (have > hdr) c->ser = xmlrpc_sniff(c->in.data + c->in_at + hdr, have - hdr) ? SER_XML : SER_PICKLE;
    else {
      ssize_t k = recv(c->fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
      c->ser = k > 0 && xmlrpc_sniff(b, (size_t)k) ? SER_XML : SER_PICKLE;
    }
  }
  c->discard_from = c->st;
  if (traceback) conn_traceback(c, "recv", exc);
  else if (c->st == CS_FIRST) conn_traceback(c, "_handle_request", exc); /* CPython's way there */
  else conn_reply(c, "#ERROR", exc);
  c->st = CS_DISCARD;
  c->discard = frame;
  c->sniffing = false;
  ev_timer_stop(the_server.loop, &c->timer);
  ev_timer_set(&c->timer, DISCARD_STALL, DISCARD_STALL);
  ev_timer_start(the_server.loop, &c->timer);
  want_read(c);
}

/* CS_DISCARD: skip what has come of the refused frame; at its end, serve the next request
   (a fresh connection closes instead, as after any first request). */
static void discard_input(conn *c) {
  size_t have = c->in.len - c->in_at, k = c->discard < have ? c->discard : have;
  c->in_at += k;
  if (k) ev_timer_again(the_server.loop, &c->timer); /* it still sends: the stall clock restarts */
  if ((c->discard -= k) > 0) return;
  ev_timer_stop(the_server.loop, &c->timer);
  if (c->discard_from == CS_FIRST) return conn_close_after_reply(c);
  c->st = c->discard_from;
  c->timer.repeat = the_server.cfg->idle_timeout; /* the timer watches for idleness again */
  not_idle(c);
}

/* Cut complete frames out of c->in and handle them, one request at a time. */
static void process(conn *c) {
  while (!c->req && !c->dead && c->st != CS_CLOSING && !c->backlogged && !c->held && !c->mem_waiting) {
    if (c->st == CS_DISCARD) {
      discard_input(c);
      if (c->st == CS_DISCARD || c->st == CS_CLOSING) break;
      continue;
    }
    size_t have = c->in.len - c->in_at;
    if (have < 4) break;
    const uint8_t *h = c->in.data + c->in_at;
    int32_t len32 = (int32_t)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]);
    size_t hdr = 4, n = (size_t)len32;
    if (len32 == -1) {
      if (have < 12) break;
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
      if (c->ser == SER_UNKNOWN && have == hdr) {
        /* a large message's header comes alone, its body next: its first byte says which
           serializer the refusal speaks; if none comes (a client that sent only a length),
           pickle it is */
        if (!c->sniffing) {
          c->sniffing = true;
          ev_timer_stop(the_server.loop, &c->timer);
          ev_timer_set(&c->timer, SNIFF_GRACE, 0.);
          ev_timer_start(the_server.loop, &c->timer);
        }
        break;
      }
      char msg[160];
      snprintf(msg, sizeof msg, "message of %zu bytes exceeds the server's limit of %zu bytes (max_message)", n, limit);
      logmsg(LOG_WARN, "%s: %s; skipping it", c->label, msg);
      the_stats.limits[LIM_MAX_MESSAGE]++;
      refuse_frame(c, hdr + n, v_exception_msg("OSError", msg), true);
      continue;
    }
    if (have - hdr < n) { /* more to come */
      if (c->in_at) { /* the frame to the front: the buffer grows from there */
        memmove(c->in.data, h, have);
        c->in.len = have;
        c->in_at = 0;
      }
      if (!authed || n < LARGE || c->exact) {
        buf_reserve(&c->in, hdr + n - have);
      } else if (mem_fits(hdr + n)) {
        take_exact(c, hdr + n);
      } else {
        logmsg(LOG_INFO, "%s: a request of %zu bytes waits for room under limits.max_memory", c->label, hdr + n);
        mem_wait(c, hdr + n);
      }
      break;
    }
    /* a frame alone in an allocation of its size: a large payload may stay in it */
    pickle_adopt adopt = {c->in.data, c->in.cap, LARGE, false};
    bool whole = c->exact && c->in_at == 0 && c->in.len == hdr + n;
    c->exact = false;
    handle_frame(c, h + hdr, n, whole ? &adopt : NULL);
    if (adopt.taken) c->in = (buf){0}; /* a value owns it now */
    else c->in_at += hdr + n;
    if (c->in_at == c->in.len) {
      c->in.len = c->in_at = 0;
      if (c->in.cap > KEEP_BUFFER) { /* one big request must not pin its buffer */
        bigcache_free(c->in.data);
        c->in = (buf){0};
      }
    }
  }
  want_read(c);
}

static void after_input(conn *c, bool got_bytes);

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  conn *c = (conn *)((char *)w - offsetof(conn, rio));
  if (c->dead) return conn_close(c, c->kill_why ? c->kill_why : "write failed");
  if (c->st == CS_CLOSING && !unsent(c)) return conn_close(c, NULL);
  if (c->st == CS_DISCARD && c->in_at == c->in.len) c->in.len = c->in_at = 0; /* skipped bytes */
  if (!c->exact) buf_reserve(&c->in, c->st == CS_DISCARD ? LARGE : READ_CHUNK);
  else if (c->in.len == c->in.cap) return want_read(c); /* full: it waits for the call before it */
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
  if (c->st == CS_CLOSING && !unsent(c)) conn_close(c, NULL);
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
  if (c->st == CS_DISCARD) {
    logmsg(LOG_WARN, "%s: sent nothing of a refused request's %zu remaining bytes for %g s; closing", c->label,
           c->discard, DISCARD_STALL);
    return conn_close(c, NULL);
  }
  if (c->mem_waiting) { /* no room came within limits.memory_wait: refuse the request */
    size_t need = c->mem_need;
    mem_unwait(c);
    stats_limit(LIM_MAX_MEMORY, "%s: a request of %zu bytes refused after %g s: limits.max_memory (%zu bytes)",
                c->label, need, the_server.cfg->memory_wait, mem_limit());
    refuse_frame(c, need, mem_error(NULL, need), false);
    process(c);
    after_input(c, false);
    return;
  }
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
