/*
 * ws.c - WebSocket connections: messages in, frames out.
 *
 * In: wsframe.c decodes the frames; a message is assembled from its pieces
 * (up to the soft limit; beyond it the message is refused but the
 * connection stays; beyond the hard limit it is closed with 1009), checked
 * as UTF-8, decoded by wire.c, and a command
 * joins the connection's pipeline. The pipeline keeps each connection's
 * commands in order while one of them waits for a worker (a slow prepare,
 * or the idempotency look-up a resent command needs); the rest go straight
 * to the command queue and are acked.
 *
 * Out: each connection has a queue of frames (outq.c: shared update frames
 * by reference, small owned ones for acks and errors). What one turn of the
 * thread's loop queued (its reads, its routed batches) is written at its
 * end, up to 128 frames per writev straight from where they lie, so a busy
 * connection costs one system call per turn, not one per message. A
 * connection whose unsent output passes the bound while its socket takes
 * nothing more, and stays over it for --slow-reader-grace, is closed with
 * 1008.
 *
 * Alive: any bytes from the peer count. One that says nothing for
 * --ws-ping-interval gets a ping control frame, which every WebSocket client
 * answers by itself; silent --ws-pong-timeout after that, it is closed
 * with 1001 and cut without waiting for an answer it would not send.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/registry.h"
#include "core/validate.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/update.h"
#include "gw.h"
#include "query/workers.h"
#include "store/store.h"
#include "core/utf8.h"
#include "outq.h"
#include "wire.h"

#include <errno.h>
#include <sys/uio.h>

#include <stdlib.h>
#include <string.h>

#define WRITE_CHUNK     (64 * 1024) /* bytes described per write, about */
#define WRITE_IOVS      256         /* iovecs per write: 128 frames */
#define WRITES_PER_TURN 16          /* writes per writable callback while the socket takes them */
#define PIPE_PAUSE      256         /* commands waiting in a pipeline before reading pauses */
#define MAX_CLIENT_IDS  1024        /* client ids remembered per connection */
#define RESUME_CHUNK    10000       /* events per catch-up job */
#define PENDING_SPARE   1024        /* pending-command records a thread keeps for reuse */

#define CLOSE_ACK_WAIT_S 5 /* after our close frame, how long the peer has to answer */

/* Records are reused through the thread's free list (cw_gw->pending_spare): one per command. */
struct cw_pending_cmd {
    struct cw_pending_cmd *next;
    const struct cw_command_def *def;
    int64_t seq;
    json_t *data, *meta;
    bool prepared, checked, found;
    char found_uuid[CW_UUID_LEN + 1];
    char client_id[CW_WIRE_CLIENT_ID_MAX + 1];
};

/* ---------------------------------------------------------------- output */

static void continue_resume(struct cw_conn *c);

#define RESUME_MIN_BYTES (64 * 1024) /* a catch-up chunk's frames, at least */

/*
 * A catch-up chunk's frames, about: a quarter of the bound, but never less
 * than 64 KiB, so that a small bound does not make a long catch-up a
 * thousand worker round trips. A chunk may thus be over the bound; the
 * slow-reader grace lets a reader that keeps up take it.
 */
static size_t resume_chunk_bytes(void)
{
    size_t quarter = cw_gws->cfg->max_output / 4;
    return quarter > RESUME_MIN_BYTES ? quarter : RESUME_MIN_BYTES;
}

/* The next chunk is read once the output is down to this: under the bound, so the grace restarts.
 */
static size_t resume_drain_bytes(void)
{
    size_t chunk = resume_chunk_bytes(), bound = cw_gws->cfg->max_output;
    return chunk < bound ? chunk : bound;
}

/* A long pipeline, or a paused intake, stops reading: TCP then holds the client back. */
static void set_reading(struct cw_conn *c)
{
    /* A client that does not take its answers sends no more questions meanwhile. */
    bool read = !cw_gw->intake_paused && c->pipe_len < PIPE_PAUSE &&
                c->out.bytes <= cw_gws->cfg->max_output / 2;
    if (read != c->reading) {
        c->reading = read;
        lws_rx_flow_control(c->wsi, read);
    }
}

/* The socket took less than we gave it last time: the reader is behind. */
static bool choked(struct cw_conn *c)
{
    return c->choked || lws_partial_buffered(c->wsi);
}

/*
 * A slow reader: drop what it has not taken and close it with 1008. The
 * close frame goes out as soon as the socket takes it; a reader that takes
 * nothing at all within the grace period is cut off without it.
 */
#define SLOW_CLOSE_GRACE_S 5

static void close_slow(struct cw_conn *c, int64_t now)
{
    long long over_ms = c->over_since_us ? (now - c->over_since_us) / 1000 : 0;
    cw_outq_drop_unstarted(&c->out);
    cw_count(cw_gws->metrics->connections_closed_slow);
    cw_warn("ws.slow_consumer", "conn=%llu user=%s over_ms=%lld", (unsigned long long)c->id,
            c->user_uuid, over_ms);
    cw_ws_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "output bound exceeded: read faster");
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, SLOW_CLOSE_GRACE_S);
}

/*
 * What marks a slow reader is a socket that takes no more while the output
 * stays over the bound, not the moment it passes it: one committed batch,
 * a catch-up chunk, or a reader descheduled on a busy machine can put a
 * reader that keeps up over it for a while. So the output must have stayed
 * over the bound for --slow-reader-grace (over_since_us is cleared each
 * time it drains under it). (A lagging gateway stops reading commands
 * instead: cw_ws_intake.)
 */
