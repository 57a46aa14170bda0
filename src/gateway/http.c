/*
 * http.c - HTTP/1.1 connections on a raw socket: requests are read whole
 * (head, then a Content-Length body), handed to routes.c, answered one at a
 * time in order (respond.c writes each answer; this file finishes the
 * request once lws holds none of it), and kept alive. A request for /ws
 * that asks to upgrade gets the WebSocket handshake here and the socket
 * becomes a ws.c connection.
 *
 * Limits answer before anything is read on: a head over --max-header 431,
 * a body over --max-body 413, then the connection ends. Ending is polite
 * (see cw_linger) so the client reads the answer rather than a reset.
 *
 * Time limits are lws timeouts, one per connection, moved at each step: a
 * kept-alive connection waits --idle-timeout for a request to start; its
 * head must then be whole within --header-timeout, its body within
 * --body-timeout after that. Bytes trickling in extend none of them
 * (slowloris), and a connection past one is cut without an answer.
 */
#include "core/alloc.h"
#include "core/log.h"
#include "gw.h"
#include "wire.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ------------------------------------------------------------- lifecycle */

int cw_http_on_open(struct lws *wsi, void **slot)
{
    struct cw_http *req = cw_xcalloc(1, sizeof(*req));
    req->kind = CW_EP_HTTP;
    req->wsi = wsi;
    lws_get_peer_simple(wsi, req->remote, sizeof(req->remote));
    *slot = req;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, cw_gws->cfg->idle_timeout);
    return 0;
}

static void forget_request(struct cw_http *req)
{
    if (req->id)
        cw_idmap_del(&cw_gw->endpoints, req->id);
    req->id = 0;
}

void cw_http_on_closed(struct cw_http *req)
{
    if (!req)
        return;
    forget_request(req);
    /* A login's password passed through these buffers. */
    if (req->in.cap)
        sodium_memzero(req->in.data, req->in.cap);
    if (req->body.cap)
        sodium_memzero(req->body.data, req->body.cap);
    cw_buf_release(&req->in);
    cw_buf_release(&req->head_buf);
    cw_buf_release(&req->body);
    cw_buf_release(&req->resp);
    free(req);
}

/* Drops n bytes from the front of the input. */
static void consume(struct cw_http *req, size_t n)
{
    memmove(req->in.data, req->in.data + n, req->in.len - n);
    sodium_memzero(req->in.data + req->in.len - n, n);
    req->in.len -= n;
}

/*
 * The head moves out of the input into a buffer of its own: the input grows
 * (and moves) while the body comes, and the head's strings must not.
 */
static void keep_head(struct cw_http *req, size_t head_len)
{
    cw_buf_reset(&req->head_buf);
    cw_buf_add(&req->head_buf, req->in.data, head_len);
    struct cw_httpreq *h = &req->head;
#define MOVE(p) ((p) = req->head_buf.data + ((p)-req->in.data))
    MOVE(h->method);
    MOVE(h->target);
    for (size_t i = 0; i < h->n_fields; i++) {
        MOVE(h->fields[i].name);
        MOVE(h->fields[i].value);
    }
#undef MOVE
    consume(req, head_len);
    req->have_head = true;
}

/* ------------------------------------------------------------- answers */

static void log_request(const struct cw_http *req)
{
    char path[64];
    cw_info("http", "method=%s path=%s status=%d bytes=%zu us=%lld remote=%s", req->cur.method_name,
            cw_log_safe(path, sizeof(path), req->cur.path), req->cur.status, req->cur.resp_body_len,
            (long long)(cw_now_us() - req->cur.started_us), req->remote);
}

/* The answer is out: log it, and make ready for the next request or end. */
static void finish(struct cw_http *req)
{
    log_request(req);
    forget_request(req);
    req->busy = req->sending = false;
    if (req->cur.close_after) {
        req->lingering = true;
        cw_linger(req->wsi);
        return;
    }
    if (req->paused) {
        req->paused = false;
        lws_rx_flow_control(req->wsi, 1);
    }
    lws_set_timeout(req->wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, cw_gws->cfg->idle_timeout);
    if (req->in.len && !req->reading) /* a pipelined request waits: read it when writable */
        lws_callback_on_writable(req->wsi);
}

