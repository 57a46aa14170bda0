/*
 * replay.c - `calderwood replay --into FILE [--until N]`: rebuilds every
 * projection from the event log into a new database.
 *
 * The new database gets the schema from the migrations, a verbatim copy of
 * the log up to N, and projections made by running each event's aggregate
 * in position order, exactly as the processor did. Nothing is read from the
 * old projections, so the result shows the state as of position N, and a
 * full replay must reproduce the live projections byte for byte. The
 * command log is not copied: it belongs to the live system's idempotency,
 * not to the state.
 */
#include "cli.h"
#include "core/clock.h"
#include "core/registry.h"
#include "store/store.h"

#include <stdio.h>
#include <sys/stat.h>

#define REPLAY_TX_EVENTS 10000 /* events per transaction in the new database */

struct replay {
    const struct cw_domain *d;
    struct cw_db *out;
    int64_t done, total, last_report_us;
    struct cw_error *err;
};

static void progress(struct replay *r, bool final)
{
    int64_t now = cw_mono_us();
    if (!final && now - r->last_report_us < 1000000)
        return;
    r->last_report_us = now;
    fprintf(stderr, "\rreplay: %lld of %lld events (%d%%)%s", (long long)r->done,
            (long long)r->total, r->total ? (int)(r->done * 100 / r->total) : 100,
            final ? "\n" : "");
}

/* Copies one event verbatim, then aggregates its upcast form. */
static int apply(const struct cw_event *ev, void *arg)
{
    struct replay *r = arg;
    int rc = r->done % REPLAY_TX_EVENTS == 0 ? cw_db_begin(r->out, r->err) : CW_OK;
    if (!rc)
        rc = cw_store_append_event(r->out, ev, NULL, NULL, r->err);
    const struct cw_event_def *def = cw_domain_event(r->d, ev->name);
    if (!rc && def && def->aggregate) {
        struct cw_event up = *ev;
        up.data = json_deep_copy(ev->data);
        cw_domain_upcast(r->d, ev->name, &up.version, &up.data);
        rc = def->aggregate(r->out, &up, r->err);
        json_decref(up.data);
        if (rc) {
            char why[sizeof(r->err->message)];
            snprintf(why, sizeof(why), "%s", r->err->message);
            cw_error_set(r->err, rc, NULL, "aggregate of event %lld (%s) failed: %s",
                         (long long)ev->position, ev->name, why);
        }
    }
    if (!rc && ++r->done % REPLAY_TX_EVENTS == 0)
        rc = cw_db_commit(r->out, r->err);
    progress(r, false);
    return rc;
}

static int replay(struct cw_cli_common *c, const char *into, int64_t until, struct cw_error *err)
{
    struct stat sb;
    if (stat(into, &sb) == 0)
        return cw_error_set(err, CW_ERR_EXISTS, NULL, "%s exists; replay only writes a new file",
                            into);
    struct cw_domain *d = NULL;
    struct cw_store *src = NULL, *dst = NULL;
    struct cw_store_options ro = {.read_only = true};
    struct replay r = {.err = err};
    int rc = cw_cli_domain(c, &d, err);
    /* The source has no domain set, so the scan hands events over as stored. */
    if (!rc)
        rc = cw_store_open(c->store_url, &ro, &src, err);
    if (!rc)
        rc = cw_store_open(into, NULL, &dst, err);
    if (!rc)
        rc = cw_store_migrate(dst, d, NULL, err);
    if (!rc)
        rc = cw_store_last_position(cw_store_writer(src), &r.total, err);
    if (!rc) {
        if (until && until < r.total)
            r.total = until;
        r.d = d;
        r.out = cw_store_writer(dst);
        rc = cw_db_scan_events(cw_store_writer(src), 0, r.total, NULL, NULL, apply, &r, err);
        if (!rc && r.done % REPLAY_TX_EVENTS)
            rc = cw_db_commit(r.out, err);
        if (rc)
            cw_db_rollback(r.out);
        progress(&r, true);
    }
    cw_store_close(src);
    cw_store_close(dst);
    cw_domain_free(d);
    if (rc && dst) {
        char side[4200];
        remove(into);
        snprintf(side, sizeof(side), "%s-wal", into);
        remove(side);
        snprintf(side, sizeof(side), "%s-shm", into);
        remove(side);
    }
    return rc;
}

int cw_cli_replay(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    const char *into = NULL;
    int64_t until = 0;
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&c),
        {"into", CW_OPT_STRING, &into, NULL, 0, 0, "FILE", "the new database (must not exist)"},
        {"until", CW_OPT_INT, &until, "0", 0, INT64_MAX, "N",
         "replay events up to position N (0: the whole log)"},
        {0},
    };
    int code;
    if (!cw_cli_parse("usage: calderwood replay --into FILE [--until N]", opts, argc, argv, NULL,
                      &code))
        return code;
    if (!into) {
        fprintf(stderr, "calderwood: replay needs --into FILE\n");
        return 2;
    }
    struct cw_error err = {0};
    int rc = cw_cli_prepare(&c, false, &err);
    if (!rc)
        rc = replay(&c, into, until, &err);
    return rc ? cw_cli_fail(&err) : 0;
}