static bool too_slow(struct cw_conn *c, int64_t now)
{
    int64_t grace = (int64_t)cw_gws->cfg->slow_reader_grace_ms * 1000;
    return c->over_since_us && c->out.bytes > cw_gws->cfg->max_output && choked(c) &&
           now - c->over_since_us >= grace;
}

/* Output was queued: write it now, at the end of the current work, or when writable. */
static void queued(struct cw_conn *c)
{
    size_t bound = cw_gws->cfg->max_output;
    if (c->out.bytes > bound) {
        int64_t now = cw_mono_us();
        if (!c->over_since_us)
            c->over_since_us = now;
        /* Far past the bound, memory decides regardless of the grace. */
        if (c->out.bytes > 64 * bound || too_slow(c, now)) {
            close_slow(c, now);
            return;
        }
    }
    if (c->reading && c->out.bytes > bound / 2)
        set_reading(c);
    if (!cw_gw->deferring) {
        lws_callback_on_writable(c->wsi);
    } else if (!c->dirty) {
        /* Written once at the end of the loop turn (cw_ws_defer_end), not per message. */
        c->dirty = true;
        c->dirty_next = cw_gw->dirty;
        cw_gw->dirty = c;
    }
}

static void push_text(struct cw_conn *c, unsigned char op, const char *text, size_t len)
{
    if (c->close_code) /* closing: nothing more goes out */
        return;
    cw_outq_push_text(&c->out, op, text, len);
    queued(c);
}

void cw_ws_send_text(struct cw_conn *c, const char *text, size_t len)
{
    push_text(c, CW_WS_FIN_TEXT, text, len);
}

void cw_ws_send_update(struct cw_conn *c, struct cw_update *u, bool live)
{
    if (c->close_code || (live && c->resuming))
        return;
    if (live)
        c->last_sent = u->ev.position;
    cw_outq_push_update(&c->out, u);
    cw_count_own(cw_gw->stats.updates_sent, 1);
    queued(c);
}

/*
 * Our close frame goes out after what is already queued, through the same
 * path as everything else; then the connection reads on (discarding) until
 * the peer answers or CLOSE_ACK_WAIT_S pass. Closing the socket at once,
 * with the peer's data unread, would reset it and lose the close frame.
 */
void cw_ws_close(struct cw_conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    char payload[2 + sizeof(c->close_reason)];
    payload[0] = (char)(code >> 8);
    payload[1] = (char)(code & 0xff);
    size_t n = strlen(c->close_reason);
    memcpy(payload + 2, c->close_reason, n);
    cw_outq_push_text(&c->out, CW_WS_FIN_CLOSE, payload, 2 + n);
    c->close_code = code;
    lws_callback_on_writable(c->wsi);
}

/* Over TLS, lws encrypts: the frames are copied into one buffer for it. */
static ssize_t write_tls(struct cw_conn *c, const struct iovec *iov, size_t n)
{
    struct cw_buf *b = &cw_gw->out;
    cw_buf_reset(b);
    cw_buf_grow(b, LWS_PRE);
    b->len = LWS_PRE;
    for (size_t i = 0; i < n; i++)
        cw_buf_add(b, iov[i].iov_base, iov[i].iov_len);
    size_t len = b->len - LWS_PRE;
    /* lws keeps what the kernel did not take, and calls back only once it is gone. */
    if (lws_write(c->wsi, (unsigned char *)b->data + LWS_PRE, len, LWS_WRITE_RAW) < (int)len)
        return -1;
    return (ssize_t)len;
}

/* One write of the next frames, straight from where they are; *full when the socket took less. */
static int write_some(struct cw_conn *c, bool *full)
{
    struct iovec iov[WRITE_IOVS];
    cw_outq_hdr hdrs[WRITE_IOVS / 2];
    size_t n = cw_outq_gather(&c->out, iov, WRITE_IOVS, hdrs, WRITE_CHUNK), want = 0;
    for (size_t i = 0; i < n; i++)
        want += iov[i].iov_len;
    ssize_t w;
    if (cw_gws->tls) {
        w = write_tls(c, iov, n);
        *full = lws_partial_buffered(c->wsi);
    } else {
        w = writev(lws_get_socket_fd(c->wsi), iov, (int)n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            w = 0;
        *full = w >= 0 && (size_t)w < want;
    }
    if (w < 0)
        return -1;
    bool close_done = false;
    size_t frames = cw_outq_advance(&c->out, (size_t)w, &close_done);
    if (close_done)
        c->close_sent = true;
    cw_count_own(cw_gw->stats.bytes_out, (uint64_t)w);
    cw_count_own(cw_gw->stats.frames_out, frames);
    cw_count_own(cw_gw->stats.writes, 1);
    return 0;
}

/*
 * Both close frames are through (or the stream is broken and ours is out):
 * the socket ends. Only once lws holds nothing more of ours for it.
 */
static void maybe_end(struct cw_conn *c)
{
    if (c->ended || !c->close_sent || !(c->peer_closed || c->failed))
        return;
    if (lws_partial_buffered(c->wsi)) {
        lws_callback_on_writable(c->wsi);
        return;
    }
    c->ended = true;
    cw_linger(c->wsi);
}

/* Writes what c has queued while its socket takes it; the rest waits for writability. */
static int flush(struct cw_conn *c)
{
    bool was_sent = c->close_sent;
    /*
     * Nothing is written while lws still holds part of an earlier write (the
     * handshake, or over TLS), or the stream would be out of order.
     */
    bool full = lws_partial_buffered(c->wsi);
    for (int i = 0; c->out.len && !full && i < WRITES_PER_TURN; i++)
        if (write_some(c, &full))
            return -1;
    c->choked = full;
    if (c->out.bytes <= cw_gws->cfg->max_output)
        c->over_since_us = 0; /* it drained: a new grace when it next passes the bound */
    if (c->close_sent && !was_sent && !c->peer_closed && !c->failed)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, CLOSE_ACK_WAIT_S);
    maybe_end(c);
    if (c->out.len)
        lws_callback_on_writable(c->wsi);
    if (!c->reading)
        set_reading(c);
    if (c->resume_waiting && c->out.bytes <= resume_drain_bytes())
        continue_resume(c);
    return 0;
}

