/* xmlrpc.c: XML-RPC documents <-> values, as multiprocessing's 'xmlrpclib' serializer makes them. */
#include "alloc.h"
#include "xmlrpc.h"

#include <expat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Exceptions                                                                                 */

/* module.name(text) with a message of any length (v_exception_fmt keeps 400 bytes). */
static value *exc_text(const char *module, const char *name, const buf *text) {
  value *args = v_tuple(1);
  args->u.seq.items[0] = v_str(text->data ? (const char *)text->data : "", text->len);
  return v_exception(module, name, args);
}

/* Python's repr of a str, cut to at most `keep` characters as "%.200R" cuts it (0: whole). */
static void repr_text(buf *out, const char *s, size_t n, size_t keep) {
  value *v = v_str(s, n);
  size_t at = out->len;
  v_repr(out, v);
  v_decref(v);
  if (keep && out->len - at > keep) { /* a cut inside a UTF-8 sequence would not be Python's */
    size_t end = at, chars = 0;
    while (end < out->len && chars < keep) {
      end++;
      while (end < out->len && (out->data[end] & 0xc0) == 0x80) end++;
      chars++;
    }
    out->len = end;
  }
}

/* UnicodeEncodeError(encoding, text, start, end, reason): its message names the characters
   start..end of text (code point indexes). */
static value *encode_error(const char *encoding, const char *text, size_t n, size_t start, size_t end,
                           const char *reason) {
  value *args = v_tuple(5);
  args->u.seq.items[0] = v_strz(encoding);
  args->u.seq.items[1] = v_str(text, n);
  args->u.seq.items[2] = v_int((int64_t)start);
  args->u.seq.items[3] = v_int((int64_t)end);
  args->u.seq.items[4] = v_strz(reason);
  return v_exception("builtins", "UnicodeEncodeError", args);
}

/* Code points in s[0..n) (UTF-8: the bytes that do not continue a sequence). */
static size_t code_points(const uint8_t *s, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += (s[i] & 0xc0) != 0x80;
  return k;
}

/* ------------------------------------------------------------------------------------------ */
/* Sniffing                                                                                   */

static bool xml_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool xmlrpc_sniff(const uint8_t *data, size_t len) {
  size_t i = 0;
  if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) i = 3;
  while (i < len && xml_space(data[i])) i++;
  return i < len && data[i] == '<';
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding: the text of one element, as Python's int(), float(), base64 read it              */

/* Python's str.strip() for the ASCII white space XML text can hold. */
static void strip(const char **s, size_t *n) {
  while (*n && xml_space((uint8_t)**s)) (*s)++, (*n)--;
  while (*n && xml_space((uint8_t)(*s)[*n - 1])) (*n)--;
}

/* Digits with single underscores between them, as int() and float() take them: copies the
   digits to out (may be NULL), returns how many were read from s (0: none). */
static size_t digitpart(const char *s, size_t n, buf *out) {
  size_t i = 0;
  if (i >= n || s[i] < '0' || s[i] > '9') return 0;
  while (i < n) {
    if (s[i] >= '0' && s[i] <= '9') {
      if (out) buf_byte(out, (uint8_t)s[i]);
      i++;
    } else if (s[i] == '_' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
      i++;
    } else {
      break;
    }
  }
  return i;
}

#define INT_MAX_STR_DIGITS 4300 /* sys.int_info.default_max_str_digits */

/* int(text): an int of any size, or NULL with *exc ValueError as Python words it. */
static value *parse_int(const char *text, size_t len, value **exc) {
  const char *s = text;
  size_t n = len;
  strip(&s, &n);
  bool neg = false;
  if (n && (*s == '+' || *s == '-')) neg = *s == '-', s++, n--;
  buf digits = {0};
  size_t used = digitpart(s, n, &digits);
  if (!used || used != n) {
    buf_free(&digits);
    buf msg = {0};
    buf_str(&msg, "invalid literal for int() with base 10: ");
    repr_text(&msg, text, len, 200);
    *exc = exc_text("builtins", "ValueError", &msg);
    buf_free(&msg);
    return NULL;
  }
  if (digits.len > INT_MAX_STR_DIGITS) {
    *exc = v_exception_fmt("builtins", "ValueError",
                           "Exceeds the limit (%d digits) for integer string conversion: value has %zu digits; "
                           "use sys.set_int_max_str_digits() to increase the limit",
                           INT_MAX_STR_DIGITS, digits.len);
    buf_free(&digits);
    return NULL;
  }
  /* the magnitude in little-endian bytes, one decimal digit at a time */
  size_t cap = digits.len / 2 + 2, nb = 1;
  uint8_t *le = xcalloc(cap + 1, 1);
  for (size_t i = 0; i < digits.len; i++) {
    unsigned carry = (unsigned)(digits.data[i] - '0');
    for (size_t k = 0; k < nb; k++) {
      unsigned x = le[k] * 10u + carry;
      le[k] = (uint8_t)x;
      carry = x >> 8;
    }
    if (carry) le[nb++] = (uint8_t)carry;
  }
  nb++; /* room for the sign bit */
  if (neg) { /* two's complement */
    unsigned carry = 1;
    for (size_t k = 0; k < nb; k++) {
      unsigned x = (uint8_t)~le[k] + carry;
      le[k] = (uint8_t)x;
      carry = x >> 8;
    }
  }
  value *v = v_bigint_le(le, nb);
  free(le);
  buf_free(&digits);
  return v;
}

