/*
 * replay.c - `calderwood replay --into URL [--from URL] [--until N]`:
 * rebuilds every projection from the event log into a new store, on the
 * same backend or the other one (sqlite:old.db into postgres://..., and
 * back).
 *
 * The new store gets the schema from the migrations, a verbatim copy of
 * the log up to N, and projections made by running each event's aggregate
 * in position order, exactly as the processor did. Nothing is read from the
 * old projections, so the result shows the state as of position N, and a
 * full replay must reproduce the live projections value for value. A full
 * replay also copies the command log, so that clients resending commands
 * to the new store are answered as duplicates; one up to N leaves it out,
 * as it would record commands whose events are not there. The end is a
 * count of what the new store holds, checked against what was copied.
 *
 * The target must be new: a SQLite file that does not exist (removed again
 * if the replay fails), or a PostgreSQL database with no log, filled in one
 * transaction so that a failure leaves only the schema.
 */
#include "cli.h"
#include "core/clock.h"
#include "core/registry.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_TX_EVENTS 10000 /* events per transaction in the new database */

struct replay {
    const struct cw_domain *d;
    struct cw_db *out;
    int64_t done, total, last_report_us;
    int64_t tx_events; /* events per transaction in the new store */
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
    int rc = r->done % r->tx_events == 0 ? cw_db_begin(r->out, r->err) : CW_OK;
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
    if (!rc && ++r->done % r->tx_events == 0)
        rc = cw_db_commit(r->out, r->err);
    progress(r, false);
    return rc;
}

/* Copies one command-log row (columns as COMMAND_COLUMNS) from st into out. */
#define COMMAND_COLUMNS                                                                            \
    "uuid, user_uuid, client_id, client_seq, name, data, meta, received_at, outcome,"              \
    " first_position, last_position, reject_code, reject_message"

static int copy_command(struct cw_db *out, struct cw_stmt *st, struct cw_error *err)
{
    struct cw_stmt *ins = cw_db_prepare(out,
                                        "INSERT INTO commands(" COMMAND_COLUMNS ")"
                                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                        err);
    if (!ins)
        return CW_ERR_STORE;
    for (int col = 0; col < 13; col++) {
        if (cw_stmt_is_null(st, col))
            cw_stmt_bind_null(ins, col + 1);
        else if (col == 3 || col == 7 || col == 9 || col == 10)
            cw_stmt_bind_int(ins, col + 1, cw_stmt_int(st, col));
        else
            cw_stmt_bind_text(ins, col + 1, cw_stmt_text(st, col));
    }
    int rc = cw_stmt_step(ins, err);
    return rc == CW_DONE ? CW_OK : rc;
}

/* The whole command log of in into out, in the order it was received. */
static int copy_commands(struct cw_db *in, struct cw_db *out, int64_t *n, struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(
        in, "SELECT " COMMAND_COLUMNS " FROM commands ORDER BY received_at, uuid", err);
    if (!st)
        return CW_ERR_STORE;
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW) {
        int copied = copy_command(out, st, err);
        if (copied) {
            cw_stmt_reset(st);
            return copied;
        }
        ++*n;
    }
    return rc == CW_DONE ? CW_OK : rc;
}

/* Counts what the new store holds and checks it against what was copied. */
static int verify(struct cw_db *out, const struct replay *r, int64_t commands, const char *label,
                  struct cw_error *err)
{
    int64_t events = 0, last = 0, cmds = 0;
    int rc = cw_db_query_int(out, &events, err, "SELECT COUNT(*) FROM events", "");
    if (!rc)
        rc = cw_store_last_position(out, &last, err);
    if (!rc)
        rc = cw_db_query_int(out, &cmds, err, "SELECT COUNT(*) FROM commands", "");
    if (rc)
        return rc;
    if (events != r->done || last != r->total || cmds != commands)
        return cw_error_set(err, CW_ERR_STORE, NULL,
                            "verification failed: %s holds %lld events (last position %lld)"
                            " and %lld commands; copied %lld events up to %lld and %lld commands",
                            label, (long long)events, (long long)last, (long long)cmds,
                            (long long)r->done, (long long)r->total, (long long)commands);
    fprintf(stderr, "replay: verified %s: %lld events (last position %lld), %lld commands\n", label,
            (long long)events, (long long)last, (long long)cmds);
    return CW_OK;
}

