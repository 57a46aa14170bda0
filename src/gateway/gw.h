/*
 * gw.h - what the gateway's files share: the state shared by every gateway
 * thread, the state of one thread, the HTTP request and WebSocket
 * connection records, and the functions each file offers the others.
 *
 * Data flows one way, top to bottom; a file calls only files below it:
 *
 *   server.c  the N loop threads: lws contexts (raw sockets), the callback,
 *             the hand-off of accepted sockets, wake-ups, shutdown
 *   listen.c  the listening socket (thread 0 accepts for every thread)
 *   http.c    HTTP/1.1 connections: reading requests, keep-alive, the
 *             WebSocket handshake; whole requests go to routes.c
 *   routes.c  the routes: login/logout, /query, pages, /health, /metrics
 *   hub.c     outcomes from the bus to this thread's connections: audience,
 *             the in-flight table, session events
 *   acks.c    command replies in command order while JetStream answers
 *   ws.c      WebSocket connections: receive, command pipeline, output
 *   respond.c the HTTP response writer (routes.c and http.c both use it)
 *   sessions.c the open sessions (shared by every thread), cookies, Origin
 *   httpreq.c, wsframe.c, wire.c, outq.c: pure parsers, codecs and queues
 *
 * Thread rule: everything in struct cw_gw and every lws object belongs to
 * the thread that runs that loop (cw_gw is thread-local). struct cw_gws is
 * shared: set before the threads start and read-only after, except fields
 * that name their lock.
 */
#ifndef CW_GW_H
#define CW_GW_H

#include "calderwood.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/idmap.h"
#include "core/metrics.h"
#include "core/strmap.h"
#include "gateway.h"
#include "httpreq.h"
#include "outq.h"
#include "wsframe.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>

struct ev_loop;
struct cw_engine;
struct cw_workers;
struct cw_ratelimit;
struct cw_update;
struct cw_outcome_batch;
struct cw_bus_reader;
struct cw_conn;
struct cw_http;
struct cw_envelope;
struct cw_ack_wait;

/* Gateway threads at most (a bit each in the in-flight table; the bus's reader limit). */
#define CW_GW_MAX_THREADS 64

/* An entry of the id map: a WebSocket connection or a pending HTTP request. */
enum cw_endpoint_kind { CW_EP_CONN = 1, CW_EP_HTTP };

/* A valid session, as the gateway knows it from the log (session-started/-ended). */
struct cw_session {
    char session_uuid[CW_UUID_LEN + 1]; /* the key of the session table */
    char user_uuid[CW_UUID_LEN + 1];
};

/* The connections of one user on one thread: the key of gw.users is user_uuid. */
struct cw_user {
    char user_uuid[CW_UUID_LEN + 1];
    struct cw_conn *conns; /* linked through conn->user_next */
};

/* What every gateway thread shares. */
struct cw_gws {
    const struct cw_gateway_config *cfg;
    struct cw_engine *engine;
    const struct cw_domain *domain;
    struct cw_metrics *metrics;
    pthread_mutex_t limit_lock;
    struct cw_ratelimit *login_limit; /* {limit_lock} */
    bool tls;
    char origin[300]; /* our own origin, "http://HOST:PORT" */
    char *login_html, *console_html;
    size_t login_len, console_len;
    char dummy_hash[128]; /* verified against for unknown emails: equal time, equal answer */
    int n_threads;
    struct cw_gw *threads[CW_GW_MAX_THREADS];
    atomic_uint next_thread; /* round robin among equally loaded threads */
    atomic_bool draining;    /* the engine drain thread runs (or ran) */
    bool drain_joinable;     /* drain_thread was started (by the first thread to stop) */
    pthread_t drain_thread;  /* joined by thread 0 after the other gateway threads */
    atomic_bool drained;     /* and has finished */
};

extern struct cw_gws *cw_gws;

/* Accepted sockets waiting for their thread: thread 0 accepts, the owner adopts. */
#define CW_GW_INBOX 1024

/* Slots of a thread's user presence hash (a power of two). */
#define CW_GW_USER_SLOTS 1024

/* The presence slot of a user: a hash of the UUID. */
static inline unsigned cw_gw_user_slot(const char *user_uuid)
{
    return (unsigned)(cw_hash_adds(CW_HASH_INIT, user_uuid) & (CW_GW_USER_SLOTS - 1));
}

