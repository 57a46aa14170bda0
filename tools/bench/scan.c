/*
 * scan.c - field scanning of server messages (see scan.h). Each function
 * reads the bytes once and allocates nothing.
 */
#include "scan.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

int64_t scan_int(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    *pp = p;
    return v;
}

/* Skips a JSON string starting at the opening quote; returns the byte after
 * the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static int type_of(const char *s, size_t n)
{
    switch (n) {
    case 7:
        if (!memcmp(s, "cmd-ack", 7))
            return MSG_ACK;
        if (!memcmp(s, "resumed", 7))
            return MSG_RESUMED;
        break;
    case 6:
        if (!memcmp(s, "update", 6))
            return MSG_UPDATE;
        break;
    case 5:
        if (!memcmp(s, "error", 5))
            return MSG_ERROR;
        break;
    case 8:
        if (!memcmp(s, "rejected", 8))
            return MSG_REJECTED;
        break;
    case 4:
        if (!memcmp(s, "pong", 4))
            return MSG_PONG;
        break;
    }
    return MSG_OTHER;
}

bool scan_msg(const char *p, size_t n, struct msg *m)
{
    const char *end = p + n;
    m->type = MSG_OTHER;
    m->cid = NULL;
    m->cid_len = 0;
    m->seq = -1;
    m->rest = end;
    m->rest_len = 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    if (p >= end || *p != '"')
        return false;
    const char *t = p + 1, *q = skip_string(p, end);
    if (!q)
        return false;
    m->type = type_of(t, (size_t)(q - 1 - t));
    p = skip_ws(q, end);
    if (p >= end || *p != ',')
        return true;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '"') {
        q = skip_string(p, end);
        if (!q)
            return false;
        m->cid = p + 1;
        m->cid_len = (size_t)(q - 1 - m->cid);
        p = q;
    } else {
        while (p < end && *p != ',' && *p != ']')
            p++; /* null, or a number for resumed/pong */
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ',')
        return true;
    p = skip_ws(p + 1, end);
    m->seq = scan_int(&p, end);
    p = skip_ws(p, end);
    if (p < end && *p == ',')
        p++;
    m->rest = p;
    m->rest_len = (size_t)(end - p);
    return true;
}

int64_t scan_bench_time(const char *p, size_t n)
{
    static const char key[] = "\"meta\":{\"bt\":";
    const char *k = memmem(p, n, key, sizeof(key) - 1);
    if (!k)
        return -1;
    const char *v = k + sizeof(key) - 1;
    return scan_int(&v, p + n);
}

bool scan_code(const char *p, size_t n, char *buf, size_t cap)
{
    static const char key[] = "\"code\":";
    const char *end = p + n;
    const char *k = memmem(p, n, key, sizeof(key) - 1);
    if (!k || cap == 0)
        return false;
    const char *v = skip_ws(k + sizeof(key) - 1, end);
    if (v >= end || *v != '"')
        return false;
    v++;
    size_t i = 0;
    while (v < end && *v != '"' && i + 1 < cap)
        buf[i++] = *v++;
    buf[i] = 0;
    return true;
}
