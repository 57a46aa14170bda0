/*
 * scan.h - reading the server's messages without parsing them. At hundreds
 * of thousands of messages a second a full JSON parse per message would make
 * the load generator the bottleneck, so the few fields the benchmark needs
 * (type, client id, client seq, the bench timestamp in meta, an error code)
 * are found by scanning the bytes the server writes: no whitespace between
 * tokens, as its own JSON writer produces, though spaces are tolerated.
 */
#ifndef CW_BENCH_SCAN_H
#define CW_BENCH_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    MSG_OTHER = 0,
    MSG_ACK,      /* cmd-ack */
    MSG_UPDATE,   /* update */
    MSG_ERROR,    /* error */
    MSG_REJECTED, /* rejected */
    MSG_PONG,     /* pong */
    MSG_RESUMED   /* resumed */
};

struct msg {
    int type;
    const char *cid; /* the client id as written (no unescaping), NULL when null */
    size_t cid_len;
    int64_t seq;      /* -1 when null or absent */
    const char *rest; /* from the 4th element to the end */
    size_t rest_len;
};

/* Scans ["TYPE",CLIENT_ID,SEQ,...]. Returns false when p is not such an array. */
bool scan_msg(const char *p, size_t n, struct msg *m);

/* The integer at "meta":{"bt":N in an update's event, or -1. */
int64_t scan_bench_time(const char *p, size_t n);

/* Copies the string value of the first "code" key into buf; false if none. */
bool scan_code(const char *p, size_t n, char *buf, size_t cap);

/* Parses a decimal integer at *p (advancing it); -1 when there is none. */
int64_t scan_int(const char **p, const char *end);

#endif
