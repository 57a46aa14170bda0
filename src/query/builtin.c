/*
 * builtin.c - the queries every server answers: describe (the commands and
 * queries a client may use, with their fields) and events (the log as the
 * asking user may see it, newest first).
 */
#include "core/registry.h"
#include "core/validate.h"
#include "engine/update.h"
#include "query.h"
#include "store/store.h"

#include <string.h>

static int run_describe(struct cw_db *db, const struct cw_query *q, json_t **result,
                        struct cw_error *err)
{
    const struct cw_domain *d = cw_db_domain(db);
    json_t *commands = json_array(), *queries = json_array();
    for (size_t i = 0; i < d->n_commands; i++) {
        const struct cw_command_def *c = d->command_list[i];
        if (!c->internal)
            json_array_append_new(commands, json_pack("{s:s,s:o}", "name", c->name, "fields",
                                                      cw_describe_fields(c->fields)));
    }
    for (size_t i = 0; i < d->n_queries; i++) {
        const struct cw_query_def *x = d->query_list[i];
        json_array_append_new(queries, json_pack("{s:s,s:o}", "name", x->name, "fields",
                                                 cw_describe_fields(x->fields)));
    }
    *result = json_pack("{s:o,s:o}", "commands", commands, "queries", queries);
    return CW_OK;
}

static const struct cw_field events_fields[] = {
    {.name = "name", .type = CW_FIELD_STRING, .max_length = 128},
    {.name = "after_position",
     .type = CW_FIELD_INTEGER,
     .ranged = true,
     .min = 0,
     .max = INT64_MAX},
    {.name = "before_position",
     .type = CW_FIELD_INTEGER,
     .ranged = true,
     .min = 1,
     .max = INT64_MAX},
    {.name = "limit", .type = CW_FIELD_INTEGER, .ranged = true, .min = 1, .max = 1000},
    {0},
};

static json_t *parse(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_object();
}

/*
 * Walks the log backwards from before_position, keeping the events the user
 * may see, until limit are found. Audience rules are the update rules.
 */
static int run_events(struct cw_db *db, const struct cw_query *q, json_t **result,
                      struct cw_error *err)
{
    const struct cw_domain *d = cw_db_domain(db);
    json_t *name = json_object_get(q->data, "name");
    json_t *after = json_object_get(q->data, "after_position");
    json_t *before = json_object_get(q->data, "before_position");
    json_t *limit = json_object_get(q->data, "limit");
    int64_t want = json_is_integer(limit) ? json_integer_value(limit) : 100;
    struct cw_stmt *st = cw_db_prepare(
        db,
        "SELECT position, uuid, command_uuid, name, version, data, meta, user_uuid, client_id,"
        " client_seq, recorded_at FROM events WHERE position > ? AND position < ?"
        " AND (? IS NULL OR name = ?) ORDER BY position DESC",
        err);
    if (!st)
        return CW_ERR_STORE;
    const char *only = json_is_string(name) ? json_string_value(name) : NULL;
    cw_stmt_bind_int(st, 1, json_is_integer(after) ? json_integer_value(after) : 0);
    cw_stmt_bind_int(st, 2, json_is_integer(before) ? json_integer_value(before) : INT64_MAX);
    cw_stmt_bind_text(st, 3, only);
    cw_stmt_bind_text(st, 4, only);
    json_t *out = json_array();
    int rc = CW_DONE;
    while ((int64_t)json_array_size(out) < want && (rc = cw_stmt_step(st, err)) == CW_ROW) {
        struct cw_event ev = {
            .position = cw_stmt_int(st, 0),
            .uuid = cw_stmt_text(st, 1),
            .command_uuid = cw_stmt_text(st, 2),
            .name = cw_stmt_text(st, 3),
            .version = (int)cw_stmt_int(st, 4),
            .user_uuid = cw_stmt_text(st, 7),
            .client_id = cw_stmt_text(st, 8),
            .client_seq = cw_stmt_int(st, 9),
            .recorded_at = cw_stmt_int(st, 10),
        };
        const struct cw_event_def *def = cw_domain_event(d, ev.name);
        if (!def)
            continue;
        ev.data = parse(cw_stmt_text(st, 5));
        ev.meta = parse(cw_stmt_text(st, 6));
        cw_domain_upcast(d, ev.name, &ev.version, &ev.data);
        if (cw_domain_audience_allows(def, &ev, q->user_uuid))
            json_array_append_new(out, cw_event_to_json(def, &ev));
        json_decref(ev.data);
        json_decref(ev.meta);
    }
    if ((int64_t)json_array_size(out) >= want)
        cw_stmt_reset(st);
    else if (rc != CW_DONE) {
        json_decref(out);
        return rc;
    }
    *result = out;
    return CW_OK;
}

static const struct cw_query_def describe_def = {.name = "describe", .run = run_describe};
static const struct cw_query_def events_def = {
    .name = "events", .fields = events_fields, .run = run_events};

int cw_query_register_builtins(struct cw_domain *d)
{
    int rc = cw_domain_add_query(d, &describe_def);
    if (!rc)
        rc = cw_domain_add_query(d, &events_def);
    return rc;
}