int cw_ws_on_writeable(struct cw_conn *c)
{
    int rc = flush(c);
    cw_ws_intake();
    return rc;
}

void cw_ws_defer_begin(void)
{
    cw_gw->deferring = true;
}

void cw_ws_defer_end(void)
{
    cw_gw->deferring = false;
    while (cw_gw->dirty) {
        struct cw_conn *c = cw_gw->dirty;
        cw_gw->dirty = c->dirty_next;
        c->dirty = false;
        if (flush(c)) /* a dead socket */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
}

/*
 * Overload waits in the kernel, not in the heap: while the command queue is
 * long or the output waiting everywhere is large, no connection's commands
 * are read, so clients' TCP windows fill and hold them back. Hysteresis
 * keeps this from flapping.
 *
 * Not while the store is stuck (a stalled commit, a full disk): then a long
 * queue says nothing about a client's pace, and a connection that is not
 * read answers no ping either. The queue fills to its bound instead, and
 * the commands past it are refused as overloaded. A paused intake is looked
 * at again every INTAKE_CHECK_US, as a stuck store sends no wake-up.
 */
#define INTAKE_PAUSE_BYTES  ((size_t)256 << 20)
#define INTAKE_RESUME_BYTES ((size_t)64 << 20)
#define INTAKE_CHECK_US     (50 * LWS_US_PER_MS)

static void on_intake_check(lws_sorted_usec_list_t *sul)
{
    cw_ws_intake();
}

void cw_ws_intake(void)
{
    size_t depth = cw_engine_queue_depth(cw_gws->engine);
    size_t cap = cw_engine_queue_capacity(cw_gws->engine);
    bool stuck = !cw_gws->draining && cw_engine_condition(cw_gws->engine) != CW_CONDITION_OK;
    bool long_queue = !stuck && depth && depth * 4 >= cap * 3;
    bool over = cw_gw->out_total > INTAKE_PAUSE_BYTES || long_queue;
    bool under = cw_gw->out_total < INTAKE_RESUME_BYTES && (stuck || depth * 2 <= cap);
    if (cw_gw->intake_paused ? under : over) {
        cw_gw->intake_paused = !cw_gw->intake_paused;
        cw_info("gateway.intake", "paused=%d queue=%zu output_bytes=%zu stuck=%d",
                cw_gw->intake_paused, depth, cw_gw->out_total, stuck);
        for (struct cw_conn *c = cw_gw->conns; c; c = c->all_next)
            set_reading(c);
    }
    if (cw_gw->intake_paused)
        lws_sul_schedule(cw_gw->ctx, 0, &cw_gw->intake_check, on_intake_check, INTAKE_CHECK_US);
}

/* ------------------------------------------------------------- replies */

static void send_buf(struct cw_conn *c)
{
    cw_ws_send_text(c, cw_gw->out.data, cw_gw->out.len);
}

static void send_error(struct cw_conn *c, const char *client_id, bool has_seq, int64_t seq,
                       const struct cw_error *err)
{
    cw_buf_reset(&cw_gw->out);
    cw_wire_error(&cw_gw->out, client_id, has_seq, seq, err);
    cw_acks_reply(c, cw_gw->out.data, cw_gw->out.len); /* after earlier commands' replies */
    cw_count(cw_gws->metrics->cmd_error);
}

static void send_code(struct cw_conn *c, const char *client_id, bool has_seq, int64_t seq, int rc,
                      const char *code, const char *message)
{
    struct cw_error err = {0};
    cw_error_set(&err, rc, code, "%s", message);
    send_error(c, client_id, has_seq, seq, &err);
}

static void send_ack(struct cw_conn *c, const char *client_id, int64_t seq, const char *uuid,
                     bool duplicate)
{
    cw_buf_reset(&cw_gw->out);
    cw_wire_ack(&cw_gw->out, client_id, seq, uuid, duplicate);
    cw_acks_reply(c, cw_gw->out.data, cw_gw->out.len);
    if (duplicate)
        cw_count(cw_gws->metrics->cmd_duplicate);
    else
        cw_count(cw_gws->metrics->cmd_acked);
}

/* ------------------------------------------------------------ pipeline */

/* A record from the thread's spares, or a new one; its fields are set by the caller. */
static struct cw_pending_cmd *new_pending(void)
{
    struct cw_pending_cmd *pc = cw_gw->pending_spare;
    if (!pc)
        return cw_xmalloc(sizeof(*pc));
    cw_gw->pending_spare = pc->next;
    cw_gw->pending_spares--;
    return pc;
}

/* Back to the spares, up to PENDING_SPARE of them: a burst does not stay allocated. */
static void free_pending(struct cw_pending_cmd *pc)
{
    json_decref(pc->data);
    json_decref(pc->meta);
    if (cw_gw->pending_spares >= PENDING_SPARE) {
        free(pc);
        return;
    }
    pc->next = cw_gw->pending_spare;
    cw_gw->pending_spare = pc;
    cw_gw->pending_spares++;
}

static void pop_pending(struct cw_conn *c)
{
    struct cw_pending_cmd *pc = c->pipe;
    c->pipe = pc->next;
    if (!c->pipe)
        c->pipe_tail = &c->pipe;
    c->pipe_len--;
    free_pending(pc);
}

static int64_t *known_seq(struct cw_conn *c, const char *client_id)
{
    return cw_strmap_get(&c->seqs, client_id);
}

static void raise_seq(struct cw_conn *c, const char *client_id, int64_t seq)
{
    int64_t *hw = known_seq(c, client_id);
    if (hw) {
        if (seq > *hw)
            *hw = seq;
        return;
    }
    if (c->seqs.len >= MAX_CLIENT_IDS)
        return; /* many client ids on one connection: each resend is looked up */
    /* The value lives after the key in one allocation, suitably aligned. */
    size_t klen = strlen(client_id) + 1, at = (klen + 7) & ~(size_t)7;
    char *key = cw_xmalloc(at + sizeof(int64_t));
    memcpy(key, client_id, klen);
    int64_t *v = (int64_t *)(key + at);
    *v = seq;
    cw_strmap_put(&c->seqs, key, v);
}

/* Queues a new command and acks it; overloaded when the queue is full. */
static void submit_new(struct cw_conn *c, struct cw_pending_cmd *pc)
{
    struct cw_envelope *env =
        cw_envelope_new(pc->def, c->user_uuid, pc->client_id, pc->seq, pc->data, pc->meta, c->id);
    pc->data = pc->meta = NULL; /* the envelope has them */
    char uuid[CW_UUID_LEN + 1];
    memcpy(uuid, env->cmd.uuid, sizeof(uuid));
    /* In the table before the queue: no thread can route its outcome before it is there. */
    bool added = cw_inflight_add(c->user_uuid, pc->client_id, pc->seq, uuid);
    bool async = cw_engine_async(cw_gws->engine);
    int rc = async ? cw_acks_submit(c, env, pc->client_id, pc->seq, uuid, false, added)
                   : cw_engine_submit(cw_gws->engine, env);
    if (rc) {
        if (added)
            cw_inflight_drop(c->user_uuid, pc->client_id, pc->seq);
        cw_envelope_free(env);
        cw_count(cw_gws->metrics->cmd_overloaded);
        send_code(c, pc->client_id, true, pc->seq, CW_ERR_OVERLOADED, "overloaded",
                  rc == CW_ERR_SHUTDOWN ? "the server is stopping; retry later"
                                        : "the command queue is full; retry later");
        return;
    }
    if (!async)
        send_ack(c, pc->client_id, pc->seq, uuid, false); /* else once JetStream has it */
    /* Even before that: should the publish fail, a resend is looked up, which is only slower. */
    raise_seq(c, pc->client_id, pc->seq);
}

/* A resend of a command the log already has: ack it as the duplicate it is. */
static void submit_known(struct cw_conn *c, struct cw_pending_cmd *pc)
{
    /* The processor answers it again from the log, with its updates or rejection. */
    struct cw_envelope *env =
        cw_envelope_new(pc->def, c->user_uuid, pc->client_id, pc->seq, pc->data, pc->meta, c->id);
    pc->data = pc->meta = NULL;
    bool async = cw_engine_async(cw_gws->engine);
    if (async ? cw_acks_submit(c, env, pc->client_id, pc->seq, pc->found_uuid, true, false)
              : cw_engine_submit(cw_gws->engine, env)) {
        cw_envelope_free(env);
        cw_count(cw_gws->metrics->cmd_overloaded);
        send_code(c, pc->client_id, true, pc->seq, CW_ERR_OVERLOADED, "overloaded",
                  "the command queue is full; retry later");
        return;
    }
    if (!async)
        send_ack(c, pc->client_id, pc->seq, pc->found_uuid, true);
}

struct cmd_job {
    struct cw_job job;
    uint64_t conn;
    struct cw_pending_cmd *pc; /* the head of the connection's pipeline when submitted */
    json_t *data;              /* a reference of its own: the connection may go away */
    const struct cw_command_def *def;
    char user_uuid[CW_UUID_LEN + 1];
    char client_id[CW_WIRE_CLIENT_ID_MAX + 1];
    int64_t seq;
    int rc;
    struct cw_error err;
    bool found;
    char found_uuid[CW_UUID_LEN + 1];
    int64_t max_seq;
};

static void run_prepare(struct cw_job *job, struct cw_db *db)
{
    struct cmd_job *j = (struct cmd_job *)job;
    cw_count(cw_gws->metrics->cmd_prepared);
    j->rc = j->def->prepare(j->data, &j->err);
}

static void run_lookup(struct cw_job *job, struct cw_db *db)
{
    struct cmd_job *j = (struct cmd_job *)job;
    struct cw_command_record rec;
    j->rc = cw_store_find_command(db, j->user_uuid, j->client_id, j->seq, &rec, &j->err);
    j->found = j->rc == CW_OK;
    if (j->found)
        memcpy(j->found_uuid, rec.uuid, sizeof(j->found_uuid));
    if (j->rc == CW_ERR_NOT_FOUND)
        j->rc = CW_OK;
    if (!j->rc)
        j->rc = cw_db_query_int(db, &j->max_seq, &j->err,
                                "SELECT COALESCE(MAX(client_seq), -1) FROM commands"
                                " WHERE user_uuid = ? AND client_id = ?",
                                "tt", j->user_uuid, j->client_id);
}

static void done_cmd_job(struct cw_job *job, bool cancelled)
{
    struct cmd_job *j = (struct cmd_job *)job;
    struct cw_conn *c = cw_idmap_get(&cw_gw->endpoints, j->conn);
    if (c && c->kind == CW_EP_CONN && c->pipe == j->pc) {
        struct cw_pending_cmd *pc = j->pc;
        c->job_out = false;
        if (cancelled || j->rc) {
            if (cancelled)
                cw_error_set(&j->err, CW_ERR_OVERLOADED, "overloaded", "the server is stopping");
            else if (j->job.run == run_lookup)
                cw_error_set(&j->err, CW_ERR_OVERLOADED, "overloaded",
                             "the command could not be checked; retry later");
            send_error(c, pc->client_id, true, pc->seq, &j->err);
            pop_pending(c);
        } else if (j->job.run == run_prepare) {
            pc->prepared = true;
        } else {
            pc->checked = true;
            pc->found = j->found;
            memcpy(pc->found_uuid, j->found_uuid, sizeof(pc->found_uuid));
            raise_seq(c, pc->client_id, j->max_seq);
        }
        cw_ws_pump(c);
    }
    json_decref(j->data);
    cw_error_release(&j->err);
    free(j);
}

/* Sends the head command to a worker; false (after answering) when the pool is full. */
static bool submit_job(struct cw_conn *c, struct cw_pending_cmd *pc,
                       void (*run)(struct cw_job *, struct cw_db *))
{
    struct cmd_job *j = cw_xcalloc(1, sizeof(*j));
    j->job.run = run;
    j->job.done = done_cmd_job;
    j->conn = c->id;
    j->pc = pc;
    j->data = json_incref(pc->data);
    j->def = pc->def;
    memcpy(j->user_uuid, c->user_uuid, sizeof(j->user_uuid));
    memcpy(j->client_id, pc->client_id, strlen(pc->client_id) + 1);
    j->seq = pc->seq;
    if (cw_workers_submit(cw_gw->workers, &j->job)) {
        json_decref(j->data);
        free(j);
        cw_count(cw_gws->metrics->cmd_overloaded);
        send_code(c, pc->client_id, true, pc->seq, CW_ERR_OVERLOADED, "overloaded",
                  "the server is busy; retry later");
        return false;
    }
    c->job_out = true;
    return true;
}

void cw_ws_pump(struct cw_conn *c)
{
    while (c->pipe && !c->job_out) {
        struct cw_pending_cmd *pc = c->pipe;
        char queued_uuid[CW_UUID_LEN + 1];
        if (cw_inflight_join(c->user_uuid, pc->client_id, pc->seq, c->id, queued_uuid)) {
            /* Still queued: the same command; its outcome goes here too. */
            send_ack(c, pc->client_id, pc->seq, queued_uuid, true);
            pop_pending(c);
            continue;
        }
        int64_t *hw = known_seq(c, pc->client_id);
        if (!pc->checked && !(hw && pc->seq > *hw)) {
            if (submit_job(c, pc, run_lookup))
                break;
            pop_pending(c);
            continue;
        }
        /*
         * Looked up before it is prepared: a resend the log already has is
         * answered from the log, so its prepare (a password hash, tens of
         * milliseconds of a worker) is not paid again for every resend that
         * clients send after a restart.
         */
        if (!pc->found && pc->def->prepare && !pc->prepared) {
            if (submit_job(c, pc, run_prepare))
                break;
            pop_pending(c);
            continue;
        }
        if (pc->found)
            submit_known(c, pc);
        else
            submit_new(c, pc);
        pop_pending(c);
    }
    set_reading(c);
}

static void on_cmd(struct cw_conn *c, struct cw_client_msg *m)
{
    struct cw_error err = {0};
    const struct cw_command_def *def = NULL;
    if (cw_gw->stopping) {
        send_code(c, m->client_id, true, m->client_seq, CW_ERR_OVERLOADED, "overloaded",
                  "the server is stopping; retry later");
        return;
    }
    int rc = cw_coerce_command(cw_gws->domain, m->name, m->data, false, &def, &err);
    if (rc) {
        send_error(c, m->client_id, true, m->client_seq, &err);
        cw_error_release(&err);
        return;
    }
    struct cw_pending_cmd *pc = new_pending();
    pc->next = NULL;
    pc->def = def;
    pc->seq = m->client_seq;
    pc->data = cw_wire_take_data(m);
    pc->meta = cw_wire_take_meta(m);
    pc->prepared = pc->checked = pc->found = false;
    /* The decoder bounds client_id by CW_WIRE_CLIENT_ID_MAX. */
    memcpy(pc->client_id, m->client_id, strlen(m->client_id) + 1);
    *c->pipe_tail = pc;
    c->pipe_tail = &pc->next;
    c->pipe_len++;
    cw_ws_pump(c);
}

/* -------------------------------------------------------------- resume */

/*
 * A catch-up is read in chunks, each in one read snapshot on a worker, and
 * the next chunk is read only once the connection's output has drained
 * below resume_drain_bytes() (under the bound), so a reader that takes each
 * chunk within --slow-reader-grace is never closed as a slow one. Live updates routed meanwhile are
 * not held: the catch-up goes on until a chunk ends at or past the last position the gateway has
 * routed, so everything routed while it ran is read from the log, and everything routed after it
 * comes live with a higher position. Events that went out live before the resume started
 * (live_from, last_sent] are skipped. Every position after the client's thus reaches it exactly
 * once, in order.
 */
struct resume_job {
    struct cw_job job;
    uint64_t conn;
    char user_uuid[CW_UUID_LEN + 1];
    int64_t after, skip_from, skip_to; /* positions in (skip_from, skip_to] went out live */
    int64_t reached;                   /* the log position this chunk covers */
    size_t bytes;                      /* of the chunk's frames */
    bool more;                         /* the snapshot has more after reached */
    struct cw_update **updates;
    size_t n, cap;
    int rc;
};

static int collect(const struct cw_event *ev, void *arg)
{
    struct resume_job *r = arg;
    if (r->n == RESUME_CHUNK || r->bytes >= resume_chunk_bytes()) {
        r->more = true;
        return CW_ERR_TOO_LARGE; /* stop here; another job goes on */
    }
    r->reached = ev->position;
    if (ev->position > r->skip_from && ev->position <= r->skip_to)
        return CW_OK;
    const struct cw_event_def *def = cw_domain_event(cw_gws->domain, ev->name);
    if (!def || !cw_domain_audience_allows(def, ev, r->user_uuid))
        return CW_OK;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->updates = cw_xrealloc(r->updates, r->cap * sizeof(*r->updates));
    }
    r->updates[r->n] = cw_update_new(cw_gws->domain, ev, NULL, NULL);
    r->bytes += r->updates[r->n++]->frame_len;
    return CW_OK;
}

