/*
 * test_ratelimit.c - token buckets per key (src/auth/ratelimit.h), on a
 * clock the test moves by hand.
 */
#include "auth/ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SEC 1000000LL
#define T0  (1764420000LL * SEC) /* an ordinary epoch time, far from zero */

static void test_bad_parameters(void **state)
{
    assert_null(cw_ratelimit_new(0, 5, 10));
    assert_null(cw_ratelimit_new(-1, 5, 10));
    assert_null(cw_ratelimit_new(1, 0.5, 10));
    assert_null(cw_ratelimit_new(1, 5, 0));
    assert_null(cw_ratelimit_new(1.0 / 0.0, 5, 10));
    assert_null(cw_ratelimit_new(0.0 / 0.0, 5, 10));
    assert_null(cw_ratelimit_new(1, 1.0 / 0.0, 10));
    assert_null(cw_ratelimit_new(1, 5, (size_t)1 << 30));
    cw_ratelimit_free(NULL);
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 1, 1);
    assert_non_null(rl);
    cw_ratelimit_free(rl);
}

static void test_burst_then_refusal(void **state)
{
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 3, 100); /* 3 at once, then 1 a second */
    int64_t retry = -1;
    for (int i = 0; i < 3; i++) {
        assert_true(cw_ratelimit_allow(rl, "10.0.0.1", T0, &retry));
        assert_int_equal(retry, 0);
    }
    assert_false(cw_ratelimit_allow(rl, "10.0.0.1", T0, &retry));
    assert_int_equal(retry, SEC);
    /* A refusal takes nothing: asking again changes nothing. */
    assert_false(cw_ratelimit_allow(rl, "10.0.0.1", T0, &retry));
    assert_int_equal(retry, SEC);
    /* The wait shrinks as time passes... */
    assert_false(cw_ratelimit_allow(rl, "10.0.0.1", T0 + SEC / 4, &retry));
    assert_int_equal(retry, 3 * SEC / 4);
    assert_false(cw_ratelimit_allow(rl, "10.0.0.1", T0 + SEC - 1, &retry));
    assert_int_equal(retry, 1);
    /* ...and at retry_after the attempt is allowed, exactly. */
    assert_true(cw_ratelimit_allow(rl, "10.0.0.1", T0 + SEC, &retry));
    assert_int_equal(retry, 0);
    assert_false(cw_ratelimit_allow(rl, "10.0.0.1", T0 + SEC, &retry));
    assert_int_equal(retry, SEC);
    /* retry_after may be NULL. */
    assert_false(cw_ratelimit_allow(rl, "10.0.0.1", T0 + SEC, NULL));
    assert_true(cw_ratelimit_allow(rl, "10.0.0.2", T0 + SEC, NULL));
    cw_ratelimit_free(rl);
}

static void test_refill(void **state)
{
    struct cw_ratelimit *rl = cw_ratelimit_new(2, 5, 100); /* 2 a second, burst 5 */
    int64_t retry;
    for (int i = 0; i < 5; i++)
        assert_true(cw_ratelimit_allow(rl, "k", T0, &retry));
    assert_false(cw_ratelimit_allow(rl, "k", T0, &retry));
    assert_int_equal(retry, SEC / 2);
    /* 1.5 s later: 3 tokens. */
    for (int i = 0; i < 3; i++)
        assert_true(cw_ratelimit_allow(rl, "k", T0 + 3 * SEC / 2, &retry));
    assert_false(cw_ratelimit_allow(rl, "k", T0 + 3 * SEC / 2, &retry));
    /* A long quiet time refills to the burst, no further. */
    for (int i = 0; i < 5; i++)
        assert_true(cw_ratelimit_allow(rl, "k", T0 + 3600 * SEC, &retry));
    assert_false(cw_ratelimit_allow(rl, "k", T0 + 3600 * SEC, &retry));
    /* A steady 2 a second is always allowed. */
    for (int i = 1; i <= 100; i++)
        assert_true(cw_ratelimit_allow(rl, "k", T0 + 3600 * SEC + i * SEC / 2, &retry));
    cw_ratelimit_free(rl);
}

static void test_slow_rate(void **state)
{
    /* Five attempts, then one every ten minutes. */
    struct cw_ratelimit *rl = cw_ratelimit_new(1.0 / 600, 5, 10);
    int64_t retry;
    for (int i = 0; i < 5; i++)
        assert_true(cw_ratelimit_allow(rl, "k", T0 + i, &retry));
    assert_false(cw_ratelimit_allow(rl, "k", T0 + 5, &retry));
    /* About ten minutes, less the few microseconds of refill since T0. */
    assert_in_range(retry, 600 * SEC - 10, 600 * SEC);
    assert_false(cw_ratelimit_allow(rl, "k", T0 + 5 + retry - 1, NULL));
    assert_true(cw_ratelimit_allow(rl, "k", T0 + 5 + retry, NULL));
    cw_ratelimit_free(rl);
}

