/* pickle_text.c: the text in pickles: UTF-8 as Python's codecs take it, protocol 0's int and string literals. */
#include "pickle_text.h"

#include <string.h>

/* UTF-8 as Python's 'utf-8' codec accepts it; with `surrogates`, 'surrogatepass' too. */
bool utf8_valid(const uint8_t *s, size_t n, bool surrogates) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed && !surrogates) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else return false;
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return false;
    i += len;
  }
  return true;
}

/* A code point as UTF-8, lone surrogates included (as 'surrogatepass' writes them). */
void put_utf8(buf *b, uint32_t c) {
  if (c < 0x80) buf_byte(b, (uint8_t)c);
  else if (c < 0x800) {
    buf_byte(b, (uint8_t)(0xc0 | (c >> 6)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    buf_byte(b, (uint8_t)(0xe0 | (c >> 12)));
    buf_byte(b, (uint8_t)(0x80 | ((c >> 6) & 0x3f)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3f)));
  } else {
    buf_byte(b, (uint8_t)(0xf0 | (c >> 18)));
    buf_byte(b, (uint8_t)(0x80 | ((c >> 12) & 0x3f)));
    buf_byte(b, (uint8_t)(0x80 | ((c >> 6) & 0x3f)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3f)));
  }
}

int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* magnitude (little-endian bytes) = magnitude * base + digit */
static void mag_muladd(buf *mag, unsigned base, unsigned digit) {
  unsigned carry = digit;
  for (size_t i = 0; i < mag->len; i++) {
    unsigned x = mag->data[i] * base + carry;
    mag->data[i] = (uint8_t)x;
    carry = x >> 8;
  }
  while (carry) {
    buf_byte(mag, (uint8_t)carry);
    carry >>= 8;
  }
}

/* Python's int(text, 0), as protocol 0 INT and LONG write it. */
value *parse_int(const uint8_t *s, size_t n) {
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  bool neg = false;
  if (n && (*s == '+' || *s == '-')) {
    neg = *s == '-';
    s++, n--;
  }
  unsigned base = 10;
  if (n >= 2 && s[0] == '0' && strchr("xXoObB", s[1]) && s[1]) {
    base = (s[1] | 0x20) == 'x' ? 16 : (s[1] | 0x20) == 'o' ? 8 : 2;
    s += 2, n -= 2;
    if (n && *s == '_') s++, n--;
  }
  if (!n || n > 10000) return NULL;
  bool leading_zero = base == 10 && s[0] == '0', nonzero = false;
  buf mag = {0};
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '_' && i + 1 < n && i > 0 && s[i - 1] != '_') continue;
    int dv = hexval(s[i]);
    if (dv < 0 || (unsigned)dv >= base) {
      buf_free(&mag);
      return NULL;
    }
    nonzero |= dv != 0;
    mag_muladd(&mag, base, (unsigned)dv);
  }
  if (leading_zero && nonzero) { /* "012" is no int in Python 3 */
    buf_free(&mag);
    return NULL;
  }
  buf_byte(&mag, 0); /* room for the sign bit */
  if (neg) {
    unsigned carry = 1;
    for (size_t i = 0; i < mag.len; i++) {
      unsigned x = (uint8_t)~mag.data[i] + carry;
      mag.data[i] = (uint8_t)x;
      carry = x >> 8;
    }
  }
  value *v = v_bigint_le(mag.data, mag.len);
  buf_free(&mag);
  return v;
}

/* codecs.escape_decode of a STRING argument. */
bool escape_decode(const uint8_t *s, size_t n, buf *out) {
  static const char simple[] = "\\\\''\"\"b\bf\ft\tn\nr\rv\va\a";
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i++];
    if (c != '\\') {
      buf_byte(out, c);
      continue;
    }
    if (i == n) return false; /* trailing backslash */
    c = s[i++];
    const char *hit = c ? strchr(simple, c) : NULL;
    if (c == '\n') continue;
    if (hit && (hit - simple) % 2 == 0) {
      buf_byte(out, (uint8_t)hit[1]);
    } else if (c >= '0' && c <= '7') {
      unsigned x = c - '0';
      for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++) x = x * 8 + (s[i++] - '0');
      buf_byte(out, (uint8_t)x);
    } else if (c == 'x') {
      if (n - i < 2 || hexval(s[i]) < 0 || hexval(s[i + 1]) < 0) return false;
      buf_byte(out, (uint8_t)(hexval(s[i]) * 16 + hexval(s[i + 1])));
      i += 2;
    } else {
      buf_byte(out, '\\');
      buf_byte(out, c);
    }
  }
  return true;
}
