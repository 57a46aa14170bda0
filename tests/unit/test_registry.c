/*
 * test_registry.c - the domain registry (src/core/registry.h): registration
 * rules, lookups, upcasting and audiences.
 */
#include "calderwood.h"
#include "core/registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int noop_handle(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                       struct cw_error *err)
{
    return CW_OK;
}

static int noop_run(struct cw_db *db, const struct cw_query *q, json_t **result,
                    struct cw_error *err)
{
    *result = json_null();
    return CW_OK;
}

static bool only_bob(const struct cw_event *ev, const char *user_uuid)
{
    return user_uuid && strcmp(user_uuid, "bob") == 0;
}

/* v1 {"msg"} -> v2 {"text"} -> v3 {"text", "len"}; records the steps taken. */
static char upcast_trace[64];
static json_t *upcast_thing(int from_version, json_t *data)
{
    size_t n = strlen(upcast_trace);
    snprintf(upcast_trace + n, sizeof(upcast_trace) - n, "%d,", from_version);
    json_t *out = json_object();
    if (from_version == 1) {
        json_object_set(out, "text", json_object_get(data, "msg"));
    } else if (from_version == 2) {
        json_t *t = json_object_get(data, "text");
        json_object_set(out, "text", t);
        json_object_set_new(out, "len", json_integer((json_int_t)json_string_length(t)));
    }
    json_decref(data);
    return out;
}

static void test_add_and_lookup(void **state)
{
    static const struct cw_command_def c1 = {.name = "do-thing", .handle = noop_handle};
    static const struct cw_command_def c2 = {.name = "do-other-2", .handle = noop_handle};
    static const struct cw_event_def e1 = {.name = "thing-done", .version = 1};
    static const struct cw_query_def q1 = {.name = "list-things", .run = noop_run};
    struct cw_domain *d = cw_domain_new();
    assert_int_equal(cw_domain_add_command(d, &c1), CW_OK);
    assert_int_equal(cw_domain_add_command(d, &c2), CW_OK);
    assert_int_equal(cw_domain_add_event(d, &e1), CW_OK);
    assert_int_equal(cw_domain_add_query(d, &q1), CW_OK);

    assert_ptr_equal(cw_domain_command(d, "do-thing"), &c1);
    assert_ptr_equal(cw_domain_command(d, "do-other-2"), &c2);
    assert_null(cw_domain_command(d, "thing-done"));
    assert_ptr_equal(cw_domain_event(d, "thing-done"), &e1);
    assert_null(cw_domain_event(d, "do-thing"));
    assert_ptr_equal(cw_domain_query(d, "list-things"), &q1);
    assert_null(cw_domain_query(d, "missing"));

    /* Registration order is kept for describe. */
    assert_int_equal(d->n_commands, 2);
    assert_ptr_equal(d->command_list[0], &c1);
    assert_ptr_equal(d->command_list[1], &c2);
    assert_int_equal(d->n_events, 1);
    assert_int_equal(d->n_queries, 1);
    cw_domain_free(d);
    cw_domain_free(NULL);
}

static void test_duplicates(void **state)
{
    static const struct cw_command_def c1 = {.name = "same", .handle = noop_handle};
    static const struct cw_command_def c1b = {.name = "same", .handle = noop_handle};
    static const struct cw_event_def e1 = {.name = "same", .version = 1};
    static const struct cw_event_def e1b = {.name = "same", .version = 1};
    static const struct cw_query_def q1 = {.name = "same", .run = noop_run};
    static const struct cw_query_def q1b = {.name = "same", .run = noop_run};
    struct cw_domain *d = cw_domain_new();
    /* Commands, events and queries are separate name spaces. */
    assert_int_equal(cw_domain_add_command(d, &c1), CW_OK);
    assert_int_equal(cw_domain_add_event(d, &e1), CW_OK);
    assert_int_equal(cw_domain_add_query(d, &q1), CW_OK);
    assert_int_equal(cw_domain_add_command(d, &c1b), CW_ERR_EXISTS);
    assert_int_equal(cw_domain_add_command(d, &c1), CW_ERR_EXISTS);
    assert_int_equal(cw_domain_add_event(d, &e1b), CW_ERR_EXISTS);
    assert_int_equal(cw_domain_add_query(d, &q1b), CW_ERR_EXISTS);
    /* The first registration stays. */
    assert_ptr_equal(cw_domain_command(d, "same"), &c1);
    assert_ptr_equal(cw_domain_event(d, "same"), &e1);
    assert_ptr_equal(cw_domain_query(d, "same"), &q1);
    assert_int_equal(d->n_commands, 1);
    assert_int_equal(d->n_events, 1);
    assert_int_equal(d->n_queries, 1);
    cw_domain_free(d);
}

