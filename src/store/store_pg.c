/*
 * store_pg.c - the store on PostgreSQL through libpq (see store.h, backend.h).
 *
 * One connection per cw_db: the processor's writer, one per query worker.
 * Domain SQL is written once for both backends: ? placeholders become $n
 * here, and in migrations the word INTEGER becomes BIGINT (SQLite's
 * integers are 64-bit). Statements are prepared once per connection and
 * cached by their SQL text; parameters travel as text and PostgreSQL infers
 * their types from the statement (the batch's key lookup alone sends its
 * arrays in binary). Results are read whole, so a statement can stay open
 * while others run on the same connection, as in SQLite. The processor's
 * command-log and event rows go in by binary COPY, or a few of them by a
 * pipelined INSERT (see "held rows").
 *
 * Commits are durable (synchronous_commit = on). A lost connection is
 * CW_ERR_AGAIN; the next transaction reconnects and prepares again. SQLSTATEs
 * are translated here and nowhere else.
 */
#include "backend.h"
#include "pgcopy.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/registry.h"
#include "core/buf.h"
#include "core/strmap.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Type OIDs of the results that become JSON numbers (pg_type.h is server-side). */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25, OID_OID = 26 };
enum { OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

#define MAX_PARAMS 1024

/*
 * The processor's command-log and event rows are held back, in binary COPY
 * form, and go to the server when the batch commits or a statement needs
 * them in (see "held rows" below). A held stream that grows past this many
 * bytes is sent at once, so a batch's memory stays bounded.
 */
#define COPY_FLUSH_BYTES (8u << 20)
/*
 * A table's held rows go in by COPY from this many on; fewer go in by
 * multi-row INSERTs of up to INSERT_CHUNK rows, sent in the pipeline.
 * COPY saves the server parsing and planning, but cannot be pipelined: it
 * costs a drain and two round trips, more than it saves on a few rows
 * (docs/PERFORMANCE.md, "COPY or INSERT").
 */
#define COPY_MIN_ROWS 64
/* The batch look-up's first re-preparation (rows written); then at each doubling. */
#define REPLAN_MIN_CHANGES 1024
#define INSERT_CHUNK       64 /* 13 * 64 parameters at most: within MAX_PARAMS */

struct cw_stmt {
    const struct cw_store_backend *be; /* first: what db.c reads */
    struct cw_db *db;
    char *sql;     /* the cache's key, as the caller wrote it */
    char *pg_sql;  /* with $n placeholders */
    char name[24]; /* of the prepared statement */
    unsigned gen;  /* the connection it was prepared on; 0: not yet */
    int n_params;  /* the highest ? number */
    const char **values;
    char **owned;     /* copies made by bind_text */
    char (*ints)[24]; /* integers bound, as text */
    int *lengths;     /* of the values bound in binary; NULL until one is */
    int *formats;     /* per parameter: 0 text, 1 binary; NULL until one is binary */
    PGresult *res;    /* the rows of the current step, or NULL */
    bool touches_log; /* names the events or commands table: held-back rows go in first */
    bool writes;      /* INSERT, UPDATE, DELETE or MERGE: counts as a change when deferred */
    int row, n_rows;
    int64_t changes;
    int64_t replan_at; /* the batch look-up: prepared again once db->total_changes reaches it */
};

struct cw_db {
    const struct cw_store_backend *be; /* first: what db.c reads */
    PGconn *conn;
    struct cw_store *store;
    unsigned gen; /* bumped at each (re)connection: prepared statements are lost */
    unsigned next_name;
    bool in_tx;             /* between BEGIN and COMMIT or ROLLBACK: a lost connection lost it */
    bool lost;              /* a call failed for want of a connection: reconnect before the next */
    struct cw_strmap cache; /* SQL text -> struct cw_stmt *; keys owned by the statements */
    struct cw_buf scratch;
    int64_t total_changes;
    struct cw_db *next; /* in the store's list of open readers */
    bool read_only;     /* a reader, or the writer of a read-only store */
    char message[256];  /* libpq's last connection message, its first line */
    unsigned lead_gen;  /* the connection (gen) that took the advisory lock; 0: none */
    /* Held-back rows (cw_db_hold_events); only ever on the writer. */
    bool hold;
    bool held_lost;            /* sending held rows failed: the batch must run again */
    struct cw_buf held_events; /* binary COPY rows of the events table */
    struct cw_buf held_commands;
    size_t n_held_events, n_held_commands;
    /*
     * Statements sent in pipeline mode whose results are not read yet
     * (see "deferred statements" below); 0 when the pipeline is not in use.
     */
    int n_sent;
    size_t *tags; /* per statement sent: the command it is blamed on (1 + index), or 0 */
    size_t cap_tags;
    size_t blame;  /* 1 + the index of the command that statements now belong to; 0: none */
    size_t blamed; /* the failed drain's statement was this command's (1 + index); 0: none */
    char blamed_message[256];
    /* The idempotency keys of the batch (cw_store_expect_commands), key -> struct expected. */
    struct cw_strmap expected;
    struct expected **expected_keys;
    size_t n_expected, cap_expected;
};

/* A key of the batch; the map borrows the key from here. */
struct expected {
    bool is_new; /* found absent, and no command of the batch took it since */
    char key[];
};

struct cw_store {
    const struct cw_store_backend *be; /* first: what db.c reads */
    char *url;
    struct cw_store_options opt;
    struct cw_db *writer;
    const struct cw_domain *domain;
    pthread_mutex_t lock; /* {readers} */
    struct cw_db *readers;
};

/* The core schema: the final shape of SQLite's core:001 and core:002. */
static const char core_schema[] = "CREATE TABLE IF NOT EXISTS events ("
                                  " position BIGINT PRIMARY KEY,"
                                  " uuid TEXT NOT NULL UNIQUE,"
                                  " command_uuid TEXT NOT NULL,"
                                  " name TEXT NOT NULL,"
                                  " version INTEGER NOT NULL,"
                                  " data TEXT NOT NULL,"
                                  " meta TEXT NOT NULL,"
                                  " user_uuid TEXT,"
                                  " client_id TEXT,"
                                  " client_seq BIGINT,"
                                  " recorded_at BIGINT NOT NULL);"
                                  "CREATE INDEX IF NOT EXISTS events_by_user"
                                  " ON events(user_uuid, position);"
                                  "CREATE TABLE IF NOT EXISTS commands ("
                                  " uuid TEXT NOT NULL,"
                                  " user_uuid TEXT NOT NULL,"
                                  " client_id TEXT NOT NULL,"
                                  " client_seq BIGINT NOT NULL,"
                                  " name TEXT NOT NULL,"
                                  " data TEXT NOT NULL,"
                                  " meta TEXT NOT NULL,"
                                  " received_at BIGINT NOT NULL,"
                                  " outcome TEXT NOT NULL,"
                                  " first_position BIGINT,"
                                  " last_position BIGINT,"
                                  " reject_code TEXT,"
                                  " reject_message TEXT,"
                                  " UNIQUE (user_uuid, client_id, client_seq));";

/*
 * The same ids as SQLite's, so that a log copied between backends carries
 * a schema_migrations both read alike; 002 is already in 001's shape here.
 */
const char *cw_store_libpq_version(void)
{
    static char v[32];
    int n = PQlibVersion(); /* 150018 for 15.18 */
    snprintf(v, sizeof(v), "%d.%d", n / 10000, n % 10000);
    return v;
}

static const struct cw_migration core_migrations[] = {
    {.id = "core:001-log", .sql = core_schema},
    {.id = "core:002-commands-by-key", .sql = "SELECT 1"},
};

static void db_close(struct cw_db *db);
static int flush_held(struct cw_db *db, struct cw_error *err);
static void drop_held(struct cw_db *db);
static bool holding(const struct cw_db *db);
static int stmt_step(struct cw_stmt *st, struct cw_error *err);
static void stmt_reset(struct cw_stmt *st);
static int drain(struct cw_db *db, struct cw_error *err);
static void forget_expected(struct cw_db *db);

/* ------------------------------------------------------------- errors */

/*
 * What waiting and trying again can cure: a lost or refused connection
 * (08, 57P01-03), serialization failures and deadlocks (40001, 40P01),
 * full disks and exhausted resources (53), statement and lock timeouts
 * (57014, 55P03), I/O errors (58).
 */
bool cw_pg_transient(const char *state)
{
    if (!state)
        return true; /* no SQLSTATE: libpq lost the connection */
    static const char *const prefixes[] = {"08",    "40001", "40P01", "53",    "57014",
                                           "57P01", "57P02", "57P03", "55P03", "58"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(state, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* The first line of res's error message, or of the connection's. */
static const char *message(struct cw_db *db, const PGresult *res)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg) {
        /* libpq's own ("server closed the connection...") end in a newline. */
        snprintf(db->message, sizeof(db->message), "%s", PQerrorMessage(db->conn));
        db->message[strcspn(db->message, "\n")] = '\0';
        if (!db->message[0]) /* a pipeline that broke off can leave none */
            snprintf(db->message, sizeof(db->message), "no answer from the server (%s)",
                     PQstatus(db->conn) == CONNECTION_OK ? "connection open" : "connection lost");
        msg = db->message;
    }
    return msg;
}

/* Translates a failed result (or none) on db into CW_ERR_AGAIN or CW_ERR_STORE. */
static int fail(struct cw_db *db, const PGresult *res, struct cw_error *err, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /*
     * An error without a SQLSTATE is libpq's own: the connection is gone,
     * though PQstatus may still say otherwise until the next call.
     */
    if (!state || PQstatus(db->conn) != CONNECTION_OK)
        db->lost = true;
    int rc = db->lost || cw_pg_transient(state) ? CW_ERR_AGAIN : CW_ERR_STORE;
    /* disk_full (53100): the processor reports the condition and backs off longer. */
    bool full = state && strcmp(state, "53100") == 0;
    return cw_error_set(err, rc, full ? CW_STORE_DISK_FULL : "internal-error", "%s: %s", what,
                        message(db, res));
}

/*
 * Rows res changed: PQcmdTuples also counts the rows a SELECT returned, and
 * cw_db_total_changes must tell only writes (the processor learns from it
 * which handlers write).
 */
static int64_t rows_changed(PGresult *res)
{
    const char *status = PQcmdStatus(res);
    if (strncmp(status, "INSERT", 6) && strncmp(status, "UPDATE", 6) &&
        strncmp(status, "DELETE", 6) && strncmp(status, "MERGE", 5))
        return 0;
    return atoll(PQcmdTuples(res));
}

/* Runs sql (no parameters; several statements allowed) with the simple protocol. */
static int exec_sql(struct cw_db *db, const char *sql, struct cw_error *err)
{
    int drained = drain(db, err);
    if (drained)
        return drained;
    PGresult *res = PQexec(db->conn, sql);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? CW_OK : fail(db, res, err, "exec");
    if (!rc)
        db->total_changes += rows_changed(res);
    PQclear(res);
    return rc;
}

/* ---------------------------------------------------------- connections */

static void on_notice(void *arg, const char *message)
{
    /* "relation already exists, skipping" and the like: not for stderr. */
}

/* The session settings every connection starts with (and starts again with). */
static int configure(struct cw_db *db, struct cw_error *err)
{
    PQsetNoticeProcessor(db->conn, on_notice, NULL);
    /*
     * The writer waits for a lock at most 100 ms, as on SQLite: longer
     * waits are the processor's retry loop's, which backs off and counts.
     */
    return exec_sql(db,
                    db->read_only ? "SET synchronous_commit = on;"
                                    " SET default_transaction_read_only = on;"
                                  : "SET synchronous_commit = on; SET lock_timeout = 100;",
                    err);
}

static int connect_db(struct cw_store *s, bool reader, struct cw_db **out, struct cw_error *err)
{
    struct cw_db *db = cw_xcalloc(1, sizeof(*db));
    db->read_only = reader || s->opt.read_only;
    db->be = &cw_store_pg;
    db->store = s;
    db->gen = 1;
    cw_strmap_init(&db->cache);
    cw_strmap_init(&db->expected);
    db->conn = PQconnectdb(s->url);
    int rc = CW_OK;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(db->conn);
        bool missing = strstr(msg, "does not exist") != NULL;
        char label[512];
        cw_store_url_label(s->url, label, sizeof(label));
        rc = cw_error_set(err, missing ? CW_ERR_NOT_FOUND : CW_ERR_AGAIN, NULL,
                          "cannot connect to %s: %.*s", label, (int)strcspn(msg, "\n"), msg);
    }
    if (!rc)
        rc = configure(db, err);
    if (rc) {
        db_close(db);
        return rc;
    }
    *out = db;
    return CW_OK;
}

/*
 * Outside a transaction, a lost connection is made again: the statements
 * prepared on the old one are prepared anew when next used.
 */
static int reconnect_if_lost(struct cw_db *db, struct cw_error *err)
{
    if (PQstatus(db->conn) == CONNECTION_OK && !db->lost)
        return CW_OK;
    PQreset(db->conn); /* leaves pipeline mode with the old connection */
    db->n_sent = 0;
    db->gen++;
    db->lost = false;
    if (PQstatus(db->conn) != CONNECTION_OK)
        return fail(db, NULL, err, "reconnect");
    return configure(db, err);
}

/* Was the connection found lost outside a transaction (so nothing of one is lost)? */
static bool lost_idle(struct cw_db *db)
{
    return !db->in_tx && (db->lost || PQstatus(db->conn) != CONNECTION_OK);
}

/* Begins a transaction with sql, on a new connection if the old one turns out lost. */
static int begin_with(struct cw_db *db, const char *sql, struct cw_error *err)
{
    int rc = reconnect_if_lost(db, err);
    if (!rc)
        rc = exec_sql(db, sql, err);
    if (rc && lost_idle(db)) {
        rc = reconnect_if_lost(db, err);
        if (!rc)
            rc = exec_sql(db, sql, err);
    }
    db->in_tx = !rc;
    return rc;
}

static int store_open(const char *url, const struct cw_store_options *opt, struct cw_store **out,
                      struct cw_error *err)
{
    struct cw_store *s = cw_xcalloc(1, sizeof(*s));
    s->be = &cw_store_pg;
    s->url = cw_xstrdup(url);
    if (opt)
        s->opt = *opt;
    pthread_mutex_init(&s->lock, NULL);
    int rc = connect_db(s, false, &s->writer, err);
    if (rc) {
        pthread_mutex_destroy(&s->lock);
        free(s->url);
        free(s);
        return rc;
    }
    *out = s;
    return CW_OK;
}

static void stmt_free(struct cw_stmt *st)
{
    PQclear(st->res);
    for (int i = 0; i < st->n_params; i++)
        free(st->owned[i]);
    free(st->owned);
    free(st->values);
    free(st->ints);
    free(st->lengths);
    free(st->formats);
    free(st->pg_sql);
    free(st->sql);
    free(st);
}

static void db_close(struct cw_db *db)
{
    struct cw_store *s = db->store;
    if (s && db != s->writer) {
        pthread_mutex_lock(&s->lock);
        for (struct cw_db **p = &s->readers; *p; p = &(*p)->next) {
            if (*p == db) {
                *p = db->next;
                break;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    for (size_t i = 0; i < db->cache.cap; i++)
        if (db->cache.keys[i])
            stmt_free(db->cache.values[i]);
    cw_strmap_release(&db->cache);
    cw_buf_release(&db->scratch);
    cw_buf_release(&db->held_events);
    cw_buf_release(&db->held_commands);
    forget_expected(db);
    cw_strmap_release(&db->expected);
    free(db->expected_keys);
    free(db->tags);
    PQfinish(db->conn);
    free(db);
}

static void store_close(struct cw_store *s)
{
    while (s->readers)
        db_close(s->readers);
    if (s->writer) {
        s->writer->store = NULL;
        db_close(s->writer);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->url);
    free(s);
}

static void finish_checkpoint(struct cw_store *s)
{
    /* PostgreSQL checkpoints on its own. */
}

static struct cw_db *store_writer(struct cw_store *s)
{
    return s->writer;
}

static int reader_open(struct cw_store *s, struct cw_db **out, struct cw_error *err)
{
    struct cw_db *db;
    int rc = connect_db(s, true, &db, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->lock);
    db->next = s->readers;
    s->readers = db;
    pthread_mutex_unlock(&s->lock);
    *out = db;
    return CW_OK;
}

static void set_domain(struct cw_store *s, const struct cw_domain *d)
{
    s->domain = d;
}

static const struct cw_domain *db_domain(struct cw_db *db)
{
    return db->store ? db->store->domain : NULL;
}

/* ------------------------------------------------------------ SQL text */

/* Length of the quoted text or comment at p ('...', "...", -- or block), else 0. */
static size_t skip_quoted(const char *p)
{
    const char *q = p;
    if (*p == '\'' || *p == '"') {
        for (q++; *q; q++)
            if (*q == *p && q[1] != *p)
                return (size_t)(q + 1 - p);
            else if (*q == *p)
                q++; /* a doubled quote stands for itself */
        return (size_t)(q - p);
    }
    if (p[0] == '-' && p[1] == '-')
        return strcspn(p, "\n");
    if (p[0] == '/' && p[1] == '*') {
        const char *end = strstr(p + 2, "*/");
        return end ? (size_t)(end + 2 - p) : strlen(p);
    }
    return 0;
}

static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Does sql hold word (any case) as a whole word outside quotes? */
static bool has_word(const char *sql, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = sql; *p;) {
        size_t q = skip_quoted(p);
        if (q) {
            p += q;
            continue;
        }
        if (strncasecmp(p, word, n) == 0 && (p == sql || !word_char(p[-1])) && !word_char(p[n]))
            return true;
        p++;
    }
    return false;
}

/* Does sql begin with a word that writes rows (after spaces and comments)? */
static bool writes(const char *sql)
{
    const char *p = sql;
    for (;;) {
        p += strspn(p, " \t\r\n(");
        size_t q = *p == '-' || *p == '/' ? skip_quoted(p) : 0;
        if (!q)
            break;
        p += q;
    }
    static const char *const verbs[] = {"insert", "update", "delete", "merge", "with"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        size_t n = strlen(verbs[i]);
        if (strncasecmp(p, verbs[i], n) == 0 && !word_char(p[n]))
            return true; /* WITH: perhaps; counting it as a write is the safe side */
    }
    return false;
}

/*
 * Copies sql into out with each ? numbered $1, $2, ... and, for DDL, each
 * word INTEGER made BIGINT. Returns the number of placeholders.
 */
static int adapt_sql(const char *sql, bool ddl, struct cw_buf *out)
{
    int n = 0;
    cw_buf_reset(out);
    for (const char *p = sql; *p;) {
        size_t q = skip_quoted(p);
        if (q) {
            cw_buf_add(out, p, q);
            p += q;
        } else if (*p == '?') {
            char num[16];
            cw_buf_add(out, num, (size_t)snprintf(num, sizeof(num), "$%d", ++n));
            p++;
        } else if (ddl && strncasecmp(p, "integer", 7) == 0 && (p == sql || !word_char(p[-1])) &&
                   !word_char(p[7])) {
            cw_buf_adds(out, "BIGINT");
            p += 7;
        } else {
            cw_buf_add(out, p++, 1);
        }
    }
    cw_buf_add(out, "", 1);
    return n;
}

/* ----------------------------------------------------------- statements */

/* Runs sql on db, ignoring its outcome: the savepoints around a prepare. */
static void quietly(struct cw_db *db, const char *sql)
{
    PQclear(PQexec(db->conn, sql));
}

/*
 * Prepares st as name with the parameter types in types; inside a
 * transaction under a savepoint, as a failed prepare would abort it.
 */
static PGresult *prepare_typed(struct cw_stmt *st, const Oid *types)
{
    struct cw_db *db = st->db;
    if (db->in_tx)
        quietly(db, "SAVEPOINT cw_prepare");
    PGresult *res = PQprepare(db->conn, st->name, st->pg_sql, st->n_params, types);
    if (db->in_tx)
        quietly(db, PQresultStatus(res) == PGRES_COMMAND_OK
                        ? "RELEASE SAVEPOINT cw_prepare"
                        : "ROLLBACK TO SAVEPOINT cw_prepare; RELEASE SAVEPOINT cw_prepare");
    return res;
}

/*
 * Prepares st on its connection if this connection has not seen it. SQLite
 * types values, not columns: a parameter first bound to an integer is
 * declared BIGINT, so that SELECT ? returns a number; the others are left
 * to PostgreSQL to infer, and where it cannot (? IS NULL), taken as TEXT.
 */
static int ensure_prepared(struct cw_stmt *st, struct cw_error *err)
{
    struct cw_db *db = st->db;
    if (st->gen == db->gen)
        return CW_OK;
    int drained = drain(db, err); /* PQprepare waits for its answer */
    if (drained)
        return drained;
    snprintf(st->name, sizeof(st->name), "cw%u", ++db->next_name);
    Oid *types = cw_xcalloc((size_t)st->n_params + 1, sizeof(*types));
    for (int i = 0; i < st->n_params; i++)
        types[i] = st->values[i] == st->ints[i] ? OID_INT8 : 0;
    PGresult *res = prepare_typed(st, types);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "42P18") == 0) { /* indeterminate datatype */
        for (int i = 0; i < st->n_params; i++)
            types[i] = types[i] ? types[i] : OID_TEXT;
        PQclear(res);
        res = prepare_typed(st, types);
    }
    free(types);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? CW_OK : fail(db, res, err, "prepare");
    PQclear(res);
    if (!rc)
        st->gen = db->gen;
    return rc;
}

static struct cw_stmt *prepare_unbound(struct cw_db *db, const char *sql, struct cw_error *err)
{
    struct cw_stmt *st = cw_strmap_get(&db->cache, sql);
    if (st) {
        stmt_reset(st);
        st->changes = 0;
    } else {
        st = cw_xcalloc(1, sizeof(*st));
        st->be = &cw_store_pg;
        st->db = db;
        st->sql = cw_xstrdup(sql);
        st->n_params = adapt_sql(sql, false, &db->scratch);
        st->pg_sql = cw_xstrdup(db->scratch.data);
        st->touches_log = has_word(sql, "events") || has_word(sql, "commands");
        st->writes = writes(sql);
        if (st->n_params > MAX_PARAMS) {
            cw_error_set(err, CW_ERR_STORE, NULL, "more than %d parameters: %.60s", MAX_PARAMS,
                         sql);
            stmt_free(st);
            return NULL;
        }
        int n = st->n_params ? st->n_params : 1;
        st->values = cw_xcalloc((size_t)n, sizeof(*st->values));
        st->owned = cw_xcalloc((size_t)n, sizeof(*st->owned));
        st->ints = cw_xcalloc((size_t)n, sizeof(*st->ints));
        cw_strmap_put(&db->cache, st->sql, st);
    }
    /*
     * Prepared at the first step, when the bindings tell the parameters'
     * types: an error in the SQL shows there.
     */
    return st;
}

static int bind_null(struct cw_stmt *st, int idx);

static struct cw_stmt *db_prepare(struct cw_db *db, const char *sql, struct cw_error *err)
{
    struct cw_stmt *st = prepare_unbound(db, sql, err);
    for (int i = 1; st && i <= st->n_params; i++)
        bind_null(st, i); /* a parameter left unbound reads NULL */
    return st;
}

/* Slot idx (1-based), its old copy freed; NULL when idx is out of range. */
static bool slot(struct cw_stmt *st, int idx)
{
    if (idx < 1 || idx > st->n_params)
        return false;
    free(st->owned[idx - 1]);
    st->owned[idx - 1] = NULL;
    if (st->formats)
        st->formats[idx - 1] = 0;
    return true;
}

/* Binds len bytes at data in binary form (the parameter type's own); not copied. */
static int bind_binary(struct cw_stmt *st, int idx, const char *data, size_t len)
{
    if (!slot(st, idx))
        return CW_ERR_STORE;
    if (!st->formats) {
        st->formats = cw_xcalloc((size_t)st->n_params, sizeof(*st->formats));
        st->lengths = cw_xcalloc((size_t)st->n_params, sizeof(*st->lengths));
    }
    st->values[idx - 1] = data;
    st->lengths[idx - 1] = (int)len;
    st->formats[idx - 1] = 1;
    return CW_OK;
}

static int bind_null(struct cw_stmt *st, int idx)
{
    if (!slot(st, idx))
        return CW_ERR_STORE;
    st->values[idx - 1] = NULL;
    return CW_OK;
}

static int bind_text(struct cw_stmt *st, int idx, const char *text)
{
    if (!slot(st, idx))
        return CW_ERR_STORE;
    st->owned[idx - 1] = text ? cw_xstrdup(text) : NULL;
    st->values[idx - 1] = st->owned[idx - 1];
    return CW_OK;
}

static int bind_text_static(struct cw_stmt *st, int idx, const char *text)
{
    if (!slot(st, idx))
        return CW_ERR_STORE;
    st->values[idx - 1] = text;
    return CW_OK;
}

static int bind_int(struct cw_stmt *st, int idx, int64_t value)
{
    if (!slot(st, idx))
        return CW_ERR_STORE;
    snprintf(st->ints[idx - 1], sizeof(st->ints[0]), "%lld", (long long)value);
    st->values[idx - 1] = st->ints[idx - 1];
    return CW_OK;
}

/* Runs st once: its rows wait in st->res, its row count in st->changes. */
static int execute_once(struct cw_stmt *st, struct cw_error *err)
{
    struct cw_db *db = st->db;
    if (st->touches_log && holding(db)) {
        int flushed = flush_held(db, err);
        if (flushed)
            return flushed;
    }
    int rc = db->in_tx ? CW_OK : reconnect_if_lost(db, err);
    if (!rc)
        rc = ensure_prepared(st, err);
    if (!rc)
        rc = drain(db, err); /* what was sent before comes first, and its errors */
    if (rc)
        return rc;
    PGresult *res =
        PQexecPrepared(db->conn, st->name, st->n_params, st->values, st->lengths, st->formats, 0);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        rc = fail(db, res, err, "step");
        PQclear(res);
        return rc;
    }
    st->changes = rows_changed(res);
    db->total_changes += st->changes;
    st->res = res;
    st->row = -1;
    st->n_rows = PQntuples(res);
    return CW_OK;
}

