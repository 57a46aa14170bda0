/*
 * store_sqlite.c - the embedded store on SQLite (see store.h).
 *
 * WAL mode with synchronous=FULL: a commit is durable when it returns, and
 * readers work on their own connections without blocking the writer. Every
 * statement is prepared once per connection and cached by its SQL text.
 * SQLite result codes are translated here and nowhere else.
 */
#include "backend.h"
#include "walbuf.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/registry.h"
#include "core/strmap.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cw_stmt {
    const struct cw_store_backend *be; /* first: what db.c reads */
    sqlite3_stmt *st;
    struct cw_db *db;
    const char *sql; /* the cache's key */
    int64_t changes;
    bool stepped;          /* stepped since its last reset: needs one before its next use */
    bool touches_log;      /* reads or writes the events table: held-back rows go in first */
    bool touches_commands; /* the same for the command log */
};

/*
 * The processor's event rows are held back and inserted LOG_CHUNK at a
 * time: one statement for many rows saves most of SQLite's per-statement
 * work (cursors opened and closed, the program started and halted).
 */
#define LOG_CHUNK 64

/* An event row held back; strings are offsets into cw_db.held_text, SIZE_MAX for NULL. */
struct held_event {
    int64_t position, client_seq, recorded_at;
    int version;
    size_t uuid, command_uuid, name, data, meta, user_uuid, client_id;
};

/*
 * A command-log row held back (hold_commands); strings are offsets into
 * cw_db.held_cmd_text, SIZE_MAX for NULL. cmd says whose row it is, so that
 * the processor's correction of the outcome lands in it (update_held).
 */
struct held_command {
    const struct cw_command *cmd;
    int64_t client_seq, received_at, first_position, last_position;
    bool rejected;
    size_t uuid, user_uuid, client_id, name, data, meta, reject_code, reject_message;
};

#define FRONT_SLOTS 128 /* a power of two */

struct cw_db {
    const struct cw_store_backend *be; /* first: what db.c reads */
    sqlite3 *conn;
    struct cw_store *store;
    struct cw_strmap cache; /* SQL text -> struct cw_stmt *; keys owned */
    struct cw_buf scratch;  /* JSON text being bound */
    /*
     * Callers pass the same literal each time: a slot per address finds its
     * statement with one string compare instead of hashing the SQL text.
     * Two slots per address, as literals land wherever the linker puts them:
     * with one, two hot statements that collided (it happened after an
     * unrelated edit) cost a hash of the SQL text per use, 7 % of the
     * processor's instructions.
     */
    struct {
        const char *sql;
        struct cw_stmt *st;
    } front[FRONT_SLOTS];
    struct cw_db *next; /* in the store's list of open readers */
    /* Held-back event rows (hold_events); only ever on the writer. */
    bool hold;
    bool held_lost;     /* inserting held rows failed: the batch must run again */
    bool preparing_log; /* the authorizer saw the events table in the SQL being prepared */
    struct held_event held[LOG_CHUNK];
    size_t n_held;
    struct cw_buf held_text;
    /* Held-back command-log rows (hold_commands); only ever on the writer. */
    bool hold_cmds;
    bool preparing_commands; /* the authorizer saw the commands table */
    struct held_command held_cmds[LOG_CHUNK];
    size_t n_held_cmds;
    struct cw_buf held_cmd_text;
    /* The batch's key look-up (expect_commands): commands not to hold, and its table. */
    const struct cw_command **checked;
    size_t n_checked, cap_checked;
    struct key_group *groups;
    size_t groups_cap;
    unsigned groups_gen;
};

/*
 * Checkpoints run on their own thread and connection so that copying the
 * WAL back into the database never lengthens the processor's commits.
 */
/*
 * WAL frames (pages) that wake the checkpointer. Larger intervals copy hot
 * pages less often, but a bigger checkpoint's writes and fsync lengthen the
 * commits' own fsyncs on the same disk: 16384 measured worse tails.
 */
#define CHECKPOINT_FRAMES 4096
/*
 * The WAL restarts from its beginning only when a write transaction starts
 * with every frame copied back, which a checkpoint racing a busy writer
 * rarely sees: the thread used to chase the last commits with a checkpoint
 * (two fsyncs) per commit or two. It now leaves the last few frames to the
 * writer itself, between transactions (finish_checkpoint).
 */
#define TAIL_FRAMES    128 /* plus two commits' worth (see tail_limit) */
#define WRITER_BUSY_MS 100 /* a checkpoint's brief lock is waited out, not retried */

struct cw_store {
    const struct cw_store_backend *be; /* first: what db.c reads */
    char *path;
    struct cw_store_options opt;
    struct cw_db *writer;
    const struct cw_domain *domain;
    pthread_mutex_t lock;      /* {readers, the WAL's figures below, stopping} */
    pthread_cond_t checkpoint; /* signalled when the WAL has grown, or on close */
    struct cw_db *readers;
    int wal_frames;     /* in the WAL after the last commit */
    int backfilled;     /* of them copied into the database */
    int pass_frames;    /* wal_frames when the checkpointer last started */
    int commit_frames;  /* written by the last commit */
    unsigned wal_cycle; /* WAL restarts seen */
    bool tail_wanted;   /* the checkpointer left a few frames for the writer */
    bool stopping;
    bool checkpointer_running;
    pthread_t checkpointer;
    struct cw_db *checkpoint_db; /* the checkpointer thread's own connection */
};

/* The core schema, applied before any domain migration. */
static const char core_schema[] =
    "CREATE TABLE IF NOT EXISTS events ("
    " position INTEGER PRIMARY KEY,"
    " uuid TEXT NOT NULL UNIQUE,"
    " command_uuid TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " data TEXT NOT NULL,"
    " meta TEXT NOT NULL,"
    " user_uuid TEXT,"
    " client_id TEXT,"
    " client_seq INTEGER,"
    " recorded_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_by_user ON events(user_uuid, position);"
    "CREATE TABLE IF NOT EXISTS commands ("
    " uuid TEXT PRIMARY KEY,"
    " user_uuid TEXT NOT NULL,"
    " client_id TEXT NOT NULL,"
    " client_seq INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " meta TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " outcome TEXT NOT NULL,"
    " first_position INTEGER,"
    " last_position INTEGER,"
    " reject_code TEXT,"
    " reject_message TEXT,"
    " UNIQUE (user_uuid, client_id, client_seq));"
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " id TEXT PRIMARY KEY,"
    " applied_at INTEGER NOT NULL);";

