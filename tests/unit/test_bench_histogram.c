/*
 * test_bench_histogram.c - the log-linear latency histogram of
 * calderwood-bench (tools/bench/histogram.h, header-only): the relative
 * error bound over 1 us .. 1 h, percentiles of known distributions, merging,
 * clamping, and the HdrHistogram text format.
 */
#include "../../tools/bench/histogram.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define US   INT64_C(1000)
#define MS   INT64_C(1000000)
#define HOUR (INT64_C(3600) * 1000 * MS)

static struct cw_hist *new_hist(void)
{
    struct cw_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    cw_hist_init(h);
    return h;
}

/* |reported - v| / v within 1 % for one recorded value v. */
static void check_one(int64_t v)
{
    struct cw_hist *h = new_hist();
    cw_hist_record(h, v);
    int64_t lo = cw_hist_lowest_equiv(v), hi = cw_hist_highest_equiv(v);
    assert_true(lo <= v && v <= hi);
    assert_true((double)(hi - lo + 1) / (double)v <= 0.01);
    int64_t p = cw_hist_percentile(h, 50);
    assert_true(p >= (double)v * 0.99 && p <= (double)v * 1.01);
    assert_int_equal(cw_hist_percentile(h, 100), v); /* the maximum is exact */
    free(h);
}

static void test_relative_error_whole_range(void **state)
{
    /* log-spaced from 1 us to 1 h, 200 points per decade */
    for (double v = (double)US; v <= (double)HOUR; v *= 1.0116)
        check_one((int64_t)v);
    check_one(US);
    check_one(HOUR);
    /* pseudo-random values */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t v = US + (int64_t)(x % (uint64_t)(HOUR - US));
        int64_t lo = cw_hist_lowest_equiv(v), hi = cw_hist_highest_equiv(v);
        assert_true(lo <= v && v <= hi);
        assert_true((double)(hi - lo + 1) / (double)v <= 0.01);
    }
}

static void test_index_round_trip(void **state)
{
    /* Every index maps to a value that maps back to it, in increasing order. */
    int64_t prev = -1;
    for (int i = 0; i < CW_HIST_LEN; i++) {
        int64_t v = cw_hist_value_at(i);
        assert_int_equal(cw_hist_index(v), i);
        assert_true(v > prev);
        prev = v;
    }
    assert_true(cw_hist_index(CW_HIST_MAX) < CW_HIST_LEN);
    assert_true(CW_HIST_MAX >= HOUR);
    /* Small values are exact. */
    for (int64_t v = 0; v < 256; v++) {
        assert_int_equal(cw_hist_lowest_equiv(v), v);
        assert_int_equal(cw_hist_highest_equiv(v), v);
    }
}

static void assert_within(int64_t got, double want, double rel)
{
    if (!(got >= want * (1 - rel) && got <= want * (1 + rel)))
        fail_msg("got %lld, want %.0f within %.2f%%", (long long)got, want, rel * 100);
}

static void test_uniform_percentiles(void **state)
{
    struct cw_hist *h = new_hist();
    for (int64_t v = 1; v <= 100000; v++)
        cw_hist_record(h, v * US); /* 1 us .. 100 ms, uniform */
    assert_int_equal(h->total, 100000);
    assert_int_equal(h->min, US);
    assert_int_equal(h->max, 100000 * US);
    assert_within(cw_hist_percentile(h, 50), 50000.0 * US, 0.01);
    assert_within(cw_hist_percentile(h, 90), 90000.0 * US, 0.01);
    assert_within(cw_hist_percentile(h, 99), 99000.0 * US, 0.01);
    assert_within(cw_hist_percentile(h, 99.9), 99900.0 * US, 0.01);
    assert_int_equal(cw_hist_percentile(h, 100), 100000 * US);
    assert_within(cw_hist_percentile(h, 0), 1.0 * US, 0.01);
    assert_within((int64_t)cw_hist_mean(h), 50000.5 * US, 0.01);
    /* stddev of a uniform distribution: range / sqrt(12) */
    assert_within((int64_t)cw_hist_stddev(h), 100000.0 * US / 3.4641, 0.01);
    free(h);
}

