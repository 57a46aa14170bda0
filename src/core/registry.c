/*
 * registry.c - the domain registry (see registry.h) and module loading.
 */
#include "registry.h"
#include "alloc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_domain *cw_domain_new(void)
{
    struct cw_domain *d = cw_xcalloc(1, sizeof(*d));
    cw_strmap_init(&d->commands);
    cw_strmap_init(&d->events);
    cw_strmap_init(&d->queries);
    return d;
}

void cw_domain_free(struct cw_domain *d)
{
    if (!d)
        return;
    cw_strmap_release(&d->commands);
    cw_strmap_release(&d->events);
    cw_strmap_release(&d->queries);
    free(d->command_list);
    free(d->query_list);
    free(d->event_list);
    for (size_t i = 0; i < d->n_migrations; i++)
        free(d->migrations[i].id);
    free(d->migrations);
    for (size_t i = 0; i < d->n_modules; i++)
        dlclose(d->modules[i]);
    free(d->modules);
    free(d);
}

/* Appends p to a growing array of pointers. */
static void push(const void ***list, size_t *n, const void *p)
{
    *list = cw_xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = p;
}

static bool valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

int cw_domain_add_command(struct cw_domain *d, const struct cw_command_def *def)
{
    if (!def || !valid_name(def->name) || !def->handle)
        return CW_ERR_INVALID;
    if (cw_strmap_put(&d->commands, def->name, (void *)def))
        return CW_ERR_EXISTS;
    push((const void ***)&d->command_list, &d->n_commands, def);
    return CW_OK;
}

int cw_domain_add_event(struct cw_domain *d, const struct cw_event_def *def)
{
    if (!def || !valid_name(def->name) || def->version < 1 || (def->version > 1 && !def->upcast) ||
        (def->audience == CW_AUDIENCE_CUSTOM && !def->audience_fn))
        return CW_ERR_INVALID;
    if (cw_strmap_put(&d->events, def->name, (void *)def))
        return CW_ERR_EXISTS;
    push((const void ***)&d->event_list, &d->n_events, def);
    return CW_OK;
}

int cw_domain_add_query(struct cw_domain *d, const struct cw_query_def *def)
{
    if (!def || !valid_name(def->name) || !def->run)
        return CW_ERR_INVALID;
    if (cw_strmap_put(&d->queries, def->name, (void *)def))
        return CW_ERR_EXISTS;
    push((const void ***)&d->query_list, &d->n_queries, def);
    return CW_OK;
}

int cw_domain_add_migration(struct cw_domain *d, const char *ns, const struct cw_migration *m)
{
    if (!ns || !*ns || !m || !m->id || !*m->id || !m->sql)
        return CW_ERR_INVALID;
    size_t len = strlen(ns) + strlen(m->id) + 2;
    char *id = cw_xmalloc(len);
    snprintf(id, len, "%s:%s", ns, m->id);
    for (size_t i = 0; i < d->n_migrations; i++) {
        if (strcmp(d->migrations[i].id, id) == 0) {
            free(id);
            return CW_ERR_EXISTS;
        }
    }
    d->migrations = cw_xrealloc(d->migrations, (d->n_migrations + 1) * sizeof(*d->migrations));
    d->migrations[d->n_migrations++] =
        (struct cw_migration_entry){.id = id, .sql = m->sql, .sql_pg = m->sql_pg};
    return CW_OK;
}

const struct cw_command_def *cw_domain_command(const struct cw_domain *d, const char *name)
{
    return cw_strmap_get(&d->commands, name);
}

const struct cw_event_def *cw_domain_event(const struct cw_domain *d, const char *name)
{
    return cw_strmap_get(&d->events, name);
}

const struct cw_query_def *cw_domain_query(const struct cw_domain *d, const char *name)
{
    return cw_strmap_get(&d->queries, name);
}

int cw_domain_load_module(struct cw_domain *d, const char *path, struct cw_error *err)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "cannot load module %s: %s", path,
                            dlerror());
    cw_module_init_cb init;
    *(void **)&init = dlsym(h, "cw_module_init");
    if (!init) {
        dlclose(h);
        return cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "module %s has no cw_module_init", path);
    }
    int rc = init(d);
    if (rc) {
        /* Definitions it registered point into h: keep it loaded. */
        cw_error_set(err, rc, NULL, "module %s: cw_module_init failed (%d)", path, rc);
    }
    d->modules = cw_xrealloc(d->modules, (d->n_modules + 1) * sizeof(*d->modules));
    d->modules[d->n_modules++] = h;
    return rc;
}

void cw_domain_upcast(const struct cw_domain *d, const char *name, int *version, json_t **data)
{
    const struct cw_event_def *def = cw_domain_event(d, name);
    if (!def)
        return;
    while (*version < def->version && def->upcast) {
        *data = def->upcast(*version, *data);
        ++*version;
    }
}

bool cw_domain_audience_allows(const struct cw_event_def *def, const struct cw_event *ev,
                               const char *user_uuid)
{
    enum cw_audience a = def ? def->audience : CW_AUDIENCE_USER;
    switch (a) {
    case CW_AUDIENCE_ALL:
        return true;
    case CW_AUDIENCE_CUSTOM:
        return def->audience_fn(ev, user_uuid);
    default:
        return ev->user_uuid && user_uuid && strcmp(ev->user_uuid, user_uuid) == 0;
    }
}