/* One gateway thread: its loop, its connections, and everything they need. */
struct cw_gw {
    int index; /* 0 .. n_threads-1; thread 0 also accepts */
    pthread_t thread;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct ev_loop *loop; /* the libev loop lws runs on */
    struct cw_workers *workers;
    struct cw_bus_reader *bus;
    struct cw_idmap endpoints; /* id -> endpoint (conn or http), for results that come back */
    struct cw_strmap users;    /* user_uuid -> struct cw_user: this thread's connections */
    struct cw_conn *conns;     /* every open connection of this thread, through conn->all_next */
    uint64_t next_id;
    size_t out_total;                    /* unsent bytes over this thread's connections */
    bool intake_paused;                  /* no connection's messages are read */
    lws_sorted_usec_list_t intake_check; /* while paused: is the store stuck meanwhile? */
    bool deferring;                      /* output is written at the end of this loop turn */
    struct cw_conn *dirty;               /* connections with deferred output */
    int64_t last_position;               /* highest event position routed so far by this thread */
    bool stopping;                       /* no new connections or commands */
    bool adopted;                        /* the socket being adopted was taken by http.c */
    struct cw_buf out;                   /* scratch for frames and responses */
    lws_sorted_usec_list_t sweep;        /* the timer of cw_ws_sweep */
    lws_usec_t sweep_every;
    /* ws.c's free list of pending-command records, and how many it holds */
    struct cw_pending_cmd *pending_spare;
    size_t pending_spares;
    /* shared with the accepting thread and /metrics */
    pthread_mutex_t inbox_lock;
    int inbox[CW_GW_INBOX]; /* {inbox_lock} sockets handed over, not yet adopted */
    size_t inbox_len;       /* {inbox_lock} */
    atomic_int load;        /* sockets open or handed over: the balance of the hand-off */
    atomic_int ws_conns;    /* open WebSocket connections (/metrics; the bus filter) */
    /*
     * This thread's WebSocket connections by the presence slot of their
     * user, read by the bus filter (hub.c) on the publisher's thread: a
     * batch for users whose slots are all 0 here, and not for everyone, does
     * not wake this thread. A count per slot, so collisions only cost a
     * wake-up.
     */
    atomic_uint user_slots[CW_GW_USER_SLOTS];
    struct cw_thread_metrics stats; /* written by this thread alone; read by /metrics */
    /* shared with the queue's threads: answered asynchronous publishes (acks.c) */
    pthread_mutex_t acks_lock;
    struct cw_ack_wait *answered; /* {acks_lock} */
};

extern _Thread_local struct cw_gw *cw_gw; /* the thread's own gateway; NULL off the loops */

/* A new id for an endpoint, unique over every thread (the low bits are the thread's index). */
static inline uint64_t cw_gw_next_id(void)
{
    return (++cw_gw->next_id << 6) | (uint64_t)cw_gw->index;
}

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

/* http.c. A new connection: HTTP until it upgrades. */
int cw_http_on_open(struct lws *wsi, void **slot);
/* Bytes from the client. An upgrade replaces *slot with the WebSocket connection. */
int cw_http_on_data(struct cw_http *req, const char *in, size_t len, void **slot);
/* Writable: an answer written, or one given from a worker's result, is finished here. */
int cw_http_on_writeable(struct cw_http *req, void **slot);
void cw_http_on_closed(struct cw_http *req);

enum { CW_M_OTHER, CW_M_GET, CW_M_POST, CW_M_HEAD };

/* routes.c: answers a whole request (head and body read) by its path, now or later. */
void cw_routes_dispatch(struct cw_http *req);
/* A logout waiting for its end-session command: the outcome arrived (hub.c). */
void cw_routes_session_committed(uint64_t id, bool ok);

/*
 * respond.c: answers req (body copied; one write) with the extra headers
 * added so far. The request counts as answered once lws has written it all:
 * http.c finishes it then (at once after a dispatch, or in the writable
 * callback this asks for when the answer comes later).
 */
int cw_respond(struct cw_http *req, int status, const char *content_type, const char *body,
               size_t len);
/* {"error":{"code":CODE,"message":MESSAGE}} */
int cw_respond_error(struct cw_http *req, int status, const char *code, const char *message);
void cw_respond_header(struct cw_http *req, const char *name, const char *value);
/* The reason phrase of an HTTP status. */
const char *cw_respond_reason(int status);
/* Ends a connection politely: no more output, input dropped until the peer closes. */
void cw_linger(struct lws *wsi);

/*
 * sessions.c: the table of open sessions, one for every thread, under its
 * own lock. Copies come out; no pointer into the table does.
 */
void cw_sessions_init(void);
void cw_sessions_release(void);
/* Adds an open session (a login whose start-session command is queued; a load at start). */
void cw_sessions_open(const char *session_uuid, const char *user_uuid);
/* Removes it; false when it was not there. */
bool cw_sessions_end(const char *session_uuid);
/* Copies the session out; false when it is not open. */
bool cw_sessions_get(const char *session_uuid, struct cw_session *out);
/*
 * Applies a session event at position, once over every thread: the first
 * thread to route it changes the table, later ones change nothing (so an
 * older start never comes back after its end). True for the thread that
 * applied it.
 */
bool cw_sessions_apply(int64_t position, bool started, const char *session_uuid,
                       const char *user_uuid);
/* Sets the position from which session events apply (the log's last one at start). */
void cw_sessions_start_at(int64_t position);
/* Loads the open sessions from the store at start. */
int cw_sessions_load(struct cw_db *db, struct cw_error *err);
/* The session of the request's cw_session cookie (copied into out), or false. */
bool cw_request_session(const struct cw_http *req, struct cw_session *out);
/* Same-origin, or an allowed one, or no Origin at all (not a browser). */
bool cw_request_origin_allowed(const struct cw_http *req);

