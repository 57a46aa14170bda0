/*
 * fuzz_frame.c - libFuzzer target for the WebSocket frame decoder
 * (src/gateway/wsframe.h) and the UTF-8 check (src/core/utf8.h).
 *
 * An input is [max_frame][stop][k][k piece sizes][stream]: the stream is fed
 * to a fresh decoder whole, one byte at a time, and in pieces of the given
 * sizes (used in turn), each piece in a buffer of exactly its size. All
 * three must hand out the same messages and control frames, in the same
 * order, and end in the same result; a run where the control callback
 * returns nonzero at the stop-th control frame must stop there in every
 * cut. Data must point into the piece being fed, and no more bytes may come
 * out than went in. Every text message and close reason goes through
 * cw_utf8_valid, which must agree with a table-driven reference (as must
 * the raw input). Run by `make fuzz`; seeds in tests/fuzz/corpus/frame/.
 */
#include "core/utf8.h"
#include "gateway/wsframe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STOP_RC 77

/* ------------------------------------------------------- the reference */

/* Well-formed UTF-8 as Table 3-7 of the Unicode standard lists it. */
static bool ref_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = p[i];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;
        if (b <= 0x7f) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf)
            len = 2;
        else if (b == 0xe0)
            len = 3, lo = 0xa0;
        else if (b == 0xed)
            len = 3, hi = 0x9f;
        else if (b >= 0xe1 && b <= 0xef)
            len = 3;
        else if (b == 0xf0)
            len = 4, lo = 0x90;
        else if (b == 0xf4)
            len = 4, hi = 0x8f;
        else if (b >= 0xf1 && b <= 0xf3)
            len = 4;
        else
            return false;
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t j = 2; j < len; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xbf)
                return false;
        i += len;
    }
    return true;
}

static void check_utf8(const unsigned char *p, size_t n)
{
    static const unsigned char empty[1];
    if (cw_utf8_valid(n ? p : empty, n) != ref_utf8(p, n)) {
        fprintf(stderr, "fuzz_frame: cw_utf8_valid disagrees with the reference on %zu bytes\n", n);
        abort();
    }
}

/* ------------------------------------------------------- the transcript */

struct log {
    unsigned char *p; /* events: tag, 8-byte length, bytes */
    size_t n, cap;
    unsigned char *msg; /* the message being received */
    size_t msg_len, msg_cap;
    bool in_msg, msg_binary;
    const unsigned char *in; /* the piece being fed */
    size_t in_len;
    size_t out_bytes;               /* payload handed out so far */
    unsigned control_seen, stop_at; /* stop_at: the control frame to stop at, 0 for none */
};

static void grow(unsigned char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    *cap = need * 2 + 64;
    *p = realloc(*p, *cap);
    if (!*p)
        abort();
}

static void event(struct log *l, unsigned char tag, const unsigned char *p, size_t n)
{
    grow(&l->p, &l->cap, l->n + 9 + n);
    l->p[l->n++] = tag;
    for (int i = 0; i < 8; i++)
        l->p[l->n++] = (unsigned char)((uint64_t)n >> (8 * i));
    if (n)
        memcpy(l->p + l->n, p, n);
    l->n += n;
}

static int on_data(void *arg, bool binary, const unsigned char *p, size_t n, bool last)
{
    struct log *l = arg;
    if (!n && !last)
        abort(); /* an empty piece that ends nothing */
    if (n && (p < l->in || p + n > l->in + l->in_len))
        abort(); /* data from outside what was fed */
    if (l->in_msg && binary != l->msg_binary)
        abort();
    l->out_bytes += n;
    l->in_msg = true;
    l->msg_binary = binary;
    grow(&l->msg, &l->msg_cap, l->msg_len + n);
    if (n)
        memcpy(l->msg + l->msg_len, p, n);
    l->msg_len += n;
    if (last) {
        if (!binary)
            check_utf8(l->msg, l->msg_len);
        event(l, binary ? 'B' : 'T', l->msg, l->msg_len);
        l->msg_len = 0;
        l->in_msg = false;
    }
    return 0;
}

static int on_control(void *arg, unsigned char op, const unsigned char *p, size_t n)
{
    struct log *l = arg;
    if (n > 125 || (op != CW_WS_OP_CLOSE && op != CW_WS_OP_PING && op != CW_WS_OP_PONG))
        abort();
    l->out_bytes += n;
    if (op == CW_WS_OP_CLOSE && n > 2)
        check_utf8(p + 2, n - 2);
    event(l, op, p, n);
    return ++l->control_seen == l->stop_at ? STOP_RC : 0;
}

