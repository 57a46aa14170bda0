/*
 * db.c - the backend-neutral store layer: picks a backend by the store
 * URL's scheme, passes each call of store.h and calderwood.h on to the
 * backend that made its object (see backend.h), and holds what is written
 * once over the cw_stmt calls: the one-call SQL helpers and the log scan.
 */
#include "backend.h"
#include "core/buf.h"
#include "core/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The backend of a store, connection or statement: the first member of each. */
#define BE(obj) (*(const struct cw_store_backend *const *)(const void *)(obj))

/* ------------------------------------------------------------ dispatch */

int cw_store_parse_url(const char *url, const struct cw_store_backend **be, const char **target,
                       struct cw_error *err)
{
    if (strncmp(url, "sqlite:", 7) == 0) {
        *be = &cw_store_sqlite;
        *target = url + 7;
    } else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        *be = &cw_store_pg;
        *target = url;
    } else if (strstr(url, "://")) {
        return cw_error_set(err, CW_ERR_INVALID, NULL,
                            "unknown store '%.*s': use sqlite:PATH or postgres://...",
                            (int)(strstr(url, "://") - url), url);
    } else {
        *be = &cw_store_sqlite; /* a bare path */
        *target = url;
    }
    if (!**target)
        return cw_error_set(err, CW_ERR_INVALID, NULL, "store URL '%s' names no database", url);
    return CW_OK;
}

/* Appends text to out[*o] while it fits (n - 1 characters). */
static void label_add(char *out, size_t n, size_t *o, const char *text, size_t len)
{
    for (size_t k = 0; k < len && *o + 1 < n; k++)
        out[(*o)++] = text[k];
}

void cw_store_url_label(const char *url, char *out, size_t n)
{
    if (!n)
        return;
    /* The password of user:secret@host, if any: from the colon to the @. */
    const char *skip = NULL, *resume = NULL;
    const char *auth = strstr(url, "://");
    if (auth) {
        auth += 3;
        size_t len = strcspn(auth, "/?");
        const char *at = memchr(auth, '@', len);
        skip = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        resume = at;
    }
    size_t o = 0;
    for (const char *p = url; *p;) {
        if (p == skip) {
            p = resume;
        } else if (strncmp(p, "password=", 9) == 0 && p > url && (p[-1] == '?' || p[-1] == '&')) {
            label_add(out, n, &o, "password=***", 12);
            p += 9 + strcspn(p + 9, "&");
        } else {
            label_add(out, n, &o, p++, 1);
        }
    }
    out[o] = '\0';
}

int cw_store_open(const char *url, const struct cw_store_options *opt, struct cw_store **out,
                  struct cw_error *err)
{
    const struct cw_store_backend *be;
    const char *target;
    int rc = cw_store_parse_url(url, &be, &target, err);
    return rc ? rc : be->open(target, opt, out, err);
}

const char *cw_store_backend_name(const struct cw_store *s)
{
    return BE(s)->name;
}

void cw_store_close(struct cw_store *s)
{
    if (s)
        BE(s)->close(s);
}

int cw_store_migrate(struct cw_store *s, const struct cw_domain *d, int *n_applied,
                     struct cw_error *err)
{
    return BE(s)->migrate(s, d, n_applied, err);
}

int cw_store_check_migrations(struct cw_store *s, const struct cw_domain *d, int *n_pending,
                              char *first_pending, size_t len, struct cw_error *err)
{
    return BE(s)->check_migrations(s, d, n_pending, first_pending, len, err);
}

void cw_store_finish_checkpoint(struct cw_store *s)
{
    BE(s)->finish_checkpoint(s);
}

struct cw_db *cw_store_writer(struct cw_store *s)
{
    return BE(s)->writer(s);
}

int cw_store_reader_open(struct cw_store *s, struct cw_db **out, struct cw_error *err)
{
    return BE(s)->reader_open(s, out, err);
}

void cw_store_set_domain(struct cw_store *s, const struct cw_domain *d)
{
    BE(s)->set_domain(s, d);
}

void cw_db_close(struct cw_db *db)
{
    if (db)
        BE(db)->db_close(db);
}

const struct cw_domain *cw_db_domain(struct cw_db *db)
{
    return BE(db)->domain(db);
}

struct cw_stmt *cw_db_prepare(struct cw_db *db, const char *sql, struct cw_error *err)
{
    return BE(db)->prepare(db, sql, err);
}

