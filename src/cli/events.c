/*
 * events.c - `calderwood events`: streams the event log to stdout as JSON
 * Lines or CSV for analysts. One row in memory at a time, whatever the size
 * of the log; private fields (password hashes) are left out as they are for
 * clients.
 */
#include "cli.h"
#include "core/registry.h"
#include "engine/update.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct export
{
    const struct cw_domain *d;
    bool csv;
};

/* Writes s as one CSV field (RFC 4180 quoting). */
static void csv_field(const char *s, bool last)
{
    if (!s)
        s = "";
    if (strpbrk(s, ",\"\r\n")) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

static int write_event(const struct cw_event *ev, void *arg)
{
    struct export *x = arg;
    const struct cw_event_def *def = cw_domain_event(x->d, ev->name);
    json_t *o = cw_event_to_json(def, ev);
    if (!x->csv) {
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        char num[4][32];
        snprintf(num[0], sizeof(num[0]), "%lld", (long long)ev->position);
        snprintf(num[1], sizeof(num[1]), "%d", ev->version);
        snprintf(num[2], sizeof(num[2]), "%lld", (long long)ev->client_seq);
        snprintf(num[3], sizeof(num[3]), "%lld", (long long)ev->recorded_at);
        char *data = json_dumps(json_object_get(o, "data"), JSON_COMPACT);
        char *meta = json_dumps(json_object_get(o, "meta"), JSON_COMPACT);
        const char *fields[] = {num[0],        ev->uuid,      ev->command_uuid, ev->name, num[1],
                                ev->user_uuid, ev->client_id, num[2],           num[3],   data,
                                meta};
        size_t n = sizeof(fields) / sizeof(fields[0]);
        for (size_t i = 0; i < n; i++)
            csv_field(fields[i], i + 1 == n);
        free(data);
        free(meta);
    }
    json_decref(o);
    return ferror(stdout) ? CW_ERR_SYSTEM : CW_OK;
}

int cw_cli_events(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    int64_t after = 0, until = 0;
    const char *name = NULL, *format = NULL;
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&c),
        {"after", CW_OPT_INT, &after, "0", 0, INT64_MAX, "N", "only events after position N"},
        {"until", CW_OPT_INT, &until, "0", 0, INT64_MAX, "N",
         "only events up to position N (0: all)"},
        {"name", CW_OPT_STRING, &name, NULL, 0, 0, "NAME", "only events of this name"},
        {"format", CW_OPT_STRING, &format, "jsonl", 0, 0, "FMT", "jsonl or csv"},
        {0},
    };
    int code;
    if (!cw_cli_parse("usage: calderwood events [--after N] [--name X] [--format jsonl|csv]", opts,
                      argc, argv, NULL, &code))
        return code;
    struct cw_error err = {0};
    if (strcmp(format, "jsonl") && strcmp(format, "csv")) {
        fprintf(stderr, "calderwood: --format must be jsonl or csv, not '%s'\n", format);
        return 2;
    }
    struct export x = {.csv = !strcmp(format, "csv")};
    struct cw_domain *d = NULL;
    struct cw_store *s = NULL;
    struct cw_store_options so = {.read_only = true};
    int rc = cw_cli_prepare(&c, false, &err);
    if (!rc)
        rc = cw_cli_domain(&c, &d, &err);
    if (!rc)
        rc = cw_store_open(c.store_url, &so, &s, &err);
    if (!rc) {
        static char buf[1 << 16];
        setvbuf(stdout, buf, _IOFBF, sizeof(buf));
        x.d = d;
        cw_store_set_domain(s, d);
        if (x.csv)
            puts("position,uuid,command_uuid,name,version,user_uuid,client_id,client_seq,"
                 "recorded_at,data,meta");
        const char *names[] = {name, NULL};
        rc = cw_db_scan_events(cw_store_writer(s), after, until, NULL, name ? names : NULL,
                               write_event, &x, &err);
        if (rc == CW_ERR_SYSTEM)
            cw_error_set(&err, rc, NULL, "cannot write to standard output");
        if (fflush(stdout) != 0 && !rc)
            rc = cw_error_set(&err, CW_ERR_SYSTEM, NULL, "cannot write to standard output");
    }
    cw_store_close(s);
    cw_domain_free(d);
    return rc ? cw_cli_fail(&err) : 0;
}
