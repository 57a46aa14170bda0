/*
 * db.c - the one-call SQL helpers of calderwood.h and the event-log scan,
 * written once over the cw_stmt interface so every backend shares them.
 */
#include "core/registry.h"
#include "store.h"

#include <stdarg.h>
#include <string.h>

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

int cw_db_exec(struct cw_db *db, struct cw_error *err, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    struct cw_stmt *st = prepare_bound(db, err, sql, types, ap);
    va_end(ap);
    if (!st)
        return CW_ERR_STORE;
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW)
        ;
    return rc == CW_DONE ? CW_OK : rc;
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

int cw_db_scan_events(struct cw_db *db, int64_t after, int64_t until, const char *user_uuid,
                      const char *const *names, cw_event_cb fn, void *arg, struct cw_error *err)
{
    /* Two shapes so the (user_uuid, position) index serves per-user scans. */
    const char *sql =
        user_uuid ? "SELECT position, uuid, command_uuid, name, version, data, meta, user_uuid,"
                    " client_id, client_seq, recorded_at FROM events"
                    " WHERE user_uuid = ? AND position > ? AND position <= ? ORDER BY position"
                  : "SELECT position, uuid, command_uuid, name, version, data, meta, user_uuid,"
                    " client_id, client_seq, recorded_at FROM events"
                    " WHERE ? IS NULL AND position > ? AND position <= ? ORDER BY position";
    struct cw_stmt *st = cw_db_prepare(db, sql, err);
    if (!st)
        return CW_ERR_STORE;
    cw_stmt_bind_text(st, 1, user_uuid);
    cw_stmt_bind_int(st, 2, after);
    cw_stmt_bind_int(st, 3, until > 0 ? until : INT64_MAX);
    const struct cw_domain *d = cw_db_domain(db);
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW) {
        const char *name = cw_stmt_text(st, 3);
        if (!name_in(name, names))
            continue;
        struct cw_event ev = {
            .position = cw_stmt_int(st, 0),
            .uuid = cw_stmt_text(st, 1),
            .command_uuid = cw_stmt_text(st, 2),
            .name = name,
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
        if (stop) {
            cw_stmt_reset(st);
            return stop;
        }
    }
    return rc == CW_DONE ? CW_OK : rc;
}
