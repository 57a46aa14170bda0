/*
 * server.c - the gateway's threads and their event loops: for each, a
 * libwebsockets context on a libev loop, the one protocol callback that
 * dispatches to http.c and ws.c, and the wake-up that brings in handed-over
 * sockets, outcomes and worker results; the hand-off of accepted sockets;
 * and the graceful stop of every thread.
 *
 * Thread 0 (the caller of cw_gateway_run) also accepts: each socket goes to
 * the thread holding the fewest (round robin among equals), through that
 * thread's inbox and lws_cancel_service(); the owner adopts it into its own
 * context. One acceptor rather than SO_REUSEPORT: see ARCHITECTURE.md.
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
#include <unistd.h>

struct cw_gws *cw_gws;
_Thread_local struct cw_gw *cw_gw;
static atomic_bool stop_requested;
static struct cw_gws *_Atomic running; /* for cw_gateway_stop, while the loops run */

static const char protocols_name[] = "calderwood";

/* The per-connection user space lws keeps for us: the HTTP or WebSocket record. */
struct cw_pss {
    void *ep; /* struct cw_http * or struct cw_conn * (both start with int kind) */
};

static void wake_all(struct cw_gws *g)
{
    for (int i = 0; i < g->n_threads; i++)
        if (g->threads[i] && g->threads[i]->ctx)
            lws_cancel_service(g->threads[i]->ctx);
}

void cw_gateway_stop(void)
{
    atomic_store(&stop_requested, true);
    struct cw_gws *g = atomic_load(&running);
    if (g)
        wake_all(g);
}

const char *cw_gateway_library_version(void)
{
    return lws_get_library_version();
}

/* The bus's and the workers' wake hook: any thread. */
static void wake(void *arg)
{
    struct cw_gw *gw = arg;
    lws_cancel_service(gw->ctx);
}

/* The drain runs off the loops: it waits for the processor, which every loop must keep serving. */
static void *drain_engine(void *arg)
{
    (void)arg;
    cw_engine_drain(cw_gws->engine);
    atomic_store(&cw_gws->drained, true);
    wake_all(cw_gws);
    return NULL;
}

/* This thread stops taking connections and commands; the first to stop drains the engine. */
static void begin_stop(void)
{
    cw_info("gateway.stopping", "thread=%d connections=%d", cw_gw->index,
            atomic_load(&cw_gw->ws_conns));
    cw_gw->stopping = true;
    if (atomic_exchange(&cw_gws->draining, true))
        return;
    /* Joined before the contexts it wakes are destroyed (cw_gateway_run). */
    if (pthread_create(&cw_gws->drain_thread, NULL, drain_engine, NULL) == 0)
        cw_gws->drain_joinable = true;
    else
        drain_engine(NULL);
}

/* ------------------------------------------------------------- hand-off */

/* Gives fd to this thread's lws context; closes it when this thread is stopping. */
static void adopt(int fd)
{
    if (cw_gw->stopping) {
        close(fd);
        atomic_fetch_sub(&cw_gw->load, 1);
        return;
    }
    lws_sock_file_fd_type desc = {.sockfd = fd};
    cw_gw->adopted = false;
    /* On failure lws has closed the socket; the client sees the connection end. */
    lws_adopt_descriptor_vhost(cw_gw->vh,
                               LWS_ADOPT_SOCKET | (cw_gws->tls ? LWS_ADOPT_ALLOW_SSL : 0), desc,
                               protocols_name, NULL);
    if (!cw_gw->adopted) /* else RAW_CLOSE takes it off the load */
        atomic_fetch_sub(&cw_gw->load, 1);
}

/* Adopts what the accepting thread handed over. */
static void adopt_inbox(void)
{
    int fds[CW_GW_INBOX];
    pthread_mutex_lock(&cw_gw->inbox_lock);
    size_t n = cw_gw->inbox_len;
    memcpy(fds, cw_gw->inbox, n * sizeof(int));
    cw_gw->inbox_len = 0;
    pthread_mutex_unlock(&cw_gw->inbox_lock);
    for (size_t i = 0; i < n; i++)
        adopt(fds[i]);
}

