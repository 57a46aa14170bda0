/*
 * demo.c - registration of the built-in domain, and the two small helpers
 * its files share. The definitions live in accounts.c, pages.c and cart.c;
 * this file only adds them to a registry.
 */
#include "domain.h"

int cw_domain_part_add(struct cw_domain *d, const struct cw_domain_part *part)
{
    int rc = CW_OK;
    for (size_t i = 0; !rc && i < part->n_migrations; i++)
        rc = cw_domain_add_migration(d, part->ns, &part->migrations[i]);
    for (size_t i = 0; !rc && i < part->n_events; i++)
        rc = cw_domain_add_event(d, &part->events[i]);
    for (size_t i = 0; !rc && i < part->n_commands; i++)
        rc = cw_domain_add_command(d, &part->commands[i]);
    for (size_t i = 0; !rc && i < part->n_queries; i++)
        rc = cw_domain_add_query(d, &part->queries[i]);
    return rc;
}

const char *cw_domain_str(const json_t *data, const char *key)
{
    return json_string_value(json_object_get(data, key));
}

int cw_demo_register(struct cw_domain *d)
{
    int rc = cw_pages_register(d);
    if (!rc)
        rc = cw_cart_register(d);
    return rc;
}
