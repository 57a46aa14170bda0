/*
 * pgcopy.c - PostgreSQL's binary COPY and array formats (see pgcopy.h):
 * integers in network byte order, each field a 32-bit length (-1 for NULL)
 * and its bytes.
 */
#include "pgcopy.h"

#include <string.h>

/* "PGCOPY\n\377\r\n\0", then 32-bit flags and header extension length, both 0. */
static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

static void put32(struct cw_buf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    cw_buf_add(b, p, sizeof(p));
}

static void put16(struct cw_buf *b, uint16_t v)
{
    unsigned char p[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    cw_buf_add(b, p, sizeof(p));
}

static void put64(struct cw_buf *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

/* Writes v at b->data + at, where a length was reserved. */
static void patch32(struct cw_buf *b, size_t at, uint32_t v)
{
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

void cw_pgcopy_row(struct cw_buf *b, int n)
{
    if (!b->len)
        cw_buf_add(b, header, sizeof(header));
    put16(b, (uint16_t)n);
}

void cw_pgcopy_text(struct cw_buf *b, const char *text)
{
    if (!text) {
        cw_pgcopy_null(b);
        return;
    }
    size_t n = strlen(text);
    put32(b, (uint32_t)n);
    cw_buf_add(b, text, n);
}

void cw_pgcopy_json(struct cw_buf *b, const char *text, const json_t *v)
{
    if (text) {
        cw_pgcopy_text(b, text);
        return;
    }
    size_t at = b->len;
    put32(b, 0); /* the length, known once written */
    if (v)
        cw_json_add(b, v);
    else
        cw_buf_adds(b, "{}");
    patch32(b, at, (uint32_t)(b->len - at - 4));
}

void cw_pgcopy_int8(struct cw_buf *b, int64_t v)
{
    put32(b, 8);
    put64(b, (uint64_t)v);
}

void cw_pgcopy_null(struct cw_buf *b)
{
    put32(b, UINT32_MAX); /* -1 */
}

void cw_pgcopy_finish(struct cw_buf *b)
{
    put16(b, UINT16_MAX); /* -1: no more rows */
}

size_t cw_pgcopy_first_row(void)
{
    return sizeof(header);
}

static uint32_t get32(const struct cw_buf *b, size_t at)
{
    const unsigned char *p = (const unsigned char *)b->data + at;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int cw_pgcopy_next_row(const struct cw_buf *b, size_t *at)
{
    const unsigned char *p = (const unsigned char *)b->data + *at;
    *at += 2;
    return p[0] << 8 | p[1];
}

void cw_pgcopy_field(const struct cw_buf *b, size_t *at, const char **data, size_t *len)
{
    uint32_t n = get32(b, *at);
    *at += 4;
    if (n == UINT32_MAX) {
        *data = NULL;
        *len = 0;
        return;
    }
    *data = b->data + *at;
    *len = n;
    *at += n;
}

/* ndim, has-nulls flag, element type, then the dimension: length and lower bound. */
void cw_pgcopy_array_start(struct cw_buf *b, uint32_t element_oid)
{
    put32(b, 1);
    put32(b, 0);
    put32(b, element_oid);
    put32(b, 0); /* the length, patched by cw_pgcopy_array_end */
    put32(b, 1);
}

void cw_pgcopy_array_text(struct cw_buf *b, const char *text)
{
    cw_pgcopy_text(b, text);
}

void cw_pgcopy_array_int8(struct cw_buf *b, int64_t v)
{
    cw_pgcopy_int8(b, v);
}

void cw_pgcopy_array_end(struct cw_buf *b, uint32_t n)
{
    patch32(b, 12, n);
}
