/*
 * test_cookie.c - the sealed session cookie (src/auth/cookie.h): round
 * trips, every kind of damage, and finding the cookie in a Cookie header.
 */
#include "auth/cookie.h"
#include "auth/secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

static const char UUID[] = "0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static unsigned char key[CW_SECRET_LEN];

static int setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(key, sizeof(key));
    return 0;
}

/* value must not open; the output UUID is then empty. */
static void refused(const char *value, size_t len)
{
    char out[CW_UUID_LEN + 1];
    memset(out, 'x', sizeof(out));
    if (cw_cookie_open(key, value, len, out) != CW_ERR_UNAUTHORIZED)
        fail_msg("opened: %.*s", (int)len, value ? value : "");
    assert_string_equal(out, "");
}

static void test_round_trip(void **state)
{
    char value[CW_COOKIE_VALUE_MAX], out[CW_UUID_LEN + 1];
    cw_cookie_seal(key, UUID, value);
    assert_int_equal(strlen(value), CW_COOKIE_VALUE_LEN);
    assert_int_equal(strspn(value, B64URL), CW_COOKIE_VALUE_LEN);
    assert_int_equal(cw_cookie_open(key, value, strlen(value), out), CW_OK);
    assert_string_equal(out, UUID);

    /* A fresh nonce each time: two seals differ, both open. */
    char again[CW_COOKIE_VALUE_MAX];
    cw_cookie_seal(key, UUID, again);
    assert_string_not_equal(value, again);
    assert_int_equal(cw_cookie_open(key, again, strlen(again), out), CW_OK);
    assert_string_equal(out, UUID);

    /* Upper-case input comes back canonical. */
    cw_cookie_seal(key, "0190F6D2-8C1E-7A3B-9F00-1C2D3E4F5A6B", value);
    assert_int_equal(cw_cookie_open(key, value, strlen(value), out), CW_OK);
    assert_string_equal(out, UUID);

    /* Extremes and many random ones. */
    const char *fixed[] = {"00000000-0000-0000-0000-000000000000",
                           "ffffffff-ffff-ffff-ffff-ffffffffffff"};
    for (int i = 0; i < 2; i++) {
        cw_cookie_seal(key, fixed[i], value);
        assert_int_equal(cw_cookie_open(key, value, strlen(value), out), CW_OK);
        assert_string_equal(out, fixed[i]);
    }
    for (int i = 0; i < 500; i++) {
        char uuid[CW_UUID_LEN + 1];
        cw_uuid_v7(uuid);
        cw_cookie_seal(key, uuid, value);
        assert_int_equal(cw_cookie_open(key, value, CW_COOKIE_VALUE_LEN, out), CW_OK);
        assert_string_equal(out, uuid);
    }
}

static void test_not_nul_terminated(void **state)
{
    char value[CW_COOKIE_VALUE_MAX], out[CW_UUID_LEN + 1], header[256];
    cw_cookie_seal(key, UUID, value);
    snprintf(header, sizeof(header), "%s; other=1", value);
    assert_int_equal(cw_cookie_open(key, header, CW_COOKIE_VALUE_LEN, out), CW_OK);
    assert_string_equal(out, UUID);
}

static void test_tamper_every_position(void **state)
{
    char value[CW_COOKIE_VALUE_MAX];
    cw_cookie_seal(key, UUID, value);
    for (size_t i = 0; i < CW_COOKIE_VALUE_LEN; i++) {
        char orig = value[i];
        /* Every other character of the alphabet, and a few outside it. */
        for (const char *c = B64URL; *c; c++) {
            if (*c == orig)
                continue;
            value[i] = *c;
            refused(value, CW_COOKIE_VALUE_LEN);
        }
        const char outside[] = "+/= .\x80\xff";
        for (const char *c = outside; *c; c++) {
            value[i] = *c;
            refused(value, CW_COOKIE_VALUE_LEN);
        }
        value[i] = '\0';
        refused(value, CW_COOKIE_VALUE_LEN);
        value[i] = orig;
    }
    char out[CW_UUID_LEN + 1];
    assert_int_equal(cw_cookie_open(key, value, CW_COOKIE_VALUE_LEN, out), CW_OK);
}

