/*
 * query.c - the `query` mode: POST /query over N keep-alive HTTP/1.1
 * connections, one request in flight per connection (no pipelining).
 *
 * With --rate R (> 0) it is open loop like `rate`: connection g of N has
 * its k-th request due at t0 + (g + k*N) / R, a request that has to wait for
 * the previous answer is sent as soon as it comes, and latency counts from
 * the due time. With --rate 0 each connection sends the next request as
 * soon as the answer arrives (flat out, closed loop) and latency counts
 * from the write. A connection the server closes is reopened (counted).
 */
#include "bench.h"
#include "clock.h"
#include "histogram.h"
#include "http.h"
#include "proc.h"
#include "report.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { QP_CONNECT, QP_GO, QP_STOP };

struct qshared {
    const struct bench_opts *o;
    _Atomic int phase;
    int64_t t0, t_end;
    double per_ns; /* 0: flat out */
    int nconn;
    char *request; /* the whole request, cookie included, per user */
    size_t request_len;
};

struct qconn {
    int fd, g;
    bool want_out, busy, dead;
    int64_t t_start; /* due time (rate) or write time (flat out) of the request in flight */
    uint64_t k;      /* requests started */
    const char *req;
    size_t req_len;
    struct bbuf out, in;
};

struct qthread {
    pthread_t th;
    struct qshared *sh;
    int ep;
    struct qconn *c;
    int n;
    struct cw_hist lat;
    struct codes status;
    uint64_t done, errors, reconnects, outstanding;
    int64_t cpu0, cpu1;
    _Atomic int ready, idle;
};

