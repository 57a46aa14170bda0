/*
 * test_fields.c - the compact text fields of the NATS messages
 * (src/engine/fields.h): what the writer writes the reader reads back,
 * whatever bytes a string holds, and a text cut short or malformed
 * anywhere is refused (bad), never read past its end.
 */
#include "core/buf.h"
#include "engine/fields.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_round_trip(void **state)
{
    (void)state;
    struct cw_buf b = CW_BUF_INIT, copy = CW_BUF_INIT;
    const char odd[] = "a b:3 \"é\" - 12:x\t";
    cw_fields_add_num(&b, 42);
    cw_fields_add_num(&b, -7);
    cw_fields_add_num(&b, INT64_MAX);
    cw_fields_add_num(&b, INT64_MIN);
    cw_fields_add_num(&b, 0);
    cw_fields_add_str(&b, odd);
    cw_fields_add_str(&b, NULL);
    cw_fields_add_str(&b, "");
    cw_fields_add_strn(&b, "x\0y", 3);
    cw_buf_adds(&b, "tail");
    struct cw_fields r = cw_fields_of(&copy, b.data, b.len);
    assert_int_equal(cw_fields_num(&r), 42);
    assert_int_equal(cw_fields_num(&r), -7);
    assert_int_equal(cw_fields_num(&r), INT64_MAX);
    assert_int_equal(cw_fields_num(&r), INT64_MIN);
    assert_int_equal(cw_fields_num(&r), 0);
    size_t len = 0;
    assert_string_equal(cw_fields_str(&r, &len), odd);
    assert_int_equal(len, strlen(odd));
    assert_null(cw_fields_str(&r, NULL));
    assert_string_equal(cw_fields_str(&r, &len), "");
    assert_int_equal(len, 0);
    const char *s = cw_fields_str(&r, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x\0y", 3);
    assert_false(r.bad);
    assert_int_equal(r.end - r.p, 4);
    assert_memory_equal(r.p, "tail", 4);
    cw_buf_release(&b);
    cw_buf_release(&copy);
}

/* Every prefix of a good text: the fields that are whole read, the next is bad. */
static void test_cut_short(void **state)
{
    (void)state;
    struct cw_buf b = CW_BUF_INIT, copy = CW_BUF_INIT;
    cw_fields_add_num(&b, 123);
    cw_fields_add_str(&b, "hello world");
    cw_fields_add_num(&b, 9);
    for (size_t n = 0; n < b.len; n++) {
        struct cw_fields r = cw_fields_of(&copy, b.data, n);
        int64_t a = cw_fields_num(&r);
        const char *s = cw_fields_str(&r, NULL);
        int64_t c = cw_fields_num(&r);
        assert_true(r.bad);
        assert_true(n >= 4 || (a == 0 && !s && c == 0));
        assert_true(n >= 4 + 15 || !s);
        assert_int_equal(c, 0);
    }
    cw_buf_release(&b);
    cw_buf_release(&copy);
}

static bool refused(const char *text, bool num)
{
    struct cw_buf copy = CW_BUF_INIT;
    struct cw_fields r = cw_fields_of(&copy, text, strlen(text));
    if (num)
        cw_fields_num(&r);
    else
        cw_fields_str(&r, NULL);
    cw_buf_release(&copy);
    return r.bad;
}

static void test_malformed(void **state)
{
    (void)state;
    assert_true(refused(" 1 ", true));      /* no leading space */
    assert_true(refused("1x ", true));      /* not a number */
    assert_true(refused("+", true));        /* no digits */
    assert_true(refused("12", true));       /* no space after */
    assert_true(refused("5:abc ", false));  /* longer than the text */
    assert_true(refused("3:abcd", false));  /* no space after the bytes */
    assert_true(refused("-3:abc ", false)); /* a negative length */
    assert_true(refused(" 3:abc ", false));
    assert_true(refused("3abc ", false)); /* no colon */
    assert_true(refused("99999999999999999999999:a ", false));
    assert_true(refused("9223372036854775808 ", true)); /* past INT64_MAX */
    assert_true(refused("-9223372036854775809 ", true));
    assert_true(refused("- ", true));
    assert_true(refused("--1 ", true));
    assert_false(refused("3:abc ", false));
    assert_false(refused("- ", false));
    assert_false(refused("-4 ", true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_cut_short),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
