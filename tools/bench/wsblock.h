/*
 * wsblock.h - one blocking WebSocket connection, for the few messages sent
 * outside the measured loops: registering users (users.c) and the single
 * page-view of the fan-out measurement (conns.c).
 */
#ifndef CW_BENCH_WSBLOCK_H
#define CW_BENCH_WSBLOCK_H

#include "net.h"
#include "ws.h"

#include <stdint.h>

struct wsblock {
    int fd;
    uint32_t mask;
    struct bbuf in; /* bytes read but not yet returned */
    size_t pending; /* bytes of the last returned frame, dropped on the next read */
};

/* Connects and upgrades with `cookie`. Returns 0, or -1 with a message on stderr. */
int wsb_open(struct wsblock *w, const struct net_target *t, const char *cookie, int timeout_ms);

/* Sends one text message (blocking). 0 or -1. */
int wsb_send(struct wsblock *w, const char *msg, size_t len);

/* Reads the next frame (valid until the next call); 0, or -1 on timeout,
 * close or a bad frame. */
int wsb_read(struct wsblock *w, struct ws_frame *f, int64_t deadline_ns);

void wsb_close(struct wsblock *w);

/* wsb_open without the message: status is the upgrade's HTTP status (0: none came). */
int wsb_try_open(struct wsblock *w, const struct net_target *t, const char *cookie, int timeout_ms,
                 int *status);

#endif
