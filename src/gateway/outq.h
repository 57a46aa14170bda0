/*
 * outq.h - the frames waiting to go out on one WebSocket connection.
 *
 * Items are shared update frames (by reference: one committed event may be
 * queued for thousands of connections) or small owned texts (acks, errors,
 * pongs, close frames). Nothing is copied on the way out: cw_outq_gather()
 * describes the next frames as iovecs, header and payload, for one writev,
 * and cw_outq_advance() drops what the kernel took, remembering how far
 * into the first frame a short write got.
 */
#ifndef CW_OUTQ_H
#define CW_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct cw_update;

#define CW_WS_FIN_TEXT  0x81
#define CW_WS_FIN_CLOSE 0x88
#define CW_WS_FIN_PING  0x89
#define CW_WS_FIN_PONG  0x8a

struct cw_outq_item {
    struct cw_update *u; /* a reference, or NULL for text */
    char *text;          /* owned, when u is NULL */
    size_t len;          /* payload bytes */
    unsigned char op;    /* first header byte: FIN and opcode */
};

struct cw_outq {
    struct cw_outq_item *items; /* a ring */
    size_t head, len, cap;
    size_t sent;   /* bytes of the first item already written, header included */
    size_t bytes;  /* bytes still to write, headers included */
    size_t *total; /* when set, every change to bytes is made there too (a sum over queues) */
};

/* Queues u (takes a reference of its own). */
void cw_outq_push_update(struct cw_outq *q, struct cw_update *u);
/* Queues a frame with a copy of text. */
void cw_outq_push_text(struct cw_outq *q, unsigned char op, const char *text, size_t len);

/* Room for the headers of the frames gather describes: 10 bytes each. */
typedef unsigned char cw_outq_hdr[10];

/*
 * Describes the frames from the first unwritten byte on, into at most
 * max_iov iovecs (two per frame, so hdrs needs max_iov / 2 entries) and
 * about max_bytes bytes (at least one frame). Returns how many iovecs.
 */
size_t cw_outq_gather(const struct cw_outq *q, struct iovec *iov, size_t max_iov, cw_outq_hdr *hdrs,
                      size_t max_bytes);

/* n bytes were written: returns how many frames are now complete; *close_done when a close frame
 * was among them. */
size_t cw_outq_advance(struct cw_outq *q, size_t n, bool *close_done);

/* Drops every frame not yet started (a started one must finish, or the stream breaks). */
void cw_outq_drop_unstarted(struct cw_outq *q);
void cw_outq_release(struct cw_outq *q);

#endif
