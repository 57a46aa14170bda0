/*
 * calderwood.h - the domain API: what a domain module sees.
 *
 * A domain is a set of commands, events, queries and migrations registered in
 * a struct cw_domain. The server calls them in this order for every command:
 *
 *   coerce   (gateway thread, pure, no I/O)  validates and normalises data
 *   prepare  (worker thread, optional)       slow pure work, e.g. hashing
 *   handle   (processor, in the write tx)    decides: events or rejection
 *   aggregate(processor, same tx, per event) updates the projection tables
 *
 * and for every query: coerce, then run against a read snapshot.
 *
 * Ownership rule of this header: arguments are borrowed for the duration of
 * the call; a function whose name ends in _take takes ownership of what it is
 * given; json_t results handed back through an out-pointer belong to the
 * caller. Strings returned by cw_stmt_text() live until the next step or
 * reset of that statement.
 *
 * A module built as a shared object exports one function,
 *
 *   int cw_module_init(struct cw_domain *domain);
 *
 * which registers its definitions and returns CW_OK, and is loaded with
 * `calderwood serve --module path.so`. docs/DOMAIN.md walks through writing
 * one (examples/todo/todo.c); tests/modules/test_module.c is a smaller one.
 */
#ifndef CALDERWOOD_H
#define CALDERWOOD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CW_API_VERSION 1
#define CW_UUID_LEN    36 /* canonical text form, without the terminating NUL */

/* Result codes. CW_OK is 0 so `if (rc) goto out;` reads naturally. */
enum cw_result {
    CW_OK = 0,
    CW_ERR_INVALID,      /* input fails a definition: validation-failed */
    CW_ERR_MALFORMED,    /* input is not of the expected shape at all */
    CW_ERR_TOO_LARGE,    /* input over a configured size limit */
    CW_ERR_OVERLOADED,   /* a bounded queue is full; nothing was queued */
    CW_ERR_AGAIN,        /* transient store failure: retry later */
    CW_ERR_NOT_FOUND,    /* no such command, query, row or file */
    CW_ERR_REJECTED,     /* a handler refused the command (application error) */
    CW_ERR_STORE,        /* permanent store failure (constraint, SQL error) */
    CW_ERR_UNAUTHORIZED, /* no valid session */
    CW_ERR_EXISTS,       /* already registered or already present */
    CW_ERR_SYSTEM,       /* I/O or OS failure outside the store */
    CW_ERR_SHUTDOWN,     /* the server is stopping */
    CW_ROW = 100,        /* cw_stmt_step(): a row is ready */
    CW_DONE = 101,       /* cw_stmt_step(): no more rows */
};

/*
 * Error detail for the caller. code is the wire code of PROTOCOL.md or a
 * domain's own rejection code ("email-taken"); details is an optional JSON
 * value owned by the error (cw_error_release() frees it).
 */
struct cw_error {
    char code[48];
    char message[256];
    json_t *details;
};

