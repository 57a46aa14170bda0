/*
 * test_replay.c - `calderwood replay` against a log made by the real engine:
 * a full replay reproduces every projection (and the log) value for value;
 * a replay up to position N gives the cart that get-cart as_of_position N
 * reports; replay refuses to overwrite a file. With CW_TEST_STORE on
 * PostgreSQL: the log moved between the backends and back.
 */
#include "domain/domain.h"
#include "harness.h"

#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

static int register_all(struct cw_domain *d)
{
    int rc = cw_accounts_register(d);
    return rc ? rc : cw_demo_register(d);
}

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b ? b : "build";
}

/* Runs the calderwood binary with args; returns its exit status. */
static int calderwood(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/calderwood %s >/dev/null 2>&1", build_dir(), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void submit(struct harness *h, const char *name, const char *user, int64_t seq, json_t *data)
{
    struct cw_error err = {0};
    assert_int_equal(harness_submit(h, name, user, "replay-test", seq, data, &err), CW_OK);
    struct cw_outcome o;
    assert_int_equal(harness_collect(h, &o, 1), 1);
    cw_outcome_release(&o);
}

/* Every row of table in db, as one text blob (types and values), in key order. */
static char *table_text(sqlite3 *db, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY 1, 2", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            size_t need = len + (v ? strlen(v) : 0) + 16;
            if (need > cap)
                out = realloc(out, cap = need * 2);
            len += (size_t)sprintf(out + len, "%d:%s|", sqlite3_column_type(st, c), v ? v : "");
        }
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(st);
    return out;
}