/* The thread with the fewest sockets, taking turns among equals. */
static struct cw_gw *pick_thread(void)
{
    unsigned start = atomic_fetch_add(&cw_gws->next_thread, 1);
    struct cw_gw *best = NULL;
    int best_load = 0;
    for (int k = 0; k < cw_gws->n_threads; k++) {
        struct cw_gw *t = cw_gws->threads[(start + (unsigned)k) % (unsigned)cw_gws->n_threads];
        int load = atomic_load(&t->load);
        if (!best || load < best_load) {
            best = t;
            best_load = load;
        }
    }
    return best;
}

/* listen.c's callback, on thread 0: a new socket goes to its thread. */
static void on_socket(int fd, void *arg)
{
    (void)arg;
    struct cw_gw *t = pick_thread();
    bool queued = false;
    if (t != cw_gw) {
        pthread_mutex_lock(&t->inbox_lock);
        if (t->inbox_len < CW_GW_INBOX) {
            t->inbox[t->inbox_len++] = fd;
            queued = true;
        }
        pthread_mutex_unlock(&t->inbox_lock);
    }
    if (queued) {
        atomic_fetch_add(&t->load, 1);
        lws_cancel_service(t->ctx);
        return;
    }
    atomic_fetch_add(&cw_gw->load, 1); /* ours, or that thread's inbox is full */
    adopt(fd);
}

static void on_wake(void)
{
    adopt_inbox();
    cw_workers_complete(cw_gw->workers);
    cw_acks_drain(); /* before the bus: a command's ack tends to go before its updates */
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
    const struct cw_gateway_config *cfg = cw_gws->cfg;
    int shorter =
        cfg->ws_ping_interval < cfg->ws_pong_timeout ? cfg->ws_ping_interval : cfg->ws_pong_timeout;
    gw->sweep_every = (lws_usec_t)shorter * LWS_USEC_PER_SEC / 4;
    if (gw->sweep_every > LWS_USEC_PER_SEC)
        gw->sweep_every = LWS_USEC_PER_SEC;
    /* A slow reader's grace ends at most a quarter of it late (and not every 10 ms). */
    lws_usec_t grace = (lws_usec_t)cfg->slow_reader_grace_ms * 1000 / 4;
    if (grace && grace < gw->sweep_every)
        gw->sweep_every = grace < 10000 ? 10000 : grace;
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
        if (cw_gw->stopping || cw_http_on_open(wsi, &pss->ep))
            return -1;
        cw_gw->adopted = true;
        return 0;
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
        if (EP(pss))
            atomic_fetch_sub(&cw_gw->load, 1);
        if (pss)
            pss->ep = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {protocols_name, callback, sizeof(struct cw_pss), 65536, 0, NULL, 0},
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

/* Our own origin, "http://HOST:PORT", for the same-origin check. */
static void set_origin(struct cw_gws *g, const char *listen, const char *host, int port)
{
    const char *scheme = g->tls ? "https" : "http";
    if (listen[0] == '[')
        snprintf(g->origin, sizeof(g->origin), "%s://%s", scheme, listen);
    else
        snprintf(g->origin, sizeof(g->origin), "%s://%s:%d", scheme, host, port);
}

/* One thread's lws context on a libev loop of its own. */
static int create_context(struct cw_gw *gw, struct cw_error *err)
{
    const struct cw_gateway_config *cfg = cw_gws->cfg;
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
    gw->vh = gw->ctx ? lws_get_vhost_by_name(gw->ctx, info.vhost_name) : NULL;
    if (!gw->vh)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL,
                            "cannot start libwebsockets (a bad TLS file, or"
                            " libwebsockets-evlib-ev not installed?)");
    return CW_OK;
}

/* One gateway thread's state, its loop, its workers and its reader of the bus. */
static int setup_thread(int index, struct cw_error *err)
{
    /* Aligned: its counters take a cache line of their own (struct cw_thread_metrics). */
    struct cw_gw *gw = aligned_alloc(_Alignof(struct cw_gw), sizeof(*gw));
    if (!gw)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "out of memory");
    memset(gw, 0, sizeof(*gw));
    gw->index = index;
    cw_idmap_init(&gw->endpoints);
    cw_strmap_init(&gw->users);
    pthread_mutex_init(&gw->inbox_lock, NULL);
    pthread_mutex_init(&gw->acks_lock, NULL);
    cw_gws->threads[index] = gw;
    int rc = create_context(gw, err);
    if (rc)
        return rc;
    start_sweep(gw);
    /* The pool is split between the threads: each thread's jobs come back to its own loop. */
    int n = cw_gws->n_threads;
    int workers = (cw_gws->cfg->workers + n - 1) / n;
    size_t queue = (cw_gws->cfg->worker_queue + (size_t)n - 1) / (size_t)n;
    rc = cw_workers_start(cw_engine_store(cw_gws->engine), workers, queue, wake, gw, &gw->workers,
                          err);
    if (rc)
        return rc;
    gw->bus = cw_bus_subscribe(cw_engine_bus(cw_gws->engine), wake, gw);
    if (!gw->bus)
        return cw_error_set(err, CW_ERR_INVALID, NULL, "too many gateway threads for the bus");
    cw_bus_reader_tag(gw->bus, (uint64_t)1 << index); /* the bit cw_hub_filter gives it */
    return CW_OK;
}

