/*
 * wsframe.h - RFC 6455 frames from a client: an incremental decoder.
 *
 * Bytes go in as they arrive, in pieces of any size; what comes out is the
 * payload of data messages (in pieces, unmasked) and whole control frames.
 * Every framing rule a server must enforce is checked here: client frames
 * are masked, no RSV bits (no extension is negotiated), known opcodes only,
 * control frames short and unfragmented, continuation only inside a
 * fragmented message and nothing else inside one. What the bytes mean
 * (UTF-8, size limits of a message, binary or not) is the caller's.
 */
#ifndef CW_WSFRAME_H
#define CW_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_WS_OP_CONT   0x0
#define CW_WS_OP_TEXT   0x1
#define CW_WS_OP_BINARY 0x2
#define CW_WS_OP_CLOSE  0x8
#define CW_WS_OP_PING   0x9
#define CW_WS_OP_PONG   0xa

#define CW_WS_CLOSE_PROTOCOL 1002
#define CW_WS_CLOSE_TOO_BIG  1009

struct cw_wsdec {
    uint64_t max_frame; /* a data frame announcing more payload than this: 1009 (0 = no limit) */
    /* the frame being read */
    unsigned char hdr[14];
    size_t hdr_len, hdr_need;
    uint64_t left; /* payload bytes still to come */
    unsigned char mask[4];
    unsigned mask_at;
    unsigned char op;
    bool fin;
    unsigned char msg_op; /* opcode of the open fragmented message, 0 when none */
    unsigned char ctl[125];
    size_t ctl_len;
    int error; /* the close code of the framing error met, once met */
};

struct cw_wsdec_sink {
    /* A piece of a data message; last when the message ends with it (n may be 0). */
    int (*data)(void *arg, bool binary, const unsigned char *p, size_t n, bool last);
    /* A whole ping, pong or close frame. */
    int (*control)(void *arg, unsigned char op, const unsigned char *p, size_t n);
    void *arg;
};

/*
 * Decodes in[0..len), unmasking it in place. Returns 0 when all was taken;
 * the close code of a framing error (1002, or 1009 past max_frame), which
 * every later call returns again (the stream cannot be read on); or the first nonzero value a sink
 * function returned, which stops decoding where it was.
 */
int cw_wsdec_feed(struct cw_wsdec *d, unsigned char *in, size_t len, const struct cw_wsdec_sink *s);

#endif
