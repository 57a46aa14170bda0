/*
 * routes.c - the HTTP routes of PROTOCOL.md: login and logout (sessions
 * are events, so both wait for their command to commit), queries (on the
 * worker pool), the pages, static files, /health and /metrics.
 *
 * http.c hands over whole requests; the answers go out through respond.c,
 * so this file only calls down. Work that may block (password checks,
 * queries) goes to this thread's workers and comes back by request id, so a
 * client that went away is simply not found.
 */
#include "auth/cookie.h"
#include "auth/password.h"
#include "auth/ratelimit.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/registry.h"
#include "core/validate.h"
#include "domain/domain.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "gw.h"
#include "query/query.h"
#include "query/workers.h"

#include <ctype.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M_GET  (1u << CW_M_GET)
#define M_POST (1u << CW_M_POST)

/* ------------------------------------------------------------- responses */

static int respond_json(struct cw_http *req, int status, const char *json)
{
    return cw_respond(req, status, "application/json", json, strlen(json));
}

static int redirect(struct cw_http *req, const char *location)
{
    cw_respond_header(req, "Location", location);
    return cw_respond(req, 303, "text/plain", "", 0);
}

static void set_cookie(struct cw_http *req, const char *value, bool clear)
{
    char line[400];
    snprintf(line, sizeof(line), "%s=%s; HttpOnly; SameSite=Lax; Path=/%s%s", CW_COOKIE_NAME, value,
             clear ? "; Max-Age=0" : "", cw_gws->tls ? "; Secure" : "");
    cw_respond_header(req, "Set-Cookie", line);
}

/* ----------------------------------------------------- login and logout */

struct login_job {
    struct cw_job job;
    uint64_t request;
    char email[256];
    char password[1100];
    bool ok;
    char user_uuid[CW_UUID_LEN + 1];
};

static void run_login(struct cw_job *job, struct cw_db *db)
{
    struct login_job *l = (struct login_job *)job;
    char hash[crypto_pwhash_STRBYTES];
    cw_accounts_normalize_email(l->email);
    bool found =
        cw_accounts_find_login(db, l->email, l->user_uuid, hash, sizeof(hash), NULL) == CW_OK;
    /* An unknown email costs the same hash check, so time tells nothing either. */
    bool ok = cw_password_verify(found ? hash : cw_gws->dummy_hash, l->password);
    l->ok = found && ok;
    sodium_memzero(l->password, sizeof(l->password));
}

/* 503 overloaded: a queue or the workers are full, or a publish failed; a retry may pass. */
static int respond_busy(struct cw_http *req)
{
    return cw_respond_error(req, 503, "overloaded", "the server is busy; try again");
}

/*
 * Queues a session command for request; its outcome comes back to
 * cw_routes_session_committed() when answer is set, else to no endpoint.
 * Whether it got into the queue comes to queued(arg, rc), exactly once:
 * at once on the local queue; in distributed mode once JetStream answered
 * the publish, on this thread's loop, which meanwhile serves on (a
 * synchronous publish would hold every connection of the thread for a
 * round trip, or up to its timeout when NATS is slow). arg is malloc'd and
 * queued's to free.
 */
static void submit_session_command(uint64_t request, bool answer, const char *name,
                                   const char *user_uuid, json_t *data,
                                   void (*queued)(void *arg, int rc), void *arg)
{
    const struct cw_command_def *def = NULL;
    if (cw_coerce_command(cw_gws->domain, name, data, true, &def, NULL)) {
        json_decref(data);
        queued(arg, CW_ERR_INVALID);
        return;
    }
    char client_id[64];
    snprintf(client_id, sizeof(client_id), "%s:%llu:%lld", name, (unsigned long long)request,
             (long long)cw_now_us());
    struct cw_envelope *env =
        cw_envelope_new(def, user_uuid, client_id, 0, data, NULL, answer ? request : 0);
    bool async = cw_engine_async(cw_gws->engine);
    int rc = async ? cw_acks_publish(env, queued, arg) : cw_engine_submit(cw_gws->engine, env);
    if (rc)
        cw_envelope_free(env);
    if (rc || !async)
        queued(arg, rc);
}

