/*
 * test_module_load.c - loading a domain module from a shared object
 * (cw_domain_load_module) and running it through the real engine:
 * build/tests/test_module.so, from tests/modules/test_module.c.
 *
 * The module is looked up under $BUILD (default "build"), which the Makefile
 * sets to build or build/san.
 */
#include "harness.h"

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static const char *U1 = "0190f6d2-8c1e-7a3b-9f00-000000000001";

static void module_path(char *buf, size_t len)
{
    const char *build = getenv("BUILD");
    snprintf(buf, len, "%s/tests/test_module.so", build && *build ? build : "build");
}

/* Runs a query on a fresh reader, so it sees the latest commit. */
static json_t *query(struct harness *h, const char *name, const char *data_text)
{
    struct cw_error err = {0};
    struct cw_db *r;
    if (cw_store_reader_open(cw_engine_store(h->e), &r, &err))
        fail_msg("reader: %s", err.message);
    json_t *data = data_text ? json_loads(data_text, 0, NULL) : NULL;
    json_t *result = NULL;
    int rc = cw_query_run(h->d, r, name, data, U1, &result, &err);
    json_decref(data);
    cw_db_close(r);
    if (rc)
        fail_msg("query %s: %s %s", name, err.code, err.message);
    cw_error_release(&err);
    return result;
}

struct scanned {
    int n;
    int version;
    char *data;
};

static int on_event(const struct cw_event *ev, void *arg)
{
    struct scanned *s = arg;
    s->n++;
    s->version = ev->version;
    free(s->data);
    s->data = json_dumps(ev->data, JSON_COMPACT | JSON_SORT_KEYS);
    return CW_OK;
}

static void test_load_and_run(void **state)
{
    char path[512];
    module_path(path, sizeof(path));
    struct harness h;
    memset(&h, 0, sizeof(h));
    harness_mkdir(&h);
    h.d = harness_domain(NULL);
    struct cw_error err = {0};
    if (cw_domain_load_module(h.d, path, &err))
        fail_msg("load %s: %s", path, err.message);
    assert_non_null(cw_domain_command(h.d, "test-echo"));
    const struct cw_event_def *echoed = cw_domain_event(h.d, "echoed");
    assert_non_null(echoed);
    assert_int_equal(echoed->version, 2);
    assert_non_null(cw_domain_query(h.d, "test-echoes"));
    if (harness_start(&h, &err))
        fail_msg("start: %s", err.message);

    /* The module's migration ran under its namespace. */
    json_t *rows = query(&h, "test-echoes", NULL);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    /* Its validation applies at coerce time. */
    char long_text[128];
    memset(long_text, 'x', 101);
    long_text[101] = '\0';
    assert_int_equal(
        harness_submit(&h, "test-echo", U1, "c1", 1, json_pack("{s:s}", "text", long_text), &err),
        CW_ERR_INVALID);
    assert_string_equal(err.code, "command-validation-failed");
    assert_int_equal(harness_submit(&h, "test-echo", U1, "c1", 1, json_object(), &err),
                     CW_ERR_INVALID);

    /* A command runs through handle and aggregate. */
    assert_int_equal(harness_submit(&h, "test-echo", U1, "c1", 1,
                                    json_pack("{s:s}", "text", "hello module"), &err),
                     CW_OK);
    struct cw_outcome o;
    assert_int_equal(harness_collect(&h, &o, 1), 1);
    assert_false(o.rejected);
    assert_int_equal(o.n_events, 1);
    assert_string_equal(o.events[0]->ev.name, "echoed");
    assert_int_equal(o.events[0]->ev.version, 2);
    assert_int_equal(o.events[0]->ev.position, 1);
    cw_outcome_release(&o);

    rows = query(&h, "test-echoes", NULL);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(json_object_get(row, "position")), 1);
    assert_string_equal(json_string_value(json_object_get(row, "text")), "hello module");
    assert_string_equal(json_string_value(json_object_get(row, "user_uuid")), U1);
    json_decref(rows);

    /* A version-1 event written by an older module, straight into the log. */
    struct cw_store *old;
    assert_int_equal(cw_store_open(h.db_path, NULL, &old, &err), CW_OK);
    struct cw_db *w = cw_store_writer(old);
    assert_int_equal(cw_db_begin(w, &err), CW_OK);
    int64_t last = 0;
    assert_int_equal(cw_store_last_position(w, &last, &err), CW_OK);
    assert_int_equal(last, 1);
    char uuid[CW_UUID_LEN + 1], cmd_uuid[CW_UUID_LEN + 1];
    cw_uuid_v7(uuid);
    cw_uuid_v7(cmd_uuid);
    json_t *v1 = json_pack("{s:s}", "msg", "from v1");
    json_t *meta = json_object();
    struct cw_event ev = {.position = last + 1,
                          .uuid = uuid,
                          .command_uuid = cmd_uuid,
                          .name = "echoed",
                          .version = 1,
                          .data = v1,
                          .meta = meta,
                          .user_uuid = U1,
                          .client_id = "old",
                          .client_seq = 1,
                          .recorded_at = cw_now_us()};
    assert_int_equal(cw_store_append_event(w, &ev, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_db_commit(w, &err), CW_OK);
    json_decref(v1);
    json_decref(meta);
    /* Stored as written: the store without the domain reads version 1. */
    struct scanned raw = {0};
    assert_int_equal(cw_db_scan_events(w, 1, 2, NULL, NULL, on_event, &raw, &err), CW_OK);
    assert_int_equal(raw.n, 1);
    assert_int_equal(raw.version, 1);
    assert_string_equal(raw.data, "{\"msg\":\"from v1\"}");
    free(raw.data);
    cw_store_close(old);

    /* Read back through the engine's store: upcast to version 2 by the module. */
    struct cw_db *r;
    assert_int_equal(cw_store_reader_open(cw_engine_store(h.e), &r, &err), CW_OK);
    struct scanned up = {0};
    assert_int_equal(
        cw_db_scan_events(r, 0, 0, U1, (const char *const[]){"echoed", NULL}, on_event, &up, &err),
        CW_OK);
    assert_int_equal(up.n, 2);
    assert_int_equal(up.version, 2);
    assert_string_equal(up.data, "{\"text\":\"from v1\"}");
    free(up.data);
    cw_db_close(r);

    /* And through the events query, newest first. */
    json_t *events = query(&h, "events", NULL);
    assert_int_equal(json_array_size(events), 2);
    json_t *e0 = json_array_get(events, 0);
    assert_int_equal(json_integer_value(json_object_get(e0, "position")), 2);
    assert_int_equal(json_integer_value(json_object_get(e0, "version")), 2);
    json_t *want = json_pack("{s:s}", "text", "from v1");
    assert_true(json_equal(json_object_get(e0, "data"), want));
    json_decref(want);
    json_t *e1 = json_array_get(events, 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e1, "data"), "text")),
                        "hello module");
    json_decref(events);

    /* The module's command is described like any other. */
    json_t *desc = query(&h, "describe", NULL);
    char *text = json_dumps(desc, JSON_COMPACT);
    assert_non_null(strstr(text, "\"name\":\"test-echo\""));
    assert_non_null(strstr(text, "\"name\":\"test-echoes\""));
    free(text);
    json_decref(desc);

    cw_error_release(&err);
    harness_close(&h);
}

