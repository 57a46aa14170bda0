/*
 * test_wsframe.c - the RFC 6455 client-frame decoder (src/gateway/wsframe.h).
 *
 * Frames are built here, masked, and fed whole, one byte at a time and cut
 * in two at every offset (in three, for short streams): what comes out is a
 * transcript of messages and control frames, which must not depend on how
 * the bytes were cut. Then every framing rule, each with the close code it
 * ends in, and the boundaries of lengths, control frames and max_frame.
 */
#include "gateway/wsframe.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------ building frames */

enum len_form { LEN_SHORTEST, LEN_16, LEN_64 };

struct frame_spec {
    bool fin;
    unsigned rsv;       /* RSV1..3 as bits 0x4, 0x2, 0x1 */
    unsigned op;        /* 0..15 */
    bool unmasked;      /* leave the MASK bit clear (and send no key) */
    enum len_form form; /* how the length is written */
    uint64_t len_field; /* when nonzero: the length to announce instead of n */
};

/* A growable byte string: the stream under construction. */
struct bytes {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static unsigned key_seed = 1;

/* Appends one frame carrying payload[0..n), masked with a fresh key. */
static void frame_ex(struct bytes *b, const struct frame_spec *f, const void *payload, size_t n)
{
    unsigned char h[14];
    size_t hl = 0;
    uint64_t len = f->len_field ? f->len_field : n;
    h[hl++] = (unsigned char)((f->fin ? 0x80 : 0) | (f->rsv & 7) << 4 | (f->op & 0x0f));
    unsigned char m = f->unmasked ? 0 : 0x80;
    enum len_form form = f->form;
    if (form == LEN_SHORTEST)
        form = len < 126 ? LEN_SHORTEST : len <= 0xffff ? LEN_16 : LEN_64;
    if (form == LEN_SHORTEST) {
        h[hl++] = (unsigned char)(m | len);
    } else if (form == LEN_16) {
        h[hl++] = m | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = m | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)(len >> (8 * i));
    }
    unsigned char key[4] = {0, 0, 0, 0};
    if (!f->unmasked) {
        /* A different key each frame, never all zero, so unmasking shows. */
        for (int i = 0; i < 4; i++) {
            key_seed = key_seed * 1103515245u + 12345u;
            key[i] = (unsigned char)(key_seed >> 16 | 1);
        }
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    put(b, h, hl);
    const unsigned char *src = payload;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(src[i] ^ key[i & 3]);
        put(b, &c, 1);
    }
}

/* The common case: shortest length, masked, no RSV bits. */
static void frame(struct bytes *b, bool fin, unsigned op, const void *payload, size_t n)
{
    struct frame_spec f = {.fin = fin, .op = op};
    frame_ex(b, &f, payload, n);
}

static void frame_s(struct bytes *b, bool fin, unsigned op, const char *s)
{
    frame(b, fin, op, s, strlen(s));
}

/* ------------------------------------------------------ the transcript */

/*
 * What the decoder handed out: "T[...]" / "B[...]" for each whole text or
 * binary message, "P[...]", "O[...]" (pong) and "C[...]" for control
 * frames, and after a stop "t[...]" / "b[...]" for the part of an
 * unfinished message already handed out, then "=rc". Bytes outside
 * printable ASCII are written \xHH.
 */
struct rec {
    char *log;
    size_t log_len, log_cap;
    unsigned char *msg; /* the message being received */
    size_t msg_len, msg_cap;
    bool in_msg, msg_binary;
    unsigned data_calls, control_calls, empty_data_calls;
    /* the input buffer of the current feed: data must point into it */
    const unsigned char *in;
    size_t in_len;
    /* stop after this many callbacks (0: never), returning stop_rc */
    unsigned stop_after, calls;
    int stop_rc;
};

static void logs(struct rec *r, const char *s, size_t n)
{
    if (r->log_len + n + 1 > r->log_cap) {
        r->log_cap = (r->log_len + n + 1) * 2 + 256;
        r->log = realloc(r->log, r->log_cap);
        assert_non_null(r->log);
    }
    memcpy(r->log + r->log_len, s, n);
    r->log_len += n;
    r->log[r->log_len] = '\0';
}

static void log_bytes(struct rec *r, char tag, const unsigned char *p, size_t n)
{
    char t[2] = {tag, '['};
    logs(r, t, 2);
    for (size_t i = 0; i < n; i++) {
        char hex[8];
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '[' && p[i] != ']')
            logs(r, (const char *)p + i, 1);
        else
            logs(r, hex, (size_t)snprintf(hex, sizeof(hex), "\\x%02x", p[i]));
    }
    logs(r, "]", 1);
}

