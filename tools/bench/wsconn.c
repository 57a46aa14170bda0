/*
 * wsconn.c - the per-thread epoll loop of WebSocket client connections (see
 * wsconn.h). One read buffer per thread; a connection keeps only the tail
 * of a frame cut by a read, so ten thousand idle connections cost a few
 * hundred bytes each.
 */
#include "wsconn.h"

#include "clock.h"
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_MIN    (256 * 1024)
#define READ_ROUNDS 4 /* reads per readable event before serving other sockets */

void wt_init(struct wthread *wt, int id, int n, int first, int stride,
             const struct net_target *target, int nsrc)
{
    memset(wt, 0, sizeof(*wt));
    wt->id = id;
    wt->n = n;
    wt->target = target;
    wt->nsrc = nsrc;
    wt->max_inflight = 64;
    wt->ep = epoll_create1(EPOLL_CLOEXEC);
    wt->conns = xcalloc((size_t)n, sizeof(struct wconn));
    wt->rcap = RBUF_MIN;
    wt->rbuf = xmalloc(wt->rcap);
    wt->rng = UINT64_C(0x9e3779b97f4a7c15) ^ ((uint64_t)now_ns() * (uint64_t)(id + 1));
    for (int i = 0; i < n; i++) {
        wt->conns[i].fd = -1;
        wt->conns[i].index = first + i * stride;
        wt->conns[i].mask = (uint32_t)ws_rand(&wt->rng);
    }
}

void wt_release(struct wthread *wt)
{
    for (int i = 0; i < wt->n; i++) {
        struct wconn *c = &wt->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        bbuf_free(&c->out);
        bbuf_free(&c->in);
        bbuf_free(&c->frag);
    }
    free(wt->conns);
    free(wt->rbuf);
    if (wt->ep >= 0)
        close(wt->ep);
    wt->conns = NULL;
    wt->rbuf = NULL;
    wt->ep = -1;
}

static void arm(struct wthread *wt, struct wconn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(wt->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void fail(struct wthread *wt, struct wconn *c, int err, int status)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = WC_FAILED;
    c->status = status ? status : err;
    wt->inflight--;
    wt->failed++;
    if (err)
        wt->last_errno = err;
    if (status)
        wt->last_status = status;
    bbuf_free(&c->out);
    bbuf_free(&c->in);
}

void wconn_close(struct wthread *wt, struct wconn *c, int code)
{
    if (c->state != WC_OPEN)
        return;
    close(c->fd);
    c->fd = -1;
    c->state = WC_CLOSED;
    c->close_code = code;
    wt->closed++;
    bbuf_free(&c->out);
    bbuf_free(&c->in);
    bbuf_free(&c->frag);
    if (wt->on_close)
        wt->on_close(wt, c);
}

void wt_start_connects(struct wthread *wt)
{
    while (wt->started < wt->n && wt->inflight < wt->max_inflight) {
        struct wconn *c = &wt->conns[wt->started++];
        wt->inflight++;
        c->fd = net_connect_nb(wt->target, c->index, wt->nsrc);
        if (c->fd < 0) {
            fail(wt, c, errno, 0);
            continue;
        }
        c->state = WC_CONNECTING;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(wt->ep, EPOLL_CTL_ADD, c->fd, &ev);
        c->want_out = true;
    }
}

void wconn_text(struct wconn *c, const char *msg, size_t len)
{
    ws_frame(&c->out, WS_TEXT, msg, len, c->mask);
}

void wconn_flush(struct wthread *wt, struct wconn *c)
{
    if (c->fd < 0)
        return;
    size_t before = bbuf_pending(&c->out);
    if (before) {
        if (bbuf_write(&c->out, c->fd)) {
            if (c->state == WC_OPEN)
                wconn_close(wt, c, 1006);
            else
                fail(wt, c, errno, 0);
            return;
        }
        wt->writes++;
        wt->bytes_out += before - bbuf_pending(&c->out);
    }
    bool pending = bbuf_pending(&c->out) > 0;
    if (pending != c->want_out && c->state != WC_CONNECTING)
        arm(wt, c, pending);
}

/* Handles the frames in p[0..n); returns the bytes consumed. */
static size_t on_frames(struct wthread *wt, struct wconn *c, char *p, size_t n, int64_t now)
{
    size_t off = 0;
    struct ws_frame f;
    while (c->state == WC_OPEN) {
        int r = ws_parse(p + off, n - off, &f);
        if (r == 0)
            break;
        if (r < 0) {
            wconn_close(wt, c, 1002);
            break;
        }
        off += f.consumed;
        switch (f.opcode) {
        case WS_TEXT:
        case WS_BINARY:
            if (f.fin) {
                wt->on_message(wt, c, f.payload, f.len, now);
            } else {
                c->frag.off = c->frag.len = 0;
                bbuf_add(&c->frag, f.payload, f.len);
            }
            break;
        case WS_CONT:
            bbuf_add(&c->frag, f.payload, f.len);
            if (f.fin) {
                wt->on_message(wt, c, c->frag.p, c->frag.len, now);
                c->frag.off = c->frag.len = 0;
            }
            break;
        case WS_PING:
            ws_frame(&c->out, WS_PONG, f.payload, f.len, c->mask);
            wconn_flush(wt, c);
            break;
        case WS_CLOSE: {
            int code = f.len >= 2 ? ((uint8_t)f.payload[0] << 8 | (uint8_t)f.payload[1]) : 1005;
            wconn_close(wt, c, code);
            break;
        }
        default:
            break;
        }
    }
    return off;
}

static void on_handshake(struct wthread *wt, struct wconn *c, int64_t now)
{
    for (;;) {
        bbuf_reserve(&c->in, 4096);
        ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            fail(wt, c, r == 0 ? ECONNRESET : errno, 0);
            return;
        }
        wt->bytes_in += (uint64_t)r;
        c->in.len += (size_t)r;
        int status;
        size_t hl = ws_upgrade_response(c->in.p + c->in.off, bbuf_pending(&c->in), &status);
        if (!hl) {
            if (bbuf_pending(&c->in) > 16384)
                fail(wt, c, 0, 999);
            continue;
        }
        if (status != 101) {
            fail(wt, c, 0, status ? status : 999);
            return;
        }
        bbuf_consume(&c->in, hl);
        c->state = WC_OPEN;
        wt->inflight--;
        wt->opened++;
        bbuf_free(&c->out);
        if (c->want_out)
            arm(wt, c, false);
        if (bbuf_pending(&c->in)) { /* frames right behind the answer */
            size_t have = bbuf_pending(&c->in);
            char *tmp = xmalloc(have);
            memcpy(tmp, c->in.p + c->in.off, have);
            bbuf_free(&c->in);
            size_t used = on_frames(wt, c, tmp, have, now);
            if (c->state == WC_OPEN && used < have)
                bbuf_add(&c->in, tmp + used, have - used);
            free(tmp);
        } else {
            bbuf_free(&c->in);
        }
        return;
    }
}

