/*
 * test_validate.c - generic field validation, describe output and the
 * gateway's command coercion (src/core/validate.h).
 */
#include "calderwood.h"
#include "core/registry.h"
#include "core/validate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Parses JSON text for a test; fails the test on bad text. */
static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

static void assert_json_eq(const json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
        fail_msg("got %s, want %s", g ? g : "NULL", want_text);
    }
    json_decref(want);
}

/* Validates text against fields; returns rc, leaves err for inspection. */
static int check(const struct cw_field *fields, const char *text, struct cw_error *err)
{
    json_t *v = J(text);
    cw_error_release(err);
    memset(err, 0, sizeof(*err));
    int rc = cw_validate_fields(fields, v, err);
    json_decref(v);
    return rc;
}

/* The single reason reported for field name, or fails. */
static void assert_one_reason(const struct cw_error *err, const char *field,
                              const char *reason_part)
{
    assert_true(json_is_array(err->details));
    assert_int_equal(json_array_size(err->details), 1);
    json_t *d = json_array_get(err->details, 0);
    assert_int_equal(json_object_size(d), 2);
    assert_string_equal(json_string_value(json_object_get(d, "field")), field);
    const char *reason = json_string_value(json_object_get(d, "reason"));
    assert_non_null(reason);
    if (reason_part && !strstr(reason, reason_part))
        fail_msg("reason for %s is \"%s\", expected it to mention \"%s\"", field, reason,
                 reason_part);
}

static const struct cw_field str_fields[] = {
    {.name = "s", .type = CW_FIELD_STRING, .required = true, .min_length = 2, .max_length = 5},
    {0},
};

