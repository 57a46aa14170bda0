/*
 * http.c - the HTTP routes of PROTOCOL.md: login and logout (sessions are
 * events, so both wait for their command to commit), queries (on the
 * worker pool), the pages, /health and /metrics.
 *
 * A response is prepared first (struct cw_http) and written when lws says
 * the socket is writable: headers in one callback, the body in the next.
 * Work that may block (password checks, queries) goes to the workers and
 * comes back by request id, so a client that went away is simply not found.
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

#define M_GET  (1 << LWSHUMETH_GET)
#define M_POST (1 << LWSHUMETH_POST)

/* ------------------------------------------------------------- responses */

static void add_header(struct cw_http *req, const char *name, const char *value)
{
    size_t used = strlen(req->extra_headers);
    snprintf(req->extra_headers + used, sizeof(req->extra_headers) - used, "%s: %s\r\n", name,
             value);
}

/* Sets the response (body copied) and asks to be written. */
static int respond(struct cw_http *req, int status, const char *content_type, const char *body,
                   size_t len)
{
    req->status = status;
    req->content_type = content_type;
    req->resp_body = cw_xmalloc(LWS_PRE + len + 1);
    memcpy(req->resp_body + LWS_PRE, body, len);
    req->resp_len = len;
    req->ready = true;
    if (status >= 400)
        cw_count(cw_gw->metrics->http_errors);
    lws_callback_on_writable(req->wsi);
    return 0;
}

static int respond_json(struct cw_http *req, int status, const char *json)
{
    return respond(req, status, "application/json", json, strlen(json));
}

/* {"error":{"code":CODE,"message":MESSAGE}} */
static int respond_error(struct cw_http *req, int status, const char *code, const char *message)
{
    struct cw_buf *b = &cw_gw->out;
    cw_buf_reset(b);
    cw_buf_adds(b, "{\"error\":{\"code\":");
    cw_json_add_string(b, code, strlen(code));
    cw_buf_adds(b, ",\"message\":");
    cw_json_add_string(b, message, strlen(message));
    cw_buf_adds(b, "}}");
    return respond(req, status, "application/json", b->data, b->len);
}

static int redirect(struct cw_http *req, const char *location)
{
    add_header(req, "Location", location);
    return respond(req, 303, "text/plain", "", 0);
}

static void set_cookie(struct cw_http *req, const char *value, bool clear)
{
    char line[400];
    snprintf(line, sizeof(line), "%s=%s; HttpOnly; SameSite=Lax; Path=/%s%s", CW_COOKIE_NAME, value,
             clear ? "; Max-Age=0" : "", cw_gw->tls ? "; Secure" : "");
    add_header(req, "Set-Cookie", line);
}

/* Writes the extra "Name: value" lines through lws, which frames them for h1 or h2. */
static int write_extra_headers(struct lws *wsi, const char *lines, unsigned char **p,
                               unsigned char *end)
{
    while (*lines) {
        const char *colon = strchr(lines, ':'), *eol = strstr(lines, "\r\n");
        if (!colon || !eol)
            break;
        char name[64];
        size_t n = (size_t)(colon - lines) + 1;
        if (n >= sizeof(name))
            return -1;
        memcpy(name, lines, n);
        name[n] = '\0';
        const char *value = colon + 2;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)value, (int)(eol - value), p, end))
            return -1;
        lines = eol + 2;
    }
    return 0;
}

