/*
 * histogram.h - a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values are integers (calderwood-bench records nanoseconds). Values below
 * 256 are counted exactly; above, every power-of-two range [2^k, 2^(k+1)) is
 * cut into 128 equal sub-buckets, so a value is known to within 1/128 of
 * itself (0.78 %, under the 1 % the benchmark promises). The top of the
 * range is 2^42 - 1 (73 minutes in ns); larger values are clamped to it and
 * counted in `clamped`. The counts take 36 KiB and need no allocation, so a
 * thread can keep several on its stack or in its state and merge them at the
 * end.
 *
 * Header-only (static inline) so that the unit test links against nothing
 * but this file. Not thread-safe: one histogram per thread, merged after.
 *
 * Percentiles are reported as the highest value equivalent to the bucket
 * they fall in (HdrHistogram's convention), and cw_hist_print writes the
 * percentile distribution in HdrHistogram's text format, which its plotting
 * tools (and tools/bench/run-suite.sh's gnuplot scripts) read.
 */
#ifndef CW_BENCH_HISTOGRAM_H
#define CW_BENCH_HISTOGRAM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CW_HIST_SUB_BITS  8                       /* sub-buckets per bucket: 256 */
#define CW_HIST_SUB_COUNT (1 << CW_HIST_SUB_BITS) /* 256 */
#define CW_HIST_HALF      (CW_HIST_SUB_COUNT / 2) /* 128 */
#define CW_HIST_MAX_BITS  42                      /* values < 2^42 */
#define CW_HIST_MAX       ((INT64_C(1) << CW_HIST_MAX_BITS) - 1)
#define CW_HIST_BUCKETS   (CW_HIST_MAX_BITS - CW_HIST_SUB_BITS + 1) /* 35 */
#define CW_HIST_LEN       ((CW_HIST_BUCKETS + 1) * CW_HIST_HALF)    /* 4608 counters */

struct cw_hist {
    uint64_t total;   /* values recorded */
    uint64_t clamped; /* values above CW_HIST_MAX, recorded as CW_HIST_MAX */
    int64_t min, max; /* exact extremes of what was recorded (after clamping) */
    uint64_t counts[CW_HIST_LEN];
};

static inline void cw_hist_init(struct cw_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = INT64_MAX;
    h->max = 0;
}

/* Which power-of-two bucket v falls in (0 for v < 256). */
static inline int cw_hist_bucket(int64_t v)
{
    return (63 - __builtin_clzll((uint64_t)v | (CW_HIST_SUB_COUNT - 1))) - (CW_HIST_SUB_BITS - 1);
}

/* Index of v in counts[]; v must be in [0, CW_HIST_MAX]. */
static inline int cw_hist_index(int64_t v)
{
    int b = cw_hist_bucket(v);
    int sub = (int)(v >> b); /* 0..255 in bucket 0, 128..255 beyond */
    return (b << (CW_HIST_SUB_BITS - 1)) + sub;
}

/* The lowest value counted at index i. */
static inline int64_t cw_hist_value_at(int i)
{
    int b = (i >> (CW_HIST_SUB_BITS - 1)) - 1;
    int64_t sub = (i & (CW_HIST_HALF - 1)) + CW_HIST_HALF;
    if (b < 0) {
        sub -= CW_HIST_HALF;
        b = 0;
    }
    return sub << b;
}

/* Width of the range of values counted at the same index as v. */
static inline int64_t cw_hist_width(int64_t v)
{
    return INT64_C(1) << cw_hist_bucket(v);
}

static inline int64_t cw_hist_lowest_equiv(int64_t v)
{
    return cw_hist_value_at(cw_hist_index(v));
}

static inline int64_t cw_hist_highest_equiv(int64_t v)
{
    return cw_hist_lowest_equiv(v) + cw_hist_width(v) - 1;
}

static inline int64_t cw_hist_median_equiv(int64_t v)
{
    return cw_hist_lowest_equiv(v) + cw_hist_width(v) / 2;
}

