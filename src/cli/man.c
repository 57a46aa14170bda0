/*
 * man.c - `calderwood man`: the manual page calderwood(1) in roff, printed
 * to stdout at build time (make writes build/calderwood.1 with it). Each
 * subcommand is run with --help under a describer (cli.h), so its section
 * is made from the very option table its --help prints: the page cannot
 * list a flag the binary lacks or miss one it has. Not listed in usage.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#ifndef CW_VERSION
#define CW_VERSION "unknown"
#endif

/* Text for roff: backslashes escaped, `code` in bold, no line starting with a control character. */
static void text(const char *s)
{
    bool bold = false;
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '`')
            fputs((bold = !bold) ? "\\fB" : "\\fR", stdout);
        else
            putchar(*s);
    }
    if (bold)
        fputs("\\fR", stdout);
}

/* A literal a user types: as text, with each hyphen a real minus (\-) to copy and paste. */
static void literal(const char *s, size_t len)
{
    if (len && (*s == '.' || *s == '\''))
        fputs("\\&", stdout);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '-')
            fputs("\\-", stdout);
        else if (s[i] == '\\')
            fputs("\\e", stdout);
        else
            putchar(s[i]);
    }
}

static void option(const struct cw_option *o)
{
    char help[1024];
    cw_config_describe(o, help, sizeof(help));
    fputs(".TP\n\\fB\\-\\-", stdout);
    literal(o->name, strlen(o->name));
    fputs("\\fR", stdout);
    if (o->metavar) {
        fputs(" \\fI", stdout);
        literal(o->metavar, strlen(o->metavar));
        fputs("\\fR", stdout);
    }
    putchar('\n');
    text(help);
    putchar('\n');
}

/* The usage text's first line is the synopsis (without "usage: "); later lines are prose. */
static void on_describe(const char *usage, const struct cw_option *opts, void *arg)
{
    *(bool *)arg = true;
    if (!strncmp(usage, "usage: ", 7))
        usage += 7;
    size_t first = strcspn(usage, "\n");
    fputs(".PP\n.nf\n\\fB", stdout);
    literal(usage, first);
    fputs("\\fR\n.fi\n", stdout);
    if (usage[first]) {
        fputs(".PP\n", stdout);
        text(usage + first + 1);
        putchar('\n');
    }
    fputs(".PP\nOptions:\n", stdout);
    for (const struct cw_option *o = opts; o->name; o++)
        option(o);
    option(&cw_config_file_option);
}

static const char head[] =
    ".TH CALDERWOOD 1 \"\" \"calderwood " CW_VERSION "\" \"User Commands\"\n"
    ".SH NAME\n"
    "calderwood \\- event\\-sourced CQRS backend for web applications\n"
    ".SH SYNOPSIS\n"
    ".B calderwood\n"
    ".I subcommand\n"
    "[\\fIoptions\\fR]\n"
    ".br\n"
    ".B calderwood \\-\\-version\n"
    ".br\n"
    ".B calderwood \\-\\-help\n"
    ".SH DESCRIPTION\n"
    "Calderwood takes commands from web clients over WebSocket and HTTP, validates\n"
    "and queues them, turns each into events, and writes the events and the\n"
    "projections they imply in one SQLite transaction. The event log is never\n"
    "rewritten. Domains are built in or loaded as shared objects with\n"
    "\\fB\\-\\-module\\fR; their API is the header \\fIcalderwood.h\\fR\n"
    "(\\fBpkg\\-config \\-\\-cflags calderwood\\fR).\n"
    ".PP\n"
    "\\fB\\-\\-version\\fR prints the version, the git commit it was built from and\n"
    "the run\\-time versions of the libraries it uses.\n"
    ".SH SUBCOMMANDS\n";

static const char tail[] =
    ".SH CONFIGURATION\n"
    "Every option is read, in this order, later wins: its default, the file named\n"
    "by \\fB\\-\\-config\\fR or \\fBCW_CONFIG\\fR (lines \\fIname value\\fR;\n"
    "a boolean alone means yes; \\fB#\\fR starts a comment), the environment\n"
    "variable \\fBCW_\\fR\\fINAME\\fR (upper case, hyphens as underscores:\n"
    "\\fB\\-\\-max\\-batch\\fR is \\fBCW_MAX_BATCH\\fR), and the command line.\n"
    "Integers are checked against their bounds wherever they come from.\n"
    ".SH ENVIRONMENT\n"
    ".TP\n"
    ".B CW_CONFIG\n"
    "a configuration file to read when \\fB\\-\\-config\\fR is not given.\n"
    ".TP\n"
    ".BI CW_ NAME\n"
    "the option \\fB\\-\\-\\fR\\fIname\\fR.\n"
    ".TP\n"
    ".B NOTIFY_SOCKET\n"
    "set by systemd for \\fBType=notify\\fR: \\fBserve\\fR sends \\fBREADY=1\\fR\n"
    "once it listens and \\fBSTOPPING=1\\fR when a stop signal starts the drain.\n"
    ".SH FILES\n"
    ".TP\n"
    ".I DIR/calderwood.db\n"
    "the database (SQLite, WAL) in the data directory.\n"
    ".TP\n"
    ".I DIR/secret.key\n"
    "32 random bytes sealing session cookies, made with mode 0600 on first start.\n"
    ".TP\n"
    ".I PREFIX/share/calderwood/web\n"
    "the login page, the console and the client library \\fIstatic/calderwood.js\\fR,\n"
    "found beside the installed binary unless \\fB\\-\\-web\\-dir\\fR says otherwise.\n"
    ".TP\n"
    ".I PREFIX/etc/calderwood.conf\n"
    "the configuration the systemd unit \\fIcalderwood.service\\fR gives \\fBserve\\fR\n"
    "(\\fB\\-\\-config\\fR); installed once from the example below, never overwritten.\n"
    ".TP\n"
    ".I PREFIX/share/calderwood/calderwood.conf.example\n"
    "an example configuration file.\n"
    ".SH SIGNALS\n"
    "SIGTERM or SIGINT makes \\fBserve\\fR stop accepting, drain the command\n"
    "queue, deliver the last outcomes, close WebSockets with 1001 and exit 0.\n"
    ".SH \"EXIT STATUS\"\n"
    "0 on success, 1 on failure (one line on standard error), 2 on a usage error.\n"
    ".SH \"SEE ALSO\"\n"
    ".BR systemctl (1),\n"
    ".BR pkg\\-config (1)\n";

int cw_cli_man(const struct cw_cli_subcommand *subs, size_t n)
{
    fputs(head, stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(".SS ", stdout);
        literal(subs[i].name, strlen(subs[i].name));
        fputs("\n", stdout);
        text(subs[i].help);
        fputs(".\n", stdout);
        bool described = false;
        char help_flag[] = "--help";
        char *argv[] = {(char *)subs[i].name, help_flag, NULL};
        cw_cli_set_describer(on_describe, &described);
        int rc = subs[i].run(2, argv);
        cw_cli_set_describer(NULL, NULL);
        cw_config_release();
        if (rc || !described) {
            fprintf(stderr, "calderwood man: subcommand %s has no option table\n", subs[i].name);
            return 1;
        }
    }
    fputs(tail, stdout);
    return fflush(stdout) ? 1 : 0;
}