static int login_failed(struct cw_http *req)
{
    cw_count(cw_gws->metrics->logins_failed);
    if (req->cur.form)
        return redirect(req, "/login?error=1");
    return cw_respond_error(req, 401, "invalid-credentials", "Invalid email or password.");
}

/* The session's cookie, and where the client goes now. */
static void login_ok(struct cw_http *req, const char *user_uuid, const char *session_uuid)
{
    char cookie[CW_COOKIE_VALUE_MAX];
    cw_cookie_seal(cw_gws->cfg->secret_key, session_uuid, cookie);
    set_cookie(req, cookie, false);
    cw_count(cw_gws->metrics->logins_ok);
    cw_info("login.ok", "user=%s session=%s remote=%s", user_uuid, session_uuid, req->remote);
    if (req->cur.form) {
        redirect(req, "/console");
        return;
    }
    char body[200];
    snprintf(body, sizeof(body), "{\"user_uuid\":\"%s\",\"session_uuid\":\"%s\"}", user_uuid,
             session_uuid);
    respond_json(req, 200, body);
}

/* A login whose start-session command is on its way to the queue. */
struct login_start {
    uint64_t request;
    char user_uuid[CW_UUID_LEN + 1];
    char session_uuid[CW_UUID_LEN + 1];
};

/*
 * A login is answered as soon as its start-session command is queued (in
 * distributed mode: durable in JetStream) and the session is in the
 * gateway's table, not when it commits: a stalled or full disk must not
 * hold logins. The session is usable at once (commands on it queue behind
 * its start); should the command fail, the hub ends the session, and after
 * a crash before the commit the cookie names no session: the user logs in
 * again. A client gone meanwhile gets nothing; its session still starts.
 */
static void login_queued(void *arg, int rc)
{
    struct login_start *ls = arg;
    struct cw_http *req = cw_idmap_get(&cw_gw->endpoints, ls->request);
    if (req && rc) {
        respond_busy(req);
    } else if (req) {
        cw_sessions_open(ls->session_uuid, ls->user_uuid);
        login_ok(req, ls->user_uuid, ls->session_uuid);
    }
    free(ls);
}

static void done_login(struct cw_job *job, bool cancelled)
{
    struct login_job *l = (struct login_job *)job;
    struct cw_http *req = cw_idmap_get(&cw_gw->endpoints, l->request);
    if (req && !cancelled && !l->ok) {
        login_failed(req);
    } else if (req && !cancelled) {
        struct login_start *ls = cw_xcalloc(1, sizeof(*ls));
        ls->request = req->id;
        memcpy(ls->user_uuid, l->user_uuid, sizeof(ls->user_uuid));
        cw_uuid_v7(ls->session_uuid);
        json_t *data =
            json_pack("{s:s,s:s}", "user_uuid", ls->user_uuid, "session_uuid", ls->session_uuid);
        submit_session_command(req->id, false, "start-session", ls->user_uuid, data, login_queued,
                               ls);
    }
    free(l);
}

/* Finds key in a form body (copied into out); false when absent or too long. */
static bool form_value(const char *body, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) || p[klen] != '=')
            continue;
        const char *v = p + klen + 1, *e = strchr(v, '&');
        size_t n = e ? (size_t)(e - v) : strlen(v);
        if (n >= len)
            return false;
        memcpy(out, v, n);
        out[n] = '\0';
        return cw_http_unescape(out, true);
    }
    return false;
}

static bool json_value(json_t *root, const char *key, char *out, size_t len)
{
    const char *v = json_string_value(json_object_get(root, key));
    if (!v || strlen(v) >= len)
        return false;
    memcpy(out, v, strlen(v) + 1);
    return true;
}

