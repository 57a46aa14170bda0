/*
 * hub.c - committed outcomes to connections.
 *
 * For each outcome batch from the update bus, in position order: every new
 * event goes to the connections its audience includes (the issuing
 * connection always), serialised once and shared; a duplicate's events and
 * a rejection go to the connections that sent that command. Session events
 * keep the table of open sessions current (sessions.c), so checking a cookie
 * never touches the store, and an ended session closes its connections.
 *
 * Each gateway thread is a reader of the bus and routes to its own
 * connections only: an audience is found in this thread's user index, an
 * origin or resender by an id only its owner knows. The bus filter
 * (cw_hub_filter, on the publisher's thread) decides beforehand which
 * threads a batch concerns, so a thread with nothing to deliver is not
 * woken for it and only takes its position when it reads next.
 */
#include "core/alloc.h"
#include "core/log.h"
#include "core/registry.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/update.h"
#include "gw.h"
#include "store/store.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- sessions */

/* The connections a session may have here: its user's, or every one when the user is not known. */
static struct cw_conn *session_conns(const char *user_uuid, bool *by_user)
{
    *by_user = user_uuid != NULL;
    return user_uuid ? cw_ws_user_conns(user_uuid) : cw_gw->conns;
}

/* Ends a session on this thread: its connections here hear why, then close. */
static void session_end(const char *session_uuid, const char *user_uuid)
{
    if (!session_uuid)
        return;
    bool by_user;
    for (struct cw_conn *c = session_conns(user_uuid, &by_user); c;
         c = by_user ? c->user_next : c->all_next) {
        if (strcmp(c->session_uuid, session_uuid))
            continue;
        struct cw_error err = {0};
        cw_error_set(&err, CW_ERR_UNAUTHORIZED, "unauthorized", "the session has ended");
        cw_buf_reset(&cw_gw->out);
        cw_wire_error(&cw_gw->out, NULL, false, 0, &err);
        cw_ws_send_text(c, cw_gw->out.data, cw_gw->out.len);
        cw_ws_close(c, LWS_CLOSE_STATUS_NORMAL, "session ended");
    }
}

/*
 * Keeps the session table current from the log's own events (the first
 * thread to route one applies it), and closes this thread's connections of
 * an ended session (every thread does).
 */
static void track_session(const struct cw_update *u)
{
    bool started = !strcmp(u->ev.name, "session-started");
    if (!started && strcmp(u->ev.name, "session-ended"))
        return;
    json_t *frame = json_loads(u->frame, 0, NULL);
    json_t *data = json_object_get(json_array_get(frame, 3), "data");
    const char *session = json_string_value(json_object_get(data, "session_uuid"));
    const char *user = json_string_value(json_object_get(data, "user_uuid"));
    if (session)
        cw_sessions_apply(u->ev.position, started, session, user);
    if (session && !started)
        session_end(session, user);
    json_decref(frame);
}

/* ---------------------------------------------------------------- routing */

static struct cw_conn *conn_of(uint64_t id)
{
    struct cw_conn *c = cw_idmap_get(&cw_gw->endpoints, id);
    return c && c->kind == CW_EP_CONN ? c : NULL;
}

/* Live delivery: each connection gets each position at most once. */
static void deliver(struct cw_conn *c, struct cw_update *u)
{
    if (!c->resuming && u->ev.position <= c->last_sent)
        return;
    cw_ws_send_update(c, u, true);
}

static void route_event(struct cw_update *u, struct cw_conn *origin)
{
    enum cw_audience a = u->def ? u->def->audience : CW_AUDIENCE_USER;
    if (a == CW_AUDIENCE_USER) {
        for (struct cw_conn *c = cw_ws_user_conns(u->ev.user_uuid ? u->ev.user_uuid : ""); c;
             c = c->user_next)
            deliver(c, u);
    } else {
        for (struct cw_conn *c = cw_gw->conns; c; c = c->all_next)
            if (a == CW_AUDIENCE_ALL || cw_domain_audience_allows(u->def, &u->ev, c->user_uuid))
                deliver(c, u);
    }
    if (origin) /* the issuer hears of its own command whatever the audience says */
        deliver(origin, u);
    track_session(u);
    if (u->ev.position > cw_gw->last_position)
        cw_gw->last_position = u->ev.position;
}

static void send_rejected(struct cw_conn *c, const struct cw_outcome *o)
{
    cw_buf_reset(&cw_gw->out);
    cw_wire_rejected(&cw_gw->out, o->env->cmd.client_id, o->env->cmd.client_seq, o->command_uuid,
                     o->reject.code, o->reject.message);
    cw_ws_send_text(c, cw_gw->out.data, cw_gw->out.len);
}

/* What a connection that sent this command hears, besides live routing. */
static void answer_sender(struct cw_conn *c, const struct cw_outcome *o)
{
    if (o->rejected) {
        send_rejected(c, o);
        return;
    }
    for (size_t i = 0; i < o->n_events; i++) {
        if (o->duplicate)
            cw_ws_send_update(c, o->events[i], false); /* a resend, asked for */
        else
            deliver(c, o->events[i]);
    }
}

