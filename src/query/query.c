/*
 * query.c - the query path (see query.h). Queries never write: the snapshot
 * is rolled back when the query ends.
 */
#include "query.h"
#include "core/log.h"
#include "core/registry.h"
#include "core/validate.h"
#include "store/store.h"

#include <string.h>

int cw_query_run(const struct cw_domain *d, struct cw_db *db, const char *name, const json_t *data,
                 const char *user_uuid, json_t **result, struct cw_error *err)
{
    const struct cw_query_def *def = name ? cw_domain_query(d, name) : NULL;
    if (!def)
        return cw_error_set(err, CW_ERR_NOT_FOUND, "unknown-query", "no query named %s",
                            name ? name : "(none)");
    json_t *copy = data ? json_deep_copy(data) : json_object();
    int rc = cw_validate_fields(def->fields, copy, err);
    if (!rc && def->coerce)
        rc = def->coerce(copy, err);
    if (rc) {
        if (rc == CW_ERR_INVALID)
            snprintf(err->code, sizeof(err->code), "query-validation-failed");
        json_decref(copy);
        return rc;
    }
    struct cw_query q = {.name = def->name, .data = copy, .user_uuid = user_uuid};
    rc = cw_db_snapshot_begin(db, err);
    if (!rc) {
        *result = NULL;
        rc = def->run(db, &q, result, err);
        cw_db_snapshot_end(db);
        if (!rc && !*result)
            *result = json_null();
    }
    if (rc == CW_ERR_STORE || rc == CW_ERR_AGAIN) {
        cw_warn("query.failed", "query=%s error=\"%s\"", def->name, err ? err->message : "");
        cw_error_set(err, rc, "internal-error", "the query could not be run");
    }
    json_decref(copy);
    return rc;
}
