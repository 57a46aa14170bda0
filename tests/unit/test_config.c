/*
 * test_config.c - option tables (src/core/config.h): defaults, the
 * configuration file, CW_* environment variables and the command line, in
 * that order of precedence; value parsing and its error messages; --help;
 * positional arguments; usage text.
 */
#include "core/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* The targets one option table fills. */
struct vals {
    const char *data;
    const char *log_level;
    const char *tls_key; /* no default */
    int64_t max_batch;
    int64_t offset;
    bool verbose;
    bool quiet; /* default yes */
    struct cw_strlist modules;
};

#define N_OPTS 8

static void make_opts(struct vals *v, struct cw_option opts[N_OPTS + 1])
{
    struct cw_option table[N_OPTS + 1] = {
        {"data", CW_OPT_STRING, &v->data, "./data", 0, 0, "DIR", "the data directory"},
        {"log-level", CW_OPT_STRING, &v->log_level, "info", 0, 0, "LEVEL", "how much to log"},
        {"tls-key", CW_OPT_STRING, &v->tls_key, NULL, 0, 0, "FILE", "the certificate's key"},
        {"max-batch", CW_OPT_INT, &v->max_batch, "2048", 1, 65536, "N", "commands per batch"},
        {"offset", CW_OPT_INT, &v->offset, "-7", -100, 100, "N", "a signed number"},
        {"verbose", CW_OPT_BOOL, &v->verbose, "no", 0, 0, NULL, "say more"},
        {"quiet", CW_OPT_BOOL, &v->quiet, "yes", 0, 0, NULL, "say less"},
        {"module", CW_OPT_LIST, &v->modules, NULL, 0, 0, "PATH", "load a domain module"},
        {0},
    };
    memcpy(opts, table, sizeof(table));
}

static const char *const env_names[] = {
    "CW_CONFIG", "CW_DATA",    "CW_LOG_LEVEL", "CW_TLS_KEY", "CW_MAX_BATCH",
    "CW_OFFSET", "CW_VERBOSE", "CW_QUIET",     "CW_MODULE",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

/* Per test: a clean environment, zeroed targets, an optional config file. */
struct fixture {
    struct vals v;
    struct cw_option opts[N_OPTS + 1];
    struct cw_strlist pos;
    struct cw_error err;
    char path[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    clear_env();
    make_opts(&f->v, f->opts);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cw_config_release();
    clear_env();
    if (f->path[0])
        unlink(f->path);
    free(f);
    return 0;
}

/* Writes text to a new temporary file; its name goes to f->path. */
static const char *write_file(struct fixture *f, const char *text)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(f->path, sizeof(f->path), "%s/cw-config-XXXXXX", tmp ? tmp : "/tmp");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return f->path;
}

/* Runs cw_config_load on argv = {"calderwood", "serve", args...}, first = 2. */
static int load(struct fixture *f, struct cw_strlist *pos, ...)
{
    char *argv[32] = {"calderwood", "serve"};
    int argc = 2;
    va_list ap;
    va_start(ap, pos);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(&f->err, 0, sizeof(f->err));
    return cw_config_load(f->opts, argc, argv, 2, pos, &f->err);
}

static void assert_message(struct fixture *f, const char *expected)
{
    if (strcmp(f->err.message, expected) != 0)
        fail_msg("message\n  got:      '%s'\n  expected: '%s'", f->err.message, expected);
}

static void assert_message_has(struct fixture *f, const char *part)
{
    if (!strstr(f->err.message, part))
        fail_msg("message '%s' does not mention '%s'", f->err.message, part);
}

static void test_defaults(void **state)
{
    struct fixture *f = *state;
    f->v.tls_key = "untouched";
    assert_int_equal(load(f, NULL, NULL), CW_OK);
    assert_string_equal(f->v.data, "./data");
    assert_string_equal(f->v.log_level, "info");
    assert_string_equal(f->v.tls_key, "untouched"); /* no default: left alone */
    assert_int_equal(f->v.max_batch, 2048);
    assert_int_equal(f->v.offset, -7);
    assert_false(f->v.verbose);
    assert_true(f->v.quiet);
    assert_int_equal(f->v.modules.n, 0);
}

static void test_bad_default(void **state)
{
    struct fixture *f = *state;
    f->opts[3].def = "70000"; /* max-batch is 1..65536 */
    assert_int_equal(load(f, NULL, NULL), CW_ERR_INVALID);
    assert_message(f, "default: max-batch must be between 1 and 65536, not 70000");
}

static const char sample_file[] = "# Calderwood configuration\n"
                                  "\n"
                                  "data /srv/calderwood\n"
                                  "   # an indented comment\n"
                                  "log-level\t  debug   \n"
                                  "\n"
                                  "max-batch 512\n"
                                  "offset -42\n"
                                  "verbose\n"
                                  "quiet no\n"
                                  "module one.so\n"
                                  "  module   two.so  \n"
                                  "tls-key /etc/key with spaces.pem\n";

static void check_sample_file(struct fixture *f)
{
    assert_string_equal(f->v.data, "/srv/calderwood");
    assert_string_equal(f->v.log_level, "debug");
    assert_string_equal(f->v.tls_key, "/etc/key with spaces.pem");
    assert_int_equal(f->v.max_batch, 512);
    assert_int_equal(f->v.offset, -42);
    assert_true(f->v.verbose); /* a bare name is "yes" */
    assert_false(f->v.quiet);
    assert_int_equal(f->v.modules.n, 2);
    assert_string_equal(f->v.modules.items[0], "one.so");
    assert_string_equal(f->v.modules.items[1], "two.so");
}

static void test_file(void **state)
{
    struct fixture *f = *state;
    const char *path = write_file(f, sample_file);
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_OK);
    /* Values are copies: they outlive the file. */
    unlink(path);
    f->path[0] = '\0';
    check_sample_file(f);
}