/*
 * Feeds stream[0..n) in pieces: sizes[i % k] bytes each (a size of 0 feeds
 * nothing), or all at once when k is 0. Ends the log with what was left of
 * an unfinished message and the result.
 */
static void run(struct log *l, const unsigned char *stream, size_t n, uint64_t max_frame,
                const unsigned char *sizes, size_t k, unsigned stop_at)
{
    struct cw_wsdec d;
    memset(&d, 0, sizeof(d));
    d.max_frame = max_frame;
    memset(l, 0, sizeof(*l));
    l->stop_at = stop_at;
    const struct cw_wsdec_sink sink = {on_data, on_control, l};
    int rc = 0;
    size_t at = 0, turn = 0, fed = 0;
    /* Each piece in a buffer of exactly its size, kept while the size stays the same. */
    unsigned char *piece = NULL;
    size_t piece_cap = SIZE_MAX;
    while (!rc && at < n) {
        size_t len = k ? sizes[turn++ % k] : n;
        if (len > n - at)
            len = n - at;
        if (len != piece_cap) {
            free(piece);
            piece = malloc(len ? len : 1);
            piece_cap = len;
            if (!piece)
                abort();
        }
        if (len)
            memcpy(piece, stream + at, len);
        l->in = piece;
        l->in_len = len;
        rc = cw_wsdec_feed(&d, piece, len, &sink);
        at += len;
        fed += len;
        if (l->out_bytes > fed)
            abort(); /* more payload out than bytes in */
    }
    free(piece);
    if (rc && rc != CW_WS_CLOSE_PROTOCOL && rc != CW_WS_CLOSE_TOO_BIG && rc != STOP_RC)
        abort();
    if (rc == CW_WS_CLOSE_TOO_BIG && !max_frame)
        abort();
    if (rc == STOP_RC && l->control_seen != stop_at)
        abort();
    if (l->in_msg)
        event(l, l->msg_binary ? 'b' : 't', l->msg, l->msg_len);
    unsigned char r[4] = {(unsigned char)rc, (unsigned char)(rc >> 8), 0, 0};
    event(l, '=', r, sizeof(r));
}

static void same(const struct log *a, const struct log *b, const char *what)
{
    if (a->n != b->n || memcmp(a->p, b->p, a->n) != 0) {
        fprintf(stderr, "fuzz_frame: fed %s, the decoder says something else\n", what);
        abort();
    }
}

static void log_release(struct log *l)
{
    free(l->p);
    free(l->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_utf8(data, size);
    if (size < 3)
        return 0;
    /* A small max_frame, so that 1009 is reached; 0 (no limit) once in 8. */
    uint64_t max_frame = data[0] & 7 ? (uint64_t)data[0] << (data[0] & 7) : 0;
    unsigned stop_at = data[1] & 7;
    size_t k = data[2] & 15;
    if (size - 3 < k)
        return 0;
    const unsigned char *sizes = data + 3;
    const unsigned char *stream = sizes + k;
    size_t n = size - 3 - k;
    /* Pieces of zero bytes only would never end. */
    bool some = false;
    for (size_t i = 0; i < k; i++)
        some |= sizes[i] != 0;
    if (!some)
        k = 0;

    static const unsigned char one = 1;
    struct log whole, bytewise, pieces;
    run(&whole, stream, n, max_frame, NULL, 0, 0);
    run(&bytewise, stream, n, max_frame, &one, 1, 0);
    same(&whole, &bytewise, "byte by byte");
    run(&pieces, stream, n, max_frame, sizes, k, 0);
    same(&whole, &pieces, "in pieces");
    log_release(&bytewise);
    log_release(&pieces);
    log_release(&whole);

    if (stop_at) {
        /* Stopped by the control callback: the same wherever the cuts fall. */
        run(&whole, stream, n, max_frame, NULL, 0, stop_at);
        run(&bytewise, stream, n, max_frame, &one, 1, stop_at);
        same(&whole, &bytewise, "byte by byte, stopping");
        run(&pieces, stream, n, max_frame, sizes, k, stop_at);
        same(&whole, &pieces, "in pieces, stopping");
        log_release(&bytewise);
        log_release(&pieces);
        log_release(&whole);
    }
    return 0;
}
