/*
 * test_store.c - the event store (src/store/store.h): opening, migrations,
 * the event log, the command log, the SQL helpers, snapshots and the
 * translation of a held write lock into CW_ERR_AGAIN. On SQLite, or on
 * PostgreSQL when CW_TEST_STORE says so (see harness.h); tests of what only
 * a SQLite file has (WAL, its pragmas, the old command-log layout) are
 * skipped there, and the batch look-up's plan is tested there alone.
 */
#include "harness.h"

#include "core/clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

/* A fresh directory per test; removed at teardown unless CW_TEST_KEEP is set. */
struct fixture {
    struct harness h;
    struct cw_store *s;
    struct cw_domain *d;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    harness_mkdir(&f->h);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cw_store_close(f->s);
    cw_domain_free(f->d);
    harness_cleanup(&f->h);
    free(f);
    return 0;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int64_t query_int(struct cw_db *db, const char *sql, const char *arg)
{
    struct cw_error err = {0};
    int64_t v = -1;
    int rc =
        arg ? cw_db_query_int(db, &v, &err, sql, "t", arg) : cw_db_query_int(db, &v, &err, sql, "");
    if (rc)
        fail_msg("%s: %s", sql, err.message);
    return v;
}

static bool has_table(struct cw_db *db, const char *name)
{
    if (harness_pg())
        return query_int(db,
                         "SELECT COUNT(*) FROM information_schema.tables"
                         " WHERE table_schema = current_schema() AND table_name = ?",
                         name) == 1;
    return query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                     name) == 1;
}

static bool migration_recorded(struct cw_db *db, const char *id)
{
    return query_int(db, "SELECT COUNT(*) FROM schema_migrations WHERE id = ?", id) == 1;
}

static void open_store(struct fixture *f)
{
    struct cw_error err = {0};
    if (cw_store_open(f->h.db_path, NULL, &f->s, &err))
        fail_msg("open: %s", err.message);
    if (cw_store_migrate(f->s, NULL, NULL, &err))
        fail_msg("migrate: %s", err.message);
}

static void test_open_creates_wal(void **state)
{
    if (harness_pg())
        skip(); /* SQLite only */
    struct fixture *f = *state;
    struct cw_error err = {0};
    assert_false(exists(f->h.db_path));
    assert_int_equal(cw_store_open(f->h.db_path, NULL, &f->s, &err), CW_OK);
    assert_true(exists(f->h.db_path));
    /* WAL is a property of the file: a separate connection sees it. */
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(f->h.db_path, &raw), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(raw);
    /* synchronous=FULL (2) on the writer. */
    assert_int_equal(query_int(cw_store_writer(f->s), "PRAGMA synchronous", NULL), 2);
}

/*
 * Opening and migrating a fresh database is what every start does: it must
 * never fail for a lock the store itself holds (a background connection
 * racing the writer, whose busy timeout is 0).
 */
static void test_open_migrate_fresh_repeatedly(void **state)
{
    if (harness_pg())
        skip(); /* SQLite only */
    struct fixture *f = *state;
    enum { N = 1000 };
    int failures = 0;
    char first[320] = "";
    for (int i = 0; i < N; i++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/fresh-%d.db", f->h.dir, i);
        struct cw_store *s = NULL;
        struct cw_error err = {0};
        int rc = cw_store_open(path, NULL, &s, &err);
        if (!rc)
            rc = cw_store_migrate(s, NULL, NULL, &err);
        if (rc && !failures++)
            snprintf(first, sizeof(first), "run %d: rc %d: %s", i, rc, err.message);
        if (s)
            cw_store_close(s);
    }
    if (failures)
        fail_msg("%d of %d fresh open+migrate runs failed; first %s", failures, N, first);
}

static void test_missing_file(void **state)
{
    if (harness_pg())
        skip(); /* SQLite only */
    struct fixture *f = *state;
    struct cw_error err = {0};
    struct cw_store *s = (struct cw_store *)0x1;
    struct cw_store_options ro = {.read_only = true};
    assert_int_equal(cw_store_open(f->h.db_path, &ro, &s, &err), CW_ERR_NOT_FOUND);
    assert_ptr_equal(s, (struct cw_store *)0x1);
    assert_non_null(strstr(err.message, f->h.db_path));
    struct cw_store_options nc = {.no_create = true};
    assert_int_equal(cw_store_open(f->h.db_path, &nc, &s, &err), CW_ERR_NOT_FOUND);
    assert_false(exists(f->h.db_path));
    /* Once it exists, both open. */
    open_store(f);
    assert_int_equal(cw_store_open(f->h.db_path, &ro, &s, &err), CW_OK);
    assert_int_equal(query_int(cw_store_writer(s), "SELECT COUNT(*) FROM events", NULL), 0);
    /* A read-only store refuses to migrate. */
    assert_int_equal(cw_store_migrate(s, NULL, NULL, &err), CW_ERR_STORE);
    cw_store_close(s);
    assert_int_equal(cw_store_open(f->h.db_path, &nc, &s, &err), CW_OK);
    cw_store_close(s);
}

static const struct cw_migration m1 = {.id = "001-a", .sql = "CREATE TABLE t_a(x INTEGER);"};
static const struct cw_migration m2 = {
    .id = "002-b", .sql = "CREATE TABLE t_b(x INTEGER); INSERT INTO t_b VALUES (1), (2);"};
static const struct cw_migration m3 = {.id = "003-c", .sql = "CREATE TABLE t_c(x INTEGER);"};

