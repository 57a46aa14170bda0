/*
 * report.c - summaries and distributions (see report.h), and the two
 * output sinks of bench.h (--json, --hgrm).
 */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void codes_add(struct codes *cs, const char *code, uint64_t n)
{
    for (int i = 0; i < cs->n; i++)
        if (!strcmp(cs->c[i].code, code)) {
            cs->c[i].count += n;
            return;
        }
    int i;
    if (cs->n < CODES_MAX - 1) {
        i = cs->n++;
        snprintf(cs->c[i].code, sizeof(cs->c[i].code), "%s", code);
    } else { /* the last slot absorbs every further code */
        i = CODES_MAX - 1;
        if (cs->n < CODES_MAX) {
            cs->n = CODES_MAX;
            snprintf(cs->c[i].code, sizeof(cs->c[i].code), "other");
        }
    }
    cs->c[i].count += n;
}

void codes_merge(struct codes *dst, const struct codes *src)
{
    for (int i = 0; i < src->n; i++)
        codes_add(dst, src->c[i].code, src->c[i].count);
}

uint64_t codes_total(const struct codes *cs)
{
    uint64_t t = 0;
    for (int i = 0; i < cs->n; i++)
        t += cs->c[i].count;
    return t;
}

void jb_printf(struct bbuf *b, const char *fmt, ...)
{
    bbuf_reserve(b, 256);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if ((size_t)n >= b->cap - b->len) { /* did not fit: grow and format again */
        bbuf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void jb_codes(struct bbuf *b, const char *key, const struct codes *cs)
{
    jb_printf(b, "\"%s\":{", key);
    for (int i = 0; i < cs->n; i++)
        jb_printf(b, "%s\"%s\":%llu", i ? "," : "", cs->c[i].code,
                  (unsigned long long)cs->c[i].count);
    jb_printf(b, "}");
}

void jb_hist(struct bbuf *b, const char *key, const struct cw_hist *h)
{
    static const struct {
        const char *name;
        double p;
    } ps[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"p99.99", 99.99}};
    jb_printf(b, "\"%s\":{\"count\":%llu", key, (unsigned long long)h->total);
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        jb_printf(b, ",\"%s\":%.1f", ps[i].name, (double)cw_hist_percentile(h, ps[i].p) / 1e3);
    jb_printf(b, ",\"max\":%.1f,\"mean\":%.1f}", (double)(h->total ? h->max : 0) / 1e3,
              cw_hist_mean(h) / 1e3);
}

void print_dist(const struct bench_opts *o, const char *title, const struct cw_hist *h)
{
    if (o->quiet)
        return;
    printf("# %s (%s)\n", title, o->unit);
    cw_hist_print(h, stdout, o->unit_scale, 3);
    printf("\n");
}

void bench_emit_json(const struct bench_opts *o, const char *json)
{
    printf("%s\n", json);
    fflush(stdout);
    if (o->json_path) {
        FILE *f = fopen(o->json_path, "a");
        if (!f) {
            perror(o->json_path);
            return;
        }
        fprintf(f, "%s\n", json);
        fclose(f);
    }
}

void bench_write_hgrm(const struct bench_opts *o, const char *name, const struct cw_hist *h)
{
    if (!o->hgrm_prefix)
        return;
    char path[1024];
    snprintf(path, sizeof(path), "%s-%s.hgrm", o->hgrm_prefix, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    cw_hist_print(h, f, o->unit_scale, 3);
    fclose(f);
}
