/*
 * test_metrics.c - counters and their Prometheus text form
 * (src/core/metrics.h): the commit latency histogram's buckets, and a
 * render that a strict parser of the text exposition format accepts, with
 * every counter of struct cw_metrics in it.
 */
#include "core/metrics.h"

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HIST "calderwood_commit_seconds"

/* ------------------------------------------------- a text-format parser */

struct sample {
    char name[128];
    char labels[256]; /* the text between the braces, "" when none */
    char le[64];      /* the le label's value, "" when none */
    double value;
    char value_text[64];
};

struct family {
    char name[128];
    char type[32];
    bool help, has_type, had_samples;
};

struct exposition {
    struct sample *samples;
    size_t n;
    struct family families[128];
    size_t n_families;
};

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static struct family *family_of(struct exposition *e, const char *name)
{
    for (size_t i = 0; i < e->n_families; i++)
        if (!strcmp(e->families[i].name, name))
            return &e->families[i];
    return NULL;
}

/* The family a sample name belongs to: histograms add _bucket, _sum and _count. */
static struct family *family_of_sample(struct exposition *e, const char *name)
{
    struct family *fam = family_of(e, name);
    if (fam)
        return fam;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), s = strlen(suffixes[i]);
        if (n > s && !strcmp(name + n - s, suffixes[i])) {
            char base[128];
            snprintf(base, sizeof(base), "%.*s", (int)(n - s), name);
            fam = family_of(e, base);
            if (fam && !strcmp(fam->type, "histogram"))
                return fam;
        }
    }
    return NULL;
}

/*
 * Parses text strictly: every line is "# HELP name text", "# TYPE name type"
 * or "name{labels} value" / "name value"; HELP and TYPE come once per
 * family, before its samples; a family's samples are contiguous; no series
 * appears twice. Fails the test on the first violation.
 */
