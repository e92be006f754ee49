/* xmlrpc.h: XML-RPC documents <-> values: multiprocessing's 'xmlrpclib' serializer. */
#ifndef SHMGR_XMLRPC_H
#define SHMGR_XMLRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "value.h"

/* A client made with serializer='xmlrpclib' sends, after the same handshake and in the same
   frames, xmlrpc.client.dumps((obj,), None, None, None, 1).encode('utf-8'): a document that
   starts with "<params>". True when data[0..len) is such a document: after an optional UTF-8
   byte order mark and XML white space, its first byte is '<'. None of those bytes (0x3c,
   0xef, space, tab, CR, LF) is a pickle opcode at any protocol, so no pickle is taken for
   XML and no XML for a pickle. */
bool xmlrpc_sniff(const uint8_t *data, size_t len);

typedef struct xmlrpc_limits {
  size_t max_depth;   /* deepest element nesting */
  size_t max_objects; /* values made while decoding one document */
} xmlrpc_limits;

/* Decode one document as multiprocessing's _xml_loads does (xmlrpc.client.loads of its UTF-8
   text, then the one parameter), with libexpat and the tolerance of xmlrpc.client's
   Unmarshaller: <array> -> list, <struct> -> dict, <nil/> -> None, <boolean>, <int>/<i1>/<i2>/
   <i4>/<i8>/<biginteger> -> int (as Python's int() reads the text, any size), <double>/<float>
   -> float, <string>, <name> and bare text in <value> -> str, <base64> -> bytes (where CPython
   would hold an xmlrpc.client.Binary), <dateTime.iso8601> -> an xmlrpc.client.DateTime object
   (an opaque value, as its pickle makes it), <bigdecimal> -> a decimal.Decimal object.
   Returns a new reference, or NULL with *exc a new exception: the one Python raises for that
   input (xml.parsers.expat.ExpatError "not well-formed (invalid token): line 1, column 5",
   UnicodeDecodeError, xmlrpc.client.ResponseError, ValueError from int(), ...), or a ValueError
   naming shmgr's limit for a document nested deeper than lim->max_depth, holding more than
   lim->max_objects values, or carrying a DOCTYPE (no DTD, so no entity of any kind is ever
   declared or expanded). */
value *xmlrpc_load(const uint8_t *data, size_t len, const xmlrpc_limits *lim, value **exc);

/* Append to out what xmlrpc.client.dumps((v,), None, None, None, 1).encode('utf-8') makes of
   v, byte for byte: tuples and lists as <array>, dicts as <struct> (str keys only), bytes and
   bytearray as <base64>, ints within 32 bits, floats by their repr, str with &, <, > escaped
   and everything else written as is. An opaque object goes as xmlrpclib sends an instance: by
   its __dict__ (the dict its pickle's BUILD sets, or {} for an exception or a plain object),
   xmlrpc.client.DateTime and Binary and datetime.datetime as themselves. view names the class
   of a builtins.list([...]) recipe in messages (managers.py pickles dict views that way: the
   caller passes "dict_keys" for a reply of keys()), or NULL. Returns 0, or -1 with *exc a new
   exception as xmlrpclib raises it (TypeError "cannot marshal <class 'set'> objects",
   "dictionary key must be string", "cannot marshal recursive sequences", OverflowError "int
   exceeds XML-RPC limits", UnicodeEncodeError for a lone surrogate), or a MemoryError once the
   document passes max_len bytes (shared structure, which XML-RPC writes out in full, can make
   a small value's document exponentially long); out is then as it was. */
int xmlrpc_dump(buf *out, const value *v, const char *view, size_t max_len, value **exc);

#endif
