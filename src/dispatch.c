/* dispatch.c: one request: server methods, method calls, fallbacks, and their replies. */
#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "args.h"
#include "log.h"
#include "memcount.h"
#include "objects.h"
#include "registry.h"
#include "segments.h"
#include "server.h"
#include "stats.h"
#include "store.h"
#include "token.h"
#include "turn.h"
#include "wait.h"

static value *error_fmt(const char *cls, const char *fmt, const char *a) {
  char msg[300];
  snprintf(msg, sizeof msg, fmt, a);
  return v_exception_msg(cls, msg);
}

/* A one-argument exception whose argument is a value (KeyError(key)). Borrows arg. */
static value *error_with(const char *cls, const value *arg) {
  value *args = v_tuple(1);
  args->u.seq.items[0] = v_incref((value *)arg);
  return v_exception("builtins", cls, args);
}

/* `ident, methodname, args, kwds = request`, with Python's errors for other shapes. */
static value *unpack_request(const value *req, value *part[4]) {
  if (req->kind != VK_TUPLE && req->kind != VK_LIST)
    return error_fmt("TypeError", "cannot unpack non-iterable %s object", v_typename(req));
  size_t n = req->u.seq.len;
  if (n != 4) {
    char msg[100];
    if (n < 4) snprintf(msg, sizeof msg, "not enough values to unpack (expected 4, got %zu)", n);
    else snprintf(msg, sizeof msg, "too many values to unpack (expected 4)");
    return v_exception_msg("ValueError", msg);
  }
  for (int i = 0; i < 4; i++) part[i] = req->u.seq.items[i];
  if (part[2]->kind != VK_TUPLE && part[2]->kind != VK_LIST)
    return error_fmt("TypeError", "argument after * must be an iterable, not %s", v_typename(part[2]));
  if (part[3]->kind != VK_DICT)
    return error_fmt("TypeError", "argument after ** must be a mapping, not %s", v_typename(part[3]));
  return NULL;
}

/* args as a tuple (a list is accepted, as Python's *args accepts it). New reference. */
static value *as_tuple(value *args) {
  if (args->kind == VK_TUPLE) return v_incref(args);
  value *t = v_tuple(args->u.seq.len);
  for (size_t i = 0; i < args->u.seq.len; i++) t->u.seq.items[i] = v_incref(args->u.seq.items[i]);
  return t;
}

/* The call in flight on c ended (failed: with an exception): count it, with its time on the
   loop: until now, or, for a call that parked, until it parked (the wait is not the
   server's work, and the answer is the work of whoever woke it). */
static void count_call(conn *c, bool failed) {
  if (!STATS_PER_CALL) {
    c->parked_at = 0;
    return;
  }
  double secs = c->parked_at ? c->exec : stats_clock() - c->t0;
  stats_call(c->ms, secs, failed, c->id, c->peer);
  c->ms = NULL;
  c->parked_at = 0;
}

static shobj *find(const value *ident) {
  return ident->kind == VK_STR ? table_find(ident->u.s.data, ident->u.s.len) : NULL;
}

/* Enter a new object (its hold is taken over) in the table under ti, as create does. */
static value *share(shobj *obj, const typeinfo *ti) {
  value *exposed = obj_exposed(obj, ti->exposed, ti->m2t);
  if (!obj->typeid) obj->typeid = ti->typeid;
  table_enter(obj, v_incref(exposed), ti->m2t ? v_incref(ti->m2t) : NULL);
  obj_release(obj);
  return exposed;
}

/* create(typeid, *args, **kwds) -> (ident, exposed) */
static value *srv_create(value *args, value *kwds, value **err) {
  if (args->u.seq.len < 1) {
    *err = v_exception_msg("TypeError", "Server.create() missing 1 required positional argument: 'typeid'");
    return NULL;
  }
  if (mem_over()) { /* a new object is data added */
    stats_limit(LIM_MAX_MEMORY, "create refused: limits.max_memory (%zu bytes) passed", mem_limit());
    *err = mem_error("create", 0);
    return NULL;
  }
  value *typeid = args->u.seq.items[0];
  const typeinfo *ti = typeid->kind == VK_STR ? registry_find(typeid->u.s.data, typeid->u.s.len) : NULL;
  if (!ti) {
    *err = error_with("KeyError", typeid);
    return NULL;
  }
  value *cargs = v_tuple(args->u.seq.len - 1);
  for (size_t i = 1; i < args->u.seq.len; i++) cargs->u.seq.items[i - 1] = v_incref(args->u.seq.items[i]);
  shobj *obj = registry_construct(ti, cargs, kwds, err);
  v_decref(cargs);
  if (!obj) return NULL;
  value *r = v_tuple(2);
  r->u.seq.items[1] = share(obj, ti);
  r->u.seq.items[0] = v_strz(obj_ident(obj));
  return r;
}

