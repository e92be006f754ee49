/* pickle_text.h: the text in pickles: UTF-8 as Python's codecs take it, protocol 0's int and string literals. */
#ifndef SHMGR_PICKLE_TEXT_H
#define SHMGR_PICKLE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "value.h"

/* True when s[0..n) is UTF-8 as Python's 'utf-8' codec accepts it; with `surrogates`, as
   'surrogatepass' does (lone surrogates too). */
bool utf8_valid(const uint8_t *s, size_t n, bool surrogates);

/* Append code point c to b as UTF-8, a lone surrogate included (as 'surrogatepass' writes it). */
void put_utf8(buf *b, uint32_t c);

/* The value of the hex digit c, or -1 when it is none. */
int hexval(uint8_t c);

/* Python's int(text, 0) of s[0..n), as protocol 0's INT and LONG write ints: a new int, or
   NULL when the text is none (or longer than 10,000 digits). */
value *parse_int(const uint8_t *s, size_t n);

/* codecs.escape_decode of s[0..n) (a STRING argument inside its quotes), appended to out;
   false when an escape is broken (out then holds what came before it). */
bool escape_decode(const uint8_t *s, size_t n, buf *out);

#endif