/*
 * libpq learns that a connection was lost by using it: outside a
 * transaction, where nothing else is lost with it, a statement that meets
 * a lost connection runs once more on a new one.
 */
static int execute(struct cw_stmt *st, struct cw_error *err)
{
    int rc = execute_once(st, err);
    if (rc && lost_idle(st->db))
        rc = execute_once(st, err);
    return rc;
}

static int stmt_step(struct cw_stmt *st, struct cw_error *err)
{
    if (!st->res) {
        int rc = execute(st, err);
        if (rc)
            return rc;
    }
    if (++st->row < st->n_rows)
        return CW_ROW;
    PQclear(st->res);
    st->res = NULL;
    return CW_DONE;
}

static void stmt_reset(struct cw_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
}

static int64_t stmt_changes(struct cw_stmt *st)
{
    return st->changes;
}

static bool stmt_is_null(struct cw_stmt *st, int col)
{
    return !st->res || PQgetisnull(st->res, st->row, col);
}

static const char *stmt_text(struct cw_stmt *st, int col)
{
    return stmt_is_null(st, col) ? NULL : PQgetvalue(st->res, st->row, col);
}

/* SQLite reads a truth value as 0 or 1; so does this store. */
static int64_t stmt_int(struct cw_stmt *st, int col)
{
    const char *v = stmt_text(st, col);
    if (!v)
        return 0;
    if (PQftype(st->res, col) == OID_BOOL)
        return *v == 't';
    return strtoll(v, NULL, 10);
}

