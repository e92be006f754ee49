/* pickle.c: pickle bytes <-> values: a protocol 0-5 decoder that only builds data; CPython's 4/5 encoder. */
#include "pickle.h"

#include "alloc.h"
#include "effects.h"
#include "ptrmap.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opcode {
  OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_FLOAT = 'F',
  OP_INT = 'I', OP_BININT = 'J', OP_BININT1 = 'K', OP_LONG = 'L', OP_BININT2 = 'M', OP_NONE = 'N',
  OP_PERSID = 'P', OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_STRING = 'S', OP_BINSTRING = 'T',
  OP_SHORT_BINSTRING = 'U', OP_UNICODE = 'V', OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b',
  OP_GLOBAL = 'c', OP_DICT = 'd', OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_GET = 'g', OP_BINGET = 'h',
  OP_INST = 'i', OP_LONG_BINGET = 'j', OP_LIST = 'l', OP_EMPTY_LIST = ']', OP_OBJ = 'o', OP_PUT = 'p',
  OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't', OP_EMPTY_TUPLE = ')',
  OP_SETITEMS = 'u', OP_BINFLOAT = 'G',
  OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_EXT1 = 0x82, OP_EXT2 = 0x83, OP_EXT4 = 0x84, OP_TUPLE1 = 0x85,
  OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_LONG4 = 0x8b,
  OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
  OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f,
  OP_ADDITEMS = 0x90, OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92, OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94,
  OP_FRAME = 0x95, OP_BYTEARRAY8 = 0x96, OP_NEXT_BUFFER = 0x97, OP_READONLY_BUFFER = 0x98,
};

/* Grow an array of *cap elements of `size` bytes so that index `need` fits. */
static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need < *cap) return p;
  size_t n = *cap ? *cap : 16;
  while (n <= need) {
    if (n > SIZE_MAX / 2 / size) {
      fputs("shmgr: allocation size overflow\n", stderr);
      abort();
    }
    n *= 2;
  }
  *cap = n;
  return xrealloc(p, n * size);
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t x = 0;
  for (int i = n; i-- > 0;) x = (x << 8) | p[i];
  return x;
}

/* ---- text and name helpers shared by the decoder ---- */

