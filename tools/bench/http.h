/*
 * http.h - the HTTP/1.1 client side calderwood-bench needs: an incremental
 * response parser (status, Content-Length or chunked, Connection: close),
 * shared by the keep-alive query connections (query.c), and one blocking
 * request with a timeout for the setup requests (login).
 */
#ifndef CW_BENCH_HTTP_H
#define CW_BENCH_HTTP_H

#include "net.h"

#include <stdbool.h>
#include <stddef.h>

struct http_resp {
    int status;
    size_t body_off, body_len; /* the body as sent (chunked framing left in place) */
    bool close;                /* the server will close after this answer */
};

/* Parses the answer at p[0..n). Returns its total length when complete, 0
 * when more bytes are needed, -1 when it is not HTTP. */
long http_parse(const char *p, size_t n, struct http_resp *r);

/* Finds header `name` (case-insensitive) in the header block of p[0..n);
 * copies its value into buf. */
bool http_header(const char *p, size_t n, const char *name, char *buf, size_t cap);

/* Sends `request` on a new connection and reads the answer into *out
 * (malloc'd, NUL-terminated), waiting at most timeout_ms. Returns 0 or -1. */
int http_exchange(const struct net_target *t, const char *request, size_t len, char **out,
                  size_t *out_len, struct http_resp *r, int timeout_ms);

#endif
