/*
 * test_utf8.c - strict UTF-8 validation (src/core/utf8.h): Markus Kuhn's
 * decoder stress cases (boundaries, overlong forms, surrogates, code points
 * past U+10FFFF, sequences cut short), every short sequence against the
 * well-formed byte table of Unicode 15 section 3.9 (Table 3-7), and the
 * eight-byte ASCII fast path with a non-ASCII byte at each position. Each
 * input is copied into a buffer of exactly its length, so that a read past
 * the end is caught under ASan.
 */
#include "core/utf8.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* cw_utf8_valid on a heap copy of exactly n bytes. */
static bool valid_n(const void *s, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    bool ok = cw_utf8_valid(copy, n);
    free(copy);
    return ok;
}

#define VALID(lit)   check(lit, sizeof(lit) - 1, true)
#define INVALID(lit) check(lit, sizeof(lit) - 1, false)

static void check(const char *s, size_t n, bool want)
{
    if (valid_n(s, n) != want) {
        char hex[256] = "";
        for (size_t i = 0; i < n && i < 80; i++)
            snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", (unsigned char)s[i]);
        fail_msg("%s: %s", want ? "refused" : "accepted", hex);
    }
}

/*
 * The reference: Table 3-7 (well-formed UTF-8 byte sequences), written out
 * range by range rather than by decoding, so that it shares nothing with
 * the code under test.
 */
