/*
 * conns.c - the `connections` mode: what an idle authenticated connection
 * costs the server, and how fast one event reaches all of them.
 *
 * 1. Log in, open one sender WebSocket (blocking), let the server settle,
 *    read its VmRSS (--server-pid).
 * 2. Open K receiver WebSockets over T threads (and over several 127.0.0.x
 *    source addresses above 15,000), wait --settle s, read VmRSS again:
 *    (after - before) / K is the resident memory per connection.
 * 3. --events times: the sender sends one visit-page carrying its send time
 *    in meta ("bt"); every receiver timestamps the page-view as it reads
 *    it. The delivery latency (send -> read, per receiver) goes into one
 *    histogram for all events and one per event; each event waits until all
 *    K have it or --timeout s pass (the rest are counted missing).
 *
 * Receivers only read; they never send after the upgrade.
 */
#include "bench.h"
#include "clock.h"
#include "histogram.h"
#include "proc.h"
#include "report.h"
#include "scan.h"
#include "wsblock.h"
#include "wsconn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EVENTS 100

enum { CP_CONNECT, CP_RUN, CP_STOP };

struct cshared {
    _Atomic int phase;
    char nonce[24];
    size_t nonce_len;
    int events;
};

struct cthread {
    struct wthread wt;
    pthread_t th;
    struct cshared *sh;
    _Atomic int ready;
    _Atomic uint64_t got[MAX_EVENTS]; /* deliveries of event e (read by the main thread) */
    struct cw_hist all;
    struct cw_hist *per; /* one per event */
    struct codes closes;
};

static void on_message(struct wthread *wt, struct wconn *c, char *p, size_t n, int64_t now)
{
    struct cthread *ct = wt->ctx;
    struct msg m;
    if (!scan_msg(p, n, &m) || m.type != MSG_UPDATE || !m.cid || m.cid_len < ct->sh->nonce_len ||
        memcmp(m.cid, ct->sh->nonce, ct->sh->nonce_len))
        return;
    int64_t bt = scan_bench_time(m.rest, m.rest_len);
    int64_t e = m.seq - 1;
    if (bt < 0 || e < 0 || e >= ct->sh->events)
        return;
    cw_hist_record(&ct->all, now - bt);
    cw_hist_record(&ct->per[e], now - bt);
    atomic_fetch_add_explicit(&ct->got[e], 1, memory_order_relaxed);
}

static void on_close(struct wthread *wt, struct wconn *c)
{
    struct cthread *ct = wt->ctx;
    char code[16];
    snprintf(code, sizeof(code), "%d", c->close_code);
    codes_add(&ct->closes, code, 1);
}

static void *cthread_main(void *arg)
{
    struct cthread *ct = arg;
    wt_start_connects(&ct->wt);
    while (!wt_settled(&ct->wt) && atomic_load(&ct->sh->phase) == CP_CONNECT)
        wt_poll(&ct->wt, 2 * NS_PER_MS);
    atomic_store(&ct->ready, 1);
    while (atomic_load(&ct->sh->phase) != CP_STOP)
        wt_poll(&ct->wt, 2 * NS_PER_MS);
    return NULL;
}

static long rss(const struct bench_opts *o)
{
    return o->server_pid ? proc_rss_kib(o->server_pid) : -1;
}