/* UTF-8 as Python's 'utf-8' codec accepts it; with `surrogates`, 'surrogatepass' too. */
static bool utf8_valid(const uint8_t *s, size_t n, bool surrogates) {
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
static void put_utf8(buf *b, uint32_t c) {
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

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Python 2 names that Python 3's unpickler renames below protocol 3 (_compat_pickle), so
   that a re-encoded protocol 4 pickle names what Python 3 would have loaded. */
static const char *const import_map[][2] = {
    {"__builtin__", "builtins"}, {"copy_reg", "copyreg"}, {"Queue", "queue"},
    {"SocketServer", "socketserver"}, {"ConfigParser", "configparser"}, {"repr", "reprlib"},
    {"tkFileDialog", "tkinter.filedialog"}, {"tkSimpleDialog", "tkinter.simpledialog"},
    {"tkColorChooser", "tkinter.colorchooser"}, {"tkCommonDialog", "tkinter.commondialog"},
    {"Dialog", "tkinter.dialog"}, {"Tkdnd", "tkinter.dnd"}, {"tkFont", "tkinter.font"},
    {"tkMessageBox", "tkinter.messagebox"}, {"ScrolledText", "tkinter.scrolledtext"},
    {"Tkconstants", "tkinter.constants"}, {"ttk", "tkinter.ttk"}, {"Tkinter", "tkinter"},
    {"markupbase", "_markupbase"}, {"_winreg", "winreg"}, {"thread", "_thread"},
    {"dummy_thread", "_dummy_thread"}, {"dbhash", "dbm.bsd"}, {"dumbdbm", "dbm.dumb"},
    {"dbm", "dbm.ndbm"}, {"gdbm", "dbm.gnu"}, {"xmlrpclib", "xmlrpc.client"},
    {"SimpleXMLRPCServer", "xmlrpc.server"}, {"httplib", "http.client"},
    {"htmlentitydefs", "html.entities"}, {"HTMLParser", "html.parser"}, {"Cookie", "http.cookies"},
    {"cookielib", "http.cookiejar"}, {"BaseHTTPServer", "http.server"},
    {"test.test_support", "test.support"}, {"commands", "subprocess"}, {"urlparse", "urllib.parse"},
    {"robotparser", "urllib.robotparser"}, {"urllib2", "urllib.request"}, {"anydbm", "dbm"},
    {"_abcoll", "collections.abc"}, {"cPickle", "pickle"}, {"_elementtree", "xml.etree.ElementTree"},
    {"FileDialog", "tkinter.filedialog"}, {"SimpleDialog", "tkinter.simpledialog"},
    {"DocXMLRPCServer", "xmlrpc.server"}, {"SimpleHTTPServer", "http.server"},
    {"CGIHTTPServer", "http.server"}, {"UserDict", "collections"}, {"UserList", "collections"},
    {"UserString", "collections"}, {"whichdb", "dbm"}, {"StringIO", "io"}, {"cStringIO", "io"},
};

static const char *const name_map[][4] = {
    {"__builtin__", "xrange", "builtins", "range"}, {"__builtin__", "reduce", "functools", "reduce"},
    {"__builtin__", "intern", "sys", "intern"}, {"__builtin__", "unichr", "builtins", "chr"},
    {"__builtin__", "unicode", "builtins", "str"}, {"__builtin__", "long", "builtins", "int"},
    {"__builtin__", "basestring", "builtins", "str"}, {"itertools", "izip", "builtins", "zip"},
    {"itertools", "imap", "builtins", "map"}, {"itertools", "ifilter", "builtins", "filter"},
    {"itertools", "ifilterfalse", "itertools", "filterfalse"},
    {"itertools", "izip_longest", "itertools", "zip_longest"},
    {"UserDict", "IterableUserDict", "collections", "UserDict"},
    {"UserDict", "UserDict", "collections", "UserDict"}, {"UserList", "UserList", "collections", "UserList"},
    {"UserString", "UserString", "collections", "UserString"}, {"whichdb", "whichdb", "dbm", "whichdb"},
    {"_socket", "fromfd", "socket", "fromfd"}, {"socket", "_socketobject", "socket", "SocketType"},
    {"_multiprocessing", "Connection", "multiprocessing.connection", "Connection"},
    {"multiprocessing.process", "Process", "multiprocessing.context", "Process"},
    {"multiprocessing.forking", "Popen", "multiprocessing.popen_fork", "Popen"},
    {"multiprocessing", "AuthenticationError", "multiprocessing.context", "AuthenticationError"},
    {"multiprocessing", "BufferTooShort", "multiprocessing.context", "BufferTooShort"},
    {"multiprocessing", "ProcessError", "multiprocessing.context", "ProcessError"},
    {"multiprocessing", "TimeoutError", "multiprocessing.context", "TimeoutError"},
    {"urllib", "ContentTooShortError", "urllib.error", "ContentTooShortError"},
    {"urllib", "getproxies", "urllib.request", "getproxies"},
    {"urllib", "pathname2url", "urllib.request", "pathname2url"},
    {"urllib", "quote_plus", "urllib.parse", "quote_plus"}, {"urllib", "quote", "urllib.parse", "quote"},
    {"urllib", "unquote_plus", "urllib.parse", "unquote_plus"},
    {"urllib", "unquote", "urllib.parse", "unquote"},
    {"urllib", "url2pathname", "urllib.request", "url2pathname"},
    {"urllib", "urlcleanup", "urllib.request", "urlcleanup"},
    {"urllib", "urlencode", "urllib.parse", "urlencode"}, {"urllib", "urlopen", "urllib.request", "urlopen"},
    {"urllib", "urlretrieve", "urllib.request", "urlretrieve"},
    {"urllib2", "HTTPError", "urllib.error", "HTTPError"}, {"urllib2", "URLError", "urllib.error", "URLError"},
    {"exceptions", "StandardError", "builtins", "Exception"},
};

static const char *const py2_exceptions[] = {
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BufferError",
    "BytesWarning", "DeprecationWarning", "EOFError", "EnvironmentError", "Exception",
    "FloatingPointError", "FutureWarning", "GeneratorExit", "IOError", "ImportError",
    "ImportWarning", "IndentationError", "IndexError", "KeyError", "KeyboardInterrupt",
    "LookupError", "MemoryError", "NameError", "NotImplementedError", "OSError", "OverflowError",
    "PendingDeprecationWarning", "ReferenceError", "RuntimeError", "RuntimeWarning",
    "StopIteration", "SyntaxError", "SyntaxWarning", "SystemError", "SystemExit", "TabError",
    "TypeError", "UnboundLocalError", "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError",
    "UnicodeTranslateError", "UnicodeWarning", "UserWarning", "ValueError", "Warning",
    "ZeroDivisionError",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Python 3's name for a Python 2 global; false when unchanged. */
static bool compat_name(const char *module, const char *name, const char **m2, const char **n2) {
  for (size_t i = 0; i < COUNT(name_map); i++)
    if (!strcmp(module, name_map[i][0]) && !strcmp(name, name_map[i][1])) {
      *m2 = name_map[i][2];
      *n2 = name_map[i][3];
      return true;
    }
  if (!strcmp(module, "exceptions"))
    for (size_t i = 0; i < COUNT(py2_exceptions); i++)
      if (!strcmp(name, py2_exceptions[i])) {
        *m2 = "builtins";
        *n2 = name;
        return true;
      }
  for (size_t i = 0; i < COUNT(import_map); i++)
    if (!strcmp(module, import_map[i][0])) {
      *m2 = import_map[i][1];
      *n2 = name;
      return true;
    }
  return false;
}

/* ======================= decoding ======================= */

typedef struct slot {
  value *v;
  size_t depth; /* nesting of v as far as the decoder has seen it built */
  value *near;  /* the nearest opaque object at or under this slot, or NULL (effects.c) */
  bool again;   /* pushed again by GET or DUP, not where it was made */
} slot;

typedef struct dec {
  const uint8_t *data, *p, *end;
  size_t op_at; /* offset of the opcode being run */
  const pickle_limits *lim;
  slot *stack;
  size_t sp, stackcap;
  size_t *marks;
  size_t nmarks, markcap;
  slot *memo;
  size_t memocap, memolen; /* memolen counts filled entries, as len(memo) in Python */
  size_t objects;
  int proto;
  bool shared; /* a container was pushed a second time (GET, DUP): graphs, maybe cycles */
  value **dead; /* values let go of once shared: released with the stack and memo, at once */
  size_t ndead, deadcap;
  pk_made *made; /* every opaque object made, in order, held until the end (effects.c) */
  size_t nmade, madecap;
  bool lost;     /* a container or object was let go of: something made may be lost */
  char *err;
  size_t errlen;
} dec;

static bool fail(dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(dec *d, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (d->errlen) snprintf(d->err, d->errlen, "pickle: %s at offset %zu", msg, d->op_at);
  return false;
}

/* Let go of a value the decoder owned. Once graphs exist it may close a cycle, so it waits
   for the one collection at the end (a collection per POP would cost quadratic time). */
static void drop(dec *d, value *v) {
  if (v_is_container(v)) d->lost = true;
  if (!d->shared) {
    v_decref(v);
    return;
  }
  d->dead = grow(d->dead, &d->deadcap, d->ndead, sizeof(value *));
  d->dead[d->ndead++] = v;
}

static bool need(dec *d, size_t n) {
  if ((size_t)(d->end - d->p) < n) return fail(d, "truncated data");
  return true;
}

static bool read_uint(dec *d, int n, uint64_t *out) {
  if (!need(d, (size_t)n)) return false;
  *out = get_le(d->p, n);
  d->p += n;
  return true;
}

/* A protocol 0 argument: the bytes up to the next newline (consumed, not included). */
static bool read_line(dec *d, const uint8_t **s, size_t *n) {
  const uint8_t *nl = memchr(d->p, '\n', (size_t)(d->end - d->p));
  if (!nl) return fail(d, "truncated data (no newline)");
  *s = d->p;
  *n = (size_t)(nl - d->p);
  d->p = nl + 1;
  return true;
}

/* A length-prefixed argument; lengths are checked against the data before any use. */
static bool read_sized(dec *d, int lenbytes, bool is_signed, const uint8_t **s, size_t *n) {
  uint64_t len;
  if (!read_uint(d, lenbytes, &len)) return false;
  if (is_signed && lenbytes == 4 && (len & 0x80000000u)) return fail(d, "negative byte count");
  if (len > (uint64_t)(d->end - d->p))
    return fail(d, "truncated data (%llu bytes announced)", (unsigned long long)len);
  *s = d->p;
  *n = (size_t)len;
  d->p += len;
  return true;
}

static size_t fence(const dec *d) { return d->nmarks ? d->marks[d->nmarks - 1] : 0; }

static bool need_items(dec *d, size_t k, const char *op) {
  if (d->sp - fence(d) < k) return fail(d, "stack underflow in %s", op);
  return true;
}

/* For a tree the depth the stack shows is exact, so too deep is refused at once. Once memo
   references are in play it can be off either way (a container filled after it was fetched
   again is stale; a cycle is counted round once more than any walk goes), so the exact walk
   at the end decides (pickle_load). */
static bool check_depth(dec *d, size_t depth) {
  if (depth > d->lim->max_depth && !d->shared) return fail(d, "nesting deeper than %zu", d->lim->max_depth);
  return true;
}

static bool push_slot(dec *d, value *v, size_t depth) {
  if (!check_depth(d, depth)) {
    drop(d, v);
    return false;
  }
  d->stack = grow(d->stack, &d->stackcap, d->sp, sizeof(slot));
  value *below = d->sp ? d->stack[d->sp - 1].near : NULL;
  d->stack[d->sp] = (slot){v, depth, v->kind == VK_OPAQUE ? v : below, false};
  d->sp++;
  return true;
}

/* Push a value just made (stolen), counting it against max_objects. */
static bool push_new(dec *d, value *v, size_t depth) {
  if (++d->objects > d->lim->max_objects) {
    drop(d, v);
    return fail(d, "more than %zu objects", d->lim->max_objects);
  }
  return push_slot(d, v, depth);
}

/* Push another reference to a value already held (GET, DUP). */
static bool push_again(dec *d, slot s) {
  if (v_is_container(s.v)) d->shared = true;
  if (!push_slot(d, v_incref(s.v), s.depth)) return false;
  d->stack[d->sp - 1].again = true;
  return true;
}

static slot pop(dec *d) { return d->stack[--d->sp]; }

static bool pop_mark(dec *d, size_t *start, const char *op) {
  if (!d->nmarks) return fail(d, "%s without MARK", op);
  *start = d->marks[--d->nmarks];
  return true;
}

/* Release the stack items from `from` up (an error path or a POP). */
static void drop_items(dec *d, size_t from) {
  while (d->sp > from) drop(d, d->stack[--d->sp].v);
}

/* A tuple of the stack items from `start` up, which it takes over. */
static value *tuple_from(dec *d, size_t start, size_t *depth) {
  size_t n = d->sp - start, deepest = 0;
  value *t = v_tuple(n);
  for (size_t i = 0; i < n; i++) {
    t->u.seq.items[i] = d->stack[start + i].v;
    if (d->stack[start + i].depth > deepest) deepest = d->stack[start + i].depth;
  }
  d->sp = start;
  *depth = deepest + 1;
  return t;
}

/* Raise the recorded nesting of the container in stack slot i for a new member. */
static bool deepen(dec *d, size_t i, size_t member_depth) {
  if (member_depth + 1 > d->stack[i].depth) d->stack[i].depth = member_depth + 1;
  return check_depth(d, d->stack[i].depth);
}

/* ---- numbers ---- */

static bool op_binint(dec *d, int n) {
  uint64_t u;
  if (!read_uint(d, n, &u)) return false;
  int64_t i = n == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
  return push_new(d, v_int(i), 0);
}

static bool op_long_bin(dec *d, int lenbytes) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, true, &s, &n)) return false;
  return push_new(d, v_bigint_le(s, n), 0);
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
static value *parse_int(const uint8_t *s, size_t n) {
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

static bool op_int_text(dec *d, bool is_long) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  if (!is_long && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) /* protocol 0 bools */
    return push_new(d, v_bool(s[1] == '1'), 0);
  if (is_long && n && s[n - 1] == 'L') n--;
  value *v = parse_int(s, n);
  if (!v) return fail(d, "invalid literal for int");
  return push_new(d, v, 0);
}

static bool op_float_text(dec *d) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  char tmp[400];
  if (n == 0 || n >= sizeof tmp || memchr(s, 0, n)) return fail(d, "invalid float literal");
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *end;
  double f = strtod(tmp, &end);
  while (*end == ' ' || *end == '\t' || *end == '\r') end++;
  if (*end || end == tmp || strpbrk(tmp, "xX(")) return fail(d, "invalid float literal");
  return push_new(d, v_float(f), 0);
}

static bool op_binfloat(dec *d) {
  if (!need(d, 8)) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | d->p[i];
  d->p += 8;
  double f;
  memcpy(&f, &u, sizeof f);
  return push_new(d, v_float(f), 0);
}

/* ---- strings ---- */

static bool op_unicode_bin(dec *d, int lenbytes) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, false, &s, &n)) return false;
  if (!utf8_valid(s, n, true)) return fail(d, "invalid UTF-8 in str");
  return push_new(d, v_str((const char *)s, n), 0);
}

static bool op_bytes_bin(dec *d, int lenbytes, bool array) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, false, &s, &n)) return false;
  return push_new(d, array ? v_bytearray(s, n) : v_bytes(s, n), 0);
}

