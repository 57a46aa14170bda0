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
/* Copies src into dst (dst's details are released first; src's are copied). */
void cw_error_copy(struct cw_error *dst, const struct cw_error *src);

#endif