static int stmt_columns(struct cw_stmt *st)
{
    return st->res ? PQnfields(st->res) : 0;
}

static const char *stmt_column_name(struct cw_stmt *st, int col)
{
    return st->res ? PQfname(st->res, col) : NULL;
}

static json_t *stmt_json(struct cw_stmt *st, int col)
{
    const char *v = stmt_text(st, col);
    if (!v)
        return json_null();
    switch (PQftype(st->res, col)) {
    case OID_BOOL:
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return json_integer(stmt_int(st, col));
    case OID_NUMERIC:
        if (!strpbrk(v, ".eEN")) /* a whole number, as SUM(BIGINT) gives */
            return json_integer(strtoll(v, NULL, 10));
        return json_real(strtod(v, NULL));
    case OID_FLOAT4:
    case OID_FLOAT8:
        return json_real(strtod(v, NULL));
    default:
        return json_stringn(v, (size_t)PQgetlength(st->res, st->row, col));
    }
}

/* ------------------------------------------------- deferred statements */

/*
 * While the processor holds rows back (cw_db_hold_events, its fast mode),
 * the writes whose answers it does not need are sent in libpq's pipeline
 * mode and not waited for: outcome corrections, savepoints, every statement
 * domain code runs with cw_db_exec. The server works through them while the
 * processor runs the next commands. The held command-log and event rows
 * then go in by COPY, which pipeline mode does not allow: at commit the
 * pipeline is drained, the two COPYs run, and COMMIT. A batch costs a few
 * round trips (BEGIN, the last position, the key lookup, the drain, two
 * for each COPY, COMMIT) instead of several per command. A table with
 * fewer than COPY_MIN_ROWS held rows goes in by a multi-row INSERT sent in
 * the pipeline instead, and a small batch costs four round trips: BEGIN,
 * the last position, the key lookup, and the pipeline ending in COMMIT.
 *
 * The results are read, in order, at the next statement whose answer is
 * needed (drain): a failure among them may be any earlier command's, so it
 * makes the batch's rows lost (cw_db_held_lost) and the processor runs the
 * batch again in safe mode, where nothing is deferred and each failure is
 * its own command's. The command log's rows go in without ON CONFLICT (COPY
 * has none): a duplicate key fails the batch the same way, and the safe run answers the
 * duplicate with its original outcome. Duplicates are rare (a client's
 * resend after a lost connection); a batch holding one runs twice.
 */
