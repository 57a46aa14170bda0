/*
 * main.c - `calderwood <subcommand>`: dispatch only; each subcommand lives
 * in src/cli/. `calderwood man` (the build's manual page generator, see
 * src/cli/man.c) walks this same table and is deliberately not listed.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const struct cw_cli_subcommand subcommands[] = {
    {"serve", cw_cli_serve, "run the server"},
    {"user", cw_cli_user, "add, list, disable or enable users, change a password"},
    {"session", cw_cli_session, "list open sessions, end one or all of a user's"},
    {"events", cw_cli_events, "export the event log as JSON Lines or CSV"},
    {"replay", cw_cli_replay, "rebuild every projection from the log into a new database"},
    {"migrate", cw_cli_migrate, "apply pending schema migrations and exit"},
    {"backup", cw_cli_backup, "copy the database while the server runs (SQLite)"},
    {"check", cw_cli_check, "verify a database: integrity, log, projections, migrations"},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: calderwood <subcommand> [options]   (calderwood <subcommand> --help)\n"
                 "       calderwood --version\n\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, 2);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return usage(stdout, 0);
    if (!strcmp(argv[1], "--version"))
        return cw_cli_version();
    if (!strcmp(argv[1], "man"))
        return cw_cli_man(subcommands, N_SUBCOMMANDS);
    for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
        if (!strcmp(argv[1], subcommands[i].name)) {
            int rc = subcommands[i].run(argc - 1, argv + 1);
            cw_config_release();
            return rc;
        }
    }
    fprintf(stderr, "calderwood: unknown subcommand '%s'\n", argv[1]);
    return usage(stderr, 2);
}
