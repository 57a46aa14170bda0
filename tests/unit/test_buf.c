/*
 * test_buf.c - the growable buffer and the compact JSON writer
 * (src/core/buf.h). The writer is checked against jansson itself: for
 * every value, cw_json_add writes what json_dumps(v, JSON_COMPACT) writes
 * (up to the case of \u escape digits, as documented), and the text parses
 * back into an equal value.
 */
#include "core/buf.h"

#include <ctype.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------------ the buffer */

static void test_empty(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    assert_int_equal(b.len, 0);
    const char *s = cw_buf_cstr(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    cw_buf_release(&b);
    assert_null(b.data);
    assert_string_equal(cw_buf_cstr(&b), "");
    cw_buf_release(&b); /* twice is harmless */
}

static void test_growth(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    char *expect = malloc(100000);
    for (size_t i = 0; i < 100000; i++) {
        char c = (char)('a' + i % 26);
        expect[i] = c;
        if (i % 3 == 0)
            cw_buf_addc(&b, c);
        else
            cw_buf_add(&b, &c, 1);
        assert_int_equal(b.len, i + 1);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_memory_equal(b.data, expect, 100000);
    assert_int_equal(strlen(cw_buf_cstr(&b)), 100000);

    /* Large appends in one go. */
    cw_buf_reset(&b);
    for (int i = 0; i < 5; i++)
        cw_buf_add(&b, expect, 100000);
    assert_int_equal(b.len, 500000);
    for (int i = 0; i < 5; i++)
        assert_memory_equal(b.data + i * 100000, expect, 100000);
    assert_int_equal(b.data[b.len], '\0');
    free(expect);
    cw_buf_release(&b);
}

static void test_grow_reserves(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_adds(&b, "head");
    cw_buf_grow(&b, 5000);
    assert_int_equal(b.len, 4);
    assert_true(b.cap >= 4 + 5000 + 1);
    assert_string_equal(cw_buf_cstr(&b), "head");
    /* The room is there: filling it does not move the data. */
    char *before = b.data;
    size_t cap = b.cap;
    for (int i = 0; i < 5000; i++)
        cw_buf_addc(&b, 'x');
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 5004);
    assert_int_equal(b.data[b.len], '\0');
    /* Growing by what is already free is a no-op. */
    cw_buf_grow(&b, 0);
    assert_ptr_equal(b.data, before);
    cw_buf_release(&b);
}

static void test_add_bytes_with_nul(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_add(&b, "a\0b", 3);
    cw_buf_add(&b, "", 0);
    cw_buf_addc(&b, '\0');
    cw_buf_adds(&b, "cd");
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "a\0b\0cd", 7);
    cw_buf_release(&b);
}

static void test_reset_keeps_memory(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_adds(&b, "some text");
    char *data = b.data;
    size_t cap = b.cap;
    cw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_string_equal(cw_buf_cstr(&b), "");
    cw_buf_adds(&b, "new");
    assert_ptr_equal(b.data, data);
    assert_string_equal(cw_buf_cstr(&b), "new");
    cw_buf_release(&b);
    /* Resetting a buffer that never held anything. */
    cw_buf_reset(&b);
    assert_string_equal(cw_buf_cstr(&b), "");
}

static void expect_int(int64_t v)
{
    char want[32];
    snprintf(want, sizeof(want), "%" PRId64, v);
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_adds(&b, "<");
    cw_buf_add_int(&b, v);
    cw_buf_adds(&b, ">");
    char framed[40];
    snprintf(framed, sizeof(framed), "<%s>", want);
    if (strcmp(cw_buf_cstr(&b), framed) != 0)
        fail_msg("add_int(%s) wrote '%s'", want, cw_buf_cstr(&b));
    assert_int_equal(b.len, strlen(framed));
    cw_buf_release(&b);
}

static void test_add_int(void **state)
{
    expect_int(0);
    expect_int(1);
    expect_int(-1);
    expect_int(9);
    expect_int(10);
    expect_int(-10);
    expect_int(INT64_MAX);
    expect_int(INT64_MIN);
    expect_int(INT64_MAX - 1);
    expect_int(INT64_MIN + 1);
    expect_int(INT32_MAX);
    expect_int(INT32_MIN);
    expect_int((int64_t)UINT32_MAX + 1);
    /* Every power of ten and its neighbours, both signs. */
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
        for (int64_t d = -1; d <= 1; d++) {
            expect_int(p + d);
            expect_int(-(p + d));
        }
    }
    uint64_t x = 88172645463325252ull; /* xorshift64, fixed seed */
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        expect_int((int64_t)x);
        expect_int((int64_t)(x >> (x % 64)));
    }
}

