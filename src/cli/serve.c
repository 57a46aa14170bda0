/*
 * serve.c - `calderwood serve`: opens the data directory, applies
 * migrations (or, with --no-migrate, refuses pending ones), starts the
 * engine, creates the demo user on a new database, opens the admin socket
 * (DATA/calderwood.sock, for the CLI's user and session commands) and runs
 * the gateway until SIGINT or SIGTERM; then drains the command queue and
 * exits 0.
 * Under systemd (Type=notify) it reports READY=1 once listening and
 * STOPPING=1 when the drain starts.
 */
#include "admin/admin.h"
#include "auth/secret.h"
#include "cli.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/registry.h"
#include "engine/engine.h"
#include "engine/update.h"
#include "gateway/gateway.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEMO_EMAIL "demo@calderwood.local"

struct serve_options {
    struct cw_cli_common c;
    const char *secret_key_file, *listen, *tls_cert, *tls_key, *web_dir, *role, *queue;
    struct cw_strlist origins;
    int64_t queue_capacity, queue_pending, max_batch, max_message, hard_max_message, max_output,
        max_body;
    int64_t max_header, gateway_threads, workers, worker_queue, login_rate, login_burst;
    int64_t idle_timeout, header_timeout, body_timeout, ws_ping_interval, ws_pong_timeout;
    int64_t slow_reader_grace;
    bool no_demo_user, no_migrate;
};

/*
 * SIGINT and SIGTERM are caught by a handler that only writes the signal's
 * number to a pipe, whichever thread the kernel picks (a sanitizer's or a
 * library's own threads included); a thread of ours reads it and asks the
 * gateway to stop.
 */
static int signal_pipe[2] = {-1, -1};

/* --gateway-threads, or one per core the process may run on (at most 64). */
static int gateway_threads(int64_t asked)
{
    if (asked > 0)
        return (int)asked;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
}

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    ssize_t unused = write(signal_pipe[1], &b, 1);
    (void)unused;
}