static void test_migrate_once(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    f->d = cw_domain_new();
    assert_int_equal(cw_domain_add_migration(f->d, "t", &m1), CW_OK);
    assert_int_equal(cw_domain_add_migration(f->d, "t", &m2), CW_OK);
    assert_int_equal(cw_store_open(f->h.db_path, NULL, &f->s, &err), CW_OK);
    int n = -1;
    assert_int_equal(cw_store_migrate(f->s, f->d, &n, &err), CW_OK);
    assert_int_equal(n, 4); /* the core's two + two */
    struct cw_db *db = cw_store_writer(f->s);
    assert_true(has_table(db, "events"));
    assert_true(has_table(db, "commands"));
    assert_true(has_table(db, "t_a"));
    assert_true(has_table(db, "t_b"));
    assert_true(migration_recorded(db, "core:001-log"));
    assert_true(migration_recorded(db, "core:002-commands-by-key"));
    assert_true(migration_recorded(db, "t:001-a"));
    assert_true(migration_recorded(db, "t:002-b"));
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM schema_migrations", NULL), 4);

    /* Again: nothing applied, nothing run twice. */
    n = -1;
    assert_int_equal(cw_store_migrate(f->s, f->d, &n, &err), CW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM t_b", NULL), 2);

    /* After a restart, with one more migration: only the new one. */
    cw_store_close(f->s);
    f->s = NULL;
    assert_int_equal(cw_domain_add_migration(f->d, "t", &m3), CW_OK);
    assert_int_equal(cw_store_open(f->h.db_path, NULL, &f->s, &err), CW_OK);
    assert_int_equal(cw_store_migrate(f->s, f->d, &n, &err), CW_OK);
    assert_int_equal(n, 1);
    db = cw_store_writer(f->s);
    assert_true(has_table(db, "t_c"));
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM t_b", NULL), 2);
    /* n_applied is optional. */
    assert_int_equal(cw_store_migrate(f->s, f->d, NULL, &err), CW_OK);
}

static void test_migrate_failure(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    static const struct cw_migration bad = {
        .id = "002-bad",
        .sql = "CREATE TABLE t_partial(x INTEGER); INSERT INTO t_partial VALUES (1);"
               " CREATE TABLE t_broken(;"};
    f->d = cw_domain_new();
    assert_int_equal(cw_domain_add_migration(f->d, "t", &m1), CW_OK);
    assert_int_equal(cw_domain_add_migration(f->d, "t", &bad), CW_OK);
    assert_int_equal(cw_domain_add_migration(f->d, "t", &m3), CW_OK);
    assert_int_equal(cw_store_open(f->h.db_path, NULL, &f->s, &err), CW_OK);
    int n = -1;
    assert_int_equal(cw_store_migrate(f->s, f->d, &n, &err), CW_ERR_STORE);
    if (!strstr(err.message, "t:002-bad"))
        fail_msg("message does not name the migration: %s", err.message);
    assert_int_equal(n, 3); /* the core's two and t:001-a */
    struct cw_db *db = cw_store_writer(f->s);
    assert_true(has_table(db, "t_a"));
    assert_true(migration_recorded(db, "t:001-a"));
    /* Nothing of the failing migration... */
    assert_false(has_table(db, "t_partial"));
    assert_false(has_table(db, "t_broken"));
    assert_false(migration_recorded(db, "t:002-bad"));
    /* ...and nothing after it. */
    assert_false(has_table(db, "t_c"));
    assert_false(migration_recorded(db, "t:003-c"));
    /* The writer is not left inside a transaction. */
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    assert_int_equal(cw_db_commit(db, &err), CW_OK);
    /* Running again fails the same way and still applies nothing. */
    assert_int_equal(cw_store_migrate(f->s, f->d, &n, &err), CW_ERR_STORE);
    assert_int_equal(n, 0);
    assert_false(has_table(db, "t_partial"));
}

/* The command log as core:001-log made it: a uuid primary key besides the idempotency key. */
static const char command_log_v1[] =
    "CREATE TABLE schema_migrations (id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);"
    "INSERT INTO schema_migrations VALUES ('core:001-log', 1);"
    "CREATE TABLE events (position INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
    " command_uuid TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,"
    " data TEXT NOT NULL, meta TEXT NOT NULL, user_uuid TEXT, client_id TEXT,"
    " client_seq INTEGER, recorded_at INTEGER NOT NULL);"
    "CREATE INDEX events_by_user ON events(user_uuid, position);"
    "CREATE TABLE commands (uuid TEXT PRIMARY KEY, user_uuid TEXT NOT NULL,"
    " client_id TEXT NOT NULL, client_seq INTEGER NOT NULL, name TEXT NOT NULL,"
    " data TEXT NOT NULL, meta TEXT NOT NULL, received_at INTEGER NOT NULL,"
    " outcome TEXT NOT NULL, first_position INTEGER, last_position INTEGER,"
    " reject_code TEXT, reject_message TEXT, UNIQUE (user_uuid, client_id, client_seq));"
    /* Inserted out of uuid order: the log's order is the rowid's. */
    "INSERT INTO commands VALUES ('0190f6d2-8c1e-7a3b-9f00-00000000000c',"
    " 'u1', 'c1', 1, 'a', '{}', '{}', 1, 'ok', 1, 1, NULL, NULL);"
    "INSERT INTO commands VALUES ('0190f6d2-8c1e-7a3b-9f00-00000000000a',"
    " 'u1', 'c1', 2, 'b', '{\"x\":1}', '{}', 2, 'rejected', NULL, NULL, 'no', 'not now');"
    "INSERT INTO commands VALUES ('0190f6d2-8c1e-7a3b-9f00-00000000000b',"
    " 'u2', 'c1', 1, 'a', '{}', '{}', 3, 'ok', 2, 3, NULL, NULL);";

/* core:002 drops the uuid key of an existing command log and keeps every row, in order. */
static void test_upgrade_command_log(void **state)
{
    if (harness_pg())
        skip(); /* SQLite only */
    struct fixture *f = *state;
    struct cw_error err = {0};
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(f->h.db_path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, command_log_v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(cw_store_open(f->h.db_path, NULL, &f->s, &err), CW_OK);
    int n = -1;
    assert_int_equal(cw_store_migrate(f->s, NULL, &n, &err), CW_OK);
    assert_int_equal(n, 1);
    struct cw_db *db = cw_store_writer(f->s);
    /* One index left: the idempotency key. */
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM pragma_index_list('commands')", NULL), 1);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM commands", NULL), 3);
    json_t *rows = NULL;
    assert_int_equal(cw_db_query_json(db, &rows, &err,
                                      "SELECT group_concat(substr(uuid, 36), '') AS o FROM"
                                      " (SELECT uuid FROM commands ORDER BY rowid)",
                                      ""),
                     CW_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "o")), "cab");
    json_decref(rows);
    struct cw_command_record rec;
    assert_int_equal(cw_store_find_command(db, "u1", "c1", 2, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, "0190f6d2-8c1e-7a3b-9f00-00000000000a");
    assert_true(rec.rejected);
    assert_string_equal(rec.reject_message, "not now");
    assert_int_equal(cw_store_find_command(db, "u2", "c1", 1, &rec, &err), CW_OK);
    assert_int_equal(rec.last_position, 3);
}

/* ------------------------------------------------------------ event log */

static const char *U1 = "0190f6d2-8c1e-7a3b-9f00-000000000001";
static const char *U2 = "0190f6d2-8c1e-7a3b-9f00-000000000002";

