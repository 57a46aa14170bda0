/*
 * migrate.c - `calderwood migrate`: applies pending migrations and exits.
 * `serve` does the same at start; this is for doing it ahead of a deploy.
 */
#include "cli.h"
#include "core/registry.h"
#include "store/store.h"

#include <stdio.h>

int cw_cli_migrate(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    const struct cw_option opts[] = {CW_CLI_COMMON_OPTIONS(&c), {0}};
    int code;
    if (!cw_cli_parse("usage: calderwood migrate [options]", opts, argc, argv, NULL, &code))
        return code;
    struct cw_error err = {0};
    struct cw_domain *d = NULL;
    struct cw_store *s = NULL;
    int applied = 0;
    int rc = cw_cli_prepare(&c, true, &err);
    if (!rc)
        rc = cw_cli_lock(&c, "migrate", &err);
    if (!rc)
        rc = cw_cli_domain(&c, &d, &err);
    if (!rc)
        rc = cw_store_open(c.db_path, NULL, &s, &err);
    if (!rc)
        rc = cw_store_migrate(s, d, &applied, &err);
    if (!rc)
        printf("applied %d migration%s to %s\n", applied, applied == 1 ? "" : "s", c.db_path);
    cw_store_close(s);
    cw_domain_free(d);
    return rc ? cw_cli_fail(&err) : 0;
}