static int stop_here(struct rec *r)
{
    r->calls++;
    return r->stop_after && r->calls >= r->stop_after ? r->stop_rc : 0;
}

static int on_data(void *arg, bool binary, const unsigned char *p, size_t n, bool last)
{
    struct rec *r = arg;
    r->data_calls++;
    if (!n) {
        r->empty_data_calls++;
        if (!last)
            fail_msg("an empty piece that does not end a message");
    } else if (p < r->in || p + n > r->in + r->in_len) {
        fail_msg("data outside the input buffer");
    }
    if (r->in_msg && binary != r->msg_binary)
        fail_msg("a message changed type half way");
    r->in_msg = true;
    r->msg_binary = binary;
    if (r->msg_len + n > r->msg_cap) {
        r->msg_cap = (r->msg_len + n) * 2 + 64;
        r->msg = realloc(r->msg, r->msg_cap);
        assert_non_null(r->msg);
    }
    if (n)
        memcpy(r->msg + r->msg_len, p, n);
    r->msg_len += n;
    if (last) {
        log_bytes(r, binary ? 'B' : 'T', r->msg, r->msg_len);
        r->msg_len = 0;
        r->in_msg = false;
    }
    return stop_here(r);
}

static int on_control(void *arg, unsigned char op, const unsigned char *p, size_t n)
{
    struct rec *r = arg;
    r->control_calls++;
    if (n > 125)
        fail_msg("control frame of %zu bytes", n);
    char tag = op == CW_WS_OP_PING    ? 'P'
               : op == CW_WS_OP_PONG  ? 'O'
               : op == CW_WS_OP_CLOSE ? 'C'
                                      : '?';
    if (tag == '?')
        fail_msg("control callback with opcode %u", op);
    log_bytes(r, tag, p, n);
    return stop_here(r);
}

static void rec_release(struct rec *r)
{
    free(r->log);
    free(r->msg);
}

/* Ends the transcript: the unfinished message if any, then the result. */
static char *rec_finish(struct rec *r, int rc)
{
    if (r->in_msg)
        log_bytes(r, r->msg_binary ? 'b' : 't', r->msg, r->msg_len);
    char tail[32];
    logs(r, tail, (size_t)snprintf(tail, sizeof(tail), "=%d", rc));
    char *log = r->log;
    r->log = NULL;
    return log;
}

struct opts {
    uint64_t max_frame;
    unsigned stop_after;
    int stop_rc;
};

/*
 * Feeds stream[0..n) cut at the given offsets (ascending, within 0..n),
 * each piece in a heap buffer of exactly its size; stops at the first
 * nonzero result, as a caller must. Returns the transcript (to free).
 */
static char *run_cuts(const unsigned char *stream, size_t n, const size_t *cuts, size_t n_cuts,
                      const struct opts *o, struct rec *stats)
{
    struct cw_wsdec d = {.max_frame = o ? o->max_frame : 0};
    struct rec r = {0};
    if (o) {
        r.stop_after = o->stop_after;
        r.stop_rc = o->stop_rc;
    }
    const struct cw_wsdec_sink sink = {on_data, on_control, &r};
    logs(&r, "", 0);
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; i <= n_cuts && !rc; i++) {
        size_t to = i < n_cuts ? cuts[i] : n;
        assert_true(to >= at && to <= n);
        size_t len = to - at;
        unsigned char *piece = malloc(len ? len : 1);
        assert_non_null(piece);
        if (len)
            memcpy(piece, stream + at, len);
        r.in = piece;
        r.in_len = len;
        rc = cw_wsdec_feed(&d, piece, len, &sink);
        free(piece);
        at = to;
    }
    char *log = rec_finish(&r, rc);
    if (stats)
        *stats = r;
    else
        rec_release(&r);
    return log;
}

static char *run_whole(const struct bytes *b, const struct opts *o)
{
    return run_cuts(b->p, b->n, NULL, 0, o, NULL);
}

/*
 * The transcript of b fed whole, which must equal want; then fed one byte
 * at a time, cut in two at every offset and (when short) in three at every
 * pair of offsets, which must all give the same.
 */
