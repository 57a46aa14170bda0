/*
 * natsconn.h - the one NATS connection helper that queue_nats.c and
 * feed_nats.c share. Only those two files include it: libnats types stay
 * inside the NATS adapters.
 */
#ifndef CW_NATSCONN_H
#define CW_NATSCONN_H

#include "calderwood.h"

#include <nats/nats.h>

/*
 * Connects to urls (nats://HOST:PORT[,...]) as name, reconnecting for
 * ever after a loss (a wait of 250 ms between attempts).
 */
int cw_nats_connect(const char *urls, const char *name, natsConnection **out, struct cw_error *err);

/* Sets err from a libnats status with what was being done. Returns code. */
int cw_nats_fail(struct cw_error *err, int code, natsStatus s, const char *what);

#endif
