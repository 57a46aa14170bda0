/*
 * test_pgcopy.c - the bytes of PostgreSQL's binary COPY and array formats
 * (src/store/pgcopy.c), checked against the layout the PostgreSQL manual
 * gives ("COPY", "Binary Format"). The store tests send them to a real
 * server; this pins the layout where a mistake is easiest to read.
 */
#include "store/pgcopy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void expect_bytes(const struct cw_buf *b, size_t at, const void *bytes, size_t n)
{
    assert_true(b->len >= at + n);
    assert_memory_equal(b->data + at, bytes, n);
}

static void test_header_row_and_trailer(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_pgcopy_row(&b, 3);
    cw_pgcopy_int8(&b, 258);
    cw_pgcopy_text(&b, "ab");
    cw_pgcopy_null(&b);
    cw_pgcopy_finish(&b);
    static const unsigned char want[] = {
        'P',  'G',  'C',  'O',  'P', 'Y', '\n', 0xff, '\r', '\n', 0, /* signature */
        0,    0,    0,    0,    0,   0,   0,    0,                   /* flags, extension length */
        0,    3,                                                     /* fields */
        0,    0,    0,    8,    0,   0,   0,    0,    0,    0,    1, 2, /* 258 as int8 */
        0,    0,    0,    2,    'a', 'b',                               /* text */
        0xff, 0xff, 0xff, 0xff,                                         /* NULL */
        0xff, 0xff,                                                     /* trailer */
    };
    assert_int_equal(b.len, sizeof(want));
    expect_bytes(&b, 0, want, sizeof(want));
    cw_buf_release(&b);
}

static void test_second_row_has_no_header(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_pgcopy_row(&b, 1);
    cw_pgcopy_text(&b, NULL);
    size_t first = b.len;
    cw_pgcopy_row(&b, 1);
    cw_pgcopy_int8(&b, -1);
    static const unsigned char want[] = {0,    1,    0,    0,    0,    8,    0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(b.len - first, sizeof(want));
    expect_bytes(&b, first, want, sizeof(want));
    cw_buf_release(&b);
}

static void test_json_field(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    json_t *v = json_pack("{s:i}", "n", 1);
    cw_pgcopy_json(&b, NULL, v); /* serialised, its length written before it */
    cw_pgcopy_json(&b, NULL, NULL);
    cw_pgcopy_json(&b, "[]", v); /* text given: taken as it is */
    static const unsigned char want[] = {0, 0, 0, 7,   '{', '"', 'n', '"', ':', '1', '}', 0,
                                         0, 0, 2, '{', '}', 0,   0,   0,   2,   '[', ']'};
    assert_int_equal(b.len, sizeof(want));
    expect_bytes(&b, 0, want, sizeof(want));
    json_decref(v);
    cw_buf_release(&b);
}

static void test_array(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_pgcopy_array_start(&b, 20);
    cw_pgcopy_array_int8(&b, 5);
    cw_pgcopy_array_int8(&b, 6);
    cw_pgcopy_array_end(&b, 2);
    static const unsigned char want[] = {
        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20, /* one dimension, no NULLs, int8 */
        0, 0, 0, 2, 0, 0, 0, 1,              /* two elements from index 1 */
        0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5,  0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 6,
    };
    assert_int_equal(b.len, sizeof(want));
    expect_bytes(&b, 0, want, sizeof(want));
    cw_buf_release(&b);
}

/* Rows read back field by field: what store_pg.c binds as an INSERT's parameters. */
static void test_read_back(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_pgcopy_row(&b, 2);
    cw_pgcopy_text(&b, "xyz");
    cw_pgcopy_null(&b);
    cw_pgcopy_row(&b, 2);
    cw_pgcopy_int8(&b, 258);
    cw_pgcopy_text(&b, "");
    size_t at = cw_pgcopy_first_row(), len;
    const char *data;
    assert_int_equal(cw_pgcopy_next_row(&b, &at), 2);
    cw_pgcopy_field(&b, &at, &data, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "xyz", 3);
    cw_pgcopy_field(&b, &at, &data, &len);
    assert_null(data);
    assert_int_equal(cw_pgcopy_next_row(&b, &at), 2);
    cw_pgcopy_field(&b, &at, &data, &len);
    static const unsigned char v258[] = {0, 0, 0, 0, 0, 0, 1, 2};
    assert_int_equal(len, 8);
    assert_memory_equal(data, v258, 8);
    cw_pgcopy_field(&b, &at, &data, &len);
    assert_non_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(at, b.len);
    cw_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_row_and_trailer),
        cmocka_unit_test(test_second_row_has_no_header),
        cmocka_unit_test(test_json_field),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
