/*
 * user.c - `calderwood user add|passwd|disable|enable|list`. The writing
 * ones are commands of the accounts domain, run through the running server
 * when there is one (cw_cli_admin), so each is events in the log like a
 * client's command; list reads the users projection.
 */
#include "cli.h"
#include "core/registry.h"
#include "domain/domain.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: calderwood user add --email E --first F --last L [--password-file FILE]\n"
    "       calderwood user passwd --email E [--password-file FILE]\n"
    "       calderwood user disable --email E\n"
    "       calderwood user enable --email E\n"
    "       calderwood user list [--format table|jsonl]\n"
    "A password is read from FILE, or else from the first line of standard input.\n"
    "passwd and disable end the user's open sessions; a disabled user cannot log in.\n"
    "With a server running on the data directory, the command goes through it; in a\n"
    "distributed deployment, give --queue nats://... and the --store it shares.";

struct user_options {
    struct cw_cli_common c;
    const char *email, *first, *last, *password_file, *format;
};

/* Reads the first line of path ("-" or NULL: stdin) into buf without its newline. */
static int read_password(const char *path, char *buf, size_t len, struct cw_error *err)
{
    FILE *f = path && strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot read %s: %s", path, strerror(errno));
    char *line = fgets(buf, (int)len, f);
    if (f != stdin)
        fclose(f);
    if (!line)
        return cw_error_set(err, CW_ERR_INVALID, NULL, "no password given (stdin was empty)");
    buf[strcspn(buf, "\r\n")] = '\0';
    return CW_OK;
}

/* Runs command with data (taken) and prints line (with the answer's first event) on success. */
static int run(struct user_options *o, const char *what, const char *command, json_t *data)
{
    struct cw_error err = {0};
    json_t *answer = NULL;
    int rc = cw_cli_prepare(&o->c, true, &err);
    if (!rc)
        rc = cw_cli_admin(&o->c, what, command, data, &answer, &err);
    else
        json_decref(data);
    if (rc)
        return cw_cli_fail(&err);
    if (!json_is_true(json_object_get(answer, "ok"))) {
        cw_cli_admin_refused(answer);
        json_decref(answer);
        return 1;
    }
    json_t *first = json_object_get(json_array_get(json_object_get(answer, "events"), 0), "data");
    const char *email = json_string_value(json_object_get(first, "email"));
    size_t ended = cw_cli_count_events(answer, "session-ended");
    if (!strcmp(command, "register-user"))
        printf("registered %s as user %s\n", email,
               json_string_value(json_object_get(first, "user_uuid")));
    else if (!strcmp(command, "change-password"))
        printf("changed the password of %s; ended %zu session%s\n", email, ended,
               ended == 1 ? "" : "s");
    else if (!strcmp(command, "disable-user"))
        printf("disabled %s; ended %zu session%s\n", email, ended, ended == 1 ? "" : "s");
    else
        printf("enabled %s\n", email);
    json_decref(answer);
    return 0;
}

static int with_password(struct user_options *o, const char *what, const char *command,
                         json_t *data)
{
    char password[1100];
    struct cw_error err = {0};
    if (read_password(o->password_file, password, sizeof(password), &err)) {
        json_decref(data);
        return cw_cli_fail(&err);
    }
    json_object_set_new(data, "password", json_string(password));
    memset(password, 0, sizeof(password));
    return run(o, what, command, data);
}

static const char *status_of(const json_t *u)
{
    return json_is_null(json_object_get(u, "disabled_at")) ? "enabled" : "disabled";
}

