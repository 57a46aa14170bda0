/*
 * acks.c - a connection's command replies in the order its commands came,
 * while some wait for JetStream's answer to an asynchronous publish.
 *
 * In distributed mode the client's ack means "durable in JetStream", and
 * waiting for that answer before reading the next command would cost a
 * round trip per command. So ws.c publishes without waiting, and each
 * connection keeps a list, in command order, of replies: ready ones (a
 * frame) and waiting ones (a publish not yet answered). A reply goes out
 * only when every reply before it has, so acks and errors reach the client
 * in the order of its commands even when JetStream answers a later publish
 * before an earlier one times out.
 *
 * An HTTP request's publish (a login's or logout's session command) waits
 * the same way, with no connection: its callback runs on the loop instead.
 *
 * The answer arrives on a libnats thread: it only links the reply into its
 * gateway thread's answered list and wakes that loop, which (cw_acks_drain,
 * before the bus, so an ack tends to precede its command's updates) writes
 * whatever became sendable. A reply whose connection closed is freed when
 * its answer comes; the queue answers every publish by the time it closed.
 */
#include "core/alloc.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "gw.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

struct cw_ack_wait {
    struct cw_ack_wait *next;     /* the connection's next reply */
    struct cw_ack_wait *answered; /* {gw->acks_lock} in the thread's answered list */
    struct cw_gw *gw;             /* the thread whose loop handles the answer */
    struct cw_conn *conn;         /* NULL once the connection closed */
    bool waiting;                 /* the publish is not answered yet */
    int rc;                       /* its answer, set by the libnats thread */
    /* a waiting publish: what its reply says */
    bool duplicate, in_flight;
    char *client_id;
    int64_t seq;
    char uuid[CW_UUID_LEN + 1];
    char user_uuid[CW_UUID_LEN + 1];
    /* a ready reply */
    char *frame;
    size_t len;
    /* a publish for an HTTP request (cw_acks_publish): no connection, a callback */
    void (*then)(void *arg, int rc);
    void *then_arg;
};

static void free_wait(struct cw_ack_wait *w)
{
    free(w->then_arg); /* still set only when the callback never ran */
    free(w->client_id);
    free(w->frame);
    free(w);
}

static void append(struct cw_conn *c, struct cw_ack_wait *w)
{
    w->conn = c;
    *c->acks_tail = w;
    c->acks_tail = &w->next;
}

void cw_acks_reply(struct cw_conn *c, const char *frame, size_t len)
{
    if (!c->acks) {
        cw_ws_send_text(c, frame, len);
        return;
    }
    struct cw_ack_wait *w = cw_xcalloc(1, sizeof(*w));
    w->frame = cw_xmalloc(len);
    memcpy(w->frame, frame, len);
    w->len = len;
    append(c, w);
}

/* Any thread: the queue's answer. The loop takes it from here. */
static void on_answer(void *arg, int rc)
{
    struct cw_ack_wait *w = arg;
    struct cw_gw *gw = w->gw;
    w->rc = rc;
    pthread_mutex_lock(&gw->acks_lock);
    bool first = !gw->answered;
    w->answered = gw->answered;
    gw->answered = w;
    pthread_mutex_unlock(&gw->acks_lock);
    /* The loop takes the whole list at once: a list it was woken for needs no second wake. */
    if (first)
        lws_cancel_service(gw->ctx);
}

int cw_acks_submit(struct cw_conn *c, struct cw_envelope *env, const char *client_id, int64_t seq,
                   const char *uuid, bool duplicate, bool in_flight)
{
    struct cw_ack_wait *w = cw_xcalloc(1, sizeof(*w));
    w->gw = cw_gw;
    w->waiting = true;
    w->duplicate = duplicate;
    w->in_flight = in_flight;
    w->client_id = cw_xstrdup(client_id);
    w->seq = seq;
    memcpy(w->uuid, uuid, sizeof(w->uuid));
    memcpy(w->user_uuid, c->user_uuid, sizeof(w->user_uuid));
    /* Linked first: the answer may come before the call returns, and finds it in place. */
    append(c, w);
    int rc = cw_engine_submit_async(cw_gws->engine, env, on_answer, w);
    if (rc) {
        /* Never answered: unlink it again (it is the tail). */
        struct cw_ack_wait **p = &c->acks;
        while (*p != w)
            p = &(*p)->next;
        *p = NULL;
        c->acks_tail = p;
        free_wait(w);
    }
    return rc;
}

