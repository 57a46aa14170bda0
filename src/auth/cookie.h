/*
 * cookie.h - the sealed session cookie (PROTOCOL.md "Sessions and login").
 *
 * The cookie value is the session UUID sealed under the server's secret key
 * (auth/secret.h) with libsodium's crypto_secretbox (XSalsa20-Poly1305):
 *
 *   value = base64url, no padding, of (24-byte random nonce || secretbox(16 UUID bytes))
 *
 * which is always CW_COOKIE_VALUE_LEN characters. Anyone can read the value's
 * length; nobody without the key can read or forge the UUID inside it, and
 * any change to it (a flipped bit, truncation, another key) fails to open.
 *
 * Ownership: arguments are borrowed; outputs are the caller's buffers, or
 * pointers into the caller's header (cw_cookie_find).
 * Thread: any; nothing is shared.
 */
#ifndef CW_COOKIE_H
#define CW_COOKIE_H

#include "calderwood.h"

#include <stddef.h>

#define CW_COOKIE_NAME      "cw_session"
#define CW_COOKIE_VALUE_MAX 128 /* buffer size for a value, NUL included */
#define CW_COOKIE_VALUE_LEN 75  /* length of every sealed value: base64 of 56 bytes */

/*
 * Seals session_uuid (canonical text, hex digits of either case) under key
 * (CW_SECRET_LEN bytes) with a fresh random nonce, and writes the
 * NUL-terminated value into out. Precondition: session_uuid is a canonical
 * UUID (asserted); should it not be, out is the empty string, which never
 * opens.
 */
void cw_cookie_seal(const unsigned char key[32], const char session_uuid[CW_UUID_LEN + 1],
                    char out[CW_COOKIE_VALUE_MAX]);

/*
 * Opens a cookie value of len bytes (need not be NUL-terminated). CW_OK with
 * the canonical lower-case session UUID written into session_uuid, or
 * CW_ERR_UNAUTHORIZED (session_uuid is then the empty string) for anything
 * else: bad base64 (including non-zero trailing bits, padding, whitespace),
 * a wrong length, a tampered or truncated value, one sealed under another key.
 * value may be NULL when len is 0.
 */
int cw_cookie_open(const unsigned char key[32], const char *value, size_t len,
                   char session_uuid[CW_UUID_LEN + 1]);

/*
 * Finds the value of cookie `name` in a Cookie request header
 * ("a=1; cw_session=xyz; b=2"). CW_OK with *value and *len pointing into header
 * (not NUL-terminated; *len may be 0 for "name="), or CW_ERR_NOT_FOUND
 * (header NULL, or no pair of that name). Names match exactly and
 * case-sensitively ("xcw_session" is not "cw_session"); the first occurrence
 * wins; spaces and tabs around pairs, names and values are ignored; pairs
 * without '=' are skipped. Quotes around a value are kept (the value is
 * then not a valid sealed cookie).
 */
int cw_cookie_find(const char *header, const char *name, const char **value, size_t *len);

#endif
