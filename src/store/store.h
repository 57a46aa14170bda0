/*
 * store.h - the event store: events, the command log, migrations, and the
 * connections domain code runs on.
 *
 * One struct cw_store per database. It owns one writer connection, used only
 * by the processor thread, and hands out read connections (one per worker
 * thread) for snapshots. Backend errors are translated here, once, into
 * CW_ERR_AGAIN (transient: busy, locked, I/O, disk full; the processor
 * retries) or CW_ERR_STORE (permanent: constraint, SQL error); nothing
 * outside src/store/ sees a backend's own codes. A full disk is transient
 * and its error's code is CW_STORE_DISK_FULL, so the processor can say so.
 *
 * Thread rule: a cw_db is used by one thread at a time.
 */
#ifndef CW_STORE_H
#define CW_STORE_H

#include "calderwood.h"

struct cw_domain;
struct cw_store;

/* The cw_error code of a CW_ERR_AGAIN that a full disk (or quota) caused. */
#define CW_STORE_DISK_FULL "disk-full"

struct cw_store_options {
    bool read_only;        /* open an existing database for reading only (exports) */
    bool no_create;        /* fail with CW_ERR_NOT_FOUND when the file is missing */
    int busy_ms;           /* readers' busy timeout (the writer waits at most 100 ms) */
    int checkpoint_frames; /* WAL length that starts a checkpoint; 0: 4096 (tests use less) */
};

/*
 * Opens (creating when allowed) the store named by url: sqlite:PATH (or a
 * bare PATH) for a SQLite file (WAL, synchronous=FULL), postgres://... or
 * postgresql://... for a PostgreSQL database (a libpq connection URI; the
 * password from PGPASSWORD or PGPASSFILE as libpq reads them). An unknown
 * scheme is CW_ERR_INVALID.
 */
int cw_store_open(const char *url, const struct cw_store_options *opt, struct cw_store **out,
                  struct cw_error *err);
/*
 * Checks url's scheme without opening anything: *be receives the backend
 * (opaque outside src/store/), *target the part it is given.
 */
struct cw_store_backend;
int cw_store_parse_url(const char *url, const struct cw_store_backend **be, const char **target,
                       struct cw_error *err);
/*
 * Writes url into out (size n, truncated) with any password left out
 * (user:secret@ and password=...), for logs and messages.
 */
void cw_store_url_label(const char *url, char *out, size_t n);
/* "sqlite" or "postgres". */
const char *cw_store_backend_name(const struct cw_store *s);
/* Closes every connection the store opened, including readers not yet closed. */
void cw_store_close(struct cw_store *s);

/* The version of the SQLite library loaded at run time ("3.40.1"). Static. */
const char *cw_store_sqlite_version(void);
/* The version of the libpq library loaded at run time ("15.18"). Static. */
const char *cw_store_libpq_version(void);

/*
 * Applies the core schema, then each migration of d in registration order,
 * skipping those recorded in schema_migrations. Each migration runs in its
 * own transaction with its record: a failing one changes nothing and stops
 * the run with CW_ERR_STORE and a message naming it. d may be NULL (core only).
 * n_applied (optional) receives how many were applied now.
 */
int cw_store_migrate(struct cw_store *s, const struct cw_domain *d, int *n_applied,
                     struct cw_error *err);

/*
 * Compares the database with the migrations this binary knows (the core's
 * and d's), changing nothing. A database holding a migration this binary
 * does not know, in a namespace it does know, was migrated by a newer
 * version: CW_ERR_STORE, with a message naming the newest migration of that
 * namespace this binary knows. Otherwise *n_pending receives how many are
 * not applied yet and first_pending (len bytes; may be NULL) the first of
 * them. cw_store_migrate makes the same check before applying anything.
 */
int cw_store_check_migrations(struct cw_store *s, const struct cw_domain *d, int *n_pending,
                              char *first_pending, size_t len, struct cw_error *err);

/*
 * Writer thread only, between transactions: copies into the database the
 * few WAL frames the background checkpointer left behind because commits
 * kept arriving, so that the next transaction starts the WAL over instead
 * of growing it. Costs a checkpoint (two fsyncs) about once per WAL cycle;
 * otherwise a check of two counters.
 */