/* Protocol 0 UNICODE: latin-1 bytes with \uXXXX and \UXXXXXXXX escapes (raw-unicode-escape). */
static bool op_unicode_text(dec *d) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  buf out = {0};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i++];
    if (c != '\\' || i == n || (s[i] != 'u' && s[i] != 'U')) {
      put_utf8(&out, c);
      if (c == '\\' && i < n) put_utf8(&out, s[i++]); /* a backslash pair stays as it is */
      continue;
    }
    size_t count = s[i++] == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (size_t k = 0; k < count; k++, i++) {
      int h = i < n ? hexval(s[i]) : -1;
      if (h < 0) {
        buf_free(&out);
        return fail(d, "truncated \\u escape in UNICODE");
      }
      cp = cp << 4 | (uint32_t)h;
    }
    if (cp > 0x10ffff) {
      buf_free(&out);
      return fail(d, "\\U escape out of range in UNICODE");
    }
    put_utf8(&out, cp);
  }
  value *v = v_str(out.data ? (const char *)out.data : "", out.len);
  buf_free(&out);
  return push_new(d, v, 0);
}

/* A Python 2 str: text when it is valid UTF-8, bytes otherwise. */
static bool push_py2_str(dec *d, const uint8_t *s, size_t n) {
  if (utf8_valid(s, n, false)) return push_new(d, v_str((const char *)s, n), 0);
  return push_new(d, v_bytes(s, n), 0);
}

/* codecs.escape_decode of a STRING argument. */
static bool escape_decode(const uint8_t *s, size_t n, buf *out) {
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

static bool op_string_text(dec *d) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
    return fail(d, "the STRING opcode argument must be quoted");
  buf out = {0};
  if (!escape_decode(s + 1, n - 2, &out)) {
    buf_free(&out);
    return fail(d, "invalid escape in STRING");
  }
  bool ok = push_py2_str(d, out.data ? out.data : (const uint8_t *)"", out.len);
  buf_free(&out);
  return ok;
}

static bool op_binstring(dec *d, int lenbytes) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_sized(d, lenbytes, true, &s, &n)) return false;
  return push_py2_str(d, s, n);
}

/* ---- containers ---- */

static bool op_tuple_n(dec *d, size_t n) {
  if (!need_items(d, n, "TUPLE")) return false;
  size_t depth;
  value *t = tuple_from(d, d->sp - n, &depth);
  return push_new(d, t, depth);
}

static bool op_marked(dec *d, uint8_t op) {
  size_t start = 0, depth = 0;
  if (!pop_mark(d, &start, op == OP_TUPLE ? "TUPLE" : "LIST")) return false;
  value *t = tuple_from(d, start, &depth);
  if (op == OP_TUPLE) return push_new(d, t, depth);
  value *l = v_list(t->u.seq.len); /* LIST: the same items in a list */
  for (size_t i = 0; i < t->u.seq.len; i++) list_append(l, t->u.seq.items[i]);
  t->u.seq.len = 0;
  v_decref(t);
  return push_new(d, l, depth);
}

/* Move stack items from `start` up into a dict (pairs) or set (members). */
static bool fill_table(dec *d, value *table, size_t start, bool pairs, size_t *depth) {
  size_t step = pairs ? 2 : 1, i = start;
  for (; i + step <= d->sp; i += step) {
    slot k = d->stack[i], v = pairs ? d->stack[i + 1] : (slot){NULL, 0, NULL, false};
    if (k.depth > *depth) *depth = k.depth;
    if (v.depth > *depth) *depth = v.depth;
    d->stack[i].v = NULL;
    if (pairs) d->stack[i + 1].v = NULL;
    const char *err = NULL;
    int rc = dict_set(table, k.v, v.v, &err);
    if (rc > 0) d->lost = true; /* the key was there: the old value (or new key) is gone */
    if (rc < 0) {
      i += step;
      for (; i < d->sp; i++) drop(d, d->stack[i].v);
      d->sp = start;
      return fail(d, "TypeError: %s", err);
    }
  }
  d->sp = start;
  return true;
}

static bool op_dict_or_frozenset(dec *d, bool dict) {
  size_t start = 0, depth = 0;
  if (!pop_mark(d, &start, dict ? "DICT" : "FROZENSET")) return false;
  if (dict && (d->sp - start) % 2) {
    drop_items(d, start);
    return fail(d, "odd number of items for DICT");
  }
  value *t = dict ? v_dict() : v_set(true);
  if (!fill_table(d, t, start, dict, &depth)) {
    drop(d, t);
    return false;
  }
  return push_new(d, t, depth + 1);
}

/* ---- mutating the container under the items (APPEND, SETITEM, ADDITEMS, BUILD) ---- */

/* A list, dict or set in slot ti went from `before` items to more, fetched again rather than
   where it was made: it was filled late, perhaps after a call took it as it was (dill makes a
   function with its globals, then fills them). Keep the steps: the early count on it, the
   fill where it happened, after the nearest opaque object under it. */
static void late_fill(dec *d, size_t ti, size_t before) {
  value *c = d->stack[ti].v;
  size_t after = c->kind == VK_LIST ? c->u.seq.len : dict_len(c);
  if (!d->stack[ti].again || after == before) return;
  if (v_early(c) == SIZE_MAX) v_set_early(c, before);
  value *carrier = ti ? d->stack[ti - 1].near : NULL;
  if (!carrier) return;
  opaque *o = carrier->u.o;
  opq_op *last = o->nops ? &o->ops[o->nops - 1] : NULL;
  if (last && last->op == OPQ_FILL && last->a == c) { /* the same fill going on */
    v_decref(last->b);
    last->b = v_int((int64_t)after);
    return;
  }
  opaque_op(carrier, OPQ_FILL, v_incref(c), v_int((int64_t)after));
}

static bool op_append(dec *d) {
  if (!need_items(d, 2, "APPEND")) return false;
  size_t ti = d->sp - 2;
  value *target = d->stack[ti].v;
  if (target->kind != VK_LIST && target->kind != VK_OPAQUE) return fail(d, "APPEND to a %s", v_typename(target));
  slot item = pop(d);
  if (target->kind == VK_LIST) {
    list_append(target, item.v);
    late_fill(d, ti, target->u.seq.len - 1);
  } else {
    opaque_op(target, OPQ_APPEND, item.v, NULL);
  }
  return deepen(d, ti, item.depth);
}

static bool op_appends(dec *d) {
  size_t start = 0;
  if (!pop_mark(d, &start, "APPENDS")) return false;
  if (start == 0 || start - 1 < fence(d)) {
    drop_items(d, start);
    return fail(d, "stack underflow in APPENDS");
  }
  value *target = d->stack[start - 1].v;
  if (target->kind != VK_LIST && target->kind != VK_OPAQUE) {
    drop_items(d, start);
    return fail(d, "APPENDS to a %s", v_typename(target));
  }
  size_t deepest = 0, before = target->kind == VK_LIST ? target->u.seq.len : 0;
  for (size_t i = start; i < d->sp; i++) {
    if (target->kind == VK_LIST) list_append(target, d->stack[i].v);
    else opaque_op(target, OPQ_APPEND, d->stack[i].v, NULL);
    if (d->stack[i].depth > deepest) deepest = d->stack[i].depth;
  }
  bool any = d->sp > start;
  d->sp = start;
  if (target->kind == VK_LIST) late_fill(d, start - 1, before);
  return !any || deepen(d, start - 1, deepest);
}

static bool op_setitem(dec *d) {
  if (!need_items(d, 3, "SETITEM")) return false;
  size_t ti = d->sp - 3;
  value *target = d->stack[ti].v;
  if (target->kind != VK_DICT && target->kind != VK_OPAQUE) return fail(d, "SETITEM on a %s", v_typename(target));
  slot v = pop(d), k = pop(d);
  size_t deepest = k.depth > v.depth ? k.depth : v.depth;
  if (target->kind == VK_OPAQUE) opaque_op(target, OPQ_SETITEM, k.v, v.v);
  else {
    const char *err = NULL;
    size_t before = dict_len(target);
    int rc = dict_set(target, k.v, v.v, &err);
    if (rc < 0) return fail(d, "TypeError: %s", err);
    if (rc > 0) d->lost = true;
    late_fill(d, ti, before);
  }
  return deepen(d, ti, deepest);
}

/* SETITEMS and ADDITEMS: the marked items go into the dict/set/opaque under the MARK. */
static bool op_setitems(dec *d, bool pairs) {
  const char *name = pairs ? "SETITEMS" : "ADDITEMS";
  size_t start = 0;
  if (!pop_mark(d, &start, name)) return false;
  if (start == 0 || start - 1 < fence(d)) {
    drop_items(d, start);
    return fail(d, "stack underflow in %s", name);
  }
  value *target = d->stack[start - 1].v;
  bool plain = target->kind == (pairs ? VK_DICT : VK_SET);
  if ((!plain && target->kind != VK_OPAQUE) || (pairs && (d->sp - start) % 2)) {
    drop_items(d, start);
    if (!plain && target->kind != VK_OPAQUE) return fail(d, "%s on a %s", name, v_typename(target));
    return fail(d, "odd number of items for SETITEMS");
  }
  size_t deepest = 0;
  bool any = d->sp > start;
  if (plain) {
    size_t before = dict_len(target);
    if (!fill_table(d, target, start, pairs, &deepest)) return false;
    late_fill(d, start - 1, before);
  } else {
    for (size_t i = start; i < d->sp; i += pairs ? 2 : 1) {
      slot k = d->stack[i], v = pairs ? d->stack[i + 1] : (slot){NULL, 0, NULL, false};
      opaque_op(target, pairs ? OPQ_SETITEM : OPQ_ADDITEM, k.v, v.v);
      if (k.depth > deepest) deepest = k.depth;
      if (v.depth > deepest) deepest = v.depth;
    }
    d->sp = start;
  }
  return !any || deepen(d, start - 1, deepest);
}