static bool word(const char *s, size_t n, const char *w) {
  return n == strlen(w) && strncasecmp(s, w, n) == 0;
}

/* float(text), or NULL with *exc ValueError "could not convert string to float: '...'". */
static value *parse_float(const char *text, size_t len, value **exc) {
  const char *s = text;
  size_t n = len;
  strip(&s, &n);
  buf num = {0};
  size_t i = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) buf_byte(&num, (uint8_t)s[i++]);
  bool ok;
  if (word(s + i, n - i, "inf") || word(s + i, n - i, "infinity") || word(s + i, n - i, "nan")) {
    buf_put(&num, s + i, n - i);
    ok = true;
  } else {
    size_t a = digitpart(s + i, n - i, &num), b = 0;
    i += a;
    if (i < n && s[i] == '.') {
      buf_byte(&num, '.');
      i++;
      b = digitpart(s + i, n - i, &num);
      i += b;
    }
    ok = a || b;
    if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
      buf_byte(&num, 'e');
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-')) buf_byte(&num, (uint8_t)s[i++]);
      size_t e = digitpart(s + i, n - i, &num);
      ok = e > 0;
      i += e;
    }
    ok = ok && i == n;
  }
  if (!ok) {
    buf_free(&num);
    buf msg = {0};
    buf_str(&msg, "could not convert string to float: ");
    repr_text(&msg, text, len, 0);
    *exc = exc_text("builtins", "ValueError", &msg);
    buf_free(&msg);
    return NULL;
  }
  buf_byte(&num, 0);
  double d = strtod((const char *)num.data, NULL); /* overflow gives inf, as float() does */
  buf_free(&num);
  return v_float(d);
}

static int b64_digit(uint8_t c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* xmlrpc.client.Binary().decode(text.encode('ascii')): binascii.a2b_base64 (not strict:
   other characters are skipped, a completed padding ends the data). */
static value *parse_base64(const char *text, size_t len, value **exc) {
  const uint8_t *s = (const uint8_t *)text;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < 0x80) continue;
    size_t j = i;
    while (j < len && s[j] >= 0x80) j++; /* the run of characters ascii cannot encode */
    size_t start = code_points(s, i), end = start + code_points(s + i, j - i);
    *exc = encode_error("ascii", text, len, start, end, "ordinal not in range(128)");
    return NULL;
  }
  uint8_t *out = xmalloc(len / 4 * 3 + 3);
  size_t k = 0;
  int quad = 0, pads = 0;
  unsigned left = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '=') {
      if (quad >= 2 && quad + ++pads >= 4) goto done;
      continue;
    }
    int d = b64_digit(s[i]);
    if (d < 0) continue;
    pads = 0;
    switch (quad) {
    case 0: left = (unsigned)d, quad = 1; break;
    case 1: out[k++] = (uint8_t)(left << 2 | (unsigned)d >> 4), left = (unsigned)d & 0x0f, quad = 2; break;
    case 2: out[k++] = (uint8_t)(left << 4 | (unsigned)d >> 2), left = (unsigned)d & 0x03, quad = 3; break;
    default: out[k++] = (uint8_t)(left << 6 | (unsigned)d), left = 0, quad = 0; break;
    }
  }
  if (quad) {
    free(out);
    if (quad == 1)
      *exc = v_exception_fmt("binascii", "Error",
                             "Invalid base64-encoded string: number of data characters (%zu) cannot be 1 more "
                             "than a multiple of 4", k / 3 * 4 + 1);
    else
      *exc = v_exception_fmt("binascii", "Error", "Incorrect padding");
    return NULL;
  }
done:;
  value *v = v_bytes(out, k);
  free(out);
  return v;
}

/* An object made as its pickle makes it: cls.__new__(cls), then its __dict__ set to
   {key: val} (val stolen). xmlrpc.client.DateTime and Binary pickle this way. */
static value *instance(const char *module, const char *name, const char *key, value *val) {
  value *o = v_opaque(OPQ_NEWOBJ, v_global(module, name), v_tuple(0), NULL);
  value *state = v_dict();
  const char *err;
  dict_set(state, v_strz(key), val, &err); /* a str key: always hashable */
  opaque_op(o, OPQ_BUILD, state, NULL);
  return o;
}

/* Decimal(text): the grammar of decimal's from-string conversion; the object is a
   decimal.Decimal(text) recipe, as Decimal pickles (its constructor reads the text again). */
