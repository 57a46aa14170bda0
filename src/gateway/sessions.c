/*
 * sessions.c - who is asking: the table of open sessions, the session a
 * request's cookie names, and whether its Origin may open a WebSocket.
 *
 * One table for every gateway thread, under its own lock: a login answered
 * on one thread is followed by a WebSocket that may land on another. The
 * table follows the log's session events; each event is applied once, by
 * the first thread to route it (cw_sessions_apply), so the table never goes
 * back in time while a slower thread catches up. Nothing here touches lws
 * or a connection: closing an ended session's connections is each thread's
 * own work (hub.c).
 */
#include "auth/cookie.h"
#include "core/alloc.h"
#include "core/validate.h"
#include "gw.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    pthread_mutex_t lock;
    struct cw_strmap table; /* {lock} session_uuid -> struct cw_session */
    int64_t applied;        /* {lock} position of the last session event applied */
} sessions = {.lock = PTHREAD_MUTEX_INITIALIZER};

void cw_sessions_init(void)
{
    cw_strmap_init(&sessions.table);
    sessions.applied = 0;
}

void cw_sessions_release(void)
{
    for (size_t i = 0; i < sessions.table.cap; i++)
        if (sessions.table.keys[i])
            free(sessions.table.values[i]);
    cw_strmap_release(&sessions.table);
}

/* {lock} */
static void open_locked(const char *session_uuid, const char *user_uuid)
{
    if (!cw_uuid_valid(session_uuid) || !cw_uuid_valid(user_uuid) ||
        cw_strmap_get(&sessions.table, session_uuid))
        return;
    struct cw_session *s = cw_xmalloc(sizeof(*s));
    memcpy(s->session_uuid, session_uuid, sizeof(s->session_uuid));
    memcpy(s->user_uuid, user_uuid, sizeof(s->user_uuid));
    cw_strmap_put(&sessions.table, s->session_uuid, s);
}

/* {lock} */
static bool end_locked(const char *session_uuid)
{
    struct cw_session *s = cw_strmap_del(&sessions.table, session_uuid);
    free(s);
    return s != NULL;
}

void cw_sessions_open(const char *session_uuid, const char *user_uuid)
{
    pthread_mutex_lock(&sessions.lock);
    open_locked(session_uuid, user_uuid);
    pthread_mutex_unlock(&sessions.lock);
}

bool cw_sessions_end(const char *session_uuid)
{
    pthread_mutex_lock(&sessions.lock);
    bool was = end_locked(session_uuid);
    pthread_mutex_unlock(&sessions.lock);
    return was;
}

bool cw_sessions_get(const char *session_uuid, struct cw_session *out)
{
    pthread_mutex_lock(&sessions.lock);
    struct cw_session *s = cw_strmap_get(&sessions.table, session_uuid);
    if (s)
        *out = *s;
    pthread_mutex_unlock(&sessions.lock);
    return s != NULL;
}

bool cw_sessions_apply(int64_t position, bool started, const char *session_uuid,
                       const char *user_uuid)
{
    pthread_mutex_lock(&sessions.lock);
    bool first = position > sessions.applied;
    if (first) {
        sessions.applied = position;
        if (started)
            open_locked(session_uuid, user_uuid ? user_uuid : "");
        else
            end_locked(session_uuid);
    }
    pthread_mutex_unlock(&sessions.lock);
    return first;
}

void cw_sessions_start_at(int64_t position)
{
    pthread_mutex_lock(&sessions.lock);
    sessions.applied = position;
    pthread_mutex_unlock(&sessions.lock);
}

int cw_sessions_load(struct cw_db *db, struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(
        db, "SELECT session_uuid, user_uuid FROM sessions WHERE ended_at IS NULL", err);
    if (!st)
        return CW_ERR_STORE;
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW)
        cw_sessions_open(cw_stmt_text(st, 0), cw_stmt_text(st, 1));
    return rc == CW_DONE ? CW_OK : rc;
}

bool cw_request_session(const struct cw_http *req, struct cw_session *out)
{
    const char *header = cw_httpreq_field(&req->head, "cookie");
    const char *value;
    size_t len;
    char session_uuid[CW_UUID_LEN + 1];
    /* Sealed by us, and still open. */
    if (!header || cw_cookie_find(header, CW_COOKIE_NAME, &value, &len) ||
        cw_cookie_open(cw_gws->cfg->secret_key, value, len, session_uuid))
        return false;
    return cw_sessions_get(session_uuid, out);
}

bool cw_request_origin_allowed(const struct cw_http *req)
{
    const char *origin = cw_httpreq_field(&req->head, "origin");
    const char *host = cw_httpreq_field(&req->head, "host");
    if (!origin)
        return true; /* not a browser: nothing to hijack */
    if (!strcmp(origin, cw_gws->origin))
        return true;
    char own[300];
    if (host) {
        snprintf(own, sizeof(own), "%s://%s", cw_gws->tls ? "https" : "http", host);
        if (!strcmp(origin, own))
            return true;
    }
    for (size_t i = 0; i < cw_gws->cfg->n_allowed_origins; i++)
        if (!strcmp(origin, cw_gws->cfg->allowed_origins[i]))
            return true;
    return false;
}
