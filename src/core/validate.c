/*
 * validate.c - field-level validation from declarations (see validate.h).
 *
 * Every failing field is reported, not just the first, so a form can mark
 * all of them at once.
 */
#include "validate.h"
#include "registry.h"

#include <stdio.h>
#include <string.h>

const char *cw_field_type_name(enum cw_field_type t)
{
    static const char *const names[] = {"string", "integer", "boolean", "object", "uuid"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

/* Returns NULL when v satisfies f, or the reason it does not. */
static const char *check(const struct cw_field *f, const json_t *v, char *buf, size_t len)
{
    switch (f->type) {
    case CW_FIELD_STRING: {
        if (!json_is_string(v))
            return "must be a string";
        size_t n = json_string_length(v);
        if (n < f->min_length) {
            snprintf(buf, len, "must be at least %zu bytes", f->min_length);
            return buf;
        }
        if (f->max_length && n > f->max_length) {
            snprintf(buf, len, "must be at most %zu bytes", f->max_length);
            return buf;
        }
        if (strlen(json_string_value(v)) != n)
            return "must not contain NUL characters";
        return NULL;
    }
    case CW_FIELD_INTEGER:
        if (!json_is_integer(v))
            return "must be an integer";
        if (f->ranged && (json_integer_value(v) < f->min || json_integer_value(v) > f->max)) {
            snprintf(buf, len, "must be between %lld and %lld", (long long)f->min,
                     (long long)f->max);
            return buf;
        }
        return NULL;
    case CW_FIELD_BOOLEAN:
        return json_is_boolean(v) ? NULL : "must be a boolean";
    case CW_FIELD_OBJECT:
        return json_is_object(v) ? NULL : "must be an object";
    case CW_FIELD_UUID:
        return json_is_string(v) && cw_uuid_valid(json_string_value(v))
                   ? NULL
                   : "must be a lower-case canonical UUID";
    }
    return "has an unknown declared type";
}

int cw_validate_fields(const struct cw_field *fields, const json_t *data, struct cw_error *err)
{
    if (!json_is_object(data))
        return cw_error_set(err, CW_ERR_MALFORMED, "malformed", "data must be an object");
    json_t *details = NULL;
    char buf[96];
    for (const struct cw_field *f = fields; f && f->name; f++) {
        const json_t *v = json_object_get(data, f->name);
        const char *reason;
        if (!v || json_is_null(v))
            reason = f->required ? "is required" : NULL;
        else
            reason = check(f, v, buf, sizeof(buf));
        if (!reason)
            continue;
        if (!details)
            details = json_array();
        json_array_append_new(details, json_pack("{s:s,s:s}", "field", f->name, "reason", reason));
    }
    if (!details)
        return CW_OK;
    json_t *first = json_array_get(details, 0);
    return cw_error_set_details_take(err, CW_ERR_INVALID, NULL, details, "%s %s",
                                     json_string_value(json_object_get(first, "field")),
                                     json_string_value(json_object_get(first, "reason")));
}

json_t *cw_describe_fields(const struct cw_field *fields)
{
    json_t *out = json_array();
    for (const struct cw_field *f = fields; f && f->name; f++) {
        json_t *o = json_pack("{s:s,s:s,s:b}", "name", f->name, "type", cw_field_type_name(f->type),
                              "required", f->required);
        if (f->type == CW_FIELD_STRING && f->min_length)
            json_object_set_new(o, "min_length", json_integer((json_int_t)f->min_length));
        if (f->type == CW_FIELD_STRING && f->max_length)
            json_object_set_new(o, "max_length", json_integer((json_int_t)f->max_length));
        if (f->type == CW_FIELD_INTEGER && f->ranged) {
            json_object_set_new(o, "min", json_integer(f->min));
            json_object_set_new(o, "max", json_integer(f->max));
        }
        json_array_append_new(out, o);
    }
    return out;
}

int cw_coerce_command(const struct cw_domain *d, const char *name, json_t *data,
                      bool allow_internal, const struct cw_command_def **def, struct cw_error *err)
{
    const struct cw_command_def *c = name ? cw_domain_command(d, name) : NULL;
    if (!c || (c->internal && !allow_internal))
        return cw_error_set(err, CW_ERR_NOT_FOUND, "unknown-command", "no command named %s",
                            name ? name : "(none)");
    int rc = cw_validate_fields(c->fields, data, err);
    if (!rc && c->coerce)
        rc = c->coerce(data, err);
    if (!rc)
        *def = c;
    return rc;
}
