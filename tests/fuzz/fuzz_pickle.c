/* fuzz_pickle.c: libFuzzer target for the pickle decoder: any bytes decode or fail cleanly, and
   what decodes re-encodes to a pickle that decodes to the same encoding again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pickle.h"
#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which and abort, so the fuzzer keeps the input. */
static void broken(const char *what, const char *err) {
  fprintf(stderr, "fuzz_pickle: %s%s%s\n", what, err ? ": " : "", err ? err : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const pickle_limits lim = {200, 100000, NULL};
  char err[256] = "";
  int proto = 0;
  value *v = pickle_load(data, size, &lim, &proto, err, sizeof err);
  if (!v) {
    if (!err[0]) broken("a refused pickle without a message", NULL);
    return 0;
  }
  buf text = {0}, once = {0}, twice = {0};
  v_repr(&text, v); /* repr and hash walk everything the decoder built */
  int64_t h;
  (void)v_hash(v, &h);
  int wire = proto == 5 ? 5 : 4;
  if (pickle_dump(&once, v, wire, err, sizeof err) == 0) {
    value *w = pickle_load(once.data, once.len, &lim, &proto, err, sizeof err);
    if (!w) broken("our own encoding does not decode", err);
    if (pickle_dump(&twice, w, wire, err, sizeof err) < 0) broken("a decoded encoding does not encode", err);
    if (once.len != twice.len || memcmp(once.data, twice.data, once.len) != 0)
      broken("encoding is not stable across a round trip", NULL);
    v_decref(w);
  }
  v_decref(v);
  buf_free(&text);
  buf_free(&once);
  buf_free(&twice);
  return 0;
}