static size_t ref_seq(const unsigned char *p, size_t n)
{
    unsigned char b0 = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (b0 <= 0x7f)
        return 1;
    if (b0 >= 0xc2 && b0 <= 0xdf)
        len = 2;
    else if (b0 == 0xe0)
        len = 3, lo = 0xa0;
    else if ((b0 >= 0xe1 && b0 <= 0xec) || b0 == 0xee || b0 == 0xef)
        len = 3;
    else if (b0 == 0xed)
        len = 3, hi = 0x9f;
    else if (b0 == 0xf0)
        len = 4, lo = 0x90;
    else if (b0 >= 0xf1 && b0 <= 0xf3)
        len = 4;
    else if (b0 == 0xf4)
        len = 4, hi = 0x8f;
    else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

static bool ref_valid(const unsigned char *p, size_t n)
{
    while (n) {
        size_t len = ref_seq(p, n);
        if (!len)
            return false;
        p += len;
        n -= len;
    }
    return true;
}

/* --------------------------------------------------------- Kuhn's cases */

static void test_empty_and_ascii(void **state)
{
    VALID("");
    VALID("a");
    VALID("hello, world");
    VALID("\x7f");
    /* U+0000 is a code point like any other. */
    check("\0", 1, true);
    check("a\0b\0\0\0\0\0\0\0c", 11, true);
    /* Only n bytes are read: what follows does not count. */
    check("ab\xff", 2, true);
    check("\xc3\xa9", 1, false);
}

static void test_first_and_last_of_each_length(void **state)
{
    /* Kuhn 2.1: the first code point of each length. */
    check("\x00", 1, true);    /* U+0000 */
    VALID("\xc2\x80");         /* U+0080 */
    VALID("\xe0\xa0\x80");     /* U+0800 */
    VALID("\xf0\x90\x80\x80"); /* U+10000 */
    /* Kuhn 2.2: the last of each length (that Unicode still allows). */
    VALID("\x7f");             /* U+007F */
    VALID("\xdf\xbf");         /* U+07FF */
    VALID("\xef\xbf\xbf");     /* U+FFFF */
    VALID("\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    /* ...and the 5- and 6-byte forms RFC 3629 removed. */
    INVALID("\xf7\xbf\xbf\xbf");         /* U+1FFFFF */
    INVALID("\xf8\x88\x80\x80\x80");     /* U+200000 */
    INVALID("\xfb\xbf\xbf\xbf\xbf");     /* U+3FFFFFF */
    INVALID("\xfc\x84\x80\x80\x80\x80"); /* U+4000000 */
    INVALID("\xfd\xbf\xbf\xbf\xbf\xbf"); /* U+7FFFFFFF */
    /* Kuhn 2.3: other boundaries. */
    VALID("\xed\x9f\xbf");       /* U+D7FF */
    VALID("\xee\x80\x80");       /* U+E000 */
    VALID("\xef\xbf\xbd");       /* U+FFFD */
    VALID("\xf4\x8f\xbf\xbf");   /* U+10FFFF */
    INVALID("\xf4\x90\x80\x80"); /* U+110000 */
    /* Noncharacters are still scalar values (Kuhn 5.3). */
    VALID("\xef\xbf\xbe");
    VALID("\xef\xb7\x90");
    VALID("\xf0\x9f\xbf\xbf");
    VALID("\xf4\x8f\xbf\xbe");
    /* Kuhn 1: some correct text. */
    VALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
    VALID("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87");
}

static void test_beyond_10ffff(void **state)
{
    INVALID("\xf4\x90\x80\x80");
    INVALID("\xf4\xbf\xbf\xbf");
    INVALID("\xf4\x90\x80\x80 ");
    INVALID("abcdefgh\xf4\x90\x80\x80");
    for (unsigned b = 0xf5; b <= 0xff; b++) {
        unsigned char s[4] = {(unsigned char)b, 0x80, 0x80, 0x80};
        check((const char *)s, 4, false);
    }
}

static void test_unexpected_continuation(void **state)
{
    /* Kuhn 3.1: continuation bytes with no lead byte. */
    for (unsigned b = 0x80; b <= 0xbf; b++) {
        unsigned char s[3] = {'a', (unsigned char)b, 'b'};
        check((const char *)s + 1, 1, false);
        check((const char *)s, 3, false);
    }
    INVALID("\x80\xbf");
    INVALID("\x80\xbf\x80");
    INVALID("\x80\xbf\x80\xbf");
    INVALID("\xc3\xa9\xa9"); /* one continuation too many */
    INVALID("\xe2\x82\xac\x80");
    INVALID("\xf0\x9f\x98\x80\x80");
    /* Kuhn 3.1.9: all 64 continuation bytes in a row. */
    unsigned char all[64];
    for (int i = 0; i < 64; i++)
        all[i] = (unsigned char)(0x80 + i);
    check((const char *)all, sizeof(all), false);
}

static void test_lonely_start_bytes(void **state)
{
    /* Kuhn 3.2: each lead byte followed by a space. */
    for (unsigned b = 0xc0; b <= 0xff; b++) {
        unsigned char s[2] = {(unsigned char)b, ' '};
        check((const char *)s, 2, false);
        check((const char *)s, 1, false);
    }
    /* Kuhn 3.5: bytes that never appear. */
    INVALID("\xfe");
    INVALID("\xff");
    INVALID("\xfe\xfe\xff\xff");
}

static void test_cut_short(void **state)
{
    /* Kuhn 3.3: the last continuation byte missing, at the end of the input... */
    INVALID("\xc2");
    INVALID("\xdf");
    INVALID("\xe0\xa0");
    INVALID("\xef\xbf");
    INVALID("\xf0\x90\x80");
    INVALID("\xf4\x8f\xbf");
    INVALID("\xf0");
    INVALID("\xf0\x90");
    /* ...after a fast-path run of ASCII... */
    INVALID("abcdefgh\xc2");
    INVALID("abcdefgh\xe2\x82");
    INVALID("abcdefghijklmno\xf0\x9f\x98");
    /* ...and followed by something else (3.4: all of them in a row). */
    INVALID("\xc2 ");
    INVALID("\xe2\x82 ");
    INVALID("\xf0\x9f\x98 ");
    INVALID("\xe2\x82\xc3\xa9");
    INVALID("\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
            "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf");
    /* Every proper prefix of a valid sequence fails; the whole passes. */
    static const char *const seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                       "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        size_t n = strlen(seqs[i]);
        for (size_t cut = 1; cut < n; cut++)
            check(seqs[i], cut, false);
        check(seqs[i], n, true);
    }
}

static void test_overlong(void **state)
{
    /* Kuhn 4.1: '/' in every longer form. */
    INVALID("\xc0\xaf");
    INVALID("\xe0\x80\xaf");
    INVALID("\xf0\x80\x80\xaf");
    INVALID("\xf8\x80\x80\x80\xaf");
    INVALID("\xfc\x80\x80\x80\x80\xaf");
    /* Kuhn 4.2: the largest overlong of each length. */
    INVALID("\xc1\xbf");
    INVALID("\xe0\x9f\xbf");
    INVALID("\xf0\x8f\xbf\xbf");
    INVALID("\xf8\x87\xbf\xbf\xbf");
    INVALID("\xfc\x83\xbf\xbf\xbf\xbf");
    /* Kuhn 4.3: NUL in longer forms (Java's "modified UTF-8"). */
    INVALID("\xc0\x80");
    INVALID("\xe0\x80\x80");
    INVALID("\xf0\x80\x80\x80");
    INVALID("\xf8\x80\x80\x80\x80");
    INVALID("\xfc\x80\x80\x80\x80\x80");
    /* The smallest of each length that is not overlong. */
    VALID("\xc2\x80");
    VALID("\xe0\xa0\x80");
    VALID("\xf0\x90\x80\x80");
}

static void test_surrogates(void **state)
{
    /* Kuhn 5.1: single surrogates. */
    INVALID("\xed\xa0\x80"); /* U+D800 */
    INVALID("\xed\xad\xbf"); /* U+DB7F */
    INVALID("\xed\xae\x80"); /* U+DB80 */
    INVALID("\xed\xaf\xbf"); /* U+DBFF */
    INVALID("\xed\xb0\x80"); /* U+DC00 */
    INVALID("\xed\xbe\x80"); /* U+DF80 */
    INVALID("\xed\xbf\xbf"); /* U+DFFF */
    /* Kuhn 5.2: pairs (CESU-8). */
    INVALID("\xed\xa0\x80\xed\xb0\x80");
    INVALID("\xed\xa0\x80\xed\xbf\xbf");
    INVALID("\xed\xad\xbf\xed\xb0\x80");
    INVALID("\xed\xaf\xbf\xed\xbf\xbf");
    /* Either side of the hole. */
    VALID("\xed\x9f\xbf");
    VALID("\xee\x80\x80");
    VALID("\xed\x80\x80");
}

/* --------------------------------------------- against the byte table */

static void test_all_short_sequences(void **state)
{
    /* Every 1-, 2- and 3-byte input. */
    unsigned char s[4];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        if (cw_utf8_valid(s, 1) != ref_valid(s, 1))
            fail_msg("%02x", a);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            if (cw_utf8_valid(s, 2) != ref_valid(s, 2))
                fail_msg("%02x %02x", a, b);
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                if (cw_utf8_valid(s, 3) != ref_valid(s, 3))
                    fail_msg("%02x %02x %02x", a, b, c);
            }
        }
    }
}

