/* pickle_roundtrip.c: answers each framed pickle on stdin with its re-encoding or repr, for the codec tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pickle.h"
#include "value.h"

/* Read exactly n bytes; false at end of input (a partial read is an error too). */
static int read_full(void *p, size_t n) {
  return fread(p, 1, n, stdin) == n;
}

static void write_frame(const void *p, size_t n) {
  unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                          (unsigned char)n};
  fwrite(hdr, 1, 4, stdout);
  if (n) fwrite(p, 1, n, stdout);
  fflush(stdout);
}

/* One request: decode, then re-encode (or print), answering with a frame either way. */
static void answer(const unsigned char *data, size_t len, int want_repr) {
  static const pickle_limits lim = {1000, 1000000, NULL};
  char err[256];
  int proto = 0;
  value *v = pickle_load(data, len, &lim, &proto, err, sizeof err);
  if (!v) {
    write_frame(NULL, 0);
    fprintf(stderr, "%s\n", err);
    return;
  }
  buf out = {0};
  if (want_repr) {
    v_repr(&out, v);
  } else if (pickle_dump(&out, v, proto == 5 ? 5 : 4, err, sizeof err) < 0) {
    out.len = 0;
    fprintf(stderr, "%s\n", err);
  }
  write_frame(out.data, out.len);
  buf_free(&out);
  v_decref(v);
}

int main(int argc, char **argv) {
  int want_repr = argc > 1 && strcmp(argv[1], "--repr") == 0;
  if (argc > 2 || (argc == 2 && !want_repr)) {
    fputs("usage: pickle_roundtrip [--repr] < frames\n", stderr);
    return 2;
  }
  unsigned char hdr[4];
  while (read_full(hdr, 4)) {
    size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    unsigned char *data = malloc(len ? len : 1);
    if (!data || !read_full(data, len)) {
      fputs("pickle_roundtrip: truncated input\n", stderr);
      free(data);
      return 1;
    }
    answer(data, len, want_repr);
    free(data);
  }
  return 0;
}