static void run_resume(struct cw_job *job, struct cw_db *db)
{
    struct resume_job *r = (struct resume_job *)job;
    int64_t last = 0;
    r->rc = cw_db_snapshot_begin(db, NULL);
    if (!r->rc)
        r->rc = cw_store_last_position(db, &last, NULL);
    r->reached = r->after < last ? r->after : last;
    if (!r->rc && r->after < last) {
        r->rc = cw_db_scan_events(db, r->after, last, NULL, NULL, collect, r, NULL);
        if (r->rc == CW_ERR_TOO_LARGE)
            r->rc = CW_OK;
        else if (!r->rc)
            r->reached = last;
    }
    cw_db_snapshot_end(db);
}

static bool start_resume(struct cw_conn *c, int64_t after);

/* The catch-up is complete: say where it ended; live updates go on from there. */
static void finish_resume(struct cw_conn *c, int64_t reached)
{
    if (c->last_sent > reached)
        reached = c->last_sent;
    cw_buf_reset(&cw_gw->out);
    cw_wire_resumed(&cw_gw->out, reached);
    send_buf(c);
    c->resuming = false;
    c->last_sent = reached;
}

static void fail_resume(struct cw_conn *c, const char *why)
{
    c->resuming = c->resume_waiting = false;
    send_code(c, NULL, false, 0, CW_ERR_OVERLOADED, "overloaded", why);
}

