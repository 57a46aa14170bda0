/*
 * error.c - filling struct cw_error and naming result codes.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A cut message must stay valid UTF-8 (it goes into JSON): drop a split last character. */
static void utf8_trim(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--; /* back over continuation bytes to the lead byte */
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (n - (i - 1) < want)
        s[i - 1] = '\0';
}

static int vset(struct cw_error *err, int rc, const char *code, json_t *details, const char *fmt,
                va_list ap)
{
    if (!err) {
        json_decref(details);
        return rc;
    }
    json_decref(err->details);
    err->details = details;
    snprintf(err->code, sizeof(err->code), "%s", code ? code : cw_result_code(rc));
    int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
    if (n >= (int)sizeof(err->message))
        utf8_trim(err->message);
    return rc;
}

int cw_error_set(struct cw_error *err, int rc, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, rc, code, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int cw_error_set_details_take(struct cw_error *err, int rc, const char *code, json_t *details,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, rc, code, details, fmt, ap);
    va_end(ap);
    return rc;
}

void cw_error_release(struct cw_error *err)
{
    if (!err)
        return;
    json_decref(err->details);
    err->details = NULL;
}

void cw_error_copy(struct cw_error *dst, const struct cw_error *src)
{
    json_decref(dst->details);
    memcpy(dst->code, src->code, sizeof(dst->code));
    memcpy(dst->message, src->message, sizeof(dst->message));
    dst->details = src->details ? json_deep_copy(src->details) : NULL;
}

const char *cw_result_code(int rc)
{
    switch (rc) {
    case CW_OK:
        return "ok";
    case CW_ERR_INVALID:
        return "command-validation-failed";
    case CW_ERR_MALFORMED:
        return "malformed";
    case CW_ERR_TOO_LARGE:
        return "too-large";
    case CW_ERR_OVERLOADED:
        return "overloaded";
    case CW_ERR_NOT_FOUND:
        return "not-found";
    case CW_ERR_REJECTED:
        return "rejected";
    case CW_ERR_UNAUTHORIZED:
        return "unauthorized";
    case CW_ERR_EXISTS:
        return "exists";
    case CW_ERR_SHUTDOWN:
        return "shutting-down";
    default:
        return "internal-error";
    }
}

const char *cw_result_name(int rc)
{
    switch (rc) {
    case CW_OK:
        return "ok";
    case CW_ERR_AGAIN:
        return "transient store error";
    case CW_ERR_STORE:
        return "store error";
    case CW_ERR_SYSTEM:
        return "system error";
    default:
        return cw_result_code(rc);
    }
}
