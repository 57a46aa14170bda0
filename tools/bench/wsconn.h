/*
 * wsconn.h - many WebSocket client connections driven by one epoll loop per
 * thread. A `struct wthread` owns its connections: it connects them (a
 * bounded number of handshakes in flight, so the server's accept backlog
 * never overflows), reads and parses every frame, answers pings, and hands
 * each complete text message to the mode's on_message callback with the
 * time it was read. The mode writes frames with wconn_text() and sends them
 * with wconn_flush(); one write per connection per loop turn however many
 * frames were queued.
 *
 * Nothing here is shared between threads; the modes (rate.c, conns.c)
 * aggregate per-thread results after joining.
 */
#ifndef CW_BENCH_WSCONN_H
#define CW_BENCH_WSCONN_H

#include "net.h"

#include <stdbool.h>
#include <stdint.h>

enum { WC_IDLE, WC_CONNECTING, WC_HANDSHAKE, WC_OPEN, WC_CLOSED, WC_FAILED };

struct wconn {
    int fd;
    uint8_t state;
    bool want_out;  /* EPOLLOUT armed */
    int index;      /* global connection index */
    int status;     /* HTTP status of a refused upgrade, errno of a failed connect */
    int close_code; /* close frame code, 1006 on EOF or a socket error */
    uint32_t mask;
    const char *cookie; /* "cw_session=..." (borrowed) */
    struct bbuf out;    /* bytes not yet written */
    struct bbuf in;     /* an incomplete frame (or answer header) kept between reads */
    struct bbuf frag;   /* a fragmented message being assembled */
    void *data;         /* the mode's per-connection state */
};

struct wthread;

typedef void (*wconn_msg_cb)(struct wthread *wt, struct wconn *c, char *msg, size_t len,
                             int64_t now);
typedef void (*wconn_close_cb)(struct wthread *wt, struct wconn *c);

struct wthread {
    int id, ep;
    struct wconn *conns;
    int n;
    const struct net_target *target;
    int nsrc; /* source addresses to spread over */
    wconn_msg_cb on_message;
    wconn_close_cb on_close; /* an open connection was closed (by either side) */
    void *ctx;               /* the mode's per-thread state */
    char *rbuf;
    size_t rcap;
    uint64_t rng;
    int started, inflight, opened, failed, closed, max_inflight;
    int last_errno, last_status; /* of the last failed connect / refused upgrade */
    uint64_t bytes_in, bytes_out, reads, writes, polls;
};

/* Prepares wt for n connections with global indices first, first+stride, ... */
void wt_init(struct wthread *wt, int id, int n, int first, int stride,
             const struct net_target *target, int nsrc);
void wt_release(struct wthread *wt);

/* Starts more connects while fewer than max_inflight are in flight. */
void wt_start_connects(struct wthread *wt);

/* True when every connection is open, failed or closed. */
static inline bool wt_settled(const struct wthread *wt)
{
    return wt->started == wt->n && wt->inflight == 0;
}

/* Waits up to timeout_ns for events and handles them. Returns the count of
 * events, 0 on timeout. */
int wt_poll(struct wthread *wt, int64_t timeout_ns);

/* Queues one text message on c (framed and masked). */
void wconn_text(struct wconn *c, const char *msg, size_t len);

/* Writes what c has queued; arms EPOLLOUT for the rest. */
void wconn_flush(struct wthread *wt, struct wconn *c);

/* Closes c now (no close handshake: the benchmark is done with it). */
void wconn_close(struct wthread *wt, struct wconn *c, int code);

#endif