/*
 * The command log without its uuid key. Nothing looks a command up by uuid
 * (duplicates are found by the idempotency key, outcomes corrected by it),
 * and the key's B-tree was one of the eight each visit-page wrote: about
 * 7 % of the processor's instructions per command. The uuid stays a column.
 * Rows are copied in rowid order, so the log keeps its order.
 */
static const char core_commands_by_key[] =
    "CREATE TABLE commands_new ("
    " uuid TEXT NOT NULL,"
    " user_uuid TEXT NOT NULL,"
    " client_id TEXT NOT NULL,"
    " client_seq INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " meta TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " outcome TEXT NOT NULL,"
    " first_position INTEGER,"
    " last_position INTEGER,"
    " reject_code TEXT,"
    " reject_message TEXT,"
    " UNIQUE (user_uuid, client_id, client_seq));"
    "INSERT INTO commands_new(uuid, user_uuid, client_id, client_seq, name, data, meta,"
    " received_at, outcome, first_position, last_position, reject_code, reject_message)"
    " SELECT uuid, user_uuid, client_id, client_seq, name, data, meta, received_at, outcome,"
    " first_position, last_position, reject_code, reject_message FROM commands ORDER BY rowid;"
    "DROP TABLE commands;"
    "ALTER TABLE commands_new RENAME TO commands;";

/* The core's migrations, in order; applied before any domain's. Never edit one. */
static const struct cw_migration core_migrations[] = {
    {.id = "core:001-log", .sql = core_schema},
    {.id = "core:002-commands-by-key", .sql = core_commands_by_key},
};

static int flush_held(struct cw_db *db, struct cw_error *err);
static int flush_commands(struct cw_db *db, struct cw_error *err);
static void db_close(struct cw_db *db);
static void db_rollback(struct cw_db *db);
static void store_close(struct cw_store *s);
static struct cw_stmt *db_prepare(struct cw_db *db, const char *sql, struct cw_error *err);
static int stmt_step(struct cw_stmt *st, struct cw_error *err);
static void stmt_reset(struct cw_stmt *st);
static int64_t stmt_int(struct cw_stmt *st, int col);
static int bind_int(struct cw_stmt *st, int idx, int64_t value);
static int bind_null(struct cw_stmt *st, int idx);
static int bind_text(struct cw_stmt *st, int idx, const char *text);
static int bind_text_static(struct cw_stmt *st, int idx, const char *text);

/* ------------------------------------------------------------- errors */

static bool transient(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        return true;
    default:
        return false;
    }
}

/*
 * A full disk (or quota) shows as SQLITE_FULL, or as an I/O error whose
 * system errno says so (a failed write of the WAL at commit, an extension
 * of the shared-memory index).
 */
static bool disk_full(sqlite3 *conn, int code)
{
    if ((code & 0xff) == SQLITE_FULL)
        return true;
    int e = conn && (code & 0xff) == SQLITE_IOERR ? sqlite3_system_errno(conn) : 0;
    return e == ENOSPC || e == EDQUOT;
}

/* Translates a SQLite failure on conn into CW_ERR_AGAIN or CW_ERR_STORE. */
static int fail(sqlite3 *conn, int code, struct cw_error *err, const char *what)
{
    int rc = transient(code) ? CW_ERR_AGAIN : CW_ERR_STORE;
    return cw_error_set(err, rc, disk_full(conn, code) ? CW_STORE_DISK_FULL : "internal-error",
                        "%s: %s", what, conn ? sqlite3_errmsg(conn) : sqlite3_errstr(code));
}

/* ---------------------------------------------------------- connections */

static int exec_sql(struct cw_db *db, const char *sql, struct cw_error *err)
{
    int rc = sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CW_OK : fail(db->conn, rc, err, "exec");
}

/* Notes, while a statement is prepared, whether it reads or writes the events table. */
static int on_authorize(void *arg, int action, const char *table, const char *column,
                        const char *schema, const char *trigger)
{
    struct cw_db *db = arg;
    if (table && strcmp(table, "events") == 0)
        db->preparing_log = true;
    if (table && strcmp(table, "commands") == 0)
        db->preparing_commands = true;
    return SQLITE_OK;
}

static int connect(struct cw_store *s, bool writer, struct cw_db **out, struct cw_error *err)
{
    int flags = SQLITE_OPEN_NOMUTEX;
    if (s->opt.read_only)
        flags |= SQLITE_OPEN_READONLY;
    else
        flags |= SQLITE_OPEN_READWRITE | (s->opt.no_create ? 0 : SQLITE_OPEN_CREATE);
    struct cw_db *db = cw_xcalloc(1, sizeof(*db));
    db->be = &cw_store_sqlite;
    db->store = s;
    cw_strmap_init(&db->cache);
    int rc = sqlite3_open_v2(s->path, &db->conn, flags, cw_walbuf_vfs());
    if (rc != SQLITE_OK) {
        rc = cw_error_set(err, rc == SQLITE_CANTOPEN ? CW_ERR_NOT_FOUND : CW_ERR_STORE, NULL,
                          "cannot open database %s: %s", s->path, sqlite3_errstr(rc));
        db_close(db);
        return rc;
    }
    sqlite3_extended_result_codes(db->conn, 1);
    sqlite3_set_authorizer(db->conn, on_authorize, db);
    /*
     * The writer waits briefly inside SQLite (the checkpointer can hold a WAL
     * lock for a moment); anything longer is the processor's retry loop's.
     */
    sqlite3_busy_timeout(db->conn, writer ? WRITER_BUSY_MS : s->opt.busy_ms);
    const char *pragmas =
        s->opt.read_only
            ? "PRAGMA query_only=1;"
            : "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
              "PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;"
              "PRAGMA temp_store=MEMORY;";
    rc = exec_sql(db, pragmas, err);
    if (rc) {
        db_close(db);
        return rc;
    }
    *out = db;
    return CW_OK;
}

/*
 * {lock} The most the writer copies itself. Under heavy load a pass never
 * ends with less than the commits made while it ran, so the limit grows
 * with the commits' size.
 */
static int tail_limit(const struct cw_store *s)
{
    return TAIL_FRAMES + 2 * s->commit_frames;
}

/* {lock} Is there more than a tail for the checkpointer, and news since its last pass? */
static bool pass_due(const struct cw_store *s)
{
    return s->wal_frames >= s->opt.checkpoint_frames &&
           s->wal_frames - s->backfilled > tail_limit(s) && s->wal_frames > s->pass_frames;
}