static bool deferring(const struct cw_db *db)
{
    return db->hold && db->in_tx && !db->lost;
}

static int enter_pipeline(struct cw_db *db, struct cw_error *err)
{
    if (PQpipelineStatus(db->conn) != PQ_PIPELINE_OFF || PQenterPipelineMode(db->conn))
        return CW_OK;
    return fail(db, NULL, err, "pipeline");
}

/* Notes one more statement sent, blamed on command blame (1 + index; 0: none). */
static void sent(struct cw_db *db, size_t blame)
{
    if ((size_t)db->n_sent == db->cap_tags) {
        db->cap_tags = db->cap_tags ? db->cap_tags * 2 : 256;
        db->tags = cw_xrealloc(db->tags, db->cap_tags * sizeof(*db->tags));
    }
    db->tags[db->n_sent++] = blame;
}

/*
 * Sends st with its bindings (copied now by libpq) without waiting. blame:
 * whether a failure of st is its command's own (domain code's statement),
 * rather than one of rows several commands share.
 */
static int defer(struct cw_stmt *st, bool blame, struct cw_error *err)
{
    struct cw_db *db = st->db;
    if (st->touches_log && holding(db)) {
        int flushed = flush_held(db, err);
        if (flushed)
            return flushed;
    }
    int rc = ensure_prepared(st, err);
    if (!rc)
        rc = enter_pipeline(db, err);
    if (!rc && !PQsendQueryPrepared(db->conn, st->name, st->n_params, st->values, st->lengths,
                                    st->formats, 0))
        rc = fail(db, NULL, err, "send");
    if (rc) {
        db->held_lost = true;
        return rc;
    }
    sent(db, blame ? db->blame : 0);
    stmt_reset(st);
    st->changes = 0;
    db->total_changes += st->writes; /* the count is not known: at least say it wrote */
    return CW_OK;
}