static bool op_build(dec *d) {
  if (!need_items(d, 2, "BUILD")) return false;
  size_t ti = d->sp - 2;
  value *target = d->stack[ti].v;
  if (target->kind != VK_OPAQUE) return fail(d, "BUILD on a %s", v_typename(target));
  slot state = pop(d);
  opaque_op(target, OPQ_BUILD, state.v, NULL);
  return deepen(d, ti, state.depth);
}

/* ---- globals and objects: names stay names, calls stay recipes ---- */

/* Remember an opaque object just made (before it is pushed), with the nearest opaque object
   under it: if the result does not reach it, it was made for an effect (effects.c). */
static void note_made(dec *d, value *o) {
  d->made = grow(d->made, &d->madecap, d->nmade, sizeof(pk_made));
  value *carrier = d->sp ? d->stack[d->sp - 1].near : NULL;
  d->made[d->nmade++] = (pk_made){v_incref(o), carrier, carrier ? carrier->u.o->nops : 0};
}

static bool push_global(dec *d, const uint8_t *m, size_t mn, const uint8_t *n, size_t nn, bool ascii) {
  if (memchr(m, 0, mn) || memchr(n, 0, nn) || !utf8_valid(m, mn, false) || !utf8_valid(n, nn, false))
    return fail(d, "invalid global name");
  for (size_t i = 0; ascii && i < mn + nn; i++)
    if ((i < mn ? m[i] : n[i - mn]) >= 0x80) return fail(d, "non-ASCII name in INST");
  char *mod = xrealloc(NULL, mn + nn + 2), *name = mod + mn + 1;
  memcpy(mod, m, mn);
  mod[mn] = 0;
  memcpy(name, n, nn);
  name[nn] = 0;
  const char *m2 = mod, *n2 = name;
  if (d->proto < 3) compat_name(mod, name, &m2, &n2);
  value *g = v_global(m2, n2);
  free(mod);
  return push_new(d, g, 0);
}

static bool op_global(dec *d) {
  const uint8_t *m = NULL, *n = NULL;
  size_t mn = 0, nn = 0;
  if (!read_line(d, &m, &mn) || !read_line(d, &n, &nn)) return false;
  return push_global(d, m, mn, n, nn, false);
}

static bool op_stack_global(dec *d) {
  if (!need_items(d, 2, "STACK_GLOBAL")) return false;
  value *name = d->stack[d->sp - 1].v, *module = d->stack[d->sp - 2].v;
  if (name->kind != VK_STR || module->kind != VK_STR) return fail(d, "STACK_GLOBAL requires str");
  d->sp -= 2;
  const char *m2, *n2;
  if (d->proto < 3 && !memchr(module->u.s.data, 0, module->u.s.len) && !memchr(name->u.s.data, 0, name->u.s.len) &&
      compat_name(module->u.s.data, name->u.s.data, &m2, &n2)) {
    value *g = v_global(m2, n2);
    drop(d, module);
    drop(d, name);
    return push_new(d, g, 0);
  }
  return push_new(d, v_global_of(module, name), 0); /* the strings stay shared */
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* INST (names inline) and OBJ (class first after the MARK): cls(*args), kept as OPQ_OBJ. */
static bool op_inst_obj(dec *d, bool inst) {
  const uint8_t *m = NULL, *n = NULL;
  size_t mn = 0, nn = 0, start = 0, depth = 0;
  if (inst && (!read_line(d, &m, &mn) || !read_line(d, &n, &nn))) return false;
  if (!pop_mark(d, &start, inst ? "INST" : "OBJ")) return false;
  slot cls;
  if (inst) {
    size_t sp = d->sp;
    if (!push_global(d, m, mn, n, nn, true)) {
      drop_items(d, start);
      return false;
    }
    cls = d->stack[sp];
    memmove(d->stack + start + 1, d->stack + start, (sp - start) * sizeof(slot));
    d->stack[start] = cls;
  } else if (d->sp == start) {
    return fail(d, "OBJ without a class");
  }
  cls = d->stack[start];
  value *args = tuple_from(d, start + 1, &depth);
  d->sp = start;
  value *o = v_opaque(OPQ_OBJ, cls.v, args, NULL);
  note_made(d, o);
  return push_new(d, o, max3(cls.depth, depth, 0) + 1);
}

static bool op_newobj(dec *d, bool ex) {
  if (!need_items(d, ex ? 3 : 2, ex ? "NEWOBJ_EX" : "NEWOBJ")) return false;
  slot kwargs = ex ? pop(d) : (slot){NULL, 0, NULL, false};
  slot args = pop(d), cls = pop(d);
  value *o = v_opaque(ex ? OPQ_NEWOBJ_EX : OPQ_NEWOBJ, cls.v, args.v, kwargs.v);
  note_made(d, o);
  return push_new(d, o, max3(cls.depth, args.depth, kwargs.depth) + 1);
}

static bool global_is(const value *g, const char *module, const char *name) {
  return g->kind == VK_GLOBAL && v_is_str(g->u.g.module, module) && v_is_str(g->u.g.name, name);
}

/* codecs.encode(text, 'latin1'), as protocols 0-2 write bytes: the bytes, or NULL. */
static value *latin1_bytes(const value *text) {
  buf out = {0};
  const uint8_t *s = (const uint8_t *)text->u.s.data;
  size_t n = text->u.s.len;
  for (size_t i = 0; i < n;) {
    uint32_t c = s[i];
    if (c < 0x80) i++;
    else if ((c & 0xe0) == 0xc0 && i + 1 < n) c = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f), i += 2;
    else c = 0x100;
    if (c > 0xff) {
      buf_free(&out);
      return NULL;
    }
    buf_byte(&out, (uint8_t)c);
  }
  value *v = v_bytes(out.data ? out.data : (const uint8_t *)"", out.len);
  buf_free(&out);
  return v;
}

/* REDUCE calls that only rebuild plain data (set, frozenset, bytearray and bytes as older
   protocols write them) become that data. NULL when the call is something else; *bad
   gets a TypeError message when the data cannot be built (an unhashable member). */
static value *plain_reduce(const value *fn, const value *args, const char **bad) {
  if (fn->kind != VK_GLOBAL || args->kind != VK_TUPLE || args->u.seq.len > 2) return NULL;
  size_t n = args->u.seq.len;
  value *a0 = n ? args->u.seq.items[0] : NULL;
  bool frozen = global_is(fn, "builtins", "frozenset");
  if ((frozen || global_is(fn, "builtins", "set")) && n <= 1) {
    if (a0 && a0->kind != VK_LIST && a0->kind != VK_TUPLE) return NULL;
    value *s = v_set(frozen);
    for (size_t i = 0; a0 && i < a0->u.seq.len; i++)
      if (dict_set(s, v_incref(a0->u.seq.items[i]), NULL, bad) < 0) {
        v_decref(s);
        return NULL;
      }
    return s;
  }
  bool latin1 = n == 2 && a0->kind == VK_STR &&
                (v_is_str(args->u.seq.items[1], "latin1") || v_is_str(args->u.seq.items[1], "latin-1"));
  if (global_is(fn, "builtins", "bytearray") && n <= 1) {
    if (!a0) return v_bytearray("", 0);
    return a0->kind == VK_BYTES ? v_bytearray(a0->u.s.data, a0->u.s.len) : NULL;
  }
  if (global_is(fn, "builtins", "bytearray") && latin1) { /* protocol 2 of Python 3.6 and 3.7 */
    value *b = latin1_bytes(a0), *ba = b ? v_bytearray(b->u.s.data, b->u.s.len) : NULL;
    v_decref(b);
    return ba;
  }
  if (global_is(fn, "builtins", "bytes") && n == 0) return v_bytes("", 0);
  if (global_is(fn, "_codecs", "encode") && latin1) return latin1_bytes(a0);
  return NULL;
}

/* The modules whose RebuildProxy makes a proxy: the stdlib's, and those of its forks that
   speak the same protocol (multiprocess, which pickles with dill, and Celery's billiard). */
static bool managers_module(const value *m) {
  return v_is_str(m, "multiprocessing.managers") || v_is_str(m, "multiprocess.managers") ||
         v_is_str(m, "billiard.managers");
}

