/*
 * test_module.c - a domain module built as a shared object, loaded by
 * tests/unit/test_module_load.c the way `calderwood serve --module` loads
 * one. It sees only the public header.
 *
 *   command test-echo {text: string, required, at most 100 bytes}
 *     -> event echoed (version 2: {"text"}; version 1 was {"msg"})
 *   aggregate: one row per echoed event in testmod_echoes
 *   query test-echoes: the rows of testmod_echoes, oldest first
 */
#include "calderwood.h"

static int handle_echo(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                       struct cw_error *err)
{
    return cw_emit_take(out, "echoed",
                        json_pack("{s:O}", "text", json_object_get(cmd->data, "text")));
}

static int aggregate_echoed(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(
        db, err, "INSERT INTO testmod_echoes(position, text, user_uuid) VALUES (?, ?, ?)", "itt",
        ev->position, json_string_value(json_object_get(ev->data, "text")), ev->user_uuid);
}

/* v1 {"msg": M} -> v2 {"text": M}. */
static json_t *upcast_echoed(int from_version, json_t *data)
{
    if (from_version != 1)
        return data;
    json_t *out = json_object();
    json_t *msg = json_object_get(data, "msg");
    json_object_set(out, "text", msg ? msg : json_null());
    json_decref(data);
    return out;
}

static int run_echoes(struct cw_db *db, const struct cw_query *q, json_t **result,
                      struct cw_error *err)
{
    return cw_db_query_json(db, result, err,
                            "SELECT position, text, user_uuid FROM testmod_echoes"
                            " ORDER BY position",
                            "");
}

static const struct cw_field echo_fields[] = {
    {.name = "text", .type = CW_FIELD_STRING, .required = true, .max_length = 100},
    {0},
};

static const struct cw_command_def echo_def = {
    .name = "test-echo", .fields = echo_fields, .handle = handle_echo};

static const struct cw_event_def echoed_def = {
    .name = "echoed", .version = 2, .aggregate = aggregate_echoed, .upcast = upcast_echoed};

static const struct cw_query_def echoes_def = {.name = "test-echoes", .run = run_echoes};

static const struct cw_migration echoes_001 = {.id = "001-echoes",
                                               .sql = "CREATE TABLE testmod_echoes ("
                                                      " position INTEGER PRIMARY KEY,"
                                                      " text TEXT NOT NULL,"
                                                      " user_uuid TEXT);"};

int cw_module_init(struct cw_domain *d)
{
    int rc = cw_domain_add_command(d, &echo_def);
    if (!rc)
        rc = cw_domain_add_event(d, &echoed_def);
    if (!rc)
        rc = cw_domain_add_query(d, &echoes_def);
    if (!rc)
        rc = cw_domain_add_migration(d, "testmod", &echoes_001);
    return rc;
}
