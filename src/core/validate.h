/*
 * validate.h - the generic validation derived from declared fields, and the
 * field descriptions the describe query publishes.
 */
#ifndef CW_VALIDATE_H
#define CW_VALIDATE_H

#include "calderwood.h"

/*
 * Checks data (must be an object) against fields. On failure returns
 * CW_ERR_INVALID with err->details an array of {"field","reason"}, one per
 * failing field, in declaration order; a non-object gives CW_ERR_MALFORMED.
 * fields may be NULL (no declared fields).
 */
int cw_validate_fields(const struct cw_field *fields, const json_t *data, struct cw_error *err);

struct cw_domain;

/*
 * The gateway's whole check of a command before it is queued: the name is
 * defined (and not internal, unless allow_internal), data is an object that
 * passes the declared fields and the command's coerce (which may normalise
 * it in place). Codes: unknown-command, malformed, command-validation-failed.
 */
int cw_coerce_command(const struct cw_domain *d, const char *name, json_t *data,
                      bool allow_internal, const struct cw_command_def **def, struct cw_error *err);

/* The describe form of fields: [{"name","type","required",limits...}...]. */
json_t *cw_describe_fields(const struct cw_field *fields);

/* "string", "integer", ... */
const char *cw_field_type_name(enum cw_field_type t);

#endif
