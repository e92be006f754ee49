/* shmgr_cli.c: shmgr-cli: asks a running shmgr for its figures (info, clients, objects, queues, slowlog), kills a client, stops it. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bclient.h"
#include "render.h"

static void usage(FILE *f) {
  fputs("usage: shmgr-cli [-a ADDR] [-k KEY | --key-file FILE] [--json] [--timeout S] COMMAND [ARG]\n"
        "\n"
        "Asks a running shmgr, through the managers' protocol and its authkey, what it is doing.\n"
        "\n"
        "commands:\n"
        "  info              version, uptime, listeners, connections, objects, calls, limits, memory, store\n"
        "  clients           one row per connection: what it waits for, what it holds\n"
        "  objects [TYPEID]  every live object (of TYPEID): refcount, size, waiters, holder\n"
        "  queues            every queue: depth, in flight, waiters, rates, age of the oldest item\n"
        "  slowlog [COUNT]   the last calls slower than slowlog_threshold, newest first\n"
        "  kill CLIENT-ID    close that connection (its parked calls are cancelled)\n"
        "  shutdown          stop the server, as SIGTERM does\n"
        "\n"
        "options:\n"
        "  -a ADDR           HOST:PORT or unix:PATH (default: $SHMGR_ADDRESS, else 127.0.0.1:50000)\n"
        "  -k KEY            the authkey (default: $SHMGR_AUTHKEY, else empty)\n"
        "  --key-file FILE   read the authkey from FILE (a trailing newline is dropped)\n"
        "  --json            print the server's answer as JSON instead of a table\n"
        "  --timeout S       give up after S seconds (default 10)\n",
        f);
}

/* ---- the one request ---- */

static const char *method;  /* the server method the command calls */
static value *call_args;    /* its arguments (a tuple), handed to bc_call */
static value *answer;       /* the #RETURN result, owned */
static char failure[600];   /* why there is none */

static void on_ready(bconn *c) {
  bc_call(c, NULL, method, call_args);
  call_args = NULL;
}

/* The last line of a #TRACEBACK text: "KeyError: 'no client with id 7'". */
static void last_line(const value *text, char *out, size_t outlen) {
  const char *s = (const char *)text->u.s.data;
  size_t n = text->u.s.len;
  while (n && s[n - 1] == '\n') n--;
  size_t start = n;
  while (start && s[start - 1] != '\n') start--;
  snprintf(out, outlen, "%.*s", (int)(n - start), s + start);
}

static void on_reply(bconn *c, value *reply) {
  const value *result = NULL;
  const char *kind = bc_reply_kind(reply, &result);
  if (kind && strcmp(kind, "#RETURN") == 0) {
    answer = v_incref((value *)result);
  } else if (kind && (strcmp(kind, "#TRACEBACK") == 0 || strcmp(kind, "#UNSERIALIZABLE") == 0) && result->kind == VK_STR) {
    last_line(result, failure, sizeof failure);
  } else {
    buf text = {0};
    if (result) v_repr(&text, result);
    snprintf(failure, sizeof failure, "the server answered %s %.*s", kind ? kind : "something else", (int)text.len,
             text.data ? (const char *)text.data : "");
    buf_free(&text);
  }
  v_decref(reply);
  bc_close(c);
  ev_break(bc_loop, EVBREAK_ALL);
}

