/* bclient.c: one connection of the load generator, as a stock Python client makes it. */
#include "bclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "pickle.h"

bc_target bc_server;
struct ev_loop *bc_loop;
unsigned long bc_retries;

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);

static void on_accept_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  bconn *c = (bconn *)((char *)w - offsetof(bconn, accept_timer));
  bc_retries++;
  bc_close(c);
  bc_open(c);
}

static void fail(bconn *c, const char *why) {
  bc_close(c);
  if (c->on_error) c->on_error(c, why);
}

/* Write what the socket takes; keep the rest for on_write. False when c failed (closed). */
static bool flush(bconn *c) {
  while (c->out.len) {
    ssize_t n = write(c->fd, c->out.data, c->out.len);
    if (n > 0) {
      buf_consume(&c->out, (size_t)n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!ev_is_active(&c->wio)) ev_io_start(bc_loop, &c->wio);
      return true;
    } else {
      fail(c, n < 0 ? strerror(errno) : "write returned 0");
      return false;
    }
  }
  if (ev_is_active(&c->wio) && c->st != BC_CONNECTING) ev_io_stop(bc_loop, &c->wio);
  return true;
}

/* One frame, as multiprocessing writes it: header and payload in one write. */
static void put_frame(bconn *c, const void *p, size_t n) {
  uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  buf_put(&c->out, h, 4);
  buf_put(&c->out, p, n);
}

void bc_open(bconn *c) {
  c->st = BC_CONNECTING;
  buf_clear(&c->in);
  buf_clear(&c->out);
  c->fd = socket(bc_server.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ev_io_init(&c->rio, on_read, c->fd, EV_READ);
  ev_io_init(&c->wio, on_write, c->fd, EV_WRITE);
  ev_timer_init(&c->accept_timer, on_accept_timeout, BC_ACCEPT_TIMEOUT, 0.);
  /* no TCP_NODELAY: stock clients leave Nagle on, and the server must cope with that */
  if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&bc_server.sa, bc_server.salen) < 0 && errno != EINPROGRESS)) {
    c->open_errno = errno;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->st = BC_CLOSED;
    ev_feed_event(bc_loop, &c->wio, EV_WRITE); /* reported from the loop, as every failure is */
    return;
  }
  ev_io_start(bc_loop, &c->wio); /* writable = connected (or failed) */
  ev_timer_start(bc_loop, &c->accept_timer);
}

void bc_call(bconn *c, const char *ident, const char *method, value *args) {
  value *req = v_tuple(4);
  req->u.seq.items[0] = ident ? v_strz(ident) : v_none();
  req->u.seq.items[1] = v_strz(method);
  req->u.seq.items[2] = args ? args : v_tuple(0);
  req->u.seq.items[3] = v_dict();
  size_t at = c->out.len;
  buf_put(&c->out, "\0\0\0\0", 4);
  char err[128];
  int rc = pickle_dump(&c->out, req, 4, err, sizeof err);
  v_decref(req);
  if (rc < 0) { /* only our own requests get here: a bug, not a load condition */
    fprintf(stderr, "shmgr-bench: cannot encode a request: %s\n", err);
    exit(2);
  }
  size_t n = c->out.len - at - 4;
  uint8_t *h = c->out.data + at;
  h[0] = (uint8_t)(n >> 24), h[1] = (uint8_t)(n >> 16), h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n;
  flush(c);
}

void bc_close(bconn *c) {
  if (c->st == BC_CLOSED) return;
  ev_io_stop(bc_loop, &c->rio);
  ev_io_stop(bc_loop, &c->wio);
  ev_timer_stop(bc_loop, &c->accept_timer);
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->st = BC_CLOSED;
}

void bc_free(bconn *c) {
  buf_free(&c->in);
  buf_free(&c->out);
}