/* Python's built-in types and exceptions, by name (3.6 to 3.13). */
static const char *const builtin_types[] = {
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BaseExceptionGroup",
    "BlockingIOError", "BrokenPipeError", "BufferError", "BytesWarning", "ChildProcessError",
    "ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
    "DeprecationWarning", "EOFError", "EncodingWarning", "EnvironmentError", "Exception", "ExceptionGroup",
    "FileExistsError", "FileNotFoundError", "FloatingPointError", "FutureWarning", "GeneratorExit",
    "IOError", "ImportError", "ImportWarning", "IndentationError", "IndexError", "InterruptedError",
    "IsADirectoryError", "KeyError", "KeyboardInterrupt", "LookupError", "MemoryError",
    "ModuleNotFoundError", "NameError", "NotADirectoryError", "NotImplementedError", "OSError",
    "OverflowError", "PendingDeprecationWarning", "PermissionError", "ProcessLookupError",
    "PythonFinalizationError", "RecursionError", "ReferenceError", "ResourceWarning", "RuntimeError",
    "RuntimeWarning", "StopAsyncIteration", "StopIteration", "SyntaxError", "SyntaxWarning", "SystemError",
    "SystemExit", "TabError", "TimeoutError", "TypeError", "UnboundLocalError", "UnicodeDecodeError",
    "UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError", "UnicodeWarning", "UserWarning",
    "ValueError", "Warning", "ZeroDivisionError", "bool", "bytearray", "bytes", "classmethod", "complex",
    "dict", "enumerate", "filter", "float", "frozenset", "int", "list", "map", "memoryview", "object",
    "property", "range", "reversed", "set", "slice", "staticmethod", "str", "super", "tuple", "type", "zip",
};

/* dill names a built-in type as dill._dill._load_type('slice'), which returns builtins.slice:
   that global, so that slices, bytearrays and exceptions from dill's picklers (multiprocess)
   are what they are. NULL for any other call. */
static value *dill_builtin_type(const value *fn, const value *args) {
  if (!global_is(fn, "dill._dill", "_load_type") || args->kind != VK_TUPLE || args->u.seq.len != 1) return NULL;
  for (size_t i = 0; i < COUNT(builtin_types); i++)
    if (v_is_str(args->u.seq.items[0], builtin_types[i])) return v_global("builtins", builtin_types[i]);
  return NULL;
}

static bool op_reduce(dec *d) {
  if (!need_items(d, 2, "REDUCE")) return false;
  slot args = pop(d), fn = pop(d);
  value *type = dill_builtin_type(fn.v, args.v);
  if (type) {
    bool lost = d->lost; /* a name and its str argument: nothing made is lost */
    drop(d, fn.v);
    drop(d, args.v);
    d->lost = lost;
    return push_new(d, type, 0);
  }
  const char *bad = NULL;
  value *plain = plain_reduce(fn.v, args.v, &bad);
  if (plain || bad) {
    bool set = plain && (plain->kind == VK_SET || plain->kind == VK_FROZENSET);
    size_t depth = set ? (args.depth > 2 ? args.depth - 1 : 1) : 0; /* args ([items],) are one deeper */
    drop(d, fn.v);
    drop(d, args.v);
    if (!plain) return fail(d, "TypeError: %s", bad);
    return push_new(d, plain, depth);
  }
  bool proxy = d->lim->on_proxy && fn.v->kind == VK_GLOBAL && v_is_str(fn.v->u.g.name, "RebuildProxy") &&
               managers_module(fn.v->u.g.module);
  value *o = v_opaque(OPQ_REDUCE, fn.v, args.v, NULL);
  if (proxy) d->lim->on_proxy(o);
  note_made(d, o);
  return push_new(d, o, max3(fn.depth, args.depth, 0) + 1);
}

/* ---- memo ---- */

/* Memo keys past what this pickle could have made are refused before any allocation
   (CPython numbers its memo entries from 0; the slack allows for hand-made gaps). */
static bool memo_key_ok(dec *d, uint64_t key) {
  if (key > (uint64_t)d->objects + 1024) return fail(d, "memo key %llu out of range", (unsigned long long)key);
  return true;
}

static bool memo_put(dec *d, uint64_t key) {
  if (!need_items(d, 1, "PUT") || !memo_key_ok(d, key)) return false;
  size_t i = (size_t)key, old = d->memocap;
  d->memo = grow(d->memo, &d->memocap, i, sizeof(slot));
  if (d->memocap > old) memset(d->memo + old, 0, (d->memocap - old) * sizeof(slot));
  value *prev = d->memo[i].v;
  d->memo[i] = d->stack[d->sp - 1];
  v_incref(d->memo[i].v);
  if (prev) drop(d, prev);
  else d->memolen++;
  return true;
}

static bool memo_get(dec *d, uint64_t key) {
  if (key >= d->memocap || !d->memo[key].v) return fail(d, "memo key %llu missing", (unsigned long long)key);
  return push_again(d, d->memo[key]);
}

/* Protocol 0 PUT/GET: a decimal key on its own line. */
static bool read_key_text(dec *d, uint64_t *key) {
  const uint8_t *s = NULL;
  size_t n = 0;
  if (!read_line(d, &s, &n)) return false;
  if (!n || n > 19) return fail(d, "invalid memo key");
  *key = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return fail(d, "invalid memo key");
    *key = *key * 10 + (uint64_t)(s[i] - '0');
  }
  return true;
}

static bool op_memo(dec *d, uint8_t op) {
  uint64_t key;
  switch (op) {
  case OP_PUT: return read_key_text(d, &key) && memo_put(d, key);
  case OP_BINPUT: return read_uint(d, 1, &key) && memo_put(d, key);
  case OP_LONG_BINPUT: return read_uint(d, 4, &key) && memo_put(d, key);
  case OP_MEMOIZE: return memo_put(d, d->memolen);
  case OP_GET: return read_key_text(d, &key) && memo_get(d, key);
  case OP_BINGET: return read_uint(d, 1, &key) && memo_get(d, key);
  default: return read_uint(d, 4, &key) && memo_get(d, key);
  }
}

/* ---- the stack itself ---- */

static bool op_mark(dec *d) {
  if (d->nmarks >= d->lim->max_depth) return fail(d, "nesting deeper than %zu", d->lim->max_depth);
  d->marks = grow(d->marks, &d->markcap, d->nmarks, sizeof(size_t));
  d->marks[d->nmarks++] = d->sp;
  return true;
}

static bool op_pop(dec *d, bool to_mark) {
  size_t start = 0;
  if (!to_mark && d->sp > fence(d)) {
    drop(d, pop(d).v);
    return true;
  }
  if (!pop_mark(d, &start, to_mark ? "POP_MARK" : "POP")) return false;
  drop_items(d, start);
  return true;
}

static bool op_dup(dec *d) {
  if (!need_items(d, 1, "DUP")) return false;
  return push_again(d, d->stack[d->sp - 1]);
}

static bool op_proto(dec *d) {
  uint64_t p;
  if (!read_uint(d, 1, &p)) return false;
  if (p > 5) return fail(d, "unsupported pickle protocol: %llu", (unsigned long long)p);
  d->proto = (int)p;
  return true;
}

static bool op_frame(dec *d) {
  uint64_t n;
  if (!read_uint(d, 8, &n)) return false;
  if (n > (uint64_t)(d->end - d->p)) return fail(d, "frame of %llu bytes exceeds the data", (unsigned long long)n);
  return true; /* frames only group opcodes: nothing to do inside */
}

static bool op_refused(dec *d, uint8_t op) {
  switch (op) {
  case OP_PERSID:
  case OP_BINPERSID: return fail(d, "persistent IDs are not supported");
  case OP_EXT1:
  case OP_EXT2:
  case OP_EXT4: return fail(d, "extension registry codes are not supported");
  default: return fail(d, "out-of-band buffers are not supported");
  }
}

static bool step_data(dec *d, uint8_t op) {
  switch (op) {
  case OP_NONE: return push_new(d, v_none(), 0);
  case OP_NEWTRUE: return push_new(d, v_bool(true), 0);
  case OP_NEWFALSE: return push_new(d, v_bool(false), 0);
  case OP_INT: return op_int_text(d, false);
  case OP_LONG: return op_int_text(d, true);
  case OP_BININT: return op_binint(d, 4);
  case OP_BININT1: return op_binint(d, 1);
  case OP_BININT2: return op_binint(d, 2);
  case OP_LONG1: return op_long_bin(d, 1);
  case OP_LONG4: return op_long_bin(d, 4);
  case OP_FLOAT: return op_float_text(d);
  case OP_BINFLOAT: return op_binfloat(d);
  case OP_SHORT_BINUNICODE: return op_unicode_bin(d, 1);
  case OP_BINUNICODE: return op_unicode_bin(d, 4);
  case OP_BINUNICODE8: return op_unicode_bin(d, 8);
  case OP_UNICODE: return op_unicode_text(d);
  case OP_SHORT_BINBYTES: return op_bytes_bin(d, 1, false);
  case OP_BINBYTES: return op_bytes_bin(d, 4, false);
  case OP_BINBYTES8: return op_bytes_bin(d, 8, false);
  case OP_BYTEARRAY8: return op_bytes_bin(d, 8, true);
  case OP_STRING: return op_string_text(d);
  case OP_BINSTRING: return op_binstring(d, 4);
  case OP_SHORT_BINSTRING: return op_binstring(d, 1);
  default: return fail(d, "unknown opcode 0x%02x", op);
  }
}

