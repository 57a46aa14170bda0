/*
 * test_uuid.c - UUIDv7 generation and the canonical-form check (calderwood.h).
 */
#include "calderwood.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_v7_shape(void **state)
{
    for (int n = 0; n < 1000; n++) {
        char u[CW_UUID_LEN + 1];
        memset(u, 'X', sizeof(u));
        cw_uuid_v7(u);
        assert_int_equal(strlen(u), CW_UUID_LEN);
        for (int i = 0; i < CW_UUID_LEN; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(u[i], '-');
            else
                assert_true(is_lower_hex(u[i]));
        }
        assert_int_equal(u[14], '7');           /* version nibble */
        assert_non_null(strchr("89ab", u[19])); /* variant 10xx */
        assert_true(cw_uuid_valid(u));
    }
}

static void test_v7_time_prefix(void **state)
{
    /* The first 48 bits are Unix milliseconds (allowing for counter carries). */
    int64_t before = cw_now_us() / 1000;
    char u[CW_UUID_LEN + 1];
    cw_uuid_v7(u);
    char hex[13];
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    int64_t ms = (int64_t)strtoll(hex, NULL, 16);
    assert_true(ms >= before - 1);
    assert_true(ms <= cw_now_us() / 1000 + 1000);
}

static void test_valid(void **state)
{
    assert_true(cw_uuid_valid("0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b"));
    assert_true(cw_uuid_valid("00000000-0000-0000-0000-000000000000"));
    /* upper case */
    assert_false(cw_uuid_valid("0190F6D2-8C1E-7A3B-9F00-1C2D3E4F5A6B"));
    assert_false(cw_uuid_valid("0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6B"));
    /* wrong length */
    assert_false(cw_uuid_valid("0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6"));
    assert_false(cw_uuid_valid("0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6bc"));
    assert_false(cw_uuid_valid(""));
    assert_false(cw_uuid_valid(NULL));
    /* missing or misplaced dashes */
    assert_false(cw_uuid_valid("0190f6d28c1e7a3b9f001c2d3e4f5a6b"));
    assert_false(cw_uuid_valid("0190f6d2-8c1e-7a3b-9f001c2d3e4f5a6b0"));
    assert_false(cw_uuid_valid("0190f6d2x8c1e-7a3b-9f00-1c2d3e4f5a6b"));
    assert_false(cw_uuid_valid("0190f6d-28c1e-7a3b-9f00-1c2d3e4f5a6b"));
    /* non-hex */
    assert_false(cw_uuid_valid("0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6g"));
    assert_false(cw_uuid_valid("{190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6}"));
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_monotonic_and_unique(void **state)
{
    enum { N = 100000 };
    char *buf = malloc((size_t)N * (CW_UUID_LEN + 1));
    char **sorted = malloc(N * sizeof(*sorted));
    assert_non_null(buf);
    assert_non_null(sorted);
    for (int i = 0; i < N; i++) {
        char *u = buf + (size_t)i * (CW_UUID_LEN + 1);
        cw_uuid_v7(u);
        sorted[i] = u;
        if (i > 0 && strcmp(u - (CW_UUID_LEN + 1), u) >= 0)
            fail_msg("uuid %d not above its predecessor: %s then %s", i, u - (CW_UUID_LEN + 1), u);
    }
    /* Strictly increasing already implies unique; check it independently anyway. */
    qsort(sorted, N, sizeof(*sorted), cmp);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(sorted[i - 1], sorted[i]);
    free(sorted);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v7_shape),
        cmocka_unit_test(test_v7_time_prefix),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_monotonic_and_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