static value *parse_decimal(const char *text, size_t len, value **exc) {
  const char *s = text;
  size_t n = len, i = 0;
  strip(&s, &n);
  buf t = {0};
  if (i < n && (s[i] == '+' || s[i] == '-')) buf_byte(&t, (uint8_t)s[i++]);
  bool ok = false;
  if (word(s + i, n - i, "inf") || word(s + i, n - i, "infinity")) {
    buf_put(&t, s + i, n - i);
    ok = true;
  } else if ((n - i >= 3 && strncasecmp(s + i, "nan", 3) == 0) || (n - i >= 4 && strncasecmp(s + i, "snan", 4) == 0)) {
    size_t w = (s[i] == 's' || s[i] == 'S') ? 4 : 3;
    buf_put(&t, s + i, w);
    i += w;
    i += digitpart(s + i, n - i, &t); /* the diagnostic payload */
    ok = i == n;
  } else {
    size_t a = digitpart(s + i, n - i, &t), b = 0;
    i += a;
    if (i < n && s[i] == '.') {
      buf_byte(&t, '.');
      i++;
      b = digitpart(s + i, n - i, &t);
      i += b;
    }
    ok = a || b;
    if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
      buf_byte(&t, 'E');
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-')) buf_byte(&t, (uint8_t)s[i++]);
      size_t e = digitpart(s + i, n - i, &t);
      ok = e > 0;
      i += e;
    }
    ok = ok && i == n;
  }
  if (!ok) {
    buf_free(&t);
    *exc = v_exception_fmt("decimal", "InvalidOperation", "[<class 'decimal.ConversionSyntax'>]");
    return NULL;
  }
  value *args = v_tuple(1);
  args->u.seq.items[0] = v_str((const char *)t.data, t.len);
  buf_free(&t);
  return v_opaque(OPQ_REDUCE, v_global("decimal", "Decimal"), args, NULL);
}

/* UTF-8 as Python's bytes.decode('utf-8') checks it (no surrogates, no overlong forms):
   NULL, or its UnicodeDecodeError. */
static value *check_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf; /* the range of the first continuation byte */
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else need = 0;
    const char *reason = "invalid start byte";
    size_t end = i + 1;
    if (need) {
      size_t k = 1;
      for (; k <= need && i + k < n; k++) {
        uint8_t b = s[i + k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) break;
      }
      if (k > need) {
        i += need + 1;
        continue;
      }
      if (i + k >= n) { /* cut short by the end: Python names every byte left */
        reason = "unexpected end of data";
        end = n;
      } else {
        reason = "invalid continuation byte";
        end = i + k;
      }
    }
    /* str(UnicodeDecodeError), which is what the traceback's last line shows */
    char msg[160];
    if (end == i + 1)
      snprintf(msg, sizeof msg, "'utf-8' codec can't decode byte 0x%02x in position %zu: %s", s[i], i, reason);
    else
      snprintf(msg, sizeof msg, "'utf-8' codec can't decode bytes in position %zu-%zu: %s", i, end - 1, reason);
    return v_exception_msg("UnicodeDecodeError", msg);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding: xmlrpc.client.Unmarshaller's stack machine over expat's events                   */

typedef enum { T_NONE, T_PARAMS, T_FAULT, T_METHOD } doctype;

typedef struct loader {
  XML_Parser p;
  const xmlrpc_limits *lim;
  value **stack;
  size_t n, cap;
  size_t *marks;
  size_t nmarks, capmarks;
  buf data;        /* the text since the last start tag */
  bool in_value;   /* the last start tag was <value> (Unmarshaller._value) */
  doctype type;
  size_t depth, objects;
  value *exc;      /* the first error: parsing stops there */
} loader;

static void stop(loader *L, value *exc) {
  if (!L->exc) L->exc = exc;
  else v_decref(exc);
  XML_StopParser(L->p, XML_FALSE);
}

static void push(loader *L, value *v) {
  if (++L->objects > L->lim->max_objects) {
    v_decref(v);
    return stop(L, v_exception_fmt("builtins", "ValueError",
                                   "XML-RPC message holds more than %zu values (limits.max_objects)",
                                   L->lim->max_objects));
  }
  if (L->n == L->cap) {
    L->cap = L->cap ? 2 * L->cap : 16;
    L->stack = xrealloc(L->stack, L->cap * sizeof *L->stack);
  }
  L->stack[L->n++] = v;
}

/* A tag's part after its last ':' (the Unmarshaller drops namespace prefixes). */
static const char *local_name(const char *tag) {
  const char *c = strrchr(tag, ':');
  return c ? c + 1 : tag;
}

typedef enum {
  E_UNKNOWN, E_NIL, E_BOOLEAN, E_INT, E_DOUBLE, E_BIGDECIMAL, E_STRING, E_ARRAY, E_STRUCT, E_BASE64,
  E_DATETIME, E_VALUE, E_PARAMS, E_FAULT, E_METHODNAME,
} element;