/* The writer's commit hook: notes the WAL's length, wakes the checkpointer when due. */
static int on_wal_commit(void *arg, sqlite3 *conn, const char *name, int frames)
{
    struct cw_store *s = arg;
    pthread_mutex_lock(&s->lock);
    if (frames < s->wal_frames) { /* restarted from its beginning */
        s->wal_cycle++;
        s->backfilled = s->pass_frames = 0;
        s->tail_wanted = false;
        s->commit_frames = frames;
    } else {
        s->commit_frames = frames - s->wal_frames;
    }
    s->wal_frames = frames;
    if (pass_due(s))
        pthread_cond_signal(&s->checkpoint);
    pthread_mutex_unlock(&s->lock);
    return SQLITE_OK;
}

/*
 * {lock, held on return} A PASSIVE checkpoint on db: copies what no reader
 * still needs, never blocks the writer. Returns the frames still to copy,
 * commits made meanwhile included; -1 when it failed or the WAL restarted.
 */
static int checkpoint_passive(struct cw_store *s, struct cw_db *db)
{
    unsigned cycle = s->wal_cycle;
    pthread_mutex_unlock(&s->lock);
    int copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db->conn, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, &copied);
    pthread_mutex_lock(&s->lock);
    if (rc != SQLITE_OK || cycle != s->wal_cycle)
        return -1;
    s->backfilled = copied; /* the WAL's own count, right even if a restart went unseen */
    return s->wal_frames - s->backfilled;
}