int cw_http_on_writeable(struct lws *wsi, struct cw_http *req, void **slot)
{
    if (!req->ready)
        return 0;
    if (!req->headers_sent) {
        unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                           *end = buf + sizeof(buf) - 1;
        if (lws_add_http_common_headers(wsi, (unsigned)req->status, req->content_type,
                                        req->resp_len, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"Cache-Control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            write_extra_headers(wsi, req->extra_headers, &p, end) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        req->headers_sent = true;
        if (req->resp_len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else if (lws_write(wsi, (unsigned char *)req->resp_body + LWS_PRE, req->resp_len,
                         LWS_WRITE_HTTP_FINAL) != (int)req->resp_len) {
        return -1;
    }
    static const char *const methods[] = {"GET",   "POST",   "OPTIONS", "PUT",
                                          "PATCH", "DELETE", "CONNECT", "HEAD"};
    char path[64];
    cw_info("http", "method=%s path=%s status=%d bytes=%zu us=%lld remote=%s",
            req->method >= 0 && req->method < 8 ? methods[req->method] : "?",
            cw_log_safe(path, sizeof(path), req->path), req->status, req->resp_len,
            (long long)(cw_now_us() - req->started_us), req->remote);
    /* The transaction is over: a keep-alive request that follows starts anew. */
    cw_http_on_closed(req);
    *slot = NULL;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ------------------------------------------------------------- sessions */

/* The session a Cookie header names, when it is sealed by us and still open. */
static struct cw_session *session_of_cookie(const char *header)
{
    const char *value;
    size_t len;
    char session_uuid[CW_UUID_LEN + 1];
    if (!header || cw_cookie_find(header, CW_COOKIE_NAME, &value, &len) ||
        cw_cookie_open(cw_gw->cfg->secret_key, value, len, session_uuid))
        return NULL;
    return cw_strmap_get(&cw_gw->sessions, session_uuid);
}

struct cw_session *cw_http_session(struct lws *wsi)
{
    char header[4096];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE) >= (int)sizeof(header) ||
        lws_hdr_copy(wsi, header, sizeof(header), WSI_TOKEN_HTTP_COOKIE) <= 0)
        return NULL;
    return session_of_cookie(header);
}

/* Same-origin: the Origin is ours as the client addressed us, ours as configured, or allowed. */
static bool origin_allowed(struct lws *wsi)
{
    char origin[300], host[256], own[300];
    if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
        return true; /* not a browser: nothing to hijack */
    if (!strcmp(origin, cw_gw->origin))
        return true;
    if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0) {
        snprintf(own, sizeof(own), "%s://%s", cw_gw->tls ? "https" : "http", host);
        if (!strcmp(origin, own))
            return true;
    }
    for (size_t i = 0; i < cw_gw->cfg->n_allowed_origins; i++)
        if (!strcmp(origin, cw_gw->cfg->allowed_origins[i]))
            return true;
    return false;
}

/* Writes a complete small JSON response during the handshake (no transaction follows). */
static int refuse_upgrade(struct lws *wsi, int status, const char *body)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf) - 1;
    size_t len = strlen(body);
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", len, &p, end) ||
        lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < len)
        return -1;
    memcpy(p, body, len);
    p += len;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start))
        return -1;
    cw_count(cw_gw->metrics->http_errors);
    return 1;
}

int cw_http_confirm_upgrade(struct lws *wsi)
{
    char uri[64];
    cw_count(cw_gw->metrics->http_requests);
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws"))
        return refuse_upgrade(wsi, 404,
                              "{\"error\":{\"code\":\"not-found\",\"message\":"
                              "\"WebSocket connections are served at /ws\"}}");
    if (cw_gw->stopping)
        return refuse_upgrade(wsi, 503,
                              "{\"error\":{\"code\":\"shutting-down\",\"message\":"
                              "\"the server is stopping\"}}");
    if (!origin_allowed(wsi))
        return refuse_upgrade(wsi, 403,
                              "{\"error\":{\"code\":\"forbidden\",\"message\":"
                              "\"this Origin may not open a WebSocket here\"}}");
    if (!cw_http_session(wsi))
        return refuse_upgrade(wsi, 401,
                              "{\"error\":{\"code\":\"unauthorized\",\"message\":"
                              "\"log in first: no valid session\"}}");
    return 0;
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
    bool ok = cw_password_verify(found ? hash : cw_gw->dummy_hash, l->password);
    l->ok = found && ok;
    sodium_memzero(l->password, sizeof(l->password));
}

