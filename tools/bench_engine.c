/*
 * bench_engine.c - `make bench-engine`: the engine alone, no network.
 *
 * Producers build visit-page commands (or add-to-cart, --command) as the
 * gateway would (coerce, then an envelope), for --users users each, and
 * put them on the command queue; the processor commits
 * them durably to SQLite in batches; a subscriber takes the outcomes off
 * the update bus. Reports commands/s end to end (first put to last
 * outcome), the batch sizes the load produced, and commit latency
 * percentiles (BEGIN to durable COMMIT). With --sweep it repeats the run
 * for several batch caps to show how throughput scales with batch size.
 * With --store postgres://... each run on PostgreSQL follows the same run
 * on SQLite (unless --side-by-side=no), and a ratio line compares them:
 * both see the same load from whatever else runs on the machine. On
 * PostgreSQL it also reports the CPU per command of the server backends
 * that serve the engine (the processor's writer does the work), read from
 * /proc: the server must run on this machine, as the throwaway one does.
 */
#include "calderwood.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/registry.h"
#include "core/validate.h"
#include "domain/domain.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "store/store.h"
#include "engine/update.h"
#include "query/query.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct samples {
    int64_t *v;
    size_t n, cap;
};

struct run {
    const struct cw_domain *d;
    struct cw_engine *e;
    int64_t commands;
    int producers;
    int users;        /* per producer, each with its own sequence */
    bool add_to_cart; /* else visit-page */
    atomic_llong overloaded;
    struct samples commit_us, batch;
};

