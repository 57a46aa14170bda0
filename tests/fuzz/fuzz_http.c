/*
 * fuzz_http.c - libFuzzer target for the HTTP/1.x request-head parser
 * (src/gateway/httpreq.h).
 *
 * Each input is parsed as received bytes under several max_head limits,
 * from a buffer of exactly its size. Whatever comes back is a result code
 * or a head length no longer than the input and the limit; a head is
 * followed by untouched bytes, is the same head when parsed alone, and no
 * shorter prefix of it is complete. Every string of a parsed head lies
 * inside it, NUL-ended; names are tokens, values trimmed and free of
 * control bytes but tabs; lookups find each field, and each element of a
 * comma-separated value is found as a token. Run by `make fuzz`; seeds in
 * tests/fuzz/corpus/http/.
 */
#include "gateway/httpreq.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void die(const char *what, size_t len, size_t max_head, long rc)
{
    fprintf(stderr, "fuzz_http: %s (len %zu, max_head %zu, rc %ld)\n", what, len, max_head, rc);
    abort();
}

static long parse_copy(const uint8_t *data, size_t len, size_t max_head, char **buf,
                       struct cw_httpreq *r)
{
    *buf = malloc(len ? len : 1);
    if (!*buf)
        abort();
    if (len)
        memcpy(*buf, data, len);
    return cw_httpreq_parse(*buf, len, max_head, r);
}

/* s is a NUL-ended string inside buf[0..end). */
static bool inside(const char *s, const char *buf, size_t end)
{
    if (!s || s < buf || s >= buf + end)
        return false;
    return memchr(s, '\0', (size_t)(buf + end - s)) != NULL;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Every element of the comma-separated value v must be found as a token. */
static void check_tokens(const char *v)
{
    char token[256];
    for (const char *p = v; *p;) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a && (size_t)(b - a) < sizeof(token)) {
            memcpy(token, a, (size_t)(b - a));
            token[b - a] = '\0';
            if (!cw_httpreq_has_token(v, token))
                abort();
        }
        p = *e ? e + 1 : e;
    }
}

static void check_head(const uint8_t *data, size_t len, size_t max_head, long rc, const char *buf,
                       const struct cw_httpreq *r)
{
    size_t end = (size_t)rc;
    if (end > len || end > max_head)
        die("head longer than the input or the limit", len, max_head, rc);
    if (data[end - 1] != '\n')
        die("head not ended by a line end", len, max_head, rc);
    if (len > end && memcmp(buf + end, data + end, len - end) != 0)
        die("bytes after the head changed", len, max_head, rc);
    if (!inside(r->method, buf, end) || !inside(r->target, buf, end) || !r->method[0] ||
        !r->target[0] || r->minor < 0 || r->minor > 9)
        die("bad request line", len, max_head, rc);
    for (const char *m = r->method; *m; m++)
        if (!is_tchar((unsigned char)*m))
            die("method not a token", len, max_head, rc);
    for (const char *t = r->target; *t; t++)
        if ((unsigned char)*t <= ' ' || *t == 0x7f)
            die("blank or control byte in the target", len, max_head, rc);
    if (r->n_fields > CW_HTTPREQ_MAX_FIELDS)
        die("too many fields", len, max_head, rc);
    for (size_t i = 0; i < r->n_fields; i++) {
        const char *n = r->fields[i].name, *v = r->fields[i].value;
        if (!inside(n, buf, end) || !inside(v, buf, end) || !n[0])
            die("field outside the head", len, max_head, rc);
        for (const char *c = n; *c; c++)
            if (!is_tchar((unsigned char)*c))
                die("field name not a token", len, max_head, rc);
        size_t vl = strlen(v);
        if (vl && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            die("value not trimmed", len, max_head, rc);
        for (const char *c = v; *c; c++)
            if ((unsigned char)*c < ' ' && *c != '\t')
                die("control byte in a value", len, max_head, rc);
        const char *found = cw_httpreq_field(r, n);
        if (!found)
            die("a field's own name does not find it", len, max_head, rc);
        size_t first = 0;
        while (strcasecmp(r->fields[first].name, n))
            first++;
        if (found != r->fields[first].value)
            die("not the first field of that name", len, max_head, rc);
        check_tokens(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t limits[] = {0, 1, 16, 64, 256, 8192, SIZE_MAX, size, size ? size - 1 : 0};
    for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
        size_t max_head = limits[li];
        char *buf;
        struct cw_httpreq r;
        long rc = parse_copy(data, size, max_head, &buf, &r);
        if (rc <= 0) {
            if (rc != CW_HTTPREQ_MORE && rc != CW_HTTPREQ_BAD && rc != CW_HTTPREQ_TOO_LARGE)
                die("unknown result", size, max_head, rc);
            if (rc == CW_HTTPREQ_MORE && size >= max_head)
                die("MORE with the limit reached", size, max_head, rc);
            free(buf);
            continue;
        }
        check_head(data, size, max_head, rc, buf, &r);
        free(buf);

        size_t end = (size_t)rc;
        /* The head alone, and the head under a limit of exactly its length: the same. */
        struct cw_httpreq r2;
        long rc2 = parse_copy(data, end, SIZE_MAX, &buf, &r2);
        if (rc2 != rc)
            die("the head alone parses differently", end, SIZE_MAX, rc2);
        free(buf);
        rc2 = parse_copy(data, size, end, &buf, &r2);
        if (rc2 != rc)
            die("a limit of the head's length refuses it", size, end, rc2);
        free(buf);
        /* One byte short of it: incomplete, or too large under a limit one short. */
        rc2 = parse_copy(data, end - 1, SIZE_MAX, &buf, &r2);
        if (rc2 != CW_HTTPREQ_MORE)
            die("a head cut short is not MORE", end - 1, SIZE_MAX, rc2);
        free(buf);
        rc2 = parse_copy(data, size, end - 1, &buf, &r2);
        if (rc2 != CW_HTTPREQ_TOO_LARGE)
            die("a head over the limit is not TOO_LARGE", size, end - 1, rc2);
        free(buf);
    }
    return 0;
}
