/*
 * wsblock.c - a blocking WebSocket client connection (see wsblock.h).
 */
#include "wsblock.h"

#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int wait_fd(int fd, short events, int64_t deadline)
{
    int left = (int)((deadline - now_ns()) / NS_PER_MS);
    struct pollfd pf = {.fd = fd, .events = events};
    return left > 0 && poll(&pf, 1, left) == 1 ? 0 : -1;
}

static int write_all(int fd, struct bbuf *out, int64_t deadline)
{
    while (bbuf_pending(out)) {
        if (wait_fd(fd, POLLOUT, deadline) || bbuf_write(out, fd))
            return -1;
    }
    return 0;
}

int wsb_try_open(struct wsblock *w, const struct net_target *t, const char *cookie, int timeout_ms,
                 int *status)
{
    memset(w, 0, sizeof(*w));
    *status = 0;
    int64_t deadline = now_ns() + (int64_t)timeout_ms * NS_PER_MS;
    w->fd = net_connect_blocking(t, timeout_ms);
    if (w->fd < 0)
        return -1;
    uint64_t rng = (uint64_t)now_ns() | 1;
    w->mask = (uint32_t)ws_rand(&rng);
    struct bbuf out = {0};
    ws_upgrade_request(&out, t, cookie, &rng);
    int rc = write_all(w->fd, &out, deadline);
    bbuf_free(&out);
    size_t hl = 0;
    while (!rc && !hl) {
        if (wait_fd(w->fd, POLLIN, deadline)) {
            rc = -1;
            break;
        }
        bbuf_reserve(&w->in, 4096);
        ssize_t n = recv(w->fd, w->in.p + w->in.len, w->in.cap - w->in.len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        w->in.len += (size_t)n;
        hl = ws_upgrade_response(w->in.p, w->in.len, status);
    }
    if (rc || *status != 101) {
        wsb_close(w);
        return -1;
    }
    bbuf_consume(&w->in, hl);
    return 0;
}

int wsb_open(struct wsblock *w, const struct net_target *t, const char *cookie, int timeout_ms)
{
    int status;
    if (!wsb_try_open(w, t, cookie, timeout_ms, &status))
        return 0;
    if (status)
        fprintf(stderr, "calderwood-bench: /ws upgrade failed (HTTP status %d)\n", status);
    else
        fprintf(stderr, "calderwood-bench: /ws at %s:%d: %s\n", t->host, t->port,
                strerror(errno ? errno : ETIMEDOUT));
    return -1;
}

int wsb_send(struct wsblock *w, const char *msg, size_t len)
{
    struct bbuf out = {0};
    ws_frame(&out, WS_TEXT, msg, len, w->mask);
    int rc = write_all(w->fd, &out, now_ns() + 10 * NS_PER_S);
    bbuf_free(&out);
    return rc;
}

int wsb_read(struct wsblock *w, struct ws_frame *f, int64_t deadline_ns)
{
    if (w->pending) {
        bbuf_consume(&w->in, w->pending);
        w->pending = 0;
    }
    for (;;) {
        if (bbuf_pending(&w->in)) {
            int r = ws_parse(w->in.p + w->in.off, bbuf_pending(&w->in), f);
            if (r < 0)
                return -1;
            if (r > 0 && f->opcode == WS_PING) { /* answered here: the server closes the silent */
                struct bbuf out = {0};
                ws_frame(&out, WS_PONG, f->payload, f->len, w->mask);
                int rc = write_all(w->fd, &out, now_ns() + 10 * NS_PER_S);
                bbuf_free(&out);
                bbuf_consume(&w->in, f->consumed);
                if (rc)
                    return -1;
                continue;
            }
            if (r > 0) {
                w->pending = f->consumed;
                return 0;
            }
        }
        if (wait_fd(w->fd, POLLIN, deadline_ns))
            return -1;
        bbuf_reserve(&w->in, 65536);
        ssize_t n = recv(w->fd, w->in.p + w->in.len, w->in.cap - w->in.len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        w->in.len += (size_t)n;
    }
}

void wsb_close(struct wsblock *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    bbuf_free(&w->in);
}