/* What an `overloaded` says, by the queue's answer (see cw_queue_put_cb). */
static const char *refusal(int rc)
{
    if (rc == CW_ERR_SHUTDOWN)
        return "the server is stopping; retry later";
    if (rc == CW_ERR_AGAIN) /* docs/PROTOCOL.md: `error`, the distributed exception */
        return "the command queue did not answer in time; the command may still be processed, "
               "and resending it is safe";
    return "the command queue did not take the command; retry later";
}

int cw_acks_publish(struct cw_envelope *env, void (*then)(void *arg, int rc), void *arg)
{
    struct cw_ack_wait *w = cw_xcalloc(1, sizeof(*w));
    w->gw = cw_gw;
    w->waiting = true;
    w->then = then;
    w->then_arg = arg;
    int rc = cw_engine_submit_async(cw_gws->engine, env, on_answer, w);
    if (rc) {
        w->then_arg = NULL; /* still the caller's */
        free_wait(w);
    }
    return rc;
}

/* The answered publish's reply frame; an unqueued command leaves the in-flight table. */
static void settle(struct cw_ack_wait *w)
{
    cw_buf_reset(&cw_gw->out);
    if (w->rc && w->in_flight)
        cw_inflight_drop(w->user_uuid, w->client_id, w->seq);
    if (!w->rc) {
        cw_wire_ack(&cw_gw->out, w->client_id, w->seq, w->uuid, w->duplicate);
        if (w->duplicate)
            cw_count(cw_gws->metrics->cmd_duplicate);
        else
            cw_count(cw_gws->metrics->cmd_acked);
    } else {
        struct cw_error err = {0};
        cw_error_set(&err, CW_ERR_OVERLOADED, "overloaded", "%s", refusal(w->rc));
        cw_wire_error(&cw_gw->out, w->client_id, true, w->seq, &err);
        cw_error_release(&err);
        cw_count(cw_gws->metrics->cmd_overloaded);
    }
    w->len = cw_gw->out.len;
    w->frame = cw_xmalloc(w->len);
    memcpy(w->frame, cw_gw->out.data, w->len);
    w->waiting = false;
}

/* Sends the replies at the head of c's list that are ready. */
static void flush(struct cw_conn *c)
{
    while (c->acks && !c->acks->waiting) {
        struct cw_ack_wait *w = c->acks;
        c->acks = w->next;
        if (!c->acks)
            c->acks_tail = &c->acks;
        cw_ws_send_text(c, w->frame, w->len);
        free_wait(w);
    }
}

void cw_acks_drain(void)
{
    pthread_mutex_lock(&cw_gw->acks_lock);
    struct cw_ack_wait *w = cw_gw->answered;
    cw_gw->answered = NULL;
    pthread_mutex_unlock(&cw_gw->acks_lock);
    while (w) {
        struct cw_ack_wait *next = w->answered;
        struct cw_conn *c = w->conn;
        if (w->then) {
            void *arg = w->then_arg;
            w->then_arg = NULL; /* the callback's now */
            w->then(arg, w->rc);
            free_wait(w);
            w = next;
            continue;
        }
        settle(w); /* also for a closed connection: a failed command leaves the in-flight table */
        if (c)
            flush(c);
        else
            free_wait(w);
        w = next;
    }
}

void cw_acks_closed(struct cw_conn *c)
{
    struct cw_ack_wait *w = c->acks;
    while (w) {
        struct cw_ack_wait *next = w->next;
        if (w->waiting)
            w->conn = NULL; /* freed when its answer comes */
        else
            free_wait(w);
        w = next;
    }
    c->acks = NULL;
    c->acks_tail = &c->acks;
}

void cw_acks_release(struct cw_gw *gw)
{
    struct cw_ack_wait *w = gw->answered;
    while (w) {
        struct cw_ack_wait *next = w->answered;
        free_wait(w);
        w = next;
    }
    gw->answered = NULL;
    pthread_mutex_destroy(&gw->acks_lock);
}