static void expect(const struct bytes *b, const struct opts *o, const char *want)
{
    char *whole = run_whole(b, o);
    if (strcmp(whole, want))
        fail_msg("fed whole:\n  got  %s\n  want %s", whole, want);
    free(whole);

    size_t *cuts = malloc((b->n + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t i = 0; i < b->n; i++)
        cuts[i] = i + 1;
    char *bytewise = run_cuts(b->p, b->n, cuts, b->n ? b->n - 1 : 0, o, NULL);
    if (strcmp(bytewise, want))
        fail_msg("fed byte by byte:\n  got  %s\n  want %s", bytewise, want);
    free(bytewise);

    /* Two pieces: every offset for short streams, a sample of them for long. */
    size_t step = b->n <= 4096 ? 1 : b->n / 509;
    for (size_t k = 0; k <= b->n; k += step) {
        char *two = run_cuts(b->p, b->n, &k, 1, o, NULL);
        if (strcmp(two, want))
            fail_msg("cut at %zu of %zu:\n  got  %s\n  want %s", k, b->n, two, want);
        free(two);
    }
    if (b->n <= 160) {
        for (size_t i = 0; i <= b->n; i++)
            for (size_t j = i; j <= b->n; j++) {
                size_t c[2] = {i, j};
                char *three = run_cuts(b->p, b->n, c, 2, o, NULL);
                if (strcmp(three, want))
                    fail_msg("cut at %zu and %zu of %zu:\n  got  %s\n  want %s", i, j, b->n, three,
                             want);
                free(three);
            }
    }
    free(cuts);
}

static void bytes_release(struct bytes *b)
{
    free(b->p);
    *b = (struct bytes){0};
}

/* A fresh stream of one frame, checked against want. */
static void expect_one(const struct frame_spec *f, const void *payload, size_t n,
                       const struct opts *o, const char *want)
{
    struct bytes b = {0};
    frame_ex(&b, f, payload, n);
    expect(&b, o, want);
    bytes_release(&b);
}

/* ------------------------------------------------------- data messages */

static void test_rfc_example(void **state)
{
    /* RFC 6455 5.7: a single-frame masked text message, "Hello". */
    static const unsigned char hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct bytes b = {0};
    put(&b, hello, sizeof(hello));
    expect(&b, NULL, "T[Hello]=0");

    /* Unmasked in place: the input buffer now holds the text. */
    unsigned char copy[sizeof(hello)];
    memcpy(copy, hello, sizeof(hello));
    struct cw_wsdec d = {0};
    struct rec r = {0};
    r.in = copy;
    r.in_len = sizeof(copy);
    const struct cw_wsdec_sink sink = {on_data, on_control, &r};
    assert_int_equal(cw_wsdec_feed(&d, copy, sizeof(copy), &sink), 0);
    assert_memory_equal(copy + 6, "Hello", 5);
    assert_int_equal(r.data_calls, 1);
    rec_release(&r);
    bytes_release(&b);
}

static void test_single_frames(void **state)
{
    struct bytes b = {0};
    frame_s(&b, true, CW_WS_OP_TEXT, "[\"ping\",1]");
    expect(&b, NULL, "T[\\x5b\"ping\",1\\x5d]=0");
    bytes_release(&b);

    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)i;
    frame(&b, true, CW_WS_OP_BINARY, bin, 5);
    expect(&b, NULL, "B[\\x00\\x01\\x02\\x03\\x04]=0");
    bytes_release(&b);

    /* Not checked for UTF-8 here: that is the caller's. */
    frame(&b, true, CW_WS_OP_TEXT, "\xff\xfe", 2);
    expect(&b, NULL, "T[\\xff\\xfe]=0");
    bytes_release(&b);

    /* Feeding nothing does nothing. */
    struct cw_wsdec d = {0};
    struct rec r = {0};
    const struct cw_wsdec_sink sink = {on_data, on_control, &r};
    unsigned char none[1];
    assert_int_equal(cw_wsdec_feed(&d, none, 0, &sink), 0);
    assert_int_equal(r.data_calls + r.control_calls, 0);
    rec_release(&r);
}