static void parse(const char *text, struct exposition *e)
{
    memset(e, 0, sizeof(*e));
    size_t len = strlen(text);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    struct family *current = NULL;
    const char *line = text;
    int lineno = 0;
    while (*line) {
        lineno++;
        const char *eol = strchr(line, '\n');
        char buf[1024];
        assert_true((size_t)(eol - line) < sizeof(buf));
        memcpy(buf, line, (size_t)(eol - line));
        buf[eol - line] = '\0';
        line = eol + 1;
        if (!buf[0])
            fail_msg("line %d is empty", lineno);
        if (buf[0] == '#') {
            char kind[8], name[128], rest[512];
            rest[0] = '\0';
            int got = sscanf(buf, "# %7s %127s %511[^\n]", kind, name, rest);
            if (got < 3)
                fail_msg("line %d: bad comment '%s'", lineno, buf);
            if (strcmp(kind, "HELP") && strcmp(kind, "TYPE"))
                fail_msg("line %d: comment is neither HELP nor TYPE: '%s'", lineno, buf);
            struct family *fam = family_of(e, name);
            if (!fam) {
                assert_true(e->n_families < 128);
                fam = &e->families[e->n_families++];
                snprintf(fam->name, sizeof(fam->name), "%s", name);
            }
            if (fam->had_samples)
                fail_msg("line %d: %s of %s after its samples", lineno, kind, name);
            if (!strcmp(kind, "HELP")) {
                if (fam->help)
                    fail_msg("line %d: second HELP for %s", lineno, name);
                fam->help = true;
            } else {
                if (fam->has_type)
                    fail_msg("line %d: second TYPE for %s", lineno, name);
                static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
                bool known = false;
                for (int i = 0; i < 5; i++)
                    known |= !strcmp(rest, types[i]);
                if (!known)
                    fail_msg("line %d: unknown type '%s'", lineno, rest);
                fam->has_type = true;
                snprintf(fam->type, sizeof(fam->type), "%s", rest);
            }
            continue;
        }

        /* A sample. */
        struct sample s = {0};
        const char *p = buf;
        if (!is_name_start(*p))
            fail_msg("line %d: bad metric name in '%s'", lineno, buf);
        size_t n = 0;
        while (is_name_char(*p))
            s.name[n++] = *p++;
        s.name[n] = '\0';
        if (*p == '{') {
            const char *start = ++p;
            /* label="value" pairs, comma-separated; values may hold \" \\ \n. */
            while (*p != '}') {
                if (!is_name_start(*p))
                    fail_msg("line %d: bad label name in '%s'", lineno, buf);
                char lname[64];
                size_t ln = 0;
                while (is_name_char(*p) && ln < sizeof(lname) - 1)
                    lname[ln++] = *p++;
                lname[ln] = '\0';
                if (p[0] != '=' || p[1] != '"')
                    fail_msg("line %d: label %s without =\"value\"", lineno, lname);
                p += 2;
                char lvalue[64];
                size_t lv = 0;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        p++;
                        if (*p != '"' && *p != '\\' && *p != 'n')
                            fail_msg("line %d: bad escape in label value", lineno);
                    }
                    if (lv < sizeof(lvalue) - 1)
                        lvalue[lv++] = *p;
                    p++;
                }
                lvalue[lv] = '\0';
                if (*p != '"')
                    fail_msg("line %d: unterminated label value", lineno);
                p++;
                if (!strcmp(lname, "le"))
                    snprintf(s.le, sizeof(s.le), "%s", lvalue);
                if (*p == ',')
                    p++;
                else if (*p != '}')
                    fail_msg("line %d: expected , or } in '%s'", lineno, buf);
            }
            snprintf(s.labels, sizeof(s.labels), "%.*s", (int)(p - start), start);
            p++;
        }
        if (*p != ' ')
            fail_msg("line %d: no single space before the value in '%s'", lineno, buf);
        p++;
        char *end;
        if (!strcmp(p, "+Inf"))
            s.value = INFINITY;
        else if (!strcmp(p, "-Inf"))
            s.value = -INFINITY;
        else if (!strcmp(p, "NaN"))
            s.value = NAN;
        else {
            s.value = strtod(p, &end);
            if (end == p || *end)
                fail_msg("line %d: bad value '%s'", lineno, p);
        }
        snprintf(s.value_text, sizeof(s.value_text), "%s", p);

        struct family *fam = family_of_sample(e, s.name);
        if (!fam || !fam->has_type || !fam->help)
            fail_msg("line %d: sample %s has no HELP and TYPE before it", lineno, s.name);
        if (fam->had_samples && fam != current)
            fail_msg("line %d: samples of %s are not contiguous", lineno, fam->name);
        if (strcmp(fam->type, "histogram") && strcmp(s.name, fam->name))
            fail_msg("line %d: %s sample named %s", lineno, fam->type, s.name);
        fam->had_samples = true;
        current = fam;
        for (size_t i = 0; i < e->n; i++)
            if (!strcmp(e->samples[i].name, s.name) && !strcmp(e->samples[i].labels, s.labels))
                fail_msg("line %d: series %s{%s} appears twice", lineno, s.name, s.labels);
        e->samples = realloc(e->samples, (e->n + 1) * sizeof(*e->samples));
        e->samples[e->n++] = s;
    }
    for (size_t i = 0; i < e->n_families; i++)
        if (!e->families[i].had_samples)
            fail_msg("family %s has no samples", e->families[i].name);
}

static const struct sample *find(const struct exposition *e, const char *name, const char *labels)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->samples[i].name, name) && !strcmp(e->samples[i].labels, labels))
            return &e->samples[i];
    return NULL;
}

static double value_of(const struct exposition *e, const char *name, const char *labels)
{
    const struct sample *s = find(e, name, labels);
    if (!s)
        fail_msg("no sample %s{%s}", name, labels);
    return s->value;
}

/* The histogram: buckets in rising le order, cumulative, +Inf last and equal to _count. */
struct hist {
    double le[64];
    double count[64];
    size_t n;
    double sum, total;
};

static void check_histogram(const struct exposition *e, struct hist *h)
{
    memset(h, 0, sizeof(*h));
    struct family *fam = family_of((struct exposition *)e, HIST);
    assert_non_null(fam);
    assert_string_equal(fam->type, "histogram");
    for (size_t i = 0; i < e->n; i++) {
        const struct sample *s = &e->samples[i];
        if (strcmp(s->name, HIST "_bucket"))
            continue;
        if (!s->le[0])
            fail_msg("bucket without le: {%s}", s->labels);
        assert_true(h->n < 64);
        double le = strcmp(s->le, "+Inf") ? strtod(s->le, NULL) : INFINITY;
        if (h->n && !(le > h->le[h->n - 1]))
            fail_msg("bucket le=%s does not follow le=%g", s->le, h->le[h->n - 1]);
        if (h->n && s->value < h->count[h->n - 1])
            fail_msg("bucket le=%s (%g) is below the one before (%g): not cumulative", s->le,
                     s->value, h->count[h->n - 1]);
        h->le[h->n] = le;
        h->count[h->n] = s->value;
        h->n++;
    }
    assert_true(h->n >= 2);
    assert_true(isinf(h->le[h->n - 1]));
    h->total = value_of(e, HIST "_count", "");
    h->sum = value_of(e, HIST "_sum", "");
    assert_true(h->count[h->n - 1] == h->total);
}

