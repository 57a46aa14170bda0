/*
 * test_crash.c - kill -9 in the middle of batches, then check that the log
 * and the projections agree: no half batch, no gap, no event without its
 * command, no projection row without its event. Then restart on the same
 * database and check that positions carry on.
 */
#include "domain/domain.h"
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <time.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

static int register_all(struct cw_domain *d)
{
    int rc = cw_accounts_register(d);
    return rc ? rc : cw_demo_register(d);
}

/* The child: submits a mix of commands as fast as the engine takes them, forever. */
static void write_forever(struct harness *h, unsigned seed)
{
    struct cw_error err = {0};
    if (harness_start(h, &err)) {
        fprintf(stderr, "child: %s\n", err.message);
        _exit(3);
    }
    char users[3][CW_UUID_LEN + 1];
    for (int i = 0; i < 3; i++)
        cw_uuid_v7(users[i]);
    char client[40];
    snprintf(client, sizeof(client), "crash-%u", seed);
    for (int64_t seq = 0;; seq++) {
        const char *user = users[seq % 3];
        json_t *data;
        const char *name;
        switch (seq % 4) {
        case 0:
            name = "visit-page", data = json_pack("{s:s}", "url", "/crash");
            break;
        case 1:
            name = "add-to-cart", data = json_pack("{s:s,s:i}", "sku", "sku-1", "quantity", 2);
            break;
        case 2:
            /* Sometimes more than the cart holds: a rejection inside the batch. */
            name = "remove-from-cart",
            data = json_pack("{s:s,s:i}", "sku", "sku-1", "quantity", (int)(seq % 3) + 1);
            break;
        default:
            name = "add-to-cart", data = json_pack("{s:s,s:i}", "sku", "sku-2", "quantity", 1);
        }
        while (harness_submit(h, name, user, client, seq, json_deep_copy(data), &err) ==
               CW_ERR_OVERLOADED) {
            struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(h->e), 0);
            cw_outcome_batch_free(b);
        }
        json_decref(data);
        struct cw_outcome_batch *b;
        while ((b = cw_bus_take(cw_engine_bus(h->e), 0)))
            cw_outcome_batch_free(b);
    }
}

static int64_t q_int(struct cw_db *db, const char *sql)
{
    int64_t v = -1;
    struct cw_error err = {0};
    if (cw_db_query_int(db, &v, &err, sql, ""))
        fail_msg("%s: %s", sql, err.message);
    return v;
}

static void check_consistent(const char *path)
{
    struct cw_store *s;
    struct cw_error err = {0};
    assert_int_equal(cw_store_open(path, NULL, &s, &err), CW_OK);
    struct cw_db *db = cw_store_writer(s);
    assert_int_equal(q_int(db, "SELECT COUNT(*) = COALESCE(MAX(position), 0) FROM events"), 1);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM events e LEFT JOIN commands c"
                               " ON c.uuid = e.command_uuid WHERE c.uuid IS NULL"),
                     0);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM events e JOIN commands c"
                               " ON c.uuid = e.command_uuid WHERE c.outcome = 'rejected'"),
                     0);
    assert_int_equal(q_int(db, "SELECT COUNT(*) FROM commands c WHERE c.outcome = 'ok'"
                               " AND c.first_position IS NOT NULL AND"
                               " (SELECT COUNT(*) FROM events e WHERE e.command_uuid = c.uuid"
                               "  AND e.position BETWEEN c.first_position AND c.last_position)"
                               " != c.last_position - c.first_position + 1"),
                     0);
    assert_int_equal(q_int(db, "SELECT (SELECT COUNT(*) FROM page_views) ="
                               " (SELECT COUNT(*) FROM events WHERE name = 'page-view')"),
                     1);
    /* The cart projection equals the fold of the cart events. */
    assert_int_equal(
        q_int(db, "WITH folded AS (SELECT user_uuid, json_extract(data, '$.sku') AS sku,"
                  " SUM(CASE name WHEN 'item-added-to-cart' THEN 1 ELSE -1 END"
                  " * json_extract(data, '$.quantity')) AS quantity FROM events"
                  " WHERE name IN ('item-added-to-cart', 'item-removed-from-cart')"
                  " GROUP BY 1, 2 HAVING quantity != 0)"
                  " SELECT (SELECT COUNT(*) FROM (SELECT user_uuid, sku, quantity FROM folded"
                  " EXCEPT SELECT user_uuid, sku, quantity FROM cart_items))"
                  " + (SELECT COUNT(*) FROM (SELECT user_uuid, sku, quantity FROM cart_items"
                  " EXCEPT SELECT user_uuid, sku, quantity FROM folded))"),
        0);
    json_t *ok = NULL;
    assert_int_equal(cw_db_query_json(db, &ok, &err, "PRAGMA integrity_check", ""), CW_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(ok, 0), "integrity_check")), "ok");
    json_decref(ok);
    cw_store_close(s);
}

static int64_t last_position(const char *path)
{
    struct cw_store *s;
    struct cw_error err = {0};
    assert_int_equal(cw_store_open(path, NULL, &s, &err), CW_OK);
    int64_t pos = q_int(cw_store_writer(s), "SELECT COALESCE(MAX(position), 0) FROM events");
    cw_store_close(s);
    return pos;
}

/*
 * Waits until the child has committed past `target`, read through a
 * read-only connection beside it, so the kill lands after real progress
 * however slow the machine; fails after a minute without any.
 */
static void wait_for_log(const char *path, int64_t target)
{
    for (int tries = 0; tries < 60 * 200; tries++) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t pos = 0;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT MAX(position) FROM events", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            pos = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (pos >= target)
            return;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    fail_msg("the log never reached position %lld", (long long)target);
}

static void test_kill_mid_batch(void **state)
{
    (void)state;
    struct harness h;
    memset(&h, 0, sizeof(h));
    harness_mkdir(&h);
    h.d = harness_domain(register_all);
    int64_t before = 0;
    for (unsigned round = 0; round < 5; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            write_forever(&h, round);
        /* Many batches in, then the kill lands wherever the writer is. */
        wait_for_log(h.db_path, before + 500 + round * 300);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        check_consistent(h.db_path);
        int64_t after = last_position(h.db_path);
        print_message("round %u: log at position %lld\n", round, (long long)after);
        assert_true(after > before); /* the restart carried on where the log ended */
        before = after;
    }
    harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_mid_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
