/* authlimit.h: peers that keep failing the handshake are turned away for a while. */
#ifndef SHMGR_AUTHLIMIT_H
#define SHMGR_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>

#define AUTHLIMIT_WINDOW 60.0 /* seconds over which a peer's failed handshakes are counted */

/* Count one failed handshake from host (a numeric address), at time now (seconds).
   Loopback addresses are never counted, so never turned away. */
void authlimit_failed(const char *host, double now);
/* True while host has failed `limit` handshakes or more within the last AUTHLIMIT_WINDOW
   seconds (limit 0: never). */
bool authlimit_blocked(const char *host, double now, size_t limit);

#endif