static int submit_session_command(uint64_t request, const char *name, const char *user_uuid,
                                  json_t *data)
{
    const struct cw_command_def *def = NULL;
    if (cw_coerce_command(cw_gw->domain, name, data, true, &def, NULL)) {
        json_decref(data);
        return CW_ERR_INVALID;
    }
    char client_id[64];
    snprintf(client_id, sizeof(client_id), "%s:%llu:%lld", name, (unsigned long long)request,
             (long long)cw_now_us());
    struct cw_envelope *env = cw_envelope_new(def, user_uuid, client_id, 0, data, NULL, request);
    int rc = cw_engine_submit(cw_gw->engine, env);
    if (rc)
        cw_envelope_free(env);
    return rc;
}

static int login_failed(struct cw_http *req)
{
    cw_count(cw_gw->metrics->logins_failed);
    if (req->form)
        return redirect(req, "/login?error=1");
    return respond_error(req, 401, "invalid-credentials", "Invalid email or password.");
}

static void done_login(struct cw_job *job, bool cancelled)
{
    struct login_job *l = (struct login_job *)job;
    struct cw_http *req = cw_idmap_get(&cw_gw->endpoints, l->request);
    if (req && !cancelled) {
        if (!l->ok) {
            login_failed(req);
        } else {
            char session_uuid[CW_UUID_LEN + 1];
            cw_uuid_v7(session_uuid);
            json_t *data =
                json_pack("{s:s,s:s}", "user_uuid", l->user_uuid, "session_uuid", session_uuid);
            if (submit_session_command(req->id, "start-session", l->user_uuid, data)) {
                respond_error(req, 503, "overloaded", "the server is busy; try again");
            } else {
                /* The answer waits for the commit: cw_http_session_committed(). */
                req->awaiting_session = true;
                memcpy(req->session_uuid, session_uuid, sizeof(req->session_uuid));
                memcpy(req->user_uuid, l->user_uuid, sizeof(req->user_uuid));
            }
        }
    }
    free(l);
}

