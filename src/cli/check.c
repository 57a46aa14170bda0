/*
 * check.c - `calderwood check`: verifies a database, one line per check on
 * stdout (ok, FAILED with the first problem found, or skipped), exit 0
 * when all pass and 1 otherwise:
 *
 *   migrations   every migration this binary knows is applied, none it
 *                does not know (cw_store_check_migrations)
 *   integrity    SQLite's PRAGMA integrity_check
 *   positions    the log's positions run from 1 without a gap
 *   commands     every command-log row that names positions names events
 *                of its own, a rejected one none, and every event lies in
 *                some command's positions
 *   projections  every projection table equals a replay of the log into a
 *                scratch SQLite file (replay.c), row by row in key order:
 *                the first difference is reported with its table, key and
 *                column. On PostgreSQL too, text keys sorted by bytes as
 *                SQLite sorts them.
 *
 * A database is checked at rest: `check --data DIR` takes the directory's
 * lock, so it refuses while `serve` runs there (check a backup instead).
 * The migrations check also fails on a migration of a domain not loaded:
 * without its --module, its tables and events would go unchecked.
 */
#include "cli.h"
#include "core/buf.h"
#include "core/registry.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct check {
    struct cw_cli_common *c;
    struct cw_store *s;
    struct cw_db *db;
    bool sqlite;
    bool migrations_ok;
    int run, failed, skipped;
};

/* Prints "NAME: ok (...)", "NAME: FAILED: ..." or "NAME: skipped: ...". */
static void say(struct check *k, const char *name, const char *verdict, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    k->run++;
    if (!strcmp(verdict, "FAILED"))
        k->failed++;
    if (!strcmp(verdict, "skipped"))
        k->skipped++;
    if (!strcmp(verdict, "ok"))
        printf("%-12s ok%s%s%s\n", name, *detail ? " (" : "", detail, *detail ? ")" : "");
    else
        printf("%-12s %s: %s\n", name, verdict, detail);
    fflush(stdout);
}

/* --------------------------------------------------------------- schema */

/* Whether id's namespace (before the colon) is the core's or one of d's. */
static bool namespace_known(const struct cw_domain *d, const char *id)
{
    size_t ns = strcspn(id, ":");
    if (ns == 4 && !strncmp(id, "core", 4))
        return true;
    for (size_t i = 0; i < d->n_migrations; i++)
        if (strcspn(d->migrations[i].id, ":") == ns && !strncmp(d->migrations[i].id, id, ns))
            return true;
    return false;
}

/*
 * A migration of a domain not loaded now: its tables would go uncompared
 * and its events unreplayed, so the check would pass on half the data.
 */
static int foreign_migration(struct check *k, const struct cw_domain *d, char *id, size_t len,
                             struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(k->db, "SELECT id FROM schema_migrations ORDER BY id", err);
    if (!st)
        return CW_ERR_STORE;
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW) {
        if (!namespace_known(d, cw_stmt_text(st, 0))) {
            snprintf(id, len, "%s", cw_stmt_text(st, 0));
            cw_stmt_reset(st);
            return CW_OK;
        }
    }
    return rc == CW_DONE ? CW_OK : rc;
}

static void check_migrations(struct check *k, const struct cw_domain *d)
{
    struct cw_error err = {0};
    int pending = 0;
    char first[256], foreign[256] = "";
    int64_t applied = 0;
    int rc = cw_store_check_migrations(k->s, d, &pending, first, sizeof(first), &err);
    if (!rc)
        rc = cw_db_query_int(k->db, &applied, &err, "SELECT COUNT(*) FROM schema_migrations", "");
    if (!rc)
        rc = foreign_migration(k, d, foreign, sizeof(foreign), &err);
    if (rc)
        say(k, "migrations", "FAILED", "%s", err.message);
    else if (pending)
        say(k, "migrations", "FAILED",
            "%d known migration%s not applied, the first %s (calderwood migrate applies them)",
            pending, pending == 1 ? "" : "s", first);
    else if (*foreign)
        say(k, "migrations", "FAILED",
            "migration %s is of no domain this binary has loaded: give its --module", foreign);
    else
        say(k, "migrations", "ok", "%lld applied, all known to this binary", (long long)applied);
    k->migrations_ok = !rc && !pending && !*foreign;
}

