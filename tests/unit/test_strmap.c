/*
 * test_strmap.c - the string-keyed hash map (src/core/strmap.h).
 */
#include "core/strmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_empty(void **state)
{
    struct cw_strmap m;
    cw_strmap_init(&m);
    assert_null(cw_strmap_get(&m, "a"));
    assert_null(cw_strmap_getn(&m, "abc", 2));
    cw_strmap_release(&m);
}

static void test_put_get(void **state)
{
    struct cw_strmap m;
    cw_strmap_init(&m);
    int a = 1, b = 2, c = 3;
    assert_int_equal(cw_strmap_put(&m, "alpha", &a), 0);
    assert_int_equal(cw_strmap_put(&m, "beta", &b), 0);
    assert_int_equal(cw_strmap_put(&m, "al", &c), 0);
    assert_int_equal(m.len, 3);
    assert_ptr_equal(cw_strmap_get(&m, "alpha"), &a);
    assert_ptr_equal(cw_strmap_get(&m, "beta"), &b);
    assert_ptr_equal(cw_strmap_get(&m, "al"), &c);
    assert_null(cw_strmap_get(&m, "alph"));
    assert_null(cw_strmap_get(&m, "alphab"));
    assert_null(cw_strmap_get(&m, ""));

    /* getn: keys that are not NUL-terminated, prefixes of longer text. */
    const char *text = "alphabet";
    assert_ptr_equal(cw_strmap_getn(&m, text, 5), &a);
    assert_ptr_equal(cw_strmap_getn(&m, text, 2), &c);
    assert_null(cw_strmap_getn(&m, text, 3));
    assert_null(cw_strmap_getn(&m, text, 8));
    char nonterm[4] = {'b', 'e', 't', 'a'};
    assert_ptr_equal(cw_strmap_getn(&m, nonterm, 4), &b);
    cw_strmap_release(&m);
    assert_int_equal(m.len, 0);
}

static void test_duplicate(void **state)
{
    struct cw_strmap m;
    cw_strmap_init(&m);
    int a = 1, b = 2;
    char key2[] = "same";
    assert_int_equal(cw_strmap_put(&m, "same", &a), 0);
    assert_int_equal(cw_strmap_put(&m, key2, &b), -1);
    assert_int_equal(m.len, 1);
    assert_ptr_equal(cw_strmap_get(&m, "same"), &a);
    cw_strmap_release(&m);
}

static void test_growth(void **state)
{
    enum { N = 20000 };
    struct cw_strmap m;
    cw_strmap_init(&m);
    char(*keys)[16] = malloc(N * sizeof(*keys));
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
        assert_int_equal(cw_strmap_put(&m, keys[i], (void *)(intptr_t)(i + 1)), 0);
        /* Everything inserted so far is still there across each resize. */
        if ((i & (i + 1)) == 0)
            for (int j = 0; j <= i; j++)
                assert_int_equal((intptr_t)cw_strmap_get(&m, keys[j]), j + 1);
    }
    assert_int_equal(m.len, N);
    assert_true(m.cap >= 2 * (size_t)N);
    assert_int_equal(m.cap & (m.cap - 1), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal((intptr_t)cw_strmap_get(&m, keys[i]), i + 1);
        assert_int_equal(cw_strmap_put(&m, keys[i], NULL), -1);
    }
    assert_null(cw_strmap_get(&m, "key-20000"));
    assert_null(cw_strmap_get(&m, "key-"));
    assert_int_equal(m.len, N);
    cw_strmap_release(&m);
    free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
