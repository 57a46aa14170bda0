/*
 * fields.c - the compact text fields of the NATS messages (see fields.h).
 */
#include "fields.h"

#include <stdlib.h>
#include <string.h>

void cw_fields_add_num(struct cw_buf *b, int64_t v)
{
    cw_buf_add_int(b, v);
    cw_buf_addc(b, ' ');
}

void cw_fields_add_strn(struct cw_buf *b, const char *s, size_t n)
{
    cw_buf_add_int(b, (int64_t)n);
    cw_buf_addc(b, ':');
    if (n)
        cw_buf_add(b, s, n);
    cw_buf_addc(b, ' ');
}

void cw_fields_add_str(struct cw_buf *b, const char *s)
{
    if (!s)
        cw_buf_adds(b, "- ");
    else
        cw_fields_add_strn(b, s, strlen(s));
}

struct cw_fields cw_fields_of(struct cw_buf *copy, const char *text, size_t len)
{
    cw_buf_reset(copy);
    cw_buf_grow(copy, len);
    if (len)
        cw_buf_add(copy, text, len);
    return (struct cw_fields){copy->data, copy->data + copy->len, len == 0};
}

int64_t cw_fields_num(struct cw_fields *r)
{
    if (r->bad)
        return 0;
    char *next = r->p;
    /* Digits only (a sign at most): strtoll would also skip spaces. */
    bool digit = r->p < r->end && ((r->p[0] >= '0' && r->p[0] <= '9') || r->p[0] == '-');
    long long v = digit ? strtoll(r->p, &next, 10) : 0;
    if (next == r->p || next >= r->end || *next != ' ') {
        r->bad = true;
        return 0;
    }
    r->p = next + 1;
    return v;
}

const char *cw_fields_str(struct cw_fields *r, size_t *len)
{
    if (r->bad)
        return NULL;
    if (r->end - r->p >= 2 && r->p[0] == '-' && r->p[1] == ' ') {
        r->p += 2;
        return NULL;
    }
    char *colon = r->p;
    unsigned long long n =
        r->p < r->end && r->p[0] >= '0' && r->p[0] <= '9' ? strtoull(r->p, &colon, 10) : 0;
    if (colon == r->p || colon >= r->end || *colon != ':' ||
        n >= (unsigned long long)(r->end - colon - 1) || colon[1 + n] != ' ') {
        r->bad = true;
        return NULL;
    }
    char *s = colon + 1;
    s[n] = '\0';
    r->p = s + n + 1;
    if (len)
        *len = (size_t)n;
    return s;
}