static void test_fragmented(void **state)
{
    struct bytes b = {0};
    frame_s(&b, false, CW_WS_OP_TEXT, "Hel");
    frame_s(&b, true, CW_WS_OP_CONT, "lo");
    expect(&b, NULL, "T[Hello]=0");
    bytes_release(&b);

    frame_s(&b, false, CW_WS_OP_BINARY, "ab");
    frame_s(&b, false, CW_WS_OP_CONT, "cd");
    frame_s(&b, false, CW_WS_OP_CONT, "ef");
    frame_s(&b, true, CW_WS_OP_CONT, "gh");
    expect(&b, NULL, "B[abcdefgh]=0");
    bytes_release(&b);

    /* Two fragmented messages back to back, then an unfragmented one. */
    frame_s(&b, false, CW_WS_OP_TEXT, "one ");
    frame_s(&b, true, CW_WS_OP_CONT, "two");
    frame_s(&b, false, CW_WS_OP_BINARY, "three ");
    frame_s(&b, true, CW_WS_OP_CONT, "four");
    frame_s(&b, true, CW_WS_OP_TEXT, "five");
    expect(&b, NULL, "T[one two]B[three four]T[five]=0");
    bytes_release(&b);

    /* A message whose end has not arrived yet: its start is handed out. */
    frame_s(&b, false, CW_WS_OP_TEXT, "so far");
    expect(&b, NULL, "t[so far]=0");
    bytes_release(&b);
}

static void test_several_frames_one_feed(void **state)
{
    struct bytes b = {0};
    frame_s(&b, true, CW_WS_OP_TEXT, "a");
    frame_s(&b, true, CW_WS_OP_BINARY, "bb");
    frame_s(&b, true, CW_WS_OP_PING, "p");
    frame_s(&b, true, CW_WS_OP_TEXT, "ccc");
    frame_s(&b, true, CW_WS_OP_PONG, "o");
    frame_s(&b, true, CW_WS_OP_CLOSE, "\x03\xe8");
    expect(&b, NULL, "T[a]B[bb]P[p]T[ccc]O[o]C[\\x03\\xe8]=0");

    struct rec r;
    char *log = run_cuts(b.p, b.n, NULL, 0, NULL, &r);
    assert_int_equal(r.data_calls, 3);
    assert_int_equal(r.control_calls, 3);
    free(log);
    rec_release(&r);
    bytes_release(&b);
}

static void test_control_between_fragments(void **state)
{
    struct bytes b = {0};
    frame_s(&b, false, CW_WS_OP_TEXT, "Hel");
    frame_s(&b, true, CW_WS_OP_PING, "are you there");
    frame_s(&b, false, CW_WS_OP_CONT, "l");
    frame_s(&b, true, CW_WS_OP_PONG, "");
    frame_s(&b, true, CW_WS_OP_PING, "");
    frame_s(&b, true, CW_WS_OP_CONT, "o");
    frame_s(&b, true, CW_WS_OP_TEXT, "next");
    expect(&b, NULL, "P[are you there]O[]P[]T[Hello]T[next]=0");
    bytes_release(&b);

    /* A close in the middle of a message is handed over too. */
    frame_s(&b, false, CW_WS_OP_BINARY, "x");
    frame_s(&b, true, CW_WS_OP_CLOSE,
            "\x03\xe8"
            "bye");
    expect(&b, NULL, "C[\\x03\\xe8bye]b[x]=0");
    bytes_release(&b);
}

static void test_empty_frames_and_messages(void **state)
{
    struct bytes b = {0};
    /* An empty message: one call, n == 0, last. */
    frame_s(&b, true, CW_WS_OP_TEXT, "");
    expect(&b, NULL, "T[]=0");
    struct rec r;
    free(run_cuts(b.p, b.n, NULL, 0, NULL, &r));
    assert_int_equal(r.data_calls, 1);
    assert_int_equal(r.empty_data_calls, 1);
    rec_release(&r);
    bytes_release(&b);

    frame_s(&b, true, CW_WS_OP_BINARY, "");
    expect(&b, NULL, "B[]=0");
    bytes_release(&b);

    /* An empty message in empty fragments: still exactly one call. */
    frame_s(&b, false, CW_WS_OP_TEXT, "");
    frame_s(&b, false, CW_WS_OP_CONT, "");
    frame_s(&b, true, CW_WS_OP_CONT, "");
    expect(&b, NULL, "T[]=0");
    free(run_cuts(b.p, b.n, NULL, 0, NULL, &r));
    assert_int_equal(r.data_calls, 1);
    rec_release(&r);
    bytes_release(&b);

    /* Empty first and middle fragments, and an empty last one. */
    frame_s(&b, false, CW_WS_OP_BINARY, "");
    frame_s(&b, false, CW_WS_OP_CONT, "ab");
    frame_s(&b, false, CW_WS_OP_CONT, "");
    frame_s(&b, true, CW_WS_OP_CONT, "");
    frame_s(&b, true, CW_WS_OP_TEXT, "");
    frame_s(&b, true, CW_WS_OP_TEXT, "z");
    expect(&b, NULL, "B[ab]T[]T[z]=0");
    free(run_cuts(b.p, b.n, NULL, 0, NULL, &r));
    assert_int_equal(r.data_calls, 4);
    assert_int_equal(r.empty_data_calls, 2);
    rec_release(&r);
    bytes_release(&b);

    /* Empty control frames. */
    frame_s(&b, true, CW_WS_OP_PING, "");
    frame_s(&b, true, CW_WS_OP_PONG, "");
    frame_s(&b, true, CW_WS_OP_CLOSE, "");
    expect(&b, NULL, "P[]O[]C[]=0");
    bytes_release(&b);
}