static void render(struct cw_metrics *m, size_t depth, size_t capacity, struct exposition *e)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_metrics_render(m, NULL, 0, depth, capacity, &b);
    parse(cw_buf_cstr(&b), e);
    cw_buf_release(&b);
}

static void release(struct exposition *e)
{
    free(e->samples);
    e->samples = NULL;
}

/* ----------------------------------------------------------------- tests */

static void test_render_empty(void **state)
{
    struct cw_metrics m = {0};
    struct exposition e;
    render(&m, 0, 0, &e);
    struct hist h;
    check_histogram(&e, &h);
    assert_true(h.total == 0);
    assert_true(h.sum == 0);
    for (size_t i = 0; i < e.n; i++)
        if (e.samples[i].value != 0)
            fail_msg("%s{%s} is %s in a zeroed struct", e.samples[i].name, e.samples[i].labels,
                     e.samples[i].value_text);
    /* Counters follow the _total naming convention. */
    for (size_t i = 0; i < e.n_families; i++)
        if (!strcmp(e.families[i].type, "counter")) {
            size_t n = strlen(e.families[i].name);
            if (n < 6 || strcmp(e.families[i].name + n - 6, "_total"))
                fail_msg("counter %s does not end in _total", e.families[i].name);
        }
    release(&e);
}

static void test_render_appends(void **state)
{
    struct cw_metrics m = {0};
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_adds(&b, "# HELP x y\n");
    cw_metrics_render(&m, NULL, 0, 1, 2, &b);
    assert_memory_equal(b.data, "# HELP x y\n", 11);
    assert_true(b.len > 100);
    cw_buf_release(&b);
}

/*
 * Every counter of struct cw_metrics reaches the output: each field gets a
 * value no other field has, and each value must show up as a sample.
 */
static void test_every_counter_rendered(void **state)
{
    struct cw_metrics m = {0};
    struct {
        const char *field;
        atomic_ullong *v;
    } fields[] = {
        {"connections", &m.connections},
        {"connections_total", &m.connections_total},
        {"connections_closed_slow", &m.connections_closed_slow},
        {"http_requests", &m.http_requests},
        {"http_errors", &m.http_errors},
        {"messages_in", &m.messages_in},
        {"bytes_in", &m.bytes_in},
        {"cmd_acked", &m.cmd_acked},
        {"cmd_duplicate", &m.cmd_duplicate},
        {"cmd_error", &m.cmd_error},
        {"cmd_overloaded", &m.cmd_overloaded},
        {"cmd_processed", &m.cmd_processed},
        {"cmd_rejected", &m.cmd_rejected},
        {"logins_ok", &m.logins_ok},
        {"logins_failed", &m.logins_failed},
        {"logins_limited", &m.logins_limited},
        {"queries", &m.queries},
        {"query_errors", &m.query_errors},
        {"batches", &m.batches},
        {"batch_commands", &m.batch_commands},
    };
    size_t n = sizeof(fields) / sizeof(fields[0]);
    for (size_t i = 0; i < n; i++)
        atomic_store(fields[i].v, 1000003ull * (i + 1));
    struct exposition e;
    render(&m, 777001, 777002, &e);
    bool missing = false;
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "%llu", 1000003ull * (i + 1));
        size_t found = 0;
        for (size_t k = 0; k < e.n; k++)
            found += !strcmp(e.samples[k].value_text, want);
        if (found != 1) {
            fprintf(stderr, "struct cw_metrics.%s (%s) appears %zu times in the output\n",
                    fields[i].field, want, found);
            missing = true;
        }
    }
    /* The sampled queue figures are gauges of their own. */
    bool depth = false, capacity = false;
    for (size_t k = 0; k < e.n; k++) {
        depth |= !strcmp(e.samples[k].value_text, "777001");
        capacity |= !strcmp(e.samples[k].value_text, "777002");
    }
    assert_true(depth);
    assert_true(capacity);
    release(&e);
    if (missing)
        fail_msg("counters missing from the rendered metrics (see above)");
}

