/*
 * query.h - running queries: lookup, validation, coerce, then the query's
 * run function inside a read snapshot. Also registers the built-in queries
 * every server answers (describe, events).
 *
 * Thread: any thread that owns the cw_db it passes (a worker's reader).
 */
#ifndef CW_QUERY_H
#define CW_QUERY_H

#include "calderwood.h"

struct cw_domain;

/* Registers describe and events. Call before any domain registers its own. */
int cw_query_register_builtins(struct cw_domain *d);

/*
 * Runs query name with data (an object, or NULL for {}; borrowed, copied
 * before coercion) as user_uuid. On CW_OK *result belongs to the caller. On
 * failure err->code is "unknown-query", "query-validation-failed",
 * "malformed" or "internal-error".
 */
int cw_query_run(const struct cw_domain *d, struct cw_db *db, const char *name, const json_t *data,
                 const char *user_uuid, json_t **result, struct cw_error *err);

#endif