/* ---------------------------------------------------------- the lengths */

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)('a' + i % 26);
    return p;
}

/* The transcript of one message of n pattern bytes. */
static char *want_msg(char tag, size_t n, int rc)
{
    unsigned char *p = pattern(n);
    struct rec r = {0};
    log_bytes(&r, tag, p, n);
    free(p);
    char tail[16];
    logs(&r, tail, (size_t)snprintf(tail, sizeof(tail), "=%d", rc));
    return r.log;
}

static void expect_len(enum len_form form, size_t n, const struct opts *o, int rc)
{
    struct frame_spec f = {.fin = true, .op = CW_WS_OP_BINARY, .form = form};
    unsigned char *p = pattern(n);
    char *want = rc ? NULL : want_msg('B', n, 0);
    char rcs[16];
    snprintf(rcs, sizeof(rcs), "=%d", rc);
    expect_one(&f, p, n, o, rc ? rcs : want);
    free(want);
    free(p);
}

static void test_length_forms(void **state)
{
    /* 7-bit: up to 125. */
    expect_len(LEN_SHORTEST, 1, NULL, 0);
    expect_len(LEN_SHORTEST, 125, NULL, 0);
    /* 16-bit: from 126 up to 65535. */
    expect_len(LEN_SHORTEST, 126, NULL, 0);
    expect_len(LEN_SHORTEST, 127, NULL, 0);
    expect_len(LEN_SHORTEST, 300, NULL, 0);
    expect_len(LEN_SHORTEST, 65535, NULL, 0);
    /* 64-bit: from 65536. */
    expect_len(LEN_SHORTEST, 65536, NULL, 0);
    expect_len(LEN_SHORTEST, 70000, NULL, 0);
    /*
     * Longer forms than needed are accepted: RFC 6455 5.2 requires the
     * sender to use the shortest, but does not ask the receiver to fail.
     */
    expect_len(LEN_16, 0, NULL, 0);
    expect_len(LEN_16, 5, NULL, 0);
    expect_len(LEN_64, 0, NULL, 0);
    expect_len(LEN_64, 5, NULL, 0);
    expect_len(LEN_64, 300, NULL, 0);
}

static void test_64bit_top_bit(void **state)
{
    struct frame_spec f = {.fin = true, .op = CW_WS_OP_BINARY, .form = LEN_64};
    /* The most significant bit must be 0 (5.2): 1002, before any payload. */
    f.len_field = UINT64_C(0x8000000000000000);
    expect_one(&f, NULL, 0, NULL, "=1002");
    f.len_field = UINT64_MAX;
    expect_one(&f, NULL, 0, NULL, "=1002");
    f.op = CW_WS_OP_TEXT;
    f.fin = false;
    expect_one(&f, NULL, 0, NULL, "=1002");
    /* Even with max_frame set, the top bit is a protocol error, not 1009. */
    struct opts o = {.max_frame = 1000};
    expect_one(&f, NULL, 0, &o, "=1002");
    /* Just below it: a legal header, waiting for its payload. */
    f.len_field = UINT64_C(0x7fffffffffffffff);
    expect_one(&f, "abc", 3, NULL, "t[abc]=0");
    expect_one(&f, "abc", 3, &o, "=1009");
}

/* ------------------------------------------------------- control frames */