static void test_truncated_and_over_long(void **state)
{
    char value[CW_COOKIE_VALUE_MAX + 8];
    cw_cookie_seal(key, UUID, value);
    for (size_t n = 0; n < CW_COOKIE_VALUE_LEN; n++) {
        refused(value, n);                           /* cut at the end */
        refused(value + CW_COOKIE_VALUE_LEN - n, n); /* cut at the start */
    }
    /* Over-long: a valid value with more after it. */
    strcat(value, "A");
    refused(value, CW_COOKIE_VALUE_LEN + 1);
    strcat(value, "A");
    refused(value, CW_COOKIE_VALUE_LEN + 2);
    strcat(value, "AA");
    refused(value, CW_COOKIE_VALUE_LEN + 4);

    size_t big = 100000;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'A', big);
    refused(huge, big);
    memcpy(huge, value, CW_COOKIE_VALUE_LEN);
    refused(huge, big);
    free(huge);
}

static void test_wrong_key(void **state)
{
    char value[CW_COOKIE_VALUE_MAX];
    cw_cookie_seal(key, UUID, value);
    unsigned char other[CW_SECRET_LEN];
    for (size_t i = 0; i < CW_SECRET_LEN * 8; i++) {
        memcpy(other, key, sizeof(other));
        other[i / 8] ^= (unsigned char)(1u << (i % 8));
        char out[CW_UUID_LEN + 1];
        assert_int_equal(cw_cookie_open(other, value, CW_COOKIE_VALUE_LEN, out),
                         CW_ERR_UNAUTHORIZED);
    }
    randombytes_buf(other, sizeof(other));
    char out[CW_UUID_LEN + 1];
    assert_int_equal(cw_cookie_open(other, value, CW_COOKIE_VALUE_LEN, out), CW_ERR_UNAUTHORIZED);
}

