/* buf.h: a growable byte buffer, the one building block for I/O, encoding and text. */
#ifndef SHMGR_BUF_H
#define SHMGR_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
  uint8_t *data; /* owned; NULL until the first write */
  size_t len;    /* bytes in use */
  size_t cap;    /* bytes allocated */
} buf;

/* Make room for n more bytes past len. Aborts the process on out-of-memory (the server
   cannot answer anyone without memory, so it fails loudly rather than half-serve). */
void buf_reserve(buf *b, size_t n);

/* Append n bytes. */
void buf_put(buf *b, const void *p, size_t n);

/* Append one byte. */
static inline void buf_byte(buf *b, uint8_t c) {
  if (b->len == b->cap) buf_reserve(b, 1);
  b->data[b->len++] = c;
}

/* Append a NUL-terminated string (without the NUL). */
void buf_str(buf *b, const char *s);

/* Append printf-formatted text. */
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drop the first n bytes (consumed input), keeping the rest. */
void buf_consume(buf *b, size_t n);

/* Forget the contents but keep the allocation. */
static inline void buf_clear(buf *b) { b->len = 0; }

/* Release the allocation; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);

#endif