static bool step(dec *d, uint8_t op) {
  switch (op) {
  case OP_EMPTY_TUPLE: return push_new(d, v_tuple(0), 1);
  case OP_EMPTY_LIST: return push_new(d, v_list(0), 1);
  case OP_EMPTY_DICT: return push_new(d, v_dict(), 1);
  case OP_EMPTY_SET: return push_new(d, v_set(false), 1);
  case OP_TUPLE1: return op_tuple_n(d, 1);
  case OP_TUPLE2: return op_tuple_n(d, 2);
  case OP_TUPLE3: return op_tuple_n(d, 3);
  case OP_TUPLE:
  case OP_LIST: return op_marked(d, op);
  case OP_DICT: return op_dict_or_frozenset(d, true);
  case OP_FROZENSET: return op_dict_or_frozenset(d, false);
  case OP_APPEND: return op_append(d);
  case OP_APPENDS: return op_appends(d);
  case OP_SETITEM: return op_setitem(d);
  case OP_SETITEMS: return op_setitems(d, true);
  case OP_ADDITEMS: return op_setitems(d, false);
  case OP_BUILD: return op_build(d);
  case OP_GLOBAL: return op_global(d);
  case OP_STACK_GLOBAL: return op_stack_global(d);
  case OP_INST: return op_inst_obj(d, true);
  case OP_OBJ: return op_inst_obj(d, false);
  case OP_NEWOBJ: return op_newobj(d, false);
  case OP_NEWOBJ_EX: return op_newobj(d, true);
  case OP_REDUCE: return op_reduce(d);
  case OP_PUT: case OP_BINPUT: case OP_LONG_BINPUT: case OP_MEMOIZE:
  case OP_GET: case OP_BINGET: case OP_LONG_BINGET: return op_memo(d, op);
  case OP_MARK: return op_mark(d);
  case OP_POP: return op_pop(d, false);
  case OP_POP_MARK: return op_pop(d, true);
  case OP_DUP: return op_dup(d);
  case OP_PROTO: return op_proto(d);
  case OP_FRAME: return op_frame(d);
  case OP_PERSID: case OP_BINPERSID: case OP_EXT1: case OP_EXT2: case OP_EXT4:
  case OP_NEXT_BUFFER: case OP_READONLY_BUFFER: return op_refused(d, op);
  default: return step_data(d, op);
  }
}

/* Run opcodes up to STOP: the value it pops (new reference), or NULL. */
static value *run(dec *d) {
  while (d->p < d->end) {
    d->op_at = (size_t)(d->p - d->data);
    uint8_t op = *d->p++;
    if (op == OP_STOP) {
      if (!need_items(d, 1, "STOP")) return NULL;
      if (d->p != d->end) {
        fail(d, "%zu bytes after STOP", (size_t)(d->end - d->p));
        return NULL;
      }
      value *v = pop(d).v;
      if (d->sp) d->lost = true; /* what is left under the result was made and dropped */
      return v;
    }
    if (!step(d, op)) return NULL;
  }
  d->op_at = (size_t)(d->end - d->data);
  fail(d, "truncated data (no STOP)");
  return NULL;
}

/* Release what the decoder still holds: stack and memo, at once when graphs exist. */
static void dec_free(dec *d) {
  if (d->shared) {
    size_t n = 0;
    value **all = xrealloc(NULL, (d->sp + d->memocap + d->ndead + d->nmade + 1) * sizeof(value *));
    for (size_t i = 0; i < d->ndead; i++) all[n++] = d->dead[i];
    for (size_t i = 0; i < d->nmade; i++) all[n++] = d->made[i].obj;
    for (size_t i = 0; i < d->sp; i++) all[n++] = d->stack[i].v;
    for (size_t i = 0; i < d->memocap; i++)
      if (d->memo[i].v) all[n++] = d->memo[i].v;
    v_decref_many(all, n);
    free(all);
  } else {
    for (size_t i = 0; i < d->sp; i++) v_decref(d->stack[i].v);
    for (size_t i = 0; i < d->memocap; i++) v_decref(d->memo[i].v);
    for (size_t i = 0; i < d->nmade; i++) v_decref(d->made[i].obj);
  }
  free(d->made);
  free(d->stack);
  free(d->memo);
  free(d->marks);
  free(d->dead);
}

value *pickle_load(const uint8_t *data, size_t len, const pickle_limits *lim, int *proto, char *err,
                   size_t errlen) {
  dec d;
  memset(&d, 0, sizeof d);
  d.data = d.p = data;
  d.end = data + len;
  d.lim = lim;
  d.err = err;
  d.errlen = errlen;
  if (errlen) err[0] = 0;
  value *v = run(&d);
  if (v && d.lost && d.nmade) { /* calls made for their effects: keep them (effects.c) */
    long kept = effects_keep(v, d.made, d.nmade, d.err, d.errlen);
    if (kept < 0) {
      d.op_at = len;
      char why[160];
      snprintf(why, sizeof why, "%s", d.errlen ? d.err : "");
      fail(&d, "%s", why);
      d.shared = true;
      d.dead = grow(d.dead, &d.deadcap, d.ndead, sizeof(value *));
      d.dead[d.ndead++] = v;
      v = NULL;
    } else if (kept > 0) {
      d.shared = true; /* an effect names the object it follows: cycles */
    }
  }
  dec_free(&d);
  if (proto) *proto = d.proto;
  if (v && d.shared) { /* memo references can nest deeper than the stack showed, or loop */
    bool cyclic;
    size_t depth = v_walk(v, &cyclic);
    if (depth > lim->max_depth) {
      d.op_at = len;
      fail(&d, "nesting deeper than %zu", lim->max_depth);
      v_decref_many(&v, 1);
      return NULL;
    }
    if (cyclic) v_track_cycles(v);
  }
  return v;
}

/* ======================= encoding ======================= */

#define FRAME_TARGET (64 * 1024) /* CPython starts a new frame past this many bytes */
#define FRAME_HEADER 9
#define NO_FRAME SIZE_MAX
#define ENCODE_DEPTH_MAX 10000
#define BATCH 1000

/* Pointer -> memo index; one table serves every dump (the server is single-threaded), emptied
   at the start of each (ptrmap_clear: constant time, however large the last one was). */
static ptrmap reusable;
static bool reusable_busy;

static void mt_put(ptrmap *m, const value *k, uint32_t idx) {
  bool added;
  *ptrmap_put(m, k, idx, &added) = idx;
}

static bool mt_get(const ptrmap *m, const value *k, uint32_t *idx) {
  const size_t *s = ptrmap_get(m, k);
  if (!s) return false;
  *idx = (uint32_t)*s;
  return true;
}

/* A container written in steps: how many items are out, and whether a step is being written
   (a fill met inside it waits: it would put items in the middle of an open batch). */
typedef struct fill {
  const value *c;
  size_t written;
  size_t pos; /* a dict's or set's dict_next position after those (entries are only added) */
  bool busy;
} fill;

typedef struct enc {
  buf *out;
  int proto;
  bool framing;
  size_t frame_start; /* offset of the open frame's header, or NO_FRAME */
  ptrmap *memo;
  uint32_t nmemo;
  int depth;
  const value **later; /* effects anchored to objects written: written at the end if not before */
  size_t nlater, latercap;
  struct fill *fills;   /* lists, dicts and sets written in steps (v_early), in the order met */
  size_t nfills, fillcap;
  ptrmap fillix;        /* container -> its index in fills */
  char *err;
  size_t errlen;
} enc;

static bool efail(enc *e, const char *msg) {
  if (e->errlen) snprintf(e->err, e->errlen, "pickle: %s", msg);
  return false;
}

/* Append bytes, opening a frame (its header filled in at commit) when none is open. */
static void w(enc *e, const void *p, size_t n) {
  if (e->framing && e->frame_start == NO_FRAME) {
    e->frame_start = e->out->len;
    buf_reserve(e->out, FRAME_HEADER);
    memset(e->out->data + e->out->len, 0xfe, FRAME_HEADER);
    e->out->len += FRAME_HEADER;
  }
  buf_put(e->out, p, n);
}

static void w1(enc *e, uint8_t op) { w(e, &op, 1); }

static void put_le(uint8_t *p, uint64_t x, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(x >> (8 * i));
}

/* Close the open frame: a FRAME header when it holds at least 4 bytes, else no header. */
static void commit_frame(enc *e) {
  if (e->frame_start == NO_FRAME) return;
  size_t start = e->frame_start, n = e->out->len - start - FRAME_HEADER;
  uint8_t *p = e->out->data + start;
  if (n >= 4) {
    p[0] = OP_FRAME;
    put_le(p + 1, n, 8);
  } else {
    memmove(p, p + FRAME_HEADER, n);
    e->out->len -= FRAME_HEADER;
  }
  e->frame_start = NO_FRAME;
}

static void opcode_boundary(enc *e) {
  if (e->framing && e->frame_start != NO_FRAME && e->out->len - e->frame_start - FRAME_HEADER >= FRAME_TARGET)
    commit_frame(e);
}

/* A header and its payload; payloads of 64 KiB and more go outside any frame, as CPython's. */
static void w_payload(enc *e, const uint8_t *hdr, size_t hn, const void *data, size_t n) {
  bool framing = e->framing;
  if (n >= FRAME_TARGET) {
    commit_frame(e);
    e->framing = false;
  }
  w(e, hdr, hn);
  w(e, data, n);
  e->framing = framing;
}