/* A PostgreSQL target must hold no log yet; a SQLite one must not exist at all. */
static int check_new(struct cw_store *dst, struct cw_error *err)
{
    int64_t events = 0, cmds = 0;
    struct cw_db *w = cw_store_writer(dst);
    int rc = cw_db_query_int(w, &events, err, "SELECT COUNT(*) FROM events", "");
    if (!rc)
        rc = cw_db_query_int(w, &cmds, err, "SELECT COUNT(*) FROM commands", "");
    if (!rc && (events || cmds))
        rc = cw_error_set(err, CW_ERR_EXISTS, NULL,
                          "the target already holds a log (%lld events, %lld commands);"
                          " replay only fills a new store",
                          (long long)events, (long long)cmds);
    return rc;
}

/* Removes the SQLite file (and its WAL) that a failed replay began. */
static void remove_sqlite(const char *path)
{
    char side[4200];
    remove(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    remove(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    remove(side);
}

int cw_cli_replay_into(const struct cw_cli_common *c, const char *from, const char *into,
                       int64_t until, struct cw_error *err)
{
    const struct cw_store_backend *be;
    const char *target;
    int rc = cw_store_parse_url(into, &be, &target, err);
    if (rc)
        return rc;
    bool to_sqlite = strncmp(into, "postgres", 8) != 0;
    struct stat sb;
    if (to_sqlite && stat(target, &sb) == 0)
        return cw_error_set(err, CW_ERR_EXISTS, NULL, "%s exists; replay only writes a new file",
                            target);
    char label[512];
    cw_store_url_label(into, label, sizeof(label));
    struct cw_domain *d = NULL;
    struct cw_store *src = NULL, *dst = NULL;
    struct cw_store_options ro = {.read_only = true};
    struct replay r = {.err = err};
    int64_t commands = 0;
    rc = cw_cli_domain(c, &d, err);
    /* The source has no domain set, so the scan hands events over as stored. */
    if (!rc)
        rc = cw_store_open(from, &ro, &src, err);
    if (!rc)
        rc = cw_store_open(into, NULL, &dst, err);
    if (!rc)
        rc = cw_store_migrate(dst, d, NULL, err);
    if (!rc && !to_sqlite)
        rc = check_new(dst, err);
    if (!rc)
        rc = cw_store_last_position(cw_store_writer(src), &r.total, err);
    if (!rc) {
        if (until && until < r.total)
            r.total = until;
        r.d = d;
        r.out = cw_store_writer(dst);
        /* PostgreSQL takes it all in one transaction: a failure leaves no half log. */
        r.tx_events = to_sqlite ? REPLAY_TX_EVENTS : INT64_MAX;
        rc = cw_db_scan_events(cw_store_writer(src), 0, r.total, NULL, NULL, apply, &r, err);
        if (!rc && r.done % r.tx_events == 0)
            rc = cw_db_begin(r.out, err); /* for the commands, after a whole last chunk */
        if (!rc && !until)
            rc = copy_commands(cw_store_writer(src), r.out, &commands, err);
        if (!rc)
            rc = cw_db_commit(r.out, err);
        if (rc)
            cw_db_rollback(r.out);
        progress(&r, true);
        if (!rc)
            rc = verify(r.out, &r, commands, label, err);
    }
    cw_store_close(src);
    cw_store_close(dst);
    cw_domain_free(d);
    if (rc && dst && to_sqlite)
        remove_sqlite(target);
    return rc;
}

int cw_cli_replay(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    const char *into = NULL, *from = NULL;
    int64_t until = 0;
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&c),
        {"into", CW_OPT_STRING, &into, NULL, 0, 0, "URL",
         "the new store: a FILE or sqlite:FILE that does not exist, or postgres://... with no log"},
        {"from", CW_OPT_STRING, &from, NULL, 0, 0, "URL",
         "the store to read (default: --store, or DATA/calderwood.db)"},
        {"until", CW_OPT_INT, &until, "0", 0, INT64_MAX, "N",
         "replay events up to position N (0: the whole log, and the command log too)"},
        {0},
    };
    int code;
    if (!cw_cli_parse("usage: calderwood replay --into URL [--from URL] [--until N]", opts, argc,
                      argv, NULL, &code))
        return code;
    if (!into) {
        fprintf(stderr, "calderwood: replay needs --into URL\n");
        return 2;
    }
    struct cw_error err = {0};
    int rc = cw_cli_prepare(&c, false, &err);
    if (!rc)
        rc = cw_cli_replay_into(&c, from ? from : c.store_url, into, until, &err);
    return rc ? cw_cli_fail(&err) : 0;
}
