/* bench.c: shmgr-bench, a load generator that speaks the managers' protocol like a stock
   Python client, to measure any manager server: options, the run, the report. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>

#include "bclient.h"
#include "workload.h"

static const char usage[] =
  "usage: shmgr-bench -a ADDR [-k KEY] -w WORKLOAD [-c N] [-d SECONDS | -n OPS] [-p PID]\n"
  "                   [--items N] [--typeid TYPEID] [--timeout SECONDS] [--json]\n"
  "  -a ADDR      the server: HOST:PORT or unix:PATH\n"
  "  -k KEY       the authkey (default: $SHMGR_AUTHKEY, else empty)\n"
  "  -w WORKLOAD  queue    put(i) then get() on one shared Queue (an op is both calls)\n"
  "               dict     d['k<conn>'] = i then d['k<conn>'] (an op is both calls)\n"
  "               list     append(i) then len() (an op is both calls)\n"
  "               create   create('dict'), incref, decref, decref, each on a fresh\n"
  "                        authenticated connection, as a stock client makes and drops a proxy\n"
  "               idle     hold N authenticated connections, read the server's memory,\n"
  "                        then one call on each\n"
  "               fill     put --items small ints into one queue, read the server's memory\n"
  "               objects  create --items dicts and keep them, read the server's memory\n"
  "               park     N connections park a get() on one queue in a known order, then\n"
  "                        items 0..N-1 are put: each waiter must get its own index\n"
  "               transfer N/2 producers put --items distinct ints into one queue, N/2\n"
  "                        consumers get them: each must arrive exactly once\n"
  "  -c N         connections, 1 to 10000 (create, objects: fresh connections at a time); 1\n"
  "  -d SECONDS   the measured window (default 3); -n OPS runs exactly OPS operations\n"
  "  -p PID       the server's pid: its CPU time (user+sys) in the window, and its memory\n"
  "  --items N    fill, transfer: items (default 1000000); objects: objects (default 100000)\n"
  "  --typeid T   queue, idle, fill, park, transfer: instead of a new Queue (create('Queue')),\n"
  "               the queue that the server's registered typeid T returns: create('T') with no\n"
  "               arguments, as a stock client's manager.T() calls it; e.g. a durable queue\n"
  "               declared in shmgr's config (shmgr.register('get_jobs', ...)). It should be\n"
  "               empty at the start (fill, park and transfer count what they get from it)\n"
  "  --timeout S  give up after S seconds (default: the window + 120)\n"
  "  --json       one JSON object on stdout instead of the text report\n";

/* A bad command line: say why, show the usage, exit 2. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "shmgr-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n%s", usage);
  va_end(ap);
  exit(2);
}

/* A number in [lo, hi] from an option's text, or die naming the option. */
static double number(const char *opt, const char *text, double lo, double hi) {
  char *end;
  errno = 0;
  double d = strtod(text, &end);
  if (errno || end == text || *end || !isfinite(d) || d < lo || d > hi)
    die("%s wants a number from %g to %g, not '%s'", opt, lo, hi, text);
  return d;
}

/* Room for every connection: raise the soft limit of open files to the hard one. */
static void want_fds(long n) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if ((rlim_t)n + 32 > rl.rlim_cur)
    die("%ld connections need about %ld open files; the limit is %llu (ulimit -n)", n, n + 32,
        (unsigned long long)rl.rlim_cur);
}