static void test_take(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_adds(&b, "hello, ");
    cw_buf_add_int(&b, 42);
    char *s = cw_buf_take(&b);
    assert_string_equal(s, "hello, 42");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_string_equal(cw_buf_cstr(&b), "");
    /* The buffer works again after a take, independently of the taken string. */
    cw_buf_adds(&b, "again");
    assert_string_equal(cw_buf_cstr(&b), "again");
    assert_string_equal(s, "hello, 42");
    free(s);
    char *t = cw_buf_take(&b);
    assert_string_equal(t, "again");
    free(t);

    /* Taking an empty buffer gives a freeable "". */
    char *e = cw_buf_take(&b);
    assert_non_null(e);
    assert_string_equal(e, "");
    free(e);

    /* ...also after a reset. */
    cw_buf_adds(&b, "gone");
    cw_buf_reset(&b);
    e = cw_buf_take(&b);
    assert_string_equal(e, "");
    free(e);
}

/*
 * A buffer that only reserved room (cw_buf_grow, nothing added) is empty:
 * take must hand over "", and per buf.h data is NUL-terminated after
 * cw_buf_cstr. Fresh heap blocks are dirtied first so these tests do not
 * pass by luck (under ASan new blocks are filled with 0xbe anyway).
 */
static void dirty_heap(void)
{
    for (int i = 0; i < 4; i++) {
        char *junk = malloc(64);
        memset(junk, 'x', 64);
        free(junk);
    }
}

static void test_take_after_grow_only(void **state)
{
    dirty_heap();
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_grow(&b, 10);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    char *s = cw_buf_take(&b);
    unsigned char first = (unsigned char)s[0];
    free(s);
    if (first != '\0')
        fail_msg("take of an empty (grown) buffer returned a string starting with 0x%02x, not \"\"",
                 first);
}

static void test_cstr_after_grow_only(void **state)
{
    dirty_heap();
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_grow(&b, 10);
    const char *s = cw_buf_cstr(&b);
    bool empty = s[0] == '\0';
    unsigned char first = (unsigned char)b.data[0];
    cw_buf_release(&b);
    assert_true(empty);
    if (first != '\0')
        fail_msg("data is not NUL-terminated after cw_buf_cstr (data[0] = 0x%02x)", first);
}

/* --------------------------------------------------------------- JSON */

/*
 * The text with every \u escape's hex digits in upper case (jansson's
 * form). Also checks that ours are lower case, as buf.h documents.
 */
static char *upper_escapes(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    memcpy(out, s, len + 1);
    for (size_t i = 0; i < len; i++) {
        if (out[i] != '\\')
            continue;
        i++;
        assert_true(i < len);
        if (out[i] == 'u') {
            assert_true(i + 4 < len);
            for (size_t k = i + 1; k <= i + 4; k++) {
                if (isalpha((unsigned char)out[k]) && !islower((unsigned char)out[k]))
                    fail_msg("upper-case \\u escape in %s", s);
                out[k] = (char)toupper((unsigned char)out[k]);
            }
            i += 4;
        }
    }
    return out;
}

/* cw_json_add(v) equals jansson's compact text and parses back into v. */
static void check_value(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);

    struct cw_buf b = CW_BUF_INIT;
    cw_json_add(&b, v);
    char *norm = upper_escapes(b.data, b.len);
    if (strcmp(norm, want) != 0)
        fail_msg("cw_json_add wrote\n  %s\njansson writes\n  %s", b.data, want);
    assert_int_equal(strlen(b.data), b.len);

    json_error_t jerr;
    json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!back)
        fail_msg("cannot parse %s: %s", b.data, jerr.text);
    if (!json_equal(back, v))
        fail_msg("%s does not parse back into an equal value", b.data);
    json_decref(back);

    /* Appending keeps what was already in the buffer. */
    cw_buf_reset(&b);
    cw_buf_adds(&b, "prefix:");
    cw_json_add(&b, v);
    assert_int_equal(b.len, 7 + strlen(want));
    assert_memory_equal(b.data, "prefix:", 7);

    free(norm);
    free(want);
    cw_buf_release(&b);
}

static void check_text(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad test value %s: %s", text, jerr.text);
    check_value(v);
    json_decref(v);
}

