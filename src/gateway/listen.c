/*
 * listen.c - the listening socket: bind, accept, and hand each socket to lws.
 *
 * lws 4.1 could listen for us, but when accept() fails for want of a
 * descriptor (EMFILE at the process limit) it logs a line and leaves the
 * socket in the poll set: the pending connection keeps it readable, the
 * level-triggered loop wakes at once, and a core spins writing "accept:
 * errno 24" hundreds of thousands of times a second. So we accept. When
 * accept() fails for want of a resource, the listener stops watching the
 * socket for PAUSE_S: waiting clients stay in the kernel's backlog and are
 * served once descriptors free up, at the cost of one accept() per pause.
 * The classic alternative, a spare descriptor closed to accept and drop the
 * client, would turn every client over the limit away with a reset instead.
 *
 * What is accepted goes at once to the callback (server.c, which picks the
 * gateway thread that will own it); this file keeps no connection state.
 */
#include "listen.h"
#include "core/log.h"

#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAUSE_S     0.1  /* how long accepting stops when descriptors run out */
#define LOG_EVERY_S 10.0 /* at most one log line per this many seconds of pauses */
/* Accepts per loop turn: a burst of new clients must not starve the open ones. */
#define ACCEPTS_PER_TURN 64

static struct {
    int fd;
    struct ev_loop *loop;
    cw_listen_cb on_socket;
    void *arg;
    ev_io io;
    ev_timer pause;
    ev_tstamp logged_at;    /* when the last pause was logged; 0: never */
    unsigned long unlogged; /* pauses since that line */
} listener = {.fd = -1};

int cw_listen_open(const char *host, int port, const char *shown, struct cw_error *err)
{
    if (listener.fd >= 0)
        return CW_OK;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, service, &hints, &list);
    if (gai)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot listen on %s: %s", shown,
                            gai_strerror(gai));
    int failure = 0, on = 1;
    for (struct addrinfo *a = list; a && listener.fd < 0; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && !setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) &&
            !bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, SOMAXCONN)) {
            listener.fd = fd;
            break;
        }
        failure = errno;
        if (fd >= 0)
            close(fd);
    }
    freeaddrinfo(list);
    if (listener.fd >= 0)
        return CW_OK;
    char why[128];
    snprintf(why, sizeof(why), "%s", strerror(failure));
    why[0] = (char)(why[0] >= 'A' && why[0] <= 'Z' ? why[0] - 'A' + 'a' : why[0]);
    return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot listen on %s: %s", shown, why);
}

static void pause_accepting(int error)
{
    ev_io_stop(listener.loop, &listener.io);
    ev_timer_set(&listener.pause, PAUSE_S, 0.);
    ev_timer_start(listener.loop, &listener.pause);
    listener.unlogged++;
    ev_tstamp now = ev_now(listener.loop);
    if (listener.logged_at && now - listener.logged_at < LOG_EVERY_S)
        return;
    cw_warn("gateway.accept_paused", "error=\"%s\" pause_ms=%d pauses=%lu", strerror(error),
            (int)(PAUSE_S * 1000), listener.unlogged);
    listener.logged_at = now;
    listener.unlogged = 0;
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_io_start(loop, &listener.io);
}

static void on_acceptable(struct ev_loop *loop, ev_io *w, int revents)
{
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        int fd = accept4(listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* A client that gave up while waiting is no reason to stop. */
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                pause_accepting(errno);
            return;
        }
        /* Without it an update written right after its ack waits for the
         * client's delayed ACK (40 ms on Linux) or its next message. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        listener.on_socket(fd, listener.arg);
    }
}

void cw_listen_start(struct ev_loop *loop, cw_listen_cb on_socket, void *arg)
{
    listener.loop = loop;
    listener.on_socket = on_socket;
    listener.arg = arg;
    ev_io_init(&listener.io, on_acceptable, listener.fd, EV_READ);
    ev_timer_init(&listener.pause, on_resume, PAUSE_S, 0.);
    ev_io_start(loop, &listener.io);
}

void cw_listen_close(void)
{
    if (listener.loop) {
        ev_io_stop(listener.loop, &listener.io);
        ev_timer_stop(listener.loop, &listener.pause);
        listener.loop = NULL;
    }
    if (listener.fd >= 0)
        close(listener.fd);
    listener.fd = -1;
}
