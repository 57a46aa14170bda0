/*
 * secret.h - the server's secret key: 32 random bytes in a 0600 file of the
 * data directory, made on first start. It seals session cookies; losing it
 * logs everyone out, leaking it lets anyone forge a session.
 */
#ifndef CW_SECRET_H
#define CW_SECRET_H

#include "calderwood.h"

#define CW_SECRET_LEN 32

/*
 * Reads the key at path, or creates it (0600, from libsodium's generator)
 * when the file does not exist. Refuses a file of the wrong size or one that
 * others may read. *created tells whether it was made now (may be NULL).
 */
int cw_secret_load(const char *path, unsigned char key[CW_SECRET_LEN], bool *created,
                   struct cw_error *err);

#endif