static int handle_login(struct cw_http *req)
{
    const char *type = cw_httpreq_field(&req->head, "content-type");
    req->cur.form = !type || strncmp(type, "application/json", 16) != 0;
    int64_t retry_us = 0;
    pthread_mutex_lock(&cw_gws->limit_lock); /* one limit over every thread */
    bool allowed = cw_ratelimit_allow(cw_gws->login_limit, req->remote, cw_now_us(), &retry_us);
    pthread_mutex_unlock(&cw_gws->limit_lock);
    if (!allowed) {
        cw_count(cw_gws->metrics->logins_limited);
        char seconds[32];
        snprintf(seconds, sizeof(seconds), "%lld", (long long)(retry_us / 1000000 + 1));
        cw_respond_header(req, "Retry-After", seconds);
        cw_warn("login.limited", "remote=%s", req->remote);
        return cw_respond_error(req, 429, "rate-limited",
                                "too many login attempts; try again later");
    }
    struct login_job *l = cw_xcalloc(1, sizeof(*l));
    l->job.run = run_login;
    l->job.done = done_login;
    l->request = req->id;
    bool ok;
    cw_buf_addc(&req->body, '\0');
    if (req->cur.form) {
        ok = form_value(req->body.data, "email", l->email, sizeof(l->email)) &&
             form_value(req->body.data, "password", l->password, sizeof(l->password));
    } else {
        json_t *root = json_loadb(req->body.data, req->body.len - 1, 0, NULL);
        if (!json_is_object(root)) {
            json_decref(root);
            free(l);
            return cw_respond_error(req, 400, "malformed", "the body must be a JSON object");
        }
        ok = json_value(root, "email", l->email, sizeof(l->email)) &&
             json_value(root, "password", l->password, sizeof(l->password));
        json_decref(root);
    }
    sodium_memzero(req->body.data, req->body.len);
    if (!ok) {
        free(l);
        return login_failed(req);
    }
    int rc = cw_workers_submit(cw_gw->workers, &l->job);
    if (rc) {
        sodium_memzero(l->password, sizeof(l->password));
        free(l);
        return respond_busy(req);
    }
    return 0;
}

/* A logout's end-session command reached the queue, or did not. */
static void logout_queued(void *arg, int rc)
{
    uint64_t *request = arg;
    struct cw_http *req = rc ? cw_idmap_get(&cw_gw->endpoints, *request) : NULL;
    /* Not if answered already: a publish that timed out may still have committed. */
    if (req && !req->cur.status)
        respond_busy(req);
    free(request);
}

static int handle_logout(struct cw_http *req, struct cw_session *s)
{
    if (!s)
        return cw_respond_error(req, 401, "unauthorized", "no valid session");
    json_t *data = json_pack("{s:s}", "session_uuid", s->session_uuid);
    uint64_t *request = cw_xmalloc(sizeof(*request));
    *request = req->id;
    submit_session_command(req->id, true, "end-session", s->user_uuid, data, logout_queued,
                           request);
    return 0; /* answered once committed (cw_routes_session_committed), or refused */
}

void cw_routes_session_committed(uint64_t id, bool ok)
{
    struct cw_http *req = cw_idmap_get(&cw_gw->endpoints, id);
    if (!req || req->cur.status) /* answered: refused after its publish timed out */
        return;
    /* A logout: its session ended (or was already gone). */
    set_cookie(req, "", true);
    redirect(req, "/login");
}

/* --------------------------------------------------------------- queries */

struct query_job {
    struct cw_job job;
    uint64_t request;
    char user_uuid[CW_UUID_LEN + 1];
    char *name;
    json_t *data;
    int status;
    struct cw_buf answer;
};

/* ["error", {"code", "message", "details"}]: the /query error body of PROTOCOL.md. */
static void add_query_error(struct cw_buf *b, const char *code, const char *message,
                            const json_t *details)
{
    cw_buf_adds(b, "[\"error\",{\"code\":");
    cw_json_add_string(b, code, strlen(code));
    cw_buf_adds(b, ",\"message\":");
    cw_json_add_string(b, message, strlen(message));
    cw_buf_adds(b, ",\"details\":");
    cw_json_add(b, details);
    cw_buf_adds(b, "}]");
}