/* The answer respond.c wrote is finished when lws holds none of it. */
static void settle(struct cw_http *req)
{
    if (req->sending && !lws_partial_buffered(req->wsi))
        finish(req);
}

int cw_http_on_writeable(struct cw_http *req, void **slot)
{
    if (req->sending && !lws_partial_buffered(req->wsi))
        finish(req); /* lws has written the rest of the answer */
    if (!req->busy && !req->lingering && req->in.len)
        return cw_http_on_data(req, NULL, 0, slot);
    return 0;
}

/* -------------------------------------------------------------- requests */

static void start_request(struct cw_http *req)
{
    forget_request(req);
    req->id = cw_gw_next_id();
    cw_idmap_put(&cw_gw->endpoints, req->id, req);
    /* One connection carries many requests: nothing of the one before may leak into this one. */
    memset(&req->cur, 0, sizeof(req->cur));
    req->cur.started_us = cw_now_us();
    snprintf(req->cur.method_name, sizeof(req->cur.method_name), "-");
    snprintf(req->cur.path, sizeof(req->cur.path), "-");
    cw_count(cw_gws->metrics->http_requests);
}

/* An answer that ends the connection: what follows the head cannot be trusted or is unread. */
static int refuse(struct cw_http *req, int status, const char *code, const char *message)
{
    req->cur.close_after = true;
    return cw_respond_error(req, status, code, message);
}

/* Method, path, body length and keep-alive from a parsed head; nonzero after refusing it. */
static int read_head(struct cw_http *req)
{
    const struct cw_httpreq *h = &req->head;
    snprintf(req->cur.method_name, sizeof(req->cur.method_name), "%s", h->method);
    req->cur.method = !strcmp(h->method, "GET")    ? CW_M_GET
                      : !strcmp(h->method, "POST") ? CW_M_POST
                      : !strcmp(h->method, "HEAD") ? CW_M_HEAD
                                                   : CW_M_OTHER;
    req->cur.head_only = req->cur.method == CW_M_HEAD;
    size_t plen = strcspn(h->target, "?");
    if (h->target[0] != '/')
        return refuse(req, 400, "malformed", "the request target must be a path");
    if (plen >= sizeof(req->cur.path))
        return refuse(req, 414, "too-large", "the path is too long");
    memcpy(req->cur.path, h->target, plen);
    req->cur.path[plen] = '\0';
    if (!cw_http_unescape(req->cur.path, false))
        return refuse(req, 400, "malformed", "bad escape in the path");
    const char *conn = cw_httpreq_field(h, "connection");
    req->cur.close_after = cw_httpreq_has_token(conn, "close") ||
                           (h->minor == 0 && !cw_httpreq_has_token(conn, "keep-alive"));
    if (cw_httpreq_field(h, "transfer-encoding"))
        return refuse(req, 411, "length-required", "send the body with a Content-Length");
    /* RFC 9112 3.2: an HTTP/1.1 request names its host once; no request names it twice. */
    size_t hosts = cw_httpreq_count(h, "host");
    if (hosts > 1 || (h->minor >= 1 && !hosts))
        return refuse(req, 400, "malformed", "an HTTP/1.1 request has one Host header");
    /* The parser took only a plain number, and only one (request smuggling). */
    const char *length = cw_httpreq_field(h, "content-length");
    if (!length)
        return 0;
    unsigned long long n = strtoull(length, NULL, 10);
    if (n > cw_gws->cfg->max_body)
        return refuse(req, 413, "too-large", "the request body is over the limit");
    req->cur.body_len = (size_t)n;
    return 0;
}

static bool wants_upgrade(const struct cw_http *req)
{
    return cw_httpreq_has_token(cw_httpreq_field(&req->head, "upgrade"), "websocket");
}