static void *run_checkpoints(void *arg)
{
    struct cw_store *s = arg;
    pthread_setname_np(pthread_self(), "cw-checkpoint");
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (!pass_due(s)) {
            pthread_cond_wait(&s->checkpoint, &s->lock);
            continue;
        }
        s->pass_frames = s->wal_frames;
        int left = checkpoint_passive(s, s->checkpoint_db);
        /* More than a tail left: the next commit wakes this thread again. */
        s->tail_wanted = left > 0 && left <= tail_limit(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * {lock} The WAL is far ahead of what the checkpointer has copied back (it
 * is starved of CPU, or a long pass lags a busy writer): the writer copies
 * itself, so the WAL grows no faster than pages are copied, instead of
 * until the disk is full of it.
 */
static bool writer_must_copy(const struct cw_store *s)
{
    return s->wal_frames - s->backfilled > 4 * s->opt.checkpoint_frames + tail_limit(s);
}

static void finish_checkpoint(struct cw_store *s)
{
    if (!s->checkpointer_running)
        return;
    pthread_mutex_lock(&s->lock);
    if ((s->tail_wanted && s->wal_frames - s->backfilled <= 2 * tail_limit(s)) ||
        writer_must_copy(s)) {
        s->tail_wanted = false;
        checkpoint_passive(s, s->writer);
    }
    pthread_mutex_unlock(&s->lock);
}

static void start_checkpointer(struct cw_store *s)
{
    sqlite3_exec(s->writer->conn, "PRAGMA wal_autocheckpoint=0;", NULL, NULL, NULL);
    sqlite3_wal_hook(s->writer->conn, on_wal_commit, s);
    /* Connected here, not on the thread: its set-up must not race the first migration. */
    s->checkpointer_running = connect(s, false, &s->checkpoint_db, NULL) == CW_OK &&
                              pthread_create(&s->checkpointer, NULL, run_checkpoints, s) == 0;
    if (!s->checkpointer_running) { /* fall back to checkpoints in the committing thread */
        db_close(s->checkpoint_db);
        s->checkpoint_db = NULL;
        sqlite3_wal_autocheckpoint(s->writer->conn, 1000);
    }
}

static void stop_checkpointer(struct cw_store *s)
{
    if (!s->checkpointer_running)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->checkpoint);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->checkpointer, NULL);
    s->checkpointer_running = false;
    db_close(s->checkpoint_db);
    s->checkpoint_db = NULL;
    /* Leave a short WAL behind for the next start. */
    sqlite3_wal_checkpoint_v2(s->writer->conn, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* Process-wide SQLite settings, before any connection exists. */
static void configure_once(void)
{
    /* Memory statistics take a global mutex on every allocation; nothing reads them. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

const char *cw_store_sqlite_version(void)
{
    return sqlite3_libversion();
}

static int store_open(const char *path, const struct cw_store_options *opt, struct cw_store **out,
                      struct cw_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_once);
    struct cw_store *s = cw_xcalloc(1, sizeof(*s));
    s->be = &cw_store_sqlite;
    s->path = cw_xstrdup(path);
    if (opt)
        s->opt = *opt;
    if (!s->opt.busy_ms)
        s->opt.busy_ms = 5000;
    if (!s->opt.checkpoint_frames)
        s->opt.checkpoint_frames = CHECKPOINT_FRAMES;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->checkpoint, NULL);
    struct stat sb;
    if ((s->opt.no_create || s->opt.read_only) && stat(path, &sb) != 0) {
        int rc = cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "no database at %s", path);
        store_close(s);
        return rc;
    }
    int rc = connect(s, !s->opt.read_only, &s->writer, err);
    if (rc) {
        store_close(s);
        return rc;
    }
    if (!s->opt.read_only)
        start_checkpointer(s);
    *out = s;
    return CW_OK;
}

static void db_close(struct cw_db *db)
{
    if (!db)
        return;
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
    for (size_t i = 0; i < db->cache.cap; i++) {
        if (!db->cache.keys[i])
            continue;
        struct cw_stmt *st = db->cache.values[i];
        sqlite3_finalize(st->st);
        free(st);
        free((char *)db->cache.keys[i]);
    }
    cw_strmap_release(&db->cache);
    cw_buf_release(&db->scratch);
    cw_buf_release(&db->held_text);
    cw_buf_release(&db->held_cmd_text);
    free(db->checked);
    free(db->groups);
    sqlite3_close(db->conn);
    free(db);
}

static void store_close(struct cw_store *s)
{
    if (!s)
        return;
    stop_checkpointer(s);
    while (s->readers)
        db_close(s->readers);
    struct cw_db *w = s->writer;
    s->writer = NULL;
    if (w) {
        w->store = NULL;
        db_close(w);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->checkpoint);
    free(s->path);
    free(s);
}

static struct cw_db *store_writer(struct cw_store *s)
{
    return s->writer;
}

static int reader_open(struct cw_store *s, struct cw_db **out, struct cw_error *err)
{
    struct cw_db *db;
    int rc = connect(s, false, &db, err);
    if (rc)
        return rc;
    exec_sql(db, "PRAGMA query_only=1;", NULL);
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

/* ----------------------------------------------------------- statements */

static size_t front_slot(const char *sql)
{
    /* Fibonacci hashing: the address's middle bits spread over the table. */
    return (size_t)(((uintptr_t)sql * 0x9E3779B97F4A7C15ull) >> 32) & (FRONT_SLOTS - 1);
}

static struct cw_stmt *front_get(struct cw_db *db, const char *sql)
{
    size_t h = front_slot(sql);
    for (size_t k = 0; k < 2; k++) {
        size_t i = (h + k) & (FRONT_SLOTS - 1);
        /* The same address may hold other text (a reused buffer): compare it. */
        if (db->front[i].sql == sql && strcmp(db->front[i].st->sql, sql) == 0)
            return db->front[i].st;
    }
    return NULL;
}

/* Keeps the first slot's statement when it is another's and the second is taken. */
static void front_put(struct cw_db *db, const char *sql, struct cw_stmt *st)
{
    size_t h = front_slot(sql);
    size_t i = db->front[h].sql && db->front[h].sql != sql ? (h + 1) & (FRONT_SLOTS - 1) : h;
    db->front[i].sql = sql;
    db->front[i].st = st;
}

/*
 * The cached statement for sql, reset, its old bindings still in place:
 * for the store's own statements, which bind every parameter on each use.
 */
static struct cw_stmt *prepare_unbound(struct cw_db *db, const char *sql, struct cw_error *err)
{
    struct cw_stmt *st = front_get(db, sql);
    if (!st) {
        st = cw_strmap_get(&db->cache, sql);
        if (st)
            front_put(db, sql, st);
    }
    if (st) {
        /* Most uses ran to their end, which reset them: a second reset showed in profiles. */
        if (st->stepped) {
            sqlite3_reset(st->st);
            st->stepped = false;
        }
        st->changes = 0;
        return st;
    }
    sqlite3_stmt *raw;
    db->preparing_log = db->preparing_commands = false;
    int rc = sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, NULL);
    if (rc != SQLITE_OK) {
        fail(db->conn, rc, err, "prepare");
        return NULL;
    }
    st = cw_xcalloc(1, sizeof(*st));
    st->be = &cw_store_sqlite;
    st->st = raw;
    st->db = db;
    st->sql = cw_xstrdup(sql);
    st->touches_log = db->preparing_log;
    st->touches_commands = db->preparing_commands;
    cw_strmap_put(&db->cache, st->sql, st);
    front_put(db, sql, st);
    return st;
}

static struct cw_stmt *db_prepare(struct cw_db *db, const char *sql, struct cw_error *err)
{
    struct cw_stmt *st = prepare_unbound(db, sql, err);
    if (st)
        sqlite3_clear_bindings(st->st); /* a parameter left unbound reads NULL */
    return st;
}

static int bind_rc(struct cw_stmt *st, int rc)
{
    return rc == SQLITE_OK ? CW_OK : fail(st->db->conn, rc, NULL, "bind");
}

static int bind_text(struct cw_stmt *st, int idx, const char *text)
{
    if (!text)
        return bind_null(st, idx);
    return bind_rc(st, sqlite3_bind_text(st->st, idx, text, -1, SQLITE_TRANSIENT));
}

static int bind_text_static(struct cw_stmt *st, int idx, const char *text)
{
    if (!text)
        return bind_null(st, idx);
    return bind_rc(st, sqlite3_bind_text(st->st, idx, text, -1, SQLITE_STATIC));
}

static int bind_int(struct cw_stmt *st, int idx, int64_t value)
{
    return bind_rc(st, sqlite3_bind_int64(st->st, idx, value));
}

static int bind_null(struct cw_stmt *st, int idx)
{
    return bind_rc(st, sqlite3_bind_null(st->st, idx));
}

/*
 * Held rows failed to go in and SQLite rolled the transaction back with
 * them (OR ROLLBACK, or an I/O error without a statement journal): any
 * statement now would run in autocommit mode, outside the batch, and be
 * durable on its own. Refused until the processor's next BEGIN.
 */
static bool transaction_lost(const struct cw_db *db)
{
    return db->held_lost && sqlite3_get_autocommit(db->conn);
}

static int stmt_step(struct cw_stmt *st, struct cw_error *err)
{
    if (st->db->held_lost && transaction_lost(st->db))
        return cw_error_set(err, CW_ERR_STORE, "internal-error",
                            "the transaction was rolled back with event rows that failed to go in");
    if (st->touches_log && st->db->n_held) {
        int flushed = flush_held(st->db, err);
        if (flushed)
            return flushed;
    }
    if (st->touches_commands && st->db->n_held_cmds) {
        int flushed = flush_commands(st->db, err);
        if (flushed)
            return flushed;
    }
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_ROW) {
        st->stepped = true;
        return CW_ROW;
    }
    if (rc == SQLITE_DONE) {
        st->changes = sqlite3_changes64(st->db->conn);
        sqlite3_reset(st->st);
        return CW_DONE;
    }
    rc = fail(st->db->conn, rc, err, "step");
    sqlite3_reset(st->st);
    return rc;
}

static void stmt_reset(struct cw_stmt *st)
{
    sqlite3_reset(st->st);
    st->stepped = false;
}

static int64_t stmt_changes(struct cw_stmt *st)
{
    return st->changes;
}

static const char *stmt_text(struct cw_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st->st, col);
}

static int64_t stmt_int(struct cw_stmt *st, int col)
{
    return sqlite3_column_int64(st->st, col);
}

static bool stmt_is_null(struct cw_stmt *st, int col)
{
    return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

static int stmt_columns(struct cw_stmt *st)
{
    return sqlite3_column_count(st->st);
}

static const char *stmt_column_name(struct cw_stmt *st, int col)
{
    return sqlite3_column_name(st->st, col);
}

/* A JSON value for column col of the current row: integer, text or null. */
static json_t *stmt_json(struct cw_stmt *st, int col)
{
    switch (sqlite3_column_type(st->st, col)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st->st, col));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st->st, col));
    case SQLITE_NULL:
        return json_null();
    default:
        return json_stringn((const char *)sqlite3_column_text(st->st, col),
                            (size_t)sqlite3_column_bytes(st->st, col));
    }
}

/* --------------------------------------------------------- transactions */

/* Runs one cached statement that returns no rows. */
static int run(struct cw_db *db, const char *sql, struct cw_error *err)
{
    struct cw_stmt *st = db_prepare(db, sql, err);
    if (!st)
        return CW_ERR_STORE;
    int rc = stmt_step(st, err);
    if (rc == CW_ROW)
        stmt_reset(st); /* an open statement would pin the reader's snapshot */
    return rc == CW_DONE || rc == CW_ROW ? CW_OK : rc;
}