static void test_file_from_env(void **state)
{
    struct fixture *f = *state;
    setenv("CW_CONFIG", write_file(f, sample_file), 1);
    assert_int_equal(load(f, NULL, NULL), CW_OK);
    check_sample_file(f);
}

static void test_file_config_equals(void **state)
{
    struct fixture *f = *state;
    char arg[300];
    snprintf(arg, sizeof(arg), "--config=%s", write_file(f, sample_file));
    assert_int_equal(load(f, NULL, arg, NULL), CW_OK);
    check_sample_file(f);
}

static void test_file_unknown_option(void **state)
{
    struct fixture *f = *state;
    const char *path = write_file(f, "# comment\n"
                                     "\n"
                                     "data /x\n"
                                     "max-batches 10\n"
                                     "log-level debug\n");
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_ERR_INVALID);
    char expected[400];
    snprintf(expected, sizeof(expected), "%s:4: unknown option 'max-batches'", path);
    assert_message(f, expected);
}

static void test_file_bad_values(void **state)
{
    struct fixture *f = *state;
    const char *path = write_file(f, "data /x\n\nmax-batch 0\n");
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_ERR_INVALID);
    char expected[400];
    snprintf(expected, sizeof(expected), "%s:3: max-batch must be between 1 and 65536, not 0",
             path);
    assert_message(f, expected);
    cw_config_release();
    unlink(path);

    path = write_file(f, "verbose maybe\n");
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_ERR_INVALID);
    snprintf(expected, sizeof(expected), "%s:1: verbose must be yes or no, not 'maybe'", path);
    assert_message(f, expected);
    cw_config_release();
    unlink(path);

    path = write_file(f, "offset ten\n");
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_ERR_INVALID);
    snprintf(expected, sizeof(expected), "%s:1: offset must be an integer, not 'ten'", path);
    assert_message(f, expected);
}

static void test_file_missing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, NULL, "--config", "/nonexistent/calderwood.conf", NULL),
                     CW_ERR_INVALID);
    assert_message_has(f, "/nonexistent/calderwood.conf");
}

/*
 * A value longer than any fixed line buffer (a long list of origins, say) is
 * either read whole or refused on its own line; it must not be cut short
 * with the remainder taken for the next line.
 */
static void test_file_long_line(void **state)
{
    struct fixture *f = *state;
    enum { LONG = 5000 };
    char *text = malloc(LONG + 64);
    strcpy(text, "data ");
    memset(text + 5, 'a', LONG);
    strcpy(text + 5 + LONG, "\nlog-level debug\n");
    const char *path = write_file(f, text);
    free(text);
    int rc = load(f, NULL, "--config", path, NULL);
    if (rc == CW_OK) {
        assert_int_equal(strlen(f->v.data), LONG);
        assert_string_equal(f->v.log_level, "debug");
    } else {
        char where[300];
        snprintf(where, sizeof(where), "%s:1: ", path);
        if (strncmp(f->err.message, where, strlen(where)) != 0)
            fail_msg("a %d-byte line gave rc %d and '%.120s...'", LONG, rc, f->err.message);
    }
}