/* op1/op4/op8: the opcodes for 1-, 4- and 8-byte lengths (op1 0: none). */
static void w_sized(enc *e, uint8_t op1, uint8_t op4, uint8_t op8, const void *data, size_t n) {
  uint8_t hdr[9];
  size_t hn;
  if (op1 && n <= 0xff) {
    hdr[0] = op1;
    hdr[1] = (uint8_t)n;
    hn = 2;
  } else if (op4 && n <= 0xffffffffu) {
    hdr[0] = op4;
    put_le(hdr + 1, n, 4);
    hn = 5;
  } else {
    hdr[0] = op8;
    put_le(hdr + 1, n, 8);
    hn = 9;
  }
  w_payload(e, hdr, hn, data, n);
}

/* MEMOIZE the object just written; k NULL for a temporary no one can meet again. */
static void memo_add(enc *e, const value *k) {
  w1(e, OP_MEMOIZE);
  if (k) mt_put(e->memo, k, e->nmemo);
  e->nmemo++;
}

static void memo_ref(enc *e, uint32_t idx) {
  uint8_t b[5];
  if (idx < 256) {
    b[0] = OP_BINGET;
    b[1] = (uint8_t)idx;
    w(e, b, 2);
  } else {
    b[0] = OP_LONG_BINGET;
    put_le(b + 1, idx, 4);
    w(e, b, 5);
  }
}

/* If v got memoized while its parts were written (it is reachable from them), throw the
   parts away and refer to the memo instead, as CPython does for recursive tuples. */
static bool refer_if_memoized(enc *e, const value *v, const uint8_t *pops, size_t npops) {
  uint32_t idx;
  if (!mt_get(e->memo, v, &idx)) return false;
  w(e, pops, npops);
  memo_ref(e, idx);
  return true;
}

static void save_int(enc *e, int64_t i) {
  uint8_t b[10];
  if (i >= INT32_MIN && i <= INT32_MAX) {
    uint32_t u = (uint32_t)i;
    put_le(b + 1, u, 4);
    size_t n = (b[3] || b[4]) ? 5 : b[2] ? 3 : 2;
    b[0] = n == 5 ? OP_BININT : n == 3 ? OP_BININT2 : OP_BININT1;
    w(e, b, n);
    return;
  }
  uint8_t le[8];
  put_le(le, (uint64_t)i, 8);
  size_t n = 8;
  while (n > 1 && ((le[n - 1] == 0 && !(le[n - 2] & 0x80)) || (le[n - 1] == 0xff && (le[n - 2] & 0x80)))) n--;
  b[0] = OP_LONG1;
  b[1] = (uint8_t)n;
  memcpy(b + 2, le, n);
  w(e, b, n + 2);
}

static void save_bigint(enc *e, const value *v) {
  uint8_t hdr[5];
  size_t n = v->u.s.len;
  if (n < 256) {
    hdr[0] = OP_LONG1;
    hdr[1] = (uint8_t)n;
    w(e, hdr, 2);
  } else {
    hdr[0] = OP_LONG4;
    put_le(hdr + 1, n, 4);
    w(e, hdr, 5);
  }
  w(e, v->u.s.data, n);
}

static void save_float(enc *e, double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  uint8_t b[9];
  b[0] = OP_BINFLOAT;
  for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
  w(e, b, 9);
}

static bool save(enc *e, const value *v);

static bool save_items(enc *e, value *const *items, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!save(e, items[i])) return false;
  return true;
}

static bool save_tuple(enc *e, const value *v) {
  size_t n = v->u.seq.len;
  if (n == 0) {
    w1(e, OP_EMPTY_TUPLE);
    return true;
  }
  static const uint8_t pops[3] = {OP_POP, OP_POP, OP_POP}, pop_mark = OP_POP_MARK;
  if (n > 3) w1(e, OP_MARK);
  if (!save_items(e, v->u.seq.items, n)) return false;
  if (refer_if_memoized(e, v, n > 3 ? &pop_mark : pops, n > 3 ? 1 : n)) return true;
  w1(e, n == 1 ? OP_TUPLE1 : n == 2 ? OP_TUPLE2 : n == 3 ? OP_TUPLE3 : OP_TUPLE);
  memo_add(e, v);
  return true;
}

/* Items [from, to) of a list, as CPython batches them (a lone one with APPEND). */
static bool list_items(enc *e, const value *v, size_t from, size_t to) {
  if (to - from == 1) {
    if (!save(e, v->u.seq.items[from])) return false;
    w1(e, OP_APPEND);
    return true;
  }
  while (from < to) {
    size_t k = to - from < BATCH ? to - from : BATCH;
    w1(e, OP_MARK);
    if (!save_items(e, v->u.seq.items + from, k)) return false;
    w1(e, OP_APPENDS);
    from += k;
  }
  return true;
}

static size_t items_of(const value *c) { return c->kind == VK_LIST ? c->u.seq.len : dict_len(c); }

static bool table_items(enc *e, const value *v, size_t *pos, size_t n);

/* Items [from, to) of c; *pos: for a dict or set, the dict_next position of item `from`,
   moved past item `to` (a list needs none). */
static bool some_items(enc *e, const value *c, size_t from, size_t to, size_t *pos) {
  return c->kind == VK_LIST ? list_items(e, c, from, to) : table_items(e, c, pos, to - from);
}

/* The items of a container just made (EMPTY_LIST and the like, memoized): all of them, or
   only the early ones of one its pickle filled in steps (the rest: write_fill). */
static bool save_contents(enc *e, const value *c) {
  size_t n = items_of(c), early = v_early(c), pos = 0;
  if (early >= n) return some_items(e, c, 0, n, &pos);
  uint32_t fi = (uint32_t)e->nfills;
  e->fills = grow(e->fills, &e->fillcap, e->nfills, sizeof *e->fills);
  e->fills[e->nfills++] = (fill){c, early, 0, true};
  mt_put(&e->fillix, c, fi);
  bool ok = some_items(e, c, 0, early, &pos);
  e->fills[fi].pos = pos;
  e->fills[fi].busy = false;
  return ok;
}

/* OPQ_FILL, and the end of a pickle: the items of c up to `to` not yet written, added to c
   fetched from the memo. Nothing when c is not out yet (its first items come where it is
   met, the rest at the end) or is being written. */
static bool write_fill(enc *e, const value *c, size_t to) {
  uint32_t fi, idx;
  if (!mt_get(&e->fillix, c, &fi) || e->fills[fi].busy || !mt_get(e->memo, c, &idx)) return true;
  size_t from = e->fills[fi].written, n = items_of(c), pos = e->fills[fi].pos;
  if (to > n) to = n;
  if (from >= to) return true;
  memo_ref(e, idx);
  e->fills[fi].busy = true;
  bool ok = some_items(e, c, from, to, &pos);
  e->fills[fi] = (fill){c, to, pos, false};
  w1(e, OP_POP);
  return ok;
}

static bool save_list(enc *e, const value *v) {
  w1(e, OP_EMPTY_LIST);
  memo_add(e, v);
  return save_contents(e, v);
}

/* n items of a dict or set from position *pos on: batches of 1000 while a batch comes out
   full (so an empty last batch follows a multiple of 1000, exactly as CPython writes it); a
   lone dict item uses SETITEM. */
static bool table_items(enc *e, const value *v, size_t *pos, size_t n) {
  bool dict = v->kind == VK_DICT;
  size_t i;
  value *k, *val;
  if (n == 0) return true;
  if (dict && n == 1) {
    dict_next(v, pos, &k, &val);
    if (!save(e, k) || !save(e, val)) return false;
    w1(e, OP_SETITEM);
    return true;
  }
  do {
    w1(e, OP_MARK);
    for (i = 0; i < BATCH && n && dict_next(v, pos, &k, &val); i++, n--)
      if (!save(e, k) || (dict && !save(e, val))) return false;
    w1(e, dict ? OP_SETITEMS : OP_ADDITEMS);
  } while (i == BATCH);
  return true;
}

static bool save_table(enc *e, const value *v) {
  w1(e, v->kind == VK_DICT ? OP_EMPTY_DICT : OP_EMPTY_SET);
  memo_add(e, v);
  return save_contents(e, v);
}

static bool save_frozenset(enc *e, const value *v) {
  static const uint8_t pop_mark = OP_POP_MARK;
  size_t pos = 0;
  value *k, *unused;
  w1(e, OP_MARK);
  while (dict_next(v, &pos, &k, &unused))
    if (!save(e, k)) return false;
  if (refer_if_memoized(e, v, &pop_mark, 1)) return true;
  w1(e, OP_FROZENSET);
  memo_add(e, v);
  return true;
}

static bool save_global(enc *e, const value *v) {
  if (v->u.g.module->kind != VK_STR || v->u.g.name->kind != VK_STR) return efail(e, "global name is not a str");
  if (!save(e, v->u.g.module) || !save(e, v->u.g.name)) return false;
  w1(e, OP_STACK_GLOBAL);
  memo_add(e, v);
  return true;
}