static void arm(struct qthread *qt, struct qconn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(qt->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static int reconnect(struct qthread *qt, struct qconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->in.off = c->in.len = 0;
    c->out.off = c->out.len = 0;
    c->fd = net_connect_blocking(&qt->sh->o->target, 5000);
    if (c->fd < 0) {
        c->dead = true;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(qt->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = false;
    return 0;
}

static int64_t due(const struct qshared *sh, const struct qconn *c, uint64_t k)
{
    return sh->t0 + (int64_t)(((double)c->g + (double)k * sh->nconn) * sh->per_ns);
}

/* Starts the next request on c when one is due. */
static void maybe_send(struct qthread *qt, struct qconn *c, int64_t now)
{
    struct qshared *sh = qt->sh;
    if (c->busy || c->dead || now < sh->t0)
        return;
    int64_t t = sh->per_ns > 0 ? due(sh, c, c->k) : now;
    if (t >= sh->t_end || t > now)
        return;
    c->t_start = t;
    c->k++;
    c->busy = true;
    qt->outstanding++;
    bbuf_add(&c->out, c->req, c->req_len);
    if (bbuf_write(&c->out, c->fd)) {
        qt->errors++;
        codes_add(&qt->status, "write-error", 1);
        c->busy = false;
        qt->outstanding--;
        qt->reconnects++;
        reconnect(qt, c);
        return;
    }
    if (bbuf_pending(&c->out) && !c->want_out)
        arm(qt, c, true);
}

static void on_readable(struct qthread *qt, struct qconn *c)
{
    for (;;) {
        bbuf_reserve(&c->in, 16384);
        ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        int64_t now = now_ns();
        if (r <= 0) { /* closed by the server */
            if (c->busy) {
                qt->errors++;
                codes_add(&qt->status, "closed", 1);
                c->busy = false;
                qt->outstanding--;
            }
            qt->reconnects++;
            reconnect(qt, c);
            return;
        }
        c->in.len += (size_t)r;
        struct http_resp resp;
        long len = http_parse(c->in.p + c->in.off, bbuf_pending(&c->in), &resp);
        if (len < 0) {
            qt->errors++;
            codes_add(&qt->status, "not-http", 1);
            c->busy = false;
            qt->outstanding--;
            qt->reconnects++;
            reconnect(qt, c);
            return;
        }
        if (len == 0)
            continue;
        if (c->busy) {
            c->busy = false;
            qt->outstanding--;
            qt->done++;
            cw_hist_record(&qt->lat, now - c->t_start);
            char code[8];
            snprintf(code, sizeof(code), "%d", resp.status);
            codes_add(&qt->status, code, 1);
            if (resp.status != 200)
                qt->errors++;
        }
        bbuf_consume(&c->in, (size_t)len);
        if (resp.close) {
            qt->reconnects++;
            reconnect(qt, c);
            return;
        }
        maybe_send(qt, c, now);
        return;
    }
}

static void *qthread_main(void *arg)
{
    struct qthread *qt = arg;
    struct qshared *sh = qt->sh;
    prctl(PR_SET_TIMERSLACK, 1000UL);
    atomic_store(&qt->ready, 1);
    while (atomic_load(&sh->phase) == QP_CONNECT)
        sleep_ns(NS_PER_MS);
    qt->cpu0 = thread_cpu_ns();
    struct epoll_event evs[256];
    while (atomic_load(&sh->phase) == QP_GO) {
        int64_t now = now_ns(), next = now + 2 * NS_PER_MS;
        for (int i = 0; i < qt->n; i++) {
            struct qconn *c = &qt->c[i];
            maybe_send(qt, c, now);
            if (sh->per_ns > 0 && !c->busy && !c->dead) {
                int64_t t = due(sh, c, c->k);
                if (t < sh->t_end && t < next)
                    next = t;
            }
        }
        if (now >= sh->t_end && qt->outstanding == 0)
            atomic_store(&qt->idle, 1);
        int64_t wait = next - now_ns();
        if (wait < 0)
            wait = 0;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = wait};
        int n = epoll_pwait2(qt->ep, evs, 256, &ts, NULL);
        for (int i = 0; i < n; i++) {
            struct qconn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (evs[i].events & EPOLLOUT) {
                if (bbuf_write(&c->out, c->fd) == 0 && !bbuf_pending(&c->out))
                    arm(qt, c, false);
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(qt, c);
        }
    }
    qt->cpu1 = thread_cpu_ns();
    return NULL;
}

int bench_query_main(const struct bench_opts *o)
{
    struct sessions s;
    if (bench_sessions(o, &s))
        return 1;
    int N = o->connections, T = o->threads < 1 ? 1 : o->threads;
    if (T > N)
        T = N;
    struct qshared sh = {.o = o, .nconn = N, .per_ns = o->rate > 0 ? 1e9 / o->rate : 0};
    char **reqs = xcalloc((size_t)s.n, sizeof(char *));
    size_t *req_lens = xcalloc((size_t)s.n, sizeof(size_t));
    char body[8192];
    int blen = snprintf(body, sizeof(body), "{\"name\":\"%s\",\"data\":%s}", o->query, o->data);
    for (int u = 0; u < s.n; u++) {
        struct bbuf b = {0};
        jb_printf(&b,
                  "POST /query HTTP/1.1\r\nHost: %s:%d\r\nCookie: %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                  o->target.host, o->target.port, s.cookies[u], blen, body);
        reqs[u] = b.p;
        req_lens[u] = b.len;
    }
    struct qthread **qts = xcalloc((size_t)T, sizeof(*qts));
    int failed = 0;
    for (int t = 0; t < T; t++) {
        struct qthread *qt = qts[t] = xcalloc(1, sizeof(struct qthread));
        qt->sh = &sh;
        qt->ep = epoll_create1(EPOLL_CLOEXEC);
        qt->n = (N - t + T - 1) / T;
        qt->c = xcalloc((size_t)qt->n, sizeof(struct qconn));
        cw_hist_init(&qt->lat);
        for (int i = 0; i < qt->n; i++) {
            struct qconn *c = &qt->c[i];
            c->fd = -1;
            c->g = t + i * T;
            c->req = reqs[c->g % s.n];
            c->req_len = req_lens[c->g % s.n];
            if (reconnect(qt, c))
                failed++;
        }
    }
    if (failed) {
        fprintf(stderr, "calderwood-bench: %d of %d HTTP connections failed: %s\n", failed, N,
                strerror(errno));
        return 1;
    }
    for (int t = 0; t < T; t++)
        pthread_create(&qts[t]->th, NULL, qthread_main, qts[t]);
    for (int t = 0; t < T; t++)
        while (!atomic_load(&qts[t]->ready))
            sleep_ns(NS_PER_MS);
    int64_t srv0 = o->server_pid ? proc_cpu_ns(o->server_pid) : -1, self0 = self_cpu_ns();
    int64_t busy0 = machine_busy_ns();
    sh.t0 = now_ns() + 10 * NS_PER_MS;
    sh.t_end = sh.t0 + (int64_t)(o->duration * 1e9);
    atomic_store(&sh.phase, QP_GO);
    sleep_ns(sh.t_end - now_ns());
    int64_t grace_end = sh.t_end + (int64_t)(o->grace * 1e9);
    for (;;) {
        int idle = 0;
        for (int t = 0; t < T; t++)
            idle += atomic_load(&qts[t]->idle);
        if (idle == T || now_ns() > grace_end)
            break;
        sleep_ns(NS_PER_MS);
    }
    int64_t t_done = now_ns();
    int64_t srv1 = o->server_pid ? proc_cpu_ns(o->server_pid) : -1, self1 = self_cpu_ns();
    int64_t busy1 = machine_busy_ns();
    atomic_store(&sh.phase, QP_STOP);

    struct cw_hist *lat = xmalloc(sizeof(*lat));
    cw_hist_init(lat);
    struct codes status = {0};
    uint64_t done = 0, errors = 0, reconnects = 0, unanswered = 0;
    double thread_max = 0, wall = (double)(t_done - sh.t0);
    for (int t = 0; t < T; t++) {
        struct qthread *qt = qts[t];
        pthread_join(qt->th, NULL);
        cw_hist_merge(lat, &qt->lat);
        codes_merge(&status, &qt->status);
        done += qt->done;
        errors += qt->errors;
        reconnects += qt->reconnects;
        unanswered += qt->outstanding;
        double pct = 100.0 * (double)(qt->cpu1 - qt->cpu0) / wall;
        if (pct > thread_max)
            thread_max = pct;
        for (int i = 0; i < qt->n; i++) {
            if (qt->c[i].fd >= 0)
                close(qt->c[i].fd);
            bbuf_free(&qt->c[i].in);
            bbuf_free(&qt->c[i].out);
        }
        free(qt->c);
        close(qt->ep);
        free(qt);
    }
    free(qts);
    print_dist(o, "query latency", lat);
    bench_write_hgrm(o, "query", lat);
    struct bbuf b = {0};
    jb_printf(&b,
              "{\"mode\":\"query\",\"query\":\"%s\",\"data\":%s,\"connections\":%d,\"threads\":%d,"
              "\"rate_asked\":%.0f,\"duration_s\":%.1f,\"queries\":%llu,\"queries_per_s\":%.1f,"
              "\"errors\":%llu,\"unanswered\":%llu,\"reconnects\":%llu,",
              o->query, o->data, N, T, o->rate, o->duration, (unsigned long long)done,
              (double)done / o->duration, (unsigned long long)errors,
              (unsigned long long)unanswered, (unsigned long long)reconnects);
    jb_codes(&b, "status", &status);
    jb_printf(&b, ",");
    jb_hist(&b, "latency_us", lat);
    jb_printf(&b, ",\"bench_cpu_pct\":%.1f,\"bench_thread_cpu_max_pct\":%.1f",
              100.0 * (double)(self1 - self0) / wall, thread_max);
    if (srv0 >= 0 && srv1 >= 0) {
        jb_printf(&b, ",\"server_cpu_pct\":%.1f,\"server_cpu_us_per_query\":%.2f",
                  100.0 * (double)(srv1 - srv0) / wall,
                  done ? (double)(srv1 - srv0) / 1e3 / (double)done : 0);
        int64_t other = (busy1 - busy0) - (self1 - self0) - (srv1 - srv0);
        if (busy0 >= 0 && busy1 >= 0)
            jb_printf(&b, ",\"other_cpu_pct\":%.1f",
                      100.0 * (double)(other > 0 ? other : 0) / wall);
    }
    jb_printf(&b, "}");
    bench_emit_json(o, b.p);
    bbuf_free(&b);
    free(lat);
    for (int u = 0; u < s.n; u++)
        free(reqs[u]);
    free(reqs);
    free(req_lens);
    bench_sessions_free(&s);
    return 0;
}
