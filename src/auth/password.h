/*
 * password.h - password hashing with argon2id (libsodium crypto_pwhash).
 *
 * The only form in which a password is kept is the self-describing string
 * crypto_pwhash produces ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"): it
 * carries its own salt and cost, so a later change of cost still verifies
 * old hashes.
 *
 * Thread: any thread. Both functions are deliberately slow and memory-hard
 * (interactive limits: about 64 MiB and a noticeable fraction of a second),
 * so they run on a worker thread, never on the gateway's event loop.
 * Ownership: arguments are borrowed; out is the caller's buffer.
 */
#ifndef CW_PASSWORD_H
#define CW_PASSWORD_H

#include <sodium.h>
#include <stdbool.h>

/*
 * Hashes the NUL-terminated password into out (a NUL-terminated string of
 * fewer than crypto_pwhash_STRBYTES bytes) with a fresh random salt.
 * Returns CW_OK, or CW_ERR_SYSTEM when libsodium cannot start or the memory
 * the hash needs cannot be had (out is then an empty string).
 */
int cw_password_hash(const char *password, char out[crypto_pwhash_STRBYTES]);

/*
 * Does password match hash (a string made by cw_password_hash)? False for a
 * wrong password, and also for a NULL, unterminated or unparsable hash.
 * Comparison time does not depend on where the password differs.
 */
bool cw_password_verify(const char *hash, const char *password);

#endif