static void test_json_scalars(void **state)
{
    check_value(json_true());
    check_value(json_false());
    check_value(json_null());
    json_int_t ints[] = {0, 1, -1, 42, -42, 1000000, INT64_MAX, INT64_MIN, INT32_MIN};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        json_t *v = json_integer(ints[i]);
        check_value(v);
        json_decref(v);
    }
    double reals[] = {0.0,
                      -0.0,
                      1.5,
                      -2.25,
                      0.1,
                      1e-7,
                      1e300,
                      -1e-300,
                      100.0,
                      3.141592653589793,
                      123456789.125,
                      5e-324,
                      1.7976931348623157e308};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        json_t *v = json_real(reals[i]);
        check_value(v);
        json_decref(v);
    }

    /* NULL is written as null. */
    struct cw_buf b = CW_BUF_INIT;
    cw_json_add(&b, NULL);
    assert_string_equal(cw_buf_cstr(&b), "null");
    cw_buf_release(&b);
}

static void test_json_strings(void **state)
{
    const char *strings[] = {
        "",
        "plain",
        "with \"quotes\" inside",
        "back\\slash and \\\\ two",
        "\\\"",
        "slash / stays",
        "tab\there",
        "line\nbreak\r\n",
        "\b\f\n\r\t",
        "del \x7f stays",
        "caf\xc3\xa9",                          /* 2 bytes */
        "\xe2\x82\xac 100",                     /* 3 bytes */
        "\xf0\x9d\x84\x9e clef",                /* 4 bytes */
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", /* 日本語 */
        "\xe2\x80\xa8 and \xe2\x80\xa9",        /* U+2028, U+2029 */
        "\xef\xbb\xbf bom",
        "\xf4\x8f\xbf\xbf max",
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        json_t *v = json_string(strings[i]);
        assert_non_null(v);
        check_value(v);
        json_decref(v);
    }

    /* Every control character alone, then all of them in one string. */
    char all[64];
    size_t n = 0;
    for (int c = 0; c < 0x20; c++) {
        char one[3] = {'a', (char)c, 'z'};
        json_t *v = json_stringn(one, 3);
        check_value(v);
        json_decref(v);
        all[n++] = (char)c;
        all[n++] = '"';
    }
    json_t *v = json_stringn(all, n);
    check_value(v);
    json_decref(v);

    /* The escapes themselves, spelled out. */
    struct cw_buf b = CW_BUF_INIT;
    cw_json_add_string(&b, "\x01\x1f\x0b\"\\\n", 6);
    assert_string_equal(cw_buf_cstr(&b), "\"\\u0001\\u001f\\u000b\\\"\\\\\\n\"");
    cw_buf_release(&b);
}

/*
 * Strings are scanned 8 bytes at a time: every byte value, at every offset
 * of a word and of the tail after it, is written as jansson writes it.
 */
static void test_json_string_every_offset(void **state)
{
    char s[20];
    for (size_t len = 1; len <= sizeof(s); len++) {
        for (size_t at = 0; at < len; at++) {
            for (int c = 1; c < 0x80; c++) { /* ASCII: each byte alone is valid UTF-8 */
                memset(s, 'a', len);
                s[at] = (char)c;
                json_t *v = json_stringn(s, len);
                check_value(v);
                json_decref(v);
            }
        }
    }
}

static void test_json_string_with_nul(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_json_add_string(&b, "a\0b\0", 4);
    assert_string_equal(cw_buf_cstr(&b), "\"a\\u0000b\\u0000\"");
    json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(back);
    assert_int_equal(json_string_length(back), 4);
    assert_memory_equal(json_string_value(back), "a\0b\0", 4);
    json_decref(back);

    /* Only n bytes are read, even where the text goes on. */
    cw_buf_reset(&b);
    cw_json_add_string(&b, "abcdef", 3);
    assert_string_equal(cw_buf_cstr(&b), "\"abc\"");
    cw_buf_reset(&b);
    cw_json_add_string(&b, "xyz", 0);
    assert_string_equal(cw_buf_cstr(&b), "\"\"");
    cw_buf_release(&b);

    /* A JSON string value holding NULs goes through cw_json_add the same way. */
    json_t *v = json_stringn("\0\0x\0", 4);
    check_value(v);
    json_decref(v);
}

