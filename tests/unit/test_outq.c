/*
 * test_outq.c - a connection's output queue (src/gateway/outq.h): frames
 * described as iovecs come out byte for byte as RFC 6455 frames, and short
 * writes at every possible cut lose, repeat or reorder nothing.
 */
#include "gateway/outq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define IOVS 16

/* Writes the queue out through gather/advance, at most step bytes per "write". */
static size_t drain(struct cw_outq *q, size_t step, unsigned char *out, size_t cap,
                    bool *close_done)
{
    size_t got = 0;
    while (q->len) {
        struct iovec iov[IOVS];
        cw_outq_hdr hdrs[IOVS / 2];
        size_t n = cw_outq_gather(q, iov, IOVS, hdrs, 64);
        assert_true(n >= 2 && n % 2 == 0);
        size_t w = 0;
        for (size_t i = 0; i < n && w < step; i++) {
            size_t take = iov[i].iov_len < step - w ? iov[i].iov_len : step - w;
            assert_true(got + w + take <= cap);
            memcpy(out + got + w, iov[i].iov_base, take);
            w += take;
        }
        got += w;
        cw_outq_advance(q, w, close_done);
    }
    return got;
}

/* The frames as a reference encoder writes them. */
static size_t expected(unsigned char *out, const unsigned char *ops, const size_t *lens, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        out[at++] = ops[i];
        if (lens[i] < 126) {
            out[at++] = (unsigned char)lens[i];
        } else if (lens[i] < 65536) {
            out[at++] = 126;
            out[at++] = (unsigned char)(lens[i] >> 8);
            out[at++] = (unsigned char)lens[i];
        } else {
            out[at++] = 127;
            for (int k = 7; k >= 0; k--)
                out[at++] = (unsigned char)((uint64_t)lens[i] >> (8 * k));
        }
        memset(out + at, 'a' + (int)i, lens[i]);
        at += lens[i];
    }
    return at;
}

static void fill(struct cw_outq *q, const unsigned char *ops, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *text = malloc(lens[i] + 1);
        memset(text, 'a' + (int)i, lens[i]);
        cw_outq_push_text(q, ops[i], text, lens[i]);
        free(text);
    }
}

static void test_every_cut(void **state)
{
    static const unsigned char ops[] = {CW_WS_FIN_TEXT, CW_WS_FIN_PONG, CW_WS_FIN_TEXT,
                                        CW_WS_FIN_TEXT, CW_WS_FIN_CLOSE};
    static const size_t lens[] = {5, 0, 125, 126, 2};
    size_t n = sizeof(lens) / sizeof(lens[0]);
    unsigned char want[1024], got[1024];
    size_t want_len = expected(want, ops, lens, n);
    for (size_t step = 1; step <= want_len; step++) {
        struct cw_outq q = {0};
        fill(&q, ops, lens, n);
        assert_int_equal(q.bytes, want_len);
        bool close_done = false;
        size_t got_len = drain(&q, step, got, sizeof(got), &close_done);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        assert_true(close_done);
        assert_int_equal(q.bytes, 0);
        cw_outq_release(&q);
    }
}

static void test_long_frames(void **state)
{
    static const unsigned char ops[] = {CW_WS_FIN_TEXT, CW_WS_FIN_TEXT};
    static const size_t lens[] = {65535, 70000};
    size_t total = 65535 + 4 + 70000 + 10;
    unsigned char *want = malloc(total), *got = malloc(total);
    assert_int_equal(expected(want, ops, lens, 2), total);
    struct cw_outq q = {0};
    fill(&q, ops, lens, 2);
    assert_int_equal(drain(&q, 4097, got, total, NULL), total);
    assert_memory_equal(got, want, total);
    cw_outq_release(&q);
    free(want);
    free(got);
}