static void test_control_length(void **state)
{
    unsigned char *p = pattern(126);
    struct frame_spec f = {.fin = true, .op = CW_WS_OP_PING};
    char *want = want_msg('P', 125, 0);
    expect_one(&f, p, 125, NULL, want);
    free(want);
    /*
     * A control frame's length must fit the 7-bit field (RFC 6455 5.5), and
     * the shortest form is the only valid one (5.2): a longer form is refused
     * from its first two bytes.
     */
    f.form = LEN_16;
    expect_one(&f, p, 125, NULL, "=1002");
    f.form = LEN_64;
    expect_one(&f, p, 3, NULL, "=1002");
    /* 126: 1002, as soon as the header is in (no payload needed). */
    f.form = LEN_SHORTEST;
    for (unsigned op = CW_WS_OP_CLOSE; op <= CW_WS_OP_PONG; op++) {
        f.op = op;
        expect_one(&f, p, 126, NULL, "=1002");
        f.len_field = 126;
        expect_one(&f, NULL, 0, NULL, "=1002");
        f.len_field = 65536;
        expect_one(&f, NULL, 0, NULL, "=1002");
        f.len_field = 0;
    }
    /* Control frames are not subject to max_frame. */
    struct opts o = {.max_frame = 10};
    f.op = CW_WS_OP_PONG;
    want = want_msg('O', 125, 0);
    expect_one(&f, p, 125, &o, want);
    free(want);
    free(p);
}

static void test_control_fragmented(void **state)
{
    for (unsigned op = CW_WS_OP_CLOSE; op <= CW_WS_OP_PONG; op++) {
        struct frame_spec f = {.fin = false, .op = op};
        expect_one(&f, "x", 1, NULL, "=1002");
        expect_one(&f, NULL, 0, NULL, "=1002");
    }
    /* Also inside a fragmented message. */
    struct bytes b = {0};
    frame_s(&b, false, CW_WS_OP_TEXT, "a");
    frame_s(&b, false, CW_WS_OP_PING, "p");
    frame_s(&b, true, CW_WS_OP_CONT, "b");
    expect(&b, NULL, "t[a]=1002");
    bytes_release(&b);
}

/* -------------------------------------------------------- framing rules */

static int ignore_data(void *arg, bool binary, const unsigned char *p, size_t n, bool last)
{
    return 0;
}

static int ignore_control(void *arg, unsigned char op, const unsigned char *p, size_t n)
{
    return 0;
}

/* After a framing error the stream is broken: later bytes are not read, the error is repeated. */
static void test_error_sticks(void **state)
{
    struct cw_wsdec d = {0};
    const struct cw_wsdec_sink sink = {ignore_data, ignore_control, NULL};
    unsigned char bad[] = {0x89, 0xfe, 0, 200, 1, 2, 3, 4}; /* a ping announcing 200 bytes */
    assert_int_equal(cw_wsdec_feed(&d, bad, sizeof(bad), &sink), 1002);
    unsigned char more[300];
    memset(more, 'x', sizeof(more));
    assert_int_equal(cw_wsdec_feed(&d, more, sizeof(more), &sink), 1002);
}

static void test_unmasked(void **state)
{
    /*
     * Refused from the first two bytes: a peer that sends an unmasked frame
     * and waits gets its 1002 without sending anything more.
     */
    static const unsigned ops[] = {CW_WS_OP_TEXT, CW_WS_OP_BINARY, CW_WS_OP_CLOSE, CW_WS_OP_PING,
                                   CW_WS_OP_PONG};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct frame_spec f = {.fin = true, .op = ops[i], .unmasked = true};
        expect_one(&f, "hello", 5, NULL, "=1002");
        struct bytes b = {0};
        frame_ex(&b, &f, NULL, 0);
        frame_s(&b, true, CW_WS_OP_TEXT, "next");
        expect(&b, NULL, "=1002");
        bytes_release(&b);
        struct bytes two = {0};
        frame_ex(&two, &f, NULL, 0);
        assert_int_equal(two.n, 2);
        expect(&two, NULL, "=1002");
        bytes_release(&two);
    }
    /* After a good frame, an unmasked continuation. */
    struct bytes b = {0};
    frame_s(&b, false, CW_WS_OP_TEXT, "ok");
    struct frame_spec f = {.fin = true, .op = CW_WS_OP_CONT, .unmasked = true};
    frame_ex(&b, &f, "nope!", 5);
    expect(&b, NULL, "t[ok]=1002");
    bytes_release(&b);
}

