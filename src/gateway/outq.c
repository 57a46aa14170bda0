#include "outq.h"

#include "core/alloc.h"
#include "engine/update.h"

#include <stdlib.h>
#include <string.h>

#define KEEP_ITEMS 16 /* ring slots an emptied queue keeps */

static size_t header_len(size_t len)
{
    return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

static size_t put_header(unsigned char *p, unsigned char op, size_t len)
{
    p[0] = op;
    if (len < 126) {
        p[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static void grow_bytes(struct cw_outq *q, size_t n)
{
    q->bytes += n;
    if (q->total)
        *q->total += n;
}

static void shrink_bytes(struct cw_outq *q, size_t n)
{
    q->bytes -= n;
    if (q->total)
        *q->total -= n;
}

static struct cw_outq_item *at(const struct cw_outq *q, size_t i)
{
    return &q->items[(q->head + i) % q->cap];
}

static void push(struct cw_outq *q, struct cw_outq_item item)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct cw_outq_item *items = cw_xmalloc(cap * sizeof(*items));
        for (size_t i = 0; i < q->len; i++)
            items[i] = *at(q, i);
        free(q->items);
        q->items = items;
        q->head = 0;
        q->cap = cap;
    }
    *at(q, q->len++) = item;
    grow_bytes(q, header_len(item.len) + item.len);
}

void cw_outq_push_update(struct cw_outq *q, struct cw_update *u)
{
    push(q, (struct cw_outq_item){cw_update_ref(u), NULL, u->frame_len, CW_WS_FIN_TEXT});
}

void cw_outq_push_text(struct cw_outq *q, unsigned char op, const char *text, size_t len)
{
    char *copy = cw_xmalloc(len + 1);
    memcpy(copy, text, len);
    push(q, (struct cw_outq_item){NULL, copy, len, op});
}

size_t cw_outq_gather(const struct cw_outq *q, struct iovec *iov, size_t max_iov, cw_outq_hdr *hdrs,
                      size_t max_bytes)
{
    /* Two iovecs per frame, header and payload; a short write may have taken part of either. */
    size_t n = 0, bytes = 0, skip = q->sent;
    for (size_t i = 0; i < q->len && n + 2 <= max_iov && (i == 0 || bytes < max_bytes); i++) {
        const struct cw_outq_item *it = at(q, i);
        unsigned char *hdr = hdrs[n / 2];
        size_t h = put_header(hdr, it->op, it->len);
        size_t hskip = skip < h ? skip : h, pskip = skip - hskip;
        iov[n++] = (struct iovec){hdr + hskip, h - hskip};
        iov[n++] = (struct iovec){(it->u ? it->u->frame : it->text) + pskip, it->len - pskip};
        bytes += h + it->len - skip;
        skip = 0;
    }
    return n;
}

static void drop_first(struct cw_outq *q)
{
    struct cw_outq_item *it = at(q, 0);
    cw_update_unref(it->u);
    free(it->text);
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

size_t cw_outq_advance(struct cw_outq *q, size_t n, bool *close_done)
{
    size_t done = 0;
    shrink_bytes(q, n);
    while (n && q->len) {
        const struct cw_outq_item *it = at(q, 0);
        size_t left = header_len(it->len) + it->len - q->sent;
        if (n < left) {
            q->sent += n;
            break;
        }
        n -= left;
        q->sent = 0;
        if (it->op == CW_WS_FIN_CLOSE && close_done)
            *close_done = true;
        drop_first(q);
        done++;
    }
    /* A burst grows the ring; an idle connection should not keep it. */
    if (!q->len && q->cap > KEEP_ITEMS) {
        free(q->items);
        q->items = NULL;
        q->head = q->cap = 0;
    }
    return done;
}

void cw_outq_drop_unstarted(struct cw_outq *q)
{
    size_t keep = q->sent ? 1 : 0;
    while (q->len > keep) {
        /* Drop from the tail: the head, when started, stays. */
        struct cw_outq_item *it = at(q, q->len - 1);
        shrink_bytes(q, header_len(it->len) + it->len);
        cw_update_unref(it->u);
        free(it->text);
        q->len--;
    }
}

void cw_outq_release(struct cw_outq *q)
{
    shrink_bytes(q, q->bytes);
    while (q->len)
        drop_first(q);
    free(q->items);
    memset(q, 0, sizeof(*q));
}