int cw_db_begin(struct cw_db *db, struct cw_error *err)
{
    return BE(db)->begin(db, err);
}

int cw_db_commit(struct cw_db *db, struct cw_error *err)
{
    return BE(db)->commit(db, err);
}

void cw_db_rollback(struct cw_db *db)
{
    BE(db)->rollback(db);
}

int cw_db_savepoint(struct cw_db *db, struct cw_error *err)
{
    return BE(db)->savepoint(db, err);
}

int cw_db_release(struct cw_db *db, struct cw_error *err)
{
    return BE(db)->release(db, err);
}

void cw_db_rollback_to(struct cw_db *db)
{
    BE(db)->rollback_to(db);
}

int cw_db_snapshot_begin(struct cw_db *db, struct cw_error *err)
{
    return BE(db)->snapshot_begin(db, err);
}

void cw_db_snapshot_end(struct cw_db *db)
{
    BE(db)->snapshot_end(db);
}

void cw_db_hold_events(struct cw_db *db, bool on)
{
    BE(db)->hold_events(db, on);
}

void cw_db_hold_commands(struct cw_db *db, bool on)
{
    if (BE(db)->hold_commands)
        BE(db)->hold_commands(db, on);
}

bool cw_db_held_lost(struct cw_db *db)
{
    return BE(db)->held_lost(db);
}

int cw_store_expect_commands(struct cw_db *db, const struct cw_command *const *cmds, size_t n,
                             struct cw_error *err)
{
    return BE(db)->expect_commands ? BE(db)->expect_commands(db, cmds, n, err) : CW_OK;
}

void cw_db_blame_next(struct cw_db *db, size_t index)
{
    if (BE(db)->blame_next)
        BE(db)->blame_next(db, index);
}

bool cw_db_blamed(struct cw_db *db, size_t *index, struct cw_error *why)
{
    return BE(db)->blamed && BE(db)->blamed(db, index, why);
}

int cw_store_append_event(struct cw_db *db, const struct cw_event *ev, const char *data_text,
                          const char *meta_text, struct cw_error *err)
{
    return BE(db)->append_event(db, ev, data_text, meta_text, err);
}

int64_t cw_db_total_changes(struct cw_db *db)
{
    return BE(db)->total_changes(db);
}

int cw_db_try_lead(struct cw_db *db, int64_t key, bool *held, struct cw_error *err)
{
    *held = true;
    return BE(db)->try_lead ? BE(db)->try_lead(db, key, held, err) : CW_OK;
}

bool cw_db_leads(struct cw_db *db)
{
    return BE(db)->leads ? BE(db)->leads(db) : true;
}

int cw_stmt_bind_text(struct cw_stmt *st, int idx, const char *text)
{
    return BE(st)->bind_text(st, idx, text);
}

int cw_stmt_bind_text_static(struct cw_stmt *st, int idx, const char *text)
{
    return BE(st)->bind_text_static(st, idx, text);
}

int cw_stmt_bind_int(struct cw_stmt *st, int idx, int64_t value)
{
    return BE(st)->bind_int(st, idx, value);
}

int cw_stmt_bind_null(struct cw_stmt *st, int idx)
{
    return BE(st)->bind_null(st, idx);
}

int cw_stmt_step(struct cw_stmt *st, struct cw_error *err)
{
    return BE(st)->step(st, err);
}

void cw_stmt_reset(struct cw_stmt *st)
{
    BE(st)->reset(st);
}

int64_t cw_stmt_changes(struct cw_stmt *st)
{
    return BE(st)->changes(st);
}

const char *cw_stmt_text(struct cw_stmt *st, int col)
{
    return BE(st)->text(st, col);
}

int64_t cw_stmt_int(struct cw_stmt *st, int col)
{
    return BE(st)->integer(st, col);
}

bool cw_stmt_is_null(struct cw_stmt *st, int col)
{
    return BE(st)->is_null(st, col);
}

int cw_stmt_columns(struct cw_stmt *st)
{
    return BE(st)->columns(st);
}

const char *cw_stmt_column_name(struct cw_stmt *st, int col)
{
    return BE(st)->column_name(st, col);
}

json_t *cw_stmt_json(struct cw_stmt *st, int col)
{
    return BE(st)->json(st, col);
}

/* --------------------------------------------------------- SQL helpers */

