/*
 * session.c - `calderwood session list|end`: the open sessions (read from
 * the sessions projection), and ending one, or all of a user's, through
 * the commands end-session and end-user-sessions (cw_cli_admin), so a
 * running server closes their sockets at once.
 */
#include "cli.h"
#include "core/registry.h"
#include "domain/domain.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: calderwood session list [--user EMAIL] [--format table|jsonl]\n"
    "       calderwood session end --session UUID\n"
    "       calderwood session end --user EMAIL\n"
    "Ending a session is the event a logout writes: its open WebSockets get `unauthorized`.\n"
    "With a server running on the data directory, end goes through it; in a distributed\n"
    "deployment, give --queue nats://... and the --store it shares.";

struct session_options {
    struct cw_cli_common c;
    const char *session, *user, *format;
};

static void print_sessions(const json_t *rows, bool jsonl)
{
    size_t i, w_email = 5;
    json_t *s;
    json_array_foreach(rows, i, s)
    {
        const char *email = json_string_value(json_object_get(s, "email"));
        size_t e = email ? strlen(email) : 1;
        w_email = e > w_email ? e : w_email;
    }
    if (!jsonl)
        printf("%-36s  %-*s  %-20s  %s\n", "SESSION", (int)w_email, "EMAIL", "STARTED", "USER");
    json_array_foreach(rows, i, s)
    {
        if (jsonl) {
            json_dumpf(s, stdout, JSON_COMPACT);
            putchar('\n');
            continue;
        }
        char when[32];
        const char *email = json_string_value(json_object_get(s, "email"));
        cw_cli_format_time(json_integer_value(json_object_get(s, "started_at")), when,
                           sizeof(when));
        printf("%-36s  %-*s  %-20s  %s\n", json_string_value(json_object_get(s, "session_uuid")),
               (int)w_email, email ? email : "-", when,
               json_string_value(json_object_get(s, "user_uuid")));
    }
}

static int list(struct session_options *o)
{
    struct cw_error err = {0};
    struct cw_domain *d = NULL;
    struct cw_store *s = NULL;
    json_t *rows = NULL;
    char email[256] = "";
    if (o->user) {
        snprintf(email, sizeof(email), "%s", o->user);
        cw_accounts_normalize_email(email);
    }
    int rc = cw_cli_open_reader(&o->c, &d, &s, &err);
    if (!rc)
        rc = cw_accounts_list_sessions(cw_store_writer(s), o->user ? email : NULL, &rows, &err);
    if (!rc)
        print_sessions(rows, !strcmp(o->format, "jsonl"));
    json_decref(rows);
    cw_store_close(s);
    cw_domain_free(d);
    if (!rc && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cw_error_set(&err, CW_ERR_SYSTEM, NULL, "cannot write to standard output");
    return rc ? cw_cli_fail(&err) : 0;
}

static int end(struct session_options *o)
{
    struct cw_error err = {0};
    json_t *answer = NULL;
    json_t *data = o->session ? json_pack("{s:s}", "session_uuid", o->session)
                              : json_pack("{s:s}", "email", o->user);
    int rc = cw_cli_prepare(&o->c, true, &err);
    if (!rc)
        rc = cw_cli_admin(&o->c, "session end", o->session ? "end-session" : "end-user-sessions",
                          data, &answer, &err);
    else
        json_decref(data);
    if (rc)
        return cw_cli_fail(&err);
    if (!json_is_true(json_object_get(answer, "ok"))) {
        cw_cli_admin_refused(answer);
        json_decref(answer);
        return 1;
    }
    size_t n = cw_cli_count_events(answer, "session-ended");
    if (o->session)
        printf("ended session %s\n", o->session);
    else
        printf("ended %zu session%s of %s\n", n, n == 1 ? "" : "s", o->user);
    json_decref(answer);
    return 0;
}

int cw_cli_session(int argc, char **argv)
{
    struct session_options o = {0};
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&o.c),
        CW_CLI_QUEUE_OPTION(&o.c),
        {"session", CW_OPT_STRING, &o.session, NULL, 0, 0, "UUID", "the session to end (end)"},
        {"user", CW_OPT_STRING, &o.user, NULL, 0, 0, "EMAIL",
         "every open session of this user (end), or only theirs (list)"},
        {"format", CW_OPT_STRING, &o.format, "table", 0, 0, "FMT", "table or jsonl (list)"},
        {0},
    };
    struct cw_strlist pos = {0};
    int code;
    if (!cw_cli_parse(usage, opts, argc, argv, &pos, &code))
        return code;
    const char *action = pos.n == 1 ? pos.items[0] : "";
    if (!strcmp(action, "list") && !o.session &&
        (!strcmp(o.format, "table") || !strcmp(o.format, "jsonl")))
        return list(&o);
    if (!strcmp(action, "end") && (!o.session) != (!o.user))
        return end(&o);
    fprintf(stderr, "%s\n", usage);
    return 2;
}