/* Reads the next chunk now, or once the output has drained. */
static void continue_resume(struct cw_conn *c)
{
    c->resume_waiting = c->out.bytes > resume_drain_bytes();
    if (!c->resume_waiting && !start_resume(c, c->resume_next))
        fail_resume(c, "the server is busy; resume again from the last position received");
}

static void done_resume(struct cw_job *job, bool cancelled)
{
    struct resume_job *r = (struct resume_job *)job;
    struct cw_conn *c = cw_idmap_get(&cw_gw->endpoints, r->conn);
    if (c && c->kind == CW_EP_CONN && !cancelled && !r->rc) {
        for (size_t i = 0; i < r->n; i++)
            cw_ws_send_update(c, r->updates[i], false);
        c->resume_next = r->reached;
        if (r->more || r->reached < cw_gw->last_position)
            continue_resume(c);
        else
            finish_resume(c, r->reached);
    } else if (c && c->kind == CW_EP_CONN) {
        fail_resume(c, "the catch-up could not be read; resume again from the last position "
                       "received");
    }
    for (size_t i = 0; i < r->n; i++)
        cw_update_unref(r->updates[i]);
    free(r->updates);
    free(r);
}

static bool start_resume(struct cw_conn *c, int64_t after)
{
    struct resume_job *r = cw_xcalloc(1, sizeof(*r));
    r->job.run = run_resume;
    r->job.done = done_resume;
    r->conn = c->id;
    memcpy(r->user_uuid, c->user_uuid, sizeof(r->user_uuid));
    r->after = after;
    r->skip_from = c->live_from;
    r->skip_to = c->last_sent;
    if (cw_workers_submit(cw_gw->workers, &r->job)) {
        free(r);
        return false;
    }
    c->resuming = true;
    return true;
}