/* Fills err (when non-NULL) and returns rc. message is printf-style. */
int cw_error_set(struct cw_error *err, int rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* As cw_error_set, and takes ownership of details. */
int cw_error_set_details_take(struct cw_error *err, int rc, const char *code, json_t *details,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void cw_error_release(struct cw_error *err);

/* ---------------------------------------------------------------- fields */

enum cw_field_type {
    CW_FIELD_STRING,
    CW_FIELD_INTEGER,
    CW_FIELD_BOOLEAN,
    CW_FIELD_OBJECT,
    CW_FIELD_UUID,
};

/*
 * One declared field of a command's or query's data. The generic validation
 * checks presence, type and limits and reports each failing field in
 * details as {"field": NAME, "reason": TEXT}. Strings are counted in bytes.
 * Unknown keys are ignored. A definition's field array ends with a zeroed
 * entry (name == NULL).
 */
struct cw_field {
    const char *name;
    enum cw_field_type type;
    bool required;
    size_t min_length; /* strings: at least this many bytes */
    size_t max_length; /* strings: at most this many bytes; 0 = no limit */
    bool ranged;       /* integers: min and max apply */
    int64_t min, max;
};

/* ------------------------------------------------------ commands, events */

/* A command as the processor sees it. All fields are read-only for domain code. */
struct cw_command {
    char uuid[CW_UUID_LEN + 1];
    char user_uuid[CW_UUID_LEN + 1]; /* empty for system commands */
    const char *name;
    const char *client_id;
    int64_t client_seq;
    int64_t received_at; /* microseconds since the epoch */
    json_t *data;        /* an object, already coerced */
    json_t *meta;        /* an object, possibly empty */
};

/* A committed (or committing) event as aggregate and audience see it. */
struct cw_event {
    int64_t position;
    const char *uuid;
    const char *command_uuid;
    const char *name;
    int version;
    json_t *data;
    json_t *meta;
    const char *user_uuid;
    const char *client_id;
    int64_t client_seq;
    int64_t recorded_at;
};

struct cw_db;   /* a store connection inside a transaction or snapshot */
struct cw_stmt; /* a prepared statement of a cw_db */
struct cw_emit; /* where a handler puts the events it decides on */

/*
 * Adds one event to the command's outcome. Takes ownership of data (an
 * object). The event definition must be registered. Returns CW_OK or
 * CW_ERR_NOT_FOUND for an unknown event name (data is freed either way).
 */
int cw_emit_take(struct cw_emit *out, const char *event_name, json_t *data);

/*
 * coerce: validates and may normalise data in place (trim, lower-case).
 * Called after the generic validation of the declared fields passed. Returns
 * CW_OK or CW_ERR_INVALID with err->details naming the field. Pure: no I/O.
 */
typedef int (*cw_coerce_cb)(json_t *data, struct cw_error *err);

/*
 * prepare: optional slow, pure transformation of coerced data before it is
 * queued (hash a password and drop the clear text). Runs on a worker thread.
 */
typedef int (*cw_prepare_cb)(json_t *data, struct cw_error *err);

/*
 * handle: inside the processor's write transaction; sees every earlier
 * command of the batch. Emits zero or more events with cw_emit_take(), or
 * returns CW_ERR_REJECTED with err->code set (e.g. "email-taken"). Store
 * errors from cw_db_* calls are returned as they are: transient ones make
 * the processor retry the whole batch, others reject this command only.
 */
typedef int (*cw_handle_cb)(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                            struct cw_error *err);

/* aggregate: applies one event to the projections, in the same transaction. */
typedef int (*cw_aggregate_cb)(struct cw_db *db, const struct cw_event *ev, struct cw_error *err);

/*
 * audience: may the user see this event? Pure: called on the gateway thread
 * for live updates, and on worker threads, at once, for catch-ups and the
 * events query; it sees the event upcast to its current version.
 */
typedef bool (*cw_audience_cb)(const struct cw_event *ev, const char *user_uuid);

/*
 * upcast: returns the data of the event at version from_version + 1. Takes
 * ownership of data. Chained until the event is at its definition's version.
 */
typedef json_t *(*cw_upcast_cb)(int from_version, json_t *data);

enum cw_audience {
    CW_AUDIENCE_USER = 0, /* the issuing user only (the default) */
    CW_AUDIENCE_ALL,      /* every logged-in user */
    CW_AUDIENCE_CUSTOM,   /* the event definition's audience function */
};

struct cw_command_def {
    const char *name;
    const struct cw_field *fields; /* NULL-name terminated; NULL = no fields */
    cw_coerce_cb coerce;           /* optional */
    cw_prepare_cb prepare;         /* optional */
    cw_handle_cb handle;           /* required */
    bool internal;                 /* only the server itself may issue it */
};

struct cw_event_def {
    const char *name;
    int version; /* current schema version, >= 1 */
    enum cw_audience audience;
    cw_audience_cb audience_fn;        /* CW_AUDIENCE_CUSTOM only */
    cw_aggregate_cb aggregate;         /* optional */
    cw_upcast_cb upcast;               /* required when version > 1 */
    const char *const *private_fields; /* data keys never sent to clients; NULL-terminated */
};

/* ---------------------------------------------------------------- queries */

struct cw_query {
    const char *name;
    json_t *data;          /* an object, already coerced */
    const char *user_uuid; /* the asking user */
};

/* run: read-only, against a snapshot. *result belongs to the caller. */
typedef int (*cw_run_query_cb)(struct cw_db *db, const struct cw_query *q, json_t **result,
                               struct cw_error *err);

struct cw_query_def {
    const char *name;
    const struct cw_field *fields;
    cw_coerce_cb coerce; /* optional */
    cw_run_query_cb run; /* required */
};

/*
 * A schema migration: id is unique and ordered within its domain ("001-users");
 * sql may hold several statements, in the common subset of SQLite 3.40 and
 * PostgreSQL 15. Applied once, recorded in schema_migrations, in one
 * transaction. On PostgreSQL the word INTEGER in a migration reads BIGINT
 * (SQLite's integers are 64-bit), and ? in any statement becomes $n.
 *
 * Where a migration truly cannot be written once (a trigger, say), sql_pg
 * is what PostgreSQL runs instead of sql; both must leave the same tables,
 * as domain code reads and writes them with the same SQL.
 */
struct cw_migration {
    const char *id;
    const char *sql;
    const char *sql_pg; /* optional: PostgreSQL's variant of sql */
};

/* --------------------------------------------------------------- registry */

struct cw_domain;

/*
 * Registration. Definitions are borrowed and must outlive the domain (static
 * storage is the normal case). Returns CW_OK, CW_ERR_EXISTS for a duplicate
 * name, or CW_ERR_INVALID for an incomplete definition.
 */
int cw_domain_add_command(struct cw_domain *d, const struct cw_command_def *def);
int cw_domain_add_event(struct cw_domain *d, const struct cw_event_def *def);
int cw_domain_add_query(struct cw_domain *d, const struct cw_query_def *def);
/* namespace groups a domain's migrations ("demo", "shop"); ids are namespace:id. */
int cw_domain_add_migration(struct cw_domain *d, const char *ns, const struct cw_migration *m);

/* The entry point a module .so exports. */
typedef int (*cw_module_init_cb)(struct cw_domain *domain);
int cw_module_init(struct cw_domain *domain);

/* ------------------------------------------------------------ SQL helpers */

/*
 * Prepares sql (with ? placeholders) on db, cached by its text for the life
 * of the connection: preparing the same text again is a lookup. The
 * statement is reset and its bindings cleared before it is handed out.
 * Returns NULL and fills err on a syntax error.
 */
struct cw_stmt *cw_db_prepare(struct cw_db *db, const char *sql, struct cw_error *err);

/* Binding by 1-based index. Text is copied. */
int cw_stmt_bind_text(struct cw_stmt *st, int idx, const char *text);
int cw_stmt_bind_int(struct cw_stmt *st, int idx, int64_t value);
int cw_stmt_bind_null(struct cw_stmt *st, int idx);

/* CW_ROW, CW_DONE, CW_ERR_AGAIN (transient) or CW_ERR_STORE. */
int cw_stmt_step(struct cw_stmt *st, struct cw_error *err);
/*
 * Ends a statement before its last row. A statement left on a row keeps
 * its read transaction open: reset it when you stop early.
 */
void cw_stmt_reset(struct cw_stmt *st);
/* Number of rows changed by the last completed INSERT, UPDATE or DELETE. */
int64_t cw_stmt_changes(struct cw_stmt *st);

/* Column access by 0-based index on the current row. */
const char *cw_stmt_text(struct cw_stmt *st, int col); /* NULL for SQL NULL */
int64_t cw_stmt_int(struct cw_stmt *st, int col);
bool cw_stmt_is_null(struct cw_stmt *st, int col);
int cw_stmt_columns(struct cw_stmt *st);
const char *cw_stmt_column_name(struct cw_stmt *st, int col);

/*
 * One-call helpers. types has one letter per argument that follows:
 *   't' const char * (NULL binds SQL NULL), 'i' int64_t, 'n' SQL NULL (no argument)
 * cw_db_exec runs a statement that returns no rows.
 * cw_db_query_json returns the rows as a JSON array of objects keyed by
 * column name (integers, strings, nulls); *rows belongs to the caller.
 * cw_db_query_int reads the first column of the first row (CW_ERR_NOT_FOUND
 * when there is none).
 */
int cw_db_exec(struct cw_db *db, struct cw_error *err, const char *sql, const char *types, ...);
int cw_db_query_json(struct cw_db *db, json_t **rows, struct cw_error *err, const char *sql,
                     const char *types, ...);
int cw_db_query_int(struct cw_db *db, int64_t *out, struct cw_error *err, const char *sql,
                    const char *types, ...);

/*
 * Reads the events of the log in position order, upcast to their current
 * version, for queries that fold history (a cart as of a position). Calls
 * fn for each event with position in (after, until] (until 0 = no bound)
 * whose user is user_uuid (NULL = any) and whose name is one of names
 * (NULL-terminated; NULL = any). fn returns CW_OK to go on, anything else
 * stops the scan and is returned.
 */
typedef int (*cw_event_cb)(const struct cw_event *ev, void *arg);
int cw_db_scan_events(struct cw_db *db, int64_t after, int64_t until, const char *user_uuid,
                      const char *const *names, cw_event_cb fn, void *arg, struct cw_error *err);

/* ------------------------------------------------------------- utilities */

/* Microseconds since the Unix epoch. */
int64_t cw_now_us(void);
/* Writes a new time-ordered UUIDv7 as 36 characters plus NUL into out. */
void cw_uuid_v7(char out[CW_UUID_LEN + 1]);
/* Is s a canonical lower-case UUID? */
bool cw_uuid_valid(const char *s);

#ifdef __cplusplus
}
#endif

#endif