/* Unmarshaller.dispatch: the tags it knows. */
static element element_of(const char *tag) {
  static const struct { const char *tag; element e; } known[] = {
      {"nil", E_NIL},         {"boolean", E_BOOLEAN},        {"i1", E_INT},
      {"i2", E_INT},          {"i4", E_INT},                 {"i8", E_INT},
      {"int", E_INT},         {"biginteger", E_INT},         {"double", E_DOUBLE},
      {"float", E_DOUBLE},    {"bigdecimal", E_BIGDECIMAL},  {"string", E_STRING},
      {"name", E_STRING},     {"array", E_ARRAY},            {"struct", E_STRUCT},
      {"base64", E_BASE64},   {"dateTime.iso8601", E_DATETIME}, {"value", E_VALUE},
      {"params", E_PARAMS},   {"fault", E_FAULT},            {"methodName", E_METHODNAME},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(tag, known[i].tag) == 0) return known[i].e;
  return E_UNKNOWN;
}

static void XMLCALL on_start(void *ud, const XML_Char *tag, const XML_Char **attrs) {
  (void)attrs;
  loader *L = ud;
  if (L->exc) return;
  if (++L->depth > L->lim->max_depth)
    return stop(L, v_exception_fmt("builtins", "ValueError", "XML-RPC message nested deeper than %zu elements (limits.max_depth)",
                                   L->lim->max_depth));
  const char *name = local_name(tag);
  element e = element_of(name);
  if (e == E_ARRAY || e == E_STRUCT) {
    if (L->nmarks == L->capmarks) {
      L->capmarks = L->capmarks ? 2 * L->capmarks : 16;
      L->marks = xrealloc(L->marks, L->capmarks * sizeof *L->marks);
    }
    L->marks[L->nmarks++] = L->n;
  }
  buf_clear(&L->data);
  if (L->in_value && e == E_UNKNOWN) {
    buf msg = {0};
    buf_str(&msg, "ResponseError(\"unknown tag ");
    repr_text(&msg, name, strlen(name), 0);
    buf_str(&msg, "\")");
    /* Error.__str__ is its repr: the traceback's line is "xmlrpc.client.ResponseError: ResponseError(...)" */
    value *exc = exc_text("xmlrpc.client", "ResponseError", &msg);
    buf_free(&msg);
    return stop(L, exc);
  }
  L->in_value = e == E_VALUE;
}

static void XMLCALL on_data(void *ud, const XML_Char *s, int len) {
  loader *L = ud;
  if (!L->exc) buf_put(&L->data, s, (size_t)len);
}

/* The values from mark on become one list (array) or dict (struct) in their place. */
static void collapse(loader *L, bool as_struct) {
  size_t mark = L->marks[--L->nmarks];
  value *c;
  if (!as_struct) {
    c = v_list(L->n - mark);
    for (size_t i = mark; i < L->n; i++) list_append(c, L->stack[i]);
  } else {
    c = v_dict();
    value *exc = NULL;
    for (size_t i = mark; i < L->n; i += 2) {
      if (exc) { /* release what is left after an error */
        v_decref(L->stack[i]);
        if (i + 1 < L->n) v_decref(L->stack[i + 1]);
        continue;
      }
      if (i + 1 >= L->n) { /* dict[items[i]] = items[i+1] */
        v_decref(L->stack[i]);
        exc = v_exception_msg("IndexError", "list index out of range");
        continue;
      }
      const char *err = NULL;
      if (dict_set(c, L->stack[i], L->stack[i + 1], &err) < 0) exc = v_exception_msg("TypeError", err);
    }
    if (exc) {
      L->n = mark;
      v_decref(c);
      return stop(L, exc);
    }
  }
  L->n = mark;
  push(L, c);
}