/* A server method on a fresh connection: the reply, or an exception for a #TRACEBACK. */
static value *server_method(conn *c, const char *name, value *args, value *kwds, value **err) {
  static const char *const one_ident[] = {"ident"}, *const one_token[] = {"token"}, *const one_name[] = {"name"};
  value *a[1] = {0};
  char fname[64];
  snprintf(fname, sizeof fname, "Server.%s", name);
  if (strcmp(name, "create") == 0) return srv_create(args, kwds, err);
  if (strcmp(name, "incref") == 0 || strcmp(name, "decref") == 0) {
    if ((*err = args_bind_server(fname, one_ident, 1, args, kwds, a))) return NULL;
    /* an object only a stored proxy keeps alive is out of the table but still known: a
       client that receives that proxy increfs it back in, as CPython does from its
       id_to_local_proxy_obj, and a decref of it is skipped */
    shobj *o = a[0]->kind == VK_STR ? obj_find(a[0]->u.s.data, a[0]->u.s.len) : NULL;
    if (!o || (!o->in_table && !o->exposed)) {
      *err = error_with("KeyError", a[0]);
      return NULL;
    }
    if (name[0] == 'd') {
      if (o->in_table) table_decref(o);
    } else if (!table_incref(o)) {
      table_enter(o, v_incref(o->exposed), o->m2t ? v_incref(o->m2t) : NULL);
    }
    return v_none();
  }
  if (strcmp(name, "get_methods") == 0) {
    if ((*err = args_bind_server(fname, one_token, 1, args, kwds, a))) return NULL;
    const value *id = token_id(a[0]);
    shobj *o = id ? find(id) : NULL;
    if (!o) {
      *err = id ? error_with("KeyError", id) : error_fmt("AttributeError", "'%s' object has no attribute 'id'", v_typename(a[0]));
      return NULL;
    }
    return v_incref(o->exposed);
  }
  if (strcmp(name, "accept_connection") == 0) {
    if ((*err = args_bind_server(fname, one_name, 1, args, kwds, a))) return NULL;
    if (a[0]->kind == VK_STR) snprintf(c->name, sizeof c->name, "%s", a[0]->u.s.data);
    c->st = CS_SERVING;
    return v_none();
  }
  if (strncmp(name, "shmgr_", 6) == 0) return admin_method(c, name, args, kwds, err);
  value *seg = segments_method(name, args, kwds, err); /* SharedMemoryServer's three */
  if (seg || *err) return seg;
  if ((*err = args_bind_server(fname, one_name, 0, args, kwds, a))) return NULL;
  if (strcmp(name, "dummy") == 0) return v_none();
  if (strcmp(name, "number_of_objects") == 0) return v_int((int64_t)table_count());
  if (strcmp(name, "debug_info") == 0) {
    buf text = {0};
    table_debug_info(&text);
    value *r = v_str(text.data ? (const char *)text.data : "", text.len);
    buf_free(&text);
    return r;
  }
  if (strcmp(name, "shutdown") == 0) {
    server_stop("shutdown requested by a client");
    return v_none();
  }
  *err = NULL;
  return NULL;
}

/* The server methods counted by name (others count as one, so that made-up names cannot
   grow the table). */
static const char *const server_methods[] = {"accept_connection", "create", "debug_info", "decref", "dummy",
                                             "get_methods", "incref", "number_of_objects", "shutdown",
                                             "shmgr_info", "shmgr_clients", "shmgr_objects", "shmgr_queues",
                                             "shmgr_slowlog", "shmgr_kill", "track_segment", "release_segment",
                                             "list_segments", NULL};

