/*
 * http.c - HTTP/1.1 answers parsed in place, and the blocking exchange used
 * for logins (see http.h).
 */
#include "http.h"

#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

bool http_header(const char *p, size_t n, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        end = p + n;
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && line < end) {
        line++;
        if ((size_t)(end - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            size_t i = 0;
            while (v < end && *v != '\r' && *v != '\n' && i + 1 < cap)
                buf[i++] = *v++;
            buf[i] = 0;
            return true;
        }
        line = memchr(line, '\n', (size_t)(end - line));
    }
    return false;
}

/* The length of a chunked body at p[0..n), or 0 while incomplete. */
static size_t chunked_len(const char *p, size_t n)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, n - off, "\r\n", 2);
        if (!eol)
            return 0;
        size_t size = strtoul(p + off, NULL, 16);
        off = (size_t)(eol - p) + 2;
        if (size == 0) { /* last chunk, then optional trailers and an empty line */
            const char *fin = memmem(p + off - 2, n - off + 2, "\r\n\r\n", 4);
            return fin ? (size_t)(fin - p) + 4 : 0;
        }
        if (n - off < size + 2)
            return 0;
        off += size + 2;
    }
}

long http_parse(const char *p, size_t n, struct http_resp *r)
{
    if (n >= 5 && strncmp(p, "HTTP/", 5))
        return -1;
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hl = (size_t)(end - p) + 4;
    r->status = n > 12 ? atoi(p + 9) : 0;
    r->body_off = hl;
    char v[64];
    r->close = http_header(p, hl, "connection", v, sizeof(v)) && !strcasecmp(v, "close");
    if (http_header(p, hl, "content-length", v, sizeof(v))) {
        size_t len = strtoul(v, NULL, 10);
        if (n - hl < len)
            return 0;
        r->body_len = len;
        return (long)(hl + len);
    }
    if (http_header(p, hl, "transfer-encoding", v, sizeof(v)) && strcasestr(v, "chunked")) {
        size_t len = chunked_len(p + hl, n - hl);
        if (!len)
            return 0;
        r->body_len = len;
        return (long)(hl + len);
    }
    if (r->status == 204 || r->status == 304 || r->status / 100 == 1) {
        r->body_len = 0;
        return (long)hl;
    }
    /* No length: the body runs to the close; treated as complete when the
     * caller sees the end of the stream. */
    r->body_len = n - hl;
    r->close = true;
    return 0;
}

int http_exchange(const struct net_target *t, const char *request, size_t len, char **out,
                  size_t *out_len, struct http_resp *r, int timeout_ms)
{
    int64_t deadline = now_ns() + (int64_t)timeout_ms * NS_PER_MS;
    int fd = net_connect_blocking(t, timeout_ms);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int left = (int)((deadline - now_ns()) / NS_PER_MS);
        if (left <= 0 || poll(&pf, 1, left) != 1)
            goto fail;
        ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    struct bbuf b = {0};
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)((deadline - now_ns()) / NS_PER_MS);
        if (left <= 0 || poll(&pf, 1, left) != 1) {
            bbuf_free(&b);
            goto fail;
        }
        bbuf_reserve(&b, 4096);
        ssize_t rd = recv(fd, b.p + b.len, b.cap - b.len - 1, 0);
        if (rd < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (rd <= 0) {
            /* end of stream: an answer without a length ends here */
            long done = http_parse(b.p ? b.p : "", b.len, r);
            if (done == 0 && b.len && r->close && b.len > r->body_off)
                break;
            bbuf_free(&b);
            goto fail;
        }
        b.len += (size_t)rd;
        long done = http_parse(b.p, b.len, r);
        if (done < 0) {
            bbuf_free(&b);
            goto fail;
        }
        if (done > 0)
            break;
    }
    close(fd);
    b.p[b.len] = 0;
    *out = b.p;
    *out_len = b.len;
    return 0;
fail:
    close(fd);
    return -1;
}
