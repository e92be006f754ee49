/* pickle_names.c: what the globals and calls in a pickle stand for, as Python 3 loads them. */
#include "pickle_names.h"

#include <string.h>

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
bool compat_name(const char *module, const char *name, const char **m2, const char **n2) {
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
value *plain_reduce(const value *fn, const value *args, const char **bad) {
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
bool managers_module(const value *m) {
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
value *dill_builtin_type(const value *fn, const value *args) {
  if (!global_is(fn, "dill._dill", "_load_type") || args->kind != VK_TUPLE || args->u.seq.len != 1) return NULL;
  for (size_t i = 0; i < COUNT(builtin_types); i++)
    if (v_is_str(args->u.seq.items[0], builtin_types[i])) return v_global("builtins", builtin_types[i]);
  return NULL;
}