/* retry_after is exact: one microsecond less is refused, that long is allowed. */
static void test_retry_after_exact(void **state)
{
    const double rates[] = {1.0 / 600, 0.3, 1, 3, 7.7, 1000, 123456.7};
    srand(7);
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        struct cw_ratelimit *rl = cw_ratelimit_new(rates[r], 2, 16);
        for (int i = 0; i < 200; i++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", i);
            int64_t now = T0 + rand(), retry;
            while (cw_ratelimit_allow(rl, key, now, &retry))
                now += rand() % 1000;
            assert_true(retry >= 1);
            if (retry > 1)
                assert_false(cw_ratelimit_allow(rl, key, now + retry - 1, NULL));
            if (!cw_ratelimit_allow(rl, key, now + retry, NULL))
                fail_msg("rate %g: refused after waiting retry_after %lld", rates[r],
                         (long long)retry);
        }
        cw_ratelimit_free(rl);
    }
}

static void test_independent_keys(void **state)
{
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 2, 100);
    assert_true(cw_ratelimit_allow(rl, "a", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "a", T0, NULL));
    assert_false(cw_ratelimit_allow(rl, "a", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "b", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "ab", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "b", T0, NULL));
    assert_false(cw_ratelimit_allow(rl, "b", T0, NULL));
    assert_false(cw_ratelimit_allow(rl, "a", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "2001:db8::1", T0, NULL));
    assert_int_equal(cw_ratelimit_count(rl), 5);
    cw_ratelimit_free(rl);
}

static void test_long_keys(void **state)
{
    /* Keys are cut to 64 bytes: two that differ after that share a bucket. */
    char a[100], b[100];
    memset(a, 'x', 99);
    a[99] = '\0';
    memcpy(b, a, sizeof(b));
    b[80] = 'y';
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 1, 10);
    assert_true(cw_ratelimit_allow(rl, a, T0, NULL));
    assert_false(cw_ratelimit_allow(rl, b, T0, NULL));
    a[64] = '\0';
    assert_false(cw_ratelimit_allow(rl, a, T0, NULL));
    a[63] = '\0';
    assert_true(cw_ratelimit_allow(rl, a, T0, NULL));
    cw_ratelimit_free(rl);
}

static void test_clock_backwards(void **state)
{
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 1, 10);
    int64_t retry;
    assert_true(cw_ratelimit_allow(rl, "k", T0, &retry));
    /* An earlier time counts as no time: still refused, and no negative wait. */
    assert_false(cw_ratelimit_allow(rl, "k", T0 - 100 * SEC, &retry));
    assert_int_equal(retry, SEC);
    assert_true(cw_ratelimit_allow(rl, "k", T0 + SEC, &retry));
    cw_ratelimit_free(rl);
}

static void test_bounded_memory(void **state)
{
    enum { MAX = 100, N = 200000 };
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 3, MAX);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        /* A key not (or no longer) remembered starts with a full bucket. */
        assert_true(cw_ratelimit_allow(rl, key, T0 + i, NULL));
        assert_true(cw_ratelimit_count(rl) <= MAX);
    }
    assert_int_equal(cw_ratelimit_count(rl), MAX);
    /* The most recent keys are still there with one token fewer (of 3). */
    for (int i = N - 10; i < N; i++) {
        snprintf(key, sizeof(key), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_true(cw_ratelimit_allow(rl, key, T0 + N, NULL));
        assert_true(cw_ratelimit_allow(rl, key, T0 + N, NULL));
        assert_false(cw_ratelimit_allow(rl, key, T0 + N, NULL));
    }
    cw_ratelimit_free(rl);
}

/*
 * The eviction choice: a flood of fresh addresses, each trying once, does
 * not push out an address that is being refused, because their buckets are
 * full again long before its bucket is. (Least recently used would forget
 * it, and hand it a new burst.)
 */