/* Forgets the held rows: the transaction or savepoint they belong to is undone. */
static void drop_held(struct cw_db *db)
{
    db->n_held = 0;
    cw_buf_reset(&db->held_text);
    db->n_held_cmds = 0;
    cw_buf_reset(&db->held_cmd_text);
}

/* Both kinds of held rows in: before a savepoint or the commit. */
static int flush_all(struct cw_db *db, struct cw_error *err)
{
    int rc = flush_held(db, err);
    return rc ? rc : flush_commands(db, err);
}

static int db_begin(struct cw_db *db, struct cw_error *err)
{
    drop_held(db);
    db->held_lost = false;
    db->n_checked = 0;
    return run(db, "BEGIN IMMEDIATE", err);
}

static int db_commit(struct cw_db *db, struct cw_error *err)
{
    int rc = flush_all(db, err);
    return rc ? rc : run(db, "COMMIT", err);
}

/*
 * After a transaction the disk refused: a WAL that a lagging checkpointer let
 * grow past its checkpoint length keeps that size, and may be what fills the
 * disk. Copy it all back and truncate it, which gives its space to the next
 * attempt (best effort: busy readers make it wait, then fail). A WAL of its
 * usual length is left alone: it is reused from its start when it restarts.
 */
static void reclaim_wal(struct cw_db *db)
{
    struct cw_store *s = db->store;
    pthread_mutex_lock(&s->lock);
    bool overgrown = s->wal_frames > s->opt.checkpoint_frames;
    pthread_mutex_unlock(&s->lock);
    if (overgrown)
        sqlite3_wal_checkpoint_v2(db->conn, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static void db_rollback(struct cw_db *db)
{
    bool full = disk_full(db->conn, sqlite3_extended_errcode(db->conn));
    drop_held(db);
    if (!sqlite3_get_autocommit(db->conn))
        run(db, "ROLLBACK", NULL);
    if (full && db == db->store->writer)
        reclaim_wal(db);
}

static int db_savepoint(struct cw_db *db, struct cw_error *err)
{
    /* What is held belongs to earlier commands: in before the savepoint, so it survives it. */
    int rc = flush_all(db, err);
    return rc ? rc : run(db, "SAVEPOINT cmd", err);
}

static int db_release(struct cw_db *db, struct cw_error *err)
{
    return run(db, "RELEASE cmd", err);
}

static void db_rollback_to(struct cw_db *db)
{
    drop_held(db); /* all of it written since the savepoint */
    run(db, "ROLLBACK TO cmd", NULL);
    run(db, "RELEASE cmd", NULL);
}

static int snapshot_begin(struct cw_db *db, struct cw_error *err)
{
    /* A deferred transaction takes its snapshot at the first read: make one now. */
    int rc = run(db, "BEGIN", err);
    if (!rc)
        rc = run(db, "SELECT 1 FROM schema_migrations LIMIT 1", err);
    if (rc)
        db_rollback(db);
    return rc;
}

static void snapshot_end(struct cw_db *db)
{
    db_rollback(db);
}

/* ----------------------------------------------------------- migrations */

/* A migration's SQL: several statements, run as they are. */
static int run_script(struct cw_db *db, const char *sql, struct cw_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) == SQLITE_OK)
        return CW_OK;
    cw_error_set(err, CW_ERR_STORE, NULL, "%s", msg ? msg : "unknown error");
    sqlite3_free(msg);
    return CW_ERR_STORE;
}

static struct cw_known_migrations known_migrations(const struct cw_domain *d)
{
    return (struct cw_known_migrations){
        core_migrations, sizeof(core_migrations) / sizeof(core_migrations[0]), d, false};
}

static int check_migrations(struct cw_store *s, const struct cw_domain *d, int *n_pending,
                            char *first_pending, size_t len, struct cw_error *err)
{
    int64_t has_table = 0;
    int rc = cw_db_query_int(s->writer, &has_table, err,
                             "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
                             " AND name = 'schema_migrations'",
                             "");
    struct cw_known_migrations k = known_migrations(d);
    return rc ? rc
              : cw_known_check(&k, s->writer, has_table, s->path, n_pending, first_pending, len,
                               err);
}

static int store_migrate(struct cw_store *s, const struct cw_domain *d, int *n_applied,
                         struct cw_error *err)
{
    struct cw_db *db = s->writer;
    if (n_applied)
        *n_applied = 0;
    if (s->opt.read_only)
        return cw_error_set(err, CW_ERR_STORE, NULL, "database %s is open read-only", s->path);
    int pending;
    int rc = check_migrations(s, d, &pending, NULL, 0, err);
    if (rc || !pending)
        return rc;
    /* The table that records migrations must exist before the first lookup. */
    rc = exec_sql(db,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);",
                  err);
    struct cw_known_migrations k = known_migrations(d);
    return rc ? rc : cw_known_apply(&k, db, n_applied, err);
}

/* --------------------------------------------------------- command log */

/* The store's own statements: their arguments all outlive the step that reads them. */
static void bind_static(struct cw_stmt *st, int idx, const char *text)
{
    bind_text_static(st, idx, text);
}

/* Binds text, or v serialised through buf when text is NULL (an absent v reads {}). */
static void bind_json(struct cw_stmt *st, int idx, const char *text, const json_t *v,
                      struct cw_buf *buf)
{
    if (!text) {
        cw_buf_reset(buf);
        if (v)
            cw_json_add(buf, v);
        else
            cw_buf_adds(buf, "{}");
        text = cw_buf_cstr(buf);
    }
    sqlite3_bind_text(st->st, idx, text, -1, text == buf->data ? SQLITE_TRANSIENT : SQLITE_STATIC);
}

static int64_t total_changes(struct cw_db *db)
{
    return sqlite3_total_changes64(db->conn);
}

#define EVENT_INSERT "INSERT INTO events(" CW_EVENT_COLUMNS ") VALUES "
/*
 * A statement that writes many rows and may stop half-way on a constraint
 * makes SQLite keep a statement journal: a copy of every page the chunk
 * touches, so that it can undo the chunk alone (3 % of the processor's
 * instructions, most of it malloc and memcpy). The processor never needs
 * that: a chunk that fails loses its rows (held_lost) and the whole batch
 * is rolled back and run again. OR ROLLBACK says so, and SQLite then keeps
 * no statement journal; the transaction is gone when it fails, so stmt_step
 * refuses to run anything more on it (see transaction_lost).
 */
