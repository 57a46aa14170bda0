/*
 * test_bench_floor.c - the group commit floor of calderwood-bench's fsync
 * probe (tools/bench/floor.h, header-only): which commit completes which
 * arrival, the latencies that follow for steady commits, the weight a long
 * stall gets, and the model switched off.
 */
#include "../../tools/bench/floor.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define US INT64_C(1000)
#define MS INT64_C(1000000)
#define T0 (INT64_C(1000) * MS) /* an arbitrary clock reading */

static struct cw_hist *new_hist(void)
{
    struct cw_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    cw_hist_init(h);
    return h;
}

static void test_steady_commits(void **state)
{
    /* Commits of exactly 1 ms back to back, arrivals at 10,000/s: an arrival
     * during commit i waits for its rest, then for commit i+1, so every
     * latency is in (1 ms, 2 ms], spread evenly, 10 per commit. */
    struct cw_hist *h = new_hist();
    struct cw_floor f;
    cw_floor_init(&f, h, T0, 10000);
    for (int i = 0; i <= 100; i++)
        cw_floor_commit_end(&f, T0 + i * MS);
    /* ends T0 .. T0+100 ms: the arrivals of [T0, T0+99 ms) are complete */
    assert_int_equal(h->total, 990);
    assert_true(h->min > 1 * MS);
    assert_true(h->max <= 2 * MS);
    int64_t p50 = cw_hist_percentile(h, 50);
    assert_true(p50 >= 1490 * US && p50 <= 1520 * US);
    free(h);
}

static void test_first_arrival_waits_for_the_next_commit(void **state)
{
    /* One arrival at T0 (rate 1/s), commits ending at T0 + 1, + 3, + 6 ms:
     * it came during the commit that ended at +1 ms, so it is durable at
     * +3 ms; nothing is known before the third end. */
    struct cw_hist *h = new_hist();
    struct cw_floor f;
    cw_floor_init(&f, h, T0, 1);
    cw_floor_commit_end(&f, T0 - 2 * MS);
    cw_floor_commit_end(&f, T0 + 1 * MS);
    assert_int_equal(h->total, 0);
    cw_floor_commit_end(&f, T0 + 3 * MS);
    assert_int_equal(h->total, 1);
    assert_int_equal(h->max, 3 * MS);
    cw_floor_commit_end(&f, T0 + 6 * MS);
    assert_int_equal(h->total, 1);
    free(h);
}

static void test_stall_weighs_by_its_length(void **state)
{
    /* 99 quick commits of 0.1 ms, then one of 10 ms, over and over: the
     * commits' own p99 is 0.1 ms, but half of the time (and so half of the
     * arrivals) falls in the stalls, so the floor's p99 is near 10 ms. */
    struct cw_hist *h = new_hist(), *commits = new_hist();
    struct cw_floor f;
    cw_floor_init(&f, h, T0, 100000);
    int64_t t = T0;
    cw_floor_commit_end(&f, t);
    for (int cycle = 0; cycle < 20; cycle++)
        for (int i = 0; i < 100; i++) {
            int64_t d = i == 99 ? 10 * MS : 100 * US;
            t += d;
            cw_hist_record(commits, d);
            cw_floor_commit_end(&f, t);
        }
    assert_true(cw_hist_percentile(commits, 99) <= 101 * US);
    assert_true(cw_hist_percentile(h, 99) >= 9 * MS);
    int64_t p50 = cw_hist_percentile(h, 50);
    assert_true(p50 >= 150 * US && p50 <= 10 * MS);
    free(commits);
    free(h);
}

static void test_no_rate_no_model(void **state)
{
    struct cw_hist *h = new_hist();
    struct cw_floor f;
    cw_floor_init(&f, h, T0, 0);
    for (int i = 0; i < 10; i++)
        cw_floor_commit_end(&f, T0 + i * MS);
    assert_int_equal(h->total, 0);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_commits),
        cmocka_unit_test(test_first_arrival_waits_for_the_next_commit),
        cmocka_unit_test(test_stall_weighs_by_its_length),
        cmocka_unit_test(test_no_rate_no_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
