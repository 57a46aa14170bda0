/*
 * pages.c - page views of the built-in domain: the smallest whole loop.
 *
 * visit-page always succeeds and emits page-view, which every logged-in
 * user receives; the page_views projection keeps one row per event, keyed
 * by its position, and list-page-views reads it newest first with the
 * visitor's email. The url is stored as given: it is data, never fetched.
 */
#include "domain.h"

#define EV_PAGE_VIEW "page-view"

static const struct cw_field visit_fields[] = {
    {.name = "url", .type = CW_FIELD_STRING, .required = true, .max_length = 2048},
    {0},
};

static int handle_visit(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                        struct cw_error *err)
{
    const char *url = cw_domain_str(cmd->data, "url");
    if (!url)
        return cw_error_set(err, CW_ERR_REJECTED, "invalid-command", "visit-page needs a url");
    /* Built directly: json_pack parses its format on every call (2 % of the processor). */
    json_t *data = json_object();
    json_object_set_new_nocheck(data, "url", json_string_nocheck(url)); /* already UTF-8 */
    return cw_emit_take(out, EV_PAGE_VIEW, data);
}

static int aggregate_page_view(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    /* A system command has no user: its views are kept with a NULL user. */
    const char *user = ev->user_uuid && *ev->user_uuid ? ev->user_uuid : NULL;
    return cw_db_exec(db, err,
                      "INSERT INTO page_views(position, url, user_uuid, recorded_at)"
                      " VALUES (?, ?, ?, ?)",
                      "itti", ev->position, cw_domain_str(ev->data, "url"), user, ev->recorded_at);
}

static const struct cw_field list_fields[] = {
    {.name = "limit", .type = CW_FIELD_INTEGER, .ranged = true, .min = 1, .max = 1000},
    {.name = "after_position",
     .type = CW_FIELD_INTEGER,
     .ranged = true,
     .min = 0,
     .max = INT64_MAX},
    {0},
};

static int run_list_page_views(struct cw_db *db, const struct cw_query *q, json_t **result,
                               struct cw_error *err)
{
    json_t *limit = json_object_get(q->data, "limit");
    json_t *after = json_object_get(q->data, "after_position");
    return cw_db_query_json(db, result, err,
                            "SELECT p.position AS position, p.url AS url, p.user_uuid AS user_uuid,"
                            " u.email AS email, p.recorded_at AS recorded_at"
                            " FROM page_views p LEFT JOIN users u ON u.user_uuid = p.user_uuid"
                            " WHERE p.position > ? ORDER BY p.position DESC LIMIT ?",
                            "ii", (int64_t)(json_is_integer(after) ? json_integer_value(after) : 0),
                            (int64_t)(json_is_integer(limit) ? json_integer_value(limit) : 100));
}

static const struct cw_migration migrations[] = {
    {.id = "001-page-views",
     .sql = "CREATE TABLE page_views ("
            " position BIGINT PRIMARY KEY,"
            " url TEXT NOT NULL,"
            " user_uuid TEXT,"
            " recorded_at BIGINT NOT NULL);"},
    /*
     * In SQLite only a column declared INTEGER PRIMARY KEY is the rowid;
     * BIGINT PRIMARY KEY made a second B-tree, written on every page view
     * (about 5 % of the processor's work per visit-page). A PostgreSQL store
     * must read INTEGER PRIMARY KEY as BIGINT: positions pass 2^31. (003:
     * the cart's migration is demo:002.)
     */
    {.id = "003-page-views-rowid",
     .sql = "CREATE TABLE page_views_new ("
            " position INTEGER PRIMARY KEY,"
            " url TEXT NOT NULL,"
            " user_uuid TEXT,"
            " recorded_at BIGINT NOT NULL);"
            "INSERT INTO page_views_new(position, url, user_uuid, recorded_at)"
            " SELECT position, url, user_uuid, recorded_at FROM page_views;"
            "DROP TABLE page_views;"
            "ALTER TABLE page_views_new RENAME TO page_views;"},
};

static const struct cw_event_def events[] = {
    {.name = EV_PAGE_VIEW,
     .version = 1,
     .audience = CW_AUDIENCE_ALL,
     .aggregate = aggregate_page_view},
};

static const struct cw_command_def commands[] = {
    {.name = "visit-page", .fields = visit_fields, .handle = handle_visit},
};

static const struct cw_query_def queries[] = {
    {.name = "list-page-views", .fields = list_fields, .run = run_list_page_views},
};

int cw_pages_register(struct cw_domain *d)
{
    const struct cw_domain_part part =
        CW_DOMAIN_PART("demo", migrations, events, commands, queries);
    return cw_domain_part_add(d, &part);
}