static void check_integrity(struct check *k)
{
    if (!k->sqlite) {
        say(k, "integrity", "skipped", "PostgreSQL checks its own pages (see amcheck)");
        return;
    }
    struct cw_error err = {0};
    struct cw_stmt *st = cw_db_prepare(k->db, "PRAGMA integrity_check(10)", &err);
    int rc = st ? cw_stmt_step(st, &err) : CW_ERR_STORE;
    if (rc != CW_ROW) {
        say(k, "integrity", "FAILED", "%s", err.message);
        return;
    }
    const char *first = cw_stmt_text(st, 0);
    if (first && !strcmp(first, "ok"))
        say(k, "integrity", "ok", "");
    else
        say(k, "integrity", "FAILED", "%s", first ? first : "no answer");
    cw_stmt_reset(st);
}

/* ------------------------------------------------------------------ log */

/* The first column of each of the first row's columns into out[n]; CW_ERR_NOT_FOUND without a row.
 */
static int query_ints(struct cw_db *db, const char *sql, int64_t arg, int64_t *out, int n,
                      struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(db, sql, err);
    if (!st)
        return CW_ERR_STORE;
    if (strchr(sql, '?'))
        cw_stmt_bind_int(st, 1, arg);
    int rc = cw_stmt_step(st, err);
    if (rc == CW_DONE)
        return CW_ERR_NOT_FOUND;
    if (rc != CW_ROW)
        return rc;
    for (int i = 0; i < n; i++)
        out[i] = cw_stmt_int(st, i);
    cw_stmt_reset(st);
    return CW_OK;
}

static void check_positions(struct check *k)
{
    struct cw_error err = {0};
    int64_t v[3] = {0}, gap = 0, next = 0; /* count, first, last */
    int rc = query_ints(k->db,
                        "SELECT COUNT(*), COALESCE(MIN(position), 0), COALESCE(MAX(position), 0)"
                        " FROM events",
                        0, v, 3, &err);
    if (rc) {
        say(k, "positions", "FAILED", "%s", err.message);
        return;
    }
    if (v[0] == v[2] && (v[0] == 0 || v[1] == 1)) {
        say(k, "positions", "ok", "%lld events, 1 to %lld without a gap", (long long)v[0],
            (long long)v[2]);
        return;
    }
    if (v[1] != 1) {
        say(k, "positions", "FAILED", "the log starts at position %lld, not 1", (long long)v[1]);
        return;
    }
    rc = query_ints(k->db,
                    "SELECT e.position FROM events e WHERE e.position < ? AND NOT EXISTS"
                    " (SELECT 1 FROM events n WHERE n.position = e.position + 1)"
                    " ORDER BY e.position LIMIT 1",
                    v[2], &gap, 1, &err);
    if (!rc)
        rc = query_ints(k->db, "SELECT MIN(position) FROM events WHERE position > ?", gap, &next, 1,
                        &err);
    if (rc)
        say(k, "positions", "FAILED", "%lld events up to position %lld: %s", (long long)v[0],
            (long long)v[2], err.message);
    else
        say(k, "positions", "FAILED", "gap after position %lld: the next is %lld", (long long)gap,
            (long long)next);
}

/*
 * A command row that names positions must name a run of its own events; a
 * rejected one must name none. Then the runs must cover the log exactly.
 */
static void check_commands(struct check *k)
{
    struct cw_error err = {0};
    struct cw_stmt *st =
        cw_db_prepare(k->db,
                      "SELECT uuid, name, outcome, first_position, last_position, n FROM ("
                      " SELECT c.uuid, c.name, c.outcome, c.first_position, c.last_position,"
                      "  (SELECT COUNT(*) FROM events e WHERE e.position BETWEEN c.first_position"
                      "   AND c.last_position AND e.command_uuid = c.uuid) AS n"
                      " FROM commands c WHERE c.first_position IS NOT NULL) x"
                      " WHERE outcome <> 'ok' OR last_position < first_position"
                      "  OR n <> last_position - first_position + 1"
                      " ORDER BY first_position LIMIT 1",
                      &err);
    int rc = st ? cw_stmt_step(st, &err) : CW_ERR_STORE;
    if (rc == CW_ROW) {
        say(k, "commands", "FAILED",
            "command %s (%s, outcome %s) names positions %lld to %lld, of which %lld are its"
            " events",
            cw_stmt_text(st, 0), cw_stmt_text(st, 1), cw_stmt_text(st, 2),
            (long long)cw_stmt_int(st, 3), (long long)cw_stmt_int(st, 4),
            (long long)cw_stmt_int(st, 5));
        cw_stmt_reset(st);
        return;
    }
    int64_t v[2] = {0}, covered = 0;
    if (rc == CW_DONE)
        rc = query_ints(k->db, "SELECT COUNT(*), (SELECT COUNT(*) FROM commands) FROM events", 0, v,
                        2, &err);
    if (!rc)
        rc = query_ints(k->db,
                        "SELECT COALESCE(SUM(last_position - first_position + 1), 0)"
                        " FROM commands WHERE first_position IS NOT NULL",
                        0, &covered, 1, &err);
    if (rc) {
        say(k, "commands", "FAILED", "%s", err.message);
        return;
    }
    if (covered == v[0]) {
        say(k, "commands", "ok", "%lld commands, their events %lld", (long long)v[1],
            (long long)covered);
        return;
    }
    int64_t orphan = 0;
    if (covered < v[0] &&
        !query_ints(k->db,
                    "SELECT e.position FROM events e WHERE NOT EXISTS (SELECT 1 FROM commands c"
                    " WHERE e.position BETWEEN c.first_position AND c.last_position)"
                    " ORDER BY e.position LIMIT 1",
                    0, &orphan, 1, &err))
        say(k, "commands", "FAILED", "event %lld belongs to no command in the log%s",
            (long long)orphan, v[1] ? "" : " (the command log is empty: a replay --until?)");
    else
        say(k, "commands", "FAILED", "commands name %lld positions, the log holds %lld events",
            (long long)covered, (long long)v[0]);
}