static void fresh_request(conn *c, value *part[4]) {
  value *err = NULL, *r = NULL;
  const char *mname = "(unknown)";
  for (size_t i = 0; server_methods[i] && part[1]->kind == VK_STR; i++)
    if (v_is_str(part[1], server_methods[i])) mname = server_methods[i];
  if (STATS_PER_CALL) c->ms = stats_method("Server", mname, strlen(mname));
  if (part[1]->kind == VK_STR) {
    value *args = as_tuple(part[2]);
    uint64_t changes = store_changes();
    r = server_method(c, part[1]->u.s.data, args, part[3], &err);
    if (store_changes() != changes) c->touched = true; /* a constructor stored something */
    v_decref(args);
  }
  if (c->st == CS_FIRST) conn_close_after_reply(c); /* one request per fresh connection */
  if (!r && !err) { /* Server.public does not have it */
    buf text = {0};
    v_repr(&text, part[1]);
    buf_str(&text, " unrecognized");
    buf_byte(&text, 0);
    err = v_exception_msg("AssertionError", (const char *)text.data);
    buf_free(&text);
  }
  if (err) conn_traceback(c, "_handle_request", err);
  else conn_reply(c, "#RETURN", r);
  count_call(c, err != NULL);
}

/* Method results named in method_to_typeid become new shared objects: #PROXY. */
static void reply_proxy(conn *c, const char *typeid, outcome r) {
  const typeinfo *ti = registry_find(typeid, strlen(typeid));
  value *err = NULL;
  shobj *obj = NULL;
  if (!ti) {
    err = error_fmt("KeyError", "%s", typeid);
  } else if (r.st == CALL_OBJECT && !typeinfo_callable(ti)) {
    obj = r.obj;
    r.obj = NULL;
  } else if (r.st == CALL_RETURN) {
    value *args = v_tuple(1), *kwds = v_dict();
    args->u.seq.items[0] = r.v;
    r.v = NULL;
    obj = registry_construct(ti, args, kwds, &err);
    v_decref(args);
    v_decref(kwds);
  } else {
    err = error_fmt("TypeError", "cannot construct '%s' from a shared object", typeid);
  }
  outcome_free(r);
  if (!obj) return conn_traceback(c, "serve_client", err);
  value *msg = v_tuple(2);
  msg->u.seq.items[0] = share(obj, ti);
  msg->u.seq.items[1] = token_new(typeid, obj);
  conn_reply(c, "#PROXY", msg);
}

/* The end of a method call, now or after it was parked: reply, then read on. */
static void call_done(call *k, outcome r) {
  conn *c = k->owner;
  shobj *o = c->target;
  const value *method = c->req->u.seq.items[1];
  bool failed = r.st == CALL_ERROR || r.st == CALL_TRACEBACK;
  if (turn_pending() && (o->durable || o->type->scripted)) c->touched = true; /* see conn_release_held */
  const value *typeid = o->m2t && !failed ? dict_get(o->m2t, method) : NULL;
  if (r.st == CALL_ERROR) {
    conn_reply(c, "#ERROR", r.v);
  } else if (r.st == CALL_TRACEBACK) {
    conn_traceback(c, "serve_client", r.v);
  } else if (typeid && typeid->kind == VK_STR) {
    reply_proxy(c, typeid->u.s.data, r);
  } else if (r.st == CALL_OBJECT) {
    outcome_free(r);
    conn_reply(c, "#UNSERIALIZABLE", v_strz("a shared object can only be returned by a method in method_to_typeid\n"));
  } else {
    conn_reply(c, "#RETURN", r.v);
  }
  count_call(c, failed);
  c->target = NULL;
  obj_release(o);
  v_decref(c->req);
  c->req = NULL;
  conn_resume(c);
}

/* A method not exposed: CPython's fallbacks (#GETVALUE, __str__, __repr__), else an error.
   Returns true when it answered with an error. */