static void *wait_for_signal(void *arg)
{
    (void)arg;
    unsigned char sig = 0;
    while (read(signal_pipe[0], &sig, 1) < 0 && errno == EINTR)
        ;
    cw_info("serve.signal", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cw_cli_notify("STOPPING=1");
    cw_gateway_stop();
    return NULL;
}

static int catch_stop_signals(struct cw_error *err)
{
    if (pipe2(signal_pipe, O_CLOEXEC))
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot make the signal pipe: %s",
                            strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return CW_OK;
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void on_listening(void)
{
    cw_cli_notify("READY=1");
}

/*
 * --web-dir, else ./web, else share/calderwood/web beside an installed
 * binary's bin/, else web/ beside the build folder the binary runs from.
 */
static const char *find_web_dir(const char *given, char *buf, size_t len)
{
    if (given)
        return given;
    if (is_dir("web/static"))
        return "web";
    char exe[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        snprintf(buf, len, "%s/../share/calderwood/web", exe);
        if (is_dir(buf))
            return buf;
        for (int up = 1; up <= 3; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            snprintf(buf, len, "%s/web", exe);
            if (is_dir(buf))
                return buf;
        }
    }
    return "web";
}

/* On a database without users, registers the demo user; fills banner with how to log in. */
static int ensure_demo_user(struct cw_engine *e, const struct cw_domain *d, char *banner,
                            size_t len, struct cw_error *err)
{
    struct cw_db *db = NULL;
    int64_t users = 0;
    int rc = cw_store_reader_open(cw_engine_store(e), &db, err);
    if (!rc)
        rc = cw_db_query_int(db, &users, err, "SELECT COUNT(*) FROM users", "");
    cw_db_close(db);
    if (rc || users)
        return rc;
    unsigned char raw[12];
    char password[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(password, sizeof(password), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    struct cw_outcome o = {0};
    rc = cw_cli_run_command(e, d, "register-user", "",
                            json_pack("{s:s,s:s,s:s,s:s}", "email", DEMO_EMAIL, "first_name",
                                      "Demo", "last_name", "User", "password", password),
                            &o, err);
    if (!rc && o.rejected)
        rc = cw_error_set(err, CW_ERR_REJECTED, NULL, "demo user: %s", o.reject.message);
    cw_outcome_release(&o);
    if (!rc)
        snprintf(banner, len,
                 "Log in as %s with password %s\n(a new database: this demo user "
                 "was made for you; it is shown only now)",
                 DEMO_EMAIL, password);
    return rc;
}

static int serve(struct serve_options *o, struct cw_error *err)
{
    char key_path[4200], web_buf[PATH_MAX], banner[300] = "";
    unsigned char key[CW_SECRET_LEN];
    bool created;
    struct cw_domain *d = NULL;
    struct cw_engine *e = NULL;
    static struct cw_metrics metrics;
    int rc = cw_cli_prepare(&o->c, true, err);
    int role = cw_role_parse(o->role);
    if (!rc && role < 0)
        rc = cw_error_set(err, CW_ERR_INVALID, NULL,
                          "--role must be all, gateway, processor or query, not %s", o->role);
    if (!rc && strcmp(o->queue, "local") && strncmp(o->queue, "nats://", 7))
        rc = cw_error_set(err, CW_ERR_INVALID, NULL,
                          "--queue must be local or nats://HOST:PORT[,...], not %s", o->queue);
    if (!rc && strcmp(o->queue, "local") && strncmp(o->c.store_url, "postgres", 8))
        rc =
            cw_error_set(err, CW_ERR_INVALID, NULL,
                         "--queue %s needs a PostgreSQL store (--store postgres://...): processors "
                         "on several machines share it, and its lock chooses the active one",
                         o->queue);
    if (!rc && (!o->tls_cert) != (!o->tls_key))
        rc = cw_error_set(err, CW_ERR_INVALID, NULL, "--tls-cert and --tls-key go together");
    if (!rc)
        rc = cw_cli_lock(&o->c, "serve", err);
    if (!rc) /* before anything is written: a taken address changes nothing */
        rc = cw_gateway_listen(&(struct cw_gateway_config){.listen = o->listen}, err);
    if (!rc) {
        snprintf(key_path, sizeof(key_path), "%s/secret.key", o->c.data_dir);
        rc = cw_secret_load(o->secret_key_file ? o->secret_key_file : key_path, key, &created, err);
    }
    if (!rc)
        rc = cw_cli_domain(&o->c, &d, err);
    struct cw_engine_config cfg = {
        .db_path = o->c.store_url,
        .queue_capacity = (size_t)o->queue_capacity,
        .queue_pending = (size_t)o->queue_pending,
        .max_batch = (size_t)o->max_batch,
        .observer = cw_metrics_observe_commit,
        .observer_arg = &metrics,
        .no_migrate = o->no_migrate,
        .role = role,
        .queue_url = o->queue,
    };
    if (!rc)
        rc = cw_engine_open(&cfg, d, &e, err);
    if (!rc)
        cw_info("store.opened", "store=%s", o->c.store_label);
    if (!rc)
        cw_info("serve.role", "role=%s queue=%s", cw_role_name(role), o->queue);
    /* The demo user goes through the queue: only where this process can wait for its outcome. */
    if (!rc && !o->no_demo_user && !o->c.no_demo && role == CW_ROLE_ALL &&
        !strcmp(o->queue, "local"))
        rc = ensure_demo_user(e, d, banner, sizeof(banner), err);
    if (!rc) {
        if (created)
            cw_info("secret.created", "path=%s",
                    o->secret_key_file ? o->secret_key_file : key_path);
        struct cw_gateway_config g = {
            .listen = o->listen,
            .tls_cert = o->tls_cert,
            .tls_key = o->tls_key,
            .web_dir = find_web_dir(o->web_dir, web_buf, sizeof(web_buf)),
            .allowed_origins = o->origins.items,
            .n_allowed_origins = o->origins.n,
            .max_message = (size_t)o->max_message,
            .hard_max_message = (size_t)o->hard_max_message,
            .max_output = (size_t)o->max_output,
            .slow_reader_grace_ms = (int)o->slow_reader_grace,
            .max_body = (size_t)o->max_body,
            .max_header = (size_t)o->max_header,
            .idle_timeout = (int)o->idle_timeout,
            .header_timeout = (int)o->header_timeout,
            .body_timeout = (int)o->body_timeout,
            .ws_ping_interval = (int)o->ws_ping_interval,
            .ws_pong_timeout = (int)o->ws_pong_timeout,
            .threads = gateway_threads(o->gateway_threads),
            .workers = (int)o->workers,
            .worker_queue = (size_t)o->worker_queue,
            .login_rate = (double)o->login_rate / 60.0,
            .login_burst = (double)o->login_burst,
            .secret_key = key,
            .demo_banner = banner[0] ? banner : NULL,
            .on_listening = on_listening,
            .role = role,
        };
        pthread_t signals;
        pthread_create(&signals, NULL, wait_for_signal, NULL);
        pthread_detach(signals);
        /*
         * The CLI's admin commands come in here from now on (src/admin/);
         * a distributed role refuses them: they go through the queue.
         */
        struct cw_admin_server *admin = NULL;
        bool local = !strcmp(o->queue, "local");
        rc = cw_admin_server_start(o->c.data_dir, local ? e : NULL, d, &admin, err);
        if (!rc)
            rc = cw_gateway_run(&g, e, d, &metrics, err);
        cw_engine_drain(e); /* before the admin threads go: their commands' outcomes come */
        cw_admin_server_stop(admin);
    }
    cw_engine_close(e);
    cw_domain_free(d);
    sodium_memzero(key, sizeof(key));
    if (!rc)
        cw_info("serve.stopped", "status=clean");
    return rc;
}

int cw_cli_serve(int argc, char **argv)
{
    struct serve_options o = {0};
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&o.c),
        {"listen", CW_OPT_STRING, &o.listen, "127.0.0.1:8080", 0, 0, "HOST:PORT",
         "address to serve HTTP and WebSocket on"},
        {"role", CW_OPT_STRING, &o.role, "all", 0, 0, "ROLE",
         "all (one process), gateway, processor (serves /health and /metrics only) or query "
         "(/query too); every role but all needs --queue nats://"},
        {"queue", CW_OPT_STRING, &o.queue, "local", 0, 0, "URL",
         "the command queue: local (in this process) or nats://HOST:PORT[,...] (JetStream; "
         "the store must then be PostgreSQL)"},
        {"tls-cert", CW_OPT_STRING, &o.tls_cert, NULL, 0, 0, "FILE",
         "serve HTTPS/WSS with this PEM certificate (cookies then carry Secure)"},
        {"tls-key", CW_OPT_STRING, &o.tls_key, NULL, 0, 0, "FILE", "the certificate's key"},
        {"web-dir", CW_OPT_STRING, &o.web_dir, NULL, 0, 0, "DIR",
         "the console's pages and static/ folder (default ./web, else share/calderwood/web "
         "beside an installed binary's bin/, else web/ beside the build)"},
        {"allowed-origin", CW_OPT_LIST, &o.origins, NULL, 0, 0, "URL",
         "another Origin allowed to open /ws (besides the server's own); repeatable"},
        {"secret-key-file", CW_OPT_STRING, &o.secret_key_file, NULL, 0, 0, "FILE",
         "the 32-byte key sealing cookies (default DIR/secret.key, made on first start)"},
        {"queue-capacity", CW_OPT_INT, &o.queue_capacity, "65536", 1, 1 << 24, "N",
         "commands waiting for the processor at most; beyond, clients get `overloaded`"},
        {"queue-pending", CW_OPT_INT, &o.queue_pending, "4096", 1, 1 << 20, "N",
         "a gateway's commands published to NATS and not yet acknowledged by JetStream, at most; "
         "beyond, clients get `overloaded` (a distributed --queue only)"},
        {"max-batch", CW_OPT_INT, &o.max_batch, "2048", 1, 65536, "N",
         "commands per write transaction at most"},
        {"max-message", CW_OPT_INT, &o.max_message, "65536", 256, 1 << 30, "BYTES",
         "WebSocket message limit: larger ones get `too-large`, the connection stays"},
        {"hard-max-message", CW_OPT_INT, &o.hard_max_message, "1048576", 256, 1 << 30, "BYTES",
         "WebSocket message size that closes the connection (1009)"},
        {"max-output", CW_OPT_INT, &o.max_output, "1048576", 4096, 1 << 30, "BYTES",
         "unsent output per connection before it is closed as too slow (1008)"},
        {"slow-reader-grace", CW_OPT_INT, &o.slow_reader_grace, "2000", 0, 3600000, "MS",
         "a connection over --max-output is closed (1008) only once its socket has taken "
         "nothing more and its output has stayed over the bound this long"},
        {"max-body", CW_OPT_INT, &o.max_body, "1048576", 1024, 1 << 30, "BYTES",
         "HTTP request body limit (413 beyond)"},
        {"max-header", CW_OPT_INT, &o.max_header, "8192", 1024, 65535, "BYTES",
         "HTTP request head limit: request line and headers (431 beyond)"},
        {"idle-timeout", CW_OPT_INT, &o.idle_timeout, "60", 1, 86400, "SECONDS",
         "a kept-alive HTTP connection with no request begun is closed after this"},
        {"header-timeout", CW_OPT_INT, &o.header_timeout, "10", 1, 3600, "SECONDS",
         "a request head must arrive whole within this of its first byte, or the connection is "
         "cut"},
        {"body-timeout", CW_OPT_INT, &o.body_timeout, "30", 1, 3600, "SECONDS",
         "a request body must arrive whole within this of its head, or the connection is cut"},
        {"ws-ping-interval", CW_OPT_INT, &o.ws_ping_interval, "30", 1, 86400, "SECONDS",
         "a WebSocket client silent this long is sent a ping"},
        {"ws-pong-timeout", CW_OPT_INT, &o.ws_pong_timeout, "30", 1, 3600, "SECONDS",
         "a WebSocket client silent this long after a ping is closed (1001)"},
        {"gateway-threads", CW_OPT_INT, &o.gateway_threads, NULL, 1, 64, "N",
         "threads serving connections, each with its own event loop (default: the number of "
         "cores; on two cores, 1 serves more: the processor thread needs the other)"},
        {"workers", CW_OPT_INT, &o.workers, "2", 1, 256, "N",
         "worker threads for queries, logins and look-ups"},
        {"worker-queue", CW_OPT_INT, &o.worker_queue, "10000", 1, 1 << 24, "N",
         "jobs waiting for a worker at most; beyond, requests get 503 / `overloaded`"},
        {"login-rate", CW_OPT_INT, &o.login_rate, "60", 1, 1000000, "N",
         "login attempts per minute per remote address (429 beyond)"},
        {"login-burst", CW_OPT_INT, &o.login_burst, "20", 1, 1000000, "N",
         "login attempts a remote address may make at once"},
        {"no-demo-user", CW_OPT_BOOL, &o.no_demo_user, "no", 0, 0, NULL,
         "do not create the demo user on a new database"},
        {"no-migrate", CW_OPT_BOOL, &o.no_migrate, "no", 0, 0, NULL,
         "refuse to start while migrations are pending, instead of applying them"},
        {0},
    };
    int code;
    if (!cw_cli_parse("usage: calderwood serve [options]", opts, argc, argv, NULL, &code))
        return code;
    struct cw_error err = {0};
    if (catch_stop_signals(&err))
        return cw_cli_fail(&err);
    return serve(&o, &err) ? cw_cli_fail(&err) : 0;
}