static void test_env_overrides_file(void **state)
{
    struct fixture *f = *state;
    const char *path = write_file(f, "max-batch 10\nlog-level debug\ndata /from-file\n");
    setenv("CW_MAX_BATCH", "20", 1);
    setenv("CW_LOG_LEVEL", "warn", 1);
    setenv("CW_VERBOSE", "true", 1);
    setenv("CW_TLS_KEY", "/env/key.pem", 1);
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_OK);
    assert_int_equal(f->v.max_batch, 20);
    assert_string_equal(f->v.log_level, "warn");
    assert_string_equal(f->v.data, "/from-file"); /* not in the environment */
    assert_string_equal(f->v.tls_key, "/env/key.pem");
    assert_true(f->v.verbose);
    assert_int_equal(f->v.offset, -7); /* default: neither file nor environment */
}

static void test_env_errors(void **state)
{
    struct fixture *f = *state;
    setenv("CW_MAX_BATCH", "65537", 1);
    assert_int_equal(load(f, NULL, NULL), CW_ERR_INVALID);
    assert_message(f, "CW_MAX_BATCH: max-batch must be between 1 and 65536, not 65537");
    unsetenv("CW_MAX_BATCH");
    cw_config_release();

    setenv("CW_QUIET", "sometimes", 1);
    assert_int_equal(load(f, NULL, NULL), CW_ERR_INVALID);
    assert_message(f, "CW_QUIET: quiet must be yes or no, not 'sometimes'");
}

static void test_flags_override_both(void **state)
{
    struct fixture *f = *state;
    const char *path = write_file(f, "max-batch 10\nlog-level debug\noffset 5\nverbose\n");
    setenv("CW_MAX_BATCH", "20", 1);
    setenv("CW_LOG_LEVEL", "warn", 1);
    setenv("CW_OFFSET", "6", 1);
    assert_int_equal(load(f, NULL, "--max-batch", "30", "--log-level=error", "--config", path,
                          "--offset", "-99", "--verbose=no", NULL),
                     CW_OK);
    assert_int_equal(f->v.max_batch, 30);
    assert_string_equal(f->v.log_level, "error");
    assert_int_equal(f->v.offset, -99);
    assert_false(f->v.verbose);
}

static void test_later_flag_wins(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(
        load(f, NULL, "--data", "/a", "--data=/b", "--max-batch=3", "--max-batch", "4", NULL),
        CW_OK);
    assert_string_equal(f->v.data, "/b");
    assert_int_equal(f->v.max_batch, 4);
}

static void test_bool_flags(void **state)
{
    struct fixture *f = *state;
    struct cw_strlist pos = {0};
    /* A bool flag takes no value: the next argument is not consumed. */
    assert_int_equal(load(f, &pos, "--verbose", "no", NULL), CW_OK);
    assert_true(f->v.verbose);
    assert_int_equal(pos.n, 1);
    assert_string_equal(pos.items[0], "no");
    cw_config_release();

    static const char *const yes[] = {"yes", "true", "1"};
    static const char *const no[] = {"no", "false", "0"};
    for (int i = 0; i < 3; i++) {
        char on[64], off[64];
        snprintf(on, sizeof(on), "--verbose=%s", yes[i]);
        snprintf(off, sizeof(off), "--quiet=%s", no[i]);
        f->v.verbose = false;
        f->v.quiet = true;
        assert_int_equal(load(f, NULL, on, off, NULL), CW_OK);
        assert_true(f->v.verbose);
        assert_false(f->v.quiet);
        cw_config_release();
    }
    assert_int_equal(load(f, NULL, "--quiet=off", NULL), CW_ERR_INVALID);
    assert_message(f, "command line: quiet must be yes or no, not 'off'");
}

static void test_list_repeated(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, NULL, "--module", "a.so", "--module=b.so", "--data", "/d", "--module",
                          "c.so", NULL),
                     CW_OK);
    assert_int_equal(f->v.modules.n, 3);
    assert_string_equal(f->v.modules.items[0], "a.so");
    assert_string_equal(f->v.modules.items[1], "b.so");
    assert_string_equal(f->v.modules.items[2], "c.so");
    assert_string_equal(f->v.data, "/d");
}

