/*
 * todo.c - a to-do list shared by a team: the domain docs/DOMAIN.md builds,
 * step by step. It sees only <calderwood.h>, as any module built out of
 * the tree does.
 *
 *   create-list   {name, private?}        -> list-created   {list_id, name, private}
 *   add-item      {list_id, text, due?}   -> item-added     {list_id, item_id, text, due, private}
 *   complete-item {item_id}               -> item-completed {list_id, item_id, private}
 *   rename-item   {item_id, text}         -> item-renamed   {list_id, item_id, text, private}
 *
 * A list is seen by the whole team unless it is private, then by its owner
 * only: its events, its items in the `lists` query, and the right to add to
 * it. Completing an item twice is rejected (already-done), as is naming an
 * item or list the user cannot see (no-such-item, no-such-list).
 *
 * item-added is at version 2: version 1 had no due date. Its upcaster reads
 * old events as due: null, and migration 002 gave the table its column.
 */
#include <calderwood.h>

#include <string.h>

/* --------------------------------------------------------------- helpers */

/* The string at key of an object, or NULL. */
static const char *str(const json_t *data, const char *key)
{
    return json_string_value(json_object_get(data, key));
}

/* A field error in the shape the generic validation uses: [{"field","reason"}]. */
static int field_error(struct cw_error *err, const char *field, const char *reason)
{
    json_t *details = json_pack("[{s:s,s:s}]", "field", field, "reason", reason);
    return cw_error_set_details_take(err, CW_ERR_INVALID, NULL, details, "%s %s", field, reason);
}

/* ------------------------------------------------------------ migrations */

static const struct cw_migration migrations[] = {
    {.id = "001-lists",
     .sql = "CREATE TABLE todo_lists ("
            " list_id TEXT PRIMARY KEY,"
            " owner_uuid TEXT NOT NULL,"
            " name TEXT NOT NULL,"
            " private INTEGER NOT NULL,"
            " position INTEGER NOT NULL);"
            "CREATE TABLE todo_items ("
            " item_id TEXT PRIMARY KEY,"
            " list_id TEXT NOT NULL REFERENCES todo_lists(list_id),"
            " text TEXT NOT NULL,"
            " done_by TEXT,"
            " position INTEGER NOT NULL);"
            "CREATE INDEX todo_items_by_list ON todo_items(list_id, position);"},
    {.id = "002-item-due", .sql = "ALTER TABLE todo_items ADD COLUMN due TEXT;"},
};

/* ------------------------------------------------------------- audience */

/* Events of a shared list go to every user; of a private one, to its owner. */
static bool team_or_owner(const struct cw_event *ev, const char *user_uuid)
{
    if (!json_is_true(json_object_get(ev->data, "private")))
        return true;
    return ev->user_uuid && user_uuid && strcmp(ev->user_uuid, user_uuid) == 0;
}

/* ----------------------------------------------------------- create-list */

static const struct cw_field create_list_fields[] = {
    {.name = "name", .type = CW_FIELD_STRING, .required = true, .min_length = 1, .max_length = 100},
    {.name = "private", .type = CW_FIELD_BOOLEAN},
    {0},
};

static int handle_create_list(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                              struct cw_error *err)
{
    bool is_private = json_is_true(json_object_get(cmd->data, "private"));
    /* The command's uuid names the list: unique, and the same if the batch is retried. */
    return cw_emit_take(out, "list-created",
                        json_pack("{s:s,s:s,s:b}", "list_id", cmd->uuid, "name",
                                  str(cmd->data, "name"), "private", is_private));
}

static int aggregate_list_created(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err,
                      "INSERT INTO todo_lists(list_id, owner_uuid, name, private, position)"
                      " VALUES (?, ?, ?, ?, ?)",
                      "tttii", str(ev->data, "list_id"), ev->user_uuid, str(ev->data, "name"),
                      (int64_t)json_is_true(json_object_get(ev->data, "private")), ev->position);
}

/* -------------------------------------------------------------- add-item */

static const struct cw_field add_item_fields[] = {
    {.name = "list_id", .type = CW_FIELD_UUID, .required = true},
    {.name = "text", .type = CW_FIELD_STRING, .required = true, .min_length = 1, .max_length = 200},
    {.name = "due", .type = CW_FIELD_STRING, .max_length = 10},
    {0},
};

