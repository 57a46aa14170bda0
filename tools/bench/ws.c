/*
 * ws.c - WebSocket framing for calderwood-bench (see ws.h). Frames are built
 * straight into the connection's output buffer and masked there, so a
 * command costs one copy.
 */
#include "ws.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_16(const uint8_t in[16], char out[25])
{
    int o = 0;
    for (int i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64[v >> 18 & 63];
        out[o++] = B64[v >> 12 & 63];
        out[o++] = B64[v >> 6 & 63];
        out[o++] = B64[v & 63];
    }
    uint32_t v = (uint32_t)in[15] << 16;
    out[o++] = B64[v >> 18 & 63];
    out[o++] = B64[v >> 12 & 63];
    out[o++] = '=';
    out[o++] = '=';
    out[o] = 0;
}

void ws_upgrade_request(struct bbuf *out, const struct net_target *t, const char *cookie,
                        uint64_t *rng)
{
    uint8_t key[16];
    uint64_t a = ws_rand(rng), b = ws_rand(rng);
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
    char k64[25];
    base64_16(key, k64);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nCookie: %s\r\n\r\n",
                     t->host, t->port, k64, cookie);
    bbuf_add(out, req, (size_t)n);
}

size_t ws_upgrade_response(const char *p, size_t n, int *status)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    *status = 0;
    if (n > 12 && !strncmp(p, "HTTP/1.", 7))
        *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return (size_t)(end - p) + 4;
}

void ws_frame(struct bbuf *out, int opcode, const char *payload, size_t len, uint32_t mask)
{
    bbuf_reserve(out, len + 14);
    uint8_t *h = (uint8_t *)out->p + out->len;
    size_t hl;
    h[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[1] = (uint8_t)(0x80 | len);
        hl = 2;
    } else if (len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    uint8_t m[4];
    memcpy(m, &mask, 4);
    memcpy(h + hl, m, 4);
    hl += 4;
    uint8_t *d = h + hl;
    const uint8_t *s = (const uint8_t *)payload;
    for (size_t i = 0; i < len; i++)
        d[i] = s[i] ^ m[i & 3];
    out->len += hl + len;
}

int ws_parse(char *p, size_t n, struct ws_frame *f)
{
    const uint8_t *u = (const uint8_t *)p;
    if (n < 2)
        return 0;
    if (u[0] & 0x70)
        return -1; /* no extension was negotiated */
    f->fin = u[0] >> 7;
    f->opcode = u[0] & 15;
    int masked = u[1] >> 7;
    uint64_t len = u[1] & 127;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)u[2] << 8 | u[3];
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | u[2 + i];
        if (len >> 62)
            return -1;
        hl = 10;
    }
    uint8_t m[4] = {0};
    if (masked) {
        if (n < hl + 4)
            return 0;
        memcpy(m, u + hl, 4);
        hl += 4;
    }
    if (n - hl < len)
        return 0;
    f->payload = p + hl;
    f->len = (size_t)len;
    f->consumed = hl + (size_t)len;
    if (masked)
        for (size_t i = 0; i < f->len; i++)
            f->payload[i] ^= (char)m[i & 3];
    return 1;
}
