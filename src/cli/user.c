/*
 * user.c - `calderwood user add`: registers a user through the command path
 * (the same register-user command a client sends), so the registration is an
 * event in the log like any other.
 */
#include "cli.h"
#include "core/registry.h"
#include "engine/engine.h"
#include "engine/update.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: calderwood user add --email E --first F --last L [--password-file FILE]\n"
    "The password is read from FILE, or else from the first line of standard input.";

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

int cw_cli_user(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    const char *email = NULL, *first = NULL, *last = NULL, *password_file = NULL;
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&c),
        {"email", CW_OPT_STRING, &email, NULL, 0, 0, "EMAIL", "the user's email (required)"},
        {"first", CW_OPT_STRING, &first, NULL, 0, 0, "NAME", "first name (required)"},
        {"last", CW_OPT_STRING, &last, NULL, 0, 0, "NAME", "last name (required)"},
        {"password-file", CW_OPT_STRING, &password_file, NULL, 0, 0, "FILE",
         "read the password from FILE instead of stdin"},
        {0},
    };
    struct cw_strlist pos = {0};
    int code;
    if (!cw_cli_parse(usage, opts, argc, argv, &pos, &code))
        return code;
    if (pos.n != 1 || strcmp(pos.items[0], "add") || !email || !first || !last) {
        fprintf(stderr, "%s\n", usage);
        return 2;
    }
    struct cw_error err = {0};
    char password[1100];
    struct cw_domain *d = NULL;
    struct cw_engine *e = NULL;
    int rc = cw_cli_prepare(&c, true, &err);
    if (!rc) /* the running server will take this command itself one day; for now, stop it */
        rc = cw_cli_lock(&c, "user add", &err);
    if (!rc)
        rc = read_password(password_file, password, sizeof(password), &err);
    if (!rc)
        rc = cw_cli_domain(&c, &d, &err);
    struct cw_engine_config cfg = {.db_path = c.db_path};
    if (!rc)
        rc = cw_engine_open(&cfg, d, &e, &err);
    struct cw_outcome o = {0};
    if (!rc)
        rc = cw_cli_run_command(e, d, "register-user", "",
                                json_pack("{s:s,s:s,s:s,s:s}", "email", email, "first_name", first,
                                          "last_name", last, "password", password),
                                &o, &err);
    memset(password, 0, sizeof(password));
    if (!rc && o.rejected)
        rc = cw_error_set(&err, CW_ERR_REJECTED, NULL, "%s (%s)", o.reject.message, o.reject.code);
    if (!rc && o.n_events) {
        json_t *frame = json_loads(o.events[0]->frame, 0, NULL);
        json_t *data = json_object_get(json_array_get(frame, 3), "data");
        printf("registered %s as user %s\n", json_string_value(json_object_get(data, "email")),
               json_string_value(json_object_get(data, "user_uuid")));
        json_decref(frame);
    }
    cw_outcome_release(&o);
    cw_engine_close(e);
    cw_domain_free(d);
    if (rc && err.details) {
        json_t *first_detail = json_array_get(err.details, 0);
        fprintf(stderr, "calderwood: %s %s\n",
                json_string_value(json_object_get(first_detail, "field")),
                json_string_value(json_object_get(first_detail, "reason")));
        cw_error_release(&err);
        return 1;
    }
    return rc ? cw_cli_fail(&err) : 0;
}