/* due, when given, is a date: YYYY-MM-DD. Pure: runs on the gateway thread. */
static int coerce_add_item(json_t *data, struct cw_error *err)
{
    const char *due = str(data, "due");
    if (!due)
        return CW_OK;
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? due[i] != '-' : (due[i] < '0' || due[i] > '9'))
            return field_error(err, "due", "must be a date: YYYY-MM-DD");
    }
    return CW_OK;
}

/* Is the list private? no-such-list when the user may not see it. */
static int list_private(struct cw_db *db, const char *list_id, const char *user_uuid,
                        int64_t *is_private, struct cw_error *err)
{
    int rc = cw_db_query_int(db, is_private, err,
                             "SELECT private FROM todo_lists WHERE list_id = ?"
                             " AND (private = 0 OR owner_uuid = ?)",
                             "tt", list_id, user_uuid);
    if (rc == CW_ERR_NOT_FOUND)
        return cw_error_set(err, CW_ERR_REJECTED, "no-such-list", "no list %s", list_id);
    return rc;
}

static int handle_add_item(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                           struct cw_error *err)
{
    const char *list_id = str(cmd->data, "list_id");
    int64_t is_private;
    int rc = list_private(db, list_id, cmd->user_uuid, &is_private, err);
    if (rc)
        return rc;
    return cw_emit_take(out, "item-added",
                        json_pack("{s:s,s:s,s:s,s:s?,s:b}", "list_id", list_id, "item_id",
                                  cmd->uuid, "text", str(cmd->data, "text"), "due",
                                  str(cmd->data, "due"), "private", (int)is_private));
}

static int aggregate_item_added(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err,
                      "INSERT INTO todo_items(item_id, list_id, text, due, position)"
                      " VALUES (?, ?, ?, ?, ?)",
                      "tttti", str(ev->data, "item_id"), str(ev->data, "list_id"),
                      str(ev->data, "text"), str(ev->data, "due"), ev->position);
}

/* v1 {list_id, item_id, text, private} -> v2: the same and "due": null. */
static json_t *upcast_item_added(int from_version, json_t *data)
{
    if (from_version == 1)
        json_object_set_new(data, "due", json_null());
    return data;
}

/* ------------------------------------------------ complete-item, rename-item */

static const struct cw_field complete_item_fields[] = {
    {.name = "item_id", .type = CW_FIELD_UUID, .required = true},
    {0},
};

static const struct cw_field rename_item_fields[] = {
    {.name = "item_id", .type = CW_FIELD_UUID, .required = true},
    {.name = "text", .type = CW_FIELD_STRING, .required = true, .min_length = 1, .max_length = 200},
    {0},
};

/* The item as the user may see it: {list_id, private, done} or no-such-item. */
static int find_item(struct cw_db *db, const struct cw_command *cmd, json_t **item,
                     struct cw_error *err)
{
    const char *item_id = str(cmd->data, "item_id");
    json_t *rows = NULL;
    int rc = cw_db_query_json(
        db, &rows, err,
        "SELECT i.list_id, l.private, CASE WHEN i.done_by IS NULL THEN 0 ELSE 1 END AS done"
        " FROM todo_items i JOIN todo_lists l ON l.list_id = i.list_id"
        " WHERE i.item_id = ? AND (l.private = 0 OR l.owner_uuid = ?)",
        "tt", item_id, cmd->user_uuid);
    if (!rc && json_array_size(rows) == 0)
        rc = cw_error_set(err, CW_ERR_REJECTED, "no-such-item", "no item %s", item_id);
    if (!rc)
        *item = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

/* The data every item event carries: which item, which list, and who sees it. */
static json_t *item_event(json_t *item, const char *item_id)
{
    json_t *is_private = json_object_get(item, "private");
    return json_pack("{s:O,s:s,s:b}", "list_id", json_object_get(item, "list_id"), "item_id",
                     item_id, "private", json_integer_value(is_private) != 0);
}

static int handle_complete_item(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                                struct cw_error *err)
{
    json_t *item = NULL;
    int rc = find_item(db, cmd, &item, err);
    if (rc)
        return rc;
    if (json_integer_value(json_object_get(item, "done")))
        rc = cw_error_set(err, CW_ERR_REJECTED, "already-done", "that item is already done");
    else
        rc = cw_emit_take(out, "item-completed", item_event(item, str(cmd->data, "item_id")));
    json_decref(item);
    return rc;
}

static int handle_rename_item(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                              struct cw_error *err)
{
    json_t *item = NULL;
    int rc = find_item(db, cmd, &item, err);
    if (rc)
        return rc;
    json_t *data = item_event(item, str(cmd->data, "item_id"));
    json_object_set(data, "text", json_object_get(cmd->data, "text"));
    json_decref(item);
    return cw_emit_take(out, "item-renamed", data);
}

static int aggregate_item_completed(struct cw_db *db, const struct cw_event *ev,
                                    struct cw_error *err)
{
    return cw_db_exec(db, err, "UPDATE todo_items SET done_by = ? WHERE item_id = ?", "tt",
                      ev->user_uuid, str(ev->data, "item_id"));
}

static int aggregate_item_renamed(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err, "UPDATE todo_items SET text = ? WHERE item_id = ?", "tt",
                      str(ev->data, "text"), str(ev->data, "item_id"));
}

