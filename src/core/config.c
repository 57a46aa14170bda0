/*
 * config.c - option tables (see config.h). Values read from the file are
 * copied and kept until cw_config_release(); argv and environment strings
 * are used in place.
 */
#include "config.h"
#include "alloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char **kept; /* copies of configuration-file values */
static size_t n_kept;
static const char ***lists; /* item arrays of list options */
static size_t n_lists;

static const char *keep(const char *s)
{
    kept = cw_xrealloc(kept, (n_kept + 1) * sizeof(*kept));
    return kept[n_kept++] = cw_xstrdup(s);
}

void cw_config_release(void)
{
    for (size_t i = 0; i < n_kept; i++)
        free(kept[i]);
    free(kept);
    for (size_t i = 0; i < n_lists; i++)
        free(lists[i]);
    free(lists);
    kept = NULL;
    lists = NULL;
    n_kept = n_lists = 0;
}

static void list_push(struct cw_strlist *l, const char *s)
{
    const char **old = l->items;
    l->items = cw_xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n++] = s;
    if (!old) {
        lists = cw_xrealloc(lists, (n_lists + 1) * sizeof(*lists));
        lists[n_lists++] = l->items;
    } else {
        for (size_t i = 0; i < n_lists; i++)
            if (lists[i] == old)
                lists[i] = l->items;
    }
}

static int set(const struct cw_option *o, const char *value, const char *where,
               struct cw_error *err)
{
    switch (o->type) {
    case CW_OPT_STRING:
        *(const char **)o->target = value;
        return CW_OK;
    case CW_OPT_LIST:
        list_push(o->target, value);
        return CW_OK;
    case CW_OPT_BOOL:
        if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            *(bool *)o->target = true;
        else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            *(bool *)o->target = false;
        else
            return cw_error_set(err, CW_ERR_INVALID, NULL, "%s: %s must be yes or no, not '%s'",
                                where, o->name, value);
        return CW_OK;
    case CW_OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return cw_error_set(err, CW_ERR_INVALID, NULL, "%s: %s must be an integer, not '%s'",
                                where, o->name, value);
        if (v < o->min || v > o->max)
            return cw_error_set(err, CW_ERR_INVALID, NULL,
                                "%s: %s must be between %lld and %lld, not %lld", where, o->name,
                                (long long)o->min, (long long)o->max, v);
        *(int64_t *)o->target = v;
        return CW_OK;
    }
    }
    return CW_ERR_INVALID;
}

static const struct cw_option *find(const struct cw_option *opts, const char *name, size_t len)
{
    for (const struct cw_option *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int load_file(const struct cw_option *opts, const char *path, struct cw_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cw_error_set(err, CW_ERR_INVALID, NULL, "cannot read %s: %s", path, strerror(errno));
    char line[4096];
    int rc = CW_OK, lineno = 0;
    while (!rc && fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = line, *end = line + strlen(line);
        if (end - line == (long)sizeof(line) - 1 && end[-1] != '\n' && !feof(f)) {
            rc = cw_error_set(err, CW_ERR_INVALID, NULL, "%s:%d: line longer than %zu bytes", path,
                              lineno, sizeof(line) - 2);
            break;
        }
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *name = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - name);
        while (isspace((unsigned char)*p))
            p++;
        char where[300];
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        const struct cw_option *o = find(opts, name, len);
        if (!o)
            rc = cw_error_set(err, CW_ERR_INVALID, NULL, "%s: unknown option '%.*s'", where,
                              (int)len, name);
        else
            rc = set(o, keep(*p ? p : "yes"), where, err);
    }
    fclose(f);
    return rc;
}

static void env_name(const char *name, char *out, size_t len)
{
    size_t i = 0;
    i += (size_t)snprintf(out, len, "CW_");
    for (; *name && i + 1 < len; name++)
        out[i++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    out[i] = '\0';
}

int cw_config_load(const struct cw_option *opts, int argc, char **argv, int first,
                   struct cw_strlist *positional, struct cw_error *err)
{
    int rc;
    /* --help wins over any error in what else was given. */
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return CW_ERR_NOT_FOUND;
    for (const struct cw_option *o = opts; o->name; o++)
        if (o->def && (rc = set(o, o->def, "default", err)))
            return rc;
    const char *file = getenv("CW_CONFIG");
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc)
                return cw_error_set(err, CW_ERR_INVALID, NULL, "option --config needs a value");
            file = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            file = argv[i] + 9;
        }
    }
    if (file && (rc = load_file(opts, file, err)))
        return rc;
    for (const struct cw_option *o = opts; o->name; o++) {
        char name[128];
        env_name(o->name, name, sizeof(name));
        const char *v = getenv(name);
        if (v && (rc = set(o, v, name, err)))
            return rc;
    }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            if (!positional)
                return cw_error_set(err, CW_ERR_INVALID, NULL, "unexpected argument '%s'", a);
            list_push(positional, a);
            continue;
        }
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len == 6 && !strncmp(a + 2, "config", 6)) {
            i += !eq;
            continue;
        }
        const struct cw_option *o = find(opts, a + 2, len);
        if (!o)
            return cw_error_set(err, CW_ERR_INVALID, NULL, "unknown option '%.*s' (see --help)",
                                (int)len + 2, a);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->type == CW_OPT_BOOL)
            v = "yes";
        if (!v && i + 1 < argc)
            v = argv[++i];
        if (!v)
            return cw_error_set(err, CW_ERR_INVALID, NULL, "option --%s needs a value", o->name);
        if ((rc = set(o, v, "command line", err)))
            return rc;
    }
    return CW_OK;
}

const struct cw_option cw_config_file_option = {
    "config", CW_OPT_STRING,
    NULL,     NULL,
    0,        0,
    "FILE",   "read options from FILE (`name value` lines)",
};

const char cw_config_env_help[] = "every option also reads CW_<NAME> from the environment";

void cw_config_describe(const struct cw_option *o, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s", o->help);
    if (o->def && o->type != CW_OPT_BOOL && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " (default %s)", o->def);
    if (o->type == CW_OPT_INT && (o->min || o->max) && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " [%lld..%lld]", (long long)o->min, (long long)o->max);
}

static void usage_line(FILE *out, const struct cw_option *o)
{
    char flag[96], text[1024];
    snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
    cw_config_describe(o, text, sizeof(text));
    fprintf(out, "  %-28s %s\n", flag, text);
}

void cw_config_usage(FILE *out, const struct cw_option *opts)
{
    for (const struct cw_option *o = opts; o->name; o++)
        usage_line(out, o);
    usage_line(out, &cw_config_file_option);
    fprintf(out, "  %-28s %s\n", "", cw_config_env_help);
}