static void on_readable(struct wthread *wt, struct wconn *c)
{
    for (int round = 0; round < READ_ROUNDS && c->state == WC_OPEN; round++) {
        size_t have = bbuf_pending(&c->in);
        if (wt->rcap < have + 65536) {
            while (wt->rcap < have + 65536)
                wt->rcap *= 2;
            free(wt->rbuf);
            wt->rbuf = xmalloc(wt->rcap);
        }
        if (have)
            memcpy(wt->rbuf, c->in.p + c->in.off, have);
        c->in.off = c->in.len = 0;
        size_t room = wt->rcap - have;
        ssize_t r = recv(c->fd, wt->rbuf + have, room, 0);
        if (r < 0 && errno == EINTR) {
            bbuf_add(&c->in, wt->rbuf, have);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            bbuf_add(&c->in, wt->rbuf, have);
            return;
        }
        if (r <= 0) {
            wconn_close(wt, c, 1006);
            return;
        }
        wt->reads++;
        wt->bytes_in += (uint64_t)r;
        int64_t now = now_ns();
        size_t total = have + (size_t)r;
        size_t used = on_frames(wt, c, wt->rbuf, total, now);
        if (c->state != WC_OPEN)
            return;
        if (used < total)
            bbuf_add(&c->in, wt->rbuf + used, total - used);
        if ((size_t)r < room)
            return; /* drained */
    }
}

int wt_poll(struct wthread *wt, int64_t timeout_ns)
{
    struct epoll_event evs[256];
    if (timeout_ns < 0)
        timeout_ns = 0;
    struct timespec ts = {.tv_sec = timeout_ns / NS_PER_S, .tv_nsec = timeout_ns % NS_PER_S};
    int n = epoll_pwait2(wt->ep, evs, 256, &ts, NULL);
    wt->polls++;
    for (int i = 0; i < n; i++) {
        struct wconn *c = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (c->state == WC_CONNECTING) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err ||
                (e & (EPOLLERR | EPOLLHUP))) {
                fail(wt, c, err ? err : ECONNREFUSED, 0);
                continue;
            }
            if (!(e & EPOLLOUT))
                continue;
            c->state = WC_HANDSHAKE;
            ws_upgrade_request(&c->out, wt->target, c->cookie, &wt->rng);
            wconn_flush(wt, c);
            continue;
        }
        if (c->state == WC_HANDSHAKE) {
            if (e & EPOLLOUT)
                wconn_flush(wt, c);
            if (c->state == WC_HANDSHAKE && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_handshake(wt, c, now_ns());
            continue;
        }
        if (c->state != WC_OPEN)
            continue;
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
            on_readable(wt, c);
        if (c->state == WC_OPEN && (e & EPOLLOUT))
            wconn_flush(wt, c);
    }
    if (wt->started < wt->n)
        wt_start_connects(wt);
    return n < 0 ? 0 : n;
}