/* What every thread shares: pages, the dummy hash, the login limit, sessions, the position. */
static int setup_shared(struct cw_gws *g, struct cw_error *err)
{
    const struct cw_gateway_config *cfg = g->cfg;
    g->login_html = slurp(cfg->web_dir, "login.html", &g->login_len, err);
    if (!g->login_html)
        return CW_ERR_NOT_FOUND;
    g->console_html = slurp(cfg->web_dir, "console.html", &g->console_len, err);
    if (!g->console_html)
        return CW_ERR_NOT_FOUND;
    char random_password[CW_UUID_LEN + 1];
    cw_uuid_v7(random_password);
    if (cw_password_hash(random_password, g->dummy_hash))
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "password hashing failed (out of memory?)");
    g->login_limit = cw_ratelimit_new(cfg->login_rate, cfg->login_burst, 100000);
    g->tls = cfg->tls_cert != NULL;
    char host[256];
    int port = 0;
    int rc = parse_listen(cfg->listen, host, sizeof(host), &port, err);
    if (rc)
        return rc;
    set_origin(g, cfg->listen, host, port);
    return CW_OK;
}

/* After every thread reads the bus: the sessions and the position live routing starts after. */
static int load_state(struct cw_gws *g, struct cw_error *err)
{
    struct cw_db *db = NULL;
    int64_t last = 0;
    int rc = cw_store_reader_open(cw_engine_store(g->engine), &db, err);
    if (!rc)
        rc = cw_sessions_load(db, err);
    if (!rc)
        rc = cw_store_last_position(db, &last, err);
    cw_db_close(db);
    if (rc)
        return rc;
    cw_sessions_start_at(last);
    for (int i = 0; i < g->n_threads; i++)
        g->threads[i]->last_position = last;
    return CW_OK;
}

static int setup(struct cw_gws *g, struct cw_error *err)
{
    int rc = setup_shared(g, err);
    for (int i = 0; !rc && i < g->n_threads; i++)
        rc = setup_thread(i, err);
    if (!rc)
        rc = load_state(g, err);
    if (!rc) /* every thread is there: batches wake only the threads they concern */
        cw_bus_set_filter(cw_engine_bus(g->engine), cw_hub_filter, g);
    if (!rc)
        rc = cw_gateway_listen(g->cfg, err);
    if (!rc)
        cw_listen_start(g->threads[0]->loop, on_socket, NULL);
    return rc;
}

/* Frees one thread's state; on that thread, or on thread 0 once it has ended. */
static void teardown_thread(struct cw_gw *gw)
{
    if (!gw)
        return;
    struct cw_gw *saved = cw_gw;
    cw_gw = gw; /* cancelled jobs' done() look up this thread's endpoints */
    if (gw->workers)
        cw_workers_stop(gw->workers);
    if (gw->index == 0)
        cw_listen_close();
    cw_bus_leave(gw->bus);
    gw->bus = NULL;
    if (gw->ctx) {
        lws_sul_cancel(&gw->sweep);
        lws_context_destroy(gw->ctx);
    }
    if (gw->loop)
        ev_loop_destroy(gw->loop);
    for (size_t i = 0; i < gw->inbox_len; i++) /* handed over after it stopped */
        close(gw->inbox[i]);
    cw_ws_release();
    cw_buf_release(&gw->out);
    cw_idmap_release(&gw->endpoints);
    cw_acks_release(gw);
    pthread_mutex_destroy(&gw->inbox_lock);
    cw_gw = saved;
    free(gw);
}

