/*
 * fields.h - the compact text fields of the NATS messages (the update
 * feed's lines, the command queue's messages): a number is written in
 * decimal, a string as its byte length, ':' and its bytes ("-" for none),
 * each followed by one space. A reader finds every field without scanning
 * for quotes or escapes, so a string may hold any byte, and builds no JSON
 * tree for what is not JSON. docs/ARCHITECTURE.md gives each message's
 * fields.
 */
#ifndef CW_FIELDS_H
#define CW_FIELDS_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void cw_fields_add_num(struct cw_buf *b, int64_t v);
void cw_fields_add_str(struct cw_buf *b, const char *s); /* s may be NULL */
/* The same with a length: s need not be NUL-terminated. */
void cw_fields_add_strn(struct cw_buf *b, const char *s, size_t n);

/*
 * A reader over a copy of the text (kept in copy, whose memory it reuses):
 * strings are NUL-terminated in place, so they stay valid until copy is
 * reset. Any field that is not there or not well-formed sets bad, and every
 * later read then returns 0 or NULL.
 */
struct cw_fields {
    char *p, *end;
    bool bad;
};

struct cw_fields cw_fields_of(struct cw_buf *copy, const char *text, size_t len);
int64_t cw_fields_num(struct cw_fields *r);
/* NULL for "-" (and when bad); *len, when given, gets the string's length. */
const char *cw_fields_str(struct cw_fields *r, size_t *len);

#endif