/* Writes a short head that is not an answer of its own (101, 100); nonzero when the socket failed.
 */
static int write_short(struct lws *wsi, const char *text)
{
    unsigned char buf[LWS_PRE + 256];
    size_t n = strlen(text);
    if (n > sizeof(buf) - LWS_PRE)
        return -1;
    memcpy(buf + LWS_PRE, text, n);
    return lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n;
}

/* The 101 answer of RFC 6455 4.2.2; the socket speaks WebSocket from here. */
static int accept_upgrade(struct cw_http *req, void **slot, struct cw_session *session,
                          int64_t after)
{
    const char *key = cw_httpreq_field(&req->head, "sec-websocket-key");
    char joined[128], accept[64];
    unsigned char digest[20];
    snprintf(joined, sizeof(joined), "%s%s", key, WS_GUID);
    lws_SHA1((const unsigned char *)joined, strlen(joined), digest);
    lws_b64_encode_string((const char *)digest, sizeof(digest), accept, sizeof(accept));
    char head[200];
    snprintf(head, sizeof(head),
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
             accept);
    if (write_short(req->wsi, head))
        return -1;
    req->cur.status = 101;
    req->cur.resp_body_len = 0;
    log_request(req);
    struct lws *wsi = req->wsi;
    struct cw_session s = *session;
    /* Frames the client sent right behind its handshake belong to the connection. */
    size_t extra = req->in.len;
    unsigned char *rest = extra ? cw_xmalloc(extra) : NULL;
    if (extra)
        memcpy(rest, req->in.data, extra);
    cw_http_on_closed(req);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    int rc = cw_ws_on_established(wsi, slot, &s);
    if (!rc && after >= 0)
        cw_ws_resume(*slot, after);
    if (!rc && extra)
        rc = cw_ws_on_data(*slot, rest, extra);
    free(rest);
    return rc;
}

/* curl and others wait for this before sending a larger body (RFC 9110 10.1.1). */
static void send_continue(struct cw_http *req)
{
    const char *expect = cw_httpreq_field(&req->head, "expect");
    if (!expect || strcasecmp(expect, "100-continue"))
        return;
    write_short(req->wsi, "HTTP/1.1 100 Continue\r\n\r\n");
}

/* RFC 6455 4.2.1: one Sec-WebSocket-Key, the base64 of exactly 16 bytes. */
static bool valid_key(const struct cw_httpreq *h)
{
    const char *key = cw_httpreq_field(h, "sec-websocket-key");
    unsigned char raw[17]; /* room for one byte too many, to tell 17 from 16 */
    size_t n = 0;
    return key && cw_httpreq_count(h, "sec-websocket-key") == 1 &&
           !sodium_base642bin(raw, sizeof(raw), key, strlen(key), NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) &&
           n == 16;
}

/*
 * GET /ws?after=N resumes at open: the catch-up starts before any live update
 * can reach the connection, so a reconnecting client sees one ordered stream.
 * *after is -1 without the parameter; false for a value that is not one.
 */
static bool after_param(const char *target, int64_t *after)
{
    *after = -1;
    const char *q = strchr(target, '?');
    for (const char *p = q; p && *p; p = strchr(p, '&')) {
        p++;
        if (strncmp(p, "after=", 6))
            continue;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(p + 6, &end, 10);
        if (!isdigit((unsigned char)p[6]) || (*end && *end != '&') || errno ||
            n >= CW_WIRE_SEQ_LIMIT)
            return false;
        *after = (int64_t)n;
    }
    return true;
}

