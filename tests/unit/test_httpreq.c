/*
 * test_httpreq.c - the HTTP/1.x request-head parser (src/gateway/httpreq.h):
 * heads ended by CRLF or bare LF, MORE at every cut, the max_head and
 * field-count limits at their exact boundaries, malformed request lines and
 * fields (blank before the colon, obsolete folding, NUL and control bytes),
 * value trimming, case-insensitive lookup and comma-separated token lists,
 * and Content-Length: one plain number, never repeated (request smuggling).
 * Each head is parsed from a heap copy of exactly its length, so that a read
 * past the end is caught under ASan.
 */
#include "gateway/httpreq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define BIG 65536

/* A parse of s[0..n) in its own buffer, kept until release. */
struct parsed {
    char *buf;
    size_t len;
    long rc;
    struct cw_httpreq r;
};

static void parse_n(struct parsed *p, const char *s, size_t n, size_t max_head)
{
    p->buf = malloc(n ? n : 1);
    assert_non_null(p->buf);
    if (n)
        memcpy(p->buf, s, n);
    p->len = n;
    memset(&p->r, 0xa5, sizeof(p->r));
    p->rc = cw_httpreq_parse(p->buf, n, max_head, &p->r);
    /* Whatever it returns, a head never reaches past the input or the limit. */
    assert_true(p->rc <= (long)n && p->rc <= (long)max_head);
    if (p->rc > 0) {
        for (size_t i = 0; i < p->r.n_fields; i++) {
            const char *nm = p->r.fields[i].name, *v = p->r.fields[i].value;
            assert_true(nm >= p->buf && nm + strlen(nm) < p->buf + p->rc);
            assert_true(v >= p->buf && v + strlen(v) < p->buf + p->rc);
        }
        assert_true(p->r.method >= p->buf && p->r.target > p->r.method);
        assert_true(p->r.target + strlen(p->r.target) < p->buf + p->rc);
    }
}

static void release(struct parsed *p)
{
    free(p->buf);
    p->buf = NULL;
}

static long rc_of(const char *s, size_t max_head)
{
    struct parsed p;
    parse_n(&p, s, strlen(s), max_head);
    release(&p);
    return p.rc;
}

static void expect_bad(const char *s)
{
    long rc = rc_of(s, BIG);
    if (rc != CW_HTTPREQ_BAD)
        fail_msg("rc %ld, not BAD, for \"%s\"", rc, s);
}

static void expect_ok(const char *s)
{
    long rc = rc_of(s, BIG);
    if (rc != (long)strlen(s))
        fail_msg("rc %ld, not %zu, for \"%s\"", rc, strlen(s), s);
}

/* --------------------------------------------------------- whole heads */

