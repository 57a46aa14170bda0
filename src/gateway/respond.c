/*
 * respond.c - the HTTP response writer: a whole answer (status line,
 * headers, body) built in the request's buffer and given to lws in one
 * write. It only writes: http.c decides what happens to the connection
 * once an answer is out, so routes.c and http.c both call down to here and
 * nothing here calls back up.
 */
#include "core/log.h"
#include "gw.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* What lws's "best practices" option sent before we read HTTP ourselves; kept as it was. */
static const char security_headers[] =
    "Content-Security-Policy: default-src 'none'; img-src 'self' data: ; script-src 'self'; "
    "font-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none';form-action 'self';\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-XSS-Protection: 1; mode=block\r\n"
    "X-Frame-Options: deny\r\n"
    "Referrer-Policy: no-referrer\r\n";

const char *cw_respond_reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 303:
        return "See Other";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void cw_linger(struct lws *wsi)
{
    shutdown(lws_get_socket_fd(wsi), SHUT_WR);
    /* A peer that never closes its side is cut off. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

void cw_respond_header(struct cw_http *req, const char *name, const char *value)
{
    size_t used = strlen(req->cur.extra_headers);
    snprintf(req->cur.extra_headers + used, sizeof(req->cur.extra_headers) - used, "%s: %s\r\n",
             name, value);
}

/* One write for the whole answer; lws keeps what the kernel does not take yet. */
static void send_response(struct cw_http *req)
{
    size_t n = req->resp.len - LWS_PRE;
    if (lws_write(req->wsi, (unsigned char *)req->resp.data + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
        lws_set_timeout(req->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return;
    }
    cw_buf_reset(&req->resp);
    /* A keep-alive connection need not hold on to its biggest answer's buffer. */
    if (req->resp.cap > 256 * 1024)
        cw_buf_release(&req->resp);
    req->sending = true;
    /*
     * http.c finishes the request once lws holds none of it: right after
     * the dispatch that answered it, else in the writable callback.
     */
    if (lws_partial_buffered(req->wsi) || !req->reading)
        lws_callback_on_writable(req->wsi);
}

int cw_respond(struct cw_http *req, int status, const char *content_type, const char *body,
               size_t len)
{
    struct cw_buf *b = &req->resp;
    cw_buf_reset(b);
    cw_buf_grow(b, LWS_PRE + 1024 + len);
    b->len = LWS_PRE;
    char line[160];
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, cw_respond_reason(status));
    cw_buf_adds(b, line);
    cw_buf_add(b, security_headers, sizeof(security_headers) - 1);
    snprintf(line, sizeof(line), "Content-Type: %s\r\nContent-Length: %zu\r\n", content_type, len);
    cw_buf_adds(b, line);
    cw_buf_adds(b, "Cache-Control: no-store\r\n");
    cw_buf_adds(b, req->cur.extra_headers);
    if (req->cur.close_after)
        cw_buf_adds(b, "Connection: close\r\n");
    cw_buf_adds(b, "\r\n");
    if (!req->cur.head_only)
        cw_buf_add(b, body, len);
    req->cur.status = status;
    req->cur.resp_body_len = len;
    req->busy = true;
    if (status >= 400)
        cw_count(cw_gws->metrics->http_errors);
    send_response(req);
    return 0;
}

int cw_respond_error(struct cw_http *req, int status, const char *code, const char *message)
{
    struct cw_buf *b = &cw_gw->out;
    cw_buf_reset(b);
    cw_buf_adds(b, "{\"error\":{\"code\":");
    cw_json_add_string(b, code, strlen(code));
    cw_buf_adds(b, ",\"message\":");
    cw_json_add_string(b, message, strlen(message));
    cw_buf_adds(b, "}}");
    return cw_respond(req, status, "application/json", b->data, b->len);
}