/*
 * Prepares sql and binds the arguments described by types (see calderwood.h).
 * Text is bound without a copy: every caller runs the statement to its end
 * (or resets it) before returning, while the arguments are still the caller's.
 */
static struct cw_stmt *prepare_bound(struct cw_db *db, struct cw_error *err, const char *sql,
                                     const char *types, va_list ap)
{
    struct cw_stmt *st = cw_db_prepare(db, sql, err);
    if (!st)
        return NULL;
    for (int i = 0; types && types[i]; i++) {
        switch (types[i]) {
        case 't':
            cw_stmt_bind_text_static(st, i + 1, va_arg(ap, const char *));
            break;
        case 'i':
            cw_stmt_bind_int(st, i + 1, va_arg(ap, int64_t));
            break;
        case 'n':
            cw_stmt_bind_null(st, i + 1);
            break;
        default:
            cw_error_set(err, CW_ERR_INVALID, NULL, "bad bind type '%c' for: %s", types[i], sql);
            return NULL;
        }
    }
    return st;
}

/* Runs st to its end, its rows unread (a backend may send it without waiting). */
static int exec_stmt(struct cw_stmt *st, struct cw_error *err)
{
    if (BE(st)->exec)
        return BE(st)->exec(st, err);
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW)
        ;
    return rc == CW_DONE ? CW_OK : rc;
}

int cw_db_exec(struct cw_db *db, struct cw_error *err, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    struct cw_stmt *st = prepare_bound(db, err, sql, types, ap);
    va_end(ap);
    return st ? exec_stmt(st, err) : CW_ERR_STORE;
}

int cw_db_query_json(struct cw_db *db, json_t **rows, struct cw_error *err, const char *sql,
                     const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    struct cw_stmt *st = prepare_bound(db, err, sql, types, ap);
    va_end(ap);
    if (!st)
        return CW_ERR_STORE;
    json_t *out = json_array();
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW) {
        json_t *row = json_object();
        for (int c = 0; c < cw_stmt_columns(st); c++)
            json_object_set_new(row, cw_stmt_column_name(st, c), cw_stmt_json(st, c));
        json_array_append_new(out, row);
    }
    if (rc != CW_DONE) {
        json_decref(out);
        return rc;
    }
    *rows = out;
    return CW_OK;
}

int cw_db_query_int(struct cw_db *db, int64_t *out, struct cw_error *err, const char *sql,
                    const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    struct cw_stmt *st = prepare_bound(db, err, sql, types, ap);
    va_end(ap);
    if (!st)
        return CW_ERR_STORE;
    int rc = cw_stmt_step(st, err);
    if (rc == CW_DONE)
        return cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "no row");
    if (rc != CW_ROW)
        return rc;
    *out = cw_stmt_int(st, 0);
    cw_stmt_reset(st);
    return CW_OK;
}

static bool name_in(const char *name, const char *const *names)
{
    if (!names)
        return true;
    for (; *names; names++)
        if (strcmp(name, *names) == 0)
            return true;
    return false;
}

/* Parses a stored JSON column; a damaged value reads as an empty object. */
static json_t *parse(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_object();
}

/*
 * Rows per statement of a scan. A backend that reads a statement's result
 * whole (PostgreSQL) would otherwise read the rest of the log each time a
 * caller stops early (a catch-up chunk) and hold a whole export in memory.
 */
#define SCAN_ROWS 512

/* Hands the current row of st (CW_EVENT_COLUMNS) to fn, upcast; returns fn's answer. */
static int scan_row(struct cw_stmt *st, const struct cw_domain *d, cw_event_cb fn, void *arg)
{
    struct cw_event ev = {
        .position = cw_stmt_int(st, 0),
        .uuid = cw_stmt_text(st, 1),
        .command_uuid = cw_stmt_text(st, 2),
        .name = cw_stmt_text(st, 3),
        .version = (int)cw_stmt_int(st, 4),
        .data = parse(cw_stmt_text(st, 5)),
        .meta = parse(cw_stmt_text(st, 6)),
        .user_uuid = cw_stmt_text(st, 7),
        .client_id = cw_stmt_text(st, 8),
        .client_seq = cw_stmt_int(st, 9),
        .recorded_at = cw_stmt_int(st, 10),
    };
    if (d)
        cw_domain_upcast(d, ev.name, &ev.version, &ev.data);
    int stop = fn(&ev, arg);
    json_decref(ev.data);
    json_decref(ev.meta);
    return stop;
}

