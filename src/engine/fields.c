/*
 * fields.c - the compact text fields of the NATS messages (see fields.h).
 */
#include "fields.h"

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

/*
 * Decimal digits at *p up to end, as a value of at most max (no sign);
 * false when none or too large. By hand: strtoll costs several times as
 * much, and a receiver reads some ten numbers per committed command.
 */
static bool digits(char **p, const char *end, uint64_t max, uint64_t *out)
{
    char *q = *p;
    uint64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9') {
        unsigned d = (unsigned)(*q - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        q++;
    }
    if (q == *p)
        return false;
    *p = q;
    *out = v;
    return true;
}

int64_t cw_fields_num(struct cw_fields *r)
{
    if (r->bad)
        return 0;
    char *q = r->p;
    bool neg = q < r->end && *q == '-';
    uint64_t v = 0;
    q += neg;
    if (!digits(&q, r->end, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &v) || q >= r->end ||
        *q != ' ') {
        r->bad = true;
        return 0;
    }
    r->p = q + 1;
    return neg ? (int64_t)(0 - v) : (int64_t)v;
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
    uint64_t n = 0;
    if (!digits(&colon, r->end, SIZE_MAX, &n) || colon >= r->end || *colon != ':' ||
        n >= (uint64_t)(r->end - colon - 1) || colon[1 + n] != ' ') {
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