/* Gather stops near max_bytes, but always describes at least one frame, and never splits one. */
static void test_gather_limits(void **state)
{
    struct cw_outq q = {0};
    char big[300];
    memset(big, 'b', sizeof(big));
    for (int i = 0; i < 20; i++)
        cw_outq_push_text(&q, CW_WS_FIN_TEXT, big, sizeof(big));
    struct iovec iov[IOVS];
    cw_outq_hdr hdrs[IOVS / 2];
    assert_int_equal(cw_outq_gather(&q, iov, IOVS, hdrs, 1), 2);
    assert_int_equal(cw_outq_gather(&q, iov, IOVS, hdrs, 1000), 8);
    assert_int_equal(cw_outq_gather(&q, iov, IOVS, hdrs, 1 << 20), IOVS);
    cw_outq_release(&q);
}

/* Growing the ring while it wraps keeps the order. */
static void test_ring_growth(void **state)
{
    struct cw_outq q = {0};
    char c;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 6; i++) {
            c = (char)('a' + i);
            cw_outq_push_text(&q, CW_WS_FIN_TEXT, &c, 1);
        }
        cw_outq_advance(&q, 4 * 3, NULL); /* four frames of 3 bytes each */
    }
    assert_int_equal(q.len, 18 - 12);
    struct iovec iov[IOVS];
    cw_outq_hdr hdrs[IOVS / 2];
    size_t n = cw_outq_gather(&q, iov, IOVS, hdrs, 1 << 20);
    /* Twelve were written, four a round: what is left is exactly the last round's six. */
    assert_int_equal(n, 12);
    assert_int_equal(((char *)iov[1].iov_base)[0], 'a');
    assert_int_equal(((char *)iov[11].iov_base)[0], 'f');
    cw_outq_release(&q);
}

/* A slow reader's queue is dropped, except a frame already half written. */
static void test_drop_unstarted(void **state)
{
    struct cw_outq q = {0};
    cw_outq_push_text(&q, CW_WS_FIN_TEXT, "hello", 5);
    cw_outq_push_text(&q, CW_WS_FIN_TEXT, "world", 5);
    cw_outq_drop_unstarted(&q);
    assert_int_equal(q.len, 0);
    assert_int_equal(q.bytes, 0);
    cw_outq_push_text(&q, CW_WS_FIN_TEXT, "hello", 5);
    cw_outq_push_text(&q, CW_WS_FIN_TEXT, "world", 5);
    cw_outq_advance(&q, 3, NULL);
    cw_outq_drop_unstarted(&q);
    assert_int_equal(q.len, 1);
    assert_int_equal(q.bytes, 4);
    cw_outq_release(&q);
}

/* A burst's ring is given back once it drains; a small one stays for the next frames. */
static void test_ring_shrinks(void **state)
{
    struct cw_outq q = {0};
    for (int i = 0; i < 100; i++)
        cw_outq_push_text(&q, CW_WS_FIN_TEXT, "x", 1);
    assert_true(q.cap >= 100);
    cw_outq_advance(&q, 3 * 100, NULL);
    assert_int_equal(q.len, 0);
    assert_int_equal(q.cap, 0);
    cw_outq_push_text(&q, CW_WS_FIN_TEXT, "y", 1);
    cw_outq_advance(&q, 3, NULL);
    assert_int_equal(q.cap, 8);
    cw_outq_release(&q);
}

/* Queues sharing a total keep it equal to the sum of their bytes through every change. */
static void test_shared_total(void **state)
{
    size_t total = 0;
    struct cw_outq a = {.total = &total}, b = {.total = &total};
    cw_outq_push_text(&a, CW_WS_FIN_TEXT, "hello", 5);
    cw_outq_push_text(&b, CW_WS_FIN_TEXT, "world!", 6);
    cw_outq_push_text(&b, CW_WS_FIN_TEXT, "again", 5);
    assert_int_equal(total, 7 + 8 + 7);
    cw_outq_advance(&b, 3, NULL);
    assert_int_equal(total, a.bytes + b.bytes);
    cw_outq_drop_unstarted(&b);
    assert_int_equal(total, a.bytes + b.bytes);
    cw_outq_release(&a);
    assert_int_equal(total, b.bytes);
    cw_outq_release(&b);
    assert_int_equal(total, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cut),      cmocka_unit_test(test_long_frames),
        cmocka_unit_test(test_gather_limits),  cmocka_unit_test(test_ring_growth),
        cmocka_unit_test(test_drop_unstarted), cmocka_unit_test(test_ring_shrinks),
        cmocka_unit_test(test_shared_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
