/*
 * bad_migration.c - a module whose second migration fails, for the test
 * that start-up stops with a clear message and changes nothing.
 */
#include "calderwood.h"

static const struct cw_migration good = {
    .id = "001-table",
    .sql = "CREATE TABLE bad_module_rows (id INTEGER PRIMARY KEY);",
};
static const struct cw_migration bad = {
    .id = "002-broken",
    .sql = "CREATE TABLE bad_module_more (id INTEGER PRIMARY KEY);"
           "INSERT INTO no_such_table VALUES (1);",
};

int cw_module_init(struct cw_domain *d)
{
    int rc = cw_domain_add_migration(d, "badmod", &good);
    return rc ? rc : cw_domain_add_migration(d, "badmod", &bad);
}