static void XMLCALL on_end(void *ud, const XML_Char *tag) {
  loader *L = ud;
  if (L->exc) return;
  L->depth--;
  element e = element_of(local_name(tag));
  const char *text = L->data.data ? (const char *)L->data.data : "";
  size_t len = L->data.len;
  value *v = NULL, *exc = NULL;
  switch (e) {
  case E_UNKNOWN:
    return;
  case E_NIL:
    v = v_none();
    break;
  case E_BOOLEAN:
    if (len == 1 && (text[0] == '0' || text[0] == '1')) v = v_bool(text[0] == '1');
    else exc = v_exception_msg("TypeError", "bad boolean value");
    break;
  case E_INT:
    v = parse_int(text, len, &exc);
    break;
  case E_DOUBLE:
    v = parse_float(text, len, &exc);
    break;
  case E_BIGDECIMAL:
    v = parse_decimal(text, len, &exc);
    break;
  case E_STRING:
    v = v_str(text, len);
    break;
  case E_ARRAY:
  case E_STRUCT:
    L->in_value = false;
    return collapse(L, e == E_STRUCT);
  case E_BASE64:
    v = parse_base64(text, len, &exc);
    break;
  case E_DATETIME: { /* DateTime().decode(data): its value is the text, stripped */
    const char *s = text;
    size_t n = len;
    strip(&s, &n);
    push(L, instance("xmlrpc.client", "DateTime", "value", v_str(s, n)));
    return; /* and, as in the Unmarshaller, in_value stays as it was */
  }
  case E_VALUE: /* a <value> with no element inside is a string */
    if (L->in_value) v = v_str(text, len);
    else return;
    break;
  case E_PARAMS:
    L->type = T_PARAMS;
    return;
  case E_FAULT:
    L->type = T_FAULT;
    return;
  case E_METHODNAME:
    L->type = T_METHOD;
    return;
  }
  if (exc) return stop(L, exc);
  L->in_value = false;
  push(L, v);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset) {
  (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
  stop(ud, v_exception_msg("ValueError", "XML-RPC message with a DOCTYPE refused: shmgr reads no DTD and no entity "
                                         "declaration"));
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *val, int len,
                              const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
                              const XML_Char *notation) {
  (void)name, (void)is_param, (void)val, (void)len, (void)base, (void)sysid, (void)pubid, (void)notation;
  stop(ud, v_exception_msg("ValueError", "XML-RPC message declaring an entity refused"));
}

/* xml.parsers.expat.ExpatError as pyexpat words it. */
static value *expat_error(XML_Parser p) {
  return v_exception_fmt("xml.parsers.expat", "ExpatError", "%s: line %lu, column %lu",
                         XML_ErrorString(XML_GetErrorCode(p)), (unsigned long)XML_GetErrorLineNumber(p),
                         (unsigned long)XML_GetErrorColumnNumber(p));
}

/* Unmarshaller.close() and then `(obj,), method = ...`: the one parameter, or *exc. */
static value *finish(loader *L, value **exc) {
  if (L->type == T_NONE || L->nmarks) {
    *exc = v_exception_fmt("xmlrpc.client", "ResponseError", "ResponseError()");
    return NULL;
  }
  if (L->type == T_FAULT) { /* raise Fault(**self._stack[0]) */
    const value *d = L->n ? L->stack[0] : NULL;
    const value *code = d && d->kind == VK_DICT ? dict_get_str(d, "faultCode") : NULL;
    const value *str = d && d->kind == VK_DICT ? dict_get_str(d, "faultString") : NULL;
    if (!code || !str) {
      *exc = v_exception_msg("TypeError", "Fault.__init__() missing a required argument: 'faultCode' or 'faultString'");
      return NULL;
    }
    buf msg = {0}; /* Fault's repr, "<Fault %s: %r>", is its str */
    buf_str(&msg, "<Fault ");
    if (code->kind == VK_STR) buf_put(&msg, code->u.s.data, code->u.s.len);
    else v_repr(&msg, code);
    buf_str(&msg, ": ");
    v_repr(&msg, str);
    buf_byte(&msg, '>');
    *exc = exc_text("xmlrpc.client", "Fault", &msg);
    buf_free(&msg);
    return NULL;
  }
  if (L->n != 1) {
    if (L->n == 0) *exc = v_exception_msg("ValueError", "not enough values to unpack (expected 1, got 0)");
    else *exc = v_exception_msg("ValueError", "too many values to unpack (expected 1)");
    return NULL;
  }
  L->n = 0;
  return L->stack[0];
}

value *xmlrpc_load(const uint8_t *data, size_t len, const xmlrpc_limits *lim, value **exc) {
  *exc = NULL;
  if ((*exc = check_utf8(data, len))) return NULL; /* s.decode('utf-8') comes first */
  loader L = {0};
  L.lim = lim;
  /* UTF-8 whatever the document declares: Python parses the text it decoded */
  L.p = XML_ParserCreate("UTF-8");
  if (!L.p) {
    *exc = v_exception_msg("MemoryError", "no memory for an XML parser");
    return NULL;
  }
  XML_SetUserData(L.p, &L);
  XML_SetElementHandler(L.p, on_start, on_end);
  XML_SetCharacterDataHandler(L.p, on_data);
  XML_SetStartDoctypeDeclHandler(L.p, on_doctype);
  XML_SetEntityDeclHandler(L.p, on_entity);
  XML_SetParamEntityParsing(L.p, XML_PARAM_ENTITY_PARSING_NEVER);
  value *v = NULL;
  /* feed(data), then close(): Parse(b"", True), as xmlrpc.client's ExpatParser does */
  const char *text = len ? (const char *)data : "";
  bool ok = len > INT32_MAX ? false : XML_Parse(L.p, text, (int)len, XML_FALSE) == XML_STATUS_OK;
  if (ok) ok = XML_Parse(L.p, "", 0, XML_TRUE) == XML_STATUS_OK;
  if (L.exc) *exc = L.exc;
  else if (!ok && len > INT32_MAX) *exc = v_exception_msg("ValueError", "XML-RPC message larger than 2 GiB");
  else if (!ok) *exc = expat_error(L.p);
  else v = finish(&L, exc);
  v_decref_many(L.stack, L.n);
  free(L.stack);
  free(L.marks);
  buf_free(&L.data);
  XML_ParserFree(L.p);
  return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding: xmlrpc.client.Marshaller                                                         */

#define XMLRPC_MAXINT 2147483647LL
#define XMLRPC_MININT (-2147483647LL - 1)
#define DUMP_DEPTH_MAX 10000

typedef struct dumper {
  buf *out;
  size_t start;       /* where the document begins in out */
  const char *view;
  size_t max_len;     /* the longest document written */
  const value **path; /* the containers being written, outermost first: a cycle is an error */
  size_t depth, cap;
  size_t surrogate;   /* out offset of the first lone surrogate written, or SIZE_MAX */
  size_t run;         /* how many follow each other there */
  value *exc;
} dumper;

static int dump(dumper *D, const value *v);

static int fail(dumper *D, value *exc) {
  D->exc = exc;
  return -1;
}

/* TypeError("cannot marshal <class 'mod.name'> objects"), builtins unnamed, as Python prints
   a class. */
static int cannot_marshal(dumper *D, const value *cls) {
  buf msg = {0};
  buf_str(&msg, "cannot marshal <class '");
  if (cls && cls->kind == VK_GLOBAL && cls->u.g.module->kind == VK_STR && cls->u.g.name->kind == VK_STR) {
    if (!v_is_str(cls->u.g.module, "builtins")) {
      buf_put(&msg, cls->u.g.module->u.s.data, cls->u.g.module->u.s.len);
      buf_byte(&msg, '.');
    }
    buf_put(&msg, cls->u.g.name->u.s.data, cls->u.g.name->u.s.len);
  } else {
    buf_str(&msg, "object");
  }
  buf_str(&msg, "'> objects");
  value *exc = exc_text("builtins", "TypeError", &msg);
  buf_free(&msg);
  return fail(D, exc);
}

static int cannot_marshal_name(dumper *D, const char *name) {
  return fail(D, v_exception_fmt("builtins", "TypeError", "cannot marshal <class '%s'> objects", name));
}

/* escape(): &, < and > only; control characters go out as they are, as xmlrpclib writes
   them (a client's parser then refuses them, as it refuses CPython's). Notes the first lone
   surrogate (shmgr's str carries them as Python's pickle does): .encode('utf-8') refuses it. */
static void put_escaped(dumper *D, const char *s, size_t n) {
  const uint8_t *u = (const uint8_t *)s;
  size_t from = 0;
  for (size_t i = 0; i < n; i++) {
    const char *rep = u[i] == '&' ? "&amp;" : u[i] == '<' ? "&lt;" : u[i] == '>' ? "&gt;" : NULL;
    if (u[i] == 0xed && i + 2 < n && u[i + 1] >= 0xa0 && D->surrogate == SIZE_MAX) {
      size_t j = i;
      D->run = 0;
      while (j + 2 < n && u[j] == 0xed && u[j + 1] >= 0xa0) j += 3, D->run++;
      D->surrogate = D->out->len + (i - from);
    }
    if (!rep) continue;
    buf_put(D->out, s + from, i - from);
    buf_str(D->out, rep);
    from = i + 1;
  }
  buf_put(D->out, s + from, n - from);
}

/* base64.encodebytes: lines of 76 characters, each ending in a newline. */
static void put_base64(buf *out, const uint8_t *p, size_t n) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t line = 0; line < n; line += 57) {
    size_t end = line + 57 < n ? line + 57 : n;
    for (size_t i = line; i < end; i += 3) {
      unsigned a = p[i], b = i + 1 < end ? p[i + 1] : 0, c = i + 2 < end ? p[i + 2] : 0;
      char q[4] = {abc[a >> 2], abc[(a & 3) << 4 | b >> 4], i + 1 < end ? abc[(b & 15) << 2 | c >> 6] : '=',
                   i + 2 < end ? abc[c & 63] : '='};
      buf_put(out, q, 4);
    }
    buf_byte(out, '\n');
  }
}

