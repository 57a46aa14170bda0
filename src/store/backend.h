/*
 * backend.h - the one interface between the backend-neutral store layer
 * (db.c: URL parsing, the calls of store.h and calderwood.h, the SQL
 * helpers, the log scan) and a store backend (store_sqlite.c, store_pg.c).
 *
 * Each backend defines struct cw_store, struct cw_db and struct cw_stmt for
 * itself, in its own file, each beginning with a pointer to its
 * cw_store_backend. The neutral layer never completes those types: it only
 * reads that first member (a pointer to a struct also points to its first
 * member) and calls through it. So neither backend knows the other, and
 * each call costs one indirect jump.
 *
 * Every entry has the contract of the public call of the same name in
 * store.h or calderwood.h; open receives the URL's target (the path for
 * sqlite:, the whole URL for postgres://). What is the same on every
 * backend is written once in db.c over these calls: the command log's
 * statements, the last position, the migrations' bookkeeping.
 */
#ifndef CW_STORE_BACKEND_H
#define CW_STORE_BACKEND_H

#include "store.h"

struct cw_store_backend {
    const char *name;
    int (*open)(const char *target, const struct cw_store_options *opt, struct cw_store **out,
                struct cw_error *err);
    void (*close)(struct cw_store *s);
    int (*migrate)(struct cw_store *s, const struct cw_domain *d, int *n_applied,
                   struct cw_error *err);
    int (*check_migrations)(struct cw_store *s, const struct cw_domain *d, int *n_pending,
                            char *first_pending, size_t len, struct cw_error *err);
    void (*finish_checkpoint)(struct cw_store *s);
    struct cw_db *(*writer)(struct cw_store *s);
    int (*reader_open)(struct cw_store *s, struct cw_db **out, struct cw_error *err);
    void (*set_domain)(struct cw_store *s, const struct cw_domain *d);

    void (*db_close)(struct cw_db *db);
    const struct cw_domain *(*domain)(struct cw_db *db);
    struct cw_stmt *(*prepare)(struct cw_db *db, const char *sql, struct cw_error *err);
    /* Optional: prepare, its old bindings left, for a caller that binds every parameter. */
    struct cw_stmt *(*prepare_unbound)(struct cw_db *db, const char *sql, struct cw_error *err);
    int (*begin)(struct cw_db *db, struct cw_error *err);
    int (*commit)(struct cw_db *db, struct cw_error *err);
    void (*rollback)(struct cw_db *db);
    int (*savepoint)(struct cw_db *db, struct cw_error *err);
    int (*release)(struct cw_db *db, struct cw_error *err);
    void (*rollback_to)(struct cw_db *db);
    int (*snapshot_begin)(struct cw_db *db, struct cw_error *err);
    void (*snapshot_end)(struct cw_db *db);
    /*
     * Optional: keeps cmd's command-log row back to go in later (*held),
     * as PostgreSQL does for a key the batch's lookup found absent; else
     * db.c inserts it with a statement.
     */
    int (*hold_command)(struct cw_db *db, const struct cw_command *cmd,
                        const struct cw_command_record *rec, const char *data_text,
                        const char *meta_text, bool *held, struct cw_error *err);
    void (*hold_events)(struct cw_db *db, bool on);
    /* Optional (SQLite): hold_command holds while this is on (cw_db_hold_commands). */
    void (*hold_commands)(struct cw_db *db, bool on);
    /* Optional: rewrites the outcome of cmd's row while it is still held (*done). */
    int (*update_held_command)(struct cw_db *db, const struct cw_command *cmd,
                               const struct cw_command_record *rec, bool *done,
                               struct cw_error *err);
    bool (*held_lost)(struct cw_db *db);
    /* Optional (NULL: nothing to do), as are blame_next and blamed. */
    int (*expect_commands)(struct cw_db *db, const struct cw_command *const *cmds, size_t n,
                           struct cw_error *err);
    void (*blame_next)(struct cw_db *db, size_t index);
    bool (*blamed)(struct cw_db *db, size_t *index, struct cw_error *why);
    int (*append_event)(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                        const char *meta_text, struct cw_error *err);
    int64_t (*total_changes)(struct cw_db *db);
    /* Runs a migration's SQL (several statements), adapted to the backend's dialect. */
    int (*run_script)(struct cw_db *db, const char *sql, struct cw_error *err);
    /* NULL for a backend where the process's own file lock already makes it the only writer. */
    int (*try_lead)(struct cw_db *db, int64_t key, bool *held, struct cw_error *err);
    bool (*leads)(struct cw_db *db);

    int (*bind_text)(struct cw_stmt *st, int idx, const char *text);
    int (*bind_text_static)(struct cw_stmt *st, int idx, const char *text);
    int (*bind_int)(struct cw_stmt *st, int idx, int64_t value);
    int (*bind_null)(struct cw_stmt *st, int idx);
    int (*step)(struct cw_stmt *st, struct cw_error *err);
    /* cw_db_exec: runs st to its end, its rows unread (NULL: step it to CW_DONE). */
    int (*exec)(struct cw_stmt *st, struct cw_error *err);
    void (*reset)(struct cw_stmt *st);
    int64_t (*changes)(struct cw_stmt *st);
    const char *(*text)(struct cw_stmt *st, int col);
    int64_t (*integer)(struct cw_stmt *st, int col);
    bool (*is_null)(struct cw_stmt *st, int col);
    int (*columns)(struct cw_stmt *st);
    const char *(*column_name)(struct cw_stmt *st, int col);
    json_t *(*json)(struct cw_stmt *st, int col);
};

extern const struct cw_store_backend cw_store_sqlite;
extern const struct cw_store_backend cw_store_pg;

/*
 * PostgreSQL: is an error of this SQLSTATE (NULL: none, libpq's own, as
 * when the connection is lost) one that waiting and trying again can cure?
 */
bool cw_pg_transient(const char *sqlstate);

/*
 * The migrations a backend knows, in the order they apply: its own core
 * migrations (each backend writes their SQL), then the domain's. Written
 * once here, over the cw_db calls, for every backend.
 */
struct cw_known_migrations {
    const struct cw_migration *core;
    size_t n_core;
    const struct cw_domain *d; /* may be NULL */
    bool pg;                   /* the backend takes a migration's sql_pg where it has one */
};

size_t cw_known_count(const struct cw_known_migrations *k);
/* The id and the SQL of the i-th known migration (i < cw_known_count). */
const char *cw_known_id(const struct cw_known_migrations *k, size_t i);
const char *cw_known_sql(const struct cw_known_migrations *k, size_t i);
/* Whether migration id is recorded in schema_migrations (which must exist). */
int cw_known_applied(struct cw_db *db, const char *id, bool *yes, struct cw_error *err);
/*
 * Counts the known migrations not yet recorded (the first's id into
 * first_pending when given), and refuses, naming label, a database on which
 * a newer binary recorded a migration unknown here in a namespace known here.
 * has_table: whether schema_migrations exists yet.
 */
/*
 * Applies each known migration not yet recorded, each in its own
 * transaction with its record (backend's run_script for the SQL); counts
 * them in *n_applied. schema_migrations must exist. Stops at the first
 * failure, which changes nothing of that migration.
 */
int cw_known_apply(const struct cw_known_migrations *k, struct cw_db *db, int *n_applied,
                   struct cw_error *err);
int cw_known_check(const struct cw_known_migrations *k, struct cw_db *db, bool has_table,
                   const char *label, int *n_pending, char *first_pending, size_t len,
                   struct cw_error *err);

#endif