#define CHUNK_INSERT "INSERT OR ROLLBACK INTO events(" CW_EVENT_COLUMNS ") VALUES "
#define EVENT_ROW    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define EVENT_PARAMS 11
static const char one_row_sql[] = EVENT_INSERT EVENT_ROW;
static char chunk_sql[sizeof(CHUNK_INSERT) + LOG_CHUNK * sizeof(EVENT_ROW)];
static pthread_once_t chunk_once = PTHREAD_ONCE_INIT;

static void build_chunk_sql(void)
{
    strcpy(chunk_sql, CHUNK_INSERT EVENT_ROW);
    for (int i = 1; i < LOG_CHUNK; i++)
        strcat(chunk_sql, "," EVENT_ROW);
}

/* Binds one event row from parameter base + 1 on. */
static void bind_event(struct cw_stmt *st, int base, const struct cw_event *ev,
                       const char *data_text, const char *meta_text)
{
    bind_int(st, base + 1, ev->position);
    bind_static(st, base + 2, ev->uuid);
    bind_static(st, base + 3, ev->command_uuid);
    bind_static(st, base + 4, ev->name);
    bind_int(st, base + 5, ev->version);
    bind_static(st, base + 6, data_text);
    bind_static(st, base + 7, meta_text);
    bind_static(st, base + 8, ev->user_uuid && *ev->user_uuid ? ev->user_uuid : NULL);
    bind_static(st, base + 9, ev->client_id);
    bind_int(st, base + 10, ev->client_seq);
    bind_int(st, base + 11, ev->recorded_at);
}

static const char *held_str(const struct cw_buf *t, size_t off)
{
    return off == SIZE_MAX ? NULL : t->data + off;
}

/* Copies s, with its NUL, into the held text t; SIZE_MAX stands for NULL. */
static size_t hold_str(struct cw_buf *t, const char *s)
{
    size_t off = t->len;
    if (!s)
        return SIZE_MAX;
    cw_buf_add(t, s, strlen(s) + 1);
    return off;
}

/* As hold_str for a JSON column: text, or v serialised (an absent v reads {}). */
static size_t hold_json(struct cw_buf *t, const char *text, const json_t *v)
{
    if (text)
        return hold_str(t, text);
    size_t off = t->len;
    if (v)
        cw_json_add(t, v);
    else
        cw_buf_adds(t, "{}");
    cw_buf_add(t, "", 1);
    return off;
}

static void hold_event(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                       const char *meta_text)
{
    struct held_event *h = &db->held[db->n_held++];
    h->position = ev->position;
    h->client_seq = ev->client_seq;
    h->recorded_at = ev->recorded_at;
    h->version = ev->version;
    struct cw_buf *t = &db->held_text;
    h->uuid = hold_str(t, ev->uuid);
    h->command_uuid = hold_str(t, ev->command_uuid);
    h->name = hold_str(t, ev->name);
    h->data = hold_json(t, data_text, ev->data);
    h->meta = hold_json(t, meta_text, ev->meta);
    h->user_uuid = hold_str(t, ev->user_uuid);
    h->client_id = hold_str(t, ev->client_id);
}

/* The held row i as an event to bind (its strings inside held_text). */
static struct cw_event held_event(const struct cw_db *db, size_t i, const char **data,
                                  const char **meta)
{
    const struct held_event *h = &db->held[i];
    const struct cw_buf *t = &db->held_text;
    *data = held_str(t, h->data);
    *meta = held_str(t, h->meta);
    return (struct cw_event){.position = h->position,
                             .uuid = held_str(t, h->uuid),
                             .command_uuid = held_str(t, h->command_uuid),
                             .name = held_str(t, h->name),
                             .version = h->version,
                             .user_uuid = held_str(t, h->user_uuid),
                             .client_id = held_str(t, h->client_id),
                             .client_seq = h->client_seq,
                             .recorded_at = h->recorded_at};
}

/*
 * The statements of a kind of held row: shapes[k] inserts rows[k] rows
 * (largest first, the last 1), each row binding `params` parameters.
 */
struct held_shapes {
    const size_t *rows;
    const char *const *sql;
    int params;
    void (*bind)(struct cw_db *db, struct cw_stmt *st, int base, size_t i);
};

/*
 * Inserts n held rows in order, each statement the largest shape that the
 * rows left fill. A failure loses them, and they may be earlier commands'
 * rows: held_lost tells the processor to run the batch again without
 * holding.
 */
static int insert_held(struct cw_db *db, const struct held_shapes *h, size_t n,
                       struct cw_error *err)
{
    int rc = CW_OK;
    for (size_t i = 0, k = 0; !rc && i < n;) {
        while (n - i < h->rows[k])
            k++;
        struct cw_stmt *st = prepare_unbound(db, h->sql[k], err);
        if (!st) {
            rc = CW_ERR_STORE;
            break;
        }
        for (size_t r = 0; r < h->rows[k]; r++)
            h->bind(db, st, (int)r * h->params, i + r);
        rc = stmt_step(st, err);
        rc = rc == CW_DONE ? CW_OK : rc;
        i += h->rows[k];
    }
    if (rc)
        db->held_lost = true;
    return rc;
}

static void bind_held_event(struct cw_db *db, struct cw_stmt *st, int base, size_t i)
{
    const char *data, *meta;
    struct cw_event ev = held_event(db, i, &data, &meta);
    bind_event(st, base, &ev, data, meta);
}

/* The held event rows, in position order: a full chunk with one statement, fewer one by one. */
static int flush_held(struct cw_db *db, struct cw_error *err)
{
    static const size_t rows[] = {LOG_CHUNK, 1};
    static const char *const sql[] = {chunk_sql, one_row_sql};
    static const struct held_shapes shapes = {rows, sql, EVENT_PARAMS, bind_held_event};
    size_t n = db->n_held;
    db->n_held = 0; /* first: the inserts touch the log themselves */
    pthread_once(&chunk_once, build_chunk_sql);
    int rc = insert_held(db, &shapes, n, err);
    cw_buf_reset(&db->held_text);
    return rc;
}

static void hold_events(struct cw_db *db, bool on)
{
    db->hold = on;
}

/* --------------------------------------------------- held command rows */

/*
 * The processor's command-log rows, held back like the events and
 * inserted LOG_CHUNK (or 16, 4, 1) to a statement: a single-row INSERT
 * per command paid SQLite's per-statement work (program start and halt,
 * cursors and record buffers allocated and freed) for every command.
 *
 * The single-row INSERT is the idempotency check (ON CONFLICT DO NOTHING,
 * no row: a duplicate). A held row is not: the batch's keys are looked up
 * first (expect_commands) and a command whose key the log or an earlier
 * command of the batch holds is not held, so a resend still meets the
 * check before its handler runs. Should a held key clash all the same,
 * the chunk fails, OR ROLLBACK ends the transaction (and spares SQLite a
 * statement journal), the rows are lost (held_lost) and the processor
 * runs the batch again in safe mode, which holds nothing.
 */