int cw_db_scan_events(struct cw_db *db, int64_t after, int64_t until, const char *user_uuid,
                      const char *const *names, cw_event_cb fn, void *arg, struct cw_error *err)
{
    /* Two shapes so the (user_uuid, position) index serves per-user scans. */
    const char *sql = user_uuid ? "SELECT " CW_EVENT_COLUMNS " FROM events"
                                  " WHERE user_uuid = ? AND position > ? AND position <= ?"
                                  " ORDER BY position LIMIT ?"
                                : "SELECT " CW_EVENT_COLUMNS " FROM events"
                                  " WHERE CAST(? AS TEXT) IS NULL AND position > ? AND"
                                  " position <= ? ORDER BY position LIMIT ?";
    const struct cw_domain *d = cw_db_domain(db);
    for (;;) {
        struct cw_stmt *st = cw_db_prepare(db, sql, err);
        if (!st)
            return CW_ERR_STORE;
        cw_stmt_bind_text(st, 1, user_uuid);
        cw_stmt_bind_int(st, 2, after);
        cw_stmt_bind_int(st, 3, until > 0 ? until : INT64_MAX);
        cw_stmt_bind_int(st, 4, SCAN_ROWS);
        int rc, rows = 0;
        while ((rc = cw_stmt_step(st, err)) == CW_ROW) {
            rows++;
            after = cw_stmt_int(st, 0);
            if (!name_in(cw_stmt_text(st, 3), names))
                continue;
            int stop = scan_row(st, d, fn, arg);
            if (stop) {
                cw_stmt_reset(st);
                return stop;
            }
        }
        if (rc != CW_DONE)
            return rc;
        if (rows < SCAN_ROWS)
            return CW_OK;
    }
}

/* ------------------------------------------------------------ migrations */

size_t cw_known_count(const struct cw_known_migrations *k)
{
    return k->n_core + (k->d ? k->d->n_migrations : 0);
}

const char *cw_known_id(const struct cw_known_migrations *k, size_t i)
{
    return i < k->n_core ? k->core[i].id : k->d->migrations[i - k->n_core].id;
}

const char *cw_known_sql(const struct cw_known_migrations *k, size_t i)
{
    if (i < k->n_core)
        return k->pg && k->core[i].sql_pg ? k->core[i].sql_pg : k->core[i].sql;
    const struct cw_migration_entry *m = &k->d->migrations[i - k->n_core];
    return k->pg && m->sql_pg ? m->sql_pg : m->sql;
}

int cw_known_applied(struct cw_db *db, const char *id, bool *yes, struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(db, "SELECT 1 FROM schema_migrations WHERE id = ?", err);
    if (!st)
        return CW_ERR_STORE;
    cw_stmt_bind_text(st, 1, id);
    int rc = cw_stmt_step(st, err);
    *yes = rc == CW_ROW;
    if (rc == CW_ROW)
        cw_stmt_reset(st);
    return rc == CW_ROW || rc == CW_DONE ? CW_OK : rc;
}

static size_t namespace_len(const char *id)
{
    const char *colon = strchr(id, ':');
    return colon ? (size_t)(colon - id) : strlen(id);
}

/* Whether id is known; else the newest known migration of its namespace, or NULL. */
static bool known(const struct cw_known_migrations *k, const char *id, const char **newest)
{
    size_t ns = namespace_len(id);
    *newest = NULL;
    for (size_t i = 0; i < cw_known_count(k); i++) {
        const char *known_id = cw_known_id(k, i);
        if (!strcmp(known_id, id))
            return true;
        if (namespace_len(known_id) == ns && !strncmp(known_id, id, ns))
            *newest = known_id;
    }
    return false;
}

/*
 * A recorded migration this binary does not know, in a namespace it knows
 * (the core's, or a loaded domain's), came from a newer binary; code that
 * does not know the schema must not write to it. Migrations of a module not
 * loaded now are not this run's business.
 */
static int refuse_newer(const struct cw_known_migrations *k, struct cw_db *db, const char *label,
                        struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(db, "SELECT id FROM schema_migrations", err);
    if (!st)
        return CW_ERR_STORE;
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW) {
        const char *id = cw_stmt_text(st, 0), *newest;
        if (!known(k, id, &newest) && newest) {
            cw_error_set(err, CW_ERR_STORE, NULL,
                         "%s was migrated by a newer calderwood: it has migration %s, and the "
                         "newest this binary knows is %s; run the newer version",
                         label, id, newest);
            cw_stmt_reset(st);
            return CW_ERR_STORE;
        }
    }
    return rc == CW_DONE ? CW_OK : rc;
}