static void teardown(struct cw_gws *g)
{
    atomic_store(&running, NULL);
    cw_bus_set_filter(cw_engine_bus(g->engine), NULL, NULL); /* it reads the threads */
    for (int i = 0; i < g->n_threads; i++) {
        teardown_thread(g->threads[i]);
        g->threads[i] = NULL;
    }
    cw_sessions_release();
    cw_inflight_release();
    cw_ratelimit_free(g->login_limit);
    pthread_mutex_destroy(&g->limit_lock);
    free(g->login_html);
    free(g->console_html);
}

/*
 * One turn of the loop: waits for something to happen, and handles it.
 * What the turn queued for a connection (acks of its commands, updates of
 * the batches routed, pongs) goes out in one write at its end: on a busy
 * thread an ack and the update of an earlier command often share it.
 */
static void service_once(struct cw_gw *gw)
{
    cw_ws_defer_begin();
    ev_run(gw->loop, EVRUN_ONCE);
    cw_ws_defer_end();
}

/* Until every connection has had its close frame, or two seconds have passed. */
static void finish(struct cw_gw *gw)
{
    cw_ws_defer_begin(); /* outside a loop turn: one write per connection all the same */
    cw_acks_drain();     /* the queue answered every publish when it closed */
    cw_hub_drain_bus();
    cw_ws_defer_end();
    for (struct cw_conn *c = gw->conns; c; c = c->all_next)
        cw_ws_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    int64_t deadline = cw_now_us() + 2000000;
    while (gw->conns && cw_now_us() < deadline)
        service_once(gw);
}

/* A gateway thread's life: serve until stopped and the engine is drained, then close. */
static void run_loop(struct cw_gw *gw)
{
    if (atomic_load(&stop_requested))
        begin_stop();
    while (!(gw->stopping && atomic_load(&cw_gws->drained)))
        service_once(gw);
    finish(gw);
}

static void *thread_main(void *arg)
{
    cw_gw = arg;
    /* Thread 0 is the main thread and keeps the process's name, which ps and pidof show. */
    char name[16];
    snprintf(name, sizeof(name), "cw-gateway-%d", cw_gw->index);
    pthread_setname_np(pthread_self(), name);
    run_loop(cw_gw);
    return NULL;
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
    static struct cw_gws g;
    memset(&g, 0, sizeof(g));
    g.cfg = cfg;
    g.engine = e;
    g.domain = d;
    g.metrics = m;
    g.n_threads = cfg->threads < 1                   ? 1
                  : cfg->threads > CW_GW_MAX_THREADS ? CW_GW_MAX_THREADS
                                                     : cfg->threads;
    pthread_mutex_init(&g.limit_lock, NULL);
    cw_sessions_init();
    cw_inflight_init();
    cw_gws = &g;
    lws_set_log_level(LLL_ERR | LLL_WARN, log_lws);
    /* A peer that vanishes mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    int rc = setup(&g, err);
    int started = 1;
    for (; !rc && started < g.n_threads; started++)
        if (pthread_create(&g.threads[started]->thread, NULL, thread_main, g.threads[started]))
            rc = cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot start gateway thread %d", started);
    if (rc) {
        /* Threads that did start stop at once, as if asked to. */
        cw_gateway_stop();
        atomic_store(&g.drained, true);
        wake_all(&g);
        for (int i = 1; i < started; i++)
            pthread_join(g.threads[i]->thread, NULL);
        if (g.drain_joinable)
            pthread_join(g.drain_thread, NULL);
        teardown(&g);
        cw_gws = NULL;
        return rc;
    }
    atomic_store(&running, &g);
    cw_info("gateway.listening", "url=%s threads=%d workers=%d", g.origin, g.n_threads,
            cfg->workers);
    if (cfg->demo_banner)
        printf("\nCalderwood is running: open %s/login\n%s\n\n", g.origin, cfg->demo_banner);
    else
        printf("Calderwood is running: open %s/login\n", g.origin);
    fflush(stdout);
    if (cfg->on_listening)
        cfg->on_listening();
    cw_gw = g.threads[0];
    run_loop(cw_gw);
    for (int i = 1; i < g.n_threads; i++)
        pthread_join(g.threads[i]->thread, NULL);
    if (g.drain_joinable)
        pthread_join(g.drain_thread, NULL);
    cw_gw = NULL;
    teardown(&g);
    cw_gws = NULL;
    return CW_OK;
}
