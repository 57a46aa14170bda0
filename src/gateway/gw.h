/*
 * gw.h - what the gateway's files share: the state of the one gateway, the
 * HTTP request and WebSocket connection records, and the functions each
 * file offers the others. Everything here lives on the loop thread.
 *
 *   server.c  lws context (raw sockets), the callback, wake-ups, shutdown
 *   http.c    HTTP/1.1 connections: requests, routes, login/logout, queries,
 *             responses, the WebSocket handshake
 *   httpreq.c the request head parser
 *   ws.c      WebSocket connections: receive, command pipeline, output
 *   wsframe.c the client frame decoder
 *   hub.c     outcomes from the bus to connections: audience, sessions
 */
#ifndef CW_GW_H
#define CW_GW_H

#include "calderwood.h"
#include "core/buf.h"
#include "core/idmap.h"
#include "core/metrics.h"
#include "core/strmap.h"
#include "gateway.h"
#include "httpreq.h"
#include "outq.h"
#include "wsframe.h"

#include <libwebsockets.h>
#include <stdatomic.h>

struct ev_loop;
struct cw_engine;
struct cw_workers;
struct cw_ratelimit;
struct cw_update;
struct cw_outcome_batch;
struct cw_conn;

/* An entry of the id map: a WebSocket connection or a pending HTTP request. */
enum cw_endpoint_kind { CW_EP_CONN = 1, CW_EP_HTTP };

/* A valid session, as the gateway knows it from the log (session-started/-ended). */
struct cw_session {
    char session_uuid[CW_UUID_LEN + 1]; /* the key of gw.sessions */
    char user_uuid[CW_UUID_LEN + 1];
};

/* The connections of one user: the key of gw.users is user_uuid. */
struct cw_user {
    char user_uuid[CW_UUID_LEN + 1];
    struct cw_conn *conns; /* linked through conn->user_next */
};

/* A command acked and queued but not yet committed: a resend is answered from here. */
struct cw_inflight {
    char *key; /* user \n client_id \n seq: the key of gw.inflight */
    char command_uuid[CW_UUID_LEN + 1];
    uint64_t also[4]; /* further connections that resent it; 0 = none */
};

struct cw_gw {
    const struct cw_gateway_config *cfg;
    struct cw_engine *engine;
    const struct cw_domain *domain;
    struct cw_metrics *metrics;
    struct lws_context *ctx;
    struct ev_loop *loop; /* the libev loop lws and listen.c run on */
    struct cw_workers *workers;
    struct cw_ratelimit *login_limit;
    struct cw_idmap endpoints; /* id -> endpoint (conn or http), for results that come back */
    struct cw_strmap users;    /* user_uuid -> struct cw_user */
    struct cw_strmap sessions; /* session_uuid -> struct cw_session */
    struct cw_strmap inflight; /* see struct cw_inflight */
    struct cw_conn *conns;     /* every open connection, through conn->all_next */
    uint64_t next_id;
    size_t out_total;                    /* unsent bytes over all connections */
    bool intake_paused;                  /* no connection's messages are read */
    lws_sorted_usec_list_t intake_check; /* while paused: is the store stuck meanwhile? */
    bool deferring;        /* output is written at the end of this work (a read, a batch) */
    struct cw_conn *dirty; /* connections with deferred output */
    int64_t last_position; /* highest event position routed so far */
    bool tls;
    bool stopping; /* no new connections or commands */
    bool draining; /* the engine drain thread runs */
    atomic_bool drained;
    char origin[300]; /* our own origin, "http://HOST:PORT" */
    char *login_html, *console_html;
    size_t login_len, console_len;
    char dummy_hash[128]; /* verified against for unknown emails: equal time, equal answer */
    struct cw_buf out;    /* scratch for frames and responses */
    lws_sorted_usec_list_t sweep; /* the timer of cw_ws_sweep */
    lws_usec_t sweep_every;
};