/* The dict a BUILD gave an opaque object (its __dict__), NULL when none; *other when a BUILD
   set state that is no dict (a __setstate__ object, or __slots__ only). */
static const value *instance_dict(const opaque *o, bool *other) {
  const value *d = NULL;
  *other = false;
  for (size_t i = 0; i < o->nops; i++) {
    const opq_op *op = &o->ops[i];
    if (op->op == OPQ_APPEND || op->op == OPQ_SETITEM || op->op == OPQ_ADDITEM) {
      *other = true; /* a subclass of list, dict or set: xmlrpclib refuses those */
    } else if (op->op == OPQ_BUILD) {
      const value *st = op->a;
      if (st->kind == VK_TUPLE && st->u.seq.len == 2) { /* (__dict__, slots) */
        if (st->u.seq.items[1]->kind != VK_NONE) *other = true;
        st = st->u.seq.items[0];
        if (st->kind == VK_NONE) continue;
      }
      if (st->kind == VK_DICT) d = st;
      else *other = true;
    }
  }
  return d;
}

/* The class an opaque object is an instance of (copyreg._reconstructor names it first). */
static const value *class_of(const opaque *o) {
  const value *c = o->callable;
  if (c->kind == VK_GLOBAL && o->how == OPQ_REDUCE && v_is_str(c->u.g.module, "copyreg") &&
      v_is_str(c->u.g.name, "_reconstructor") && o->args->kind == VK_TUPLE && o->args->u.seq.len &&
      o->args->u.seq.items[0]->kind == VK_GLOBAL)
    return o->args->u.seq.items[0];
  return c;
}