static void print_users(const json_t *rows, bool jsonl)
{
    size_t i, w_email = 5, w_name = 4;
    json_t *u;
    char name[256], when[32];
    json_array_foreach(rows, i, u)
    {
        snprintf(name, sizeof(name), "%s %s", json_string_value(json_object_get(u, "first_name")),
                 json_string_value(json_object_get(u, "last_name")));
        size_t e = strlen(json_string_value(json_object_get(u, "email")));
        w_email = e > w_email ? e : w_email;
        w_name = strlen(name) > w_name ? strlen(name) : w_name;
    }
    if (!jsonl)
        printf("%-*s  %-*s  %-8s  %8s  %-20s  %s\n", (int)w_email, "EMAIL", (int)w_name, "NAME",
               "STATUS", "SESSIONS", "REGISTERED", "USER");
    json_array_foreach(rows, i, u)
    {
        int64_t open = json_integer_value(json_object_get(u, "open_sessions"));
        if (jsonl) {
            json_t *line = json_pack(
                "{s:O,s:O,s:O,s:O,s:b,s:O,s:O,s:I}", "user_uuid", json_object_get(u, "user_uuid"),
                "email", json_object_get(u, "email"), "first_name",
                json_object_get(u, "first_name"), "last_name", json_object_get(u, "last_name"),
                "disabled", !json_is_null(json_object_get(u, "disabled_at")), "registered_at",
                json_object_get(u, "registered_at"), "disabled_at",
                json_object_get(u, "disabled_at"), "open_sessions", (json_int_t)open);
            json_dumpf(line, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(line);
            continue;
        }
        snprintf(name, sizeof(name), "%s %s", json_string_value(json_object_get(u, "first_name")),
                 json_string_value(json_object_get(u, "last_name")));
        cw_cli_format_time(json_integer_value(json_object_get(u, "registered_at")), when,
                           sizeof(when));
        printf("%-*s  %-*s  %-8s  %8lld  %-20s  %s\n", (int)w_email,
               json_string_value(json_object_get(u, "email")), (int)w_name, name, status_of(u),
               (long long)open, when, json_string_value(json_object_get(u, "user_uuid")));
    }
}

static int list(struct user_options *o)
{
    struct cw_error err = {0};
    struct cw_domain *d = NULL;
    struct cw_store *s = NULL;
    json_t *rows = NULL;
    int rc = cw_cli_open_reader(&o->c, &d, &s, &err);
    if (!rc)
        rc = cw_accounts_list_users(cw_store_writer(s), &rows, &err);
    if (!rc)
        print_users(rows, !strcmp(o->format, "jsonl"));
    json_decref(rows);
    cw_store_close(s);
    cw_domain_free(d);
    if (!rc && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cw_error_set(&err, CW_ERR_SYSTEM, NULL, "cannot write to standard output");
    return rc ? cw_cli_fail(&err) : 0;
}

int cw_cli_user(int argc, char **argv)
{
    struct user_options o = {0};
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&o.c),
        CW_CLI_QUEUE_OPTION(&o.c),
        {"email", CW_OPT_STRING, &o.email, NULL, 0, 0, "EMAIL",
         "the user's email (add, passwd, disable, enable)"},
        {"first", CW_OPT_STRING, &o.first, NULL, 0, 0, "NAME", "first name (add)"},
        {"last", CW_OPT_STRING, &o.last, NULL, 0, 0, "NAME", "last name (add)"},
        {"password-file", CW_OPT_STRING, &o.password_file, NULL, 0, 0, "FILE",
         "read the password from FILE instead of stdin (add, passwd)"},
        {"format", CW_OPT_STRING, &o.format, "table", 0, 0, "FMT", "table or jsonl (list)"},
        {0},
    };
    struct cw_strlist pos = {0};
    int code;
    if (!cw_cli_parse(usage, opts, argc, argv, &pos, &code))
        return code;
    const char *action = pos.n == 1 ? pos.items[0] : "";
    bool needs_email = strcmp(action, "list") != 0;
    bool bad = (needs_email && !o.email) || (!strcmp(action, "add") && (!o.first || !o.last)) ||
               (strcmp(o.format, "table") && strcmp(o.format, "jsonl"));
    if (bad) {
        fprintf(stderr, "%s\n", usage);
        return 2;
    }
    json_t *data = needs_email ? json_pack("{s:s}", "email", o.email) : NULL;
    if (!strcmp(action, "add")) {
        json_object_set_new(data, "first_name", json_string(o.first));
        json_object_set_new(data, "last_name", json_string(o.last));
        return with_password(&o, "user add", "register-user", data);
    }
    if (!strcmp(action, "passwd"))
        return with_password(&o, "user passwd", "change-password", data);
    if (!strcmp(action, "disable"))
        return run(&o, "user disable", "disable-user", data);
    if (!strcmp(action, "enable"))
        return run(&o, "user enable", "enable-user", data);
    if (!strcmp(action, "list"))
        return list(&o);
    json_decref(data);
    fprintf(stderr, "calderwood: unknown user subcommand '%s'\n%s\n", action, usage);
    return 2;
}