void cw_ws_resume(struct cw_conn *c, int64_t after)
{
    if (c->resuming) {
        send_code(c, NULL, false, 0, CW_ERR_MALFORMED, "malformed",
                  "a resume is already running on this connection");
        return;
    }
    if (!start_resume(c, after))
        send_code(c, NULL, false, 0, CW_ERR_OVERLOADED, "overloaded",
                  "the server is busy; resume again later");
}

/* ------------------------------------------------------------- receive */

static void on_message(struct cw_conn *c, const char *text, size_t len)
{
    struct cw_client_msg m;
    struct cw_error err = {0};
    cw_count(cw_gws->metrics->messages_in);
    cw_count_n(cw_gws->metrics->bytes_in, len);
    if (cw_wire_parse(text, len, &m, &err)) {
        send_error(c, m.client_id, m.has_seq, m.client_seq, &err);
        cw_error_release(&err);
        cw_wire_msg_release(&m);
        return;
    }
    switch (m.type) {
    case CW_MSG_PING:
        cw_buf_reset(&cw_gw->out);
        cw_wire_pong(&cw_gw->out, m.ping);
        send_buf(c);
        break;
    case CW_MSG_RESUME:
        cw_ws_resume(c, m.after_position);
        break;
    case CW_MSG_CMD:
        on_cmd(c, &m);
        break;
    }
    cw_wire_msg_release(&m);
}

