/*
 * server.c - the gateway's event loop: the libwebsockets context, the one
 * protocol callback that dispatches to http.c and ws.c, the wake-up that
 * brings in outcomes and worker results, and the graceful stop.
 *
 * lws accepts, does TLS, polls and buffers output; every socket is a raw
 * one, and what it speaks (HTTP/1.1, then WebSocket) is read by http.c and
 * ws.c. That is how every rule of RFC 6455 and every limit of PROTOCOL.md
 * (431 included) is ours to keep, not the library's.
 */
#include "auth/password.h"
#include "auth/ratelimit.h"
#include "core/alloc.h"
#include "core/log.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "gw.h"
#include "listen.h"
#include "query/workers.h"
#include "store/store.h"

#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct cw_gw *cw_gw;
static atomic_bool stop_requested;
static struct lws_context *volatile running_ctx;

/* The per-connection user space lws keeps for us: the HTTP or WebSocket record. */
struct cw_pss {
    void *ep; /* struct cw_http * or struct cw_conn * (both start with int kind) */
};

void cw_gateway_stop(void)
{
    atomic_store(&stop_requested, true);
    if (running_ctx)
        lws_cancel_service(running_ctx);
}

const char *cw_gateway_library_version(void)
{
    return lws_get_library_version();
}

static void wake(void *arg)
{
    (void)arg;
    lws_cancel_service(cw_gw->ctx);
}

/* The drain runs off the loop: it waits for the processor, which the loop must keep serving. */
static void *drain_engine(void *arg)
{
    (void)arg;
    cw_engine_drain(cw_gw->engine);
    atomic_store(&cw_gw->drained, true);
    lws_cancel_service(cw_gw->ctx);
    return NULL;
}

static void begin_stop(void)
{
    cw_info("gateway.stopping", "connections=%llu",
            (unsigned long long)atomic_load(&cw_gw->metrics->connections));
    cw_gw->stopping = true;
    cw_gw->draining = true;
    pthread_t t;
    if (pthread_create(&t, NULL, drain_engine, NULL) == 0)
        pthread_detach(t);
    else
        drain_engine(NULL);
}

static void on_wake(void)
{
    cw_workers_complete(cw_gw->workers);
    cw_hub_drain_bus();
    cw_ws_intake();
    if (atomic_load(&stop_requested) && !cw_gw->stopping)
        begin_stop();
}

/*
 * The WebSocket liveness sweep, on the loop thread. A quarter of the
 * shorter time limit (at most a second) between passes: a ping or a close
 * comes at most that late.
 */
static void on_sweep(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    cw_ws_sweep();
    lws_sul_schedule(cw_gw->ctx, 0, &cw_gw->sweep, on_sweep, cw_gw->sweep_every);
}

static void start_sweep(struct cw_gw *gw)
{
    int shorter = gw->cfg->ws_ping_interval < gw->cfg->ws_pong_timeout ? gw->cfg->ws_ping_interval
                                                                       : gw->cfg->ws_pong_timeout;
    gw->sweep_every = (lws_usec_t)shorter * LWS_USEC_PER_SEC / 4;
    if (gw->sweep_every > LWS_USEC_PER_SEC)
        gw->sweep_every = LWS_USEC_PER_SEC;
    lws_sul_schedule(gw->ctx, 0, &gw->sweep, on_sweep, gw->sweep_every);
}

/* The endpoint record kept in pss, and its kind (0 when none). */
#define EP(pss)   ((pss) ? (pss)->ep : NULL)
#define KIND(pss) (EP(pss) ? *(int *)EP(pss) : 0)