static void sample(struct samples *s, int64_t v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = cw_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(struct samples *s, double p)
{
    if (!s->n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

/* User and system CPU microseconds used so far by this process's threads named name (/proc). */
struct cpu {
    double user_us, sys_us;
};

static struct cpu threads_cpu(const char *name)
{
    struct cpu total = {0};
    DIR *dir = opendir("/proc/self/task");
    struct dirent *de;
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    while (dir && (de = readdir(dir))) {
        char path[300], comm[64] = "", stat[1024];
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool match = fgets(comm, sizeof(comm), f) && strncmp(comm, name, strlen(name)) == 0;
        fclose(f);
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
        if (!match || !(f = fopen(path, "r")))
            continue;
        /* utime and stime are fields 14 and 15, after the parenthesised name. */
        unsigned long ut = 0, st = 0;
        char *p = fgets(stat, sizeof(stat), f) ? strrchr(stat, ')') : NULL;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
            total.user_us += (double)ut * tick_us;
            total.sys_us += (double)st * tick_us;
        }
        fclose(f);
    }
    if (dir)
        closedir(dir);
    return total;
}

/*
 * CPU microseconds used so far by this process's threads named name: the
 * checkpointer's share is invisible in the processor's figure.
 */
static double thread_cpu_us(const char *name)
{
    struct cpu c = threads_cpu(name);
    return c.user_us + c.sys_us;
}

/* CPU microseconds used so far by process pid (utime + stime, from /proc). */
static double process_cpu_us(long pid)
{
    char path[64], stat[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long ut = 0, st = 0;
    char *p = fgets(stat, sizeof(stat), f) ? strrchr(stat, ')') : NULL;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
        fclose(f);
        return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
    }
    fclose(f);
    return 0;
}

/*
 * PostgreSQL: the process ids of the engine's server backends (the
 * processor's writer among them), found from a connection of the bench's
 * own, so that their CPU time can be read from /proc. The server must run
 * on this machine, as the throwaway cluster does. Returns how many.
 */
static size_t server_pids(struct cw_store *s, long *pids, size_t max)
{
    struct cw_db *db;
    struct cw_error err = {0};
    json_t *rows = NULL;
    size_t n = 0;
    if (cw_store_reader_open(s, &db, &err) == CW_OK) {
        if (cw_db_query_json(db, &rows, &err,
                             "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                             " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                             "") == CW_OK) {
            for (size_t i = 0; i < json_array_size(rows) && n < max; i++)
                pids[n++] =
                    (long)json_integer_value(json_object_get(json_array_get(rows, i), "pid"));
            json_decref(rows);
        }
        cw_db_close(db);
    }
    cw_error_release(&err);
    return n;
}

static double pids_cpu_us(const long *pids, size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += process_cpu_us(pids[i]);
    return total;
}

static void on_commit(void *arg, size_t batch_size, int64_t commit_us)
{
    struct run *r = arg;
    sample(&r->commit_us, commit_us);
    sample(&r->batch, (int64_t)batch_size);
}

struct producer {
    struct run *r;
    int id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct run *r = p->r;
    char(*users)[CW_UUID_LEN + 1] = cw_xcalloc((size_t)r->users, sizeof(*users));
    char client[32];
    for (int u = 0; u < r->users; u++)
        cw_uuid_v7(users[u]);
    snprintf(client, sizeof(client), "bench-%d", p->id);
    int64_t share = r->commands / r->producers + (p->id < r->commands % r->producers);
    for (int64_t i = 0; i < share; i++) {
        /* Users take turns, as many connections' commands interleave in a batch. */
        int u = (int)(i % r->users);
        char sku[16];
        snprintf(sku, sizeof(sku), "sku-%d", (int)(i % 20));
        json_t *data = r->add_to_cart ? json_pack("{s:s,s:i}", "sku", sku, "quantity", 1)
                                      : json_pack("{s:s}", "url", "/bench/page");
        const struct cw_command_def *def;
        if (cw_coerce_command(r->d, r->add_to_cart ? "add-to-cart" : "visit-page", data, false,
                              &def, NULL))
            abort();
        struct cw_envelope *env =
            cw_envelope_new(def, users[u], client, i / r->users, data, NULL, 0);
        while (cw_engine_submit(r->e, env) == CW_ERR_OVERLOADED) {
            /* Wait in the way a gateway would (stop reading), not by spinning. */
            atomic_fetch_add(&r->overloaded, 1);
            usleep(200);
        }
    }
    free(users);
    return NULL;
}

/* What a run measured, for the ratio of two stores' runs. */
struct result {
    double rate, cpu_us;
    int64_t commit_p50, commit_p99;
};

/* What each run sends. */
struct workload {
    int producers, users;
    bool add_to_cart;
};

static int one_run(const struct cw_domain *d, const char *dir, const char *store, int64_t commands,
                   const struct workload *w, int64_t max_batch, bool quiet, struct result *res)
{
    char path[4200];
    if (store)
        snprintf(path, sizeof(path), "%s", store);
    else
        snprintf(path, sizeof(path), "%s/bench-%lld.db", dir, (long long)max_batch);
    int producers = w->producers;
    struct run r = {.d = d,
                    .commands = commands,
                    .producers = producers,
                    .users = w->users,
                    .add_to_cart = w->add_to_cart};
    struct cw_engine_config cfg = {
        .db_path = path,
        .max_batch = (size_t)max_batch,
        .observer = on_commit,
        .observer_arg = &r,
    };
    struct cw_error err = {0};
    if (cw_engine_open(&cfg, d, &r.e, &err)) {
        fprintf(stderr, "bench-engine: %s\n", err.message);
        return 1;
    }
    pthread_t th[64];
    struct producer ps[64];
    long pids[16];
    size_t n_pids = store ? server_pids(cw_engine_store(r.e), pids, 16) : 0;
    double server_us = -pids_cpu_us(pids, n_pids);
    /* The processor's user and system time per commit: a commit's fixed cost is mostly the latter.
     */
    struct cpu proc0 = threads_cpu("cw-processor");
    int64_t t0 = cw_mono_us();
    for (int i = 0; i < producers; i++) {
        ps[i] = (struct producer){.r = &r, .id = i};
        pthread_create(&th[i], NULL, produce, &ps[i]);
    }
    int64_t done = 0, events = 0;
    while (done < commands) {
        struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(r.e), 30 * 1000000);
        if (!b) {
            fprintf(stderr, "bench-engine: no outcome for 30 s\n");
            return 1;
        }
        done += (int64_t)b->n;
        for (size_t i = 0; i < b->n; i++)
            events += (int64_t)b->items[i].n_events;
        cw_outcome_batch_free(b);
    }
    int64_t elapsed = cw_mono_us() - t0;
    for (int i = 0; i < producers; i++)
        pthread_join(th[i], NULL);
    struct cw_processor_stats st;
    cw_engine_stats(r.e, &st);
    double checkpoint_us = thread_cpu_us("cw-checkpoint");
    struct cpu proc1 = threads_cpu("cw-processor");
    double commits = r.batch.n ? (double)r.batch.n : 1;
    server_us += pids_cpu_us(pids, n_pids);
    cw_engine_close(r.e);
    qsort(r.commit_us.v, r.commit_us.n, sizeof(int64_t), cmp);
    qsort(r.batch.v, r.batch.n, sizeof(int64_t), cmp);
    double rate = (double)done * 1e6 / (double)elapsed;
    if (!quiet)
        printf("commands %lld  events %lld  seconds %.2f  producers %d  users %d  command %s\n",
               (long long)done, (long long)events, elapsed / 1e6, producers, w->users,
               w->add_to_cart ? "add-to-cart" : "visit-page");
    printf(
        "%-8s max_batch %6lld  commands/s %9.0f  batches %6zu  batch p50 %5lld p99 %5lld max %5lld"
        "  commit_us p50 %6lld p99 %6lld p99.9 %6lld max %6lld  processor_cpu_us/cmd %.2f"
        "  checkpoint_cpu_us/cmd %.2f  server_cpu_us/cmd %.2f  overloaded %lld"
        "  processor_user_us/commit %.1f  processor_sys_us/commit %.1f\n",
        store ? "postgres" : "sqlite", (long long)max_batch, rate, r.batch.n,
        (long long)pct(&r.batch, 50), (long long)pct(&r.batch, 99), (long long)pct(&r.batch, 100),
        (long long)pct(&r.commit_us, 50), (long long)pct(&r.commit_us, 99),
        (long long)pct(&r.commit_us, 99.9), (long long)pct(&r.commit_us, 100),
        (double)st.cpu_us / (double)done, checkpoint_us / (double)done, server_us / (double)done,
        (long long)atomic_load(&r.overloaded), (proc1.user_us - proc0.user_us) / commits,
        (proc1.sys_us - proc0.sys_us) / commits);
    fflush(stdout);
    *res = (struct result){.rate = rate,
                           .cpu_us = (double)st.cpu_us / (double)done,
                           .commit_p50 = pct(&r.commit_us, 50),
                           .commit_p99 = pct(&r.commit_us, 99)};
    free(r.commit_us.v);
    free(r.batch.v);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t commands = 0, producers = 0, max_batch = 0, users = 0;
    bool sweep = false, side_by_side = true;
    const char *dir = NULL, *store = NULL, *command = NULL;
    const struct cw_option opts[] = {
        {"commands", CW_OPT_INT, &commands, "1000000", 1, 1000000000, "N",
         "visit-page commands per run"},
        {"producers", CW_OPT_INT, &producers, "1", 1, 64, "P", "submitting threads"},
        {"users", CW_OPT_INT, &users, "1", 1, 100000, "N",
         "users per producer, taking turns (each its own sequence)"},
        {"command", CW_OPT_STRING, &command, "visit-page", 0, 0, "NAME",
         "visit-page or add-to-cart (one item of 20 skus)"},
        {"max-batch", CW_OPT_INT, &max_batch, "4096", 1, 65536, "N", "batch cap"},
        {"sweep", CW_OPT_BOOL, &sweep, "no", 0, 0, NULL,
         "run with batch caps 1, 16, 256, 1024, 4096, 16384 (commands scaled down for small caps)"},
        {"dir", CW_OPT_STRING, &dir, NULL, 0, 0, "DIR",
         "where the databases go (default: a new directory under /tmp, removed after)"},
        {"store", CW_OPT_STRING, &store, NULL, 0, 0, "URL",
         "run on this store instead (postgres://...: a throwaway database; each run adds to"
         " its log)"},
        {"side-by-side", CW_OPT_BOOL, &side_by_side, "yes", 0, 0, NULL,
         "with --store, run SQLite just before each run, with the same settings, and print the"
         " ratio"},
        {0},
    };
    struct cw_error err = {0};
    int rc = cw_config_load(opts, argc, argv, 1, NULL, &err);
    if (rc) {
        if (rc != CW_ERR_NOT_FOUND)
            fprintf(stderr, "bench-engine: %s\n", err.message);
        printf("usage: bench-engine [options]\n");
        cw_config_usage(stdout, opts);
        return rc == CW_ERR_NOT_FOUND ? 0 : 2;
    }
    if (strcmp(command, "visit-page") != 0 && strcmp(command, "add-to-cart") != 0) {
        fprintf(stderr, "bench-engine: --command must be visit-page or add-to-cart\n");
        return 2;
    }
    struct workload w = {.producers = (int)producers,
                         .users = (int)users,
                         .add_to_cart = strcmp(command, "add-to-cart") == 0};
    char tmp[] = "/tmp/cw-bench-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    struct cw_domain *d = cw_domain_new();
    if (cw_query_register_builtins(d) || cw_accounts_register(d) || cw_demo_register(d)) {
        fprintf(stderr, "bench-engine: domain registration failed\n");
        return 1;
    }
    char label[512];
    if (store)
        cw_store_url_label(store, label, sizeof(label));
    printf("bench-engine: durable commits (%s) in %s\n",
           store && strncmp(store, "postgres", 8) == 0 ? "PostgreSQL, synchronous_commit=on"
                                                       : "WAL, synchronous=FULL",
           store ? label : dir);
    static const int64_t caps[] = {1, 16, 256, 1024, 4096, 16384};
    size_t n_caps = sweep ? sizeof(caps) / sizeof(caps[0]) : 1;
    for (size_t i = 0; !rc && i < n_caps; i++) {
        int64_t cap = sweep ? caps[i] : max_batch;
        /* Batches of one are bound by fsync: a smaller run says the same. */
        int64_t n = sweep && cap < 64 ? commands / 50 : commands;
        struct result lite, pg;
        /* On PostgreSQL, SQLite runs just before, so both see the same load from other work. */
        if (store && side_by_side)
            rc = one_run(d, dir, NULL, n, &w, cap, sweep, &lite);
        if (!rc)
            rc = one_run(d, dir, store, n, &w, cap, sweep || (store && side_by_side), &pg);
        if (!rc && store && side_by_side)
            printf("ratio    max_batch %6lld  postgres/sqlite: commands/s %.2f  commit p50 %.2f"
                   "  commit p99 %.2f  processor_cpu/cmd %.2f\n",
                   (long long)cap, pg.rate / lite.rate,
                   (double)pg.commit_p50 / (double)(lite.commit_p50 ? lite.commit_p50 : 1),
                   (double)pg.commit_p99 / (double)(lite.commit_p99 ? lite.commit_p99 : 1),
                   pg.cpu_us / lite.cpu_us);
    }
    cw_domain_free(d);
    cw_config_release();
    if (dir == tmp) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "bench-engine: could not remove %s\n", tmp);
    }
    return rc;
}