static void route_outcome(const struct cw_outcome *o)
{
    uint64_t origin_id = o->env->origin;
    struct cw_conn *origin = conn_of(origin_id);
    if (!o->duplicate)
        for (size_t i = 0; i < o->n_events; i++)
            route_event(o->events[i], NULL);
    if (origin)
        answer_sender(origin, o);
    for (size_t i = 0; i < CW_OUTCOME_RESENT_BY && o->resent_by[i]; i++) {
        struct cw_conn *c = conn_of(o->resent_by[i]); /* NULL when on another thread */
        if (c && c != origin)
            answer_sender(c, o);
    }
    if (o->rejected && !o->duplicate && !strcmp(o->env->cmd.name, "start-session")) {
        /* The login was answered before the commit: its session goes now. */
        const char *session = json_string_value(json_object_get(o->env->cmd.data, "session_uuid"));
        if (session)
            cw_sessions_end(session);
        session_end(session, NULL);
    }
    struct cw_http *req = origin_id ? cw_idmap_get(&cw_gw->endpoints, origin_id) : NULL;
    if (req && req->kind == CW_EP_HTTP)
        cw_routes_session_committed(origin_id, !o->rejected);
}

/* The batches this thread skipped bring it their positions too: a resume compares with it. */
static void take_passed(void)
{
    int64_t passed = cw_bus_passed(cw_gw->bus, NULL);
    if (passed > cw_gw->last_position)
        cw_gw->last_position = passed;
}

void cw_hub_drain_bus(void)
{
    const struct cw_outcome_batch *b;
    while ((b = cw_bus_read(cw_gw->bus))) {
        for (size_t i = 0; i < b->n; i++)
            route_outcome(&b->items[i]);
        cw_bus_done(cw_gw->bus);
        cw_count_own(cw_gw->stats.batches_routed, 1);
    }
    take_passed();
}

int64_t cw_hub_live_from(void)
{
    int64_t published = cw_bus_position(cw_engine_bus(cw_gws->engine));
    return published > cw_gw->last_position ? published : cw_gw->last_position;
}

/* ------------------------------------------------------------ the filter */

static uint64_t bit(uint64_t endpoint_id)
{
    return (uint64_t)1 << (endpoint_id & 63); /* the low bits of an id are its thread */
}

static uint64_t every_thread(const struct cw_gws *g)
{
    return g->n_threads >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << g->n_threads) - 1;
}

/* The threads with a connection of user (or a colliding one). */
static uint64_t threads_of_user(const struct cw_gws *g, const char *user_uuid)
{
    unsigned slot = cw_gw_user_slot(user_uuid);
    uint64_t m = 0;
    for (int i = 0; i < g->n_threads; i++)
        if (atomic_load_explicit(&g->threads[i]->user_slots[slot], memory_order_relaxed))
            m |= (uint64_t)1 << i;
    return m;
}

/* The threads with any connection: an event for everyone, or for a custom audience. */
static uint64_t threads_with_conns(const struct cw_gws *g)
{
    uint64_t m = 0;
    for (int i = 0; i < g->n_threads; i++)
        if (atomic_load_explicit(&g->threads[i]->ws_conns, memory_order_relaxed))
            m |= (uint64_t)1 << i;
    return m;
}

static bool is_session_event(const struct cw_update *u)
{
    return !strcmp(u->ev.name, "session-started") || !strcmp(u->ev.name, "session-ended");
}

/* The threads one outcome concerns, given those with any connection. */
static uint64_t outcome_threads(const struct cw_gws *g, const struct cw_outcome *o,
                                uint64_t with_conns)
{
    uint64_t m = o->env->origin ? bit(o->env->origin) : 0;
    for (size_t i = 0; i < CW_OUTCOME_RESENT_BY && o->resent_by[i]; i++)
        m |= bit(o->resent_by[i]);
    if (o->rejected && !o->duplicate && !strcmp(o->env->cmd.name, "start-session"))
        return every_thread(g); /* its session's connections may be anywhere */
    for (size_t i = 0; !o->duplicate && i < o->n_events; i++) {
        const struct cw_update *u = o->events[i];
        enum cw_audience a = u->def ? u->def->audience : CW_AUDIENCE_USER;
        if (is_session_event(u)) /* the session table, and an ended session's sockets */
            return every_thread(g);
        if (a == CW_AUDIENCE_USER)
            m |= threads_of_user(g, u->ev.user_uuid ? u->ev.user_uuid : "");
        else
            m |= with_conns;
    }
    return m;
}

uint64_t cw_hub_filter(void *arg, struct cw_outcome_batch *b)
{
    const struct cw_gws *g = arg;
    cw_inflight_committed(b); /* first: the resenders decide threads too */
    uint64_t with_conns = threads_with_conns(g), m = 0;
    unsigned long long processed = 0, rejected = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct cw_outcome *o = &b->items[i];
        m |= outcome_threads(g, o, with_conns);
        processed += !o->duplicate && !o->rejected;
        rejected += !o->duplicate && o->rejected;
    }
    /* Counted here, once, rather than by whichever thread routes them. */
    cw_count_n(g->metrics->cmd_processed, processed);
    cw_count_n(g->metrics->cmd_rejected, rejected);
    for (int i = 0; i < g->n_threads; i++) /* here: a thread not woken could not count it */
        if (!(m & (uint64_t)1 << i))
            cw_count(g->threads[i]->stats.batches_skipped);
    return m;
}