static void run_query(struct cw_job *job, struct cw_db *db)
{
    struct query_job *q = (struct query_job *)job;
    struct cw_error err = {0};
    json_t *result = NULL;
    int rc = cw_query_run(cw_gws->domain, db, q->name, q->data, q->user_uuid, &result, &err);
    if (!rc) {
        q->status = 200;
        cw_buf_adds(&q->answer, "[\"ok\",");
        cw_json_add(&q->answer, result);
        cw_buf_addc(&q->answer, ']');
        json_decref(result);
        return;
    }
    q->status = !strcmp(err.code, "internal-error") ? 500 : 400;
    add_query_error(&q->answer, err.code, err.message, err.details);
    cw_error_release(&err);
}

static void done_query(struct cw_job *job, bool cancelled)
{
    struct query_job *q = (struct query_job *)job;
    struct cw_http *req = cw_idmap_get(&cw_gw->endpoints, q->request);
    if (req && !cancelled) {
        if (q->status != 200)
            cw_count(cw_gws->metrics->query_errors);
        cw_respond(req, q->status, "application/json", q->answer.data, q->answer.len);
    } else if (req) {
        cw_respond_error(req, 503, "shutting-down", "the server is stopping");
    }
    free(q->name);
    json_decref(q->data);
    cw_buf_release(&q->answer);
    free(q);
}

static int query_malformed(struct cw_http *req, const char *message)
{
    struct cw_buf *b = &cw_gw->out;
    cw_buf_reset(b);
    add_query_error(b, "malformed", message, NULL);
    cw_count(cw_gws->metrics->query_errors);
    return cw_respond(req, 400, "application/json", b->data, b->len);
}

static int handle_query(struct cw_http *req, struct cw_session *s)
{
    json_error_t jerr;
    json_t *root = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return query_malformed(req,
                               "the body must be a JSON object {\"name\": ..., \"data\": ...}");
    }
    json_t *name = json_object_get(root, "name"), *data = json_object_get(root, "data");
    if (!json_is_string(name) || (data && !json_is_object(data) && !json_is_null(data))) {
        json_decref(root);
        return query_malformed(req, "name must be a string and data an object");
    }
    struct query_job *q = cw_xcalloc(1, sizeof(*q));
    q->job.run = run_query;
    q->job.done = done_query;
    q->request = req->id;
    memcpy(q->user_uuid, s->user_uuid, sizeof(q->user_uuid));
    q->name = cw_xstrdup(json_string_value(name));
    q->data = json_is_object(data) ? json_incref(data) : json_object();
    json_decref(root);
    cw_count(cw_gws->metrics->queries);
    if (cw_workers_submit(cw_gw->workers, &q->job)) {
        free(q->name);
        json_decref(q->data);
        free(q);
        return respond_busy(req);
    }
    return 0;
}

/* ---------------------------------------------------------------- routes */

/*
 * 200 while the node can serve, even when its store cannot write for now
 * ("degraded"): reads, pings and open sessions still work, and taking the
 * only writer out of rotation would not bring the disk back. 503 once it
 * is stopping.
 */
static int handle_health(struct cw_http *req)
{
    char body[256];
    bool ok = !cw_gw->stopping;
    /* The drain thread stops the processor: its condition is not asked for then. */
    int condition = cw_gws->draining ? CW_CONDITION_OK : cw_engine_condition(cw_gws->engine);
    const char *status = !ok ? "stopping" : condition != CW_CONDITION_OK ? "degraded" : "ok";
    snprintf(body, sizeof(body),
             "{\"status\":\"%s\",\"store\":\"%s\",\"connections\":%llu,\"queue_depth\":%zu,"
             "\"position\":%lld}",
             status, cw_condition_name(condition),
             (unsigned long long)atomic_load(&cw_gws->metrics->connections),
             cw_engine_queue_depth(cw_gws->engine), (long long)cw_hub_live_from());
    return respond_json(req, ok ? 200 : 503, body);
}