static void test_missing_file(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_error err = {0};
    const char *path = "/nonexistent/dir/no-such-module.so";
    assert_int_equal(cw_domain_load_module(d, path, &err), CW_ERR_NOT_FOUND);
    if (!strstr(err.message, path))
        fail_msg("message does not name the path: %s", err.message);
    assert_int_equal(d->n_modules, 0);
    assert_int_equal(d->n_commands, 0);
    cw_domain_free(d);
}

static void test_no_entry_point(void **state)
{
    /* A real shared object without cw_module_init: the JSON library. */
    Dl_info info;
    assert_true(dladdr((void *)json_object, &info) != 0);
    assert_non_null(info.dli_fname);
    assert_non_null(strstr(info.dli_fname, ".so"));
    struct cw_domain *d = cw_domain_new();
    struct cw_error err = {0};
    assert_int_equal(cw_domain_load_module(d, info.dli_fname, &err), CW_ERR_NOT_FOUND);
    if (!strstr(err.message, info.dli_fname))
        fail_msg("message does not name the path: %s", err.message);
    assert_non_null(strstr(err.message, "cw_module_init"));
    assert_int_equal(d->n_modules, 0);
    cw_domain_free(d);
}

static void test_load_twice_is_exists(void **state)
{
    char path[512];
    module_path(path, sizeof(path));
    struct cw_domain *d = cw_domain_new();
    struct cw_error err = {0};
    assert_int_equal(cw_domain_load_module(d, path, &err), CW_OK);
    /* The same definitions again: the init's own result comes back, with the path. */
    assert_int_equal(cw_domain_load_module(d, path, &err), CW_ERR_EXISTS);
    assert_non_null(strstr(err.message, path));
    cw_domain_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_run),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_no_entry_point),
        cmocka_unit_test(test_load_twice_is_exists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