extern struct cw_gw *cw_gw; /* the one gateway of the process */

/* ------------------------------------------------------------------ HTTP */

/* What one request sets: all of it is cleared when the next request on the connection starts. */
struct cw_http_request {
    int method;     /* CW_M_* */
    bool head_only; /* HEAD: answered as GET would be, without the body */
    char method_name[16];
    char path[128];
    int64_t started_us;
    size_t body_len;
    bool close_after; /* the connection ends once the answer is out */
    bool form;        /* login by form (redirects) rather than JSON */
    /* the response */
    int status;
    size_t resp_body_len;
    char extra_headers[512]; /* complete "Name: value\r\n" lines */
};

struct cw_http {
    int kind;    /* CW_EP_HTTP */
    uint64_t id; /* of the request being answered; 0 between requests */
    struct lws *wsi;
    char remote[64];
    struct cw_buf in; /* bytes received and not yet taken by a request */
    /* the request being read or answered */
    struct cw_http_request cur;
    struct cw_httpreq head; /* points into head_buf */
    struct cw_buf head_buf;
    bool have_head;
    bool head_clock; /* the head has begun: --header-timeout runs */
    struct cw_buf body;
    bool busy;          /* read whole: its answer is being prepared or written */
    bool sending;       /* the answer is with lws, which may still hold part of it */
    bool reading;       /* next_request() runs: it goes on to pipelined requests itself */
    bool paused;        /* input is not read while busy */
    bool lingering;     /* it is ending: our side is shut, input is dropped */
    struct cw_buf resp; /* LWS_PRE bytes, then head and body as sent */
};

/* A new connection: HTTP until it upgrades. */
int cw_http_on_open(struct lws *wsi, void **slot);
/* Bytes from the client. An upgrade replaces *slot with the WebSocket connection. */
int cw_http_on_data(struct cw_http *req, const char *in, size_t len, void **slot);
int cw_http_on_writeable(struct cw_http *req, void **slot);
void cw_http_on_closed(struct cw_http *req);
/* A logout waiting for its end-session command: the outcome arrived. */
void cw_http_session_committed(uint64_t id, bool ok);

enum { CW_M_OTHER, CW_M_GET, CW_M_POST, CW_M_HEAD };

/* Answers req (body copied; one write) with the extra headers added so far. */
int cw_http_respond(struct cw_http *req, int status, const char *content_type, const char *body,
                    size_t len);
/* {"error":{"code":CODE,"message":MESSAGE}} */
int cw_http_respond_error(struct cw_http *req, int status, const char *code, const char *message);
void cw_http_add_header(struct cw_http *req, const char *name, const char *value);

/* routes.c: answers a whole request (head and body read) by its path. */
void cw_routes_dispatch(struct cw_http *req);
/* The session of the request's cw_session cookie, or NULL. */
struct cw_session *cw_http_session(const struct cw_http *req);
/* Same-origin, or an allowed one, or no Origin at all (not a browser). */
bool cw_http_origin_allowed(const struct cw_http *req);

/* Ends a connection politely: no more output, input dropped until the peer closes. */
void cw_gw_linger(struct lws *wsi);

/* ------------------------------------------------------------- WebSocket */

struct cw_pending_cmd;

