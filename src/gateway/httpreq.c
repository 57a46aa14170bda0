/*
 * httpreq.c - the request head parser: request line and header fields of
 * HTTP/1.x (RFC 9112), checked strictly, in place. It knows the syntax of
 * a head and the one field that frames the body (Content-Length); what the
 * fields mean to a route is http.c's.
 */
#include "httpreq.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The end of the head: the offset just past its blank line, or 0. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Cuts the line starting at *p (ended by LF or CRLF), moves *p past it. */
static char *next_line(char **p)
{
    char *line = *p, *nl = strchr(line, '\n');
    *p = nl + 1;
    if (nl > line && nl[-1] == '\r')
        nl--;
    *nl = '\0';
    return line;
}

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int parse_request_line(char *line, struct cw_httpreq *r)
{
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
        return CW_HTTPREQ_BAD;
    *sp1 = *sp2 = '\0';
    for (char *m = line; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return CW_HTTPREQ_BAD;
    const char *v = sp2 + 1;
    if (strncmp(v, "HTTP/1.", 7) || !isdigit((unsigned char)v[7]) || v[8])
        return CW_HTTPREQ_BAD;
    for (char *t = sp1 + 1; *t; t++)
        if ((unsigned char)*t <= ' ' || *t == 0x7f)
            return CW_HTTPREQ_BAD;
    r->method = line;
    r->target = sp1 + 1;
    r->minor = v[7] - '0';
    return 0;
}

static int parse_field(char *line, struct cw_httpreq *r)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return CW_HTTPREQ_BAD;
    for (char *c = line; c < colon; c++) /* no blank before the colon (RFC 9112 5.1) */
        if (!is_tchar((unsigned char)*c))
            return CW_HTTPREQ_BAD;
    if (r->n_fields == CW_HTTPREQ_MAX_FIELDS)
        return CW_HTTPREQ_TOO_LARGE;
    *colon = '\0';
    char *v = colon + 1, *e = v + strlen(v);
    while (*v == ' ' || *v == '\t')
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    for (char *c = v; *c; c++)
        if ((unsigned char)*c < ' ' && *c != '\t')
            return CW_HTTPREQ_BAD;
    r->fields[r->n_fields].name = line;
    r->fields[r->n_fields].value = v;
    r->n_fields++;
    return 0;
}

/*
 * Content-Length decides where this request ends and the next begins: a
 * value that is not one plain number, or a second field, would let a proxy
 * in front and this server disagree about it (request smuggling, RFC 9112
 * 6.3 and 11.2). RFC 9110 8.6 lets a server accept "5, 5" or two equal
 * fields as 5; we take the safe side and refuse any repeat.
 */
static int check_length(const struct cw_httpreq *r)
{
    if (cw_httpreq_count(r, "content-length") > 1)
        return CW_HTTPREQ_BAD;
    const char *v = cw_httpreq_field(r, "content-length");
    if (!v)
        return 0;
    if (!*v || strspn(v, "0123456789") != strlen(v))
        return CW_HTTPREQ_BAD;
    return 0;
}

long cw_httpreq_parse(char *buf, size_t len, size_t max_head, struct cw_httpreq *r)
{
    size_t scan = len < max_head ? len : max_head;
    size_t end = head_end(buf, scan);
    if (!end)
        return len >= max_head ? CW_HTTPREQ_TOO_LARGE : CW_HTTPREQ_MORE;
    if (memchr(buf, '\0', end))
        return CW_HTTPREQ_BAD;
    memset(r, 0, sizeof(*r));
    char *p = buf;
    while (p < buf + end && (*p == '\r' || *p == '\n')) /* blank lines before a request */
        p++;
    if (p >= buf + end - 1)
        return CW_HTTPREQ_BAD;
    int rc = parse_request_line(next_line(&p), r);
    while (!rc && p < buf + end) {
        char *line = next_line(&p);
        if (!*line)
            break;
        if (*line == ' ' || *line == '\t')
            return CW_HTTPREQ_BAD; /* obsolete line folding */
        rc = parse_field(line, r);
    }
    if (!rc)
        rc = check_length(r);
    return rc ? rc : (long)end;
}

const char *cw_httpreq_field(const struct cw_httpreq *r, const char *name)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (!strcasecmp(r->fields[i].name, name))
            return r->fields[i].value;
    return NULL;
}

size_t cw_httpreq_count(const struct cw_httpreq *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_fields; i++)
        n += !strcasecmp(r->fields[i].name, name);
    return n;
}

bool cw_httpreq_has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && !strncasecmp(p, token, n))
            return true;
        p = e;
    }
    return false;
}

bool cw_http_unescape(char *s, bool plus_is_space)
{
    char *out = s;
    for (; *s; s++) {
        if (*s == '+' && plus_is_space) {
            *out++ = ' ';
        } else if (*s == '%') {
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return false;
            char hex[3] = {s[1], s[2], 0};
            char c = (char)strtol(hex, NULL, 16);
            if (!c)
                return false;
            *out++ = c;
            s += 2;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
    return true;
}
