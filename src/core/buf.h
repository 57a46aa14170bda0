/*
 * buf.h - a growable byte buffer and a compact JSON writer on top of it.
 *
 * The hot path serialises every event once: its data goes to the store and,
 * spliced into the update frame, to every receiver. jansson's json_dumps is
 * general and slow (a callback per token); this writer appends straight into
 * one buffer, in jansson's own key order (insertion order), so text written
 * here equals json_dumps(v, JSON_COMPACT) for the same value, except that
 * \u escapes of control characters use lower-case hex.
 */
#ifndef CW_BUF_H
#define CW_BUF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct cw_buf {
    char *data; /* NUL-terminated whenever len > 0 or after cw_buf_cstr */
    size_t len, cap;
};

#define CW_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void cw_buf_release(struct cw_buf *b);
/* Empties the buffer, keeping its memory. */
static inline void cw_buf_reset(struct cw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
/* Makes room for n more bytes (plus the NUL). */
void cw_buf_grow(struct cw_buf *b, size_t n);
void cw_buf_add_slow(struct cw_buf *b, const void *p, size_t n);
/* Inline while the bytes fit: the JSON writer appends many short pieces. */
static inline void cw_buf_add(struct cw_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap || !n) {
        cw_buf_add_slow(b, p, n);
        return;
    }
    __builtin_memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}
static inline void cw_buf_adds(struct cw_buf *b, const char *s)
{
    cw_buf_add(b, s, __builtin_strlen(s));
}
static inline void cw_buf_addc(struct cw_buf *b, char c)
{
    cw_buf_add(b, &c, 1);
}
void cw_buf_add_int(struct cw_buf *b, int64_t v);
/* The contents as a C string ("" when empty). Borrowed. */
const char *cw_buf_cstr(struct cw_buf *b);
/* Hands the contents over as a malloc'd C string and empties the buffer. */
char *cw_buf_take(struct cw_buf *b);

/* Appends s (n bytes, valid UTF-8) as a quoted JSON string. */
void cw_json_add_string(struct cw_buf *b, const char *s, size_t n);
/* Appends v in compact form; NULL is written as null. */
void cw_json_add(struct cw_buf *b, const json_t *v);

#endif