void cw_store_finish_checkpoint(struct cw_store *s);
/* How far cw_store_backup has got; bytes is the finished file's size (final call only). */
struct cw_backup_progress {
    int64_t pages_done, pages_total;
    int64_t bytes;
    int64_t last_position; /* the newest event in the copy */
};
typedef void (*cw_store_backup_cb)(const struct cw_backup_progress *p, bool final, void *arg);

/*
 * Copies the SQLite store at url into a new file at path while other
 * processes (a running server) go on reading and writing it: the copy is
 * one committed state, read in one snapshot, a few pages at a time, and
 * takes no lock that holds up the writer for more than a moment. It is
 * written to path.tmp, synced, and renamed to path, so path is either
 * absent or whole. An existing path is CW_ERR_EXISTS unless replace; a
 * PostgreSQL url is CW_ERR_INVALID (its own tools do this). cb (optional)
 * hears of each step, and once more with final set when path is in place.
 */
int cw_store_backup(const char *url, const char *path, bool replace, cw_store_backup_cb cb,
                    void *arg, struct cw_error *err);

/* The writer connection. Processor thread only. */
struct cw_db *cw_store_writer(struct cw_store *s);
/* A new read connection; free it with cw_db_close() from the thread using it. */
int cw_store_reader_open(struct cw_store *s, struct cw_db **out, struct cw_error *err);
void cw_db_close(struct cw_db *db);
/* The domain that readers and scans upcast with (set once, before use). */
void cw_store_set_domain(struct cw_store *s, const struct cw_domain *d);

/* The domain set with cw_store_set_domain, or NULL. */
const struct cw_domain *cw_db_domain(struct cw_db *db);
/*
 * Binds text without copying it (NULL binds SQL NULL): for statements that
 * are stepped to their end, or reset, before text goes away.
 */
int cw_stmt_bind_text_static(struct cw_stmt *st, int idx, const char *text);
/* Column col of the current row as JSON: integer, real, string or null. */
json_t *cw_stmt_json(struct cw_stmt *st, int col);

/* Write transactions (the writer): BEGIN IMMEDIATE ... COMMIT. */
int cw_db_begin(struct cw_db *db, struct cw_error *err);
int cw_db_commit(struct cw_db *db, struct cw_error *err);
void cw_db_rollback(struct cw_db *db);
/* One savepoint level, per command inside a batch. */
int cw_db_savepoint(struct cw_db *db, struct cw_error *err);
int cw_db_release(struct cw_db *db, struct cw_error *err);
void cw_db_rollback_to(struct cw_db *db);

/* Read snapshots: every read between begin and end sees one committed state. */
int cw_db_snapshot_begin(struct cw_db *db, struct cw_error *err);
void cw_db_snapshot_end(struct cw_db *db);

/* The columns of the log's tables, in the order every backend writes them. */
#define CW_COMMAND_COLUMNS                                                                         \
    "uuid, user_uuid, client_id, client_seq, name, data, meta, received_at, outcome,"              \
    " first_position, last_position, reject_code, reject_message"
#define CW_EVENT_COLUMNS                                                                           \
    "position, uuid, command_uuid, name, version, data, meta, user_uuid, client_id, client_seq,"   \
    " recorded_at"

/* What the command log remembers of a processed command. */
struct cw_command_record {
    char uuid[CW_UUID_LEN + 1];
    bool rejected;
    int64_t first_position, last_position; /* 0, 0 when it emitted no event */
    char reject_code[48];
    char reject_message[256];
};

/* Looks up (user, client_id, client_seq). CW_OK, CW_ERR_NOT_FOUND or a store error. */
int cw_store_find_command(struct cw_db *db, const char *user_uuid, const char *client_id,
                          int64_t client_seq, struct cw_command_record *out, struct cw_error *err);
/*
 * Records cmd with its outcome in the command log; CW_ERR_EXISTS (and no
 * change) when its (user, client_id, client_seq) is already there, unless
 * the row is held back (cw_db_hold_commands), which is checked later.
 * data_text and meta_text are cmd's data and meta serialised, or NULL to
 * have them serialised here.
 */