static void test_crlf_head(void **state)
{
    const char *head = "GET /chat?room=1&x=%20 HTTP/1.1\r\n"
                       "Host: example.com\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: keep-alive, Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "\r\n";
    struct parsed p;
    parse_n(&p, head, strlen(head), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_string_equal(p.r.method, "GET");
    assert_string_equal(p.r.target, "/chat?room=1&x=%20");
    assert_int_equal(p.r.minor, 1);
    assert_int_equal(p.r.n_fields, 4);
    assert_string_equal(p.r.fields[0].name, "Host");
    assert_string_equal(p.r.fields[0].value, "example.com");
    assert_string_equal(p.r.fields[1].name, "Upgrade");
    assert_string_equal(p.r.fields[1].value, "websocket");
    assert_string_equal(p.r.fields[2].name, "Connection");
    assert_string_equal(p.r.fields[2].value, "keep-alive, Upgrade");
    assert_string_equal(p.r.fields[3].name, "Sec-WebSocket-Key");
    assert_string_equal(p.r.fields[3].value, "dGhlIHNhbXBsZSBub25jZQ==");
    release(&p);
}

static void test_bare_lf_head(void **state)
{
    const char *head = "POST /command HTTP/1.0\nHost: h\nContent-Length: 2\n\n";
    struct parsed p;
    parse_n(&p, head, strlen(head), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_string_equal(p.r.method, "POST");
    assert_string_equal(p.r.target, "/command");
    assert_int_equal(p.r.minor, 0);
    assert_int_equal(p.r.n_fields, 2);
    assert_string_equal(p.r.fields[1].name, "Content-Length");
    assert_string_equal(p.r.fields[1].value, "2");
    release(&p);

    /* Line ends mixed, and a head ended by LF CRLF or CRLF LF. */
    expect_ok("GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\r\n");
    expect_ok("GET / HTTP/1.1\nA: 1\n\r\n");
    expect_ok("GET / HTTP/1.1\r\nA: 1\r\n\n");
    expect_ok("GET / HTTP/1.1\n\n");
    expect_ok("GET / HTTP/1.1\r\n\r\n");
}

static void test_body_follows(void **state)
{
    const char *head = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
    char msg[128];
    snprintf(msg, sizeof(msg), "%shello\r\n\r\nmore", head);
    struct parsed p;
    parse_n(&p, msg, strlen(msg), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_memory_equal(p.buf + p.rc, "hello\r\n\r\nmore", 13); /* left as it was */
    assert_string_equal(cw_httpreq_field(&p.r, "content-length"), "5");
    release(&p);

    /* A NUL in the body is none of the head's business. */
    char with_nul[64];
    size_t n = (size_t)snprintf(with_nul, sizeof(with_nul), "GET / HTTP/1.1\r\n\r\n");
    memcpy(with_nul + n, "a\0b", 3);
    parse_n(&p, with_nul, n + 3, BIG);
    assert_int_equal(p.rc, n);
    release(&p);
}

static void test_request_line_forms(void **state)
{
    struct parsed p;
    parse_n(&p, "M-SEARCH * HTTP/1.9\r\n\r\n", 23, BIG);
    assert_int_equal(p.rc, 23);
    assert_string_equal(p.r.method, "M-SEARCH");
    assert_string_equal(p.r.target, "*");
    assert_int_equal(p.r.minor, 9);
    assert_int_equal(p.r.n_fields, 0);
    release(&p);
    expect_ok("OPTIONS http://example.com:80/a?b#c HTTP/1.1\r\n\r\n");
    expect_ok("GET /%7e~!$&'()*+,;=:@ HTTP/1.1\r\n\r\n");
    expect_ok("x!#$%&'*+-.^_`|~9 / HTTP/1.1\r\n\r\n");
    expect_ok("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"); /* bytes past 0x7f in the target */
    /* One empty line before the request line is skipped (RFC 9112 2.2). */
    parse_n(&p, "\r\nGET / HTTP/1.1\r\n\r\n", 20, BIG);
    assert_int_equal(p.rc, 20);
    assert_string_equal(p.r.method, "GET");
    release(&p);
    parse_n(&p, "\nGET / HTTP/1.1\n\n", 17, BIG);
    assert_int_equal(p.rc, 17);
    release(&p);
}

/* ----------------------------------------------------- partial heads */

static void test_more_at_every_cut(void **state)
{
    static const char *const heads[] = {
        "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n",
        "GET / HTTP/1.0\n\n",
        "GET / HTTP/1.1\nX: y\n\r\n",
        "\r\nGET / HTTP/1.1\r\nA:\r\nB: \t \r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    };
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        size_t n = strlen(heads[h]);
        for (size_t cut = 0; cut < n; cut++) {
            struct parsed p;
            parse_n(&p, heads[h], cut, BIG);
            if (p.rc != CW_HTTPREQ_MORE)
                fail_msg("head %zu cut at %zu: rc %ld", h, cut, p.rc);
            release(&p);
        }
        assert_int_equal(rc_of(heads[h], BIG), n);
    }
    /* Nothing is also not enough. */
    struct parsed p;
    parse_n(&p, "", 0, BIG);
    assert_int_equal(p.rc, CW_HTTPREQ_MORE);
    release(&p);
    /* A lone line end is not a blank line. */
    assert_int_equal(rc_of("GET / HTTP/1.1\r\n", BIG), CW_HTTPREQ_MORE);
    assert_int_equal(rc_of("GET / HTTP/1.1\r\n\r", BIG), CW_HTTPREQ_MORE);
    assert_int_equal(rc_of("GET / HTTP/1.1\r\r\r\r", BIG), CW_HTTPREQ_MORE);
}

/* ------------------------------------------------------------ the limits */

static void check_limit(const char *head)
{
    size_t n = strlen(head);
    /* A head of exactly max_head bytes is taken, with or without a body. */
    assert_int_equal(rc_of(head, n), n);
    char *with_body = malloc(n + 100);
    assert_non_null(with_body);
    memcpy(with_body, head, n);
    memset(with_body + n, 'b', 99);
    with_body[n + 99] = '\0';
    assert_int_equal(rc_of(with_body, n), n);
    /* One byte more than max_head is too large, whole or cut. */
    assert_int_equal(rc_of(head, n - 1), CW_HTTPREQ_TOO_LARGE);
    assert_int_equal(rc_of(with_body, n - 1), CW_HTTPREQ_TOO_LARGE);
    free(with_body);
    for (size_t cut = 0; cut < n; cut++) {
        struct parsed p;
        /* max_head bytes with no end yet: it cannot fit any more. */
        parse_n(&p, head, cut, cut);
        if (p.rc != CW_HTTPREQ_TOO_LARGE)
            fail_msg("cut %zu, max_head %zu: rc %ld", cut, cut, p.rc);
        release(&p);
        /* Fewer than max_head bytes with no end: read on. */
        parse_n(&p, head, cut, cut + 1);
        if (p.rc != CW_HTTPREQ_MORE)
            fail_msg("cut %zu, max_head %zu: rc %ld", cut, cut + 1, p.rc);
        release(&p);
        /* With everything there but a limit shorter than the head: too large. */
        parse_n(&p, head, n, cut);
        if (p.rc != CW_HTTPREQ_TOO_LARGE)
            fail_msg("whole head, max_head %zu: rc %ld", cut, p.rc);
        release(&p);
    }
    /* Any limit at or above the head's length takes it. */
    for (size_t max = n; max < n + 5; max++)
        assert_int_equal(rc_of(head, max), n);
}

static void test_max_head_boundary(void **state)
{
    check_limit("GET /abc HTTP/1.1\r\nHost: x\r\n\r\n");
    check_limit("GET /abc HTTP/1.1\nHost: x\n\n");
    check_limit("GET / HTTP/1.1\nHost: x\n\r\n");
    check_limit("GET / HTTP/1.1\r\nHost: x\r\n\n");
}

static void test_too_many_fields(void **state)
{
    char head[4096];
    for (int count = CW_HTTPREQ_MAX_FIELDS - 1; count <= CW_HTTPREQ_MAX_FIELDS + 2; count++) {
        size_t n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(head + n, sizeof(head) - n, "X-F%d: v%d\r\n", i, i);
        n += (size_t)snprintf(head + n, sizeof(head) - n, "\r\n");
        struct parsed p;
        parse_n(&p, head, n, BIG);
        if (count <= CW_HTTPREQ_MAX_FIELDS) {
            assert_int_equal(p.rc, n);
            assert_int_equal(p.r.n_fields, count);
            char name[16], value[16];
            snprintf(name, sizeof(name), "x-f%d", count - 1);
            snprintf(value, sizeof(value), "v%d", count - 1);
            assert_string_equal(cw_httpreq_field(&p.r, name), value);
            assert_string_equal(p.r.fields[count - 1].value, value);
        } else {
            assert_int_equal(p.rc, CW_HTTPREQ_TOO_LARGE);
        }
        release(&p);
    }
    /* Empty values count as fields too. */
    size_t n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\n");
    for (int i = 0; i <= CW_HTTPREQ_MAX_FIELDS; i++)
        n += (size_t)snprintf(head + n, sizeof(head) - n, "A:\n");
    n += (size_t)snprintf(head + n, sizeof(head) - n, "\n");
    assert_int_equal(rc_of(head, BIG), CW_HTTPREQ_TOO_LARGE);
}

/* ---------------------------------------------------------- malformed */

static void test_bad_request_line(void **state)
{
    expect_bad("GET /\r\n\r\n");
    expect_bad("GET\r\n\r\n");
    expect_bad("/ HTTP/1.1\r\n\r\n");
    expect_bad("GET  / HTTP/1.1\r\n\r\n");  /* two spaces */
    expect_bad("GET /  HTTP/1.1\r\n\r\n");  /* a space ending the target */
    expect_bad(" GET / HTTP/1.1\r\n\r\n");  /* no method */
    expect_bad("GET / HTTP/1.1 \r\n\r\n");  /* a blank after the version */
    expect_bad("GET / HTTP/1.1 x\r\n\r\n"); /* four words */
    expect_bad("GET /a b HTTP/1.1\r\n\r\n");
    expect_bad("GET\t/ HTTP/1.1\r\n\r\n");
    expect_bad("GET /\tx HTTP/1.1\r\n\r\n");
    expect_bad("GET /\x7f HTTP/1.1\r\n\r\n");
    expect_bad("GET /\x01 HTTP/1.1\r\n\r\n");
    expect_bad("GET /\r HTTP/1.1\r\n\r\n");
    expect_bad("G(T / HTTP/1.1\r\n\r\n");
    expect_bad("GE\"T / HTTP/1.1\r\n\r\n");
    expect_bad("G\xc3\x89T / HTTP/1.1\r\n\r\n");
    /* The version: HTTP/1.<one digit>, in upper case. */
    expect_bad("GET / HTTP/2.0\r\n\r\n");
    expect_bad("GET / HTTP/1.\r\n\r\n");
    expect_bad("GET / HTTP/1.10\r\n\r\n");
    expect_bad("GET / HTTP/1.x\r\n\r\n");
    expect_bad("GET / HTTP/1\r\n\r\n");
    expect_bad("GET / http/1.1\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\r\n\r\n"); /* a CR left in the version */
    expect_bad("GET / HTTPS/1.1\r\n\r\n");
    expect_bad("GET / \r\n\r\n");
    /* Not a request line at all. */
    expect_bad("HTTP/1.1 200 OK\r\n\r\n");
    expect_bad("\x16\x03\x01\x02\x05\x01\x01\xfc\x03\x03\n\n"); /* TLS, NULs left out */
}

static void test_blank_lines_only(void **state)
{
    /* Heads of nothing but line ends, each in a buffer of exactly its size (ASan sees an overread).
     */
    static const char *const blanks[] = {"\n\n", "\r\n\r\n", "\r\n\n", "\n\r\n"};
    for (size_t i = 0; i < sizeof(blanks) / sizeof(blanks[0]); i++) {
        size_t n = strlen(blanks[i]);
        char *buf = malloc(n);
        memcpy(buf, blanks[i], n);
        struct cw_httpreq r;
        assert_int_equal(cw_httpreq_parse(buf, n, BIG, &r), CW_HTTPREQ_BAD);
        free(buf);
    }
}

static void test_bad_fields(void **state)
{
    /* A blank before the colon (RFC 9112 5.1), or no name, or no colon. */
    expect_bad("GET / HTTP/1.1\r\nHost : x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHo st: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\n: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHost\r\n\r\n");
    /* Names are tokens. */
    expect_bad("GET / HTTP/1.1\r\nHo@st: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHo(st): x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHo\"st: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nH\xc3\xb6st: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nHo\x7fst: x\r\n\r\n");
    expect_ok("GET / HTTP/1.1\r\nX!#$%&'*+-.^_`|~9: x\r\n\r\n");
    /* Obsolete line folding: a line starting with a blank. */
    expect_bad("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\n Host: x\r\n\r\n");
    expect_bad("GET / HTTP/1.1\n\tHost: x\n\n");
    /* Control bytes in a value; a tab is fine. */
    expect_bad("GET / HTTP/1.1\r\nX: a\x01"
               "b\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX: a\x1f\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"); /* a bare CR */
    expect_bad("GET / HTTP/1.1\r\nX: a\r\r\n\r\n");
    expect_bad("GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n");
    expect_ok("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n");
    expect_ok("GET / HTTP/1.1\r\nX: caf\xc3\xa9 \xff\r\n\r\n"); /* obs-text */
    /* The first bad field is enough, wherever it is. */
    expect_bad("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC : 3\r\n\r\n");
}

static void test_nul_bytes(void **state)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        "GET / HTTP/1.1\nX: y\n\n",
    };
    /* A NUL anywhere in the head, in place of any byte but the last. */
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        size_t n = strlen(heads[h]);
        char buf[64];
        for (size_t i = 0; i < n; i++) {
            memcpy(buf, heads[h], n);
            if (buf[i] == '\r' || buf[i] == '\n')
                continue; /* the head would not end where it did */
            buf[i] = '\0';
            struct parsed p;
            parse_n(&p, buf, n, BIG);
            if (p.rc != CW_HTTPREQ_BAD)
                fail_msg("head %zu, NUL at %zu: rc %ld", h, i, p.rc);
            release(&p);
        }
    }
    /* ...and a NUL in place of a CR. */
    struct parsed p;
    parse_n(&p, "GET / HTTP/1.1\0\nX: y\r\n\r\n", sizeof("GET / HTTP/1.1\0\nX: y\r\n\r\n") - 1,
            BIG);
    assert_int_equal(p.rc, CW_HTTPREQ_BAD);
    release(&p);
}

