/* fuzz_wire.c: libFuzzer target for everything after accept(): the framing reader, the
   handshake and request dispatch, through a real connection of the server on a socketpair.
   The first byte picks the stage: even, the rest is what a client sends from the first byte
   of the handshake on; odd, the harness authenticates first and the rest follows as requests.
   A Queue, dict, list, ... exist as idents 1, 2, ... (make_objects) for requests to name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "conn.h"
#include "iterargs.h"
#include "log.h"
#include "objects.h"
#include "pickle.h"
#include "registry.h"
#include "server.h"
#include "shm.h"
#include "token.h"
#include "wait.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] = "fuzz";
static config cfg;

/* The parts of server_start a connection needs, without listening anywhere. */
static void setup(void) {
  config_defaults(&cfg);
  buf_put(&cfg.authkey, KEY, strlen(KEY));
  cfg.have_key = true;
  cfg.max_message = 1 << 20;
  iterargs_max_steps = 1 << 16; /* lazy arguments reach their limit in a few milliseconds */
  the_server.cfg = &cfg;
  the_server.loop = wait_loop = ev_default_loop(EVFLAG_AUTO);
  atexit(shm_close); /* SharedArray's segments (a class keeps a spare) go with the process */
  v_release_shared = obj_release;
  pickle_on_shared = table_send;
  the_server.address = v_tuple(2);
  the_server.address->u.seq.items[0] = v_strz("127.0.0.1");
  the_server.address->u.seq.items[1] = v_int(50000);
  registry_builtins();
  log_level = LOG_ERROR + 1; /* quiet */
  the_server.stopping = true; /* a fuzzed shutdown request: nothing to stop here */
}

/* Read and drop what the server wrote to fd. */
static void drain(int fd) {
  static char sink[65536];
  while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
}

/* Let the server run what is ready, a few rounds. */
static void step(void) {
  for (int i = 0; i < 4; i++) ev_run(the_server.loop, EVRUN_NOWAIT);
}

/* The next frame the server sent on fd (non-blocking), into out; false if none yet. */
static bool read_frame(int fd, buf *out) {
  uint8_t h[4];
  if (recv(fd, h, 4, MSG_PEEK | MSG_DONTWAIT) != 4) return false;
  size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
  buf_clear(out);
  buf_reserve(out, n + 4);
  if (recv(fd, out->data, n + 4, MSG_DONTWAIT) != (ssize_t)(n + 4)) return false;
  memmove(out->data, out->data + 4, n);
  out->len = n;
  return true;
}

static void send_frame(int fd, const void *p, size_t n) {
  uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  if (write(fd, h, 4) != 4 || write(fd, p, n) != (ssize_t)n) abort();
}

/* The client's half of the handshake, as Python does it; false if the server refused. */
static bool authenticate(int fd) {
  buf f = {0}, ans = {0};
  const char *why;
  uint8_t mine[AUTH_MSG_LEN];
  size_t cl = strlen(AUTH_CHALLENGE);
  bool ok = false;
  step();
  if (!read_frame(fd, &f) || f.len < cl || !auth_answer((const uint8_t *)KEY, strlen(KEY), f.data + cl, f.len - cl, &ans, &why))
    goto out;
  send_frame(fd, ans.data, ans.len);
  step();
  if (!read_frame(fd, &f) || f.len != strlen(AUTH_WELCOME)) goto out;
  buf_clear(&ans);
  if (!auth_put_challenge(&ans, mine)) goto out;
  send_frame(fd, ans.data, ans.len);
  step();
  if (!read_frame(fd, &f) || !auth_check_answer((const uint8_t *)KEY, strlen(KEY), mine, AUTH_MSG_LEN, f.data, f.len, &why))
    goto out;
  send_frame(fd, AUTH_WELCOME, strlen(AUTH_WELCOME));
  ok = true;
out:
  buf_free(&f);
  buf_free(&ans);
  return ok;
}

/* Construct typeid from args (stolen) and enter it in the table, as create does. */
static void make_one(const char *typeid, value *args) {
  const typeinfo *ti = registry_find(typeid, strlen(typeid));
  value *kwds = v_dict(), *err = NULL;
  shobj *o = ti ? registry_construct(ti, args, kwds, &err) : NULL;
  v_decref(args);
  v_decref(kwds);
  if (!o) abort(); /* the built-ins must construct */
  table_enter(o, obj_exposed(o, ti->exposed, ti->m2t), ti->m2t ? v_incref(ti->m2t) : NULL);
  obj_release(o);
}

/* A tuple of two: a format str and a value (stolen). */
static value *format_and(const char *format, value *v) {
  value *t = v_tuple(2);
  t->u.seq.items[0] = v_strz(format);
  t->u.seq.items[1] = v;
  return t;
}

/* Objects the requests of an input can name: idents 1, 2, ... in this order (the table is
   empty between inputs, so they are the same every time). */
static void make_objects(void) {
  static const char *const typeids[] = {"Queue", "dict", "list", "Lock", "RLock", "Event", "Condition",
                                        "Namespace", "set", "JoinableQueue", "Semaphore", NULL};
  for (size_t i = 0; typeids[i]; i++) make_one(typeids[i], v_tuple(0));
  /* c: the objects in shared memory (shm.c), with the argument each needs */
  value *items = v_list(4);
  for (int i = 1; i <= 4; i++) list_append(items, v_int(i));
  make_one("SharedArray", format_and("i", items));
  make_one("SharedValue", format_and("d", v_float(0.5)));                     /* d */
  value *pair = v_tuple(2);
  pair->u.seq.items[0] = v_int(1);
  pair->u.seq.items[1] = v_strz("ab");
  make_one("SharedStruct", format_and("<h5p", pair));                         /* e */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  if (!ready) setup(), ready = true;
  if (size < 1) return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) abort();
  int client = sv[1];
  fcntl(client, F_SETFL, 0); /* the harness writes blocking; it reads with MSG_DONTWAIT */
  make_objects();
  conn_open(sv[0], "fuzz", false);
  if (!(data[0] & 1) || authenticate(client)) {
    /* feed the rest in pieces, letting the server answer between them, and drain replies */
    size_t at = 1;
    while (at < size) {
      size_t n = size - at < 4096 ? size - at : 4096;
      ssize_t w = send(client, data + at, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) at += (size_t)w;
      step();
      drain(client);
      if (w < 0 && errno != EAGAIN) break; /* the server closed us */
    }
  }
  shutdown(client, SHUT_WR); /* EOF: whatever is parked is cancelled, the connection closes */
  for (int i = 0; i < 8 && the_server.conns; i++) {
    step();
    drain(client);
  }
  conn_close_all();
  close(client);
  table_clear(); /* every input starts with no objects */
  return 0;
}
