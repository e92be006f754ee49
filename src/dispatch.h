/* dispatch.h: one request: server methods, method calls, fallbacks, and their replies. */
#ifndef SHMGR_DISPATCH_H
#define SHMGR_DISPATCH_H

#include "conn.h"

/* Serve req (a decoded request, stolen) on c: on a fresh connection a server method
   (create, incref, ... shutdown), while serving a method call on a shared object. The reply
   goes out through conn_reply now, or when a parked call ends; c reads no further request
   until then. */
void dispatch_request(conn *c, value *req);
/* End c's parked call, if it has one, with exc (stolen) as its #ERROR reply, as if the call
   had failed: what it waited for is left as it was. Else drop exc. */
void dispatch_abort(conn *c, value *exc);

#endif
