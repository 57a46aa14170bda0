/*
 * buf.c - growable buffer and compact JSON writer (see buf.h).
 */
#include "buf.h"
#include "alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cw_buf_release(struct cw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cw_buf_grow(struct cw_buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->data = cw_xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0'; /* the promise of buf.h holds even before anything is added */
}

void cw_buf_add_slow(struct cw_buf *b, const void *p, size_t n)
{
    if (!n)
        return; /* p may be NULL then (an empty HTTP body) */
    cw_buf_grow(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* "00" to "99": integers are written two digits per division (positions and times run to 16). */
static const char digit_pairs[] = "0001020304050607080910111213141516171819202122232425262728293031"
                                  "323334353637383940414243444546474849"
                                  "5051525354555657585960616263646566676869707172737475767778798081"
                                  "828384858687888990919293949596979899";

void cw_buf_add_int(struct cw_buf *b, int64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * u, 2);
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    cw_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

const char *cw_buf_cstr(struct cw_buf *b)
{
    return b->len ? b->data : "";
}

char *cw_buf_take(struct cw_buf *b)
{
    char *s = b->data ? b->data : cw_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/*
 * Does any of the 8 bytes at s need an escape? Word-at-a-time tests (a
 * byte below 0x20, or equal to '"' or '\\'; bytes from 0x80 up never match)
 * let the usual string, a UUID or a URL, be scanned 8 bytes per step.
 */
static bool any_escape8(const char *s)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, s, 8);
    uint64_t quote = x ^ (ones * '"'), slash = x ^ (ones * '\\'); /* zero where they match */
    uint64_t below = (x - ones * 0x20) & ~x;
    return (below | ((quote - ones) & ~quote) | ((slash - ones) & ~slash)) & highs;
}

static void add_escape(struct cw_buf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 0};
    size_t len = 2;
    switch (c) {
    case '"':
    case '\\':
        esc[1] = (char)c;
        break;
    case '\b':
        esc[1] = 'b';
        break;
    case '\f':
        esc[1] = 'f';
        break;
    case '\n':
        esc[1] = 'n';
        break;
    case '\r':
        esc[1] = 'r';
        break;
    case '\t':
        esc[1] = 't';
        break;
    default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        len = 6;
    }
    cw_buf_add(b, esc, len);
}

void cw_json_add_string(struct cw_buf *b, const char *s, size_t n)
{
    cw_buf_grow(b, n + 2);
    b->data[b->len++] = '"';
    size_t done = 0, i = 0; /* s[done..i) is plain and not yet copied */
    while (i < n) {
        if (i + 8 <= n && !any_escape8(s + i)) {
            i += 8;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape(c)) {
            i++;
            continue;
        }
        cw_buf_add(b, s + done, i - done);
        add_escape(b, c);
        done = ++i;
    }
    cw_buf_add(b, s + done, n - done);
    cw_buf_addc(b, '"');
}

void cw_json_add(struct cw_buf *b, const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        char sep = '{';
        json_object_foreach((json_t *)v, key, item)
        {
            cw_buf_addc(b, sep);
            sep = ',';
            cw_json_add_string(b, key, strlen(key));
            cw_buf_addc(b, ':');
            cw_json_add(b, item);
        }
        cw_buf_adds(b, sep == '{' ? "{}" : "}");
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        cw_buf_addc(b, '[');
        json_array_foreach(v, i, item)
        {
            if (i)
                cw_buf_addc(b, ',');
            cw_json_add(b, item);
        }
        cw_buf_addc(b, ']');
        break;
    }
    case JSON_STRING:
        cw_json_add_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        cw_buf_add_int(b, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* The same shortest round-tripping form jansson writes. */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        cw_buf_adds(b, s ? s : "null");
        free(s);
        break;
    }
    case JSON_TRUE:
        cw_buf_adds(b, "true");
        break;
    case JSON_FALSE:
        cw_buf_adds(b, "false");
        break;
    case JSON_NULL:
        cw_buf_adds(b, "null");
        break;
    }
}
