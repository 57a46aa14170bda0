/*
 * error.h - result codes to wire codes.
 *
 * The result enum and struct cw_error are public (calderwood.h); this adds
 * the one mapping from a result to the error code PROTOCOL.md puts on the
 * wire, used wherever a result leaves the server.
 */
#ifndef CW_ERROR_H
#define CW_ERROR_H

#include "calderwood.h"

/* The PROTOCOL.md code for rc ("malformed", "overloaded", ...). Never NULL. */
const char *cw_result_code(int rc);
/* A short English name of rc for logs. Never NULL. */
const char *cw_result_name(int rc);
/*
 * An empty error, as {0} makes one, without zeroing its 300 bytes: for the
 * processor's per-command path, where the zeroing showed in profiles.
 */
static inline void cw_error_init(struct cw_error *err)
{
    err->code[0] = err->message[0] = '\0';
    err->details = NULL;
}
/* Copies src into dst (dst's details are released first; src's are copied). */
void cw_error_copy(struct cw_error *dst, const struct cw_error *src);

#endif