/* ----------------------------------------------------------- the values */

static void test_value_trimming(void **state)
{
    const char *head = "GET / HTTP/1.1\r\n"
                       "A:value\r\n"
                       "B:   spaced  \r\n"
                       "C:\t tabbed \t\r\n"
                       "D:\r\n"
                       "E:  \t  \r\n"
                       "F: inner  blanks\tstay \r\n"
                       "G: \"quoted \" \r\n"
                       "\r\n";
    struct parsed p;
    parse_n(&p, head, strlen(head), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_int_equal(p.r.n_fields, 7);
    assert_string_equal(cw_httpreq_field(&p.r, "A"), "value");
    assert_string_equal(cw_httpreq_field(&p.r, "B"), "spaced");
    assert_string_equal(cw_httpreq_field(&p.r, "C"), "tabbed");
    assert_string_equal(cw_httpreq_field(&p.r, "D"), "");
    assert_string_equal(cw_httpreq_field(&p.r, "E"), "");
    assert_string_equal(cw_httpreq_field(&p.r, "F"), "inner  blanks\tstay");
    assert_string_equal(cw_httpreq_field(&p.r, "G"), "\"quoted \"");
    release(&p);

    /* The same with bare LF. */
    parse_n(&p, "GET / HTTP/1.1\nA:  x  \nB:\n\n", 27, BIG);
    assert_int_equal(p.rc, 27);
    assert_string_equal(cw_httpreq_field(&p.r, "a"), "x");
    assert_string_equal(cw_httpreq_field(&p.r, "b"), "");
    release(&p);

    /* A colon in a value is part of it. */
    parse_n(&p, "GET / HTTP/1.1\r\nHost: h:8080\r\n\r\n", 32, BIG);
    assert_int_equal(p.rc, 32);
    assert_string_equal(cw_httpreq_field(&p.r, "host"), "h:8080");
    release(&p);
}

static void test_field_lookup(void **state)
{
    const char *head = "GET / HTTP/1.1\r\n"
                       "Content-Type: text/plain\r\n"
                       "X-Dup: first\r\n"
                       "x-dup: second\r\n"
                       "Host: h\r\n"
                       "\r\n";
    struct parsed p;
    parse_n(&p, head, strlen(head), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_string_equal(cw_httpreq_field(&p.r, "Content-Type"), "text/plain");
    assert_string_equal(cw_httpreq_field(&p.r, "content-type"), "text/plain");
    assert_string_equal(cw_httpreq_field(&p.r, "CONTENT-TYPE"), "text/plain");
    assert_string_equal(cw_httpreq_field(&p.r, "cOnTeNt-TyPe"), "text/plain");
    /* The first of several wins, in any case. */
    assert_string_equal(cw_httpreq_field(&p.r, "X-DUP"), "first");
    /* Whole names only. */
    assert_null(cw_httpreq_field(&p.r, "Content"));
    assert_null(cw_httpreq_field(&p.r, "Content-Type2"));
    assert_null(cw_httpreq_field(&p.r, "Hos"));
    assert_null(cw_httpreq_field(&p.r, "Hostx"));
    assert_null(cw_httpreq_field(&p.r, ""));
    assert_null(cw_httpreq_field(&p.r, "Cookie"));
    /* The names are cut at the colon. */
    assert_string_equal(p.r.fields[0].name, "Content-Type");
    release(&p);

    /* No fields at all. */
    parse_n(&p, "GET / HTTP/1.1\r\n\r\n", 18, BIG);
    assert_int_equal(p.r.n_fields, 0);
    assert_null(cw_httpreq_field(&p.r, "Host"));
    release(&p);
}

static void check_unescape(const char *in, bool plus, const char *want)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", in);
    bool ok = cw_http_unescape(buf, plus);
    if (!want) {
        assert_false(ok);
        return;
    }
    assert_true(ok);
    assert_string_equal(buf, want);
}

/* One decoder for paths and form values: '+' is a space only in form values; no %00, no bad escape.
 */
static void test_unescape(void **state)
{
    check_unescape("/static/a%20b", false, "/static/a b");
    check_unescape("a+b", false, "a+b");
    check_unescape("a+b%2B", true, "a b+");
    check_unescape("%2e%2E/x", false, "../x");
    check_unescape("%41%62", true, "Ab");
    check_unescape("", true, "");
    check_unescape("a%00b", false, NULL);
    check_unescape("a%00b", true, NULL);
    check_unescape("a%2", true, NULL);
    check_unescape("a%zz", false, NULL);
    check_unescape("%", true, NULL);
}

static void test_has_token(void **state)
{
    assert_true(cw_httpreq_has_token("keep-alive, Upgrade", "Upgrade"));
    assert_true(cw_httpreq_has_token("keep-alive, Upgrade", "upgrade"));
    assert_true(cw_httpreq_has_token("keep-alive, Upgrade", "UPGRADE"));
    assert_true(cw_httpreq_has_token("keep-alive, Upgrade", "keep-alive"));
    assert_true(cw_httpreq_has_token("Upgrade", "upgrade"));
    assert_true(cw_httpreq_has_token("upgrade,keep-alive", "Upgrade"));
    assert_true(cw_httpreq_has_token(" ,, Upgrade ,\t", "upgrade"));
    assert_true(cw_httpreq_has_token("a,\tUpgrade\t,b", "upgrade"));
    assert_true(cw_httpreq_has_token("websocket", "WebSocket"));
    /* Whole tokens only. */
    assert_false(cw_httpreq_has_token("keep-alive, Upgrade", "Upgrad"));
    assert_false(cw_httpreq_has_token("keep-alive, Upgrade", "pgrade"));
    assert_false(cw_httpreq_has_token("keep-alive, Upgrades", "Upgrade"));
    assert_false(cw_httpreq_has_token("keep-alive, Upgrade-h2", "Upgrade"));
    assert_false(cw_httpreq_has_token("keep-alive, Upgrade", "keep"));
    assert_false(cw_httpreq_has_token("keep-alive, Upgrade", "alive, Upgrade"));
    assert_false(cw_httpreq_has_token("close", "Upgrade"));
    assert_false(cw_httpreq_has_token("", "Upgrade"));
    assert_false(cw_httpreq_has_token(",,, ,", "Upgrade"));
    assert_false(cw_httpreq_has_token(NULL, "Upgrade"));

    /* Straight from a parsed head. */
    struct parsed p;
    const char *head = "GET /ws HTTP/1.1\r\nConnection:  keep-alive, Upgrade \r\n"
                       "Upgrade: WebSocket\r\n\r\n";
    parse_n(&p, head, strlen(head), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_true(cw_httpreq_has_token(cw_httpreq_field(&p.r, "connection"), "upgrade"));
    assert_true(cw_httpreq_has_token(cw_httpreq_field(&p.r, "upgrade"), "websocket"));
    assert_false(cw_httpreq_has_token(cw_httpreq_field(&p.r, "sec-websocket-key"), "x"));
    release(&p);
}

/* ------------------------------------------------------- the body's length */

static void test_content_length(void **state)
{
    /* One plain number frames the body. */
    expect_ok("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
    expect_ok("POST / HTTP/1.1\r\ncontent-length:0\r\n\r\n");
    expect_ok("POST / HTTP/1.1\r\nContent-Length:  12 \t\r\n\r\n"); /* blanks around it */
    /* Anything else is refused (RFC 9112 6.3): a second field, even an equal one... */
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 5\r\nX: 1\r\ncontent-LENGTH: 5\r\n\r\n");
    /* ...a list, even of equal values (RFC 9110 8.6 allows taking it; we do not)... */
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 5,6\r\n\r\n");
    /* ...or not a number at all. */
    expect_bad("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n");
    expect_bad("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n");
}

static void test_field_count(void **state)
{
    const char *head = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: b\r\nHOST: c\r\n\r\n";
    struct parsed p;
    parse_n(&p, head, strlen(head), BIG);
    assert_int_equal(p.rc, strlen(head));
    assert_int_equal(cw_httpreq_count(&p.r, "host"), 3);
    assert_int_equal(cw_httpreq_count(&p.r, "x"), 1);
    assert_int_equal(cw_httpreq_count(&p.r, "hos"), 0);
    assert_int_equal(cw_httpreq_count(&p.r, "sec-websocket-key"), 0);
    release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crlf_head),         cmocka_unit_test(test_bare_lf_head),
        cmocka_unit_test(test_body_follows),      cmocka_unit_test(test_request_line_forms),
        cmocka_unit_test(test_more_at_every_cut), cmocka_unit_test(test_max_head_boundary),
        cmocka_unit_test(test_too_many_fields),   cmocka_unit_test(test_bad_request_line),
        cmocka_unit_test(test_blank_lines_only),  cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_nul_bytes),         cmocka_unit_test(test_value_trimming),
        cmocka_unit_test(test_field_lookup),      cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_unescape),          cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_field_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