static void test_rsv_bits(void **state)
{
    for (unsigned rsv = 1; rsv <= 7; rsv++) {
        struct frame_spec f = {.fin = true, .rsv = rsv, .op = CW_WS_OP_TEXT};
        expect_one(&f, "x", 1, NULL, "=1002");
        f.op = CW_WS_OP_PING;
        expect_one(&f, "", 0, NULL, "=1002");
    }
    /* After good frames, with what came before handed out. */
    struct bytes b = {0};
    frame_s(&b, true, CW_WS_OP_TEXT, "fine");
    struct frame_spec f = {.fin = true, .rsv = 4, .op = CW_WS_OP_TEXT};
    frame_ex(&b, &f, "deflated", 8);
    frame_s(&b, true, CW_WS_OP_TEXT, "never seen");
    expect(&b, NULL, "T[fine]=1002");
    bytes_release(&b);
}

static void test_reserved_opcodes(void **state)
{
    static const unsigned reserved[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        struct frame_spec f = {.fin = true, .op = reserved[i]};
        expect_one(&f, "x", 1, NULL, "=1002");
        expect_one(&f, NULL, 0, NULL, "=1002");
        f.fin = false;
        expect_one(&f, NULL, 0, NULL, "=1002");
    }
    /* Inside a fragmented message too. */
    struct bytes b = {0};
    frame_s(&b, false, CW_WS_OP_BINARY, "a");
    frame_s(&b, true, 3, "b");
    expect(&b, NULL, "b[a]=1002");
    bytes_release(&b);
}

static void test_continuation_rules(void **state)
{
    struct bytes b = {0};
    /* A continuation with no message open. */
    frame_s(&b, true, CW_WS_OP_CONT, "x");
    expect(&b, NULL, "=1002");
    bytes_release(&b);
    frame_s(&b, false, CW_WS_OP_CONT, "");
    expect(&b, NULL, "=1002");
    bytes_release(&b);
    /* ...or after the message it belonged to has ended. */
    frame_s(&b, false, CW_WS_OP_TEXT, "a");
    frame_s(&b, true, CW_WS_OP_CONT, "b");
    frame_s(&b, true, CW_WS_OP_CONT, "c");
    expect(&b, NULL, "T[ab]=1002");
    bytes_release(&b);
    frame_s(&b, true, CW_WS_OP_TEXT, "whole");
    frame_s(&b, true, CW_WS_OP_CONT, "more");
    expect(&b, NULL, "T[whole]=1002");
    bytes_release(&b);
    /* ...or after a control frame. */
    frame_s(&b, true, CW_WS_OP_PING, "");
    frame_s(&b, true, CW_WS_OP_CONT, "");
    expect(&b, NULL, "P[]=1002");
    bytes_release(&b);

    /* A new data frame inside a fragmented message, fin or not, either type. */
    for (unsigned first = CW_WS_OP_TEXT; first <= CW_WS_OP_BINARY; first++)
        for (unsigned second = CW_WS_OP_TEXT; second <= CW_WS_OP_BINARY; second++)
            for (int fin = 0; fin <= 1; fin++) {
                frame_s(&b, false, first, "1");
                frame_s(&b, fin, second, "2");
                expect(&b, NULL, first == CW_WS_OP_TEXT ? "t[1]=1002" : "b[1]=1002");
                bytes_release(&b);
            }
    /* Also after continuations and controls. */
    frame_s(&b, false, CW_WS_OP_TEXT, "1");
    frame_s(&b, false, CW_WS_OP_CONT, "2");
    frame_s(&b, true, CW_WS_OP_PONG, "");
    frame_s(&b, true, CW_WS_OP_TEXT, "3");
    expect(&b, NULL, "O[]t[12]=1002");
    bytes_release(&b);
}

