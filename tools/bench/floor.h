/*
 * floor.h - the group commit floor: the update latency that a server
 * costing nothing would have on a given series of commits.
 *
 * The server commits one batch at a time; commands arriving while a batch
 * is being synced form the next one. So with commits back to back (as a
 * busy server's are), a command arriving at t during commit i is durable
 * when commit i+1 ends: it waits for the rest of the commit in flight, then
 * for a whole one of its own. Arrivals are evenly spaced (a fixed rate,
 * from t0), which also weighs each commit by its length: a long stall
 * catches many arrivals, a quick sync few.
 *
 * Feed it the end time of each commit in order; it records each arrival's
 * latency once the commit after its own has ended. Header-only so that the
 * unit test links against nothing else (tests/unit/test_bench_floor.c).
 */
#ifndef CW_BENCH_FLOOR_H
#define CW_BENCH_FLOOR_H

#include "histogram.h"

#include <stdint.h>

struct cw_floor {
    struct cw_hist *hist; /* where the latencies go (ns) */
    int64_t t0;           /* the first arrival */
    double per_ns;        /* between two arrivals; <= 0: no model */
    uint64_t k;           /* the next arrival: t0 + k * per_ns */
    int64_t end[2];       /* the ends of the previous two commits */
    int ends;             /* how many of end[] are known (0..2) */
};

static inline void cw_floor_init(struct cw_floor *f, struct cw_hist *hist, int64_t t0, double rate)
{
    *f = (struct cw_floor){.hist = hist, .t0 = t0, .per_ns = rate > 0 ? 1e9 / rate : 0};
}

/* A commit ended at c: the arrivals during the one before it, [end[0],
 * end[1]), are durable at c. Arrivals before the first known commit are
 * skipped. */
static inline void cw_floor_commit_end(struct cw_floor *f, int64_t c)
{
    if (f->ends == 2 && f->per_ns > 0) {
        for (;;) {
            int64_t t = f->t0 + (int64_t)((double)f->k * f->per_ns);
            if (t >= f->end[1])
                break;
            if (t >= f->end[0])
                cw_hist_record(f->hist, c - t);
            f->k++;
        }
    }
    f->end[0] = f->end[1];
    f->end[1] = c;
    if (f->ends < 2)
        f->ends++;
}

#endif