/* ---------------------------------------------------------- projections */

/* A table, its columns and its key (the primary key, or every column). */
struct table {
    const char *name;
    json_t *columns; /* [{name, pk, type}] from pragma_table_info */
};

/* "name" with any " doubled, appended to b. */
static void ident(struct cw_buf *b, const char *name)
{
    cw_buf_addc(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            cw_buf_addc(b, '"');
        cw_buf_addc(b, *p);
    }
    cw_buf_addc(b, '"');
}

static const char *column_name(const struct table *t, size_t i)
{
    return json_string_value(json_object_get(json_array_get(t->columns, i), "name"));
}

static bool is_key(const struct table *t, size_t i)
{
    return json_integer_value(json_object_get(json_array_get(t->columns, i), "pk")) > 0;
}

static bool has_key(const struct table *t)
{
    for (size_t i = 0; i < json_array_size(t->columns); i++)
        if (is_key(t, i))
            return true;
    return false;
}

static bool is_text(const struct table *t, size_t i)
{
    const char *type = json_string_value(json_object_get(json_array_get(t->columns, i), "type"));
    return type &&
           (strcasestr(type, "CHAR") || strcasestr(type, "CLOB") || strcasestr(type, "TEXT"));
}

/*
 * SELECT every column FROM t ORDER BY its key (every column when it has
 * none). On PostgreSQL in SQLite's order: text by bytes, NULLs first.
 */
static void select_sql(const struct table *t, bool pg, struct cw_buf *b)
{
    cw_buf_adds(b, "SELECT ");
    size_t n = json_array_size(t->columns);
    for (size_t i = 0; i < n; i++) {
        if (i)
            cw_buf_adds(b, ", ");
        ident(b, column_name(t, i));
    }
    cw_buf_adds(b, " FROM ");
    ident(b, t->name);
    cw_buf_adds(b, " ORDER BY ");
    bool keyed = has_key(t), first = true;
    for (size_t i = 0; i < n; i++) {
        if (keyed && !is_key(t, i))
            continue;
        if (!first)
            cw_buf_adds(b, ", ");
        ident(b, column_name(t, i));
        if (pg)
            cw_buf_adds(b, is_text(t, i) ? " COLLATE \"C\" NULLS FIRST" : " NULLS FIRST");
        first = false;
    }
}

/* SQLite's order of values: NULL, numbers, text. */
static int order(const json_t *a, const json_t *b)
{
    int ra = json_is_null(a) ? 0 : json_is_number(a) ? 1 : 2;
    int rb = json_is_null(b) ? 0 : json_is_number(b) ? 1 : 2;
    if (ra != rb || ra == 0)
        return ra - rb;
    if (ra == 1) {
        double x = json_number_value(a), y = json_number_value(b);
        return (x > y) - (x < y);
    }
    return strcmp(json_string_value(a), json_string_value(b));
}

/* A value for a message: JSON, cut at 120 characters. */
static void show(const json_t *v, char *out, size_t n)
{
    char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    snprintf(out, n, "%.120s%s", text ? text : "(not text)",
             text && strlen(text) > 120 ? "..." : "");
    free(text);
}