static bool is_class(const value *cls, const char *module, const char *name) {
  return cls->kind == VK_GLOBAL && v_is_str(cls->u.g.module, module) && v_is_str(cls->u.g.name, name);
}

static bool ends_with(const value *s, const char *suffix) {
  size_t m = strlen(suffix);
  return s->kind == VK_STR && s->u.s.len >= m && memcmp(s->u.s.data + s->u.s.len - m, suffix, m) == 0;
}

/* A class the name says is an exception (as value_repr.c decides how to print one). */
static bool exception_class(const value *cls) {
  static const char *const names[] = {"Empty", "Full", "ShutDown", "StopIteration", "StopAsyncIteration",
                                      "GeneratorExit", "KeyboardInterrupt", "BaseException", "error"};
  if (cls->kind != VK_GLOBAL) return false;
  const value *n = cls->u.g.name;
  if (ends_with(n, "Error") || ends_with(n, "Exception") || ends_with(n, "Warning") || ends_with(n, "Exit") ||
      ends_with(n, "ExceptionGroup"))
    return true;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (v_is_str(n, names[i])) return true;
  return false;
}

static int dump_struct(dumper *D, const value *d);

/* datetime.datetime(...) from its pickle's 10 bytes: "%Y%m%dT%H:%M:%S" (year in 4 digits). */
static bool put_datetime(buf *out, const opaque *o) {
  if (o->how != OPQ_REDUCE || o->nops || o->args->kind != VK_TUPLE || !o->args->u.seq.len) return false;
  const value *b = o->args->u.seq.items[0];
  if (b->kind != VK_BYTES || b->u.s.len != 10) return false;
  const uint8_t *s = (const uint8_t *)b->u.s.data;
  buf_printf(out, "<value><dateTime.iso8601>%04u%02u%02uT%02u:%02u:%02u</dateTime.iso8601></value>\n",
             (unsigned)(s[0] << 8 | s[1]), s[2] & 0x7fu, s[3], s[4], s[5], s[6]); /* month's top bit: fold */
  return true;
}

/* An instance, as Marshaller.dump_instance sends one. */
static int dump_opaque(dumper *D, const value *v) {
  const opaque *o = v->u.o;
  const value *cls = class_of(o);
  bool other;
  const value *d = instance_dict(o, &other);
  if (is_class(cls, "xmlrpc.client", "DateTime") && d && !other) { /* WRAPPERS: DateTime.encode */
    const value *s = dict_get_str(d, "value");
    if (s && s->kind == VK_STR) {
      buf_str(D->out, "<value><dateTime.iso8601>");
      buf_put(D->out, s->u.s.data, s->u.s.len); /* as it is: DateTime.encode does not escape */
      buf_str(D->out, "</dateTime.iso8601></value>\n");
      return 0;
    }
  }
  if (is_class(cls, "xmlrpc.client", "Binary") && d && !other) { /* Binary.encode */
    const value *b = dict_get_str(d, "data");
    if (b && (b->kind == VK_BYTES || b->kind == VK_BYTEARRAY)) {
      buf_str(D->out, "<value><base64>\n");
      put_base64(D->out, (const uint8_t *)b->u.s.data, b->u.s.len);
      buf_str(D->out, "</base64></value>\n");
      return 0;
    }
  }
  if (is_class(cls, "datetime", "datetime") && put_datetime(D->out, o)) return 0;
  if (is_class(cls, "builtins", "list") && D->view) return cannot_marshal_name(D, D->view);
  if (other) return cannot_marshal(D, cls);
  if (d) return dump_struct(D, d);
  /* no state: an instance with an empty __dict__ (a plain class's, an exception's) is {} */
  if (o->how != OPQ_REDUCE || cls != o->callable || exception_class(cls)) {
    buf_str(D->out, "<value><struct>\n</struct></value>\n");
    return 0;
  }
  return cannot_marshal(D, cls); /* made by a call: a type xmlrpclib cannot tell */
}