static void append(struct cw_db *db, int64_t pos, const char *name, int version, const char *user,
                   const char *data_text)
{
    struct cw_error err = {0};
    char uuid[CW_UUID_LEN + 1], cmd_uuid[CW_UUID_LEN + 1];
    cw_uuid_v7(uuid);
    cw_uuid_v7(cmd_uuid);
    json_t *data = json_loads(data_text, 0, NULL);
    json_t *meta = json_pack("{s:I}", "pos", (json_int_t)pos);
    assert_non_null(data);
    struct cw_event ev = {.position = pos,
                          .uuid = uuid,
                          .command_uuid = cmd_uuid,
                          .name = name,
                          .version = version,
                          .data = data,
                          .meta = meta,
                          .user_uuid = user,
                          .client_id = "cli",
                          .client_seq = pos * 10,
                          .recorded_at = 1000 + pos};
    if (cw_store_append_event(db, &ev, NULL, NULL, &err))
        fail_msg("append %lld: %s", (long long)pos, err.message);
    json_decref(data);
    json_decref(meta);
}

struct seen {
    int64_t pos[32];
    int n;
    int stop_after;       /* 0: never */
    struct cw_event copy; /* scalar fields of the last event */
    char user[CW_UUID_LEN + 1];
    bool user_null;
    char *data;
    char *meta;
    char client_id[16];
};

static int collect(const struct cw_event *ev, void *arg)
{
    struct seen *s = arg;
    s->pos[s->n++] = ev->position;
    s->copy = *ev;
    s->user_null = ev->user_uuid == NULL;
    snprintf(s->user, sizeof(s->user), "%s", ev->user_uuid ? ev->user_uuid : "");
    snprintf(s->client_id, sizeof(s->client_id), "%s", ev->client_id ? ev->client_id : "");
    free(s->data);
    free(s->meta);
    s->data = json_dumps(ev->data, JSON_COMPACT | JSON_SORT_KEYS);
    s->meta = json_dumps(ev->meta, JSON_COMPACT | JSON_SORT_KEYS);
    s->copy.data = s->copy.meta = NULL;
    s->copy.uuid = s->copy.command_uuid = s->copy.name = s->copy.user_uuid = NULL;
    s->copy.client_id = NULL;
    return s->stop_after && s->n >= s->stop_after ? 42 : CW_OK;
}

/* Scans and checks the positions seen equal want (terminated by 0). */
static void expect_scan(struct cw_db *db, int64_t after, int64_t until, const char *user,
                        const char *const *names, const int64_t *want)
{
    struct seen s = {0};
    struct cw_error err = {0};
    int rc = cw_db_scan_events(db, after, until, user, names, collect, &s, &err);
    if (rc)
        fail_msg("scan: %d %s", rc, err.message);
    int n = 0;
    while (want[n])
        n++;
    if (s.n != n)
        fail_msg("scan after=%lld until=%lld user=%s: %d events, want %d", (long long)after,
                 (long long)until, user ? user : "any", s.n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(s.pos[i], want[i]);
    free(s.data);
    free(s.meta);
}

static void fill_log(struct cw_db *db)
{
    struct cw_error err = {0};
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    append(db, 1, "a", 1, U1, "{\"i\":1}");
    append(db, 2, "b", 1, U2, "{\"i\":2}");
    append(db, 3, "a", 1, U1, "{\"i\":3}");
    append(db, 4, "b", 1, "", "{\"i\":4}"); /* a system event: no user */
    append(db, 5, "a", 1, U2, "{\"i\":5}");
    append(db, 6, "c", 1, U1, "{\"i\":6}");
    assert_int_equal(cw_db_commit(db, &err), CW_OK);
}

static void test_append_and_scan(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *db = cw_store_writer(f->s);
    int64_t last = -1;
    assert_int_equal(cw_store_last_position(db, &last, &err), CW_OK);
    assert_int_equal(last, 0);
    fill_log(db);
    assert_int_equal(cw_store_last_position(db, &last, &err), CW_OK);
    assert_int_equal(last, 6);

    /* Position filters: (after, until], until 0 = no bound. */
    expect_scan(db, 0, 0, NULL, NULL, (const int64_t[]){1, 2, 3, 4, 5, 6, 0});
    expect_scan(db, 2, 4, NULL, NULL, (const int64_t[]){3, 4, 0});
    expect_scan(db, 4, 0, NULL, NULL, (const int64_t[]){5, 6, 0});
    expect_scan(db, 0, 1, NULL, NULL, (const int64_t[]){1, 0});
    expect_scan(db, 6, 0, NULL, NULL, (const int64_t[]){0});
    expect_scan(db, 3, 3, NULL, NULL, (const int64_t[]){0});
    /* User filter. */
    expect_scan(db, 0, 0, U1, NULL, (const int64_t[]){1, 3, 6, 0});
    expect_scan(db, 1, 5, U1, NULL, (const int64_t[]){3, 0});
    expect_scan(db, 0, 0, U2, NULL, (const int64_t[]){2, 5, 0});
    expect_scan(db, 0, 0, "0190f6d2-8c1e-7a3b-9f00-000000000009", NULL, (const int64_t[]){0});
    /* Names filter. */
    expect_scan(db, 0, 0, NULL, (const char *const[]){"a", NULL}, (const int64_t[]){1, 3, 5, 0});
    expect_scan(db, 0, 0, NULL, (const char *const[]){"b", "c", NULL},
                (const int64_t[]){2, 4, 6, 0});
    expect_scan(db, 0, 0, NULL, (const char *const[]){"zzz", NULL}, (const int64_t[]){0});
    expect_scan(db, 0, 0, NULL, (const char *const[]){NULL}, (const int64_t[]){0});
    /* All together. */
    expect_scan(db, 1, 6, U1, (const char *const[]){"a", "c", NULL}, (const int64_t[]){3, 6, 0});

    /* The fields come back as they were written. */
    struct seen s = {0};
    assert_int_equal(cw_db_scan_events(db, 3, 4, NULL, NULL, collect, &s, &err), CW_OK);
    assert_int_equal(s.n, 1);
    assert_true(s.user_null); /* "" is stored as no user */
    assert_string_equal(s.data, "{\"i\":4}");
    assert_string_equal(s.meta, "{\"pos\":4}");
    assert_string_equal(s.client_id, "cli");
    assert_int_equal(s.copy.client_seq, 40);
    assert_int_equal(s.copy.recorded_at, 1004);
    assert_int_equal(s.copy.version, 1);
    assert_int_equal(cw_db_scan_events(db, 0, 1, NULL, NULL, collect, &s, &err), CW_OK);
    assert_string_equal(s.user, U1);
    free(s.data);
    free(s.meta);

    /* The callback stops the scan with its own result; the next scan works. */
    struct seen stop = {.stop_after = 2};
    assert_int_equal(cw_db_scan_events(db, 0, 0, NULL, NULL, collect, &stop, &err), 42);
    assert_int_equal(stop.n, 2);
    free(stop.data);
    free(stop.meta);
    expect_scan(db, 0, 0, NULL, NULL, (const int64_t[]){1, 2, 3, 4, 5, 6, 0});

    /* A reader sees the committed log too. */
    struct cw_db *r;
    assert_int_equal(cw_store_reader_open(f->s, &r, &err), CW_OK);
    expect_scan(r, 0, 0, U2, NULL, (const int64_t[]){2, 5, 0});
    cw_db_close(r);

    /* Pre-serialised data and meta are stored as given and read back as JSON. */
    char pre_uuid[CW_UUID_LEN + 1];
    cw_uuid_v7(pre_uuid);
    json_t *pre_data = json_pack("{s:i}", "i", 7);
    struct cw_event pre = {.position = 7,
                           .uuid = pre_uuid,
                           .command_uuid = pre_uuid,
                           .name = "p",
                           .version = 1,
                           .data = pre_data,
                           .user_uuid = U1,
                           .client_id = "cli",
                           .recorded_at = 1};
    assert_int_equal(cw_store_append_event(db, &pre, "{\"i\":7}", "{\"via\":\"text\"}", &err),
                     CW_OK);
    json_decref(pre_data);
    struct seen ps = {0};
    assert_int_equal(cw_db_scan_events(db, 6, 7, NULL, NULL, collect, &ps, &err), CW_OK);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.data, "{\"i\":7}");
    assert_string_equal(ps.meta, "{\"via\":\"text\"}");
    free(ps.data);
    free(ps.meta);

    /* Positions and event uuids are unique. */
    char uuid[CW_UUID_LEN + 1];
    cw_uuid_v7(uuid);
    struct cw_event dup = {.position = 3,
                           .uuid = uuid,
                           .command_uuid = uuid,
                           .name = "a",
                           .version = 1,
                           .recorded_at = 1};
    assert_int_equal(cw_store_append_event(db, &dup, NULL, NULL, &err), CW_ERR_STORE);
}

