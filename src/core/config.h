/*
 * config.h - one table of options per command, read from defaults, the
 * configuration file, the environment and the command line, in that order
 * (later wins).
 *
 * An option named "max-batch" is the flag --max-batch, the environment
 * variable CW_MAX_BATCH and the line `max-batch 4096` in calderwood.conf.
 * Integers are checked against their bounds wherever they come from.
 */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include "calderwood.h"

#include <stdio.h>

enum cw_opt_type {
    CW_OPT_STRING, /* target: const char ** (points into argv, env or a kept copy) */
    CW_OPT_INT,    /* target: int64_t * */
    CW_OPT_BOOL,   /* target: bool *; a flag without value; "yes/no/true/false/1/0" elsewhere */
    CW_OPT_LIST,   /* target: struct cw_strlist *; repeatable */
};

struct cw_strlist {
    const char **items;
    size_t n;
};

struct cw_option {
    const char *name;
    enum cw_opt_type type;
    void *target;
    const char *def; /* default as text; NULL = unset */
    int64_t min, max;
    const char *metavar; /* "DIR", "N" ... for --help */
    const char *help;
};

/*
 * Fills every target from opts (terminated by a zeroed entry): defaults,
 * then the file named by --config (or $CW_CONFIG; none by default), then
 * CW_* variables, then argv[first..]. Positional arguments are collected
 * into positional (may be NULL: then they are an error). Returns CW_OK, or
 * CW_ERR_INVALID with a one-line message; "--help" returns CW_ERR_NOT_FOUND
 * so the caller prints usage and exits 0.
 */
int cw_config_load(const struct cw_option *opts, int argc, char **argv, int first,
                   struct cw_strlist *positional, struct cw_error *err);

/* Prints the options with metavar, default and help, one per line, then --config. */
void cw_config_usage(FILE *out, const struct cw_option *opts);

/*
 * Writes o's help text with its default and bounds ("commands per write
 * transaction at most (default 2048) [1..65536]") into buf, truncated to len:
 * the words --help and the manual page both print.
 */
void cw_config_describe(const struct cw_option *o, char *buf, size_t len);

/* --config FILE, which every table has without listing it (no target). */
extern const struct cw_option cw_config_file_option;

/* The line --help and the manual page print about the environment. */
extern const char cw_config_env_help[];

/* Frees what cw_config_load kept (copies of file values, list arrays). */
void cw_config_release(void);

#endif
