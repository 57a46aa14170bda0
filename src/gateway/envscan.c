/*
 * envscan.c - the fast path of command decoding (see envscan.h).
 *
 * The full parse (wire.c) builds a jansson tree of the whole message: the
 * array, the type string, the client id, the command object and its name,
 * each one allocated and hashed, only to be read once and freed. Commands
 * are the gateway's hottest input, and nearly all of them are the same
 * shape with flat data, so that shape is read here straight from the text
 * and only data and meta become jansson values, built member by member.
 *
 * Declining is always safe (the full parse follows), so the grammar here is
 * deliberately narrow: anything it would have to think about is declined.
 */
#include "envscan.h"

#include "core/utf8.h"

#include <string.h>

/* Integers the scanner reads itself: 18 digits never overflow an int64_t. */
#define INT_DIGITS_MAX 18

struct cur {
    const unsigned char *p, *end;
};

static void skip_ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* Skips whitespace, then takes ch; false when the next byte is anything else. */
static bool take(struct cur *c, unsigned char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/*
 * A string without escapes: *s and *n get its bytes (between the quotes).
 * Declines a backslash, a control character (invalid JSON, or an escape to
 * think about) and invalid UTF-8.
 */
static bool string(struct cur *c, const char **s, size_t *n)
{
    if (!take(c, '"'))
        return false;
    const unsigned char *start = c->p;
    unsigned char high = 0;
    while (c->p < c->end && *c->p != '"') {
        unsigned char b = *c->p;
        if (b < 0x20 || b == '\\')
            return false;
        high |= b;
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    *s = (const char *)start;
    *n = (size_t)(c->p - start);
    c->p++; /* the closing quote */
    return !(high & 0x80) || cw_utf8_valid(start, *n);
}

/*
 * An integer as JSON writes it (no leading zeros, no fraction or exponent)
 * of at most INT_DIGITS_MAX digits; negative only when allow_neg.
 */
static bool integer(struct cur *c, bool allow_neg, int64_t *v)
{
    skip_ws(c);
    bool neg = c->p < c->end && *c->p == '-';
    if (neg && !allow_neg)
        return false;
    c->p += neg;
    const unsigned char *start = c->p;
    int64_t n = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && c->p - start < INT_DIGITS_MAX)
        n = n * 10 + (*c->p++ - '0');
    size_t digits = (size_t)(c->p - start);
    if (digits == 0 || (digits > 1 && *start == '0'))
        return false;
    /* More digits, a fraction or an exponent: the full parse decides about those. */
    if (c->p < c->end &&
        ((*c->p >= '0' && *c->p <= '9') || *c->p == '.' || *c->p == 'e' || *c->p == 'E'))
        return false;
    *v = neg ? -n : n;
    return true;
}

static bool word(struct cur *c, const char *w, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* A flat member value: string, integer, true, false or null; NULL when declined. */
static json_t *flat_value(struct cur *c)
{
    skip_ws(c);
    if (c->p >= c->end)
        return NULL;
    const char *s;
    size_t n;
    int64_t i;
    switch (*c->p) {
    case '"':
        return string(c, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    case 't':
        return word(c, "true", 4) ? json_true() : NULL;
    case 'f':
        return word(c, "false", 5) ? json_false() : NULL;
    case 'n':
        return word(c, "null", 4) ? json_null() : NULL;
    default:
        return integer(c, true, &i) ? json_integer(i) : NULL;
    }
}

/* An object of flat members, keys unique; NULL when declined. The '{' is next. */
static json_t *flat_object(struct cur *c)
{
    if (!take(c, '{'))
        return NULL;
    json_t *obj = json_object();
    if (take(c, '}'))
        return obj;
    do {
        const char *key;
        size_t key_len;
        json_t *v;
        if (!string(c, &key, &key_len) || !take(c, ':') || !(v = flat_value(c)))
            goto decline;
        /* A key seen before is an error the full parse words (none before the first); the
         * key has no NUL. */
        if ((json_object_size(obj) && json_object_getn(obj, key, key_len)) ||
            json_object_setn_new_nocheck(obj, key, key_len, v)) {
            json_decref(v);
            goto decline;
        }
    } while (take(c, ','));
    if (take(c, '}'))
        return obj;
decline:
    json_decref(obj);
    return NULL;
}

static bool is_key(const char *key, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(key, want, n) == 0;
}

/* The command object {"name", "data", "meta"}, each once, name and data required. */
static bool command(struct cur *c, struct cw_client_msg *out)
{
    bool have_name = false;
    if (!take(c, '{'))
        return false;
    do {
        const char *key, *s;
        size_t key_len, n;
        if (!string(c, &key, &key_len) || !take(c, ':'))
            return false;
        if (is_key(key, key_len, "name") && !have_name) {
            if (!string(c, &s, &n) || n > CW_WIRE_NAME_SCAN_MAX)
                return false;
            memcpy(out->name_buf, s, n);
            out->name_buf[n] = '\0';
            have_name = true;
        } else if (is_key(key, key_len, "data") && !out->data) {
            if (!(out->data = flat_object(c)))
                return false;
        } else if (is_key(key, key_len, "meta") && !out->meta) {
            skip_ws(c);
            /* "meta": null is as good as no meta; a second meta then is declined below. */
            if (word(c, "null", 4))
                out->meta = json_null();
            else if (!(out->meta = flat_object(c)))
                return false;
        } else {
            return false; /* another key, or one given twice */
        }
    } while (take(c, ','));
    return take(c, '}') && have_name && out->data;
}

bool cw_envscan_cmd(const char *text, size_t len, struct cw_client_msg *out)
{
    struct cur c = {(const unsigned char *)text, (const unsigned char *)text + len};
    const char *id;
    size_t id_len;
    if (!text || !take(&c, '[') || !take(&c, '"') || !word(&c, "cmd\"", 4) || !take(&c, ','))
        return false;
    if (!string(&c, &id, &id_len) || id_len == 0 || id_len > CW_WIRE_CLIENT_ID_MAX)
        return false;
    if (!take(&c, ',') || !integer(&c, false, &out->client_seq) ||
        out->client_seq >= CW_WIRE_SEQ_LIMIT || !take(&c, ','))
        goto decline;
    if (!command(&c, out) || !take(&c, ']'))
        goto decline;
    skip_ws(&c);
    if (c.p != c.end)
        goto decline;
    if (json_is_null(out->meta)) {
        json_decref(out->meta);
        out->meta = NULL;
    }
    memcpy(out->id_buf, id, id_len);
    out->id_buf[id_len] = '\0';
    out->type = CW_MSG_CMD;
    out->client_id = out->id_buf;
    out->has_seq = true;
    out->name = out->name_buf;
    out->scanned = true;
    return true;
decline:
    json_decref(out->data);
    json_decref(out->meta);
    out->data = out->meta = NULL;
    out->client_seq = 0;
    return false;
}