static inline void cw_hist_record_n(struct cw_hist *h, int64_t v, uint64_t n)
{
    if (v < 0)
        v = 0;
    if (v > CW_HIST_MAX) {
        v = CW_HIST_MAX;
        h->clamped += n;
    }
    h->counts[cw_hist_index(v)] += n;
    h->total += n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

static inline void cw_hist_record(struct cw_hist *h, int64_t v)
{
    cw_hist_record_n(h, v, 1);
}

/* Adds every count of src to dst. */
static inline void cw_hist_merge(struct cw_hist *dst, const struct cw_hist *src)
{
    for (int i = 0; i < CW_HIST_LEN; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->clamped += src->clamped;
    if (src->total) {
        if (src->min < dst->min)
            dst->min = src->min;
        if (src->max > dst->max)
            dst->max = src->max;
    }
}

/* The value at percentile p (0..100): the highest value equivalent to the
 * smallest recorded value with at least p % of the counts at or below it.
 * 0 for an empty histogram; p >= 100 gives the exact maximum. */
static inline int64_t cw_hist_percentile(const struct cw_hist *h, double p)
{
    if (!h->total)
        return 0;
    if (p >= 100.0)
        return h->max;
    if (p < 0)
        p = 0;
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < CW_HIST_LEN; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            int64_t v = cw_hist_highest_equiv(cw_hist_value_at(i));
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

static inline double cw_hist_mean(const struct cw_hist *h)
{
    if (!h->total)
        return 0;
    double sum = 0;
    for (int i = 0; i < CW_HIST_LEN; i++)
        if (h->counts[i])
            sum += (double)h->counts[i] * (double)cw_hist_median_equiv(cw_hist_value_at(i));
    return sum / (double)h->total;
}

static inline double cw_hist_stddev(const struct cw_hist *h)
{
    if (!h->total)
        return 0;
    double mean = cw_hist_mean(h), sum = 0;
    for (int i = 0; i < CW_HIST_LEN; i++)
        if (h->counts[i]) {
            double d = (double)cw_hist_median_equiv(cw_hist_value_at(i)) - mean;
            sum += (double)h->counts[i] * d * d;
        }
    return sqrt(sum / (double)h->total);
}

/*
 * Writes the percentile distribution in HdrHistogram's text format
 * (outputPercentileDistribution): one line per percentile step, five steps
 * per halving of the distance to 100 %, values divided by `scale` (1e6 for
 * ns -> ms) and printed with `decimals` decimals; then the mean, maximum and
 * bucket footer. Columns: Value, Percentile, TotalCount, 1/(1-Percentile).
 */
static inline void cw_hist_print(const struct cw_hist *h, FILE *f, double scale, int decimals)
{
    const int ticks_per_half = 5;
    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if (h->total) {
        double level = 0; /* next percentile to report */
        uint64_t seen = 0;
        for (int i = 0; i < CW_HIST_LEN; i++) {
            if (!h->counts[i])
                continue;
            seen += h->counts[i];
            double here = 100.0 * (double)seen / (double)h->total;
            int64_t v = cw_hist_highest_equiv(cw_hist_value_at(i));
            if (v > h->max)
                v = h->max;
            /* Each level reached at this index gets a line with this value. */
            while (level <= here && level < 100.0) {
                double p = level / 100.0;
                fprintf(f, "%12.*f %2.12f %10llu %14.2f\n", decimals, (double)v / scale, p,
                        (unsigned long long)seen, 1.0 / (1.0 - p));
                double half = pow(2, floor(log2(100.0 / (100.0 - level))) + 1);
                level += 100.0 / (ticks_per_half * half);
                if (seen == h->total)
                    break; /* the 100 % line follows */
            }
        }
        fprintf(f, "%12.*f %2.12f %10llu\n", decimals, (double)h->max / scale, 1.0,
                (unsigned long long)h->total);
    }
    fprintf(f, "#[Mean    = %12.*f, StdDeviation   = %12.*f]\n", decimals, cw_hist_mean(h) / scale,
            decimals, cw_hist_stddev(h) / scale);
    fprintf(f, "#[Max     = %12.*f, Total count    = %12llu]\n", decimals, (double)h->max / scale,
            (unsigned long long)h->total);
    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", CW_HIST_BUCKETS, CW_HIST_SUB_COUNT);
}

#endif