/*
 * Every socket comes as a raw one: http.c reads HTTP from it and, after the
 * handshake, ws.c reads WebSocket frames. lws does the accepting, TLS, the
 * poll loop and the buffering of what the kernel did not take.
 */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct cw_pss *pss = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        on_wake();
        return 0;
    case LWS_CALLBACK_RAW_ADOPT:
        if (cw_gw->stopping)
            return -1;
        return cw_http_on_open(wsi, &pss->ep);
    case LWS_CALLBACK_RAW_RX:
        if (KIND(pss) == CW_EP_CONN)
            return cw_ws_on_data(EP(pss), in, len);
        return KIND(pss) == CW_EP_HTTP ? cw_http_on_data(EP(pss), in, len, &pss->ep) : -1;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (KIND(pss) == CW_EP_CONN)
            return cw_ws_on_writeable(EP(pss));
        return KIND(pss) == CW_EP_HTTP ? cw_http_on_writeable(EP(pss), &pss->ep) : 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (KIND(pss) == CW_EP_CONN)
            cw_ws_on_closed(EP(pss));
        else if (KIND(pss) == CW_EP_HTTP)
            cw_http_on_closed(EP(pss));
        if (pss)
            pss->ep = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"calderwood", callback, sizeof(struct cw_pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Reads a whole file into memory (the login and console pages, read once at start). */
static char *slurp(const char *dir, const char *name, size_t *len, struct cw_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "cannot read %s (see --web-dir)", path);
        return NULL;
    }
    struct cw_buf b = CW_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cw_buf_add(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return cw_buf_take(&b);
}

/* Splits "HOST:PORT" (HOST may be [v6]). */
static int parse_listen(const char *listen, char *host, size_t host_len, int *port,
                        struct cw_error *err)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || *end || p < 1 || p > 65535 || (size_t)(colon - listen) >= host_len)
        return cw_error_set(err, CW_ERR_INVALID, NULL, "--listen must be HOST:PORT, not '%s'",
                            listen);
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return CW_OK;
}

int cw_gateway_listen(const struct cw_gateway_config *cfg, struct cw_error *err)
{
    char host[256];
    int port = 0;
    int rc = parse_listen(cfg->listen, host, sizeof(host), &port, err);
    return rc ? rc : cw_listen_open(host, port, cfg->listen, err);
}

static int create_context(struct cw_gw *gw, struct cw_error *err)
{
    const struct cw_gateway_config *cfg = gw->cfg;
    char host[256];
    int port = 0;
    int rc = parse_listen(cfg->listen, host, sizeof(host), &port, err);
    if (rc)
        return rc;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* listen.c binds and accepts; lws gets each socket from it (see there why). */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.vhost_name = "calderwood";
    info.protocols = protocols;
    info.timeout_secs = 30;
    info.pt_serv_buf_size = 65536; /* bytes per read */
    if (cfg->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
        info.alpn = "http/1.1"; /* http.c speaks HTTP/1.1 only */
        gw->tls = true;
    }
    /*
     * lws's own loop polls every socket on every turn, which at 10,000 open
     * connections costs more than the traffic; its libev plugin waits with
     * epoll instead, on a loop we own and turn (service_once), and on which
     * listen.c watches the listening socket.
     */
    gw->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!gw->loop)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot create the event loop (epoll)");
    void *loops[1] = {gw->loop};
    info.foreign_loops = loops;
    info.options |= LWS_SERVER_OPTION_LIBEV;
    gw->ctx = lws_create_context(&info);
    struct lws_vhost *vh = gw->ctx ? lws_get_vhost_by_name(gw->ctx, info.vhost_name) : NULL;
    if (!vh)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL,
                            "cannot start libwebsockets (a bad TLS file, or"
                            " libwebsockets-evlib-ev not installed?)");
    rc = cw_gateway_listen(cfg, err);
    if (rc)
        return rc;
    cw_listen_start(gw->loop, vh, protocols[0].name, gw->tls);
    snprintf(gw->origin, sizeof(gw->origin), "%s://%s:%d", gw->tls ? "https" : "http",
             cfg->listen[0] == '[' ? cfg->listen : host, port);
    if (cfg->listen[0] == '[')
        snprintf(gw->origin, sizeof(gw->origin), "%s://%s", gw->tls ? "https" : "http",
                 cfg->listen);
    return CW_OK;
}