/* One whole frame: a handshake step, or a reply. False when c failed (closed). */
static bool handle_frame(bconn *c, const uint8_t *p, size_t n) {
  size_t cl = strlen(AUTH_CHALLENGE);
  const char *why = NULL;
  switch (c->st) {
  case BC_CHALLENGED: {
    ev_timer_stop(bc_loop, &c->accept_timer);
    buf ans = {0};
    if (n < cl || memcmp(p, AUTH_CHALLENGE, cl) != 0) why = "the server did not send a challenge";
    else if (auth_answer(bc_server.key, bc_server.keylen, p + cl, n - cl, &ans, &why)) put_frame(c, ans.data, ans.len);
    buf_free(&ans);
    if (why) return fail(c, why), false;
    c->st = BC_WELCOME;
    return flush(c);
  }
  case BC_WELCOME:
    if (n != strlen(AUTH_WELCOME) || memcmp(p, AUTH_WELCOME, n) != 0)
      return fail(c, "the server refused our answer: is the authkey right?"), false;
    buf msg = {0};
    if (!auth_put_challenge(&msg, c->challenge)) return fail(c, "no random bytes"), false;
    put_frame(c, msg.data, msg.len);
    buf_free(&msg);
    c->st = BC_VERIFY;
    return flush(c);
  case BC_VERIFY:
    if (!auth_check_answer(bc_server.key, bc_server.keylen, c->challenge, AUTH_MSG_LEN, p, n, &why))
      return fail(c, why), false;
    put_frame(c, AUTH_WELCOME, strlen(AUTH_WELCOME));
    c->st = BC_READY;
    if (!flush(c)) return false;
    c->on_ready(c); /* typically writes the first request right away, as Python does */
    return c->st == BC_READY;
  case BC_READY: {
    char err[160];
    int proto;
    pickle_limits lim = {100000, (size_t)1 << 30, NULL};
    value *reply = pickle_load(p, n, &lim, &proto, err, sizeof err);
    if (!reply) return fail(c, err), false;
    c->on_reply(c, reply);
    return c->st == BC_READY;
  }
  default:
    return false;
  }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  bconn *c = (bconn *)((char *)w - offsetof(bconn, rio));
  buf_reserve(&c->in, 4096);
  ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
  if (n == 0) return fail(c, "the server closed the connection");
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) fail(c, strerror(errno));
    return;
  }
  c->in.len += (size_t)n;
  size_t at = 0;
  for (;;) {
    size_t avail = c->in.len - at;
    if (avail < 4) break;
    const uint8_t *h = c->in.data + at;
    int32_t len32 = (int32_t)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]);
    size_t hdr = 4, len = (size_t)len32;
    if (len32 == -1) {
      if (avail < 12) break;
      uint64_t n64 = 0;
      for (int i = 0; i < 8; i++) n64 = n64 << 8 | h[4 + i];
      hdr = 12, len = (size_t)n64;
    } else if (len32 < 0) {
      return fail(c, "bad frame length from the server");
    }
    if (avail - hdr < len) {
      buf_reserve(&c->in, hdr + len - avail);
      break;
    }
    if (!handle_frame(c, c->in.data + at + hdr, len)) return; /* closed: c may be reopened */
    at += hdr + len;
  }
  buf_consume(&c->in, at);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  bconn *c = (bconn *)((char *)w - offsetof(bconn, wio));
  if (c->st == BC_CLOSED) return fail(c, strerror(c->open_errno));
  if (c->st == BC_CONNECTING) {
    int e = 0;
    socklen_t len = sizeof e;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len);
    if (e) return fail(c, strerror(e));
    ev_io_stop(bc_loop, &c->wio);
    ev_io_start(bc_loop, &c->rio);
    c->st = BC_CHALLENGED;
  }
  flush(c);
}

bool bc_parse_address(const char *addr, bc_target *t, char *err, size_t errlen) {
  memset(&t->sa, 0, sizeof t->sa);
  if (strncmp(addr, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&t->sa;
    const char *path = addr + 5;
    if (!*path || strlen(path) >= sizeof un->sun_path) {
      snprintf(err, errlen, "bad Unix socket path in '%s'", addr);
      return false;
    }
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    t->salen = sizeof *un;
    return true;
  }
  const char *colon = strrchr(addr, ':');
  char host[256];
  size_t hl = colon ? (size_t)(colon - addr) : 0;
  const char *h = addr;
  if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') h++, hl -= 2;
  if (!colon || !colon[1] || hl == 0 || hl >= sizeof host) {
    snprintf(err, errlen, "bad address '%s' (want HOST:PORT or unix:PATH)", addr);
    return false;
  }
  memcpy(host, h, hl);
  host[hl] = 0;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  int rc = getaddrinfo(host, colon + 1, &hints, &ai);
  if (rc) {
    snprintf(err, errlen, "address '%s': %s", addr, gai_strerror(rc));
    return false;
  }
  memcpy(&t->sa, ai->ai_addr, ai->ai_addrlen);
  t->salen = ai->ai_addrlen;
  freeaddrinfo(ai);
  return true;
}

const char *bc_reply_kind(const value *reply, const value **result) {
  if (reply->kind != VK_TUPLE || reply->u.seq.len != 2 || reply->u.seq.items[0]->kind != VK_STR) return NULL;
  *result = reply->u.seq.items[1];
  return reply->u.seq.items[0]->u.s.data;
}