int bench_conns_main(const struct bench_opts *o)
{
    int K = o->connections, E = o->events;
    if (E < 1 || E > MAX_EVENTS) {
        fprintf(stderr, "calderwood-bench: --events must be 1..%d\n", MAX_EVENTS);
        return 1;
    }
    struct sessions s;
    if (bench_sessions(o, &s))
        return 1;
    struct cshared sh = {.events = E};
    uint64_t nonce = ((uint64_t)now_ns() * UINT64_C(6364136223846793005)) ^ (uint64_t)getpid();
    sh.nonce_len =
        (size_t)snprintf(sh.nonce, sizeof(sh.nonce), "f%08llx-", (unsigned long long)(nonce >> 32));
    sleep_ns((int64_t)(o->settle * 1e9) / 2);
    long rss0 = rss(o);

    int T = o->threads < 1 ? 1 : o->threads;
    if (T > K)
        T = K;
    int nsrc = bench_source_addrs(o, K + 1);
    struct cthread **cts = xcalloc((size_t)T, sizeof(*cts));
    int64_t t_conn0 = now_ns();
    for (int t = 0; t < T; t++) {
        struct cthread *ct = cts[t] = xcalloc(1, sizeof(struct cthread));
        ct->sh = &sh;
        int n = (K - t + T - 1) / T;
        /* indices from 1: index 0 is the sender's source address slot */
        wt_init(&ct->wt, t, n, 1 + t, T, &o->target, nsrc);
        ct->wt.on_message = on_message;
        ct->wt.on_close = on_close;
        ct->wt.ctx = ct;
        for (int i = 0; i < n; i++)
            ct->wt.conns[i].cookie = s.cookies[ct->wt.conns[i].index % s.n];
        cw_hist_init(&ct->all);
        ct->per = xmalloc(sizeof(struct cw_hist) * (size_t)E);
        for (int e = 0; e < E; e++)
            cw_hist_init(&ct->per[e]);
        pthread_create(&ct->th, NULL, cthread_main, ct);
    }
    int64_t deadline = now_ns() + (int64_t)(o->connect_timeout * 1e9);
    for (;;) {
        int ready = 0;
        for (int t = 0; t < T; t++)
            ready += atomic_load(&cts[t]->ready);
        if (ready == T || now_ns() > deadline)
            break;
        sleep_ns(5 * NS_PER_MS);
    }
    double connect_s = (double)(now_ns() - t_conn0) / 1e9;
    atomic_store(&sh.phase, CP_RUN);
    int opened = 0, failed = 0, last_errno = 0, last_status = 0;
    for (int t = 0; t < T; t++) {
        /* read after ready (or a timeout: then the counts are a snapshot) */
        opened += cts[t]->wt.opened;
        failed += cts[t]->wt.failed;
        if (cts[t]->wt.last_errno)
            last_errno = cts[t]->wt.last_errno;
        if (cts[t]->wt.last_status)
            last_status = cts[t]->wt.last_status;
    }
    if (!o->quiet)
        fprintf(stderr, "calderwood-bench: %d of %d connections open in %.2f s (%d failed%s%s)\n",
                opened, K, connect_s, failed, last_errno ? ": " : "",
                last_errno ? strerror(last_errno) : "");
    sleep_ns((int64_t)(o->settle * 1e9));
    long rss1 = rss(o);
    /*
     * The sender opens only now: silent through a long ramp, it would be
     * closed by the server's ping timeout (--ws-ping-interval and
     * --ws-pong-timeout), as it reads nothing meanwhile.
     */
    struct wsblock sender;
    bool have_sender = !wsb_open(&sender, &o->target, s.cookies[0], 10000);
    if (!have_sender)
        fprintf(stderr, "calderwood-bench: the sender connection failed: no fan-out events\n");

    /* The fan-out events. */
    int64_t *event_max = xcalloc((size_t)E, sizeof(int64_t));
    uint64_t *event_got = xcalloc((size_t)E, sizeof(uint64_t));
    double *event_s = xcalloc((size_t)E, sizeof(double));
    struct cw_hist *own = xmalloc(sizeof(*own));
    cw_hist_init(own);
    int64_t srv0 = o->server_pid ? proc_cpu_ns(o->server_pid) : -1, self0 = self_cpu_ns();
    int64_t busy0 = machine_busy_ns(), t_ev0 = now_ns();
    for (int e = 0; e < E && opened > 0 && have_sender; e++) {
        char msg[256];
        int64_t t = now_ns();
        int n = snprintf(msg, sizeof(msg),
                         "[\"cmd\",\"%s0\",%d,{\"name\":\"visit-page\",\"data\":{\"url\":"
                         "\"/bench/fanout\"},\"meta\":{\"bt\":%lld}}]",
                         sh.nonce, e + 1, (long long)t);
        if (wsb_send(&sender, msg, (size_t)n))
            break;
        int64_t until = t + (int64_t)(o->timeout * 1e9);
        /* The sender's own update, then wait for every receiver. */
        struct ws_frame f;
        while (!wsb_read(&sender, &f, until)) {
            struct msg m;
            if (f.opcode == WS_TEXT && scan_msg(f.payload, f.len, &m) && m.type == MSG_UPDATE &&
                m.seq == e + 1) {
                cw_hist_record(own, now_ns() - t);
                break;
            }
        }
        uint64_t got = 0;
        while (now_ns() < until) {
            got = 0;
            for (int i = 0; i < T; i++)
                got += atomic_load_explicit(&cts[i]->got[e], memory_order_relaxed);
            if (got >= (uint64_t)opened)
                break;
            sleep_ns(NS_PER_MS / 2);
        }
        event_got[e] = got;
        event_s[e] = (double)(now_ns() - t) / 1e9;
        sleep_ns(200 * NS_PER_MS); /* let stragglers land in this event's histogram */
    }
    int64_t srv1 = o->server_pid ? proc_cpu_ns(o->server_pid) : -1, self1 = self_cpu_ns();
    int64_t busy1 = machine_busy_ns(), t_ev1 = now_ns();
    long rss2 = rss(o);
    atomic_store(&sh.phase, CP_STOP);

    struct cw_hist *all = xmalloc(sizeof(*all)), *first = xmalloc(sizeof(*first));
    cw_hist_init(all);
    cw_hist_init(first);
    struct codes closes = {0};
    uint64_t delivered = 0;
    for (int t = 0; t < T; t++) {
        struct cthread *ct = cts[t];
        pthread_join(ct->th, NULL);
        cw_hist_merge(all, &ct->all);
        cw_hist_merge(first, &ct->per[0]);
        for (int e = 0; e < E; e++) {
            if (ct->per[e].total && ct->per[e].max > event_max[e])
                event_max[e] = ct->per[e].max;
            delivered += ct->per[e].total;
        }
        codes_merge(&closes, &ct->closes);
        wt_release(&ct->wt);
        free(ct->per);
        free(ct);
    }
    free(cts);
    wsb_close(&sender);

    print_dist(o, "fan-out delivery latency: page-view sent -> read on each idle connection", all);
    bench_write_hgrm(o, "fanout", all);
    struct bbuf b = {0};
    jb_printf(&b,
              "{\"mode\":\"connections\",\"connections\":%d,\"opened\":%d,\"failed\":%d,"
              "\"threads\":%d,\"source_addrs\":%d,\"users\":%d,\"connect_s\":%.2f,"
              "\"connections_per_s\":%.0f,",
              K, opened, failed, T, nsrc, s.n, connect_s, connect_s > 0 ? opened / connect_s : 0);
    if (last_status)
        jb_printf(&b, "\"last_refusal_status\":%d,", last_status);
    if (rss0 >= 0 && rss1 >= 0 && opened > 0)
        jb_printf(&b,
                  "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"rss_after_fanout_kib\":%ld,"
                  "\"rss_per_conn_kib\":%.2f,",
                  rss0, rss1, rss2, (double)(rss1 - rss0) / opened);
    jb_printf(&b, "\"events\":%d,\"delivered\":%llu,\"expected\":%llu,", E,
              (unsigned long long)delivered, (unsigned long long)opened * (unsigned long long)E);
    jb_hist(&b, "delivery_us", all);
    jb_printf(&b, ",");
    jb_hist(&b, "first_event_us", first);
    jb_printf(&b, ",");
    jb_hist(&b, "sender_update_us", own);
    jb_printf(&b, ",\"event_max_us\":[");
    for (int e = 0; e < E; e++)
        jb_printf(&b, "%s%.1f", e ? "," : "", (double)event_max[e] / 1e3);
    jb_printf(&b, "],\"event_all_delivered_s\":[");
    for (int e = 0; e < E; e++)
        jb_printf(&b, "%s%.4f", e ? "," : "", event_got[e] >= (uint64_t)opened ? event_s[e] : -1);
    jb_printf(&b, "]");
    if (delivered)
        jb_printf(&b, ",\"bench_cpu_us_per_delivery\":%.3f",
                  (double)(self1 - self0) / 1e3 / (double)delivered);
    if (srv0 >= 0 && srv1 >= 0 && delivered)
        jb_printf(&b, ",\"server_cpu_us_per_delivery\":%.3f",
                  (double)(srv1 - srv0) / 1e3 / (double)delivered);
    if (srv0 >= 0 && srv1 >= 0 && busy0 >= 0 && busy1 >= 0) {
        int64_t other = (busy1 - busy0) - (self1 - self0) - (srv1 - srv0);
        jb_printf(&b, ",\"other_cpu_pct\":%.1f",
                  100.0 * (double)(other > 0 ? other : 0) / (double)(t_ev1 - t_ev0));
    }
    jb_printf(&b, ",");
    jb_codes(&b, "closed", &closes);
    jb_printf(&b, "}");
    bench_emit_json(o, b.p);
    bbuf_free(&b);
    free(all);
    free(first);
    free(own);
    free(event_max);
    free(event_got);
    free(event_s);
    bench_sessions_free(&s);
    return opened == K ? 0 : 1;
}