static double us(uint64_t ns) { return (double)ns / 1e3; }

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void report_json(const bench_opts *o, const bench_result *r) {
  printf("{\"workload\": \"%s\", \"connections\": %ld, \"ok\": %s, \"errors\": %llu, \"error\": ",
         workload_name(o->w), o->conns, r->errors ? "false" : "true", (unsigned long long)r->errors);
  if (r->error[0]) json_str(r->error);
  else printf("null");
  printf(", \"retries\": %lu, \"typeid\": ", r->retries);
  if (o->typeid) json_str(o->typeid);
  else printf("null");
  if (workload_is_rate(o->w)) {
    printf(", \"served\": %llu, \"calls\": %llu", (unsigned long long)r->served, (unsigned long long)r->calls);
    printf(", \"ops\": %llu, \"seconds\": %.3f, \"ops_per_sec\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"p999_us\": %.1f", (unsigned long long)r->ops, r->seconds, r->seconds > 0 ? (double)r->ops / r->seconds : 0,
           us(hist_quantile(&r->lat, 0.5)), us(hist_quantile(&r->lat, 0.99)), us(hist_quantile(&r->lat, 0.999)));
    if (r->measured && r->ops)
      printf(", \"server_cpu_us\": %.0f, \"server_cpu_us_per_op\": %.3f, \"server_user_us_per_op\": %.3f, "
             "\"server_rss_kb\": %ld, \"server_peak_rss_kb\": %ld", r->cpu_s * 1e6, r->cpu_s * 1e6 / (double)r->ops,
             r->user_s * 1e6 / (double)r->ops, r->rss_kb, r->hwm_kb);
    else
      printf(", \"server_cpu_us\": null, \"server_cpu_us_per_op\": null, \"server_user_us_per_op\": null, "
             "\"server_rss_kb\": null, \"server_peak_rss_kb\": null");
  } else if (o->w == W_TRANSFER) {
    printf(", \"items\": %ld, \"received\": %llu, \"duplicates\": %llu, \"missing\": %llu, \"seconds\": %.3f",
           o->items, (unsigned long long)r->received, (unsigned long long)r->duplicates,
           (unsigned long long)r->missing, r->seconds);
  } else if (o->w == W_PARK) {
    printf(", \"waiters\": %ld, \"woken\": %llu, \"in_order\": %llu, \"wake_seconds\": %.4f", o->conns,
           (unsigned long long)r->woken, (unsigned long long)r->in_order, r->wake_seconds);
  } else {
    long delta = r->rss_after_kb - r->rss_before_kb;
    double count = o->w == W_IDLE ? (double)o->conns : o->w == W_FILL ? (double)o->items : (double)r->made;
    const char *per = o->w == W_IDLE ? "bytes_per_conn" : o->w == W_FILL ? "bytes_per_item" : "bytes_per_object";
    if (o->w == W_IDLE) printf(", \"served\": %llu", (unsigned long long)r->served);
    if (o->w == W_FILL) printf(", \"items\": %ld, \"qsize\": %lld", o->items, (long long)r->qsize);
    if (o->w == W_OBJECTS) printf(", \"objects\": %llu", (unsigned long long)r->made);
    if (r->measured && count > 0)
      printf(", \"rss_before_kb\": %ld, \"rss_after_kb\": %ld, \"%s\": %.1f", r->rss_before_kb, r->rss_after_kb, per,
             (double)delta * 1024.0 / count);
    else
      printf(", \"rss_before_kb\": null, \"rss_after_kb\": null, \"%s\": null", per);
  }
  printf("}\n");
}