/* ----------------------------------------------------------------- lists */

/* 0/1 columns read as integers on both backends; the client gets booleans. */
static void as_bool(json_t *rows, const char *key)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
        json_object_set_new(row, key, json_boolean(json_integer_value(json_object_get(row, key))));
}

/* Every list the user may see, oldest first, each with its items. */
static int run_lists(struct cw_db *db, const struct cw_query *q, json_t **result,
                     struct cw_error *err)
{
    const char *user = q->user_uuid ? q->user_uuid : "";
    json_t *lists = NULL, *list;
    int rc = cw_db_query_json(db, &lists, err,
                              "SELECT list_id, name, private, owner_uuid FROM todo_lists"
                              " WHERE private = 0 OR owner_uuid = ? ORDER BY position",
                              "t", user);
    size_t i;
    json_array_foreach(lists, i, list)
    {
        json_t *items = NULL;
        if (!rc)
            rc = cw_db_query_json(db, &items, err,
                                  "SELECT item_id, text, due,"
                                  " CASE WHEN done_by IS NULL THEN 0 ELSE 1 END AS done"
                                  " FROM todo_items WHERE list_id = ? ORDER BY position",
                                  "t", str(list, "list_id"));
        as_bool(items, "done");
        json_object_set_new(list, "items", items ? items : json_array());
    }
    as_bool(lists, "private");
    if (rc)
        json_decref(lists);
    else
        *result = lists;
    return rc;
}

/* --------------------------------------------------------- registration */

static const struct cw_command_def commands[] = {
    {.name = "create-list", .fields = create_list_fields, .handle = handle_create_list},
    {.name = "add-item",
     .fields = add_item_fields,
     .coerce = coerce_add_item,
     .handle = handle_add_item},
    {.name = "complete-item", .fields = complete_item_fields, .handle = handle_complete_item},
    {.name = "rename-item", .fields = rename_item_fields, .handle = handle_rename_item},
};

static const struct cw_event_def events[] = {
    {.name = "list-created",
     .version = 1,
     .audience = CW_AUDIENCE_CUSTOM,
     .audience_fn = team_or_owner,
     .aggregate = aggregate_list_created},
    {.name = "item-added",
     .version = 2,
     .audience = CW_AUDIENCE_CUSTOM,
     .audience_fn = team_or_owner,
     .aggregate = aggregate_item_added,
     .upcast = upcast_item_added},
    {.name = "item-completed",
     .version = 1,
     .audience = CW_AUDIENCE_CUSTOM,
     .audience_fn = team_or_owner,
     .aggregate = aggregate_item_completed},
    {.name = "item-renamed",
     .version = 1,
     .audience = CW_AUDIENCE_CUSTOM,
     .audience_fn = team_or_owner,
     .aggregate = aggregate_item_renamed},
};

static const struct cw_query_def lists_def = {.name = "lists", .run = run_lists};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int cw_module_init(struct cw_domain *d)
{
    int rc = CW_OK;
    for (size_t i = 0; !rc && i < COUNT(migrations); i++)
        rc = cw_domain_add_migration(d, "todo", &migrations[i]);
    for (size_t i = 0; !rc && i < COUNT(events); i++)
        rc = cw_domain_add_event(d, &events[i]);
    for (size_t i = 0; !rc && i < COUNT(commands); i++)
        rc = cw_domain_add_command(d, &commands[i]);
    if (!rc)
        rc = cw_domain_add_query(d, &lists_def);
    return rc;
}