/* Decodes one application/x-www-form-urlencoded value in place; false on bad escapes. */
static bool url_decode(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s == '+') {
            *out++ = ' ';
        } else if (*s == '%') {
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return false;
            char hex[3] = {s[1], s[2], 0};
            *out++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
    return true;
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
        return url_decode(out);
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
    char type[128] = "";
    lws_hdr_copy(req->wsi, type, sizeof(type), WSI_TOKEN_HTTP_CONTENT_TYPE);
    req->form = strncmp(type, "application/json", 16) != 0;
    int64_t retry_us = 0;
    if (!cw_ratelimit_allow(cw_gw->login_limit, req->remote, cw_now_us(), &retry_us)) {
        cw_count(cw_gw->metrics->logins_limited);
        char seconds[32];
        snprintf(seconds, sizeof(seconds), "%lld", (long long)(retry_us / 1000000 + 1));
        add_header(req, "Retry-After", seconds);
        cw_warn("login.limited", "remote=%s", req->remote);
        return respond_error(req, 429, "rate-limited", "too many login attempts; try again later");
    }
    struct login_job *l = cw_xcalloc(1, sizeof(*l));
    l->job.run = run_login;
    l->job.done = done_login;
    l->request = req->id;
    bool ok;
    cw_buf_addc(&req->body, '\0');
    if (req->form) {
        ok = form_value(req->body.data, "email", l->email, sizeof(l->email)) &&
             form_value(req->body.data, "password", l->password, sizeof(l->password));
    } else {
        json_t *root = json_loadb(req->body.data, req->body.len - 1, 0, NULL);
        if (!json_is_object(root)) {
            json_decref(root);
            free(l);
            return respond_error(req, 400, "malformed", "the body must be a JSON object");
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
        return respond_error(req, 503, "overloaded", "the server is busy; try again");
    }
    return 0;
}

static int handle_logout(struct cw_http *req, struct cw_session *s)
{
    if (!s)
        return respond_error(req, 401, "unauthorized", "no valid session");
    json_t *data = json_pack("{s:s}", "session_uuid", s->session_uuid);
    if (submit_session_command(req->id, "end-session", s->user_uuid, data))
        return respond_error(req, 503, "overloaded", "the server is busy; try again");
    return 0; /* answered once committed: cw_http_session_committed() */
}

void cw_http_session_committed(uint64_t id, bool ok)
{
    struct cw_http *req = cw_idmap_get(&cw_gw->endpoints, id);
    if (!req)
        return;
    if (!req->awaiting_session) { /* a logout: ended, or already gone */
        set_cookie(req, "", true);
        redirect(req, "/login");
        return;
    }
    if (!ok) {
        respond_error(req, 500, "internal-error", "the session could not be started");
        return;
    }
    char cookie[CW_COOKIE_VALUE_MAX];
    cw_cookie_seal(cw_gw->cfg->secret_key, req->session_uuid, cookie);
    set_cookie(req, cookie, false);
    cw_count(cw_gw->metrics->logins_ok);
    cw_info("login.ok", "user=%s session=%s remote=%s", req->user_uuid, req->session_uuid,
            req->remote);
    if (req->form) {
        redirect(req, "/console");
        return;
    }
    char body[200];
    snprintf(body, sizeof(body), "{\"user_uuid\":\"%s\",\"session_uuid\":\"%s\"}", req->user_uuid,
             req->session_uuid);
    respond_json(req, 200, body);
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
    int rc = cw_query_run(cw_gw->domain, db, q->name, q->data, q->user_uuid, &result, &err);
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
            cw_count(cw_gw->metrics->query_errors);
        respond(req, q->status, "application/json", q->answer.data, q->answer.len);
    } else if (req) {
        respond_error(req, 503, "shutting-down", "the server is stopping");
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
    cw_count(cw_gw->metrics->query_errors);
    return respond(req, 400, "application/json", b->data, b->len);
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
    cw_count(cw_gw->metrics->queries);
    if (cw_workers_submit(cw_gw->workers, &q->job)) {
        free(q->name);
        json_decref(q->data);
        free(q);
        return respond_error(req, 503, "overloaded", "the server is busy; try again");
    }
    return 0;
}

/* ---------------------------------------------------------------- routes */

static int handle_health(struct cw_http *req)
{
    char body[200];
    bool ok = !cw_gw->stopping;
    snprintf(body, sizeof(body),
             "{\"status\":\"%s\",\"connections\":%llu,\"queue_depth\":%zu,\"position\":%lld}",
             ok ? "ok" : "stopping", (unsigned long long)atomic_load(&cw_gw->metrics->connections),
             cw_engine_queue_depth(cw_gw->engine), (long long)cw_gw->last_position);
    return respond_json(req, ok ? 200 : 503, body);
}

static int handle_metrics(struct cw_http *req)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_metrics_render(cw_gw->metrics, cw_engine_queue_depth(cw_gw->engine),
                      cw_engine_queue_capacity(cw_gw->engine), &b);
    respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
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

/* Runs the route once the request (and its body, for POST) is complete. */
static int dispatch(struct cw_http *req)
{
    const struct route *r = find_route(req->path);
    struct cw_session *s = cw_http_session(req->wsi);
    switch (r->id) {
    case R_WS:
        if (!s)
            return respond_error(req, 401, "unauthorized", "log in first: no valid session");
        add_header(req, "Upgrade", "websocket");
        return respond_error(req, 426, "upgrade-required", "/ws is a WebSocket endpoint");
    case R_QUERY:
        if (!s)
            return respond_error(req, 401, "unauthorized", "log in first: no valid session");
        return handle_query(req, s);
    case R_LOGIN:
        if (req->method == LWSHUMETH_POST)
            return handle_login(req);
        if (s)
            return redirect(req, "/console");
        return respond(req, 200, "text/html; charset=utf-8", cw_gw->login_html, cw_gw->login_len);
    case R_LOGOUT:
        return handle_logout(req, s);
    case R_CONSOLE:
        if (!s)
            return redirect(req, "/login");
        return respond(req, 200, "text/html; charset=utf-8", cw_gw->console_html,
                       cw_gw->console_len);
    case R_HEALTH:
        return handle_health(req);
    case R_METRICS:
        return handle_metrics(req);
    }
    return respond_error(req, 404, "not-found", "no such path");
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

/* GET /static/...: a file of web/static, streamed by lws. 1 when not a static file. */
static int serve_static(struct lws *wsi, const char *path)
{
    char file[4400];
    struct stat sb;
    snprintf(file, sizeof(file), "%s/static/%s", cw_gw->cfg->web_dir, path + 8);
    if (!safe_static_path(path + 8) || stat(file, &sb) || !S_ISREG(sb.st_mode))
        return 1;
    int n = lws_serve_http_file(wsi, file, mime_type(file), NULL, 0);
    return n < 0 || (n > 0 && lws_http_transaction_completed(wsi)) ? -1 : 0;
}

int cw_http_on_request(struct lws *wsi, void **pss, const char *uri)
{
    cw_count(cw_gw->metrics->http_requests);
    struct cw_http *req = cw_xcalloc(1, sizeof(*req));
    req->kind = CW_EP_HTTP;
    req->id = cw_gw_next_id();
    req->wsi = wsi;
    req->started_us = cw_now_us();
    char *method_uri;
    int uri_len;
    req->method = lws_http_get_uri_and_method(wsi, &method_uri, &uri_len);
    snprintf(req->path, sizeof(req->path), "%s", uri ? uri : "/");
    lws_get_peer_simple(wsi, req->remote, sizeof(req->remote));
    bool is_static = !strncmp(req->path, "/static/", 8);
    if (is_static && req->method == LWSHUMETH_GET) {
        int rc = serve_static(wsi, req->path);
        if (rc <= 0) {
            free(req);
            return rc;
        }
    }
    cw_idmap_put(&cw_gw->endpoints, req->id, req);
    *pss = req;
    if (is_static && req->method != LWSHUMETH_GET) {
        add_header(req, "Allow", "GET");
        return respond_error(req, 405, "method-not-allowed", "static files are only read");
    }
    const struct route *r = find_route(req->path);
    if (!r)
        return respond_error(req, 404, "not-found", "no such path");
    if (req->method < 0 || !(r->methods & (1u << req->method))) {
        add_header(req, "Allow", r->allow);
        return respond_error(req, 405, "method-not-allowed", "this path does not take that verb");
    }
    if (req->method != LWSHUMETH_POST)
        return dispatch(req);
    char length[32];
    if (lws_hdr_copy(wsi, length, sizeof(length), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 &&
        lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) <= 0)
        return dispatch(req); /* a POST without a body: no body callbacks will come */
    if (strtoull(length, NULL, 10) > cw_gw->cfg->max_body) {
        add_header(req, "Connection", "close");
        return respond_error(req, 413, "too-large", "the request body is over the limit");
    }
    return 0; /* the body comes next */
}

int cw_http_on_body(struct lws *wsi, struct cw_http *req, const void *in, size_t len)
{
    if (req->ready || req->body_too_large)
        return 0;
    if (req->body.len + len > cw_gw->cfg->max_body) {
        req->body_too_large = true;
        cw_buf_release(&req->body);
        return 0;
    }
    cw_buf_add(&req->body, in, len);
    return 0;
}

int cw_http_on_body_done(struct lws *wsi, struct cw_http *req)
{
    if (req->ready)
        return 0;
    if (req->body_too_large)
        return respond_error(req, 413, "too-large", "the request body is over the limit");
    if (cw_gw->stopping && !strcmp(req->path, "/login"))
        return respond_error(req, 503, "shutting-down", "the server is stopping");
    return dispatch(req);
}

void cw_http_on_closed(struct cw_http *req)
{
    if (!req)
        return;
    cw_idmap_del(&cw_gw->endpoints, req->id);
    if (req->body.data && req->body.cap)
        sodium_memzero(req->body.data, req->body.cap);
    free(req->body.data);
    free(req->resp_body);
    free(req);
}