struct cw_conn {
    int kind; /* CW_EP_CONN */
    uint64_t id;
    struct lws *wsi;
    char user_uuid[CW_UUID_LEN + 1];
    char session_uuid[CW_UUID_LEN + 1];
    struct cw_conn *user_next; /* in the user's list */
    struct cw_conn *all_next, **all_prev;
    /* receive */
    struct cw_wsdec dec;
    struct cw_buf rx;
    size_t rx_total; /* bytes of the message being received, kept or not */
    bool rx_too_large;
    /* commands waiting for a worker (prepare, idempotency look-up), in order */
    struct cw_pending_cmd *pipe, **pipe_tail;
    size_t pipe_len;
    bool job_out;
    struct cw_strmap seqs; /* client_id -> highest seq known to be checked (int64 in a box) */
    /* output */
    struct cw_outq out;
    bool reading; /* lws reads this connection (flow control) */
    bool choked;  /* the last write was not taken whole */
    bool dirty;   /* in gw.dirty: has frames from the deferred work */
    struct cw_conn *dirty_next;
    /* resume: a catch-up read from the log in chunks, live updates dropped meanwhile */
    bool resuming;
    bool resume_waiting; /* the next chunk waits for the output to drain */
    int64_t resume_next; /* the catch-up goes on after this position */
    int64_t live_from;   /* last routed position when the connection opened */
    int64_t last_sent;   /* highest position sent live */
    /* closing */
    int close_code;   /* our close frame is queued (or sent) with this code */
    bool close_sent;  /* it has been written: waiting for the peer's answer */
    bool peer_closed; /* the peer's close frame came: nothing after it is read */
    bool failed;      /* a framing error: the stream cannot be read on */
    bool ended;       /* both close frames are through: the socket is lingering */
    char close_reason[64];
    /* liveness (cw_ws_sweep), on the monotonic clock */
    int64_t last_rx_us;   /* when bytes last came from the peer */
    int64_t ping_sent_us; /* our unanswered ping went out then; 0 when none */
};

int cw_ws_on_established(struct lws *wsi, void **slot, struct cw_session *session);
/* Bytes from the client (unmasked in place). */
int cw_ws_on_data(struct cw_conn *c, unsigned char *in, size_t len);
int cw_ws_on_writeable(struct cw_conn *c);
void cw_ws_on_closed(struct cw_conn *c);
/* Queues one owned frame text (copied) for c. */
void cw_ws_send_text(struct cw_conn *c, const char *text, size_t len);
/* Queues an update for c (takes a reference); a live one is dropped while c is resuming, since
 * the catch-up reads it from the log. */
void cw_ws_send_update(struct cw_conn *c, struct cw_update *u, bool live);
/* Closes c with code once its queued output is written. */
void cw_ws_close(struct cw_conn *c, int code, const char *reason);
/* The command pipeline may go on: a worker finished for c, or the queue has room. */
void cw_ws_pump(struct cw_conn *c);
/*
 * Output queued between these two (routing a bus batch, reading a client's
 * messages) is written at the end, one write per connection, without a
 * round through poll first.
 */
void cw_ws_defer_begin(void);
void cw_ws_defer_end(void);
/* Pauses or resumes reading commands on every connection, by queue and output load. */
void cw_ws_intake(void);
/*
 * Pings every connection silent for --ws-ping-interval and closes (1001)
 * every one still silent --ws-pong-timeout after its ping. Called by a
 * timer every so often (server.c): one pass over the connections costs less
 * than a timer each, and nothing is done per message but noting the time.
 */
void cw_ws_sweep(void);

/* ------------------------------------------------------------------ hub */

/* Routes every outcome batch waiting on the bus. */
void cw_hub_drain_bus(void);
/*
 * Adds an open session to the table (a login whose start-session command
 * is queued). A rejected start-session ends it again (route_outcome).
 */
void cw_hub_session_open(const char *session_uuid, const char *user_uuid);
/* Loads the open sessions from the store at start. */
int cw_hub_load_sessions(struct cw_db *db, struct cw_error *err);
void cw_hub_add_conn(struct cw_conn *c);
void cw_hub_remove_conn(struct cw_conn *c);
struct cw_inflight *cw_hub_inflight_find(const char *user, const char *client_id, int64_t seq);
void cw_hub_inflight_add(const char *user, const char *client_id, int64_t seq,
                         const char *command_uuid);
void cw_hub_release(void);

/* A new id for an endpoint. */
static inline uint64_t cw_gw_next_id(void)
{
    return ++cw_gw->next_id;
}

#endif