/* Enter container v (a cycle is xmlrpclib's TypeError), or fail. */
static int enter(dumper *D, const value *v, const char *what) {
  for (size_t i = 0; i < D->depth; i++)
    if (D->path[i] == v) return fail(D, v_exception_fmt("builtins", "TypeError", "cannot marshal recursive %s", what));
  if (D->depth >= DUMP_DEPTH_MAX)
    return fail(D, v_exception_msg("RecursionError", "maximum recursion depth exceeded"));
  if (D->depth == D->cap) {
    D->cap = D->cap ? 2 * D->cap : 32;
    D->path = xrealloc(D->path, D->cap * sizeof *D->path);
  }
  D->path[D->depth++] = v;
  return 0;
}

static int dump_struct(dumper *D, const value *d) {
  if (enter(D, d, "dictionaries") < 0) return -1;
  buf_str(D->out, "<value><struct>\n");
  size_t pos = 0;
  value *k, *val;
  while (dict_next(d, &pos, &k, &val)) {
    buf_str(D->out, "<member>\n");
    if (k->kind != VK_STR) return fail(D, v_exception_msg("TypeError", "dictionary key must be string"));
    buf_str(D->out, "<name>");
    put_escaped(D, k->u.s.data, k->u.s.len);
    buf_str(D->out, "</name>\n");
    if (dump(D, val) < 0) return -1;
    buf_str(D->out, "</member>\n");
  }
  buf_str(D->out, "</struct></value>\n");
  D->depth--;
  return 0;
}

static int dump(dumper *D, const value *v) {
  buf *out = D->out;
  if (out->len - D->start > D->max_len)
    return fail(D, v_exception_fmt("builtins", "MemoryError", "XML-RPC reply longer than %zu bytes", D->max_len));
  switch ((vkind)v->kind) {
  case VK_NONE:
    buf_str(out, "<value><nil/></value>");
    return 0;
  case VK_BOOL:
    buf_str(out, v->u.b ? "<value><boolean>1</boolean></value>\n" : "<value><boolean>0</boolean></value>\n");
    return 0;
  case VK_INT:
    if (v->u.i > XMLRPC_MAXINT || v->u.i < XMLRPC_MININT) break;
    buf_printf(out, "<value><int>%lld</int></value>\n", (long long)v->u.i);
    return 0;
  case VK_BIGINT:
    break;
  case VK_FLOAT:
    buf_str(out, "<value><double>");
    v_repr(out, v);
    buf_str(out, "</double></value>\n");
    return 0;
  case VK_STR:
    buf_str(out, "<value><string>");
    put_escaped(D, v->u.s.data, v->u.s.len);
    buf_str(out, "</string></value>\n");
    return 0;
  case VK_BYTES:
  case VK_BYTEARRAY:
    buf_str(out, "<value><base64>\n");
    put_base64(out, (const uint8_t *)v->u.s.data, v->u.s.len);
    buf_str(out, "</base64></value>\n");
    return 0;
  case VK_TUPLE:
  case VK_LIST:
    if (enter(D, v, "sequences") < 0) return -1;
    buf_str(out, "<value><array><data>\n");
    for (size_t i = 0; i < v->u.seq.len; i++)
      if (dump(D, v->u.seq.items[i]) < 0) return -1;
    buf_str(out, "</data></array></value>\n");
    D->depth--;
    return 0;
  case VK_DICT:
    return dump_struct(D, v);
  case VK_SET:
    return cannot_marshal_name(D, "set");
  case VK_FROZENSET:
    return cannot_marshal_name(D, "frozenset");
  case VK_GLOBAL: /* a class or a function: what xmlrpclib makes of it depends on the object */
    return fail(D, v_exception_fmt("builtins", "TypeError", "cannot marshal the global %s.%s", v->u.g.module->u.s.data,
                                   v->u.g.name->u.s.data));
  case VK_OPAQUE:
    return dump_opaque(D, v);
  }
  return fail(D, v_exception_msg("OverflowError", "int exceeds XML-RPC limits"));
}

int xmlrpc_dump(buf *out, const value *v, const char *view, size_t max_len, value **exc) {
  dumper D = {.out = out, .start = out->len, .view = view, .max_len = max_len, .surrogate = SIZE_MAX};
  *exc = NULL;
  buf_str(out, "<params>\n<param>\n");
  int r = dump(&D, v);
  if (r == 0) buf_str(out, "</param>\n</params>\n");
  if (r == 0 && D.surrogate != SIZE_MAX) { /* dumps succeeded; .encode('utf-8') fails */
    const char *doc = (const char *)out->data + D.start;
    size_t at = code_points((const uint8_t *)doc, D.surrogate - D.start);
    D.exc = encode_error("utf-8", doc, out->len - D.start, at, at + D.run, "surrogates not allowed");
    r = -1;
  }
  free(D.path);
  if (r < 0) {
    out->len = D.start;
    *exc = D.exc;
  }
  return r;
}