static void test_list_many(void **state)
{
    /* Enough items to move the array several times (ASan checks the bookkeeping). */
    struct fixture *f = *state;
    char *argv[2 + 2 * 200];
    char names[200][16];
    int argc = 0;
    argv[argc++] = "calderwood";
    argv[argc++] = "serve";
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof(names[i]), "m%d.so", i);
        argv[argc++] = "--module";
        argv[argc++] = names[i];
    }
    assert_int_equal(cw_config_load(f->opts, argc, argv, 2, NULL, &f->err), CW_OK);
    assert_int_equal(f->v.modules.n, 200);
    for (int i = 0; i < 200; i++)
        assert_string_equal(f->v.modules.items[i], names[i]);
}

static void test_int_parsing(void **state)
{
    struct fixture *f = *state;
    /* Bounds are inclusive; negative values work with and without '='. */
    assert_int_equal(load(f, NULL, "--max-batch", "1", "--offset", "-100", NULL), CW_OK);
    assert_int_equal(f->v.max_batch, 1);
    assert_int_equal(f->v.offset, -100);
    assert_int_equal(load(f, NULL, "--max-batch=65536", "--offset=100", NULL), CW_OK);
    assert_int_equal(f->v.max_batch, 65536);
    assert_int_equal(f->v.offset, 100);
    cw_config_release();

    struct {
        const char *arg, *message;
    } bad[] = {
        {"--max-batch=0", "command line: max-batch must be between 1 and 65536, not 0"},
        {"--max-batch=65537", "command line: max-batch must be between 1 and 65536, not 65537"},
        {"--max-batch=-1", "command line: max-batch must be between 1 and 65536, not -1"},
        {"--offset=-101", "command line: offset must be between -100 and 100, not -101"},
        {"--max-batch=abc", "command line: max-batch must be an integer, not 'abc'"},
        {"--max-batch=12x", "command line: max-batch must be an integer, not '12x'"},
        {"--max-batch=", "command line: max-batch must be an integer, not ''"},
        {"--max-batch=1.5", "command line: max-batch must be an integer, not '1.5'"},
        {"--max-batch=99999999999999999999",
         "command line: max-batch must be an integer, not '99999999999999999999'"},
        {"--offset=-99999999999999999999",
         "command line: offset must be an integer, not '-99999999999999999999'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(f, NULL, bad[i].arg, NULL), CW_ERR_INVALID);
        assert_message(f, bad[i].message);
        cw_config_release();
    }
}

static void test_unknown_and_missing_value(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, NULL, "--max-batches", "3", NULL), CW_ERR_INVALID);
    assert_message(f, "unknown option '--max-batches' (see --help)");
    assert_int_equal(load(f, NULL, "--nope=3", NULL), CW_ERR_INVALID);
    assert_message(f, "unknown option '--nope' (see --help)");
    /* A prefix of an option name is not that option. */
    assert_int_equal(load(f, NULL, "--max", "3", NULL), CW_ERR_INVALID);
    assert_message(f, "unknown option '--max' (see --help)");
    assert_int_equal(load(f, NULL, "--max-batch", NULL), CW_ERR_INVALID);
    assert_message(f, "option --max-batch needs a value");
    assert_int_equal(load(f, NULL, "--data", NULL), CW_ERR_INVALID);
    assert_message(f, "option --data needs a value");
}

static void test_help(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, NULL, "--help", NULL), CW_ERR_NOT_FOUND);
    assert_int_equal(load(f, NULL, "-h", NULL), CW_ERR_NOT_FOUND);
    assert_int_equal(load(f, NULL, "--data", "/x", "--verbose", "--help", "--max-batch", "5", NULL),
                     CW_ERR_NOT_FOUND);
}

static void test_positional(void **state)
{
    struct fixture *f = *state;
    struct cw_strlist pos = {0};
    assert_int_equal(
        load(f, &pos, "first", "--max-batch", "9", "second", "--verbose", "third", "-", "-x", NULL),
        CW_OK);
    assert_int_equal(f->v.max_batch, 9);
    assert_true(f->v.verbose);
    assert_int_equal(pos.n, 5);
    assert_string_equal(pos.items[0], "first");
    assert_string_equal(pos.items[1], "second");
    assert_string_equal(pos.items[2], "third");
    assert_string_equal(pos.items[3], "-");
    assert_string_equal(pos.items[4], "-x");
    cw_config_release();

    /* Without a list to collect them, positional arguments are refused. */
    assert_int_equal(load(f, NULL, "--max-batch", "9", "stray", NULL), CW_ERR_INVALID);
    assert_message(f, "unexpected argument 'stray'");
}