/*
 * Gateway threads' own counters: summed under the usual names, and each
 * thread's under a thread label.
 */
static void test_thread_counters(void **state)
{
    struct cw_metrics m = {0};
    static struct cw_thread_metrics t0, t1;
    memset(&t0, 0, sizeof(t0));
    memset(&t1, 0, sizeof(t1));
    cw_count_own(t0.updates_sent, 3);
    cw_count_own(t1.updates_sent, 4);
    cw_count_own(t0.bytes_out, 100);
    cw_count_own(t1.bytes_out, 20);
    cw_count_own(t0.frames_out, 5);
    cw_count_own(t1.batches_routed, 9);
    cw_count_own(t0.batches_skipped, 2);
    cw_count_own(t1.writes, 6);
    struct cw_thread_metrics *threads[] = {&t0, &t1};
    struct cw_buf b = CW_BUF_INIT;
    cw_metrics_render(&m, threads, 2, 0, 0, &b);
    struct exposition e;
    parse(cw_buf_cstr(&b), &e);
    cw_buf_release(&b);
    assert_true(value_of(&e, "calderwood_updates_sent_total", "") == 7);
    assert_true(value_of(&e, "calderwood_sent_bytes_total", "") == 120);
    assert_true(value_of(&e, "calderwood_frames_sent_total", "") == 5);
    assert_true(value_of(&e, "calderwood_gateway_thread_batches_total", "thread=\"1\"") == 9);
    assert_true(value_of(&e, "calderwood_gateway_thread_batches_total", "thread=\"0\"") == 0);
    assert_true(value_of(&e, "calderwood_gateway_thread_batches_skipped_total", "thread=\"0\"") ==
                2);
    assert_true(value_of(&e, "calderwood_gateway_thread_updates_sent_total", "thread=\"1\"") == 4);
    assert_true(value_of(&e, "calderwood_gateway_thread_writes_total", "thread=\"1\"") == 6);
    assert_true(value_of(&e, "calderwood_gateway_thread_sent_bytes_total", "thread=\"0\"") == 100);
    release(&e);
}

static void test_labelled_families(void **state)
{
    struct cw_metrics m = {0};
    atomic_store(&m.cmd_acked, 5);
    atomic_store(&m.cmd_rejected, 6);
    atomic_store(&m.logins_failed, 7);
    struct exposition e;
    render(&m, 0, 0, &e);
    assert_true(value_of(&e, "calderwood_commands_total", "outcome=\"acked\"") == 5);
    assert_true(value_of(&e, "calderwood_commands_total", "outcome=\"rejected\"") == 6);
    assert_true(value_of(&e, "calderwood_logins_total", "result=\"failed\"") == 7);
    release(&e);
}

/* The bucket bounds, in microseconds, as the render announces them. */
static size_t bounds_us(int64_t *out)
{
    struct cw_metrics m = {0};
    struct exposition e;
    render(&m, 0, 0, &e);
    struct hist h;
    check_histogram(&e, &h);
    release(&e);
    assert_int_equal(h.n, CW_COMMIT_BUCKETS + 1);
    for (size_t i = 0; i + 1 < h.n; i++)
        out[i] = llround(h.le[i] * 1e6);
    return h.n - 1;
}

