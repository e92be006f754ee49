/* admin.h: the operators' server methods (shmgr_info, _clients, _objects, _queues, _slowlog, _kill): figures as plain data. */
#ifndef SHMGR_ADMIN_H
#define SHMGR_ADMIN_H

#include "conn.h"

/* The server methods operators call on a fresh connection, as CPython's clients call
   create or debug_info:
     shmgr_info()                  -> dict: version, pid, uptime, listeners, connections,
                                      objects, calls, limits_hit, memory, store, ...
     shmgr_clients(columns=False)  -> list of dicts, one per connection; with columns,
                                      (names, [one tuple per connection]): the same figures
                                      cheaper to decode (shmgr-cli's table)
     shmgr_objects(typeid=None)    -> list of dicts, one per live object (of that typeid)
     shmgr_queues()                -> list of dicts, one per queue
     shmgr_slowlog(count=None)     -> list of dicts, newest first
     shmgr_kill(client_id)         -> None; closes that connection (KeyError if none)
   Each result is plain data (dict, list, str, int, float, None), a new reference. NULL
   with *err a new exception for bad arguments; NULL with *err NULL when name is none of
   these. c (the caller, borrowed) is never killed by its own call. */
value *admin_method(conn *c, const char *name, value *args, value *kwds, value **err);

#endif