#define COMMAND_INSERT "INSERT OR ROLLBACK INTO commands(" CW_COMMAND_COLUMNS ") VALUES "
#define COMMAND_ROW    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define COMMAND_PARAMS 13
#define COMMAND_SHAPES 4
static const size_t command_rows[COMMAND_SHAPES] = {LOG_CHUNK, 16, 4, 1};
static char command_sql[COMMAND_SHAPES][sizeof(COMMAND_INSERT) + LOG_CHUNK * sizeof(COMMAND_ROW)];
static pthread_once_t command_once = PTHREAD_ONCE_INIT;

static void build_command_sql(void)
{
    for (size_t k = 0; k < COMMAND_SHAPES; k++) {
        strcpy(command_sql[k], COMMAND_INSERT COMMAND_ROW);
        for (size_t i = 1; i < command_rows[k]; i++)
            strcat(command_sql[k], "," COMMAND_ROW);
    }
}

/* Writes rec's outcome into h (its strings into the held text). */
static void set_outcome(struct cw_db *db, struct held_command *h,
                        const struct cw_command_record *rec)
{
    struct cw_buf *t = &db->held_cmd_text;
    h->rejected = rec->rejected;
    h->first_position = rec->first_position;
    h->last_position = rec->last_position;
    h->reject_code = rec->rejected ? hold_str(t, rec->reject_code) : SIZE_MAX;
    h->reject_message = rec->rejected ? hold_str(t, rec->reject_message) : SIZE_MAX;
}

/* Binds held command row i from parameter base + 1 on, in CW_COMMAND_COLUMNS order. */
static void bind_command(struct cw_db *db, struct cw_stmt *st, int base, size_t i)
{
    const struct cw_buf *t = &db->held_cmd_text;
    const struct held_command *h = &db->held_cmds[i];
    bind_static(st, base + 1, held_str(t, h->uuid));
    bind_static(st, base + 2, held_str(t, h->user_uuid));
    bind_static(st, base + 3, held_str(t, h->client_id));
    bind_int(st, base + 4, h->client_seq);
    bind_static(st, base + 5, held_str(t, h->name));
    bind_static(st, base + 6, held_str(t, h->data));
    bind_static(st, base + 7, held_str(t, h->meta));
    bind_int(st, base + 8, h->received_at);
    bind_static(st, base + 9, h->rejected ? "rejected" : "ok");
    if (h->first_position) {
        bind_int(st, base + 10, h->first_position);
        bind_int(st, base + 11, h->last_position);
    } else {
        bind_null(st, base + 10);
        bind_null(st, base + 11);
    }
    bind_static(st, base + 12, held_str(t, h->reject_code));
    bind_static(st, base + 13, held_str(t, h->reject_message));
}

/*
 * Inserts the held command rows in order, as few statements as the
 * shapes allow. A failure (a duplicate key among them) loses them:
 * held_lost, as for event rows.
 */
static int flush_commands(struct cw_db *db, struct cw_error *err)
{
    static const char *const sql[] = {command_sql[0], command_sql[1], command_sql[2],
                                      command_sql[3]};
    _Static_assert(sizeof(sql) / sizeof(*sql) == COMMAND_SHAPES, "a statement for every shape");
    static const struct held_shapes shapes = {command_rows, sql, COMMAND_PARAMS, bind_command};
    size_t n = db->n_held_cmds;
    db->n_held_cmds = 0; /* first: the inserts touch the command log themselves */
    pthread_once(&command_once, build_command_sql);
    int rc = insert_held(db, &shapes, n, err);
    cw_buf_reset(&db->held_cmd_text);
    return rc;
}

/*
 * The batch's idempotency keys, looked up before any command runs, so that
 * a resend is never held: it goes through the insert that is the check,
 * and is answered from the log without reaching its handler. Commands are
 * grouped by (user, client); each group is one range look-up of the
 * client's sequence numbers. A group whose sequence does not rise within
 * the batch (a resend while the original is still queued) has its later
 * commands checked too. With many groups of few commands the look-ups
 * would cost what holding saves, and a range much wider than its
 * commands (an old sequence number resent among new ones) would read
 * rows of the log nobody asked about: such a batch holds nothing.
 */
struct key_group {
    const char *user, *client;
    uint64_t hash;
    int64_t lo, hi, last;
    uint64_t count; /* the batch's commands in it */
    unsigned gen;   /* the batch that filled it: slots are never cleared */
};

#define MIN_COMMANDS_PER_GROUP 4

static uint64_t key_hash(const char *user, const char *client)
{
    return cw_hash_adds(cw_hash_adds(CW_HASH_INIT, user), client);
}

/* Is cmd's key in group g's (user, client)? */
static bool in_group(const struct key_group *g, const struct cw_command *cmd)
{
    return strcmp(g->user, cmd->user_uuid) == 0 && strcmp(g->client, cmd->client_id) == 0;
}

static void check_command(struct cw_db *db, const struct cw_command *cmd)
{
    if (db->n_checked == db->cap_checked) {
        db->cap_checked = db->cap_checked ? db->cap_checked * 2 : 16;
        db->checked = cw_xrealloc(db->checked, db->cap_checked * sizeof(*db->checked));
    }
    db->checked[db->n_checked++] = cmd;
}

static bool is_checked(const struct cw_db *db, const struct cw_command *cmd)
{
    for (size_t i = 0; i < db->n_checked; i++)
        if (db->checked[i] == cmd)
            return true;
    return false;
}

/* cmd's group in the table (made when new); *fresh says it was. */
static struct key_group *group_of(struct cw_db *db, const struct cw_command *cmd, bool *fresh)
{
    uint64_t h = key_hash(cmd->user_uuid, cmd->client_id);
    for (size_t i = h & (db->groups_cap - 1);; i = (i + 1) & (db->groups_cap - 1)) {
        struct key_group *g = &db->groups[i];
        *fresh = g->gen != db->groups_gen;
        if (*fresh) {
            *g = (struct key_group){.user = cmd->user_uuid,
                                    .client = cmd->client_id,
                                    .hash = h,
                                    .lo = cmd->client_seq,
                                    .hi = cmd->client_seq,
                                    .last = cmd->client_seq,
                                    .count = 1,
                                    .gen = db->groups_gen};
            return g;
        }
        if (g->hash == h && in_group(g, cmd))
            return g;
    }
}