/* The current row's key as "col=value, ...", from row (an array of its values). */
static void show_key(const struct table *t, json_t *row, char *out, size_t n)
{
    size_t o = 0;
    bool keyed = has_key(t);
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(row) && o < n; i++) {
        if (keyed && !is_key(t, i))
            continue;
        char v[160];
        show(json_array_get(row, i), v, sizeof(v));
        o += (size_t)snprintf(out + o, n - o, "%s%s=%s", o ? ", " : "", column_name(t, i), v);
    }
}

/* The current row of st as an array of JSON values (NULL entries: text that is not UTF-8). */
static json_t *row_of(struct cw_stmt *st)
{
    json_t *row = json_array();
    for (int i = 0; i < cw_stmt_columns(st); i++) {
        json_t *v = cw_stmt_json(st, i);
        json_array_append_new(row, v ? v : json_string("(not UTF-8)"));
    }
    return row;
}

/* -1, 0, 1: a's key before, equal to or after b's. */
static int key_order(const struct table *t, json_t *a, json_t *b)
{
    bool keyed = has_key(t);
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (keyed && !is_key(t, i))
            continue;
        int c = order(json_array_get(a, i), json_array_get(b, i));
        if (c)
            return c;
    }
    return 0;
}

/*
 * Compares table t row by row, both in key order; writes the first
 * difference into why. Returns CW_OK (equal, *rows counted), CW_ERR_INVALID
 * (a difference) or a store error.
 */
static int compare_table(const struct table *t, struct cw_db *db, bool pg, struct cw_db *replay,
                         int64_t *rows, char *why, size_t n, struct cw_error *err)
{
    struct cw_buf sql = {0}, replay_sql = {0};
    select_sql(t, pg, &sql);
    select_sql(t, false, &replay_sql);
    struct cw_stmt *a = cw_db_prepare(db, cw_buf_cstr(&sql), err);
    struct cw_stmt *b = a ? cw_db_prepare(replay, cw_buf_cstr(&replay_sql), err) : NULL;
    cw_buf_release(&sql);
    cw_buf_release(&replay_sql);
    if (!a || !b) {
        snprintf(why, n, "table %s: %s", t->name, err->message);
        if (a)
            cw_stmt_reset(a);
        return CW_ERR_INVALID;
    }
    int rc = CW_OK;
    for (;;) {
        int ra = cw_stmt_step(a, err),
            rb = ra == CW_ROW || ra == CW_DONE ? cw_stmt_step(b, err) : ra;
        if (ra == CW_DONE && rb == CW_DONE)
            break;
        if ((ra != CW_ROW && ra != CW_DONE) || (rb != CW_ROW && rb != CW_DONE)) {
            rc = ra != CW_ROW && ra != CW_DONE ? ra : rb;
            break;
        }
        json_t *x = ra == CW_ROW ? row_of(a) : NULL, *y = rb == CW_ROW ? row_of(b) : NULL;
        char key[400], v1[160], v2[160];
        int c = !x ? 1 : !y ? -1 : key_order(t, x, y);
        if (c) {
            show_key(t, c < 0 ? x : y, key, sizeof(key));
            snprintf(why, n, "table %s, key (%s): row %s", t->name, key,
                     c < 0 ? "in the database, not in the replay"
                           : "in the replay, missing from the database");
            rc = CW_ERR_INVALID;
        }
        for (size_t i = 0; !rc && i < json_array_size(x); i++) {
            if (json_equal(json_array_get(x, i), json_array_get(y, i)))
                continue;
            show_key(t, x, key, sizeof(key));
            show(json_array_get(x, i), v1, sizeof(v1));
            show(json_array_get(y, i), v2, sizeof(v2));
            snprintf(why, n, "table %s, key (%s), column %s: %s in the database, %s in the replay",
                     t->name, key, column_name(t, i), v1, v2);
            rc = CW_ERR_INVALID;
        }
        json_decref(x);
        json_decref(y);
        if (rc)
            break;
        ++*rows;
    }
    if (rc) {
        cw_stmt_reset(a);
        cw_stmt_reset(b);
        if (rc != CW_ERR_INVALID)
            snprintf(why, n, "table %s: %s", t->name, err->message);
    }
    return rc;
}