int cw_known_check(const struct cw_known_migrations *k, struct cw_db *db, bool has_table,
                   const char *label, int *n_pending, char *first_pending, size_t len,
                   struct cw_error *err)
{
    *n_pending = 0;
    if (first_pending && len)
        first_pending[0] = '\0';
    int rc = has_table ? refuse_newer(k, db, label, err) : CW_OK;
    for (size_t i = 0; !rc && i < cw_known_count(k); i++) {
        const char *id = cw_known_id(k, i);
        bool done = false;
        if (has_table)
            rc = cw_known_applied(db, id, &done, err);
        if (!rc && !done && (*n_pending)++ == 0 && first_pending)
            snprintf(first_pending, len, "%s", id);
    }
    return rc;
}

/* Applies one migration with its record, in one transaction; a no-op when recorded. */
static int apply_one(struct cw_db *db, const char *id, const char *sql, int *n_applied,
                     struct cw_error *err)
{
    int rc = cw_db_begin(db, err);
    if (rc)
        return rc;
    bool done = false;
    rc = cw_known_applied(db, id, &done, err);
    if (!rc && !done) {
        struct cw_error why = {0};
        rc = BE(db)->run_script(db, sql, &why);
        if (rc)
            cw_error_set(err, CW_ERR_STORE, NULL, "migration %s failed: %s", id, why.message);
        cw_error_release(&why);
    }
    if (!rc && !done)
        rc = cw_db_exec(db, err, "INSERT INTO schema_migrations(id, applied_at) VALUES (?, ?)",
                        "ti", id, cw_now_us());
    if (rc || done) {
        cw_db_rollback(db);
        return rc;
    }
    rc = cw_db_commit(db, err);
    if (!rc && n_applied)
        ++*n_applied;
    return rc;
}

int cw_known_apply(const struct cw_known_migrations *k, struct cw_db *db, int *n_applied,
                   struct cw_error *err)
{
    int rc = CW_OK;
    for (size_t i = 0; !rc && i < cw_known_count(k); i++)
        rc = apply_one(db, cw_known_id(k, i), cw_known_sql(k, i), n_applied, err);
    return rc;
}

/* ----------------------------------------------------------- command log */

/* Reads a command-log row's uuid and outcome (uuid, outcome, positions, code, message). */
static void stored_outcome(struct cw_stmt *st, struct cw_command_record *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->uuid, sizeof(out->uuid), "%s", cw_stmt_text(st, 0));
    out->rejected = strcmp(cw_stmt_text(st, 1), "rejected") == 0;
    out->first_position = cw_stmt_int(st, 2);
    out->last_position = cw_stmt_int(st, 3);
    if (!cw_stmt_is_null(st, 4))
        snprintf(out->reject_code, sizeof(out->reject_code), "%s", cw_stmt_text(st, 4));
    if (!cw_stmt_is_null(st, 5))
        snprintf(out->reject_message, sizeof(out->reject_message), "%s", cw_stmt_text(st, 5));
}

int cw_store_find_command(struct cw_db *db, const char *user_uuid, const char *client_id,
                          int64_t client_seq, struct cw_command_record *out, struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(
        db,
        "SELECT uuid, outcome, first_position, last_position, reject_code, reject_message"
        " FROM commands WHERE user_uuid = ? AND client_id = ? AND client_seq = ?",
        err);
    if (!st)
        return CW_ERR_STORE;
    cw_stmt_bind_text_static(st, 1, user_uuid);
    cw_stmt_bind_text_static(st, 2, client_id);
    cw_stmt_bind_int(st, 3, client_seq);
    int rc = cw_stmt_step(st, err);
    if (rc == CW_DONE)
        return CW_ERR_NOT_FOUND;
    if (rc != CW_ROW)
        return rc;
    stored_outcome(st, out);
    cw_stmt_reset(st);
    return CW_OK;
}

/* The store's own statements bind every parameter: their old bindings need no clearing. */
static struct cw_stmt *prepare_unbound(struct cw_db *db, const char *sql, struct cw_error *err)
{
    return BE(db)->prepare_unbound ? BE(db)->prepare_unbound(db, sql, err)
                                   : cw_db_prepare(db, sql, err);
}

