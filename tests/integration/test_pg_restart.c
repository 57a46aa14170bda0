/*
 * test_pg_restart.c - PostgreSQL stopped hard (pg_ctl -m immediate) and
 * started again while commands keep arriving: the processor meets lost
 * connections and a server that is starting up as CW_ERR_AGAIN, retries,
 * reconnects and carries on. Every submitted command gets its outcome, each
 * is applied exactly once (a command whose commit was acknowledged by the
 * server but never reached the processor answers as a duplicate on the
 * retry), and positions stay gap-free. Needs CW_TEST_STORE and CW_PG_DIR
 * from tests/pg/cluster.sh; skipped on SQLite.
 */
#include "domain/domain.h"
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/*
 * Commands go in chunks, each waited for, from before the restart until
 * AFTER_RESTART more have gone through the restarted server: the load lasts
 * as long as the restart does, however fast the processor is. At most MAX.
 */
enum { CHUNK = 50, RESTART_AFTER = 100, AFTER_RESTART = 200, MAX = 1000000 };

static atomic_bool restart_done;

static int register_all(struct cw_domain *d)
{
    int rc = cw_accounts_register(d);
    return rc ? rc : cw_demo_register(d);
}

static void *restart_server(void *arg)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "tests/pg/cluster.sh restart '%s'", getenv("CW_PG_DIR"));
    *(int *)arg = system(cmd);
    atomic_store(&restart_done, true);
    return NULL;
}

/* Collects n outcomes, waiting up to two minutes: a restart takes seconds. */
static void collect(struct harness *h, size_t n, size_t *duplicates)
{
    size_t got = 0;
    int64_t deadline = cw_now_us() + 120 * 1000000LL;
    while (got < n && cw_now_us() < deadline) {
        struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(h->e), 1000000);
        for (size_t i = 0; b && i < b->n; i++, got++) {
            if (b->items[i].rejected)
                fail_msg("command %lld rejected: %s", (long long)b->items[i].env->cmd.client_seq,
                         b->items[i].reject.message);
            *duplicates += b->items[i].duplicate;
        }
        cw_outcome_batch_free(b);
    }
    if (got < n)
        fail_msg("%zu of %zu outcomes within two minutes", got, n);
}

static int64_t count(struct harness *h, const char *sql)
{
    int64_t v = -1;
    struct cw_error err = {0};
    if (cw_db_query_int(h->reader, &v, &err, sql, ""))
        fail_msg("%s: %s", sql, err.message);
    return v;
}

static void test_restart_under_load(void **state)
{
    (void)state;
    if (!harness_pg() || !getenv("CW_PG_DIR"))
        skip(); /* a PostgreSQL server to restart */
    struct harness h;
    harness_open(&h, register_all);
    char user[CW_UUID_LEN + 1];
    cw_uuid_v7(user);
    pthread_t restarter;
    int restarted = -1;
    size_t duplicates = 0;
    struct cw_error err = {0};
    atomic_store(&restart_done, false);
    int64_t seq = 0, until = MAX;
    for (; seq < until; seq++) {
        char url[32];
        snprintf(url, sizeof(url), "/restart/%lld", (long long)seq);
        assert_int_equal(harness_submit(&h, "visit-page", user, "restart", seq,
                                        json_pack("{s:s}", "url", url), &err),
                         CW_OK);
        if (seq == RESTART_AFTER)
            assert_int_equal(pthread_create(&restarter, NULL, restart_server, &restarted), 0);
        if ((seq + 1) % CHUNK == 0) {
            collect(&h, CHUNK, &duplicates);
            if (until == MAX && atomic_load(&restart_done))
                until = seq + 1 + AFTER_RESTART;
        }
    }
    if (until == MAX)
        fail_msg("the restart did not end within %d commands", MAX);
    pthread_join(restarter, NULL);
    const int64_t n = seq;
    assert_int_equal(restarted, 0);
    struct cw_processor_stats st;
    cw_engine_stats(h.e, &st);
    print_message("%lld commands, %llu retries, %zu answered as duplicates\n", (long long)n,
                  (unsigned long long)st.retries, duplicates);
    assert_true(st.retries >= 1); /* the restart was met, not missed */
    /* Each command once, each with its one event and projection row, no gap. */
    assert_int_equal(count(&h, "SELECT COUNT(*) FROM commands"), n);
    assert_int_equal(count(&h, "SELECT COUNT(*) FROM events"), n);
    assert_int_equal(count(&h, "SELECT COUNT(*) FROM page_views"), n);
    assert_int_equal(count(&h, "SELECT COALESCE(MAX(position), 0) FROM events"), n);
    harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