/* Compares every projection table the replay made; why receives the first difference. */
static int compare_all(struct cw_db *db, bool pg, struct cw_db *replay, int *tables, int64_t *rows,
                       char *why, size_t n, struct cw_error *err)
{
    json_t *names = NULL;
    int rc = cw_db_query_json(replay, &names, err,
                              "SELECT name FROM sqlite_master WHERE type = 'table'"
                              " AND name NOT LIKE 'sqlite%' AND name NOT IN"
                              " ('events', 'commands', 'schema_migrations') ORDER BY name",
                              "");
    size_t i;
    json_t *row;
    json_array_foreach(names, i, row)
    {
        if (rc)
            break;
        struct table t = {json_string_value(json_object_get(row, "name")), NULL};
        rc = cw_db_query_json(replay, &t.columns, err,
                              "SELECT name, pk, type FROM pragma_table_info(?) ORDER BY cid", "t",
                              t.name);
        if (!rc) {
            rc = compare_table(&t, db, pg, replay, rows, why, n, err);
            ++*tables;
        }
        json_decref(t.columns);
    }
    json_decref(names);
    return rc;
}

static void check_projections(struct check *k)
{
    if (!k->migrations_ok) {
        say(k, "projections", "skipped", "the migrations are not in order");
        return;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096], url[4200], why[1024] = "";
    snprintf(dir, sizeof(dir), "%s/cw-check-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        say(k, "projections", "FAILED", "cannot make a scratch directory in %s",
            tmp && *tmp ? tmp : "/tmp");
        return;
    }
    snprintf(url, sizeof(url), "sqlite:%s/replay.db", dir);
    struct cw_error err = {0};
    struct cw_store *rs = NULL;
    struct cw_store_options ro = {.read_only = true};
    int tables = 0;
    int64_t rows = 0;
    int rc = cw_cli_replay_into(k->c, k->c->store_url, url, 0, &err);
    if (!rc)
        rc = cw_store_open(url, &ro, &rs, &err);
    if (!rc)
        rc = compare_all(k->db, !k->sqlite, cw_store_writer(rs), &tables, &rows, why, sizeof(why),
                         &err);
    if (rc == CW_ERR_INVALID)
        say(k, "projections", "FAILED", "%s", why);
    else if (rc)
        say(k, "projections", "FAILED", "replaying the log: %s", err.message);
    else
        say(k, "projections", "ok", "%d tables, %lld rows, equal to a replay of the log", tables,
            (long long)rows);
    cw_store_close(rs);
    char side[4300];
    for (const char *suffix = ""; suffix; suffix = !*suffix ? "-wal" : NULL) {
        snprintf(side, sizeof(side), "%s/replay.db%s", dir, suffix);
        unlink(side);
    }
    snprintf(side, sizeof(side), "%s/replay.db-shm", dir);
    unlink(side);
    rmdir(dir);
}

/* ------------------------------------------------------------------ run */

static int check(struct cw_cli_common *c, struct cw_error *err)
{
    struct check k = {.c = c};
    struct cw_domain *d = NULL;
    struct cw_store_options ro = {.read_only = true};
    int rc = cw_cli_prepare(c, false, err);
    if (!rc)
        rc = cw_cli_domain(c, &d, err);
    if (!rc)
        rc = cw_store_open(c->store_url, &ro, &k.s, err);
    /* At rest: beside a running server, projections would move under the comparison. */
    if (!rc && !c->store)
        rc = cw_cli_lock(c, "check", err);
    if (rc) {
        cw_store_close(k.s);
        cw_domain_free(d);
        return rc;
    }
    k.db = cw_store_writer(k.s);
    k.sqlite = !strcmp(cw_store_backend_name(k.s), "sqlite");
    printf("checking %s\n", c->store_label);
    check_migrations(&k, d);
    check_integrity(&k);
    check_positions(&k);
    check_commands(&k);
    check_projections(&k);
    cw_store_close(k.s);
    cw_domain_free(d);
    if (k.failed) {
        printf("check: %d of %d checks FAILED\n", k.failed, k.run);
        return cw_error_set(err, CW_ERR_INVALID, NULL, "%s FAILED %d of %d checks", c->store_label,
                            k.failed, k.run);
    }
    if (k.skipped)
        printf("check: all %d checks passed, %d skipped\n", k.run - k.skipped, k.skipped);
    else
        printf("check: all %d checks passed\n", k.run);
    return CW_OK;
}

int cw_cli_check(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    const struct cw_option opts[] = {CW_CLI_COMMON_OPTIONS(&c), {0}};
    int code;
    if (!cw_cli_parse("usage: calderwood check [--data DIR | --store URL] [--module M]\n"
                      "Verifies a database at rest (with --data it takes the directory's lock, "
                      "so it refuses beside a running server: check a backup instead). Prints "
                      "one line per check (migrations, integrity, positions, commands, "
                      "projections) and exits 1 when one FAILED.",
                      opts, argc, argv, NULL, &code))
        return code;
    struct cw_error err = {0};
    int rc = check(&c, &err);
    return rc ? cw_cli_fail(&err) : 0;
}
