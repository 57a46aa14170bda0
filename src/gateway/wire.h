/*
 * wire.h - the JSON codec of the WebSocket protocol (PROTOCOL.md, "WebSocket
 * messages"): decodes one client text message, encodes the server's frames.
 *
 * Pure: no libwebsockets, no I/O, no clock, no globals. The gateway enforces
 * the size limit before it calls the decoder and sends what the encoders
 * wrote; what a message means (is the command known, is the client allowed)
 * is decided elsewhere.
 *
 * Ownership: arguments are borrowed. A decoded struct cw_client_msg owns its
 * parsed JSON (root); every other pointer in it points into root (or, for a
 * scanned command, into the struct and its own data and meta) and lives
 * until cw_wire_msg_release(). Encoders copy what they are given into the
 * caller's buffer.
 *
 * Thread: any; nothing is shared.
 */
#ifndef CW_WIRE_H
#define CW_WIRE_H

#include "calderwood.h"
#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_WIRE_CLIENT_ID_MAX 128         /* bytes */
#define CW_WIRE_SEQ_LIMIT     (1LL << 53) /* client_seq < this */
#define CW_WIRE_NAME_SCAN_MAX 63          /* longer command names take the full parse */

enum cw_msg_type { CW_MSG_CMD, CW_MSG_RESUME, CW_MSG_PING };

struct cw_client_msg {
    enum cw_msg_type type;
    json_t *root;           /* the parsed message; owns what the fields point into */
    const char *client_id;  /* cmd; NULL when unreadable */
    bool has_seq;           /* cmd: client_seq was readable */
    int64_t client_seq;     /* cmd */
    const char *name;       /* cmd: the command name */
    json_t *data;           /* cmd: borrowed object */
    json_t *meta;           /* cmd: borrowed object, or NULL when absent or null */
    int64_t after_position; /* resume */
    json_t *ping;           /* ping: the payload, borrowed (any value, even null) */
    /* Set by the scanner (envscan.h): root is NULL, client_id and name point into the
     * buffers below, and data and meta are owned here rather than borrowed from root. */
    bool scanned;
    char id_buf[CW_WIRE_CLIENT_ID_MAX + 1];
    char name_buf[CW_WIRE_NAME_SCAN_MAX + 1];
};

/*
 * Decodes one client message: len bytes of text (need not be NUL-terminated).
 *
 *   ["cmd", CLIENT_ID, CLIENT_SEQ, {"name": STRING, "data": OBJECT, "meta": OBJECT}]
 *   ["resume", AFTER_POSITION]
 *   ["ping", ANY]
 *
 * CLIENT_ID is a non-empty string of at most CW_WIRE_CLIENT_ID_MAX bytes;
 * CLIENT_SEQ an integer 0 <= n < 2^53 (1.0 is a real, and refused);
 * AFTER_POSITION an integer >= 0. "meta" may be absent or null (both give
 * meta == NULL); other keys of the command object are ignored. Any JSON
 * value may follow "ping", null included. Duplicate object keys, invalid
 * UTF-8 and "\u0000" in strings are refused anywhere in the message.
 *
 * Returns CW_OK with *out filled, or CW_ERR_MALFORMED with err (optional)
 * set to code "malformed" and a short message saying what is wrong. Even on
 * error, a "cmd" message's client_id and has_seq/client_seq are filled when
 * those elements are present and valid (each on its own), so that the error
 * frame can echo them; they are NULL/false otherwise.
 *
 * Whatever the result, the caller releases *out with cw_wire_msg_release().
 * Allocates only in proportion to len.
 *
 * A command of the common shape (flat data and meta, no escapes: envscan.h)
 * is read by the scanner without a JSON tree; anything else, and every
 * error, goes through cw_wire_parse_full(). The result is the same either
 * way but for where the strings live.
 */
int cw_wire_parse(const char *text, size_t len, struct cw_client_msg *out, struct cw_error *err);

/* The same decoding, always through jansson: the reference the scanner is tested against. */
int cw_wire_parse_full(const char *text, size_t len, struct cw_client_msg *out,
                       struct cw_error *err);

/*
 * A reference to a decoded command's data (or meta, NULL when it has none)
 * for the caller to keep: a scanned message hands over its own, which it
 * then no longer holds; a parsed one gives a new reference into its tree.
 */
json_t *cw_wire_take_data(struct cw_client_msg *m);
json_t *cw_wire_take_meta(struct cw_client_msg *m);

/* Frees what *m owns and zeroes its header. Safe on a zeroed struct and on NULL. */
void cw_wire_msg_release(struct cw_client_msg *m);

/*
 * Encoders. Each appends one complete frame text to b (no newline, compact,
 * in the key order shown) and nothing else. Strings are escaped as JSON
 * requires; client_id and payloads come from cw_wire_parse() and are valid
 * UTF-8 already. Free-text fields that may have been cut short by a
 * fixed-size buffer (codes and messages) are written up to their first
 * invalid UTF-8 byte, so a frame is always valid UTF-8.
 */

/* ["cmd-ack", CLIENT_ID, SEQ, {"command_uuid": UUID, "duplicate": BOOL}] */
void cw_wire_ack(struct cw_buf *b, const char *client_id, int64_t seq, const char *command_uuid,
                 bool duplicate);

/*
 * ["error", CLIENT_ID|null, SEQ|null, {"code": ..., "message": ..., "details": ANY|null}]
 * client_id NULL writes null; !has_seq writes null for the sequence. The
 * code, message and details come from err (details null when err->details
 * is NULL).
 */
void cw_wire_error(struct cw_buf *b, const char *client_id, bool has_seq, int64_t seq,
                   const struct cw_error *err);

/* ["rejected", CLIENT_ID, SEQ, {"command_uuid": UUID, "code": CODE, "message": TEXT}] */
void cw_wire_rejected(struct cw_buf *b, const char *client_id, int64_t seq,
                      const char *command_uuid, const char *code, const char *message);

/* ["resumed", LAST_POSITION] */
void cw_wire_resumed(struct cw_buf *b, int64_t last_position);

/* ["pong", PAYLOAD]; payload NULL writes null. */
void cw_wire_pong(struct cw_buf *b, const json_t *payload);

#endif