static void test_first_skips_leading_argv(void **state)
{
    struct fixture *f = *state;
    char *argv[] = {"calderwood", "--bogus", "serve", "--max-batch", "7", NULL};
    assert_int_equal(cw_config_load(f->opts, 5, argv, 3, NULL, &f->err), CW_OK);
    assert_int_equal(f->v.max_batch, 7);
}

static void test_config_anywhere(void **state)
{
    struct fixture *f = *state;
    struct cw_strlist pos = {0};
    const char *path = write_file(f, "max-batch 10\nlog-level debug\n");
    /* --config after the flags and positionals: still read first, so the flag wins. */
    assert_int_equal(load(f, &pos, "--max-batch", "11", "one", "--config", path, "two", NULL),
                     CW_OK);
    assert_int_equal(f->v.max_batch, 11);
    assert_string_equal(f->v.log_level, "debug");
    /* Neither --config nor its value is a positional argument. */
    assert_int_equal(pos.n, 2);
    assert_string_equal(pos.items[0], "one");
    assert_string_equal(pos.items[1], "two");
}

static void test_config_flag_overrides_env(void **state)
{
    struct fixture *f = *state;
    setenv("CW_CONFIG", "/nonexistent/from-env.conf", 1);
    const char *path = write_file(f, "max-batch 10\n");
    assert_int_equal(load(f, NULL, "--config", path, NULL), CW_OK);
    assert_int_equal(f->v.max_batch, 10);
}

static void test_config_without_value(void **state)
{
    /* Like every other option, --config at the end of argv needs its value. */
    struct fixture *f = *state;
    assert_int_equal(load(f, NULL, "--max-batch", "5", "--config", NULL), CW_ERR_INVALID);
    assert_message_has(f, "--config");
}

static void test_usage(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    cw_config_usage(out, f->opts);
    fclose(out);
    assert_non_null(text);

    for (const struct cw_option *o = f->opts; o->name; o++) {
        /* One line per option: its flag (with metavar), its help, its default. */
        char flag[128];
        snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        const char *line = strstr(text, flag);
        if (!line)
            fail_msg("usage does not mention %s:\n%s", flag, text);
        const char *eol = strchr(line, '\n');
        assert_non_null(eol);
        char buf[512];
        snprintf(buf, sizeof(buf), "%.*s", (int)(eol - line), line);
        if (!strstr(buf, o->help))
            fail_msg("usage line '%s' lacks the help text", buf);
        if (o->def && o->type != CW_OPT_BOOL) {
            char def[128];
            snprintf(def, sizeof(def), "(default %s)", o->def);
            if (!strstr(buf, def))
                fail_msg("usage line '%s' lacks '%s'", buf, def);
        }
        if (!o->def && strstr(buf, "default"))
            fail_msg("usage line '%s' shows a default the option does not have", buf);
        if (o->type == CW_OPT_INT) {
            char bounds[128];
            snprintf(bounds, sizeof(bounds), "%lld..%lld", (long long)o->min, (long long)o->max);
            if (!strstr(buf, bounds))
                fail_msg("usage line '%s' lacks the bounds %s", buf, bounds);
        }
    }
    assert_non_null(strstr(text, "--config FILE"));
    assert_non_null(strstr(text, "CW_"));
    free(text);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_bad_default),
        T(test_file),
        T(test_file_from_env),
        T(test_file_config_equals),
        T(test_file_unknown_option),
        T(test_file_bad_values),
        T(test_file_missing),
        T(test_file_long_line),
        T(test_env_overrides_file),
        T(test_env_errors),
        T(test_flags_override_both),
        T(test_later_flag_wins),
        T(test_bool_flags),
        T(test_list_repeated),
        T(test_list_many),
        T(test_int_parsing),
        T(test_unknown_and_missing_value),
        T(test_help),
        T(test_positional),
        T(test_first_skips_leading_argv),
        T(test_config_anywhere),
        T(test_config_flag_overrides_env),
        T(test_config_without_value),
        T(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
