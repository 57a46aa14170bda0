/*
 * registry.h - the domain registry: commands, events, queries, migrations.
 *
 * struct cw_domain is filled at start-up (built-in queries, the example
 * domain, --module objects) and read-only afterwards, so every thread may
 * look names up without a lock. Lookups are O(1) hash-map probes.
 */
#ifndef CW_REGISTRY_H
#define CW_REGISTRY_H

#include "calderwood.h"
#include "strmap.h"

struct cw_migration_entry {
    char *id; /* "namespace:id", owned */
    const char *sql;
    const char *sql_pg; /* PostgreSQL's variant, or NULL */
};

struct cw_domain {
    struct cw_strmap commands, events, queries;
    /* Registration order, for describe and for applying migrations. */
    const struct cw_command_def **command_list;
    const struct cw_query_def **query_list;
    const struct cw_event_def **event_list;
    size_t n_commands, n_queries, n_events;
    struct cw_migration_entry *migrations;
    size_t n_migrations;
    void **modules; /* dlopen handles, closed by cw_domain_free */
    size_t n_modules;
};

struct cw_domain *cw_domain_new(void);
void cw_domain_free(struct cw_domain *d);

const struct cw_command_def *cw_domain_command(const struct cw_domain *d, const char *name);
const struct cw_event_def *cw_domain_event(const struct cw_domain *d, const char *name);
const struct cw_query_def *cw_domain_query(const struct cw_domain *d, const char *name);

/*
 * Loads a domain module from a shared object and calls its cw_module_init.
 * Returns CW_ERR_NOT_FOUND (no file or no entry point) or the init's result,
 * with a message in err naming the path.
 */
int cw_domain_load_module(struct cw_domain *d, const char *path, struct cw_error *err);

/*
 * Brings an event read from the log to its definition's current version.
 * Takes ownership of *data and replaces it; sets *version. Events without a
 * definition, or newer than it, are left as they are.
 */
void cw_domain_upcast(const struct cw_domain *d, const char *name, int *version, json_t **data);

/* May user_uuid see ev? (the audience rules of PROTOCOL.md). */
bool cw_domain_audience_allows(const struct cw_event_def *def, const struct cw_event *ev,
                               const char *user_uuid);

#endif
