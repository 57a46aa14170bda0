/*
 * ws.h - the client side of RFC 6455, as much as calderwood-bench needs:
 * the HTTP/1.1 upgrade request and the check of its 101 answer, masked
 * client frames out, unmasked server frames in. No I/O here (wsconn.c
 * drives the sockets), no extensions, no subprotocol.
 *
 * The Sec-WebSocket-Accept header of the answer is not verified (that would
 * need SHA-1 for no benefit on loopback against our own server); the status
 * line must be 101.
 */
#ifndef CW_BENCH_WS_H
#define CW_BENCH_WS_H

#include "net.h"

#include <stddef.h>
#include <stdint.h>

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

/* Appends a GET /ws upgrade request carrying `cookie` ("cw_session=...") to out. */
void ws_upgrade_request(struct bbuf *out, const struct net_target *t, const char *cookie,
                        uint64_t *rng);

/* Looks for the end of the answer's header in p[0..n). Returns its length
 * (the bytes to drop before the first frame) with *status set, or 0 when
 * more bytes are needed. */
size_t ws_upgrade_response(const char *p, size_t n, int *status);

/* Appends a final frame with this opcode and payload, masked with `mask`. */
void ws_frame(struct bbuf *out, int opcode, const char *payload, size_t len, uint32_t mask);

struct ws_frame {
    int fin, opcode;
    char *payload; /* inside the parsed buffer, unmasked in place */
    size_t len;
    size_t consumed; /* header + payload */
};

/* Parses one frame at p[0..n): 1 with *f filled, 0 when more bytes are
 * needed, -1 when the frame is invalid (reserved bits, bad length). */
int ws_parse(char *p, size_t n, struct ws_frame *f);

/* xorshift64*: cheap randomness for masks and keys (not for secrets). */
static inline uint64_t ws_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

#endif