static void test_observe_commit_buckets(void **state)
{
    int64_t le[CW_COMMIT_BUCKETS];
    size_t nb = bounds_us(le);
    assert_int_equal(nb, CW_COMMIT_BUCKETS);
    for (size_t i = 0; i + 1 < nb; i++)
        assert_true(le[i] < le[i + 1]);

    /* A value on a bound falls in that bucket (le is "less or equal"); one above, in the next. */
    for (size_t i = 0; i < nb; i++) {
        const int64_t probes[] = {le[i] - 1, le[i], le[i] + 1};
        for (int k = 0; k < 3; k++) {
            int64_t us = probes[k];
            size_t want = 0;
            while (want < nb && us > le[want])
                want++;
            struct cw_metrics m = {0};
            cw_metrics_observe_commit(&m, 3, us);
            for (size_t j = 0; j <= CW_COMMIT_BUCKETS; j++)
                if (atomic_load(&m.commit_bucket[j]) != (j == want ? 1u : 0u))
                    fail_msg("%lld us: bucket %zu holds %llu", (long long)us, j,
                             (unsigned long long)atomic_load(&m.commit_bucket[j]));
            /* The rendered histogram agrees: cumulative counts flip at the right bound. */
            struct exposition e;
            render(&m, 0, 0, &e);
            struct hist h;
            check_histogram(&e, &h);
            for (size_t j = 0; j < h.n; j++)
                if (h.count[j] != (j >= want ? 1 : 0))
                    fail_msg("%lld us: le=%g shows %g", (long long)us, h.le[j], h.count[j]);
            assert_true(h.total == 1);
            release(&e);
        }
    }

    /* Zero and beyond the last bound. */
    struct cw_metrics m = {0};
    cw_metrics_observe_commit(&m, 1, 0);
    assert_int_equal(atomic_load(&m.commit_bucket[0]), 1);
    cw_metrics_observe_commit(&m, 1, le[nb - 1] + 1);
    cw_metrics_observe_commit(&m, 1, INT64_C(3600) * 1000000);
    assert_int_equal(atomic_load(&m.commit_bucket[CW_COMMIT_BUCKETS]), 2);
}

static void test_observe_commit_totals(void **state)
{
    struct cw_metrics m = {0};
    const int64_t us[] = {100, 1500, 2500, 40000, 2000000};
    const size_t batch[] = {1, 10, 100, 7, 0};
    uint64_t sum_us = 0, commands = 0;
    for (int i = 0; i < 5; i++) {
        cw_metrics_observe_commit(&m, batch[i], us[i]);
        sum_us += (uint64_t)us[i];
        commands += batch[i];
    }
    assert_int_equal(atomic_load(&m.batches), 5);
    assert_int_equal(atomic_load(&m.batch_commands), commands);
    assert_int_equal(atomic_load(&m.commit_us_sum), sum_us);

    struct exposition e;
    render(&m, 0, 0, &e);
    struct hist h;
    check_histogram(&e, &h);
    assert_true(h.total == 5);
    assert_true(fabs(h.sum - (double)sum_us / 1e6) < 1e-6);
    assert_true(value_of(&e, "calderwood_batches_total", "") == 5);
    assert_true(value_of(&e, "calderwood_batch_commands_total", "") == (double)commands);
    release(&e);
}

static void test_render_large_histogram(void **state)
{
    /* Many observations spread over every bucket: still cumulative, +Inf == _count. */
    struct cw_metrics m = {0};
    uint64_t x = 12345;
    for (int i = 0; i < 100000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int64_t us = (int64_t)((x >> 33) % 3000000);
        cw_metrics_observe_commit(&m, 1, us);
    }
    struct exposition e;
    render(&m, 0, 0, &e);
    struct hist h;
    check_histogram(&e, &h);
    assert_true(h.total == 100000);
    release(&e);
}

/* The store's condition: one sample per condition, 1 for the current one; retries a counter. */
static void test_render_store(void **state)
{
    static const char *const conditions[] = {"ok", "stalled", "disk-full", "failing"};
    for (size_t c = 0; c < 4; c++) {
        struct cw_store_health h = {.condition = conditions[c], .retries = 41 + c};
        struct cw_buf b = CW_BUF_INIT;
        cw_metrics_render_store(&h, &b);
        struct exposition e;
        parse(cw_buf_cstr(&b), &e);
        cw_buf_release(&b);
        for (size_t i = 0; i < 4; i++) {
            char labels[64];
            snprintf(labels, sizeof(labels), "condition=\"%s\"", conditions[i]);
            assert_true(value_of(&e, "calderwood_store_condition", labels) == (i == c));
        }
        assert_true(value_of(&e, "calderwood_store_retries_total", "") == 41 + c);
        struct family *fam = family_of(&e, "calderwood_store_retries_total");
        assert_non_null(fam);
        assert_string_equal(fam->type, "counter");
        fam = family_of(&e, "calderwood_store_condition");
        assert_non_null(fam);
        assert_string_equal(fam->type, "gauge");
        release(&e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_empty),
        cmocka_unit_test(test_render_appends),
        cmocka_unit_test(test_every_counter_rendered),
        cmocka_unit_test(test_labelled_families),
        cmocka_unit_test(test_thread_counters),
        cmocka_unit_test(test_observe_commit_buckets),
        cmocka_unit_test(test_observe_commit_totals),
        cmocka_unit_test(test_render_large_histogram),
        cmocka_unit_test(test_render_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