static void test_invalid(void **state)
{
    struct cw_domain *d = cw_domain_new();
    /* Commands: no handle, bad names. */
    static const struct cw_command_def no_handle = {.name = "ok-name"};
    assert_int_equal(cw_domain_add_command(d, &no_handle), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_command(d, NULL), CW_ERR_INVALID);
    const char *bad_names[] = {"",        "Upper",   "has space", "under_score",
                               "dot.ted", "slash/x", "tab\t",     "é"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        struct cw_command_def c = {.name = bad_names[i], .handle = noop_handle};
        assert_int_equal(cw_domain_add_command(d, &c), CW_ERR_INVALID);
        struct cw_event_def e = {.name = bad_names[i], .version = 1};
        assert_int_equal(cw_domain_add_event(d, &e), CW_ERR_INVALID);
        struct cw_query_def q = {.name = bad_names[i], .run = noop_run};
        assert_int_equal(cw_domain_add_query(d, &q), CW_ERR_INVALID);
    }
    struct cw_command_def null_name = {.handle = noop_handle};
    assert_int_equal(cw_domain_add_command(d, &null_name), CW_ERR_INVALID);
    char long_name[200];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    struct cw_command_def too_long = {.name = long_name, .handle = noop_handle};
    assert_int_equal(cw_domain_add_command(d, &too_long), CW_ERR_INVALID);

    /* Events: version below 1, version 2 without upcaster, custom audience without fn. */
    static const struct cw_event_def v0 = {.name = "v-zero", .version = 0};
    static const struct cw_event_def v2 = {.name = "v-two", .version = 2};
    static const struct cw_event_def custom = {
        .name = "custom", .version = 1, .audience = CW_AUDIENCE_CUSTOM};
    assert_int_equal(cw_domain_add_event(d, &v0), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_event(d, &v2), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_event(d, &custom), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_event(d, NULL), CW_ERR_INVALID);

    /* Queries: no run. */
    static const struct cw_query_def no_run = {.name = "no-run"};
    assert_int_equal(cw_domain_add_query(d, &no_run), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_query(d, NULL), CW_ERR_INVALID);

    /* Migrations: missing namespace, id or sql. */
    static const struct cw_migration m_ok = {.id = "001", .sql = "SELECT 1"};
    static const struct cw_migration m_no_id = {.sql = "SELECT 1"};
    static const struct cw_migration m_empty_id = {.id = "", .sql = "SELECT 1"};
    static const struct cw_migration m_no_sql = {.id = "002"};
    assert_int_equal(cw_domain_add_migration(d, NULL, &m_ok), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_migration(d, "", &m_ok), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_migration(d, "ns", NULL), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_migration(d, "ns", &m_no_id), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_migration(d, "ns", &m_empty_id), CW_ERR_INVALID);
    assert_int_equal(cw_domain_add_migration(d, "ns", &m_no_sql), CW_ERR_INVALID);

    /* Nothing of the above was registered. */
    assert_int_equal(d->n_commands, 0);
    assert_int_equal(d->n_events, 0);
    assert_int_equal(d->n_queries, 0);
    assert_int_equal(d->n_migrations, 0);
    assert_null(cw_domain_event(d, "v-two"));
    cw_domain_free(d);
}

static void test_migrations(void **state)
{
    static const struct cw_migration m1 = {.id = "001-a", .sql = "CREATE TABLE a(x)"};
    static const struct cw_migration m2 = {.id = "002-b", .sql = "CREATE TABLE b(x)"};
    static const struct cw_migration m1_again = {.id = "001-a", .sql = "CREATE TABLE c(x)"};
    struct cw_domain *d = cw_domain_new();
    assert_int_equal(cw_domain_add_migration(d, "shop", &m1), CW_OK);
    assert_int_equal(cw_domain_add_migration(d, "shop", &m2), CW_OK);
    assert_int_equal(cw_domain_add_migration(d, "shop", &m1_again), CW_ERR_EXISTS);
    /* The same id in another namespace is another migration. */
    assert_int_equal(cw_domain_add_migration(d, "demo", &m1), CW_OK);
    assert_int_equal(d->n_migrations, 3);
    assert_string_equal(d->migrations[0].id, "shop:001-a");
    assert_string_equal(d->migrations[0].sql, "CREATE TABLE a(x)");
    assert_string_equal(d->migrations[1].id, "shop:002-b");
    assert_string_equal(d->migrations[2].id, "demo:001-a");
    cw_domain_free(d);
}