/* Sends sql (one statement, no parameters) without waiting. */
static int defer_sql(struct cw_db *db, const char *sql, struct cw_error *err)
{
    int rc = enter_pipeline(db, err);
    if (!rc && !PQsendQueryParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
        rc = fail(db, NULL, err, "send");
    if (rc) {
        db->held_lost = true;
        return rc;
    }
    sent(db, 0);
    return CW_OK;
}

/*
 * Reads the results of everything sent and leaves pipeline mode. The first
 * failure is returned (the later statements were skipped by the server)
 * and loses the batch's deferred rows.
 */
static int drain(struct cw_db *db, struct cw_error *err)
{
    if (!db->n_sent && PQpipelineStatus(db->conn) == PQ_PIPELINE_OFF)
        return CW_OK;
    int rc = PQpipelineSync(db->conn) ? CW_OK : fail(db, NULL, err, "sync");
    /* Each statement's results end with a NULL; the sync's own result ends it all. */
    for (int ends = 0; !rc || PQstatus(db->conn) == CONNECTION_OK;) {
        PGresult *res = PQgetResult(db->conn);
        if (!res) {
            if (++ends > db->n_sent || PQstatus(db->conn) != CONNECTION_OK) {
                rc = rc ? rc : fail(db, NULL, err, "pipeline");
                break;
            }
            continue;
        }
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (s == PGRES_FATAL_ERROR && !rc) {
            struct cw_error why = {0};
            rc = fail(db, res, &why, "deferred statement");
            /* A permanent failure of one command's own statement is that command's. */
            db->blamed = rc == CW_ERR_STORE && ends < db->n_sent ? db->tags[ends] : 0;
            snprintf(db->blamed_message, sizeof(db->blamed_message), "%s", why.message);
            if (err)
                cw_error_copy(err, &why);
            cw_error_release(&why);
        }
        PQclear(res);
    }
    db->n_sent = 0;
    if (!PQexitPipelineMode(db->conn) && !rc)
        rc = fail(db, NULL, err, "pipeline");
    if (rc)
        db->held_lost = true;
    return rc;
}

/* cw_db_exec's statement: deferred while holding, else stepped to its end. */
static int stmt_exec(struct cw_stmt *st, struct cw_error *err)
{
    if (deferring(st->db))
        return defer(st, true, err);
    int rc;
    while ((rc = stmt_step(st, err)) == CW_ROW)
        ;
    return rc == CW_DONE ? CW_OK : rc;
}

/* --------------------------------------------------------- transactions */

static int db_begin(struct cw_db *db, struct cw_error *err)
{
    drop_held(db);
    db->held_lost = false;
    db->blame = db->blamed = 0;
    forget_expected(db);
    return begin_with(db, "BEGIN", err);
}

static void db_rollback(struct cw_db *db)
{
    drop_held(db);
    drain(db, NULL); /* its failures are what is being undone */
    db->in_tx = false;
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        exec_sql(db, "ROLLBACK", NULL);
}

static int db_commit(struct cw_db *db, struct cw_error *err)
{
    int rc = flush_held(db, err);
    if (!rc && db->held_lost)
        rc = cw_error_set(err, CW_ERR_STORE, "internal-error",
                          "commit: rows held back were lost; the batch must run again");
    /* Deferred statements: COMMIT goes after them, and one sync reads all. */
    if (!rc && db->n_sent) {
        rc = defer_sql(db, "COMMIT", err);
        if (!rc)
            rc = drain(db, err);
        if (!rc) {
            db->in_tx = false;
            return CW_OK;
        }
    }
    if (rc) {
        db_rollback(db);
        return rc;
    }
    /* A failed transaction "commits" as a rollback: say so instead. */
    if (PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
        db_rollback(db);
        return cw_error_set(err, CW_ERR_STORE, "internal-error",
                            "commit: the transaction had failed");
    }
    db->in_tx = false;
    return exec_sql(db, "COMMIT", err);
}

static int db_savepoint(struct cw_db *db, struct cw_error *err)
{
    /* What is held belongs to earlier commands: in before the savepoint, so it survives it. */
    int rc = flush_held(db, err);
    if (rc)
        return rc;
    return deferring(db) ? defer_sql(db, "SAVEPOINT cmd", err) : exec_sql(db, "SAVEPOINT cmd", err);
}

static int db_release(struct cw_db *db, struct cw_error *err)
{
    const char *sql = "RELEASE SAVEPOINT cmd";
    return deferring(db) ? defer_sql(db, sql, err) : exec_sql(db, sql, err);
}

static void db_rollback_to(struct cw_db *db)
{
    drop_held(db);   /* all of it written since the savepoint */
    drain(db, NULL); /* a failure there loses the batch's rows: it runs again */
    exec_sql(db, "ROLLBACK TO SAVEPOINT cmd; RELEASE SAVEPOINT cmd", NULL);
}

static int snapshot_begin(struct cw_db *db, struct cw_error *err)
{
    /* The snapshot is taken at the first statement, not at BEGIN: take it now. */
    int rc = begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1", err);
    if (rc)
        db_rollback(db);
    return rc;
}

static void snapshot_end(struct cw_db *db)
{
    db_rollback(db);
}

/* ----------------------------------------------------------- migrations */

/* A migration's SQL: several statements, INTEGER read as BIGINT, run in one go. */
static int run_script(struct cw_db *db, const char *sql, struct cw_error *err)
{
    struct cw_buf text = CW_BUF_INIT;
    adapt_sql(sql, true, &text);
    int rc = drain(db, err);
    PGresult *res = rc ? NULL : PQexec(db->conn, text.data);
    cw_buf_release(&text);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (!rc && s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = cw_error_set(err, CW_ERR_STORE, NULL, "%s", message(db, res));
    PQclear(res);
    return rc;
}

static struct cw_known_migrations known_migrations(const struct cw_domain *d)
{
    return (struct cw_known_migrations){
        core_migrations, sizeof(core_migrations) / sizeof(core_migrations[0]), d, .pg = true};
}

static int check_migrations(struct cw_store *s, const struct cw_domain *d, int *n_pending,
                            char *first_pending, size_t len, struct cw_error *err)
{
    struct cw_stmt *st =
        db_prepare(s->writer, "SELECT to_regclass('schema_migrations') IS NULL", err);
    int rc = st ? stmt_step(st, err) : CW_ERR_STORE;
    if (rc != CW_ROW)
        return rc == CW_DONE ? CW_ERR_STORE : rc;
    bool has_table = !stmt_int(st, 0);
    stmt_reset(st);
    char label[512];
    cw_store_url_label(s->url, label, sizeof(label));
    struct cw_known_migrations k = known_migrations(d);
    return cw_known_check(&k, s->writer, has_table, label, n_pending, first_pending, len, err);
}

static int store_migrate(struct cw_store *s, const struct cw_domain *d, int *n_applied,
                         struct cw_error *err)
{
    struct cw_db *db = s->writer;
    if (n_applied)
        *n_applied = 0;
    if (s->opt.read_only)
        return cw_error_set(err, CW_ERR_STORE, NULL, "the store is open read-only");
    int pending;
    int rc = check_migrations(s, d, &pending, NULL, 0, err);
    if (rc || !pending)
        return rc;
    /*
     * Two processes migrating at once would race on the first CREATE: the
     * record table is made under a transaction-scoped advisory lock.
     */
    rc = exec_sql(db,
                  "BEGIN; SELECT pg_advisory_xact_lock(7271);"
                  " CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL); COMMIT",
                  err);
    if (rc) {
        db_rollback(db);
        return rc;
    }
    struct cw_known_migrations k = known_migrations(d);
    return cw_known_apply(&k, db, n_applied, err);
}

/* --------------------------------------------------------- command log */

/* Binds text, or v serialised (an absent v reads {}) as an owned copy. */
static void bind_json(struct cw_stmt *st, int idx, const char *text, const json_t *v)
{
    if (text) {
        bind_text_static(st, idx, text);
        return;
    }
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    bind_text(st, idx, s ? s : "{}");
    free(s);
}

#define EVENT_INSERT                                                                               \
    "INSERT INTO events(" CW_EVENT_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

/* The map key of cmd's idempotency key, in db->scratch. */
static const char *key_of(struct cw_db *db, const char *user, const char *client, int64_t seq)
{
    cw_buf_reset(&db->scratch);
    cw_buf_adds(&db->scratch, user);
    cw_buf_addc(&db->scratch, '\x1f');
    cw_buf_adds(&db->scratch, client);
    cw_buf_addc(&db->scratch, '\x1f');
    cw_buf_add_int(&db->scratch, seq);
    return cw_buf_cstr(&db->scratch);
}

/* Was cmd's key expected new? It is taken from now on. */
static bool take_key(struct cw_db *db, const struct cw_command *cmd)
{
    struct expected *e =
        cw_strmap_get(&db->expected, key_of(db, cmd->user_uuid, cmd->client_id, cmd->client_seq));
    if (!e || !e->is_new)
        return false;
    e->is_new = false;
    return true;
}

static void forget_expected(struct cw_db *db)
{
    for (size_t i = 0; i < db->n_expected; i++)
        free(db->expected_keys[i]);
    db->n_expected = 0;
    cw_strmap_release(&db->expected);
    cw_strmap_init(&db->expected);
}

static void expect_key(struct cw_db *db, const char *key, bool is_new)
{
    if (cw_strmap_get(&db->expected, key))
        return;
    if (db->n_expected == db->cap_expected) {
        db->cap_expected = db->cap_expected ? db->cap_expected * 2 : 256;
        db->expected_keys =
            cw_xrealloc(db->expected_keys, db->cap_expected * sizeof(*db->expected_keys));
    }
    size_t len = strlen(key);
    struct expected *e = cw_xcalloc(1, sizeof(*e) + len + 1);
    e->is_new = is_new;
    memcpy(e->key, key, len + 1);
    db->expected_keys[db->n_expected++] = e;
    cw_strmap_put(&db->expected, e->key, e);
}

/*
 * Has st prepared again once the connection's writes have doubled since it
 * last was. PostgreSQL keeps a prepared statement's generic plan, costed
 * for the table as it was then, until the table is next analyzed. On a new
 * database the batch look-up is planned while the command log is empty: a
 * sequential scan of the whole log for each batch, which autovacuum's first
 * ANALYZE (a minute or more later) replaces by the unique index. Meanwhile
 * the scan grows with the log: 18 ms a batch at 65,000 rows. Planned again
 * at a doubling, it uses the index from a few thousand rows on
 * (docs/PERFORMANCE.md, "The one-connection gap through nginx").
 */
static int replan_as_log_grows(struct cw_db *db, struct cw_stmt *st, struct cw_error *err)
{
    bool prepared = st->gen == db->gen;
    if (prepared && db->total_changes < st->replan_at)
        return CW_OK;
    st->replan_at =
        2 * db->total_changes > REPLAN_MIN_CHANGES ? 2 * db->total_changes : REPLAN_MIN_CHANGES;
    st->gen = 0; /* prepared anew, under a new name, at its next step */
    if (!prepared)
        return CW_OK;
    char sql[48];
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
    return defer_sql(db, sql, err);
}

/*
 * Looks up the idempotency keys of the batch's commands in one query, so
 * that each command found absent is inserted without awaiting an answer.
 * The keys go as three arrays in binary form: the server neither parses
 * array literals nor converts the sequence numbers from text.
 */
static int expect_commands(struct cw_db *db, const struct cw_command *const *cmds, size_t n,
                           struct cw_error *err)
{
    forget_expected(db);
    if (!deferring(db) || !n)
        return CW_OK;
    struct cw_buf users = CW_BUF_INIT, clients = CW_BUF_INIT, seqs = CW_BUF_INIT;
    cw_pgcopy_array_start(&users, OID_TEXT);
    cw_pgcopy_array_start(&clients, OID_TEXT);
    cw_pgcopy_array_start(&seqs, OID_INT8);
    for (size_t i = 0; i < n; i++) {
        cw_pgcopy_array_text(&users, cmds[i]->user_uuid);
        cw_pgcopy_array_text(&clients, cmds[i]->client_id);
        cw_pgcopy_array_int8(&seqs, cmds[i]->client_seq);
    }
    cw_pgcopy_array_end(&users, (uint32_t)n);
    cw_pgcopy_array_end(&clients, (uint32_t)n);
    cw_pgcopy_array_end(&seqs, (uint32_t)n);
    struct cw_stmt *st = db_prepare(db,
                                    "SELECT user_uuid, client_id, client_seq FROM commands"
                                    " WHERE (user_uuid, client_id, client_seq) IN"
                                    " (SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[]))",
                                    err);
    int rc = st ? replan_as_log_grows(db, st, err) : CW_ERR_STORE;
    if (!rc) {
        bind_binary(st, 1, users.data, users.len);
        bind_binary(st, 2, clients.data, clients.len);
        bind_binary(st, 3, seqs.data, seqs.len);
        while ((rc = stmt_step(st, err)) == CW_ROW)
            expect_key(db, key_of(db, stmt_text(st, 0), stmt_text(st, 1), stmt_int(st, 2)), false);
        rc = rc == CW_DONE ? CW_OK : rc;
    }
    for (size_t i = 0; !rc && i < n; i++)
        expect_key(db, key_of(db, cmds[i]->user_uuid, cmds[i]->client_id, cmds[i]->client_seq),
                   true);
    if (rc)
        forget_expected(db);
    cw_buf_release(&users);
    cw_buf_release(&clients);
    cw_buf_release(&seqs);
    return rc;
}

/* The statements that follow are the index-th command's. */
static void blame_next(struct cw_db *db, size_t index)
{
    db->blame = index + 1;
}

static bool blamed(struct cw_db *db, size_t *index, struct cw_error *why)
{
    if (!db->blamed)
        return false;
    *index = db->blamed - 1;
    cw_error_set(why, CW_ERR_STORE, "internal-error", "%s", db->blamed_message);
    return true;
}

/*
 * Keeps cmd's row back, to go in with the others by COPY (flush_held),
 * when the batch's lookup found its key absent and no command of the batch
 * took it since: nothing to wait for. (Should another process insert it
 * meanwhile, the batch fails and runs again in safe mode, which answers
 * the duplicate.) Otherwise db.c's insert is its own idempotency check and
 * its answer is awaited.
 */
static int hold_command(struct cw_db *db, const struct cw_command *cmd,
                        const struct cw_command_record *rec, const char *data_text,
                        const char *meta_text, bool *held, struct cw_error *err)
{
    *held = deferring(db) && take_key(db, cmd);
    if (!*held)
        return CW_OK;
    struct cw_buf *b = &db->held_commands;
    cw_pgcopy_row(b, 13);
    cw_pgcopy_text(b, cmd->uuid);
    cw_pgcopy_text(b, cmd->user_uuid);
    cw_pgcopy_text(b, cmd->client_id);
    cw_pgcopy_int8(b, cmd->client_seq);
    cw_pgcopy_text(b, cmd->name);
    cw_pgcopy_json(b, data_text, cmd->data);
    cw_pgcopy_json(b, meta_text, cmd->meta);
    cw_pgcopy_int8(b, cmd->received_at);
    cw_pgcopy_text(b, rec->rejected ? "rejected" : "ok");
    if (rec->first_position) {
        cw_pgcopy_int8(b, rec->first_position);
        cw_pgcopy_int8(b, rec->last_position);
    } else {
        cw_pgcopy_null(b);
        cw_pgcopy_null(b);
    }
    cw_pgcopy_text(b, rec->rejected ? rec->reject_code : NULL);
    cw_pgcopy_text(b, rec->rejected ? rec->reject_message : NULL);
    db->n_held_commands++;
    return b->len < COPY_FLUSH_BYTES ? CW_OK : flush_held(db, err);
}

/* ------------------------------------------------------------ held rows */

static bool holding(const struct cw_db *db)
{
    return db->n_held_events || db->n_held_commands;
}

/* Forgets the held rows: sent, or undone with the transaction or savepoint. */
static void drop_held(struct cw_db *db)
{
    cw_buf_reset(&db->held_events);
    cw_buf_reset(&db->held_commands);
    db->n_held_events = db->n_held_commands = 0;
}

/* Reads what is left of a COPY's results, so that the connection is free again. */
static void copy_results_end(struct cw_db *db)
{
    PGresult *res;
    while ((res = PQgetResult(db->conn))) {
        ExecStatusType s = PQresultStatus(res);
        PQclear(res);
        if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT) {
            db->lost = true; /* stuck in a COPY: only a new connection gets out */
            break;
        }
    }
}

/*
 * Sends n rows, held in binary COPY form, with sql (COPY ... FROM STDIN):
 * one round trip to start it, the rows as one stream, one to end it.
 */
static int copy_in(struct cw_db *db, const char *sql, struct cw_buf *rows, size_t n,
                   struct cw_error *err)
{
    cw_pgcopy_finish(rows);
    PGresult *res = PQexec(db->conn, sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        int rc = fail(db, res, err, "copy");
        PQclear(res);
        copy_results_end(db);
        return rc;
    }
    PQclear(res);
    bool sent = PQputCopyData(db->conn, rows->data, (int)rows->len) == 1;
    sent = PQputCopyEnd(db->conn, sent ? NULL : "the rows could not be sent") == 1 && sent;
    res = PQgetResult(db->conn);
    int rc =
        sent && res && PQresultStatus(res) == PGRES_COMMAND_OK ? CW_OK : fail(db, res, err, "copy");
    PQclear(res);
    copy_results_end(db);
    if (!rc)
        db->total_changes += (int64_t)n;
    return rc;
}

#define COMMAND_COPY "COPY commands(" CW_COMMAND_COLUMNS ") FROM STDIN (FORMAT binary)"
#define EVENT_COPY   "COPY events(" CW_EVENT_COLUMNS ") FROM STDIN (FORMAT binary)"
#define COMMAND_ROWS "INSERT INTO commands(" CW_COMMAND_COLUMNS ") VALUES "
#define COMMAND_ROW  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define EVENT_ROWS   "INSERT INTO events(" CW_EVENT_COLUMNS ") VALUES "
#define EVENT_ROW    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

/* Binds the next n rows of the held stream rows, from *at on, as st's parameters. */
static void bind_held_rows(struct cw_stmt *st, const struct cw_buf *rows, size_t *at, size_t n)
{
    int idx = 1;
    for (size_t i = 0; i < n; i++) {
        int fields = cw_pgcopy_next_row(rows, at);
        for (int f = 0; f < fields; f++, idx++) {
            const char *data;
            size_t len;
            cw_pgcopy_field(rows, at, &data, &len);
            if (data)
                bind_binary(st, idx, data, len);
            else
                bind_null(st, idx);
        }
    }
}

/*
 * Sends n held rows with multi-row INSERTs (head, then row once per row),
 * their fields bound in binary as they were encoded for COPY. While
 * deferring they go in the pipeline, unawaited (libpq copies the values at
 * the send); otherwise each runs at once.
 */
static int insert_held(struct cw_db *db, const char *head, const char *row, struct cw_buf *rows,
                       size_t n, struct cw_error *err)
{
    struct cw_buf sql = CW_BUF_INIT;
    size_t at = cw_pgcopy_first_row();
    int rc = CW_OK;
    for (size_t done = 0, k; !rc && done < n; done += k) {
        k = n - done < INSERT_CHUNK ? n - done : INSERT_CHUNK;
        cw_buf_reset(&sql);
        cw_buf_adds(&sql, head);
        for (size_t i = 0; i < k; i++) {
            cw_buf_adds(&sql, i ? ", " : "");
            cw_buf_adds(&sql, row);
        }
        struct cw_stmt *st = prepare_unbound(db, cw_buf_cstr(&sql), err);
        if (!st) {
            rc = CW_ERR_STORE;
            break;
        }
        bind_held_rows(st, rows, &at, k);
        rc = deferring(db) ? defer(st, false, err) : stmt_exec(st, err);
    }
    cw_buf_release(&sql);
    return rc;
}

/*
 * Sends the held rows: each table's by COPY when it holds COPY_MIN_ROWS
 * or more, else by INSERT; the INSERTs first, the command log's before
 * the events', then the COPYs in the same order. COPY cannot run in
 * pipeline mode: what was deferred (the INSERTs included) is read first
 * (drain). A failure loses the rows, and they may be earlier commands':
 * held_lost tells the processor to run the batch again without holding.
 */
static int flush_held(struct cw_db *db, struct cw_error *err)
{
    if (!holding(db))
        return CW_OK;
    size_t n_commands = db->n_held_commands, n_events = db->n_held_events;
    /* First: the INSERTs name the log, and would flush the held rows again. */
    db->n_held_commands = db->n_held_events = 0;
    bool copy_commands = n_commands >= COPY_MIN_ROWS, copy_events = n_events >= COPY_MIN_ROWS;
    int rc = CW_OK;
    if (n_commands && !copy_commands)
        rc = insert_held(db, COMMAND_ROWS, COMMAND_ROW, &db->held_commands, n_commands, err);
    if (!rc && n_events && !copy_events)
        rc = insert_held(db, EVENT_ROWS, EVENT_ROW, &db->held_events, n_events, err);
    if (!rc && (copy_commands || copy_events))
        rc = drain(db, err);
    if (!rc && copy_commands)
        rc = copy_in(db, COMMAND_COPY, &db->held_commands, n_commands, err);
    if (!rc && copy_events)
        rc = copy_in(db, EVENT_COPY, &db->held_events, n_events, err);
    drop_held(db);
    if (rc)
        db->held_lost = true;
    return rc;
}

static void hold_events(struct cw_db *db, bool on)
{
    db->hold = on;
}

static bool held_lost(struct cw_db *db)
{
    return db->held_lost;
}

/* Keeps ev's row back, to go in with the others by COPY (flush_held). */
static int hold_event(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                      const char *meta_text, struct cw_error *err)
{
    struct cw_buf *b = &db->held_events;
    cw_pgcopy_row(b, 11);
    cw_pgcopy_int8(b, ev->position);
    cw_pgcopy_text(b, ev->uuid);
    cw_pgcopy_text(b, ev->command_uuid);
    cw_pgcopy_text(b, ev->name);
    cw_pgcopy_int8(b, ev->version); /* BIGINT: migrations make INTEGER so */
    cw_pgcopy_json(b, data_text, ev->data);
    cw_pgcopy_json(b, meta_text, ev->meta);
    cw_pgcopy_text(b, ev->user_uuid && *ev->user_uuid ? ev->user_uuid : NULL);
    cw_pgcopy_text(b, ev->client_id);
    cw_pgcopy_int8(b, ev->client_seq);
    cw_pgcopy_int8(b, ev->recorded_at);
    db->n_held_events++;
    return b->len < COPY_FLUSH_BYTES ? CW_OK : flush_held(db, err);
}

static int append_event(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                        const char *meta_text, struct cw_error *err)
{
    if (db->hold)
        return hold_event(db, ev, data_text, meta_text, err);
    /* Without holding, the row goes in now, alone, and its failure is its own. */
    struct cw_stmt *st = db_prepare(db, EVENT_INSERT, err);
    if (!st)
        return CW_ERR_STORE;
    bind_int(st, 1, ev->position);
    bind_text_static(st, 2, ev->uuid);
    bind_text_static(st, 3, ev->command_uuid);
    bind_text_static(st, 4, ev->name);
    bind_int(st, 5, ev->version);
    bind_json(st, 6, data_text, ev->data);
    bind_json(st, 7, meta_text, ev->meta);
    bind_text_static(st, 8, ev->user_uuid && *ev->user_uuid ? ev->user_uuid : NULL);
    bind_text_static(st, 9, ev->client_id);
    bind_int(st, 10, ev->client_seq);
    bind_int(st, 11, ev->recorded_at);
    return stmt_exec(st, err);
}

static int64_t total_changes(struct cw_db *db)
{
    return db->total_changes;
}

/* ------------------------------------------------------------- the lead */

/*
 * pg_try_advisory_lock is a lock of the session: it is held for as long
 * as this connection lives, and dies with it, so the server itself frees
 * it when a processor is killed. Kept apart from the batch path on purpose.
 */
static int try_lead(struct cw_db *db, int64_t key, bool *held, struct cw_error *err)
{
    *held = false;
    int rc = reconnect_if_lost(db, err);
    if (rc)
        return rc;
    if (db->lead_gen == db->gen) {
        *held = true;
        return CW_OK;
    }
    char sql[80];
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", (long long)key);
    PGresult *res = PQexec(db->conn, sql);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fail(db, res, err, "pg_try_advisory_lock");
        PQclear(res);
        return rc;
    }
    *held = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (*held)
        db->lead_gen = db->gen;
    return CW_OK;
}