/* What each gateway thread holds: how the hand-off spreads the sockets. */
static void render_threads(struct cw_buf *b)
{
    char line[160];
    cw_buf_adds(b, "# HELP calderwood_gateway_threads Gateway threads (--gateway-threads).\n"
                   "# TYPE calderwood_gateway_threads gauge\n");
    snprintf(line, sizeof(line), "calderwood_gateway_threads %d\n", cw_gws->n_threads);
    cw_buf_adds(b, line);
    cw_buf_adds(b, "# HELP calderwood_gateway_thread_connections WebSocket connections open on "
                   "each gateway thread.\n"
                   "# TYPE calderwood_gateway_thread_connections gauge\n");
    for (int i = 0; i < cw_gws->n_threads; i++) {
        snprintf(line, sizeof(line), "calderwood_gateway_thread_connections{thread=\"%d\"} %d\n", i,
                 atomic_load(&cw_gws->threads[i]->ws_conns));
        cw_buf_adds(b, line);
    }
    cw_buf_adds(b, "# HELP calderwood_gateway_thread_sockets Sockets (HTTP and WebSocket) open "
                   "on each gateway thread.\n"
                   "# TYPE calderwood_gateway_thread_sockets gauge\n");
    for (int i = 0; i < cw_gws->n_threads; i++) {
        snprintf(line, sizeof(line), "calderwood_gateway_thread_sockets{thread=\"%d\"} %d\n", i,
                 atomic_load(&cw_gws->threads[i]->load));
        cw_buf_adds(b, line);
    }
}

static int handle_metrics(struct cw_http *req)
{
    struct cw_buf b = CW_BUF_INIT;
    struct cw_thread_metrics *threads[CW_GW_MAX_THREADS];
    for (int i = 0; i < cw_gws->n_threads; i++)
        threads[i] = &cw_gws->threads[i]->stats;
    cw_metrics_render(cw_gws->metrics, threads, (size_t)cw_gws->n_threads,
                      cw_engine_queue_depth(cw_gws->engine),
                      cw_engine_queue_capacity(cw_gws->engine), &b);
    struct cw_processor_stats st = {0};
    int condition = CW_CONDITION_OK;
    if (!cw_gws->draining) {
        cw_engine_stats(cw_gws->engine, &st);
        condition = cw_engine_condition(cw_gws->engine);
    }
    struct cw_store_health h = {.condition = cw_condition_name(condition), .retries = st.retries};
    cw_metrics_render_store(&h, &b);
    render_threads(&b);
    cw_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    cw_buf_release(&b);
    return 0;
}

enum route_id { R_WS, R_QUERY, R_LOGIN, R_LOGOUT, R_CONSOLE, R_HEALTH, R_METRICS };

static const struct route {
    const char *path;
    unsigned methods;
    const char *allow;
    enum route_id id;
} routes[] = {
    {"/ws", M_GET, "GET", R_WS},
    {"/query", M_POST, "POST", R_QUERY},
    {"/login", M_GET | M_POST, "GET, POST", R_LOGIN},
    {"/logout", M_GET | M_POST, "GET, POST", R_LOGOUT},
    {"/console", M_GET, "GET", R_CONSOLE},
    {"/health", M_GET, "GET", R_HEALTH},
    {"/metrics", M_GET, "GET", R_METRICS},
};

static const struct route *find_route(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (!strcmp(path, routes[i].path))
            return &routes[i];
    return NULL;
}

/* Runs the route: the request and its body are complete. */
static int dispatch(struct cw_http *req, const struct route *r)
{
    struct cw_session session;
    struct cw_session *s = cw_request_session(req, &session) ? &session : NULL;
    switch (r->id) {
    case R_WS:
        if (!s)
            return cw_respond_error(req, 401, "unauthorized", "log in first: no valid session");
        cw_respond_header(req, "Upgrade", "websocket");
        return cw_respond_error(req, 426, "upgrade-required", "/ws is a WebSocket endpoint");
    case R_QUERY:
        if (!s)
            return cw_respond_error(req, 401, "unauthorized", "log in first: no valid session");
        return handle_query(req, s);
    case R_LOGIN:
        if (req->cur.method == CW_M_POST) {
            if (cw_gw->stopping)
                return cw_respond_error(req, 503, "shutting-down", "the server is stopping");
            return handle_login(req);
        }
        if (s)
            return redirect(req, "/console");
        return cw_respond(req, 200, "text/html; charset=utf-8", cw_gws->login_html,
                          cw_gws->login_len);
    case R_LOGOUT:
        return handle_logout(req, s);
    case R_CONSOLE:
        if (!s)
            return redirect(req, "/login");
        return cw_respond(req, 200, "text/html; charset=utf-8", cw_gws->console_html,
                          cw_gws->console_len);
    case R_HEALTH:
        return handle_health(req);
    case R_METRICS:
        return handle_metrics(req);
    }
    return cw_respond_error(req, 404, "not-found", "no such path");
}