static void test_garbage(void **state)
{
    refused(NULL, 0);
    refused(NULL, CW_COOKIE_VALUE_LEN);
    refused("", 0);
    refused("not a cookie", 12);
    refused("deleted", 7);

    char v[CW_COOKIE_VALUE_LEN + 2];
    /* Right length, valid alphabet, but no valid box. */
    memset(v, 'A', CW_COOKIE_VALUE_LEN);
    refused(v, CW_COOKIE_VALUE_LEN);
    /* Right length, wrong alphabet. */
    memset(v, '*', CW_COOKIE_VALUE_LEN);
    refused(v, CW_COOKIE_VALUE_LEN);

    /* Standard base64 characters, padding or spaces instead of url-safe. */
    char value[CW_COOKIE_VALUE_MAX];
    cw_cookie_seal(key, UUID, value);
    char *p;
    memcpy(v, value, CW_COOKIE_VALUE_LEN);
    while ((p = memchr(v, '-', CW_COOKIE_VALUE_LEN)) || (p = memchr(v, '_', CW_COOKIE_VALUE_LEN)))
        *p = *p == '-' ? '+' : '/';
    if (memcmp(v, value, CW_COOKIE_VALUE_LEN) != 0)
        refused(v, CW_COOKIE_VALUE_LEN);
    memcpy(v, value, CW_COOKIE_VALUE_LEN);
    v[CW_COOKIE_VALUE_LEN] = '=';
    refused(v, CW_COOKIE_VALUE_LEN + 1);
    v[0] = ' ';
    memcpy(v + 1, value, CW_COOKIE_VALUE_LEN - 1);
    refused(v, CW_COOKIE_VALUE_LEN);

    /* A valid box of the wrong size: a sealed 17-byte message is 77 characters. */
    unsigned char box[24 + 16 + 17] = {0}, plain[17] = {1};
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + 24, plain, sizeof(plain), box, key);
    char b64[sodium_base64_ENCODED_LEN(sizeof(box), sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(b64, sizeof(b64), box, sizeof(box), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    refused(b64, strlen(b64));
}

static void expect_found(const char *header, const char *name, const char *want)
{
    const char *value = NULL;
    size_t len = 99;
    if (cw_cookie_find(header, name, &value, &len) != CW_OK)
        fail_msg("%s not found in \"%s\"", name, header);
    assert_true(value >= header && value + len <= header + strlen(header));
    if (len != strlen(want) || memcmp(value, want, len) != 0)
        fail_msg("found \"%.*s\", want \"%s\" in \"%s\"", (int)len, value, want, header);
}

static void expect_absent(const char *header, const char *name)
{
    const char *value = NULL;
    size_t len = 0;
    if (cw_cookie_find(header, name, &value, &len) != CW_ERR_NOT_FOUND)
        fail_msg("%s found in \"%s\": \"%.*s\"", name, header ? header : "(null)", (int)len, value);
}

static void test_find(void **state)
{
    const char *n = CW_COOKIE_NAME;
    expect_found("cw_session=abc", n, "abc");
    expect_found("a=1; cw_session=xyz; b=2", n, "xyz");
    expect_found("a=1;cw_session=xyz;b=2", n, "xyz");
    expect_found("a=1; b=2; cw_session=last", n, "last");
    expect_found("  cw_session  =  v  ;  b=2", n, "v");
    expect_found("\tcw_session=\tv\t", n, "v");
    expect_found("a=1; cw_session=xyz;", n, "xyz");
    /* Exact names: neither a suffix nor a prefix matches. */
    expect_found("xcw_session=1; cw_session=2", n, "2");
    expect_found("cw_session_x=1; cw_session=2", n, "2");
    expect_found("cw_sessionx=1; cw_session=2", n, "2");
    /* The first occurrence wins. */
    expect_found("cw_session=first; cw_session=second", n, "first");
    /* '=' inside a value belongs to the value; quotes are kept. */
    expect_found("cw_session=a=b", n, "a=b");
    expect_found("cw_session=\"q\"", n, "\"q\"");
    /* An empty value is found, and is empty. */
    expect_found("cw_session=; b=2", n, "");
    expect_found("cw_session=", n, "");
    /* A pair without '=' is skipped, not taken for the name. */
    expect_found("cw_session; cw_session=v", n, "v");
    /* A value that looks like a pair is not one. */
    expect_found("a=cw_session=1; cw_session=2", n, "2");
    expect_found("a=1; b=2", "b", "2");

    expect_absent(NULL, n);
    expect_absent("", n);
    expect_absent(";;; ;", n);
    expect_absent("   ", n);
    expect_absent("a=1; b=2", n);
    expect_absent("xcw_session=1", n);
    expect_absent("cw_session_x=1", n);
    expect_absent("CW_SESSION=1", n);
    expect_absent("cw_session", n);
    expect_absent("cw_ session=1", n);
    expect_absent("a=cw_session=1", n);
    expect_absent("=cw_session", n);
    expect_absent("a=1", NULL);
}

static void test_find_then_open(void **state)
{
    char value[CW_COOKIE_VALUE_MAX], header[300], out[CW_UUID_LEN + 1];
    cw_cookie_seal(key, UUID, value);
    snprintf(header, sizeof(header), "theme=dark; %s=%s; lang=en", CW_COOKIE_NAME, value);
    const char *v;
    size_t len;
    assert_int_equal(cw_cookie_find(header, CW_COOKIE_NAME, &v, &len), CW_OK);
    assert_int_equal(len, CW_COOKIE_VALUE_LEN);
    assert_int_equal(cw_cookie_open(key, v, len, out), CW_OK);
    assert_string_equal(out, UUID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_tamper_every_position),
        cmocka_unit_test(test_truncated_and_over_long),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_find_then_open),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