static void test_bimodal_and_geometric(void **state)
{
    struct cw_hist *h = new_hist();
    cw_hist_record_n(h, 1 * MS, 990);
    cw_hist_record_n(h, 100 * MS, 10);
    assert_within(cw_hist_percentile(h, 50), 1.0 * MS, 0.01);
    assert_within(cw_hist_percentile(h, 99), 1.0 * MS, 0.01);
    assert_within(cw_hist_percentile(h, 99.1), 100.0 * MS, 0.01);
    assert_int_equal(cw_hist_percentile(h, 100), 100 * MS);
    free(h);

    /* 2^k us recorded 2^(20-k) times: the counts halve at each doubling. */
    h = new_hist();
    uint64_t total = 0;
    for (int k = 0; k <= 20; k++) {
        cw_hist_record_n(h, (INT64_C(1) << k) * US, UINT64_C(1) << (20 - k));
        total += UINT64_C(1) << (20 - k);
    }
    assert_int_equal(h->total, total);
    /* Just over half the counts are the 1 us ones. */
    assert_within(cw_hist_percentile(h, 50), 1.0 * US, 0.01);
    assert_within(cw_hist_percentile(h, 75), 2.0 * US, 0.01);
    /* 99.9 % of 2^21 - 1 leaves 2097 above: the counts from 2^10 us up (2047) */
    assert_within(cw_hist_percentile(h, 99.9), 512.0 * US, 0.01);
    free(h);
}

static void test_merge(void **state)
{
    struct cw_hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *empty = new_hist();
    for (int64_t v = 1; v <= 50000; v++) {
        int64_t x = v * 37 % 100000 * US + US, y = (v * 91 % 7919 + 1) * MS;
        cw_hist_record(a, x);
        cw_hist_record(b, y);
        cw_hist_record(all, x);
        cw_hist_record(all, y);
    }
    cw_hist_merge(a, b);
    assert_int_equal(a->total, all->total);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_memory_equal(a->counts, all->counts, sizeof(a->counts));
    static const double ps[] = {0, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        assert_int_equal(cw_hist_percentile(a, ps[i]), cw_hist_percentile(all, ps[i]));
    /* Merging an empty histogram changes nothing, into an empty one copies. */
    cw_hist_merge(a, empty);
    assert_int_equal(a->total, all->total);
    assert_int_equal(a->min, all->min);
    cw_hist_merge(empty, all);
    assert_int_equal(empty->total, all->total);
    assert_int_equal(empty->min, all->min);
    assert_int_equal(empty->max, all->max);
    free(a);
    free(b);
    free(all);
    free(empty);
}

static void test_clamp_and_empty(void **state)
{
    struct cw_hist *h = new_hist();
    assert_int_equal(cw_hist_percentile(h, 99), 0);
    assert_true(cw_hist_mean(h) == 0);
    cw_hist_record(h, -5);
    assert_int_equal(h->min, 0);
    cw_hist_record(h, 10 * HOUR);
    assert_int_equal(h->clamped, 1);
    assert_int_equal(h->max, CW_HIST_MAX);
    assert_int_equal(cw_hist_percentile(h, 100), CW_HIST_MAX);
    assert_int_equal(h->total, 2);
    free(h);
}

static void test_print_format(void **state)
{
    struct cw_hist *h = new_hist();
    for (int64_t v = 1; v <= 10000; v++)
        cw_hist_record(h, v * US);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cw_hist_print(h, f, 1e6, 3);
    fclose(f);
    assert_non_null(strstr(text, "Value     Percentile TotalCount 1/(1-Percentile)"));
    assert_non_null(strstr(text, "#[Max     =       10.000, Total count    =        10000]"));
    /* HdrHistogram's steps: 0, 10, 20 .. 50 %, then 55, 60 .. 75, then 77.5 .. */
    assert_non_null(strstr(text, " 0.100000000000 "));
    assert_non_null(strstr(text, " 0.550000000000 "));
    assert_non_null(strstr(text, " 0.775000000000 "));
    /* Lines are in order of percentile and value; the last one is 100 %. */
    double prev_p = -1, prev_v = -1, v, p, inv;
    unsigned long long n, last_n = 0;
    int lines = 0;
    bool saw_last = false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || strstr(line, "Value"))
            continue;
        int k = sscanf(line, "%lf %lf %llu %lf", &v, &p, &n, &inv);
        assert_true(k == 4 || k == 3);
        assert_true(p >= prev_p && v >= prev_v && n >= last_n);
        if (k == 4)
            assert_true(fabs(inv - 1.0 / (1.0 - p)) <= 0.0051); /* printed with 2 decimals */
        else
            saw_last = p == 1.0 && n == 10000 && v == 10.0;
        prev_p = p;
        prev_v = v;
        last_n = n;
        lines++;
    }
    assert_true(saw_last);
    assert_true(lines > 40); /* five steps per halving of the distance to 100 % */
    free(text);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relative_error_whole_range),
        cmocka_unit_test(test_index_round_trip),
        cmocka_unit_test(test_uniform_percentiles),
        cmocka_unit_test(test_bimodal_and_geometric),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_clamp_and_empty),
        cmocka_unit_test(test_print_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