/* A framing error: the stream cannot be read on, so the connection ends after the close frame. */
static int fail(struct cw_conn *c, int code, const char *reason)
{
    c->failed = true;
    cw_ws_close(c, code, reason);
    return 1;
}

/* A piece of a text message: kept up to the soft limit, counted up to the hard one. */
static int on_data(void *arg, bool binary, const unsigned char *p, size_t n, bool last)
{
    struct cw_conn *c = arg;
    if (c->close_code)
        return 0; /* closing: read on, and discard, until the peer's close frame */
    if (binary) {
        cw_ws_close(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                    "binary frames are not part of the protocol");
        return 0;
    }
    c->rx_total += n;
    if (c->rx_total > cw_gws->cfg->hard_max_message) {
        cw_buf_release(&c->rx);
        cw_ws_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message over the hard size limit");
        return 0;
    }
    if (!c->rx_too_large && c->rx_total > cw_gws->cfg->max_message) {
        c->rx_too_large = true; /* counted from here on, not kept */
        cw_buf_release(&c->rx);
    }
    if (!c->rx_too_large && n)
        cw_buf_add(&c->rx, p, n);
    if (!last)
        return 0;
    c->rx_total = 0;
    if (c->rx_too_large) {
        send_code(c, NULL, false, 0, CW_ERR_TOO_LARGE, "too-large",
                  "message over the size limit; it was not read");
        c->rx_too_large = false;
        return 0;
    }
    if (!cw_utf8_valid(c->rx.data, c->rx.len)) {
        cw_ws_close(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text is not valid UTF-8");
        return 0;
    }
    on_message(c, c->rx.data ? c->rx.data : "", c->rx.len);
    cw_buf_reset(&c->rx);
    if (c->rx.cap > 4 * 65536) /* one big message must not pin its buffer */
        cw_buf_release(&c->rx);
    return 0;
}

/* RFC 6455 5.5.1 and 7.4: answer a close with the same code; a code that may not be sent is an
 * error. */
static int on_peer_close(struct cw_conn *c, const unsigned char *p, size_t n)
{
    c->peer_closed = true;
    if (c->close_code) { /* the answer to ours, or one crossing it */
        maybe_end(c);
        return 1;
    }
    unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1000;
    bool valid = n != 1 && ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                            (code >= 3000 && code <= 4999));
    if (!valid)
        return fail(c, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid close frame");
    if (n > 2 && !cw_utf8_valid(p + 2, n - 2))
        return fail(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "close reason is not valid UTF-8");
    cw_ws_close(c, (int)code, "");
    return 1; /* nothing after a close frame is read */
}

static int on_control(void *arg, unsigned char op, const unsigned char *p, size_t n)
{
    struct cw_conn *c = arg;
    if (op == CW_WS_OP_CLOSE)
        return on_peer_close(c, p, n);
    if (op == CW_WS_OP_PING && !c->close_code)
        push_text(c, CW_WS_FIN_PONG, (const char *)p, n); /* every ping, in order */
    return 0;
}

int cw_ws_on_data(struct cw_conn *c, unsigned char *in, size_t len)
{
    c->last_rx_us = cw_mono_us();
    if (c->peer_closed || c->failed)
        return 0; /* after a close frame or a broken frame, nothing can be read */
    const struct cw_wsdec_sink sink = {on_data, on_control, c};
    int rc = cw_wsdec_feed(&c->dec, in, len, &sink); /* answered at the loop turn's end */
    if (rc == CW_WS_CLOSE_PROTOCOL)
        fail(c, rc, "protocol error");
    else if (rc == CW_WS_CLOSE_TOO_BIG)
        fail(c, rc, "message over the hard size limit");
    return 0;
}

/* ------------------------------------------------------------ liveness */

/* A peer that did not answer our ping: its close frame would not come either. */
static void close_dead(struct cw_conn *c)
{
    cw_warn("ws.no_pong", "conn=%llu user=%s", (unsigned long long)c->id, c->user_uuid);
    c->failed = true; /* ends the socket once our close frame is out (maybe_end) */
    cw_ws_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "no answer to ping");
    /* A peer whose socket takes nothing at all is cut without the frame. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_WS_PONG_CHECK_GET_PONG, CLOSE_ACK_WAIT_S);
}

/*
 * An idle connection has nothing queued: its ping is written at once, not
 * through the output queue, whose ring it would otherwise keep (a quarter
 * of an idle connection's memory) and whose writable round it would cost.
 */
static void send_ping(struct cw_conn *c)
{
    unsigned char frame[LWS_PRE + 2] = {[LWS_PRE] = CW_WS_FIN_PING, [LWS_PRE + 1] = 0};
    if (c->out.len || lws_partial_buffered(c->wsi)) {
        push_text(c, CW_WS_FIN_PING, "", 0); /* behind what waits, in order */
        return;
    }
    /* lws keeps what the kernel does not take, and flush() waits for it. */
    if (lws_write(c->wsi, frame + LWS_PRE, 2, LWS_WRITE_RAW) < 2) {
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return;
    }
    cw_count_own(cw_gw->stats.bytes_out, 2);
    cw_count_own(cw_gw->stats.frames_out, 1);
    cw_count_own(cw_gw->stats.writes, 1);
}

void cw_ws_sweep(void)
{
    int64_t now = cw_mono_us();
    int64_t interval = (int64_t)cw_gws->cfg->ws_ping_interval * 1000000;
    int64_t timeout = (int64_t)cw_gws->cfg->ws_pong_timeout * 1000000;
    for (struct cw_conn *c = cw_gw->conns; c; c = c->all_next) {
        if (c->close_code)
            continue; /* closing has its own time limits */
        if (too_slow(c, now)) {
            close_slow(c, now); /* nothing more was queued for it to be judged then */
            continue;
        }
        if (!c->reading) /* we are not reading it: its silence is ours */
            c->last_rx_us = now;
        if (c->ping_sent_us && c->last_rx_us >= c->ping_sent_us)
            c->ping_sent_us = 0; /* it spoke after the ping */
        if (c->ping_sent_us && now - c->ping_sent_us >= timeout) {
            close_dead(c);
        } else if (!c->ping_sent_us && now - c->last_rx_us >= interval) {
            send_ping(c);
            c->ping_sent_us = now;
        }
    }
}

/* ------------------------------------------------------------ lifecycle */

/* ------------------------------------------------------------ user index */

struct cw_conn *cw_ws_user_conns(const char *user_uuid)
{
    struct cw_user *u = cw_strmap_get(&cw_gw->users, user_uuid);
    return u ? u->conns : NULL;
}

/*
 * Both lists are doubly linked, so a connection leaves in constant time:
 * a logout that closes K connections of one user costs K, not K squared.
 * The presence counts the bus filter reads go up before the connection
 * takes its live position (cw_hub_live_from) and down once it is gone.
 */
static void index_add(struct cw_conn *c)
{
    struct cw_user *u = cw_strmap_get(&cw_gw->users, c->user_uuid);
    if (!u) {
        u = cw_xcalloc(1, sizeof(*u));
        memcpy(u->user_uuid, c->user_uuid, sizeof(u->user_uuid));
        cw_strmap_put(&cw_gw->users, u->user_uuid, u);
    }
    c->user_next = u->conns;
    if (u->conns)
        u->conns->user_prev = &c->user_next;
    c->user_prev = &u->conns;
    u->conns = c;
    c->all_next = cw_gw->conns;
    if (cw_gw->conns)
        cw_gw->conns->all_prev = &c->all_next;
    c->all_prev = &cw_gw->conns;
    cw_gw->conns = c;
    atomic_fetch_add(&cw_gw->user_slots[cw_gw_user_slot(c->user_uuid)], 1);
    atomic_fetch_add(&cw_gw->ws_conns, 1);
}

static void index_remove(struct cw_conn *c)
{
    *c->user_prev = c->user_next;
    if (c->user_next)
        c->user_next->user_prev = c->user_prev;
    struct cw_user *u = cw_strmap_get(&cw_gw->users, c->user_uuid);
    if (u && !u->conns) {
        cw_strmap_del(&cw_gw->users, u->user_uuid);
        free(u);
    }
    *c->all_prev = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    atomic_fetch_sub(&cw_gw->user_slots[cw_gw_user_slot(c->user_uuid)], 1);
    atomic_fetch_sub(&cw_gw->ws_conns, 1);
}

void cw_ws_release(void)
{
    while (cw_gw->pending_spare) {
        struct cw_pending_cmd *pc = cw_gw->pending_spare;
        cw_gw->pending_spare = pc->next;
        free(pc);
    }
    cw_gw->pending_spares = 0;
    for (size_t i = 0; i < cw_gw->users.cap; i++)
        if (cw_gw->users.keys[i])
            free(cw_gw->users.values[i]);
    cw_strmap_release(&cw_gw->users);
}

int cw_ws_on_established(struct lws *wsi, void **slot, struct cw_session *session)
{
    struct cw_conn *c = cw_xcalloc(1, sizeof(*c));
    c->kind = CW_EP_CONN;
    c->id = cw_gw_next_id();
    c->wsi = wsi;
    memcpy(c->user_uuid, session->user_uuid, sizeof(c->user_uuid));
    memcpy(c->session_uuid, session->session_uuid, sizeof(c->session_uuid));
    c->pipe_tail = &c->pipe;
    c->reading = true;
    c->last_rx_us = cw_mono_us();
    c->dec.max_frame = cw_gws->cfg->hard_max_message;
    c->out.total = &cw_gw->out_total; /* the output waiting everywhere, for cw_ws_intake */
    cw_strmap_init(&c->seqs);
    c->acks_tail = &c->acks;
    cw_idmap_put(&cw_gw->endpoints, c->id, c);
    index_add(c);
    /* After index_add: from here on the bus filter wakes this thread for c's events. */
    c->live_from = c->last_sent = cw_hub_live_from();
    *slot = c;
    cw_count(cw_gws->metrics->connections);
    cw_count(cw_gws->metrics->connections_total);
    cw_info("ws.open", "conn=%llu user=%s", (unsigned long long)c->id, c->user_uuid);
    return 0;
}

/* A connection that ends in the middle of a loop turn leaves the turn's list of output to write. */
static void undirty(struct cw_conn *c)
{
    if (!c->dirty)
        return;
    struct cw_conn **p = &cw_gw->dirty;
    while (*p != c)
        p = &(*p)->dirty_next;
    *p = c->dirty_next;
    c->dirty = false;
}

void cw_ws_on_closed(struct cw_conn *c)
{
    undirty(c);
    index_remove(c);
    cw_idmap_del(&cw_gw->endpoints, c->id);
    while (c->pipe)
        pop_pending(c);
    cw_acks_closed(c);
    cw_outq_release(&c->out);
    for (size_t i = 0; i < c->seqs.cap; i++)
        free((char *)c->seqs.keys[i]);
    cw_strmap_release(&c->seqs);
    cw_buf_release(&c->rx);
    atomic_fetch_sub(&cw_gws->metrics->connections, 1);
    cw_info("ws.close", "conn=%llu user=%s code=%d", (unsigned long long)c->id, c->user_uuid,
            c->close_code);
    free(c);
}