/* builtins.bytearray, for protocol 4 (which has no bytearray opcode). */
static value ba_module = {.refs = 1u << 30, .kind = VK_STR, .u.s = {8, "builtins"}};
static value ba_name = {.refs = 1u << 30, .kind = VK_STR, .u.s = {9, "bytearray"}};
static value ba_global = {.refs = 1u << 30, .kind = VK_GLOBAL, .u.g = {&ba_module, &ba_name}};

static bool save_bytearray(enc *e, const value *v) {
  if (e->proto >= 5) {
    uint8_t hdr[9] = {OP_BYTEARRAY8};
    put_le(hdr + 1, v->u.s.len, 8);
    w_payload(e, hdr, 9, v->u.s.data, v->u.s.len);
    memo_add(e, v);
    return true;
  }
  if (!save(e, &ba_global)) return false; /* bytearray(bytes(v)), as CPython reduces it */
  opcode_boundary(e);                       /* where CPython saves the argument tuple */
  if (v->u.s.len) {
    w_sized(e, OP_SHORT_BINBYTES, OP_BINBYTES, OP_BINBYTES8, v->u.s.data, v->u.s.len);
    memo_add(e, NULL);
    w1(e, OP_TUPLE1);
    memo_add(e, NULL);
  } else {
    w1(e, OP_EMPTY_TUPLE);
  }
  w1(e, OP_REDUCE);
  memo_add(e, v);
  return true;
}

/* A run of n ops of one kind, in CPython's batch_list/batch_dict shape: full batches of
   1000 under MARK, a lone last item with the single-item opcode (`one`, 0 if none). */
static bool save_run(enc *e, const opq_op *ops, size_t n, uint8_t one, uint8_t many) {
  bool pairs = ops[0].op == OPQ_SETITEM;
  while (n) {
    if (n == 1 && one) {
      if (!save(e, ops->a) || (pairs && !save(e, ops->b))) return false;
      w1(e, one);
      return true;
    }
    size_t k = n < BATCH ? n : BATCH;
    w1(e, OP_MARK);
    for (size_t i = 0; i < k; i++)
      if (!save(e, ops[i].a) || (pairs && !save(e, ops[i].b))) return false;
    w1(e, many);
    ops += k;
    n -= k;
  }
  return true;
}

static bool batched(uint8_t op) { return op == OPQ_APPEND || op == OPQ_SETITEM || op == OPQ_ADDITEM; }

static bool save_ops(enc *e, const opaque *o) {
  for (size_t i = 0; i < o->nops;) {
    const opq_op *op = &o->ops[i];
    size_t j = i + 1;
    while (batched(op->op) && j < o->nops && o->ops[j].op == op->op) j++;
    bool ok = true;
    uint32_t idx;
    switch (op->op) {
    case OPQ_APPEND: ok = save_run(e, op, j - i, OP_APPEND, OP_APPENDS); break;
    case OPQ_SETITEM: ok = save_run(e, op, j - i, OP_SETITEM, OP_SETITEMS); break;
    case OPQ_ADDITEM: ok = save_run(e, op, j - i, 0, OP_ADDITEMS); break;
    case OPQ_EFFECT: /* made for its effect, then discarded, as the pickle had it */
      ok = save(e, op->a);
      w1(e, OP_POP);
      break;
    case OPQ_FILL: /* items a container got here, after it was used */
      if (op->b && op->b->kind == VK_INT && op->b->u.i >= 0) ok = write_fill(e, op->a, (size_t)op->b->u.i);
      break;
    case OPQ_ANCHOR: /* an effect that may change this object must be in this pickle too */
      if (!mt_get(e->memo, op->a, &idx)) {
        e->later = grow(e->later, &e->latercap, e->nlater, sizeof *e->later);
        e->later[e->nlater++] = op->a;
      }
      break;
    default:
      ok = save(e, op->a);
      w1(e, OP_BUILD);
      break;
    }
    if (!ok) return false;
    i = j;
  }
  return true;
}

void (*pickle_on_shared)(struct shobj *obj);

/* An object reachable from its own arguments is made while they are written: then the
   arguments are dropped unused and the object fetched, rather than made twice (CPython's
   pickler makes it again and drops the copy; a call is an effect, so shmgr calls once). */
static bool save_opaque(enc *e, const value *v) {
  static const uint8_t pops[3] = {OP_POP, OP_POP, OP_POP}, pop_mark = OP_POP_MARK;
  const opaque *o = v->u.o;
  if (!o->callable || !o->args) return efail(e, "incomplete opaque object");
  if (o->shared && pickle_on_shared) pickle_on_shared(o->shared);
  if (o->how == OPQ_OBJ) {
    if (o->args->kind != VK_TUPLE) return efail(e, "OBJ arguments are not a tuple");
    w1(e, OP_MARK);
    if (!save(e, o->callable) || !save_items(e, o->args->u.seq.items, o->args->u.seq.len)) return false;
    if (refer_if_memoized(e, v, &pop_mark, 1)) return true;
    w1(e, OP_OBJ);
  } else {
    if (!save(e, o->callable) || !save(e, o->args)) return false;
    if (o->how == OPQ_NEWOBJ_EX) {
      if (o->kwargs && !save(e, o->kwargs)) return false;
      if (!o->kwargs) w1(e, OP_EMPTY_DICT);
    }
    if (refer_if_memoized(e, v, pops, o->how == OPQ_NEWOBJ_EX ? 3 : 2)) return true;
    w1(e, o->how == OPQ_REDUCE ? OP_REDUCE : o->how == OPQ_NEWOBJ ? OP_NEWOBJ : OP_NEWOBJ_EX);
  }
  memo_add(e, v);
  return save_ops(e, o);
}

static bool save_container(enc *e, const value *v) {
  if (++e->depth > ENCODE_DEPTH_MAX) return efail(e, "nesting deeper than 10000 (or a cycle through a tuple)");
  bool ok;
  switch (v->kind) {
  case VK_TUPLE: ok = save_tuple(e, v); break;
  case VK_LIST: ok = save_list(e, v); break;
  case VK_DICT:
  case VK_SET: ok = save_table(e, v); break;
  case VK_FROZENSET: ok = save_frozenset(e, v); break;
  case VK_GLOBAL: ok = save_global(e, v); break;
  case VK_OPAQUE: ok = save_opaque(e, v); break;
  default: ok = efail(e, "unknown value kind");
  }
  e->depth--;
  return ok;
}

static bool save(enc *e, const value *v) {
  if (!v) return efail(e, "a container holds no value (an unfilled tuple slot?)");
  opcode_boundary(e);
  switch (v->kind) { /* atoms: never memoized */
  case VK_NONE: w1(e, OP_NONE); return true;
  case VK_BOOL: w1(e, v->u.b ? OP_NEWTRUE : OP_NEWFALSE); return true;
  case VK_INT: save_int(e, v->u.i); return true;
  case VK_BIGINT: save_bigint(e, v); return true;
  case VK_FLOAT: save_float(e, v->u.f); return true;
  default: break;
  }
  uint32_t idx;
  if (mt_get(e->memo, v, &idx)) {
    memo_ref(e, idx);
    return true;
  }
  switch (v->kind) {
  case VK_STR:
    w_sized(e, OP_SHORT_BINUNICODE, OP_BINUNICODE, OP_BINUNICODE8, v->u.s.data, v->u.s.len);
    memo_add(e, v);
    return true;
  case VK_BYTES:
    w_sized(e, OP_SHORT_BINBYTES, OP_BINBYTES, OP_BINBYTES8, v->u.s.data, v->u.s.len);
    memo_add(e, v);
    return true;
  case VK_BYTEARRAY: return save_bytearray(e, v);
  default: return save_container(e, v);
  }
}

int pickle_dump(buf *out, const value *v, int proto, char *err, size_t errlen) {
  enc e = {.out = out, .proto = proto, .frame_start = NO_FRAME, .err = err, .errlen = errlen};
  if (proto != 4 && proto != 5) {
    efail(&e, "only protocols 4 and 5 are written");
    return -1;
  }
  ptrmap local = {0};
  bool own = !reusable_busy; /* a dump inside a dump (none today) gets its own table */
  e.memo = own ? &reusable : &local;
  reusable_busy = true;
  ptrmap_clear(e.memo);
  size_t base = out->len;
  uint8_t hdr[2] = {OP_PROTO, (uint8_t)proto};
  w(&e, hdr, 2);
  e.framing = true;
  bool ok = save(&e, v);
  for (size_t f = 0, l = 0; ok && (f < e.nfills || l < e.nlater);) { /* steps this pickle lacks */
    uint32_t idx;
    if (f < e.nfills) {
      ok = write_fill(&e, e.fills[f++].c, SIZE_MAX);
    } else if (!mt_get(e.memo, e.later[l++], &idx)) { /* an effect anchored to what was written */
      ok = save(&e, e.later[l - 1]);
      w1(&e, OP_POP);
    }
  }
  free(e.later);
  free(e.fills);
  ptrmap_free(&e.fillix);
  if (ok) {
    w1(&e, OP_STOP);
    commit_frame(&e);
  }
  if (own) {
    reusable_busy = false;
    ptrmap_trim(&reusable, 1u << 20); /* do not keep a huge table for small pickles */
  } else {
    ptrmap_free(&local);
  }
  if (!ok) {
    out->len = base;
    return -1;
  }
  return 0;
}
