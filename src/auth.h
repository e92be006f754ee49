/* auth.h: the managers' HMAC challenge-response, both the legacy and the {digest} form. */
#ifndef SHMGR_AUTH_H
#define SHMGR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define AUTH_CHALLENGE "#CHALLENGE#"
#define AUTH_WELCOME "#WELCOME#"
#define AUTH_FAILURE "#FAILURE#"
#define AUTH_MAX_MESSAGE 256 /* what Python's recv_bytes(256) allows during the handshake */
#define AUTH_MSG_LEN 48      /* "{sha256}" + 40 random bytes, as Python 3.12+ servers send */

/* Append the whole challenge message to out (the payload of one frame): AUTH_CHALLENGE,
   then a fresh challenge, "{sha256}" followed by 40 random bytes from OpenSSL, which also
   stays in msg to check the answer against. False, appending nothing, if the random
   generator failed (then no challenge may be sent). */
bool auth_put_challenge(buf *out, uint8_t msg[AUTH_MSG_LEN]);

/* Check a peer's answer to our challenge msg: a raw 16-byte HMAC-MD5 (Python <= 3.11) or
   "{name}" + HMAC-name over the whole msg, name one of md5, sha256, sha384, sha3_256,
   sha3_384. Compared in constant time. On failure *why says why (static text). */
bool auth_check_answer(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen,
                       const uint8_t *ans, size_t anslen, const char **why);

/* Answer a peer's challenge (the bytes after AUTH_CHALLENGE) into out: a 20- or 16-byte
   challenge gets a raw HMAC-MD5, a "{name}..." one gets "{name}" + HMAC-name over all of it.
   Returns false, appending nothing, for a challenge Python would reject too. */
bool auth_answer(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, buf *out,
                 const char **why);

#endif