static void test_four_byte_sequences(void **state)
{
    /* Every first two bytes, with the last two from the edges of each class. */
    static const unsigned char tail[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                         0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
    const size_t nt = sizeof(tail);
    unsigned char s[4];
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t i = 0; i < nt; i++)
                for (size_t j = 0; j < nt; j++) {
                    s[0] = (unsigned char)a;
                    s[1] = (unsigned char)b;
                    s[2] = tail[i];
                    s[3] = tail[j];
                    if (cw_utf8_valid(s, 4) != ref_valid(s, 4))
                        fail_msg("%02x %02x %02x %02x", a, b, s[2], s[3]);
                }
}

/* ------------------------------------------------------ the fast path */

static void test_fast_path_each_position(void **state)
{
    /*
     * ASCII runs of every length up to 40 with one foreign byte or sequence at
     * each position: the eight-byte skip must never step over it, whatever
     * the alignment.
     */
    static const struct {
        const char *s;
        bool ok;
    } odd[] = {
        {"\x80", false},
        {"\xff", false},
        {"\xc0\x80", false},
        {"\xc3\xa9", true},
        {"\xe2\x82\xac", true},
        {"\xed\xa0\x80", false},
        {"\xc3", false},
        {"\xf0\x9f\x98\x80", true},
        {"\xf4\x90\x80\x80", false},
    };
    char buf[64];
    for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
        size_t m = strlen(odd[k].s);
        for (size_t total = m; total <= 40; total++)
            for (size_t at = 0; at + m <= total; at++) {
                memset(buf, 'x', total);
                memcpy(buf + at, odd[k].s, m);
                if (valid_n(buf, total) != odd[k].ok)
                    fail_msg("case %zu, length %zu, at %zu", k, total, at);
            }
    }
}

static void test_fast_path_mixed(void **state)
{
    /* Long valid text with multi-byte characters at odd offsets. */
    char buf[1024];
    size_t n = 0;
    while (n + 16 < sizeof(buf)) {
        memcpy(buf + n, "abcdefghijk", 11);
        n += 11;
        memcpy(buf + n, "\xe2\x82\xac", 3);
        n += 3;
        buf[n++] = 'z';
    }
    check(buf, n, true);
    /* One bad byte anywhere in it, in a byte of any kind, is found. */
    for (size_t i = 0; i < n; i++) {
        char saved = buf[i];
        buf[i] = (char)0xff;
        check(buf, n, false);
        buf[i] = saved;
    }
    /* Cut anywhere: valid exactly when the cut is not inside a character. */
    for (size_t cut = 0; cut <= n; cut++) {
        bool inside = cut < n && ((unsigned char)buf[cut] & 0xc0) == 0x80;
        check(buf, cut, !inside);
    }
    /* A NUL among high bytes is still ASCII. */
    check("\0\0\0\0\0\0\0\0\xc3\xa9\0\0\0\0\0\0\0\0", 18, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_ascii),
        cmocka_unit_test(test_first_and_last_of_each_length),
        cmocka_unit_test(test_beyond_10ffff),
        cmocka_unit_test(test_unexpected_continuation),
        cmocka_unit_test(test_lonely_start_bytes),
        cmocka_unit_test(test_cut_short),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_all_short_sequences),
        cmocka_unit_test(test_four_byte_sequences),
        cmocka_unit_test(test_fast_path_each_position),
        cmocka_unit_test(test_fast_path_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