static void test_eviction_keeps_limited_key(void **state)
{
    enum { MAX = 50 };
    struct cw_ratelimit *rl = cw_ratelimit_new(1.0 / 60, 3, MAX); /* 3, then 1 a minute */
    for (int i = 0; i < 3; i++)
        assert_true(cw_ratelimit_allow(rl, "attacker", T0, NULL));
    assert_false(cw_ratelimit_allow(rl, "attacker", T0, NULL));
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        assert_true(cw_ratelimit_allow(rl, key, T0 + i * 1000, NULL)); /* over 10 s */
    }
    int64_t retry;
    assert_false(cw_ratelimit_allow(rl, "attacker", T0 + 10 * SEC, &retry));
    assert_int_equal(retry, 50 * SEC);
    cw_ratelimit_free(rl);
}

/* Full buckets go first, the longest-full first; then the one nearest full. */
static void test_eviction_order(void **state)
{
    struct cw_ratelimit *rl = cw_ratelimit_new(1, 2, 3); /* burst 2, 1 a second */
    /* a: drained at 0, full at 2 s. b: one used at 0, full at 1 s. c: drained at 1 s, full at 3 s.
     */
    assert_true(cw_ratelimit_allow(rl, "a", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "a", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "b", T0, NULL));
    assert_true(cw_ratelimit_allow(rl, "c", T0 + SEC, NULL));
    assert_true(cw_ratelimit_allow(rl, "c", T0 + SEC, NULL));
    /* d arrives at 1.5 s: b (full since 1 s) goes. */
    assert_true(cw_ratelimit_allow(rl, "d", T0 + 3 * SEC / 2, NULL)); /* full at 2.5 s */
    /* e arrives at 1.5 s: nothing is full; a (full at 2 s) is nearest, and goes. */
    assert_true(cw_ratelimit_allow(rl, "e", T0 + 3 * SEC / 2, NULL)); /* full at 2.5 s */
    assert_int_equal(cw_ratelimit_count(rl), 3);
    /* c is still remembered: drained, half a token back. */
    int64_t retry;
    assert_false(cw_ratelimit_allow(rl, "c", T0 + 3 * SEC / 2, &retry));
    assert_int_equal(retry, SEC / 2);
    /* a was forgotten: a full bucket again. Taking it evicts d or e (both full at 2.5 s). */
    assert_true(cw_ratelimit_allow(rl, "a", T0 + 3 * SEC / 2, NULL));
    assert_true(cw_ratelimit_allow(rl, "a", T0 + 3 * SEC / 2, NULL));
    assert_false(cw_ratelimit_allow(rl, "c", T0 + 3 * SEC / 2, NULL));
    cw_ratelimit_free(rl);
}

/*
 * Random traffic against an unbounded reference: forgetting a key can only
 * give it more tokens, so whatever the reference allows, the limiter allows;
 * and while every key fits, they agree exactly.
 */
struct ref {
    double tokens;
    int64_t last;
    bool seen;
};

static bool ref_allow(struct ref *r, double rate, double burst, int64_t now)
{
    if (!r->seen) {
        r->seen = true;
        r->tokens = burst;
        r->last = now;
    }
    if (now > r->last) {
        r->tokens = r->tokens + (double)(now - r->last) * rate / 1e6;
        if (r->tokens > burst)
            r->tokens = burst;
        r->last = now;
    }
    if (r->tokens >= 1 - 1e-9) {
        r->tokens -= 1;
        return true;
    }
    return false;
}

static void run_random(int max_keys, int pool, unsigned seed, bool must_agree)
{
    const double rate = 3, burst = 4;
    struct cw_ratelimit *rl = cw_ratelimit_new(rate, burst, (size_t)max_keys);
    struct ref *refs = calloc((size_t)pool, sizeof(*refs));
    assert_non_null(refs);
    srand(seed);
    int64_t now = T0;
    int differ = 0;
    for (int i = 0; i < 200000; i++) {
        now += rand() % 20000;
        int k = rand() % pool;
        char key[32];
        snprintf(key, sizeof(key), "key-%d", k);
        bool want = ref_allow(&refs[k], rate, burst, now);
        bool got = cw_ratelimit_allow(rl, key, now, NULL);
        if (want && !got)
            fail_msg("refused %s at step %d although the reference allows it", key, i);
        differ += want != got;
        assert_true(cw_ratelimit_count(rl) <= (size_t)max_keys);
    }
    if (must_agree)
        assert_int_equal(differ, 0);
    free(refs);
    cw_ratelimit_free(rl);
}

static void test_random_against_reference(void **state)
{
    run_random(64, 64, 1, true);   /* everything fits */
    run_random(64, 300, 2, false); /* eviction under pressure */
    run_random(1, 10, 3, false);   /* the smallest table */
    run_random(1000, 5000, 4, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_slow_rate),
        cmocka_unit_test(test_retry_after_exact),
        cmocka_unit_test(test_independent_keys),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_eviction_keeps_limited_key),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