int cw_store_insert_command(struct cw_db *db, const struct cw_command *cmd,
                            const struct cw_command_record *rec, const char *data_text,
                            const char *meta_text, struct cw_error *err);
/* Rewrites the outcome of cmd's row, found by its idempotency key, to rec's. */
int cw_store_update_command(struct cw_db *db, const struct cw_command *cmd,
                            const struct cw_command_record *rec, struct cw_error *err);
/*
 * Writer only. While holding is on (off when a connection opens),
 * cw_store_append_event keeps event rows back and inserts them many at a
 * time (SQLite: 64 to a statement; PostgreSQL: by COPY, with the command
 * log's rows): before any statement that reads or writes the log steps,
 * before a savepoint, and at commit; a rollback (to a savepoint) drops
 * them. A failure to insert held rows may concern earlier commands
 * than the one that meets it: cw_db_held_lost() then says so until the
 * next cw_db_begin, and the transaction must be rolled back and run again
 * without holding.
 */
void cw_db_hold_events(struct cw_db *db, bool on);
bool cw_db_held_lost(struct cw_db *db);
/*
 * Writer only, SQLite (others ignore it): while on, cw_store_insert_command
 * holds command-log rows back like event rows, and a correction of the
 * row of the command just run (cw_store_update_command) is made in the
 * held row. Only commands that cw_store_expect_commands found new are
 * held (it also turns holding off for a batch of many users with few
 * commands each, where its look-ups cost more than holding saves); the
 * others are inserted at once, which is their idempotency check. A held
 * row whose key clashes all the same fails, with all held rows
 * (cw_db_held_lost), when it goes in, and the batch must run again
 * without holding. Off when a connection opens.
 */
void cw_db_hold_commands(struct cw_db *db, bool on);
/*
 * Writer only, while holding, at the start of a batch: the commands the
 * batch will run. A backend that pays a round trip per statement
 * (PostgreSQL) looks their idempotency keys up in one query, and then
 * inserts each command found absent, and other writes whose answer is not
 * needed, without waiting for the server: their failures show later, as
 * held rows lost (cw_db_held_lost). SQLite looks them up by (user,
 * client) ranges to know which command-log rows it may hold
 * (cw_db_hold_commands).
 */
int cw_store_expect_commands(struct cw_db *db, const struct cw_command *const *cmds, size_t n,
                             struct cw_error *err);
/* Writer only: the statements that follow are the batch's index-th command's. */
void cw_db_blame_next(struct cw_db *db, size_t index);
/*
 * After held rows were lost: whether the failure was a permanent error of
 * one command's own statement (domain code's), that command's index and
 * why. A safe run would have failed that command there: it is rejected
 * without running its domain code again.
 */
bool cw_db_blamed(struct cw_db *db, size_t *index, struct cw_error *why);
/* Appends ev (position set by the caller); texts as for cw_store_insert_command. */
int cw_store_append_event(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                          const char *meta_text, struct cw_error *err);
/* Rows changed on db since it was opened: tells whether domain code wrote. */
int64_t cw_db_total_changes(struct cw_db *db);
/* The position of the newest event, 0 for an empty log. */
int cw_store_last_position(struct cw_db *db, int64_t *out, struct cw_error *err);

/*
 * The lead among processors sharing one store (distributed mode). On
 * PostgreSQL: pg_try_advisory_lock(key) on db (the writer), a lock of the
 * session, so it is held by the very connection that commits and dies with
 * it. *held says whether db holds it now (it may already have). On SQLite,
 * where one process owns the file, always held. Outside a transaction.
 */
int cw_db_try_lead(struct cw_db *db, int64_t key, bool *held, struct cw_error *err);
/*
 * Whether db still holds the lead it took: false once its connection was
 * made again (the lock died with the old one). Call it inside the
 * transaction, after BEGIN: a commit on the same connection then happens
 * under the lock, as the connection cannot change within a transaction.
 */
bool cw_db_leads(struct cw_db *db);

#endif
