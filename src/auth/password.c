/*
 * password.c - argon2id hashing and verification (see password.h).
 *
 * A thin layer over libsodium that fixes the algorithm and the cost in one
 * place. It knows nothing of users or logins: the domain hashes in its
 * prepare step, the gateway's login verifies.
 */
#include "password.h"
#include "calderwood.h"

#include <string.h>

int cw_password_hash(const char *password, char out[crypto_pwhash_STRBYTES])
{
    out[0] = '\0';
    /* sodium_init is idempotent and thread-safe; it returns 1 when already done. */
    if (sodium_init() < 0)
        return CW_ERR_SYSTEM;
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        out[0] = '\0';
        return CW_ERR_SYSTEM;
    }
    return CW_OK;
}

bool cw_password_verify(const char *hash, const char *password)
{
    if (!hash || !password || sodium_init() < 0)
        return false;
    /* libsodium reads the hash as a C string: refuse one that is not terminated in bounds. */
    if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}