/* Marks the batch's commands of group g whose sequence numbers the log already holds. */
static int probe_group(struct cw_db *db, const struct key_group *g,
                       const struct cw_command *const *cmds, size_t n, struct cw_error *err)
{
    struct cw_stmt *st = prepare_unbound(db,
                                         "SELECT client_seq FROM commands WHERE user_uuid = ?"
                                         " AND client_id = ? AND client_seq BETWEEN ? AND ?",
                                         err);
    if (!st)
        return CW_ERR_STORE;
    bind_static(st, 1, g->user);
    bind_static(st, 2, g->client);
    bind_int(st, 3, g->lo);
    bind_int(st, 4, g->hi);
    int rc;
    while ((rc = stmt_step(st, err)) == CW_ROW) {
        int64_t seq = stmt_int(st, 0);
        for (size_t i = 0; i < n; i++)
            if (cmds[i]->client_seq == seq && in_group(g, cmds[i]))
                check_command(db, cmds[i]);
    }
    return rc == CW_DONE ? CW_OK : rc;
}

static int expect_commands(struct cw_db *db, const struct cw_command *const *cmds, size_t n,
                           struct cw_error *err)
{
    db->n_checked = 0;
    if (!db->hold_cmds)
        return CW_OK;
    if (db->groups_cap < 2 * n) {
        while (db->groups_cap < 2 * n)
            db->groups_cap = db->groups_cap ? db->groups_cap * 2 : 64;
        free(db->groups);
        db->groups = cw_xcalloc(db->groups_cap, sizeof(*db->groups));
        db->groups_gen = 0;
    }
    if (++db->groups_gen == 0) { /* wrapped: a slot's old mark could pass for this batch's */
        memset(db->groups, 0, db->groups_cap * sizeof(*db->groups));
        db->groups_gen = 1;
    }
    size_t n_groups = 0;
    struct key_group **list = cw_xmalloc(n * sizeof(*list));
    struct key_group *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        /* One connection's commands come in runs: the previous group, without hashing. */
        bool fresh = false;
        struct key_group *g =
            prev && in_group(prev, cmds[i]) ? prev : group_of(db, cmds[i], &fresh);
        prev = g;
        if (fresh) {
            list[n_groups++] = g;
            continue;
        }
        g->count++;
        if (cmds[i]->client_seq <= g->last) {
            check_command(db, cmds[i]); /* perhaps an earlier command's resend */
            continue;
        }
        g->last = g->hi = cmds[i]->client_seq;
    }
    int rc = CW_OK;
    if (n_groups * MIN_COMMANDS_PER_GROUP > n)
        db->hold_cmds = false; /* one look-up per few commands: the inserts are cheaper */
    for (size_t k = 0; k < n_groups; k++) {
        const struct key_group *g = list[k];
        if ((uint64_t)g->hi - (uint64_t)g->lo >= 2 * g->count)
            db->hold_cmds = false; /* a sparse range: its look-up could read much of the log */
    }
    for (size_t k = 0; db->hold_cmds && !rc && k < n_groups; k++)
        rc = probe_group(db, list[k], cmds, n, err);
    free(list);
    return rc;
}

static void hold_commands(struct cw_db *db, bool on)
{
    db->hold_cmds = on;
}

static int hold_command(struct cw_db *db, const struct cw_command *cmd,
                        const struct cw_command_record *rec, const char *data_text,
                        const char *meta_text, bool *held, struct cw_error *err)
{
    *held = db->hold_cmds && !is_checked(db, cmd);
    if (!*held)
        return CW_OK;
    struct cw_buf *t = &db->held_cmd_text;
    struct held_command *h = &db->held_cmds[db->n_held_cmds++];
    h->cmd = cmd;
    h->client_seq = cmd->client_seq;
    h->received_at = cmd->received_at;
    h->uuid = hold_str(t, cmd->uuid);
    h->user_uuid = hold_str(t, cmd->user_uuid);
    h->client_id = hold_str(t, cmd->client_id);
    h->name = hold_str(t, cmd->name);
    h->data = hold_json(t, data_text, cmd->data);
    h->meta = hold_json(t, meta_text, cmd->meta);
    set_outcome(db, h, rec);
    return db->n_held_cmds == LOG_CHUNK ? flush_commands(db, err) : CW_OK;
}

/* The processor corrects the outcome of the command it just ran: its row is still held. */
static int update_held_command(struct cw_db *db, const struct cw_command *cmd,
                               const struct cw_command_record *rec, bool *done,
                               struct cw_error *err)
{
    struct held_command *last = db->n_held_cmds ? &db->held_cmds[db->n_held_cmds - 1] : NULL;
    *done = last && last->cmd == cmd;
    if (*done)
        set_outcome(db, last, rec);
    return CW_OK;
}

static bool held_lost(struct cw_db *db)
{
    return db->held_lost;
}

static int append_event(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                        const char *meta_text, struct cw_error *err)
{
    if (db->hold) {
        hold_event(db, ev, data_text, meta_text);
        return db->n_held == LOG_CHUNK ? flush_held(db, err) : CW_OK;
    }
    struct cw_stmt *st = prepare_unbound(db, one_row_sql, err);
    if (!st)
        return CW_ERR_STORE;
    bind_event(st, 0, ev, data_text, meta_text);
    /* A text not given is serialised here (and copied when bound). */
    bind_json(st, 6, data_text, ev->data, &db->scratch);
    bind_json(st, 7, meta_text, ev->meta, &db->scratch);
    int rc = stmt_step(st, err);
    return rc == CW_DONE ? CW_OK : rc;
}

const struct cw_store_backend cw_store_sqlite = {
    .name = "sqlite",
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
    .hold_events = hold_events,
    .hold_command = hold_command,
    .hold_commands = hold_commands,
    .update_held_command = update_held_command,
    .expect_commands = expect_commands,
    .held_lost = held_lost,
    .append_event = append_event,
    .total_changes = total_changes,
    .run_script = run_script,
    .bind_text = bind_text,
    .bind_text_static = bind_text_static,
    .bind_int = bind_int,
    .bind_null = bind_null,
    .step = stmt_step,
    .reset = stmt_reset,
    .changes = stmt_changes,
    .text = stmt_text,
    .integer = stmt_int,
    .is_null = stmt_is_null,
    .columns = stmt_columns,
    .column_name = stmt_column_name,
    .json = stmt_json,
};
