/* token.h: Tokens (how a client names a shared object) out in #PROXY replies and in inside proxies. */
#ifndef SHMGR_TOKEN_H
#define SHMGR_TOKEN_H

#include "objects.h"

/* A Token(typeid, address, id) naming o, as multiprocessing pickles one (NEWOBJ then
   BUILD of the state), with this server's address. New. */
value *token_new(const char *typeid, const shobj *o);
/* The id (a str) inside a Token a client sent, or NULL. Borrowed. */
const value *token_id(const value *token);
/* The decoder's on_proxy hook: if proxy (RebuildProxy(func, token, serializer, kwds)) names
   an object of this server, attach it (opaque.shared, one hold), so that a proxy stored
   in a container keeps its object alive and goes back out as the same proxy. */
void token_on_proxy(value *proxy);

#endif
