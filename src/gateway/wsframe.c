#include "wsframe.h"

#include <string.h>

static bool is_control(unsigned char op)
{
    return op >= CW_WS_OP_CLOSE;
}

/*
 * The first two bytes say enough to refuse most bad frames: checked before
 * the rest of the header, so a peer waiting for an answer gets it.
 */
static int check_start(const struct cw_wsdec *d)
{
    const unsigned char *h = d->hdr;
    unsigned char op = h[0] & 0x0f;
    if ((h[0] & 0x70) || !(h[1] & 0x80))
        return CW_WS_CLOSE_PROTOCOL; /* RSV bits, or an unmasked client frame */
    if (is_control(op))
        return op > CW_WS_OP_PONG || !(h[0] & 0x80) || (h[1] & 0x7f) > sizeof(d->ctl)
                   ? CW_WS_CLOSE_PROTOCOL
                   : 0;
    if (op > CW_WS_OP_BINARY || (op == CW_WS_OP_CONT) != (d->msg_op != 0))
        return CW_WS_CLOSE_PROTOCOL; /* reserved opcode, orphan continuation, or nested message */
    return 0;
}

/* The header is complete: set up the payload. 0, or a close code. */
static int begin_frame(struct cw_wsdec *d)
{
    const unsigned char *h = d->hdr;
    d->fin = h[0] & 0x80;
    d->op = h[0] & 0x0f;
    uint64_t len = h[1] & 0x7f;
    size_t at = 2;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        at = 10;
        if (len >> 63)
            return CW_WS_CLOSE_PROTOCOL;
    }
    memcpy(d->mask, h + at, 4);
    d->mask_at = 0;
    d->left = len;
    d->ctl_len = 0;
    if (is_control(d->op))
        return 0;
    if (d->max_frame && len > d->max_frame)
        return CW_WS_CLOSE_TOO_BIG;
    if (d->op != CW_WS_OP_CONT)
        d->msg_op = d->op;
    return 0;
}

/* Header bytes from in; returns how many were taken. */
static size_t take_header(struct cw_wsdec *d, const unsigned char *in, size_t len)
{
    size_t taken = 0;
    while (taken < len && d->hdr_len < d->hdr_need) {
        d->hdr[d->hdr_len++] = in[taken++];
        if (d->hdr_len == 2) {
            unsigned char l = d->hdr[1] & 0x7f;
            d->hdr_need = 2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + 4;
            if ((d->error = check_start(d)))
                break;
        }
    }
    return taken;
}

static void unmask(struct cw_wsdec *d, unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= d->mask[(d->mask_at + i) & 3];
    d->mask_at = (unsigned)((d->mask_at + n) & 3);
}

/* Payload bytes; at the frame's end, hands over a control frame or ends a message. */
static int take_payload(struct cw_wsdec *d, unsigned char *p, size_t n,
                        const struct cw_wsdec_sink *s)
{
    unmask(d, p, n);
    d->left -= n;
    bool end = d->left == 0;
    if (is_control(d->op)) {
        memcpy(d->ctl + d->ctl_len, p, n);
        d->ctl_len += n;
        return end ? s->control(s->arg, d->op, d->ctl, d->ctl_len) : 0;
    }
    bool last = end && d->fin;
    bool binary = d->msg_op == CW_WS_OP_BINARY;
    if (last)
        d->msg_op = 0;
    return n || last ? s->data(s->arg, binary, p, n, last) : 0;
}

int cw_wsdec_feed(struct cw_wsdec *d, unsigned char *in, size_t len, const struct cw_wsdec_sink *s)
{
    if (d->error)
        return d->error; /* a broken stream stays broken */
    while (len) {
        if (d->hdr_need == 0)
            d->hdr_need = 2;
        if (d->hdr_len < d->hdr_need) {
            size_t n = take_header(d, in, len);
            in += n;
            len -= n;
            if (d->error)
                return d->error;
            if (d->hdr_len < d->hdr_need)
                return 0;
            if ((d->error = begin_frame(d)))
                return d->error;
        }
        size_t n = d->left < len ? (size_t)d->left : len;
        int rc = take_payload(d, in, n, s);
        in += n;
        len -= n;
        if (!d->left)
            d->hdr_len = d->hdr_need = 0; /* the next frame starts */
        if (rc)
            return rc;
    }
    return 0;
}
