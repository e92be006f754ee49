/* auth.c: the managers' HMAC challenge-response (OpenSSL), both digest forms. */
#include "auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* The digests Python 3.12+ accepts, by their wire name, with OpenSSL's name for each. */
static const struct {
  const char *wire, *evp;
} digests[] = {
    {"md5", "md5"}, {"sha256", "sha256"}, {"sha384", "sha384"},
    {"sha3_256", "sha3-256"}, {"sha3_384", "sha3-384"},
};
#define MAX_DIGEST_NAME 8 /* strlen("sha3_384"): '}' must come within this many bytes */

static bool new_challenge(uint8_t msg[AUTH_MSG_LEN]) {
  memcpy(msg, "{sha256}", 8);
  return RAND_bytes(msg + 8, AUTH_MSG_LEN - 8) == 1;
}

bool auth_put_challenge(buf *out, uint8_t msg[AUTH_MSG_LEN]) {
  if (!new_challenge(msg)) return false;
  buf_str(out, AUTH_CHALLENGE);
  buf_put(out, msg, AUTH_MSG_LEN);
  return true;
}

/* Split "{name}payload" into the OpenSSL digest and the payload, as Python's
   _get_digest_name_and_payload does; a 16- or 20-byte message is the legacy MD5 form. */
static const EVP_MD *parse_digest(const uint8_t *m, size_t n, size_t *skip) {
  *skip = 0;
  if (n == 16 || n == 20) return EVP_md5();
  if (n < 2 || m[0] != '{') return NULL;
  const uint8_t *end = memchr(m + 1, '}', n - 1 < MAX_DIGEST_NAME + 1 ? n - 1 : MAX_DIGEST_NAME + 1);
  if (!end) return NULL;
  size_t len = (size_t)(end - m - 1);
  for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++) {
    if (strlen(digests[i].wire) == len && memcmp(m + 1, digests[i].wire, len) == 0) {
      *skip = len + 2;
      return EVP_get_digestbyname(digests[i].evp);
    }
  }
  return NULL;
}

/* The HMAC of msg with the digest that `named` names (its "{name}" prefix, or the legacy
   16/20-byte form); *skip is the prefix's length. False, with *why, when there is none. */
static bool mac_for(const uint8_t *key, size_t keylen, const uint8_t *named, size_t namedlen,
                    const uint8_t *msg, size_t msglen, uint8_t mac[EVP_MAX_MD_SIZE], unsigned *maclen,
                    size_t *skip, const char **why) {
  const EVP_MD *md = parse_digest(named, namedlen, skip);
  if (!md) {
    *why = "no known digest prefix";
    return false;
  }
  if (!HMAC(md, keylen ? key : (const uint8_t *)"", (int)keylen, msg, msglen, mac, maclen)) {
    *why = "digest unavailable";
    return false;
  }
  return true;
}

bool auth_check_answer(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen,
                       const uint8_t *ans, size_t anslen, const char **why) {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned maclen = 0;
  size_t skip;
  if (!mac_for(key, keylen, ans, anslen, msg, msglen, mac, &maclen, &skip, why)) return false;
  if (anslen - skip != maclen) {
    *why = "answer has the wrong length";
    return false;
  }
  if (CRYPTO_memcmp(mac, ans + skip, maclen) != 0) {
    *why = "digest received was wrong";
    return false;
  }
  return true;
}

bool auth_answer(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, buf *out,
                 const char **why) {
  if (msglen < 20) {
    *why = "challenge too short";
    return false;
  }
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned maclen = 0;
  size_t skip;
  if (!mac_for(key, keylen, msg, msglen, msg, msglen, mac, &maclen, &skip, why)) return false;
  buf_put(out, msg, skip); /* echo "{name}" (nothing in the legacy form) */
  buf_put(out, mac, maclen);
  return true;
}