static void test_json_containers(void **state)
{
    check_text("{}");
    check_text("[]");
    check_text("[[]]");
    check_text("[{}]");
    check_text("{\"a\":{}}");
    check_text("{\"a\":[]}");
    check_text("[1,2,3]");
    check_text("[null,true,false,0,-1,1.5,\"s\",[],{}]");
    check_text("{\"z\":1,\"a\":2,\"m\":3}"); /* insertion order, not sorted */
    check_text("{\"\":\"empty key\"}");
    check_text("{\"a\\\"b\":1,\"c\\\\d\":2,\"e\\nf\":3,\"\\u0001\":4,\"caf\\u00e9\":5}");
    check_text("{\"user\":{\"name\":\"Ann \\\"A\\\" O'Neil\",\"tags\":[\"x\",\"y\"],\"age\":31,"
               "\"ratio\":0.25,\"admin\":false,\"manager\":null,"
               "\"address\":{\"lines\":[\"1 Main St\",\"\\t\"],\"zip\":\"12345\"}},"
               "\"items\":[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B-2\",\"qty\":-1}]}");

    /* Insertion order of keys built in code, including after an overwrite. */
    json_t *o = json_object();
    json_object_set_new(o, "zeta", json_integer(1));
    json_object_set_new(o, "alpha", json_integer(2));
    json_object_set_new(o, "mid", json_array());
    json_object_set_new(o, "alpha", json_integer(3));
    json_object_del(o, "zeta");
    json_object_set_new(o, "zeta", json_string("back"));
    check_value(o);
    json_decref(o);

    /* Deep nesting, both kinds. */
    json_t *deep = json_integer(7);
    for (int i = 0; i < 200; i++) {
        json_t *wrap = i % 2 ? json_array() : json_object();
        if (i % 2)
            json_array_append_new(wrap, deep);
        else
            json_object_set_new(wrap, i % 4 ? "k" : "\"quoted\"", deep);
        deep = wrap;
    }
    check_value(deep);
    json_decref(deep);

    /* Many keys: more than any small-table optimisation would hold. */
    json_t *big = json_object();
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", (i * 7919) % 1000);
        json_object_set_new(big, key, json_integer(i));
    }
    check_value(big);
    json_decref(big);
}

/* Random values from a fixed seed: nested containers, odd strings, numbers. */
static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_utf8(char *out, size_t *len, size_t max)
{
    static const char *const pieces[] = {
        "a",
        "Z",
        " ",
        "\"",
        "\\",
        "/",
        "\n",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "\0",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xe2\x80\xa8",
        "{",
        "]",
        ":",
        ",",
    };
    size_t n = 0, count = next() % 12;
    for (size_t i = 0; i < count; i++) {
        const char *p = pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t plen = *p ? strlen(p) : 1;
        if (n + plen > max)
            break;
        memcpy(out + n, p, plen);
        n += plen;
    }
    *len = n;
}

static json_t *random_value(int depth)
{
    int kind = (int)(next() % (depth > 4 ? 7 : 9));
    char s[64];
    size_t n;
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(next() & 1);
    case 2:
        return json_integer((json_int_t)next() >> (next() % 64));
    case 3:
        return json_integer(-(json_int_t)(next() % 1000));
    case 4: {
        double d = (double)(int64_t)next() / (double)(1 + next() % 1000000);
        return json_real(d);
    }
    case 5:
    case 6:
        random_utf8(s, &n, sizeof(s));
        return json_stringn(s, n);
    case 7: {
        json_t *a = json_array();
        int items = (int)(next() % 5);
        for (int i = 0; i < items; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int items = (int)(next() % 5);
        for (int i = 0; i < items; i++) {
            random_utf8(s, &n, sizeof(s) - 1);
            s[n] = '\0';
            /* Object keys are C strings: cut at the first NUL. */
            json_object_set_new(o, s, random_value(depth + 1));
        }
        return o;
    }
    }
}

static void test_json_random(void **state)
{
    for (int i = 0; i < 3000; i++) {
        json_t *v = random_value(0);
        check_value(v);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_grow_reserves),
        cmocka_unit_test(test_add_bytes_with_nul),
        cmocka_unit_test(test_reset_keeps_memory),
        cmocka_unit_test(test_add_int),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_take_after_grow_only),
        cmocka_unit_test(test_cstr_after_grow_only),
        cmocka_unit_test(test_json_scalars),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_json_string_every_offset),
        cmocka_unit_test(test_json_string_with_nul),
        cmocka_unit_test(test_json_containers),
        cmocka_unit_test(test_json_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