static void on_error(bconn *c, const char *why) {
  (void)c;
  snprintf(failure, sizeof failure, "%s", why);
  ev_break(bc_loop, EVBREAK_ALL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  snprintf(failure, sizeof failure, "no answer within %g s", w->repeat);
  ev_break(loop, EVBREAK_ALL);
}

/* ---- what each command prints ---- */

static const value *get(const value *d, const char *key) {
  static value none = {.refs = 1, .kind = VK_NONE};
  const value *v = d && d->kind == VK_DICT ? dict_get_str(d, key) : NULL;
  return v ? v : &none;
}

/* One "label  value" line of info. */
static void line(const char *label, const char *text) { printf("%-20s %s\n", label, text); }

static void print_info(const value *d) {
  char a[64], b[64], text[512];
  puts("# Server");
  line("version", cell(a, d, "version", 0));
  line("pid", cell(a, d, "pid", 0));
  line("uptime", cell_age(a, d, "uptime"));
  const value *ls = get(d, "listeners");
  text[0] = 0;
  for (size_t i = 0; ls->kind == VK_LIST && i < ls->u.seq.len; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", i ? ", " : "", (const char *)ls->u.seq.items[i]->u.s.data);
  line("listeners", text);

  const value *cn = get(d, "connections");
  puts("# Connections");
  line("open", cell(a, cn, "open", 0));
  line("total", cell(a, cn, "total", 0));
  const value *ta = get(cn, "turned_away");
  size_t pos = 0;
  value *k, *v;
  int64_t sum = 0;
  text[0] = 0;
  while (ta->kind == VK_DICT && dict_next(ta, &pos, &k, &v)) {
    sum += v->u.i;
    snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s %lld", strlen(text) ? ", " : "",
             (const char *)k->u.s.data, (long long)v->u.i);
  }
  snprintf(b, sizeof b, "%lld", (long long)sum);
  printf("%-20s %s (%s)\n", "turned away", b, text);
  line("handshake failures", cell(a, cn, "auth_failures", 0));

  const value *cl = get(d, "calls");
  puts("# Calls");
  line("total", cell(a, cl, "total", 0));
  line("per second", cell(a, cl, "per_second", 0));
  line("errors", cell(a, cl, "errors", 0));
  line("parked now", cell(a, cl, "parked", 0));
  line("parked in all", cell(a, cl, "parked_total", 0));
  snprintf(text, sizeof text, "%s (threshold %s ms)", cell(a, cl, "slow", 0), cell(b, d, "slowlog_threshold_ms", 1));
  line("slow", text);
  snprintf(text, sizeof text, "%s / %s", cell_bytes(a, cl, "bytes_in"), cell_bytes(b, cl, "bytes_out"));
  line("bytes in / out", text);

  const value *ob = get(d, "objects");
  puts("# Objects");
  line("shared with clients", cell(a, ob, "shared", 0));
  const value *bt = get(ob, "by_typeid");
  pos = 0;
  while (bt->kind == VK_DICT && dict_next(bt, &pos, &k, &v)) {
    snprintf(b, sizeof b, "%lld", (long long)v->u.i);
    line((const char *)k->u.s.data, b);
  }

  puts("# Limits hit");
  const value *lh = get(d, "limits_hit");
  pos = 0;
  while (lh->kind == VK_DICT && dict_next(lh, &pos, &k, &v)) {
    snprintf(b, sizeof b, "%lld", (long long)v->u.i);
    line((const char *)k->u.s.data, b);
  }
  const value *ab = get(d, "abandoned");
  puts("# Left by vanished clients");
  line("items redelivered", cell(a, ab, "redelivered", 0));
  line("locks released", cell(a, ab, "locks_released", 0));

  const value *mem = get(d, "memory");
  puts("# Memory");
  line("resident", cell_bytes(a, mem, "rss"));
  if (get(mem, "used")->kind == VK_INT) { /* absent from servers before limits.max_memory */
    const value *lim = get(mem, "max_memory");
    if (lim->kind == VK_INT && lim->u.i > 0)
      snprintf(text, sizeof text, "%s of max_memory %s", cell_bytes(a, mem, "used"), cell_bytes(b, mem, "max_memory"));
    else
      snprintf(text, sizeof text, "%s (no max_memory)", cell_bytes(a, mem, "used"));
    line("held", text);
  }
  line("lua", cell_bytes(a, mem, "lua"));
  const value *sm = get(d, "shared_memory"); /* absent from servers before it */
  if (sm->kind == VK_DICT) {
    snprintf(text, sizeof text, "%s in %s segments", cell_bytes(a, sm, "bytes"), cell(b, sm, "segments", 0));
    line("shared segments", text);
    snprintf(text, sizeof text, "%s in %s blocks", cell_bytes(a, sm, "block_bytes"), cell(b, sm, "blocks", 0));
    line("shared objects", text);
    if (get(sm, "tracked_segments")->kind == VK_INT) line("tracked segments", cell(a, sm, "tracked_segments", 0));
  }

  const value *st = get(d, "store");
  puts("# Store");
  if (st->kind != VK_DICT) {
    line("durable store", "none (no data_dir)");
    return;
  }
  line("path", cell(a, st, "path", 0));
  line("size", cell_bytes(a, st, "bytes"));
  line("commits", cell(a, st, "commits", 0));
  line("failed commits", cell(a, st, "failed_commits", 0));
}

/* "typeid.method ident 3.2s" for what a client waits on or runs. */
static const char *activity(char out[160], const value *parked, const value *running) {
  const value *p = parked && parked->kind == VK_DICT ? parked : running;
  if (!p || p->kind != VK_DICT) return "-";
  char a[64], b[64], c[64], d[64];
  snprintf(out, 160, "%s.%s %s %s", cell(a, p, "typeid", 0), cell(b, p, "method", 0), cell(c, p, "ident", 0),
           cell_age(d, p, "seconds"));
  return out;
}

/* "Lock:ident" (xN when taken N times), comma-separated. */
static const char *holdings(char out[400], const value *hs) {
  out[0] = 0;
  for (size_t i = 0; hs && hs->kind == VK_LIST && i < hs->u.seq.len; i++) {
    char a[64], b[64], n[64];
    const value *h = hs->u.seq.items[i];
    int64_t count = get(h, "count")->u.i;
    snprintf(n, sizeof n, count > 1 ? "x%lld" : "", (long long)count);
    size_t len = strlen(out);
    snprintf(out + len, 400 - len, "%s%s:%s%s", len ? "," : "", cell(a, h, "typeid", 0), cell(b, h, "ident", 0), n);
  }
  return out[0] ? out : "-";
}

/* The table from shmgr_clients(columns=True): (names, [one tuple per connection]). */
static void print_clients(const value *reply) {
  static const char *const head[] = {">ID", "PEER", "NAME", "STATE", ">AGE", ">IDLE", ">CALLS", ">IN", ">OUT", "WAITING ON", "HOLDS"};
  static const char *const want[] = {"id", "peer", "name", "state", "age", "idle", "calls", "bytes_in", "bytes_out",
                                     "parked", "running", "holds"};
  enum { NWANT = sizeof want / sizeof *want };
  const value *names = reply->u.seq.items[0], *l = reply->u.seq.items[1];
  size_t at[NWANT]; /* where each wanted column is in the rows (SIZE_MAX: absent) */
  for (size_t k = 0; k < NWANT; k++) {
    at[k] = SIZE_MAX;
    for (size_t i = 0; names->kind == VK_TUPLE && i < names->u.seq.len; i++)
      if (v_is_str(names->u.seq.items[i], want[k])) at[k] = i;
  }
  table t;
  table_init(&t, 11, head);
  for (size_t i = 0; l->kind == VK_LIST && i < l->u.seq.len; i++) {
    const value *r = l->u.seq.items[i], *v[NWANT];
    for (size_t k = 0; k < NWANT; k++) v[k] = r->kind == VK_TUPLE && at[k] < r->u.seq.len ? r->u.seq.items[at[k]] : NULL;
    char c[9][64], act[160], hold[400];
    char *row[] = {(char *)cell_value(c[0], v[0], 0), (char *)cell_value(c[1], v[1], 0),
                   (char *)cell_value(c[2], v[2], 0), (char *)cell_value(c[3], v[3], 0),
                   (char *)cell_age_value(c[4], v[4]), (char *)cell_age_value(c[5], v[5]),
                   (char *)cell_value(c[6], v[6], 0), (char *)cell_bytes_value(c[7], v[7]),
                   (char *)cell_bytes_value(c[8], v[8]), (char *)activity(act, v[9], v[10]),
                   (char *)holdings(hold, v[11])};
    table_row(&t, row);
  }
  table_print(&t, stdout);
}

static void print_objects(const value *l) {
  static const char *const head[] = {"IDENT", "TYPEID", "NAME", ">REFS", ">SIZE", ">WAITERS", "HOLDER"};
  table t;
  table_init(&t, 7, head);
  for (size_t i = 0; i < l->u.seq.len; i++) {
    const value *r = l->u.seq.items[i];
    char c[7][64], holder[64];
    const value *h = get(r, "holder");
    if (h->kind == VK_INT) snprintf(holder, sizeof holder, "client %lld (x%lld)", (long long)h->u.i, (long long)get(r, "held")->u.i);
    else snprintf(holder, sizeof holder, "%s", get(r, "orphaned")->kind == VK_BOOL && get(r, "orphaned")->u.b ? "a client gone" : "-");
    char *row[] = {(char *)cell(c[0], r, "ident", 0), (char *)cell(c[1], r, "typeid", 0), (char *)cell(c[2], r, "name", 0),
                   (char *)cell(c[3], r, "refcount", 0), (char *)cell(c[4], r, "size", 0), (char *)cell(c[5], r, "waiters", 0),
                   holder};
    table_row(&t, row);
  }
  table_print(&t, stdout);
}

static void print_queues(const value *l) {
  static const char *const head[] = {"QUEUE", "KIND", ">DEPTH", ">IN FLIGHT", ">GETTERS", ">PUTTERS", ">JOINERS",
                                     ">PUTS/S", ">GETS/S", ">OLDEST", "FLAGS"};
  table t;
  table_init(&t, 11, head);
  for (size_t i = 0; i < l->u.seq.len; i++) {
    const value *r = l->u.seq.items[i];
    char c[11][64], name[64], flags[64];
    const value *nm = get(r, "name");
    if (nm->kind == VK_STR) snprintf(name, sizeof name, "'%s'", (const char *)nm->u.s.data);
    else snprintf(name, sizeof name, "%s", cell(c[0], r, "ident", 0));
    snprintf(flags, sizeof flags, "%s%s%s", get(r, "durable")->u.b ? "durable " : "", get(r, "redeliver")->u.b ? "redeliver " : "",
             get(r, "shut_down")->u.b ? "shut-down" : "");
    char *row[] = {name, (char *)cell(c[1], r, "kind", 0), (char *)cell(c[2], r, "depth", 0),
                   (char *)cell(c[3], r, "in_flight", 0), (char *)cell(c[4], r, "getters", 0),
                   (char *)cell(c[5], r, "putters", 0), (char *)cell(c[6], r, "joiners", 0),
                   (char *)cell(c[7], r, "puts_per_second", 0), (char *)cell(c[8], r, "gets_per_second", 0),
                   (char *)cell_age(c[9], r, "oldest_age"), flags[0] ? flags : "-"};
    table_row(&t, row);
  }
  table_print(&t, stdout);
}

static void print_slowlog(const value *l) {
  static const char *const head[] = {">ID", "WHEN (UTC)", ">CLIENT", "PEER", "CALL", ">MS"};
  table t;
  table_init(&t, 6, head);
  for (size_t i = 0; i < l->u.seq.len; i++) {
    const value *r = l->u.seq.items[i];
    char c[6][64], when[64] = "-", what[160];
    const value *w = get(r, "when");
    if (w->kind == VK_FLOAT) {
      time_t secs = (time_t)w->u.f;
      struct tm tm;
      gmtime_r(&secs, &tm);
      strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(what, sizeof what, "%s.%s", cell(c[3], r, "typeid", 0), cell(c[4], r, "method", 0));
    char *row[] = {(char *)cell(c[0], r, "id", 0), when, (char *)cell(c[1], r, "client", 0), (char *)cell(c[2], r, "peer", 0),
                   what, (char *)cell(c[5], r, "duration_ms", 1)};
    table_row(&t, row);
  }
  table_print(&t, stdout);
}

/* ---- the command line ---- */

static bool read_key_file(const char *path, buf *key) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(key, chunk, n);
  fclose(f);
  while (key->len && (key->data[key->len - 1] == '\n' || key->data[key->len - 1] == '\r')) key->len--;
  return true;
}

/* A positive integer argument, or false. */
static bool parse_count(const char *s, long long *out) {
  char *end;
  errno = 0;
  *out = strtoll(s, &end, 10);
  return *s && !*end && !errno && *out > 0;
}

static int fail_usage(const char *fmt, const char *what) {
  fprintf(stderr, "shmgr-cli: ");
  fprintf(stderr, fmt, what);
  fputs(" (shmgr-cli --help lists the commands)\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  const char *addr = getenv("SHMGR_ADDRESS"), *key_file = NULL, *cmd = NULL, *arg = NULL;
  const char *key = getenv("SHMGR_AUTHKEY");
  bool as_json = false;
  double timeout = 10;
  if (!addr || !*addr) addr = "127.0.0.1:50000";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool more = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("shmgr-cli %s\n", SHMGR_VERSION);
      return 0;
    } else if (strcmp(a, "-a") == 0 && more) {
      addr = argv[++i];
    } else if (strcmp(a, "-k") == 0 && more) {
      key = argv[++i];
    } else if (strcmp(a, "--key-file") == 0 && more) {
      key_file = argv[++i];
    } else if (strcmp(a, "--json") == 0) {
      as_json = true;
    } else if (strcmp(a, "--timeout") == 0 && more) {
      char *end;
      timeout = strtod(argv[++i], &end);
      if (*end || !(timeout > 0)) return fail_usage("--timeout wants a number of seconds, not '%s'", argv[i]);
    } else if (a[0] == '-' && a[1]) {
      return fail_usage("unknown or incomplete option '%s'", a);
    } else if (!cmd) {
      cmd = a;
    } else if (!arg) {
      arg = a;
    } else {
      return fail_usage("one argument too many: '%s'", a);
    }
  }
  if (!cmd) return fail_usage("%s", "no command given");

  long long n = 0;
  call_args = v_tuple(0);
  if (strcmp(cmd, "info") == 0 || strcmp(cmd, "clients") == 0 || strcmp(cmd, "queues") == 0) {
    method = cmd[0] == 'i' ? "shmgr_info" : cmd[0] == 'c' ? "shmgr_clients" : "shmgr_queues";
    if (arg) return fail_usage("'%s' takes no argument", cmd);
    if (cmd[0] == 'c' && !as_json) { /* the table: rows as tuples, far cheaper to decode than dicts */
      v_decref(call_args);
      call_args = v_tuple(1);
      call_args->u.seq.items[0] = v_bool(true);
    }
  } else if (strcmp(cmd, "objects") == 0) {
    method = "shmgr_objects";
    if (arg) {
      v_decref(call_args);
      call_args = v_tuple(1);
      call_args->u.seq.items[0] = v_strz(arg);
    }
  } else if (strcmp(cmd, "slowlog") == 0 || strcmp(cmd, "kill") == 0) {
    bool kill = cmd[0] == 'k';
    method = kill ? "shmgr_kill" : "shmgr_slowlog";
    if (kill && !arg) return fail_usage("%s", "kill wants the id of a client (shmgr-cli clients shows them)");
    if (arg && !parse_count(arg, &n)) return fail_usage(kill ? "'%s' is not a client id" : "'%s' is not a count", arg);
    if (arg) {
      v_decref(call_args);
      call_args = v_tuple(1);
      call_args->u.seq.items[0] = v_int(n);
    }
  } else if (strcmp(cmd, "shutdown") == 0) {
    method = "shutdown";
    if (arg) return fail_usage("'%s' takes no argument", cmd);
  } else {
    v_decref(call_args);
    return fail_usage("unknown command '%s'", cmd);
  }

  buf keybuf = {0};
  if (key_file && !read_key_file(key_file, &keybuf)) {
    fprintf(stderr, "shmgr-cli: cannot read the key file '%s': %s\n", key_file, strerror(errno));
    return 1;
  }
  if (!key_file && key) buf_put(&keybuf, key, strlen(key));
  char err[300];
  if (!bc_parse_address(addr, &bc_server, err, sizeof err)) {
    fprintf(stderr, "shmgr-cli: %s\n", err);
    return 1;
  }
  bc_server.key = keybuf.data ? keybuf.data : (const uint8_t *)"";
  bc_server.keylen = keybuf.len;
  /* One answer is decoded, printed and dropped: let freed memory (the decoder's memo, a table's
     growing arrays) be used again rather than given back to the system, since each fresh page
     costs a page fault (about 4,000 of them for a 10,000-row clients table, most of its time
     on a virtual machine). */
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  bc_loop = ev_default_loop(0);
  bconn c = {.on_ready = on_ready, .on_reply = on_reply, .on_error = on_error};
  ev_timer deadline;
  ev_timer_init(&deadline, on_timeout, timeout, timeout);
  ev_timer_start(bc_loop, &deadline);
  bc_open(&c);
  ev_run(bc_loop, 0);
  bc_close(&c);
  bc_free(&c);
  buf_free(&keybuf);
  if (call_args) v_decref(call_args);
  if (!answer) {
    fprintf(stderr, "shmgr-cli: %s: %s\n", addr, failure[0] ? failure : "no answer");
    return 1;
  }
  int rc = 0;
  if (as_json) {
    render_json(stdout, answer);
  } else if (strcmp(cmd, "info") == 0 && answer->kind == VK_DICT) {
    print_info(answer);
  } else if (strcmp(cmd, "kill") == 0) {
    printf("client %lld: closed\n", n);
  } else if (strcmp(cmd, "shutdown") == 0) {
    printf("shutting down\n");
  } else if (cmd[0] == 'c' && answer->kind == VK_TUPLE && answer->u.seq.len == 2) {
    print_clients(answer);
  } else if (answer->kind == VK_LIST && cmd[0] != 'c') {
    if (cmd[0] == 'o') print_objects(answer);
    else if (cmd[0] == 'q') print_queues(answer);
    else print_slowlog(answer);
  } else {
    fprintf(stderr, "shmgr-cli: unexpected answer from %s\n", addr);
    rc = 1;
  }
  /* The answer is left to exit, which gives its memory back at once: releasing its values one
     by one (150,000 of them for 10,000 clients) took 4 ms of the command's 94, for nothing. */
  return rc;
}
