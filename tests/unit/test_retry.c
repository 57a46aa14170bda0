/*
 * test_retry.c - backoff delays and the cancellable sleep (src/engine/retry.h).
 */
#include "core/clock.h"
#include "engine/retry.h"

#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

static void test_delay_bounds(void **state)
{
    for (unsigned k = 0; k < 40; k++) {
        int64_t base = k < 20 ? (int64_t)1000 << k : CW_RETRY_CAP_US;
        int64_t lo = base < CW_RETRY_CAP_US ? base : CW_RETRY_CAP_US;
        int64_t hi = base + 1000000;
        if (hi > CW_RETRY_CAP_US)
            hi = CW_RETRY_CAP_US;
        for (int i = 0; i < 200; i++) {
            int64_t d = cw_retry_delay_us(k);
            if (d < lo || d > hi)
                fail_msg("attempt %u: delay %lld us outside [%lld, %lld]", k, (long long)d,
                         (long long)lo, (long long)hi);
        }
    }
    assert_int_equal(CW_RETRY_CAP_US, 60000000LL);
}

static void test_delay_large_attempts(void **state)
{
    const unsigned ks[] = {16, 17, 25, 26, 30,  31,   32,           33,           53,
                           62, 63, 64, 65, 100, 1000, UINT_MAX / 2, UINT_MAX - 1, UINT_MAX};
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        for (int j = 0; j < 50; j++) {
            int64_t d = cw_retry_delay_us(ks[i]);
            /* 2^16 ms is past the cap already: always exactly the cap. */
            if (d != CW_RETRY_CAP_US)
                fail_msg("attempt %u: delay %lld us, want the cap", ks[i], (long long)d);
        }
    }
}

static void test_delay_has_jitter(void **state)
{
    /* 0..1000 ms of jitter: 50 draws are not all the same. */
    int64_t first = cw_retry_delay_us(3);
    bool differ = false;
    for (int i = 0; i < 50 && !differ; i++)
        differ = cw_retry_delay_us(3) != first;
    assert_true(differ);
}

static void test_sleep_uncancelled(void **state)
{
    struct cw_retry r;
    cw_retry_init(&r);
    int64_t t0 = cw_mono_us();
    assert_false(cw_retry_sleep(&r, 20000));
    assert_true(cw_mono_us() - t0 >= 19000);
    cw_retry_release(&r);
}

struct sleeper {
    struct cw_retry *r;
    bool cancelled;
    int64_t slept_us;
};

static void *sleep_long(void *arg)
{
    struct sleeper *s = arg;
    int64_t t0 = cw_mono_us();
    s->cancelled = cw_retry_sleep(s->r, 30 * 1000000LL);
    s->slept_us = cw_mono_us() - t0;
    return NULL;
}

static void test_cancel_wakes_sleeper(void **state)
{
    struct cw_retry r;
    cw_retry_init(&r);
    struct sleeper s = {.r = &r};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sleep_long, &s), 0);
    usleep(50000);
    cw_retry_cancel(&r);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(s.cancelled);
    /* Woken long before its 30 s were up. */
    assert_true(s.slept_us < 10 * 1000000LL);
    /* Every later sleep returns at once. */
    int64_t t0 = cw_mono_us();
    assert_true(cw_retry_sleep(&r, 30 * 1000000LL));
    assert_true(cw_mono_us() - t0 < 10 * 1000000LL);
    cw_retry_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_bounds),         cmocka_unit_test(test_delay_large_attempts),
        cmocka_unit_test(test_delay_has_jitter),     cmocka_unit_test(test_sleep_uncancelled),
        cmocka_unit_test(test_cancel_wakes_sleeper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