static void test_string(void **state)
{
    struct cw_error err = {0};
    assert_int_equal(check(str_fields, "{\"s\":\"ab\"}", &err), CW_OK);
    assert_int_equal(check(str_fields, "{\"s\":\"abcde\"}", &err), CW_OK);
    assert_int_equal(check(str_fields, "{\"s\":\"a\"}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "s", "at least 2");
    assert_string_equal(err.code, "command-validation-failed");
    assert_int_equal(check(str_fields, "{\"s\":\"abcdef\"}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "s", "at most 5");
    /* Bytes, not characters: "é" is 2 bytes, so 3 of them are 6 bytes. */
    assert_int_equal(check(str_fields, "{\"s\":\"\u00e9\u00e9\"}", &err), CW_OK);
    assert_int_equal(check(str_fields, "{\"s\":\"\u00e9\u00e9\u00e9\"}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "s", "at most 5");
    assert_int_equal(check(str_fields, "{\"s\":\"\u00e9\"}", &err), CW_OK);
    /* Wrong types. */
    assert_int_equal(check(str_fields, "{\"s\":12}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "s", "string");
    assert_int_equal(check(str_fields, "{\"s\":[\"ab\"]}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "s", "string");
    cw_error_release(&err);
}

static void test_string_nul(void **state)
{
    struct cw_error err = {0};
    assert_int_equal(check(str_fields, "{\"s\":\"a\\u0000b\"}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "s", "NUL");
    cw_error_release(&err);
}

static void test_string_no_max(void **state)
{
    static const struct cw_field f[] = {{.name = "s", .type = CW_FIELD_STRING}, {0}};
    struct cw_error err = {0};
    char *big = malloc(100010);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    json_t *v = json_pack("{s:s}", "s", big);
    assert_int_equal(cw_validate_fields(f, v, &err), CW_OK);
    json_decref(v);
    free(big);
    assert_int_equal(check(f, "{\"s\":\"\"}", &err), CW_OK);
    cw_error_release(&err);
}

static void test_integer(void **state)
{
    static const struct cw_field f[] = {
        {.name = "n",
         .type = CW_FIELD_INTEGER,
         .required = true,
         .ranged = true,
         .min = -3,
         .max = 10},
        {0},
    };
    static const struct cw_field unranged[] = {{.name = "n", .type = CW_FIELD_INTEGER}, {0}};
    struct cw_error err = {0};
    assert_int_equal(check(f, "{\"n\":-3}", &err), CW_OK);
    assert_int_equal(check(f, "{\"n\":10}", &err), CW_OK);
    assert_int_equal(check(f, "{\"n\":0}", &err), CW_OK);
    assert_int_equal(check(f, "{\"n\":-4}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "n", "between -3 and 10");
    assert_int_equal(check(f, "{\"n\":11}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "n", "between -3 and 10");
    assert_int_equal(check(f, "{\"n\":1.5}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "n", "integer");
    assert_int_equal(check(f, "{\"n\":\"1\"}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "n", "integer");
    assert_int_equal(check(f, "{\"n\":true}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "n", "integer");
    /* Without ranged, min and max (zero) do not apply. */
    assert_int_equal(check(unranged, "{\"n\":-9007199254740991}", &err), CW_OK);
    assert_int_equal(check(unranged, "{\"n\":9007199254740991}", &err), CW_OK);
    cw_error_release(&err);
}

static void test_boolean_object_uuid(void **state)
{
    static const struct cw_field f[] = {
        {.name = "b", .type = CW_FIELD_BOOLEAN, .required = true},
        {.name = "o", .type = CW_FIELD_OBJECT, .required = true},
        {.name = "u", .type = CW_FIELD_UUID, .required = true},
        {0},
    };
    struct cw_error err = {0};
    assert_int_equal(
        check(f, "{\"b\":false,\"o\":{},\"u\":\"0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b\"}", &err),
        CW_OK);
    assert_int_equal(
        check(f, "{\"b\":true,\"o\":{\"x\":[1]},\"u\":\"0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b\"}",
              &err),
        CW_OK);
    assert_int_equal(
        check(f, "{\"b\":0,\"o\":{},\"u\":\"0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b\"}", &err),
        CW_ERR_INVALID);
    assert_one_reason(&err, "b", "boolean");
    assert_int_equal(
        check(f, "{\"b\":true,\"o\":[],\"u\":\"0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b\"}", &err),
        CW_ERR_INVALID);
    assert_one_reason(&err, "o", "object");
    assert_int_equal(
        check(f, "{\"b\":true,\"o\":{},\"u\":\"0190F6D2-8C1E-7A3B-9F00-1C2D3E4F5A6B\"}", &err),
        CW_ERR_INVALID);
    assert_one_reason(&err, "u", "UUID");
    assert_int_equal(check(f, "{\"b\":true,\"o\":{},\"u\":42}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "u", "UUID");
    cw_error_release(&err);
}

static void test_required_optional_null(void **state)
{
    static const struct cw_field f[] = {
        {.name = "req", .type = CW_FIELD_STRING, .required = true},
        {.name = "opt", .type = CW_FIELD_INTEGER, .ranged = true, .min = 1, .max = 2},
        {0},
    };
    struct cw_error err = {0};
    assert_int_equal(check(f, "{\"req\":\"x\"}", &err), CW_OK);
    /* null is treated as missing: fine for optional, "required" for required. */
    assert_int_equal(check(f, "{\"req\":\"x\",\"opt\":null}", &err), CW_OK);
    assert_int_equal(check(f, "{\"req\":null,\"opt\":1}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "req", "required");
    assert_int_equal(check(f, "{\"opt\":2}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "req", "required");
    /* Optional but present: still checked. */
    assert_int_equal(check(f, "{\"req\":\"x\",\"opt\":3}", &err), CW_ERR_INVALID);
    assert_one_reason(&err, "opt", "between");
    /* Unknown keys are ignored. */
    assert_int_equal(check(f, "{\"req\":\"x\",\"zzz\":[1,2]}", &err), CW_OK);
    /* No declared fields: any object passes. */
    assert_int_equal(check(NULL, "{\"a\":1}", &err), CW_OK);
    assert_int_equal(check(NULL, "{}", &err), CW_OK);
    cw_error_release(&err);
}

static void test_all_failures_in_order(void **state)
{
    static const struct cw_field f[] = {
        {.name = "zeta", .type = CW_FIELD_STRING, .required = true},
        {.name = "alpha", .type = CW_FIELD_INTEGER},
        {.name = "ok", .type = CW_FIELD_BOOLEAN},
        {.name = "mid", .type = CW_FIELD_UUID, .required = true},
        {.name = "last", .type = CW_FIELD_STRING, .max_length = 1},
        {0},
    };
    struct cw_error err = {0};
    assert_int_equal(
        check(f, "{\"last\":\"toolong\",\"alpha\":\"x\",\"ok\":true,\"mid\":\"no\"}", &err),
        CW_ERR_INVALID);
    assert_string_equal(err.code, "command-validation-failed");
    assert_true(json_is_array(err.details));
    assert_int_equal(json_array_size(err.details), 4);
    const char *order[] = {"zeta", "alpha", "mid", "last"};
    for (size_t i = 0; i < 4; i++) {
        json_t *d = json_array_get(err.details, i);
        assert_true(json_is_object(d));
        assert_int_equal(json_object_size(d), 2);
        assert_string_equal(json_string_value(json_object_get(d, "field")), order[i]);
        assert_true(json_is_string(json_object_get(d, "reason")));
    }
    /* The message names the first failing field. */
    assert_non_null(strstr(err.message, "zeta"));
    cw_error_release(&err);
    assert_null(err.details);
}

static void test_non_object(void **state)
{
    struct cw_error err = {0};
    const char *bad[] = {"[]", "\"x\"", "1", "null", "true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(check(str_fields, bad[i], &err), CW_ERR_MALFORMED);
        assert_string_equal(err.code, "malformed");
    }
    assert_int_equal(cw_validate_fields(str_fields, NULL, &err), CW_ERR_MALFORMED);
    /* err is optional. */
    json_t *v = J("{\"s\":1}");
    assert_int_equal(cw_validate_fields(str_fields, v, NULL), CW_ERR_INVALID);
    json_decref(v);
    cw_error_release(&err);
}

static void test_describe(void **state)
{
    static const struct cw_field f[] = {
        {.name = "email", .type = CW_FIELD_STRING, .required = true, .max_length = 254},
        {.name = "pw",
         .type = CW_FIELD_STRING,
         .required = true,
         .min_length = 8,
         .max_length = 1024},
        {.name = "free", .type = CW_FIELD_STRING},
        {.name = "qty",
         .type = CW_FIELD_INTEGER,
         .required = true,
         .ranged = true,
         .min = 1,
         .max = 1000},
        {.name = "any", .type = CW_FIELD_INTEGER},
        {.name = "flag", .type = CW_FIELD_BOOLEAN},
        {.name = "obj", .type = CW_FIELD_OBJECT},
        {.name = "who", .type = CW_FIELD_UUID, .required = true},
        {0},
    };
    json_t *d = cw_describe_fields(f);
    assert_json_eq(d,
                   "["
                   "{\"name\":\"email\",\"type\":\"string\",\"required\":true,\"max_length\":254},"
                   "{\"name\":\"pw\",\"type\":\"string\",\"required\":true,\"min_length\":8,"
                   "\"max_length\":1024},"
                   "{\"name\":\"free\",\"type\":\"string\",\"required\":false},"
                   "{\"name\":\"qty\",\"type\":\"integer\",\"required\":true,\"min\":1,"
                   "\"max\":1000},"
                   "{\"name\":\"any\",\"type\":\"integer\",\"required\":false},"
                   "{\"name\":\"flag\",\"type\":\"boolean\",\"required\":false},"
                   "{\"name\":\"obj\",\"type\":\"object\",\"required\":false},"
                   "{\"name\":\"who\",\"type\":\"uuid\",\"required\":true}"
                   "]");
    json_decref(d);
    d = cw_describe_fields(NULL);
    assert_json_eq(d, "[]");
    json_decref(d);
    assert_string_equal(cw_field_type_name(CW_FIELD_UUID), "uuid");
    assert_string_equal(cw_field_type_name((enum cw_field_type)99), "unknown");
}

/* ------------------------------------------------------------ coercion */

static int coerce_calls;
static int noop_handle(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                       struct cw_error *err)
{
    return CW_OK;
}

/* Lower-cases "name"; refuses "forbidden" with its own details. */
static int lower_coerce(json_t *data, struct cw_error *err)
{
    coerce_calls++;
    const char *s = json_string_value(json_object_get(data, "name"));
    assert_non_null(s); /* the generic validation ran first */
    if (strcmp(s, "forbidden") == 0)
        return cw_error_set_details_take(
            err, CW_ERR_INVALID, NULL,
            json_pack("[{s:s,s:s}]", "field", "name", "reason", "is forbidden"),
            "name is forbidden");
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *p = buf; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    json_object_set_new(data, "name", json_string(buf));
    return CW_OK;
}

static const struct cw_field name_fields[] = {
    {.name = "name", .type = CW_FIELD_STRING, .required = true, .max_length = 20},
    {0},
};
static const struct cw_command_def cmd_public = {
    .name = "set-name", .fields = name_fields, .coerce = lower_coerce, .handle = noop_handle};
static const struct cw_command_def cmd_internal = {
    .name = "system-thing", .handle = noop_handle, .internal = true};

static void test_coerce_command(void **state)
{
    struct cw_domain *d = cw_domain_new();
    assert_int_equal(cw_domain_add_command(d, &cmd_public), CW_OK);
    assert_int_equal(cw_domain_add_command(d, &cmd_internal), CW_OK);
    struct cw_error err = {0};
    const struct cw_command_def *def = NULL;

    /* Unknown name. */
    json_t *data = J("{}");
    assert_int_equal(cw_coerce_command(d, "nope", data, false, &def, &err), CW_ERR_NOT_FOUND);
    assert_string_equal(err.code, "unknown-command");
    assert_null(def);
    assert_int_equal(cw_coerce_command(d, NULL, data, true, &def, &err), CW_ERR_NOT_FOUND);
    assert_string_equal(err.code, "unknown-command");

    /* Internal: refused as unknown from outside, allowed from inside. */
    assert_int_equal(cw_coerce_command(d, "system-thing", data, false, &def, &err),
                     CW_ERR_NOT_FOUND);
    assert_string_equal(err.code, "unknown-command");
    assert_null(def);
    assert_int_equal(cw_coerce_command(d, "system-thing", data, true, &def, &err), CW_OK);
    assert_ptr_equal(def, &cmd_internal);
    json_decref(data);

    /* Generic validation fails: coerce is not called. */
    def = NULL;
    coerce_calls = 0;
    data = J("{\"name\":42}");
    assert_int_equal(cw_coerce_command(d, "set-name", data, false, &def, &err), CW_ERR_INVALID);
    assert_string_equal(err.code, "command-validation-failed");
    assert_int_equal(coerce_calls, 0);
    assert_null(def);
    json_decref(data);
    data = J("{}");
    assert_int_equal(cw_coerce_command(d, "set-name", data, false, &def, &err), CW_ERR_INVALID);
    assert_int_equal(coerce_calls, 0);
    json_decref(data);

    /* Non-object data. */
    data = J("[1]");
    assert_int_equal(cw_coerce_command(d, "set-name", data, false, &def, &err), CW_ERR_MALFORMED);
    assert_string_equal(err.code, "malformed");
    assert_int_equal(coerce_calls, 0);
    json_decref(data);

    /* Passes: coerce runs once and normalises in place. */
    data = J("{\"name\":\"MiXeD\"}");
    assert_int_equal(cw_coerce_command(d, "set-name", data, false, &def, &err), CW_OK);
    assert_int_equal(coerce_calls, 1);
    assert_ptr_equal(def, &cmd_public);
    assert_string_equal(json_string_value(json_object_get(data, "name")), "mixed");
    json_decref(data);

    /* coerce refuses: its error comes back. */
    def = NULL;
    data = J("{\"name\":\"forbidden\"}");
    assert_int_equal(cw_coerce_command(d, "set-name", data, false, &def, &err), CW_ERR_INVALID);
    assert_int_equal(coerce_calls, 2);
    assert_string_equal(err.code, "command-validation-failed");
    assert_one_reason(&err, "name", "forbidden");
    assert_null(def);
    json_decref(data);

    cw_error_release(&err);
    cw_domain_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_string_nul),
        cmocka_unit_test(test_string_no_max),
        cmocka_unit_test(test_integer),
        cmocka_unit_test(test_boolean_object_uuid),
        cmocka_unit_test(test_required_optional_null),
        cmocka_unit_test(test_all_failures_in_order),
        cmocka_unit_test(test_non_object),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_coerce_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