/* "thing" at version 3: v1 {"msg"} -> v2 {"text"} -> v3 {"text","len"}. */
static json_t *upcast_thing(int from_version, json_t *data)
{
    json_t *out = json_object();
    if (from_version == 1) {
        json_object_set(out, "text", json_object_get(data, "msg"));
    } else {
        json_t *t = json_object_get(data, "text");
        json_object_set(out, "text", t);
        json_object_set_new(out, "len", json_integer((json_int_t)json_string_length(t)));
    }
    json_decref(data);
    return out;
}

static const struct cw_event_def thing_def = {
    .name = "thing", .version = 3, .upcast = upcast_thing};

static void test_scan_upcasts(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *db = cw_store_writer(f->s);
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    append(db, 1, "thing", 1, U1, "{\"msg\":\"hello\"}");
    append(db, 2, "thing", 2, U1, "{\"text\":\"hey\"}");
    append(db, 3, "thing", 3, U1, "{\"text\":\"hi\",\"len\":2}");
    append(db, 4, "other", 1, U1, "{\"msg\":\"untouched\"}");
    assert_int_equal(cw_db_commit(db, &err), CW_OK);

    /* Without a domain, events read as stored. */
    struct seen s = {0};
    assert_int_equal(cw_db_scan_events(db, 0, 1, NULL, NULL, collect, &s, &err), CW_OK);
    assert_int_equal(s.copy.version, 1);
    assert_string_equal(s.data, "{\"msg\":\"hello\"}");

    /* A second store on the file, with the domain set: upcast on every connection. */
    f->d = cw_domain_new();
    assert_int_equal(cw_domain_add_event(f->d, &thing_def), CW_OK);
    struct cw_store *s2;
    assert_int_equal(cw_store_open(f->h.db_path, NULL, &s2, &err), CW_OK);
    cw_store_set_domain(s2, f->d);
    struct cw_db *r;
    assert_int_equal(cw_store_reader_open(s2, &r, &err), CW_OK);
    assert_ptr_equal(cw_db_domain(r), f->d);
    assert_ptr_equal(cw_db_domain(cw_store_writer(s2)), f->d);
    assert_null(cw_db_domain(db));
    const char *want[] = {"{\"len\":5,\"text\":\"hello\"}", "{\"len\":3,\"text\":\"hey\"}",
                          "{\"len\":2,\"text\":\"hi\"}"};
    struct cw_db *conns[] = {cw_store_writer(s2), r};
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 3; i++) {
            s.n = 0;
            assert_int_equal(cw_db_scan_events(conns[c], i, i + 1, NULL, NULL, collect, &s, &err),
                             CW_OK);
            assert_int_equal(s.n, 1);
            assert_int_equal(s.copy.version, 3);
            assert_string_equal(s.data, want[i]);
        }
        s.n = 0;
        assert_int_equal(cw_db_scan_events(conns[c], 3, 4, NULL, NULL, collect, &s, &err), CW_OK);
        assert_int_equal(s.copy.version, 1);
        assert_string_equal(s.data, "{\"msg\":\"untouched\"}");
    }
    /* The log itself is never rewritten. */
    assert_int_equal(query_int(db, "SELECT version FROM events WHERE position = 1", NULL), 1);
    free(s.data);
    free(s.meta);
    cw_store_close(s2); /* closes r too */
}

/* ---------------------------------------------------------- command log */

static void make_cmd(struct cw_command *c, const char *user, const char *client_id, int64_t seq,
                     const char *name)
{
    memset(c, 0, sizeof(*c));
    cw_uuid_v7(c->uuid);
    snprintf(c->user_uuid, sizeof(c->user_uuid), "%s", user);
    c->name = name;
    c->client_id = client_id;
    c->client_seq = seq;
    c->received_at = 77;
    c->data = json_pack("{s:i}", "x", 1);
    c->meta = json_object();
}

static void free_cmd(struct cw_command *c)
{
    json_decref(c->data);
    json_decref(c->meta);
}