static void test_max_frame(void **state)
{
    struct opts o = {.max_frame = 100};
    unsigned char *p = pattern(200);
    struct frame_spec f = {.fin = true, .op = CW_WS_OP_TEXT};
    char *want = want_msg('T', 100, 0);
    expect_one(&f, p, 100, &o, want);
    free(want);
    expect_one(&f, p, 101, &o, "=1009");
    /* Found from the header alone. */
    expect_one(&f, NULL, 0, &(struct opts){.max_frame = 100}, "T[]=0");
    f.len_field = 101;
    expect_one(&f, NULL, 0, &o, "=1009");
    f.len_field = 0;
    /* Per frame, not per message: three frames of 100 make 300. */
    struct bytes b = {0};
    frame(&b, false, CW_WS_OP_BINARY, p, 100);
    frame(&b, false, CW_WS_OP_CONT, p + 100, 100);
    frame(&b, true, CW_WS_OP_CONT, p, 100);
    struct rec r;
    char *log = run_cuts(b.p, b.n, NULL, 0, &o, &r);
    assert_int_equal(r.data_calls, 3);
    assert_true(strncmp(log, "B[", 2) == 0);
    assert_true(strcmp(log + strlen(log) - 2, "=0") == 0);
    free(log);
    rec_release(&r);
    bytes_release(&b);
    /* A continuation past the limit. */
    frame(&b, false, CW_WS_OP_BINARY, p, 100);
    frame(&b, true, CW_WS_OP_CONT, p, 101);
    free(run_cuts(b.p, b.n, NULL, 0, &o, &r));
    assert_int_equal(r.data_calls, 1);
    rec_release(&r);
    log = run_whole(&b, &o);
    assert_true(strcmp(log + strlen(log) - 5, "=1009") == 0);
    free(log);
    bytes_release(&b);
    /* max_frame 1: one byte passes, two do not; 0 is no limit. */
    o.max_frame = 1;
    expect_one(&f, "a", 1, &o, "T[a]=0");
    expect_one(&f, "ab", 2, &o, "=1009");
    o.max_frame = 0;
    want = want_msg('T', 200, 0);
    expect_one(&f, p, 200, &o, want);
    free(want);
    /* The boundary in the 16- and 64-bit forms. */
    unsigned char *big = pattern(65537);
    f.op = CW_WS_OP_BINARY;
    o.max_frame = 65536;
    want = want_msg('B', 65536, 0);
    expect_one(&f, big, 65536, &o, want);
    free(want);
    expect_one(&f, big, 65537, &o, "=1009");
    o.max_frame = 126;
    want = want_msg('B', 126, 0);
    expect_one(&f, big, 126, &o, want);
    free(want);
    expect_one(&f, big, 127, &o, "=1009");
    free(big);
    free(p);
}

/* ------------------------------------------------- callbacks that stop */

static void test_callback_stops(void **state)
{
    struct bytes b = {0};
    frame_s(&b, true, CW_WS_OP_PING, "1");
    frame_s(&b, true, CW_WS_OP_PING, "2");
    frame_s(&b, true, CW_WS_OP_PING, "3");
    /* The second call returns 7: feed returns 7, the third is never seen. */
    struct opts o = {.stop_after = 2, .stop_rc = 7};
    expect(&b, &o, "P[1]P[2]=7");
    o.stop_rc = -1;
    expect(&b, &o, "P[1]P[2]=-1");
    bytes_release(&b);

    /* A data callback stopping: later frames of the same feed are left. */
    frame_s(&b, true, CW_WS_OP_TEXT, "first");
    frame_s(&b, true, CW_WS_OP_CLOSE, "");
    o = (struct opts){.stop_after = 1, .stop_rc = 42};
    char *log = run_whole(&b, &o);
    assert_string_equal(log, "T[first]=42");
    free(log);
    bytes_release(&b);

    /* Stopping at the end of a fragmented message. */
    frame_s(&b, false, CW_WS_OP_TEXT, "a");
    frame_s(&b, true, CW_WS_OP_CONT, "b");
    frame_s(&b, true, CW_WS_OP_TEXT, "c");
    o = (struct opts){.stop_after = 2, .stop_rc = 3};
    log = run_whole(&b, &o);
    assert_string_equal(log, "T[ab]=3");
    free(log);
    bytes_release(&b);

    /* An empty message's single call can stop too. */
    frame_s(&b, true, CW_WS_OP_BINARY, "");
    frame_s(&b, true, CW_WS_OP_BINARY, "x");
    o = (struct opts){.stop_after = 1, .stop_rc = 9};
    expect(&b, &o, "B[]=9");
    bytes_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_single_frames),
        cmocka_unit_test(test_fragmented),
        cmocka_unit_test(test_several_frames_one_feed),
        cmocka_unit_test(test_control_between_fragments),
        cmocka_unit_test(test_empty_frames_and_messages),
        cmocka_unit_test(test_length_forms),
        cmocka_unit_test(test_64bit_top_bit),
        cmocka_unit_test(test_control_length),
        cmocka_unit_test(test_control_fragmented),
        cmocka_unit_test(test_unmasked),
        cmocka_unit_test(test_error_sticks),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_continuation_rules),
        cmocka_unit_test(test_max_frame),
        cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
