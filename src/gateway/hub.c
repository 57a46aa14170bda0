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
 * Every gateway thread runs this on every batch (each is a reader of the
 * bus) and routes to its own connections only: an audience is found in this
 * thread's user index, an origin or resender by an id only its owner knows.
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

/* Ends a session on this thread: its connections here hear why, then close. */
static void session_end(const char *session_uuid)
{
    if (!session_uuid)
        return;
    for (struct cw_conn *c = cw_gw->conns; c; c = c->all_next) {
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
    if (session)
        cw_sessions_apply(u->ev.position, started, session,
                          json_string_value(json_object_get(data, "user_uuid")));
    if (session && !started)
        session_end(session);
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
    uint64_t also[CW_INFLIGHT_ALSO];
    size_t n_also = cw_inflight_routed(o->env->cmd.user_uuid, o->env->cmd.client_id,
                                       o->env->cmd.client_seq, also);
    if (!o->duplicate) {
        for (size_t i = 0; i < o->n_events; i++)
            route_event(o->events[i], NULL);
        if (cw_gw->index == 0 && o->rejected) /* once, not once per thread */
            cw_count(cw_gws->metrics->cmd_rejected);
        else if (cw_gw->index == 0)
            cw_count(cw_gws->metrics->cmd_processed);
    }
    if (origin)
        answer_sender(origin, o);
    for (size_t i = 0; i < n_also; i++) {
        struct cw_conn *c = conn_of(also[i]); /* NULL when on another thread */
        if (c && c != origin)
            answer_sender(c, o);
    }
    if (o->rejected && !o->duplicate && !strcmp(o->env->cmd.name, "start-session")) {
        /* The login was answered before the commit: its session goes now. */
        const char *session = json_string_value(json_object_get(o->env->cmd.data, "session_uuid"));
        if (session)
            cw_sessions_end(session);
        session_end(session);
    }
    struct cw_http *req = origin_id ? cw_idmap_get(&cw_gw->endpoints, origin_id) : NULL;
    if (req && req->kind == CW_EP_HTTP)
        cw_routes_session_committed(origin_id, !o->rejected);
}

void cw_hub_drain_bus(void)
{
    const struct cw_outcome_batch *b;
    while ((b = cw_bus_read(cw_gw->bus))) {
        cw_ws_defer_begin();
        for (size_t i = 0; i < b->n; i++)
            route_outcome(&b->items[i]);
        cw_ws_defer_end();
        cw_bus_done(cw_gw->bus);
    }
}