static void test_upcast_chain(void **state)
{
    static const struct cw_event_def thing = {
        .name = "thing", .version = 3, .upcast = upcast_thing};
    static const struct cw_event_def plain = {.name = "plain", .version = 1};
    struct cw_domain *d = cw_domain_new();
    assert_int_equal(cw_domain_add_event(d, &thing), CW_OK);
    assert_int_equal(cw_domain_add_event(d, &plain), CW_OK);

    /* v1 -> v2 -> v3 */
    upcast_trace[0] = '\0';
    int version = 1;
    json_t *data = json_pack("{s:s}", "msg", "hello");
    cw_domain_upcast(d, "thing", &version, &data);
    assert_int_equal(version, 3);
    assert_string_equal(upcast_trace, "1,2,");
    assert_string_equal(json_string_value(json_object_get(data, "text")), "hello");
    assert_int_equal(json_integer_value(json_object_get(data, "len")), 5);
    assert_null(json_object_get(data, "msg"));
    json_decref(data);

    /* v2 -> v3 only */
    upcast_trace[0] = '\0';
    version = 2;
    data = json_pack("{s:s}", "text", "hi");
    cw_domain_upcast(d, "thing", &version, &data);
    assert_int_equal(version, 3);
    assert_string_equal(upcast_trace, "2,");
    assert_int_equal(json_integer_value(json_object_get(data, "len")), 2);
    json_decref(data);

    /* Current, newer and undefined events are left as they are. */
    upcast_trace[0] = '\0';
    const int cases[][2] = {{3, 3}, {4, 4}};
    for (size_t i = 0; i < 2; i++) {
        version = cases[i][0];
        data = json_pack("{s:i}", "keep", 1);
        json_t *before = data;
        cw_domain_upcast(d, "thing", &version, &data);
        assert_int_equal(version, cases[i][1]);
        assert_ptr_equal(data, before);
        json_decref(data);
    }
    version = 1;
    data = json_pack("{s:i}", "keep", 1);
    json_t *before = data;
    cw_domain_upcast(d, "unknown-event", &version, &data);
    cw_domain_upcast(d, "plain", &version, &data);
    assert_int_equal(version, 1);
    assert_ptr_equal(data, before);
    json_decref(data);
    assert_string_equal(upcast_trace, "");
    cw_domain_free(d);
}

static void test_audience(void **state)
{
    static const struct cw_event_def user = {.name = "mine", .version = 1};
    static const struct cw_event_def all = {
        .name = "public", .version = 1, .audience = CW_AUDIENCE_ALL};
    static const struct cw_event_def custom = {
        .name = "for-bob", .version = 1, .audience = CW_AUDIENCE_CUSTOM, .audience_fn = only_bob};
    struct cw_domain *d = cw_domain_new();
    assert_int_equal(cw_domain_add_event(d, &custom), CW_OK);
    cw_domain_free(d);

    struct cw_event ev = {.name = "x", .version = 1, .user_uuid = "alice"};
    /* USER: the issuing user only. */
    assert_true(cw_domain_audience_allows(&user, &ev, "alice"));
    assert_false(cw_domain_audience_allows(&user, &ev, "bob"));
    assert_false(cw_domain_audience_allows(&user, &ev, NULL));
    /* An undefined event falls back to the issuing user only. */
    assert_true(cw_domain_audience_allows(NULL, &ev, "alice"));
    assert_false(cw_domain_audience_allows(NULL, &ev, "bob"));
    /* A system event (no user) is seen by nobody under USER. */
    struct cw_event sys = {.name = "x", .version = 1, .user_uuid = NULL};
    assert_false(cw_domain_audience_allows(&user, &sys, "alice"));
    /* ALL: every user. */
    assert_true(cw_domain_audience_allows(&all, &ev, "alice"));
    assert_true(cw_domain_audience_allows(&all, &ev, "bob"));
    assert_true(cw_domain_audience_allows(&all, &sys, "carol"));
    /* CUSTOM: the definition decides. */
    assert_false(cw_domain_audience_allows(&custom, &ev, "alice"));
    assert_true(cw_domain_audience_allows(&custom, &ev, "bob"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_lookup), cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_invalid),        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_upcast_chain),   cmocka_unit_test(test_audience),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