/* ------------------------------------------------------------- WebSocket */

struct cw_pending_cmd;

struct cw_conn {
    int kind; /* CW_EP_CONN */
    uint64_t id;
    struct lws *wsi;
    char user_uuid[CW_UUID_LEN + 1];
    char session_uuid[CW_UUID_LEN + 1];
    struct cw_conn *user_next, **user_prev; /* in the user's list */
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
    /* command replies in command order, some waiting for JetStream (acks.c) */
    struct cw_ack_wait *acks, **acks_tail;
    /* output */
    struct cw_outq out;
    bool reading; /* lws reads this connection (flow control) */
    bool choked;  /* the last write was not taken whole */
    bool dirty;   /* in gw.dirty: has frames from the deferred work */
    struct cw_conn *dirty_next;
    /* output over --max-output since then (monotonic); 0 when under (the slow-reader grace) */
    int64_t over_since_us;
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
/* ["resume", after] from c, or /ws?after= at open: the catch-up, then ["resumed", N]. */
void cw_ws_resume(struct cw_conn *c, int64_t after);
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
 * every one still silent --ws-pong-timeout after its ping, and (1008) every
 * slow reader whose --slow-reader-grace ran out with nothing more queued. Called by a
 * timer every so often (server.c): one pass over the connections costs less
 * than a timer each, and nothing is done per message but noting the time.
 */
void cw_ws_sweep(void);

/* The connections of user on this thread, linked through user_next, or NULL. */
struct cw_conn *cw_ws_user_conns(const char *user_uuid);
/* Frees this thread's user index (its connections are gone). */
void cw_ws_release(void);

/* ------------------------------------------------------------------ acks */

/*
 * acks.c: a connection's command replies (acks, errors) in command order
 * while some wait for JetStream's answer (distributed mode).
 */
/* Sends frame (a reply to one of c's commands) now, or after the replies still waiting. */
void cw_acks_reply(struct cw_conn *c, const char *frame, size_t len);
/*
 * Publishes env without waiting (cw_engine_submit_async); its ack (or
 * `overloaded`) goes out once JetStream answered and every earlier reply
 * went. in_flight: the command is in the in-flight table, and leaves it if
 * the publish fails. On an error the envelope stays the caller's and
 * nothing is queued for c.
 */
int cw_acks_submit(struct cw_conn *c, struct cw_envelope *env, const char *client_id, int64_t seq,
                   const char *uuid, bool duplicate, bool in_flight);
/*
 * Publishes env without waiting, for an HTTP request: then(arg, rc) runs on
 * this thread's loop once JetStream answered (rc as cw_queue_put_cb's), and
 * owns arg (malloc'd; freed with free() should the thread end first). On an
 * error env and arg stay the caller's and then never runs.
 */
int cw_acks_publish(struct cw_envelope *env, void (*then)(void *arg, int rc), void *arg);
/* On the loop: handles the answers that came for this thread. */
void cw_acks_drain(void);
/* c is closing: its waiting replies are freed when answered. */
void cw_acks_closed(struct cw_conn *c);
/* At the thread's teardown. */
void cw_acks_release(struct cw_gw *gw);

/* ------------------------------------------------------------- in flight */

/*
 * inflight.c: commands acked and queued but not yet committed, one table
 * for every thread under its own lock, so a resend on any thread is acked
 * as the duplicate it is and hears the outcome. An entry goes when its
 * outcome is published (cw_inflight_committed, from the bus filter).
 */
void cw_inflight_init(void);
void cw_inflight_release(void);
/*
 * Before the command is queued (so no thread can route its outcome first).
 * False when that command is in the table already (the entry there stays).
 */
bool cw_inflight_add(const char *user, const char *client_id, int64_t seq,
                     const char *command_uuid);
/* The command could not be queued after all. */
void cw_inflight_drop(const char *user, const char *client_id, int64_t seq);
/*
 * A resend from conn: when the command is in flight (its outcome not yet
 * published), conn will hear it too; its UUID goes to uuid_out.
 */
bool cw_inflight_join(const char *user, const char *client_id, int64_t seq, uint64_t conn,
                      char *uuid_out);
/*
 * b is being published: the entries of its commands go, and the ids of the
 * connections that resent each one (up to CW_INFLIGHT_ALSO) go into its
 * outcome's resent_by. One lock for the batch. Publisher's thread.
 */
#define CW_INFLIGHT_ALSO 4 /* = CW_OUTCOME_RESENT_BY */
void cw_inflight_committed(struct cw_outcome_batch *b);

/* ------------------------------------------------------------------ hub */

/* Routes every outcome batch waiting on the bus for this thread. */
void cw_hub_drain_bus(void);
/*
 * The bus filter (arg: the struct cw_gws): the gateway threads a batch
 * concerns, a bit per thread index. Publisher's thread, bus locked.
 */
uint64_t cw_hub_filter(void *arg, struct cw_outcome_batch *b);
/*
 * Where live routing starts for a connection this thread has just put in
 * its user index: every batch published after this is delivered to it,
 * every one before is at or below it.
 */
int64_t cw_hub_live_from(void);

#endif