static bool fallback(conn *c, shobj *o, const value *method) {
  if (v_is_str(method, "#GETVALUE")) {
    value *err = NULL, *v = o->type->getvalue(o, &err);
    if (v) return conn_reply(c, "#RETURN", v), false;
    buf text = {0};
    buf_str(&text, "Traceback (most recent call last):\n  File \"shmgr\", in send\n");
    v_repr(&text, err);
    buf_byte(&text, '\n');
    v_decref(err);
    conn_reply(c, "#UNSERIALIZABLE", v_str((const char *)text.data, text.len));
    buf_free(&text);
    return true;
  }
  if (v_is_str(method, "__str__") || v_is_str(method, "__repr__")) {
    buf text = {0};
    o->type->repr(o, &text);
    conn_reply(c, "#RETURN", v_str(text.data ? (const char *)text.data : "", text.len));
    buf_free(&text);
    return false;
  }
  buf text = {0};
  buf_str(&text, "method ");
  v_repr(&text, method);
  buf_printf(&text, " of <class '%s'> object is not in exposed={", o->cls);
  for (size_t i = 0; i < o->exposed->u.seq.len; i++) {
    if (i) buf_str(&text, ", ");
    v_repr(&text, o->exposed->u.seq.items[i]);
  }
  buf_str(&text, "}");
  buf_byte(&text, 0);
  conn_traceback(c, "serve_client", v_exception_msg("AttributeError", (const char *)text.data));
  buf_free(&text);
  return true;
}

static void method_call(conn *c, value *req, value *part[4]) {
  shobj *o = find(part[0]);
  if (!o) {
    conn_traceback(c, "serve_client", error_with("KeyError", part[0]));
    count_call(c, true);
    return v_decref(req);
  }
  if (part[1]->kind != VK_STR || !obj_exposes(o, part[1]->u.s.data)) {
    /* the fallbacks by name; whatever else a client makes up counts as one */
    bool known = v_is_str(part[1], "#GETVALUE") || v_is_str(part[1], "__str__") || v_is_str(part[1], "__repr__");
    const char *mname = known ? part[1]->u.s.data : "(not exposed)";
    if (STATS_PER_CALL) c->ms = stats_method(obj_typeid(o), mname, strlen(mname));
    count_call(c, fallback(c, o, part[1]));
    return v_decref(req);
  }
  if (mem_over() && mem_adds(o->type->adds, part[1]->u.s.data)) { /* nothing changes: the client may retry */
    if (STATS_PER_CALL) c->ms = stats_method(obj_typeid(o), part[1]->u.s.data, part[1]->u.s.len);
    stats_limit(LIM_MAX_MEMORY, "%s: %s.%s refused: limits.max_memory (%zu bytes) passed", c->label, o->cls,
                part[1]->u.s.data, mem_limit());
    conn_reply(c, "#ERROR", mem_error(part[1]->u.s.data, 0));
    count_call(c, true);
    return v_decref(req);
  }
  value *args = as_tuple(part[2]);
  c->req = req;
  c->target = o;
  obj_hold(o); /* a parked call keeps its object alive, whatever the refcounts do */
  c->call.done = call_done;
  c->call.owner = c;
  c->call.holder = c->holder; /* what this call acquires belongs to this connection */
  if (STATS_PER_CALL) c->ms = stats_method(obj_typeid(o), part[1]->u.s.data, part[1]->u.s.len);
  uint64_t changes = store_changes();
  outcome r = o->type->call(o, part[1]->u.s.data, args, part[3], &c->call);
  if (store_changes() != changes) c->touched = true; /* its reply stands or falls with the commit */
  v_decref(args);
  if (r.st != CALL_PARKED) return call_done(&c->call, r);
  if (STATS_PER_CALL) c->exec = stats_clock() - c->t0;
  c->parked_at = ev_now(the_server.loop);
  the_stats.parked_total++;
}

void dispatch_abort(conn *c, value *exc) {
  if (!c->req || !wait_is_pending(&c->call)) return v_decref(exc);
  wait_cancel(&c->call); /* off its queue, nested waits undone, nothing taken */
  call_done(&c->call, out_error(exc));
}

void dispatch_request(conn *c, value *req) {
  if (STATS_PER_CALL) c->t0 = stats_clock();
  c->last = ev_now(the_server.loop);
  c->calls++;
  value *part[4], *err = unpack_request(req, part);
  if (err) {
    conn_traceback(c, c->st == CS_FIRST ? "_handle_request" : "serve_client", err);
    count_call(c, true);
    if (c->st == CS_FIRST) conn_close_after_reply(c);
    return v_decref(req);
  }
  if (c->st == CS_FIRST) {
    fresh_request(c, part);
    return v_decref(req);
  }
  method_call(c, req, part);
}
