/* token.c: Tokens (how a client names a shared object) out in #PROXY replies and in inside proxies. */
#include "token.h"

#include "server.h"

value *token_new(const char *typeid, const shobj *o) {
  value *tok = v_opaque(OPQ_NEWOBJ, v_global("multiprocessing.managers", "Token"), v_tuple(0), NULL);
  value *state = v_tuple(3);
  state->u.seq.items[0] = v_strz(typeid);
  state->u.seq.items[1] = v_incref(the_server.address);
  state->u.seq.items[2] = v_strz(obj_ident(o));
  opaque_op(tok, OPQ_BUILD, state, NULL);
  return tok;
}

/* The state tuple (typeid, address, id) a Token was built with, or NULL. Borrowed. */
static const value *token_state(const value *tok) {
  if (tok->kind != VK_OPAQUE) return NULL;
  const opaque *o = tok->u.o;
  for (size_t i = 0; i < o->nops; i++) {
    const value *st = o->ops[i].a;
    if (o->ops[i].op == OPQ_BUILD && st->kind == VK_TUPLE && st->u.seq.len == 3 && st->u.seq.items[2]->kind == VK_STR)
      return st;
  }
  return NULL;
}

const value *token_id(const value *tok) {
  const value *st = token_state(tok);
  return st ? st->u.seq.items[2] : NULL;
}

void token_on_proxy(value *proxy) {
  const value *args = proxy->u.o->args;
  if (args->kind != VK_TUPLE || args->u.seq.len < 2) return;
  const value *st = token_state(args->u.seq.items[1]);
  if (!st || !server_owns_address(st->u.seq.items[1])) return; /* another manager's proxy: inert */
  const value *id = st->u.seq.items[2];
  shobj *o = obj_find(id->u.s.data, id->u.s.len);
  if (!o) return;
  obj_hold(o);
  proxy->u.o->shared = o;
}