static bool leads(struct cw_db *db)
{
    return db->lead_gen == db->gen && PQstatus(db->conn) == CONNECTION_OK && !db->lost;
}

const struct cw_store_backend cw_store_pg = {
    .name = "postgres",
    .try_lead = try_lead,
    .leads = leads,
    .open = store_open,
    .close = store_close,
    .migrate = store_migrate,
    .check_migrations = check_migrations,
    .finish_checkpoint = finish_checkpoint,
    .writer = store_writer,
    .reader_open = reader_open,
    .set_domain = set_domain,
    .db_close = db_close,
    .domain = db_domain,
    .prepare = db_prepare,
    .prepare_unbound = prepare_unbound,
    .begin = db_begin,
    .commit = db_commit,
    .rollback = db_rollback,
    .savepoint = db_savepoint,
    .release = db_release,
    .rollback_to = db_rollback_to,
    .snapshot_begin = snapshot_begin,
    .snapshot_end = snapshot_end,
    .hold_command = hold_command,
    .hold_events = hold_events,
    .held_lost = held_lost,
    .expect_commands = expect_commands,
    .blame_next = blame_next,
    .blamed = blamed,
    .append_event = append_event,
    .total_changes = total_changes,
    .run_script = run_script,
    .bind_text = bind_text,
    .bind_text_static = bind_text_static,
    .bind_int = bind_int,
    .bind_null = bind_null,
    .step = stmt_step,
    .exec = stmt_exec,
    .reset = stmt_reset,
    .changes = stmt_changes,
    .text = stmt_text,
    .integer = stmt_int,
    .is_null = stmt_is_null,
    .columns = stmt_columns,
    .column_name = stmt_column_name,
    .json = stmt_json,
};
