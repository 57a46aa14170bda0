/*
 * report.h - output of calderwood-bench: counts by error code, JSON
 * building (one line per summary), latency percentiles in microseconds, and
 * the HdrHistogram-format distributions on stdout and in .hgrm files.
 */
#ifndef CW_BENCH_REPORT_H
#define CW_BENCH_REPORT_H

#include "bench.h"
#include "histogram.h"
#include "net.h"

#include <stdint.h>

#define CODES_MAX 24

struct codes {
    int n;
    struct {
        char code[48];
        uint64_t count;
    } c[CODES_MAX];
};

void codes_add(struct codes *cs, const char *code, uint64_t n);
void codes_merge(struct codes *dst, const struct codes *src);
uint64_t codes_total(const struct codes *cs);

/* Appends printf output to b (kept NUL-terminated). */
void jb_printf(struct bbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends "key":{...} with the counts of cs. */
void jb_codes(struct bbuf *b, const char *key, const struct codes *cs);
/* Appends "key":{"count":N,"p50":...,"p90","p99","p99.9","p99.99","max","mean"} in µs
 * (histogram values are ns). */
void jb_hist(struct bbuf *b, const char *key, const struct cw_hist *h);

/* Prints "# title" and h's percentile distribution in the --unit (unless --quiet). */
void print_dist(const struct bench_opts *o, const char *title, const struct cw_hist *h);

#endif
