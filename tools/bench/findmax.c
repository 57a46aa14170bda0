/*
 * findmax.c - the `find-max` mode: the highest command rate whose latency
 * stays within a bound (default: update p99.9 < 100 ms) with nothing lost,
 * refused or closed. The seed's method, automated.
 *
 * Steps are `rate` runs of --step-duration seconds (fresh connections, same
 * sessions), separated by --pause seconds so the server settles. The rate
 * doubles from --start until a step fails, then the interval between the
 * best passing and the lowest failing rate is bisected until it is within
 * --tolerance of the passing rate. Each step prints one line and its JSON;
 * the result is the last line (JSON), after the distributions of the best
 * passing step.
 */
#include "bench.h"
#include "clock.h"
#include "rate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cw_hist *metric(const struct bench_opts *o, const struct rate_result *r)
{
    if (!strcmp(o->bound_metric, "ack"))
        return &r->ack;
    if (!strcmp(o->bound_metric, "delivery"))
        return &r->deliv;
    return &r->upd;
}

/* Whether r meets the bound; why not in `why`. */
static bool passes(const struct bench_opts *o, const struct rate_result *r, char *why, size_t cap)
{
    const struct cw_hist *h = metric(o, r);
    double v = (double)cw_hist_percentile(h, o->bound_pct) / 1e6;
    why[0] = 0;
    if (r->lost)
        snprintf(why, cap, "%llu lost", (unsigned long long)r->lost);
    else if (r->errored || r->rejected)
        snprintf(why, cap, "%llu errors, %llu rejected", (unsigned long long)r->errored,
                 (unsigned long long)r->rejected);
    else if (r->closes.n)
        snprintf(why, cap, "connections closed by the server");
    else if (r->deliveries_lost)
        snprintf(why, cap, "%llu deliveries lost", (unsigned long long)r->deliveries_lost);
    else if (!h->total)
        snprintf(why, cap, "no %s measured", o->bound_metric);
    else if (v >= o->bound_ms)
        snprintf(why, cap, "%s p%g %.2f ms >= %g ms", o->bound_metric, o->bound_pct, v,
                 o->bound_ms);
    return why[0] == 0;
}

int bench_findmax_main(const struct bench_opts *o)
{
    struct sessions s;
    if (bench_sessions(o, &s))
        return 1;
    struct rate_result *r = xmalloc(sizeof(*r)), *best = xcalloc(1, sizeof(*best));
    double lo = 0, hi = INFINITY, rate = o->start_rate;
    bool have_best = false;
    int steps = 0, rc = 0;
    struct bbuf steps_json = {0};
    jb_printf(&steps_json, "[");
    if (!o->quiet)
        printf("# find-max: %s over %d connection(s) (+%d receivers), bound %s p%g < %g ms, "
               "zero loss; steps of %g s\n",
               o->command, o->connections, o->receivers, o->bound_metric, o->bound_pct, o->bound_ms,
               o->step_duration);
    while (steps < o->max_steps) {
        steps++;
        if (rate_run_calm(o, &s, rate, o->step_duration, r)) {
            rc = 1;
            break;
        }
        char why[128];
        bool ok = passes(o, r, why, sizeof(why));
        const struct cw_hist *h = metric(o, r);
        printf("# step %2d: rate %9.0f/s  achieved %9.0f/s  %s p%g %9.3f ms  max %9.3f ms  "
               "lost %llu  bench cpu %3.0f%%",
               steps, rate, r->rate_achieved, o->bound_metric, o->bound_pct,
               (double)cw_hist_percentile(h, o->bound_pct) / 1e6, (double)h->max / 1e6,
               (unsigned long long)r->lost, r->bench_cpu_pct);
        if (r->server_cpu_pct >= 0)
            printf("  server cpu %3.0f%% %.2f us/cmd", r->server_cpu_pct, r->server_cpu_us_per_cmd);
        printf("  -> %s%s%s\n", ok ? "pass" : "FAIL", ok ? "" : ": ", ok ? "" : why);
        fflush(stdout);
        struct bbuf b = {0};
        jb_printf(&b, "{\"mode\":\"find-max-step\",\"step\":%d,\"pass\":%s,", steps,
                  ok ? "true" : "false");
        rate_json_fields(r, o->command, &b);
        jb_printf(&b, "}");
        bench_emit_json(o, b.p);
        jb_printf(&steps_json, "%s{\"rate\":%.0f,\"pass\":%s,\"p\":%.1f,\"lost\":%llu}",
                  steps > 1 ? "," : "", rate, ok ? "true" : "false",
                  (double)cw_hist_percentile(h, o->bound_pct) / 1e3, (unsigned long long)r->lost);
        bbuf_free(&b);
        if (ok) {
            lo = rate;
            struct rate_result *t = best;
            best = r;
            r = t;
            have_best = true;
        } else {
            hi = rate;
        }
        if (isinf(hi)) {
            if (rate * 2 > o->max_rate) {
                if (rate >= o->max_rate)
                    break; /* the ceiling passes: report it */
                rate = o->max_rate;
            } else {
                rate *= 2;
            }
        } else {
            if (lo > 0 && (hi - lo) / lo <= o->tolerance)
                break;
            if (lo == 0 && hi <= o->start_rate / 1024)
                break; /* nothing passes */
            rate = floor((lo + hi) / 2);
        }
        sleep_ns((int64_t)(o->pause * 1e9));
    }
    jb_printf(&steps_json, "]");
    if (!rc) {
        if (have_best)
            rate_print_dists(o, best);
        struct bbuf b = {0};
        jb_printf(&b,
                  "{\"mode\":\"find-max\",\"command\":\"%s\",\"bound\":\"%s p%g < %g ms, zero "
                  "loss\",\"max_rate\":%.0f,\"first_failing_rate\":%.0f,\"steps\":%d,"
                  "\"step_duration_s\":%g,\"step_results\":%s",
                  o->command, o->bound_metric, o->bound_pct, o->bound_ms, lo, isinf(hi) ? -1.0 : hi,
                  steps, o->step_duration, steps_json.p);
        if (have_best) {
            jb_printf(&b, ",\"best\":{");
            rate_json_fields(best, o->command, &b);
            jb_printf(&b, "}");
        }
        jb_printf(&b, "}");
        if (!o->quiet)
            printf("# find-max result: %.0f commands/s (%s)\n", lo,
                   isinf(hi) ? "the ceiling --max-rate passed"
                             : "within the tolerance of the lowest failing rate");
        bench_emit_json(o, b.p);
        bbuf_free(&b);
    }
    bbuf_free(&steps_json);
    free(r);
    free(best);
    bench_sessions_free(&s);
    return rc;
}
