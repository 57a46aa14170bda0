/*
 * gateway.h - the network in front of the engine: HTTP routes, WebSocket
 * protocol, sessions, audience routing, backpressure (PROTOCOL.md).
 *
 * cw_gateway_run() owns the calling thread for the life of the server and
 * starts cfg->threads - 1 more: each runs a libwebsockets event loop of its
 * own over the connections it owns, and only it touches their lws objects.
 * Other threads reach a loop only through the update bus, the worker pools'
 * completion lists, the hand-off of accepted sockets and cw_gateway_stop(),
 * each of which wakes it.
 */
#ifndef CW_GATEWAY_H
#define CW_GATEWAY_H

#include "calderwood.h"

struct cw_engine;
struct cw_domain;
struct cw_metrics;

struct cw_gateway_config {
    const char *listen;             /* "HOST:PORT" */
    const char *tls_cert, *tls_key; /* both or neither */
    const char *web_dir;            /* holds login.html, console.html and static/ */
    const char *const *allowed_origins;
    size_t n_allowed_origins;
    size_t max_message;      /* soft WebSocket message limit: too-large, stays open */
    size_t hard_max_message; /* hard limit: close 1009 */
    size_t max_output;       /* unsent bytes per connection before close 1008 */
    size_t max_body;         /* HTTP request body: 413 beyond */
    size_t max_header;       /* HTTP request headers: 431 beyond */

    /* how long output stays over max_output, its socket full, before close 1008 */
    int slow_reader_grace_ms;
    /* time limits, in seconds (PROTOCOL.md "Limits and timeouts") */
    int idle_timeout;     /* a kept-alive HTTP connection waiting for a request */
    int header_timeout;   /* a request head, from its first byte to its blank line */
    int body_timeout;     /* a request body, from the end of its head */
    int ws_ping_interval; /* WebSocket silence before the server pings */
    int ws_pong_timeout;  /* after that ping, silence before the connection is closed */
    int threads;          /* gateway threads, each with its own loop and connections */
    int workers;          /* worker threads (queries, logins, look-ups), over all of them */
    size_t worker_queue;  /* jobs waiting at most */
    double login_rate;    /* login attempts per second per remote address */
    double login_burst;
    const unsigned char *secret_key; /* 32 bytes: seals session cookies */
    const char *demo_banner;         /* printed once listening (URL added), or NULL */
    void (*on_listening)(void);      /* called once the socket listens, or NULL */
    int role;                        /* enum cw_role: which routes are served */
};

/*
 * Serves until cw_gateway_stop(): then stops accepting, drains the command
 * queue, delivers the last outcomes, closes every WebSocket with 1001, and
 * returns CW_OK. The engine, domain and metrics are borrowed.
 */
int cw_gateway_run(const struct cw_gateway_config *cfg, struct cw_engine *e,
                   const struct cw_domain *d, struct cw_metrics *m, struct cw_error *err);

/*
 * Binds cfg->listen now, before the rest of start-up, so that a taken
 * address stops it with one line ("cannot listen on 127.0.0.1:8080: address
 * already in use") before anything is written. cw_gateway_run() binds
 * itself when this was not called.
 */
int cw_gateway_listen(const struct cw_gateway_config *cfg, struct cw_error *err);

/* Asks the running gateway to stop. Any thread. */
void cw_gateway_stop(void);

/* The version string of the libwebsockets loaded at run time. Static. */
const char *cw_gateway_library_version(void);

#endif