/* An Upgrade request: checked in the order PROTOCOL.md gives, then accepted. */
static int upgrade(struct cw_http *req, void **slot)
{
    const char *version = cw_httpreq_field(&req->head, "sec-websocket-version");
    if (strcmp(req->cur.path, "/ws"))
        return refuse(req, 404, "not-found", "WebSocket connections are served at /ws");
    /* RFC 6455 4.2.1: a GET of HTTP/1.1 or higher; an HTTP/1.0 client is not upgraded. */
    if (req->cur.method != CW_M_GET || req->head.minor < 1 || !valid_key(&req->head) ||
        !cw_httpreq_has_token(cw_httpreq_field(&req->head, "connection"), "upgrade"))
        return refuse(req, 400, "malformed", "not a valid WebSocket handshake");
    if (!version || strcmp(version, "13")) {
        cw_respond_header(req, "Sec-WebSocket-Version", "13");
        return refuse(req, 426, "upgrade-required", "WebSocket version 13 only");
    }
    if (cw_gw->stopping)
        return refuse(req, 503, "shutting-down", "the server is stopping");
    if (!cw_request_origin_allowed(req))
        return refuse(req, 403, "forbidden", "this Origin may not open a WebSocket here");
    int64_t after;
    if (!after_param(req->head.target, &after))
        return refuse(req, 400, "malformed", "after= takes a position: an integer, 0 <= n < 2^53");
    struct cw_session session;
    if (!cw_request_session(req, &session))
        return refuse(req, 401, "unauthorized", "log in first: no valid session");
    return accept_upgrade(req, slot, &session, after);
}

/* Reads requests from the input while it holds whole ones and none is being answered. */
static int next_request(struct cw_http *req, void **slot)
{
    req->reading = true;
    while (!req->busy && !req->lingering && req->in.len) {
        if (!req->have_head && !req->head_clock) { /* the first byte of a head */
            req->head_clock = true;
            lws_set_timeout(req->wsi, PENDING_TIMEOUT_AWAITING_CLIENT_HS_SEND,
                            cw_gws->cfg->header_timeout);
        }
        if (!req->have_head) {
            long n =
                cw_httpreq_parse(req->in.data, req->in.len, cw_gws->cfg->max_header, &req->head);
            if (n == CW_HTTPREQ_MORE)
                break;
            start_request(req);
            if (n == CW_HTTPREQ_TOO_LARGE) {
                refuse(req, 431, "too-large", "the request headers are over the limit");
                break;
            }
            if (n < 0) {
                refuse(req, 400, "malformed", "not an HTTP/1.1 request");
                break;
            }
            keep_head(req, (size_t)n);
            req->head_clock = false;
            if (read_head(req) || req->busy) /* refused: nothing after it is read */
                break;
            if (wants_upgrade(req)) {
                req->reading = false;
                return upgrade(req, slot); /* req is gone when it succeeds */
            }
            if (req->in.len < req->cur.body_len) {
                lws_set_timeout(req->wsi, PENDING_TIMEOUT_HTTP_CONTENT, cw_gws->cfg->body_timeout);
                send_continue(req);
            }
        }
        if (req->in.len < req->cur.body_len)
            break; /* the body is still coming */
        cw_buf_add(&req->body, req->in.data, req->cur.body_len);
        cw_routes_dispatch(req);
        /* Answered now or later (a login's hash, a query on a worker, a logout's
         * commit): either way nothing after it is read, and no deadline of the
         * client's runs, until its answer is out. */
        req->busy = true;
        settle(req);
        consume(req, req->cur.body_len);
        req->have_head = false;
        if (req->body.cap)
            sodium_memzero(req->body.data, req->body.cap);
        cw_buf_reset(&req->body);
        if (req->busy && !req->paused) { /* answered later: read nothing more meanwhile */
            req->paused = true;
            lws_rx_flow_control(req->wsi, 0);
            lws_set_timeout(req->wsi, NO_PENDING_TIMEOUT, 0);
        }
    }
    settle(req); /* a refusal that ended the loop */
    req->reading = false;
    return 0;
}

int cw_http_on_data(struct cw_http *req, const char *in, size_t len, void **slot)
{
    if (req->lingering)
        return 0;
    /* A paused connection still delivers what one read held; more than that is abuse. */
    if (req->in.len + len > cw_gws->cfg->max_header + cw_gws->cfg->max_body + 65536)
        return -1;
    if (len)
        cw_buf_add(&req->in, in, len);
    return next_request(req, slot);
}
