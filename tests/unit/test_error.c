/*
 * test_error.c - struct cw_error: codes, details ownership, and messages cut
 * at the buffer's end staying valid UTF-8 (they go into JSON answers).
 */
#include "core/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_code_defaults_to_result(void **state)
{
    (void)state;
    struct cw_error err = {0};
    assert_int_equal(cw_error_set(&err, CW_ERR_OVERLOADED, NULL, "full"), CW_ERR_OVERLOADED);
    assert_string_equal(err.code, "overloaded");
    assert_string_equal(err.message, "full");
    cw_error_set(&err, CW_ERR_REJECTED, "email-taken", "taken %d", 1);
    assert_string_equal(err.code, "email-taken");
    assert_string_equal(err.message, "taken 1");
    assert_int_equal(cw_error_set(NULL, CW_ERR_STORE, NULL, "ignored"), CW_ERR_STORE);
}

static void test_details_owned(void **state)
{
    (void)state;
    struct cw_error err = {0}, copy = {0};
    cw_error_set_details_take(&err, CW_ERR_INVALID, NULL, json_pack("[{s:s}]", "field", "x"),
                              "bad");
    cw_error_copy(&copy, &err);
    cw_error_release(&err);
    assert_null(err.details);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(copy.details, 0), "field")), "x");
    assert_string_equal(copy.code, "command-validation-failed");
    cw_error_release(&copy);
}

/* Every multi-byte width, cut at every offset: the result always loads as a JSON string. */
static void test_cut_message_is_valid_utf8(void **state)
{
    (void)state;
    const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < 3; c++) {
        for (size_t lead = 0; lead < 4; lead++) {
            char text[1200] = "";
            memset(text, 'a', lead);
            text[lead] = '\0';
            while (strlen(text) + 4 < sizeof(text) - 1)
                strcat(text, chars[c]);
            struct cw_error err = {0};
            cw_error_set(&err, CW_ERR_STORE, NULL, "%s", text);
            assert_true(strlen(err.message) >= sizeof(err.message) - 4);
            json_t *s = json_string(err.message);
            assert_non_null(s); /* jansson refuses invalid UTF-8 */
            json_decref(s);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_defaults_to_result),
        cmocka_unit_test(test_details_owned),
        cmocka_unit_test(test_cut_message_is_valid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