/* A path under /static/ that stays inside the folder: no dot segments, no odd bytes. */
static bool safe_static_path(const char *rest)
{
    if (!*rest || strlen(rest) > 200 || strstr(rest, "..") || strstr(rest, "//"))
        return false;
    for (const char *p = rest; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("-_./", *p)))
            return false;
    return rest[0] != '.' && rest[0] != '/';
}

static const char *mime_type(const char *path)
{
    static const char *const types[][2] = {
        {".js", "text/javascript"},    {".mjs", "text/javascript"}, {".css", "text/css"},
        {".html", "text/html"},        {".svg", "image/svg+xml"},   {".png", "image/png"},
        {".json", "application/json"}, {".ico", "image/x-icon"},    {".txt", "text/plain"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

#define MAX_STATIC_FILE (16 << 20) /* the console's assets are far smaller */

/* GET /static/...: a file of web/static, read whole. */
static int serve_static(struct cw_http *req)
{
    char file[4400];
    snprintf(file, sizeof(file), "%s/static/%s", cw_gws->cfg->web_dir, req->cur.path + 8);
    struct stat sb;
    FILE *f = NULL;
    if (!safe_static_path(req->cur.path + 8) || stat(file, &sb) || !S_ISREG(sb.st_mode) ||
        sb.st_size > MAX_STATIC_FILE || !(f = fopen(file, "rb")))
        return cw_respond_error(req, 404, "not-found", "no such path");
    char *data = cw_xmalloc((size_t)sb.st_size + 1);
    size_t n = fread(data, 1, (size_t)sb.st_size, f);
    fclose(f);
    int rc = cw_respond(req, 200, mime_type(file), data, n);
    free(data);
    return rc;
}

/*
 * What a role serves (serve --role, engine.h): a processor only /health
 * and /metrics, a query node /query besides; a gateway and `all`, everything.
 */
static bool role_serves(int id)
{
    switch (cw_gws->cfg->role) {
    case CW_ROLE_PROCESSOR:
        return id == R_HEALTH || id == R_METRICS;
    case CW_ROLE_QUERY:
        return id == R_QUERY || id == R_HEALTH || id == R_METRICS;
    default:
        return true;
    }
}

void cw_routes_dispatch(struct cw_http *req)
{
    /* HEAD is GET without the body (http.c leaves it out), except where GET changes something. */
    if (req->cur.method == CW_M_HEAD && strcmp(req->cur.path, "/logout"))
        req->cur.method = CW_M_GET;
    const struct route *r = find_route(req->cur.path);
    if (!role_serves(r ? (int)r->id : -1)) {
        cw_respond_error(req, 404, "not-found", "not served by this node's role");
        return;
    }
    if (!strncmp(req->cur.path, "/static/", 8)) {
        if (req->cur.method == CW_M_GET) {
            serve_static(req);
            return;
        }
        cw_respond_header(req, "Allow", "GET");
        cw_respond_error(req, 405, "method-not-allowed", "static files are only read");
        return;
    }
    if (!r) {
        cw_respond_error(req, 404, "not-found", "no such path");
        return;
    }
    if (!(r->methods & (1u << req->cur.method))) {
        cw_respond_header(req, "Allow", r->allow);
        cw_respond_error(req, 405, "method-not-allowed", "this path does not take that verb");
        return;
    }
    dispatch(req, r);
}