static int setup(struct cw_gw *gw, struct cw_error *err)
{
    const struct cw_gateway_config *cfg = gw->cfg;
    gw->login_html = slurp(cfg->web_dir, "login.html", &gw->login_len, err);
    if (!gw->login_html)
        return CW_ERR_NOT_FOUND;
    gw->console_html = slurp(cfg->web_dir, "console.html", &gw->console_len, err);
    if (!gw->console_html)
        return CW_ERR_NOT_FOUND;
    char random_password[CW_UUID_LEN + 1];
    cw_uuid_v7(random_password);
    if (cw_password_hash(random_password, gw->dummy_hash))
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "password hashing failed (out of memory?)");
    gw->login_limit = cw_ratelimit_new(cfg->login_rate, cfg->login_burst, 100000);
    struct cw_db *db = NULL;
    int rc = cw_store_reader_open(cw_engine_store(gw->engine), &db, err);
    if (!rc)
        rc = cw_hub_load_sessions(db, err);
    if (!rc) /* live routing starts after what is already in the log */
        rc = cw_store_last_position(db, &gw->last_position, err);
    cw_db_close(db);
    if (rc)
        return rc;
    rc = create_context(gw, err);
    if (rc)
        return rc;
    start_sweep(gw);
    rc = cw_workers_start(cw_engine_store(gw->engine), cfg->workers, cfg->worker_queue, wake, NULL,
                          &gw->workers, err);
    if (rc)
        return rc;
    cw_bus_set_wake(cw_engine_bus(gw->engine), wake, NULL);
    return CW_OK;
}

static void teardown(struct cw_gw *gw)
{
    if (gw->workers)
        cw_workers_stop(gw->workers);
    cw_listen_close();
    if (gw->ctx) {
        lws_sul_cancel(&gw->sweep);
        lws_context_destroy(gw->ctx);
    }
    if (gw->loop)
        ev_loop_destroy(gw->loop);
    running_ctx = NULL;
    cw_hub_release();
    cw_ratelimit_free(gw->login_limit);
    free(gw->login_html);
    free(gw->console_html);
    cw_buf_release(&gw->out);
    cw_idmap_release(&gw->endpoints);
}

/* One turn of the loop: waits for something to happen, and handles it. */
static int service_once(struct cw_gw *gw)
{
    ev_run(gw->loop, EVRUN_ONCE);
    return 0;
}

/* Until every connection has had its close frame, or two seconds have passed. */
static void finish(struct cw_gw *gw)
{
    cw_hub_drain_bus();
    for (struct cw_conn *c = gw->conns; c; c = c->all_next)
        cw_ws_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    int64_t deadline = cw_now_us() + 2000000;
    while (gw->conns && cw_now_us() < deadline)
        service_once(gw);
}

static void log_lws(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        n--;
    cw_log(level & LLL_ERR ? CW_LOG_ERROR : CW_LOG_WARN, "lws", "message=\"%.*s\"", (int)n, line);
}

int cw_gateway_run(const struct cw_gateway_config *cfg, struct cw_engine *e,
                   const struct cw_domain *d, struct cw_metrics *m, struct cw_error *err)
{
    static struct cw_gw gw;
    memset(&gw, 0, sizeof(gw));
    gw.cfg = cfg;
    gw.engine = e;
    gw.domain = d;
    gw.metrics = m;
    cw_idmap_init(&gw.endpoints);
    cw_strmap_init(&gw.users);
    cw_strmap_init(&gw.sessions);
    cw_strmap_init(&gw.inflight);
    cw_gw = &gw;
    lws_set_log_level(LLL_ERR | LLL_WARN, log_lws);
    /* A peer that vanishes mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    int rc = setup(&gw, err);
    if (rc) {
        teardown(&gw);
        return rc;
    }
    running_ctx = gw.ctx;
    cw_info("gateway.listening", "url=%s workers=%d", gw.origin, cfg->workers);
    if (cfg->demo_banner)
        printf("\nCalderwood is running: open %s/login\n%s\n\n", gw.origin, cfg->demo_banner);
    else
        printf("Calderwood is running: open %s/login\n", gw.origin);
    fflush(stdout);
    if (cfg->on_listening)
        cfg->on_listening();
    if (atomic_load(&stop_requested))
        begin_stop();
    while (!(gw.draining && atomic_load(&gw.drained)))
        if (service_once(&gw) < 0)
            break;
    finish(&gw);
    teardown(&gw);
    cw_gw = NULL;
    return CW_OK;
}
