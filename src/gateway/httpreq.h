/*
 * httpreq.h - the head of an HTTP/1.x request: request line and header
 * fields, parsed in place from the bytes received so far.
 */
#ifndef CW_HTTPREQ_H
#define CW_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

#define CW_HTTPREQ_MAX_FIELDS 64

enum cw_httpreq_result {
    CW_HTTPREQ_MORE = 0,       /* no blank line yet: read on */
    CW_HTTPREQ_BAD = -1,       /* 400 */
    CW_HTTPREQ_TOO_LARGE = -2, /* 431: longer than the limit, or too many fields */
};

struct cw_httpreq {
    const char *method; /* as sent: "GET", "POST", ... */
    const char *target; /* the request target, query string included */
    int minor;          /* HTTP/1.minor */
    size_t n_fields;
    struct {
        const char *name, *value; /* value without surrounding blanks */
    } fields[CW_HTTPREQ_MAX_FIELDS];
};

/*
 * Looks for a complete head at the start of buf[0..len): returns its length
 * in bytes (the body follows), or a cw_httpreq_result. On success buf is
 * changed in place so that every string of r points into it, NUL-ended; a
 * head is never longer than max_head bytes.
 *
 * BAD besides bad syntax: a blank before a field's colon (RFC 9112 5.1),
 * and a Content-Length that is not one run of digits or comes twice (6.3;
 * "5, 5" included, which RFC 9110 would let us take as 5).
 */
long cw_httpreq_parse(char *buf, size_t len, size_t max_head, struct cw_httpreq *r);

/* The value of the first field called name (any case), or NULL. */
const char *cw_httpreq_field(const struct cw_httpreq *r, const char *name);

/* How many fields are called name (any case). */
size_t cw_httpreq_count(const struct cw_httpreq *r, const char *name);

/* True when the comma-separated field value holds token (any case), e.g. "Upgrade". */
bool cw_httpreq_has_token(const char *value, const char *token);

/*
 * Decodes %XX escapes of s in place, and '+' as a space when plus_is_space
 * (form values); false on a bad escape or on %00: the result is a C string,
 * and a NUL inside would cut it short unseen.
 */
bool cw_http_unescape(char *s, bool plus_is_space);

#endif