/* Binds text, or v serialised (copied) when text is NULL (an absent v reads {}). */
static void bind_json(struct cw_stmt *st, int idx, const char *text, const json_t *v)
{
    if (text) {
        cw_stmt_bind_text_static(st, idx, text);
        return;
    }
    struct cw_buf b = CW_BUF_INIT;
    if (v)
        cw_json_add(&b, v);
    else
        cw_buf_adds(&b, "{}");
    cw_stmt_bind_text(st, idx, cw_buf_cstr(&b));
    cw_buf_release(&b);
}

/* Binds a record's outcome columns from index first on: outcome, positions, code, message. */
static void bind_outcome(struct cw_stmt *st, int first, const struct cw_command_record *rec)
{
    cw_stmt_bind_text_static(st, first, rec->rejected ? "rejected" : "ok");
    if (rec->first_position) {
        cw_stmt_bind_int(st, first + 1, rec->first_position);
        cw_stmt_bind_int(st, first + 2, rec->last_position);
    } else {
        cw_stmt_bind_null(st, first + 1);
        cw_stmt_bind_null(st, first + 2);
    }
    cw_stmt_bind_text_static(st, first + 3, rec->rejected ? rec->reject_code : NULL);
    cw_stmt_bind_text_static(st, first + 4, rec->rejected ? rec->reject_message : NULL);
}

int cw_store_insert_command(struct cw_db *db, const struct cw_command *cmd,
                            const struct cw_command_record *rec, const char *data_text,
                            const char *meta_text, struct cw_error *err)
{
    bool held = false;
    int rc = BE(db)->hold_command
                 ? BE(db)->hold_command(db, cmd, rec, data_text, meta_text, &held, err)
                 : CW_OK;
    if (rc || held)
        return rc;
    /* The UNIQUE key is the idempotency check: no row inserted means a duplicate. */
    struct cw_stmt *st = prepare_unbound(db,
                                         "INSERT INTO commands(" CW_COMMAND_COLUMNS ")"
                                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                                         " ON CONFLICT (user_uuid, client_id, client_seq)"
                                         " DO NOTHING",
                                         err);
    if (!st)
        return CW_ERR_STORE;
    cw_stmt_bind_text_static(st, 1, cmd->uuid);
    cw_stmt_bind_text_static(st, 2, cmd->user_uuid);
    cw_stmt_bind_text_static(st, 3, cmd->client_id);
    cw_stmt_bind_int(st, 4, cmd->client_seq);
    cw_stmt_bind_text_static(st, 5, cmd->name);
    bind_json(st, 6, data_text, cmd->data);
    bind_json(st, 7, meta_text, cmd->meta);
    cw_stmt_bind_int(st, 8, cmd->received_at);
    bind_outcome(st, 9, rec);
    rc = cw_stmt_step(st, err);
    if (rc != CW_DONE)
        return rc;
    return cw_stmt_changes(st) ? CW_OK : CW_ERR_EXISTS;
}

int cw_store_update_command(struct cw_db *db, const struct cw_command *cmd,
                            const struct cw_command_record *rec, struct cw_error *err)
{
    bool done = false;
    int rc =
        BE(db)->update_held_command ? BE(db)->update_held_command(db, cmd, rec, &done, err) : CW_OK;
    if (rc || done)
        return rc;
    struct cw_stmt *st =
        prepare_unbound(db,
                        "UPDATE commands SET outcome = ?, first_position = ?,"
                        " last_position = ?, reject_code = ?, reject_message = ?"
                        " WHERE user_uuid = ? AND client_id = ? AND client_seq = ?",
                        err);
    if (!st)
        return CW_ERR_STORE;
    bind_outcome(st, 1, rec);
    cw_stmt_bind_text_static(st, 6, cmd->user_uuid);
    cw_stmt_bind_text_static(st, 7, cmd->client_id);
    cw_stmt_bind_int(st, 8, cmd->client_seq);
    return exec_stmt(st, err);
}

int cw_store_last_position(struct cw_db *db, int64_t *out, struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(db, "SELECT COALESCE(MAX(position), 0) FROM events", err);
    if (!st)
        return CW_ERR_STORE;
    int rc = cw_stmt_step(st, err);
    if (rc != CW_ROW)
        return rc == CW_DONE ? CW_ERR_STORE : rc;
    *out = cw_stmt_int(st, 0);
    cw_stmt_reset(st);
    return CW_OK;
}