static void assert_same_tables(const char *a_path, const char *b_path, bool with_events)
{
    sqlite3 *a, *b;
    assert_int_equal(sqlite3_open_v2(a_path, &a, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_open_v2(b_path, &b, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(a,
                                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT IN ('commands', 'schema_migrations')"
                                        " ORDER BY name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int tables = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!with_events && !strcmp(t, "events"))
            continue;
        char *x = table_text(a, t), *y = table_text(b, t);
        if (strcmp(x, y) != 0)
            fail_msg("table %s differs after replay", t);
        free(x);
        free(y);
        tables++;
    }
    sqlite3_finalize(st);
    assert_true(tables >= 5); /* events, users, sessions, page_views, cart_items at least */
    sqlite3_close(a);
    sqlite3_close(b);
}

static void make_history(struct harness *h, char user[CW_UUID_LEN + 1])
{
    int64_t seq = 0;
    submit(h, "register-user", "", seq++,
           json_pack("{s:s,s:s,s:s,s:s}", "email", "Ada@Example.com ", "first_name", "Ada",
                     "last_name", "Lovelace", "password", "correct horse"));
    submit(h, "register-user", "", seq++,
           json_pack("{s:s,s:s,s:s,s:s}", "email", "ada@example.com", "first_name", "Ada",
                     "last_name", "Again", "password", "battery staple"));
    cw_uuid_v7(user);
    char session[CW_UUID_LEN + 1];
    cw_uuid_v7(session);
    submit(h, "start-session", user, seq++,
           json_pack("{s:s,s:s}", "user_uuid", user, "session_uuid", session));
    for (int i = 0; i < 30; i++) {
        char url[32];
        snprintf(url, sizeof(url), "/page/%d", i);
        submit(h, "visit-page", user, seq++, json_pack("{s:s}", "url", url));
        submit(h, "add-to-cart", user, seq++,
               json_pack("{s:s,s:i}", "sku", i % 2 ? "apple" : "pear", "quantity", i % 5 + 1));
        submit(h, "remove-from-cart", user, seq++,
               json_pack("{s:s,s:i}", "sku", "apple", "quantity", i % 3 + 1));
    }
    submit(h, "end-session", user, seq++, json_pack("{s:s}", "session_uuid", session));
}

static void test_full_replay_is_identical(void **state)
{
    (void)state;
    if (harness_pg())
        skip(); /* compares two SQLite files; test_between_backends covers PostgreSQL */
    struct harness h;
    harness_open(&h, register_all);
    char user[CW_UUID_LEN + 1];
    make_history(&h, user);
    harness_stop(&h);

    char args[1024], out[600];
    snprintf(out, sizeof(out), "%s/replayed.db", h.dir);
    snprintf(args, sizeof(args), "replay --data %s --into %s", h.dir, out);
    assert_int_equal(calderwood(args), 0);
    assert_same_tables(h.db_path, out, true);
    /* A second replay into the same file is refused and leaves it alone. */
    assert_int_equal(calderwood(args), 1);
    assert_same_tables(h.db_path, out, true);
    harness_close(&h);
}

static void test_replay_until_matches_as_of(void **state)
{
    (void)state;
    struct harness h;
    harness_open(&h, register_all);
    char user[CW_UUID_LEN + 1];
    make_history(&h, user);
    struct cw_error err = {0};
    for (int64_t until = 10; until <= 60; until += 25) {
        json_t *ask = json_pack("{s:I}", "as_of_position", (json_int_t)until);
        json_t *as_of = harness_query(&h, "get-cart", ask, user, &err);
        json_decref(ask);
        assert_non_null(as_of);
        char args[2048], out[600];
        snprintf(out, sizeof(out), "%s/until-%lld.db", h.dir, (long long)until);
        snprintf(args, sizeof(args), "replay --from '%s' --into %s --until %lld", h.db_path, out,
                 (long long)until);
        assert_int_equal(calderwood(args), 0);

        struct cw_store *s;
        assert_int_equal(cw_store_open(out, NULL, &s, &err), CW_OK);
        json_t *rows = NULL;
        assert_int_equal(cw_db_query_json(cw_store_writer(s), &rows, &err,
                                          "SELECT sku, quantity FROM cart_items"
                                          " WHERE user_uuid = ? ORDER BY sku",
                                          "t", user),
                         CW_OK);
        int64_t max = -1;
        cw_db_query_int(cw_store_writer(s), &max, &err, "SELECT MAX(position) FROM events", "");
        assert_int_equal(max, until);
        assert_true(json_equal(rows, json_object_get(as_of, "items")));
        json_decref(rows);
        json_decref(as_of);
        cw_store_close(s);
    }
    harness_close(&h);
}

/*
 * The log moved from the live PostgreSQL store into SQLite, from there into
 * a new PostgreSQL database, and back into SQLite: both SQLite stores hold
 * the same log, command log and projections, value for value.
 */
static void test_between_backends(void **state)
{
    (void)state;
    if (!harness_pg())
        skip(); /* needs a PostgreSQL server (tests/pg/run.sh) */
    struct harness h;
    harness_open(&h, register_all);
    char user[CW_UUID_LEN + 1];
    make_history(&h, user);
    harness_stop(&h);

    char a[600], b[600], pg_b[1100], db_b[80], args[2600];
    snprintf(a, sizeof(a), "%s/a.db", h.dir);
    snprintf(b, sizeof(b), "%s/b.db", h.dir);
    snprintf(db_b, sizeof(db_b), "%s_b", h.pg_db);
    snprintf(args, sizeof(args), "CREATE DATABASE %s", db_b);
    harness_pg_admin(args);
    harness_pg_url(pg_b, sizeof(pg_b), getenv("CW_TEST_STORE"), db_b);

    snprintf(args, sizeof(args), "replay --from '%s' --into sqlite:%s", h.db_path, a);
    assert_int_equal(calderwood(args), 0);
    snprintf(args, sizeof(args), "replay --from sqlite:%s --into '%s'", a, pg_b);
    assert_int_equal(calderwood(args), 0);
    /* A store that holds a log is never replayed into. */
    assert_int_equal(calderwood(args), 1);
    snprintf(args, sizeof(args), "replay --from '%s' --into %s", pg_b, b);
    assert_int_equal(calderwood(args), 0);
    assert_same_tables(a, b, true);
    sqlite3 *x, *y;
    assert_int_equal(sqlite3_open_v2(a, &x, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_open_v2(b, &y, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *cx = table_text(x, "commands"), *cy = table_text(y, "commands");
    assert_true(strlen(cx) > 100); /* the command log came along */
    assert_string_equal(cx, cy);
    free(cx);
    free(cy);
    sqlite3_close(x);
    sqlite3_close(y);

    snprintf(args, sizeof(args), "DROP DATABASE %s WITH (FORCE)", db_b);
    harness_pg_admin(args);
    harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_replay_is_identical),
        cmocka_unit_test(test_replay_until_matches_as_of),
        cmocka_unit_test(test_between_backends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