static void report_text(const bench_opts *o, const bench_result *r) {
  printf("workload %s, %ld connection%s%s%s\n", workload_name(o->w), o->conns, o->conns == 1 ? "" : "s",
         o->typeid ? ", the queue of --typeid " : "", o->typeid ? o->typeid : "");
  if (workload_is_rate(o->w)) {
    printf("  %llu ops in %.3f s: %.0f ops/s; %llu of %ld connections served\n", (unsigned long long)r->ops,
           r->seconds, r->seconds > 0 ? (double)r->ops / r->seconds : 0, (unsigned long long)r->served, o->conns);
    printf("  latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n", us(hist_quantile(&r->lat, 0.5)),
           us(hist_quantile(&r->lat, 0.99)), us(hist_quantile(&r->lat, 0.999)));
    if (r->measured && r->ops)
      printf("  server CPU %.3f s: %.2f us per op (user %.2f, kernel %.2f); RSS %ld KiB, peak %ld KiB\n", r->cpu_s,
             r->cpu_s * 1e6 / (double)r->ops, r->user_s * 1e6 / (double)r->ops,
             (r->cpu_s - r->user_s) * 1e6 / (double)r->ops, r->rss_kb, r->hwm_kb);
  } else if (o->w == W_TRANSFER) {
    printf("  %llu of %ld items received once, %llu twice or more, %llu never; %.3f s (%.0f items/s)\n",
           (unsigned long long)r->received, o->items, (unsigned long long)r->duplicates,
           (unsigned long long)r->missing, r->seconds, r->seconds > 0 ? (double)r->received / r->seconds : 0);
  } else if (o->w == W_PARK) {
    printf("  %llu of %ld waiters woken, %llu in arrival order, in %.4f s\n", (unsigned long long)r->woken, o->conns,
           (unsigned long long)r->in_order, r->wake_seconds);
  } else {
    if (o->w == W_IDLE) printf("  %llu of %ld connections answered\n", (unsigned long long)r->served, o->conns);
    if (o->w == W_FILL) printf("  %ld items put, qsize %lld\n", o->items, (long long)r->qsize);
    if (o->w == W_OBJECTS) printf("  %llu dicts created\n", (unsigned long long)r->made);
    double count = o->w == W_IDLE ? (double)o->conns : o->w == W_FILL ? (double)o->items : (double)r->made;
    if (r->measured && count > 0)
      printf("  server RSS %ld KiB -> %ld KiB: %.1f bytes each\n", r->rss_before_kb, r->rss_after_kb,
             (double)(r->rss_after_kb - r->rss_before_kb) * 1024.0 / count);
  }
  if (r->retries) printf("  %lu connections made again: the server had not accepted them in %g s\n", r->retries, BC_ACCEPT_TIMEOUT);
  if (r->errors) printf("  %llu errors; the first: %s\n", (unsigned long long)r->errors, r->error);
  else printf("  no errors\n");
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
    {"items", required_argument, NULL, 'i'}, {"timeout", required_argument, NULL, 't'},
    {"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
    {"typeid", required_argument, NULL, 'T'},
    {NULL, 0, NULL, 0},
  };
  bench_opts o = {.w = W_QUEUE, .conns = 1, .duration = 3};
  const char *addr = NULL, *key = getenv("SHMGR_AUTHKEY"), *wname = NULL;
  bool json = false;
  double timeout = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "a:k:w:c:d:n:p:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'a': addr = optarg; break;
    case 'k': key = optarg; break;
    case 'w': wname = optarg; break;
    case 'c': o.conns = (long)number("-c", optarg, 1, 10000); break;
    case 'd': o.duration = number("-d", optarg, 0.01, 86400); break;
    case 'n': o.ops = (long)number("-n", optarg, 1, 1e12); break;
    case 'p': o.pid = (pid_t)number("-p", optarg, 1, 4194304); break;
    case 'i': o.items = (long)number("--items", optarg, 1, 1e9); break;
    case 't': timeout = number("--timeout", optarg, 0.1, 86400); break;
    case 'j': json = true; break;
    case 'T': o.typeid = optarg; break;
    case 'h': fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return 2;
    }
  }
  if (optind < argc) die("unexpected argument '%s'", argv[optind]);
  if (!addr) die("-a ADDR is required");
  if (wname && !workload_parse(wname, &o.w)) die("unknown workload '%s'", wname);
  if (o.w == W_TRANSFER && o.conns < 2) die("transfer needs -c 2 or more (producers and consumers)");
  if (o.typeid) {
    if (!workload_on_queue(o.w))
      die("--typeid applies to the workloads on one queue (queue, idle, fill, park, transfer), not %s",
          workload_name(o.w));
    if (!o.typeid[0]) die("--typeid wants a typeid registered on the server, not an empty string");
    for (const char *p = o.typeid; *p; p++)
      if ((unsigned char)*p <= ' ' || *p == 0x7f) die("--typeid wants a typeid, not '%s' (no spaces or control characters)", o.typeid);
    if (strlen(o.typeid) > 200) die("--typeid wants a typeid of at most 200 bytes");
  }
  if (!o.items) o.items = o.w == W_OBJECTS ? 100000 : 1000000;
  o.timeout = timeout ? timeout : o.duration + 120;
  char err[200];
  if (!bc_parse_address(addr, &bc_server, err, sizeof err)) die("%s", err);
  bc_server.key = (const uint8_t *)(key ? key : "");
  bc_server.keylen = key ? strlen(key) : 0;
  want_fds(o.conns + 1);
  bc_loop = ev_default_loop(EVFLAG_AUTO);
  signal(SIGPIPE, SIG_IGN);

  static bench_result r; /* the histogram is large */
  workload_run(&o, &r);
  if (json) report_json(&o, &r);
  else report_text(&o, &r);
  return r.errors ? 1 : 0;
}