static void test_command_log(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *db = cw_store_writer(f->s);
    struct cw_command_record rec;

    assert_int_equal(cw_store_find_command(db, U1, "c1", 1, &rec, &err), CW_ERR_NOT_FOUND);

    /* Accepted, with positions. */
    struct cw_command ok;
    make_cmd(&ok, U1, "c1", 1, "do-thing");
    struct cw_command_record ok_rec = {.first_position = 3, .last_position = 5};
    assert_int_equal(cw_store_insert_command(db, &ok, &ok_rec, NULL, NULL, &err), CW_OK);
    memset(&rec, 0x55, sizeof(rec));
    assert_int_equal(cw_store_find_command(db, U1, "c1", 1, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, ok.uuid);
    assert_false(rec.rejected);
    assert_int_equal(rec.first_position, 3);
    assert_int_equal(rec.last_position, 5);
    assert_string_equal(rec.reject_code, "");

    /* Accepted without events. */
    struct cw_command none;
    make_cmd(&none, U1, "c1", 2, "do-nothing");
    struct cw_command_record none_rec = {0};
    assert_int_equal(cw_store_insert_command(db, &none, &none_rec, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_store_find_command(db, U1, "c1", 2, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, none.uuid);
    assert_false(rec.rejected);
    assert_int_equal(rec.first_position, 0);
    assert_int_equal(rec.last_position, 0);

    /* Rejected, with its code and message. */
    struct cw_command bad;
    make_cmd(&bad, U2, "c1", 1, "do-thing");
    struct cw_command_record bad_rec = {.rejected = true};
    snprintf(bad_rec.reject_code, sizeof(bad_rec.reject_code), "email-taken");
    snprintf(bad_rec.reject_message, sizeof(bad_rec.reject_message), "that email is taken");
    assert_int_equal(cw_store_insert_command(db, &bad, &bad_rec, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_store_find_command(db, U2, "c1", 1, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, bad.uuid);
    assert_true(rec.rejected);
    assert_string_equal(rec.reject_code, "email-taken");
    assert_string_equal(rec.reject_message, "that email is taken");
    assert_int_equal(rec.first_position, 0);

    /* A system command (no user). */
    struct cw_command sys;
    make_cmd(&sys, "", "system", 1, "tick");
    assert_int_equal(cw_store_insert_command(db, &sys, &none_rec, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_store_find_command(db, "", "system", 1, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, sys.uuid);

    /* Each part of the triple matters. */
    assert_int_equal(cw_store_find_command(db, U1, "c1", 3, &rec, &err), CW_ERR_NOT_FOUND);
    assert_int_equal(cw_store_find_command(db, U1, "c2", 1, &rec, &err), CW_ERR_NOT_FOUND);
    assert_int_equal(cw_store_find_command(db, "", "c1", 1, &rec, &err), CW_ERR_NOT_FOUND);

    /* The same triple twice (a new command uuid): refused, nothing changed (store.h). */
    struct cw_command again;
    make_cmd(&again, U1, "c1", 1, "do-thing");
    assert_int_equal(cw_store_insert_command(db, &again, &ok_rec, NULL, NULL, &err), CW_ERR_EXISTS);
    assert_int_equal(cw_store_find_command(db, U1, "c1", 1, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, ok.uuid);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM commands", NULL), 4);
    assert_int_equal(
        query_int(db, "SELECT COUNT(*) FROM commands WHERE uuid = ? AND outcome = 'ok'", ok.uuid),
        1);

    /* Data and meta are stored as JSON text: serialised here, or as handed in. */
    json_t *rows = NULL;
    assert_int_equal(cw_db_query_json(db, &rows, &err,
                                      "SELECT data, meta FROM commands WHERE uuid = ?", "t",
                                      ok.uuid),
                     CW_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "data")),
                        "{\"x\":1}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "meta")), "{}");
    json_decref(rows);
    struct cw_command pre;
    make_cmd(&pre, U1, "c1", 9, "do-thing");
    assert_int_equal(cw_store_insert_command(db, &pre, &none_rec, "{\"x\":1}", "{\"m\":2}", &err),
                     CW_OK);
    assert_int_equal(query_int(db,
                               "SELECT COUNT(*) FROM commands WHERE uuid = ? AND data = '{\"x\":1}'"
                               " AND meta = '{\"m\":2}'",
                               pre.uuid),
                     1);
    free_cmd(&pre);

    /* An outcome is rewritten on the row with cmd's key, and on no other. */
    struct cw_command_record fixed = {.rejected = true};
    snprintf(fixed.reject_code, sizeof(fixed.reject_code), "late");
    snprintf(fixed.reject_message, sizeof(fixed.reject_message), "changed its mind");
    assert_int_equal(cw_store_update_command(db, &none, &fixed, &err), CW_OK);
    assert_int_equal(cw_store_find_command(db, U1, "c1", 2, &rec, &err), CW_OK);
    assert_true(rec.rejected);
    assert_string_equal(rec.reject_code, "late");
    assert_int_equal(cw_store_find_command(db, U1, "c1", 1, &rec, &err), CW_OK);
    assert_false(rec.rejected);
    assert_int_equal(
        query_int(db, "SELECT COUNT(*) FROM commands WHERE outcome = 'rejected'", NULL), 2);
    struct cw_command_record positions = {.first_position = 7, .last_position = 9};
    assert_int_equal(cw_store_update_command(db, &none, &positions, &err), CW_OK);
    assert_int_equal(cw_store_find_command(db, U1, "c1", 2, &rec, &err), CW_OK);
    assert_false(rec.rejected);
    assert_int_equal(rec.first_position, 7);
    assert_int_equal(rec.last_position, 9);
    assert_string_equal(rec.reject_code, "");

    free_cmd(&ok);
    free_cmd(&none);
    free_cmd(&bad);
    free_cmd(&sys);
    free_cmd(&again);
}

/*
 * Held command-log rows (SQLite; cw_db_hold_commands): they go in 64 to a
 * statement, before any statement that reads the command log and at
 * commit; the outcome of the row just held is corrected in place; a held
 * duplicate key fails when it goes in, the transaction is gone with it,
 * and nothing more runs on the connection until the next BEGIN.
 */
static void test_held_command_rows(void **state)
{
    struct fixture *f = *state;
    if (harness_pg())
        skip(); /* PostgreSQL holds by its own lookup (cw_store_expect_commands) */
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *db = cw_store_writer(f->s);
    enum { N = 71 };
    struct cw_command cmds[N];
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    cw_db_hold_commands(db, true);
    for (int i = 0; i < N; i++) {
        make_cmd(&cmds[i], U1, "h", i + 1, "do-thing");
        struct cw_command_record rec = {.first_position = i + 1, .last_position = i + 1};
        assert_int_equal(cw_store_insert_command(db, &cmds[i], &rec, NULL, NULL, &err), CW_OK);
    }
    /* The last one refused after all: corrected while it is still held. */
    struct cw_command_record no = {.rejected = true};
    snprintf(no.reject_code, sizeof(no.reject_code), "nope");
    snprintf(no.reject_message, sizeof(no.reject_message), "changed its mind");
    assert_int_equal(cw_store_update_command(db, &cmds[N - 1], &no, &err), CW_OK);
    /* A read of the command log sees every held row. */
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM commands", NULL), N);
    struct cw_command_record rec;
    assert_int_equal(cw_store_find_command(db, U1, "h", N, &rec, &err), CW_OK);
    assert_true(rec.rejected);
    assert_string_equal(rec.reject_code, "nope");
    assert_string_equal(rec.uuid, cmds[N - 1].uuid);
    assert_int_equal(cw_store_find_command(db, U1, "h", 64, &rec, &err), CW_OK);
    assert_false(rec.rejected);
    assert_int_equal(rec.first_position, 64);
    /* A row no longer held is corrected by its key. */
    struct cw_command_record moved = {.first_position = 100, .last_position = 101};
    assert_int_equal(cw_store_update_command(db, &cmds[2], &moved, &err), CW_OK);
    assert_int_equal(cw_store_find_command(db, U1, "h", 3, &rec, &err), CW_OK);
    assert_int_equal(rec.last_position, 101);
    assert_int_equal(cw_db_commit(db, &err), CW_OK);
    cw_db_hold_commands(db, false);
    assert_false(cw_db_held_lost(db));

    /* A resend held with new rows: accepted when held, the whole transaction lost at commit. */
    struct cw_command fresh, resend;
    make_cmd(&fresh, U1, "h", N + 1, "do-thing");
    make_cmd(&resend, U1, "h", 5, "do-thing");
    struct cw_command_record one = {.first_position = 200, .last_position = 200};
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    cw_db_hold_commands(db, true);
    assert_int_equal(cw_store_insert_command(db, &fresh, &one, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_store_insert_command(db, &resend, &one, NULL, NULL, &err), CW_OK);
    assert_int_not_equal(cw_db_commit(db, &err), CW_OK);
    assert_true(cw_db_held_lost(db));
    /* Anything now would run outside the transaction: refused. */
    assert_int_not_equal(cw_db_exec(db, &err,
                                    "INSERT INTO schema_migrations(id, applied_at) VALUES (?, 1)",
                                    "t", "outside"),
                         CW_OK);
    cw_db_rollback(db);
    cw_db_hold_commands(db, false);
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    assert_false(cw_db_held_lost(db));
    assert_int_equal(cw_store_insert_command(db, &fresh, &one, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_store_insert_command(db, &resend, &one, NULL, NULL, &err), CW_ERR_EXISTS);
    assert_int_equal(cw_db_commit(db, &err), CW_OK);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM commands", NULL), N + 1);
    assert_int_equal(
        query_int(db, "SELECT COUNT(*) FROM schema_migrations WHERE id = ?", "outside"), 0);
    assert_int_equal(cw_store_find_command(db, U1, "h", 5, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, cmds[4].uuid);

    /*
     * With the batch's keys looked up first, a resend (of the log's seq N + 1)
     * and a repeat within the batch are not held: their insert is the check.
     */
    struct cw_command batch[6];
    const struct cw_command *ptrs[6];
    make_cmd(&batch[0], U1, "h", N + 1, "do-thing"); /* in the log */
    for (int i = 1; i < 5; i++)
        make_cmd(&batch[i], U1, "h", N + 1 + i, "do-thing");
    make_cmd(&batch[5], U1, "h", N + 2, "do-thing"); /* batch[1] again */
    for (int i = 0; i < 6; i++)
        ptrs[i] = &batch[i];
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    cw_db_hold_commands(db, true);
    assert_int_equal(cw_store_expect_commands(db, ptrs, 6, &err), CW_OK);
    assert_int_equal(cw_store_insert_command(db, &batch[0], &one, NULL, NULL, &err), CW_ERR_EXISTS);
    for (int i = 1; i < 5; i++)
        assert_int_equal(cw_store_insert_command(db, &batch[i], &one, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_store_insert_command(db, &batch[5], &one, NULL, NULL, &err), CW_ERR_EXISTS);
    assert_int_equal(cw_db_commit(db, &err), CW_OK);
    cw_db_hold_commands(db, false);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM commands", NULL), N + 5);
    assert_int_equal(cw_store_find_command(db, U1, "h", N + 2, &rec, &err), CW_OK);
    assert_string_equal(rec.uuid, batch[1].uuid);
    for (int i = 0; i < 6; i++)
        free_cmd(&batch[i]);
    for (int i = 0; i < N; i++)
        free_cmd(&cmds[i]);
    free_cmd(&fresh);
    free_cmd(&resend);
}

/*
 * PostgreSQL: the batch's key look-up (cw_store_expect_commands) stops
 * scanning the command log once the log has grown (issue 11). Its prepared
 * statement's generic plan is costed on the first batches, while the log
 * is nearly empty: a sequential scan of the log, kept until the table is
 * next ANALYZEd. The store prepares it again as the connection's writes
 * double (replan_as_log_grows), and a plan made on thousands of rows uses
 * the unique index.
 *
 * Measured by the server's own counters, which count what the issue is
 * about whatever the plan's shape or the statement's internal name: the
 * commands table's seq_scan in pg_stat_user_tables, read from a second
 * connection, before and after more batches on a log of 8,448 commands
 * (a plan made afresh takes the index from 2,000-5,000). Autovacuum is off
 * for the table, so that an ANALYZE cannot re-cost the plan in the store's
 * place; it is turned off before the first batch, because the ALTER itself
 * invalidates cached plans (done after them, it makes the test pass
 * without the fix).
 */
enum { REPLAN_BATCH = 64, REPLAN_WARM = 132, REPLAN_MEASURED = 32 };

/* Commits one batch of REPLAN_BATCH new commands as the processor's fast mode does. */
static void write_batch(struct cw_db *db, int64_t first_seq)
{
    struct cw_error err = {0};
    struct cw_command cmds[REPLAN_BATCH];
    const struct cw_command *ptrs[REPLAN_BATCH];
    for (int i = 0; i < REPLAN_BATCH; i++) {
        int64_t seq = first_seq + i;
        make_cmd(&cmds[i], seq % 2 ? U1 : U2, seq % 3 ? "c1" : "c2", seq, "do-thing");
        ptrs[i] = &cmds[i];
    }
    assert_int_equal(cw_db_begin(db, &err), CW_OK);
    cw_db_hold_events(db, true);
    cw_db_hold_commands(db, true);
    assert_int_equal(cw_store_expect_commands(db, ptrs, REPLAN_BATCH, &err), CW_OK);
    struct cw_command_record rec = {0};
    for (int i = 0; i < REPLAN_BATCH; i++) {
        cw_db_blame_next(db, (size_t)i);
        assert_int_equal(cw_store_insert_command(db, &cmds[i], &rec, NULL, NULL, &err), CW_OK);
    }
    if (cw_db_commit(db, &err))
        fail_msg("commit: %s", err.message);
    cw_db_hold_events(db, false);
    cw_db_hold_commands(db, false);
    for (int i = 0; i < REPLAN_BATCH; i++)
        free_cmd(&cmds[i]);
}

/*
 * The commands table's sequential scans, once the view counts all `rows`
 * inserts. Left to itself, an idle backend that flushed less than a second
 * ago tries again 10 s later; pg_stat_force_next_flush() has the writer
 * flush as it next goes idle, before it answers, and the wait only guards
 * against a flush that did not happen.
 */
static int64_t log_seq_scans(struct cw_db *writer, struct cw_db *reader, int64_t rows)
{
    assert_int_equal(query_int(writer, "SELECT 1 FROM pg_stat_force_next_flush()", NULL), 1);
    int64_t deadline = cw_mono_us() + 30 * 1000000;
    while (query_int(reader,
                     "SELECT n_tup_ins FROM pg_stat_user_tables"
                     " WHERE relid = 'commands'::regclass",
                     NULL) < rows) {
        if (cw_mono_us() > deadline)
            fail_msg("the writer's statistics did not show %lld inserts in 30 s", (long long)rows);
        usleep(20 * 1000);
    }
    return query_int(reader,
                     "SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'commands'::regclass",
                     NULL);
}

static void test_lookup_stops_scanning_log(void **state)
{
    if (!harness_pg())
        skip(); /* PostgreSQL's plan cache */
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *w = cw_store_writer(f->s);
    assert_int_equal(cw_db_exec(w, &err, "ALTER TABLE commands SET (autovacuum_enabled = off)", ""),
                     CW_OK);
    struct cw_db *reader = NULL;
    assert_int_equal(cw_store_reader_open(f->s, &reader, &err), CW_OK);
    int64_t seq = 1;
    for (int b = 0; b < REPLAN_WARM; b++, seq += REPLAN_BATCH)
        write_batch(w, seq);
    int64_t before = log_seq_scans(w, reader, seq - 1);
    for (int b = 0; b < REPLAN_MEASURED; b++, seq += REPLAN_BATCH)
        write_batch(w, seq);
    int64_t scans = log_seq_scans(w, reader, seq - 1) - before;
    print_message("%d batches on a log of %lld commands: %lld sequential scans of it\n",
                  REPLAN_MEASURED, (long long)(REPLAN_WARM * REPLAN_BATCH), (long long)scans);
    /*
     * A re-preparation's first five executions are custom plans, costed for
     * the batch's 64 keys (the generic plan counts 10): those may scan. The
     * window adds far less than a doubling, so it holds one at most.
     */
    if (scans > 5)
        fail_msg("the look-up still scans the log: %lld of %d batches", (long long)scans,
                 REPLAN_MEASURED);
    assert_int_equal(query_int(w, "SELECT COUNT(*) FROM commands", NULL), seq - 1);
    cw_db_close(reader);
}

/* ---------------------------------------------------------- SQL helpers */

static void test_query_json(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *db = cw_store_writer(f->s);
    json_t *rows = NULL;
    assert_int_equal(cw_db_query_json(db, &rows, &err,
                                      "SELECT 1 AS i, 'x' AS s, NULL AS n, 2.5 AS r, ? AS bt,"
                                      " ? AS bi, ? AS bn, ? AS tnull",
                                      "tint", "text", (int64_t)9007199254740993LL, NULL),
                     CW_OK);
    assert_true(json_is_array(rows));
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_int_equal(json_object_size(row), 8);
    assert_true(json_is_integer(json_object_get(row, "i")));
    assert_int_equal(json_integer_value(json_object_get(row, "i")), 1);
    assert_true(json_is_string(json_object_get(row, "s")));
    assert_string_equal(json_string_value(json_object_get(row, "s")), "x");
    assert_true(json_is_null(json_object_get(row, "n")));
    assert_true(json_is_real(json_object_get(row, "r")));
    assert_true(json_real_value(json_object_get(row, "r")) == 2.5);
    assert_string_equal(json_string_value(json_object_get(row, "bt")), "text");
    assert_int_equal(json_integer_value(json_object_get(row, "bi")), 9007199254740993LL);
    assert_true(json_is_null(json_object_get(row, "bn")));
    assert_true(json_is_null(json_object_get(row, "tnull")));
    json_decref(rows);

    /* Several rows, in order; then none. */
    assert_int_equal(cw_db_exec(db, &err, "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)", ""),
                     CW_OK);
    for (int64_t i = 1; i <= 3; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%lld", (long long)i);
        assert_int_equal(cw_db_exec(db, &err, "INSERT INTO kv VALUES (?, ?)", "ti", k, i * 10),
                         CW_OK);
    }
    assert_int_equal(cw_db_query_json(db, &rows, &err, "SELECT k, v FROM kv ORDER BY v DESC", ""),
                     CW_OK);
    char *text = json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "[{\"k\":\"k3\",\"v\":30},{\"k\":\"k2\",\"v\":20},"
                              "{\"k\":\"k1\",\"v\":10}]");
    free(text);
    json_decref(rows);
    assert_int_equal(
        cw_db_query_json(db, &rows, &err, "SELECT k FROM kv WHERE v > ?", "i", (int64_t)99), CW_OK);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    /* Errors: syntax, bad type letter, constraint. */
    rows = (json_t *)0x1;
    assert_int_equal(cw_db_query_json(db, &rows, &err, "SELEC nonsense", ""), CW_ERR_STORE);
    assert_ptr_equal(rows, (json_t *)0x1);
    assert_int_not_equal(cw_db_exec(db, &err, "SELECT ?", "x", 1), CW_OK);
    assert_int_equal(cw_db_exec(db, &err, "INSERT INTO kv VALUES (?, ?)", "ti", "k1", (int64_t)1),
                     CW_ERR_STORE);
    /* query_int: the first column of the first row, or CW_ERR_NOT_FOUND. */
    int64_t v = 0;
    assert_int_equal(cw_db_query_int(db, &v, &err, "SELECT v FROM kv WHERE k = ?", "t", "k2"),
                     CW_OK);
    assert_int_equal(v, 20);
    assert_int_equal(cw_db_query_int(db, &v, &err, "SELECT v FROM kv WHERE k = ?", "t", "zz"),
                     CW_ERR_NOT_FOUND);
    /* 'n' binds NULL with no argument. */
    assert_int_equal(cw_db_query_int(db, &v, &err, "SELECT ? IS NULL", "n"), CW_OK);
    assert_int_equal(v, 1);
    cw_error_release(&err);
}

/* The processor learns from total_changes which handlers write: reads must not count. */
static void test_total_changes_counts_writes(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *db = cw_store_writer(f->s);
    assert_int_equal(cw_db_exec(db, &err, "CREATE TABLE tc(k TEXT PRIMARY KEY)", ""), CW_OK);
    int64_t before = cw_db_total_changes(db);
    json_t *rows = NULL;
    assert_int_equal(cw_db_query_json(db, &rows, &err, "SELECT * FROM schema_migrations", ""),
                     CW_OK);
    assert_true(json_array_size(rows) >= 1);
    json_decref(rows);
    assert_int_equal(cw_db_total_changes(db), before);
    assert_int_equal(cw_db_exec(db, &err, "INSERT INTO tc VALUES ('a'), ('b')", ""), CW_OK);
    assert_int_equal(cw_db_total_changes(db), before + 2);
}

/* ------------------------------------------------------------ snapshots */

static void test_snapshot_isolation(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *w = cw_store_writer(f->s), *r;
    assert_int_equal(cw_store_reader_open(f->s, &r, &err), CW_OK);
    assert_int_equal(cw_db_begin(w, &err), CW_OK);
    append(w, 1, "a", 1, U1, "{}");
    assert_int_equal(cw_db_commit(w, &err), CW_OK);

    assert_int_equal(cw_db_snapshot_begin(r, &err), CW_OK);
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM events", NULL), 1);
    /* A commit after the snapshot began... */
    assert_int_equal(cw_db_begin(w, &err), CW_OK);
    append(w, 2, "a", 1, U1, "{}");
    assert_int_equal(cw_db_commit(w, &err), CW_OK);
    /* ...is invisible inside it, to every read. */
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM events", NULL), 1);
    assert_int_equal(query_int(r, "SELECT MAX(position) FROM events", NULL), 1);
    expect_scan(r, 0, 0, NULL, NULL, (const int64_t[]){1, 0});
    cw_db_snapshot_end(r);

    /* A new snapshot sees it. */
    assert_int_equal(cw_db_snapshot_begin(r, &err), CW_OK);
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM events", NULL), 2);
    expect_scan(r, 0, 0, NULL, NULL, (const int64_t[]){1, 2, 0});
    cw_db_snapshot_end(r);
    /* And so does a read outside any snapshot. */
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM events", NULL), 2);

    /* Readers do not write. */
    assert_int_not_equal(cw_db_exec(r, &err, "DELETE FROM events", ""), CW_OK);
    assert_int_equal(query_int(w, "SELECT COUNT(*) FROM events", NULL), 2);
    cw_db_close(r);
}

/* ------------------------------------------------------- transient errors */

static void test_write_lock_is_transient(void **state)
{
    if (harness_pg())
        skip(); /* SQLite only */
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *w = cw_store_writer(f->s), *r;
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->h.db_path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    assert_int_equal(cw_db_begin(w, &err), CW_ERR_AGAIN);
    assert_int_equal(cw_db_begin(w, &err), CW_ERR_AGAIN);
    /* Reads go on meanwhile (WAL). */
    assert_int_equal(cw_store_reader_open(f->s, &r, &err), CW_OK);
    assert_int_equal(cw_db_snapshot_begin(r, &err), CW_OK);
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM events", NULL), 0);
    cw_db_snapshot_end(r);

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* Released: the writer goes on as if nothing had happened. */
    assert_int_equal(cw_db_begin(w, &err), CW_OK);
    append(w, 1, "a", 1, U1, "{}");
    assert_int_equal(cw_db_commit(w, &err), CW_OK);
    assert_int_equal(query_int(w, "SELECT COUNT(*) FROM events", NULL), 1);
    cw_db_close(r);
}

/* Savepoints: rolling back to one undoes only what followed it. */
static void test_savepoints(void **state)
{
    struct fixture *f = *state;
    struct cw_error err = {0};
    open_store(f);
    struct cw_db *w = cw_store_writer(f->s);
    assert_int_equal(cw_db_begin(w, &err), CW_OK);
    assert_int_equal(cw_db_savepoint(w, &err), CW_OK);
    append(w, 1, "a", 1, U1, "{}");
    assert_int_equal(cw_db_release(w, &err), CW_OK);
    assert_int_equal(cw_db_savepoint(w, &err), CW_OK);
    append(w, 2, "a", 1, U1, "{}");
    cw_db_rollback_to(w);
    assert_int_equal(cw_db_savepoint(w, &err), CW_OK);
    append(w, 2, "b", 1, U1, "{}");
    assert_int_equal(cw_db_release(w, &err), CW_OK);
    assert_int_equal(cw_db_commit(w, &err), CW_OK);
    expect_scan(w, 0, 0, NULL, (const char *const[]){"a", NULL}, (const int64_t[]){1, 0});
    expect_scan(w, 0, 0, NULL, (const char *const[]){"b", NULL}, (const int64_t[]){2, 0});
    /* A rolled-back transaction leaves nothing. */
    assert_int_equal(cw_db_begin(w, &err), CW_OK);
    append(w, 3, "a", 1, U1, "{}");
    cw_db_rollback(w);
    assert_int_equal(query_int(w, "SELECT COUNT(*) FROM events", NULL), 2);
}

/*
 * A writer that commits back to back, as the processor under load, keeps
 * the WAL short: the background checkpointer copies most of it and the
 * writer the last frames between its transactions, so the WAL starts
 * over. Without the writer's part a checkpoint never catches the last
 * commit and the WAL grows with every one (about 3 pages each here).
 */
static void test_wal_starts_over_under_load(void **state)
{
    if (harness_pg())
        skip(); /* SQLite only */
    struct fixture *f = *state;
    struct cw_error err = {0};
    struct cw_store_options opt = {.checkpoint_frames = 64};
    assert_int_equal(cw_store_open(f->h.db_path, &opt, &f->s, &err), CW_OK);
    assert_int_equal(cw_store_migrate(f->s, NULL, NULL, &err), CW_OK);
    struct cw_db *w = cw_store_writer(f->s);
    char big[2048];
    memset(big, 'x', sizeof(big) - 16);
    memcpy(big, "{\"pad\":\"", 8);
    memcpy(big + sizeof(big) - 16, "\"}", 3);
    for (int64_t pos = 1; pos <= 3000; pos++) {
        assert_int_equal(cw_db_begin(w, &err), CW_OK);
        append(w, pos, "a", 1, U1, big);
        assert_int_equal(cw_db_commit(w, &err), CW_OK);
        cw_store_finish_checkpoint(f->s);
    }
    char wal[sizeof(f->h.db_path) + 8];
    snprintf(wal, sizeof(wal), "%s-wal", f->h.db_path);
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    /* 64 frames, a pass's worth of commits and a tail: far below 3000 commits' pages. */
    if (sb.st_size > 8 * 1024 * 1024)
        fail_msg("the WAL grew to %lld bytes", (long long)sb.st_size);
    assert_int_equal(query_int(w, "SELECT COUNT(*) FROM events", NULL), 3000);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_creates_wal),
        T(test_open_migrate_fresh_repeatedly),
        T(test_missing_file),
        T(test_migrate_once),
        T(test_migrate_failure),
        T(test_upgrade_command_log),
        T(test_append_and_scan),
        T(test_scan_upcasts),
        T(test_command_log),
        T(test_held_command_rows),
        T(test_lookup_stops_scanning_log),
        T(test_query_json),
        T(test_total_changes_counts_writes),
        T(test_snapshot_isolation),
        T(test_write_lock_is_transient),
        T(test_savepoints),
        T(test_wal_starts_over_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
