/*
 * wire.c - decoding client messages and encoding server frames (see wire.h).
 *
 * Sits between the WebSocket callbacks and the engine: the gateway hands
 * each text frame to cw_wire_parse() and sends the text the cw_wire_*
 * encoders append. A command of the usual shape is read by envscan.c
 * without a JSON tree; everything else, and every error, is parsed by
 * jansson (strict: UTF-8 checked, duplicate keys and NUL characters refused,
 * nesting capped by the library). Encoding goes through the compact writer
 * of core/buf.h, without jansson objects.
 *
 * It does not look up command names, validate command data, or know about
 * sessions and size limits: those belong to the gateway and the registry.
 */
#include "wire.h"

#include "envscan.h"

#include <stddef.h>
#include <string.h>

static int malformed(struct cw_error *err, const char *msg)
{
    return cw_error_set(err, CW_ERR_MALFORMED, "malformed", "%s", msg);
}

/* A short message for a jansson parse failure. jansson's own text quotes the
 * input near the error, which may be invalid UTF-8: it never reaches the wire. */
static int not_json(struct cw_error *err, const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_invalid_utf8:
        return malformed(err, "message is not valid UTF-8");
    case json_error_duplicate_key:
        return malformed(err, "duplicate key in a JSON object");
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return malformed(err, "strings may not contain \\u0000");
    case json_error_numeric_overflow:
        return malformed(err, "number out of range");
    case json_error_stack_overflow:
        return malformed(err, "JSON nested too deeply");
    case json_error_premature_end_of_input:
        return malformed(err, "message is not JSON: unexpected end of input");
    case json_error_end_of_input_expected:
        return malformed(err, "message is not JSON: text after the end of the value");
    default:
        return cw_error_set(err, CW_ERR_MALFORMED, "malformed",
                            "message is not JSON: invalid syntax at byte %d", jerr->position);
    }
}

/*
 * Messages are parsed with NUL allowed in strings, so that a ping may carry
 * any JSON value back. Everything the server keeps or looks up by name is
 * then checked to hold none: the C side reads those strings to their NUL.
 */
static bool plain_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/*
 * Does v hold a NUL in an object key, or (when in_values) in a string
 * value? Keys are C strings everywhere, so no message may put one there.
 */
static bool has_nul(const json_t *v, bool in_values, int depth)
{
    const char *key;
    size_t key_len, i;
    json_t *item;
    if (depth > 64)
        return true; /* deeper than any message needs: refuse rather than recurse on */
    switch (json_typeof(v)) {
    case JSON_STRING:
        return in_values && !plain_string(v);
    case JSON_OBJECT:
        json_object_keylen_foreach((json_t *)v, key, key_len, item)
        {
            if (strlen(key) != key_len || has_nul(item, in_values, depth + 1))
                return true;
        }
        return false;
    case JSON_ARRAY:
        json_array_foreach(v, i, item)
        {
            if (has_nul(item, in_values, depth + 1))
                return true;
        }
        return false;
    default:
        return false;
    }
}

static bool valid_client_id(const json_t *v)
{
    if (!plain_string(v))
        return false;
    size_t n = json_string_length(v);
    return n > 0 && n <= CW_WIRE_CLIENT_ID_MAX;
}

static bool valid_seq(const json_t *v)
{
    if (!json_is_integer(v))
        return false;
    json_int_t n = json_integer_value(v);
    return n >= 0 && n < CW_WIRE_SEQ_LIMIT;
}

static int parse_cmd(json_t *msg, struct cw_client_msg *out, struct cw_error *err)
{
    json_t *id = json_array_get(msg, 1), *seq = json_array_get(msg, 2);

    out->type = CW_MSG_CMD;
    /* Echo what can be read, even when something else is wrong. */
    if (valid_client_id(id))
        out->client_id = json_string_value(id);
    if (valid_seq(seq)) {
        out->has_seq = true;
        out->client_seq = json_integer_value(seq);
    }

    if (json_array_size(msg) != 4)
        return malformed(err, "cmd takes 3 elements after its type: client_id, client_seq and "
                              "the command object");
    if (!out->client_id)
        return malformed(err, "client_id must be a non-empty string of at most 128 bytes");
    if (!out->has_seq)
        return malformed(err, "client_seq must be an integer between 0 and 2^53-1");

    json_t *cmd = json_array_get(msg, 3);
    if (!json_is_object(cmd))
        return malformed(err, "the command must be an object with name and data");
    json_t *name = json_object_get(cmd, "name");
    if (!plain_string(name))
        return malformed(err, "the command name must be a string");
    json_t *data = json_object_get(cmd, "data");
    if (!json_is_object(data))
        return malformed(err, "the command data must be an object");
    json_t *meta = json_object_get(cmd, "meta");
    if (json_is_null(meta))
        meta = NULL;
    if (meta && !json_is_object(meta))
        return malformed(err, "the command meta must be an object when present");
    if (has_nul(data, true, 0) || (meta && has_nul(meta, true, 0)))
        return malformed(err, "strings in data and meta must not contain NUL characters, nor"
                              " nest deeper than 64 levels");

    out->name = json_string_value(name);
    out->data = data;
    out->meta = meta;
    return CW_OK;
}

static int parse_resume(json_t *msg, struct cw_client_msg *out, struct cw_error *err)
{
    out->type = CW_MSG_RESUME;
    if (json_array_size(msg) != 2)
        return malformed(err, "resume takes 1 element after its type: after_position");
    json_t *pos = json_array_get(msg, 1);
    if (!json_is_integer(pos) || json_integer_value(pos) < 0)
        return malformed(err, "after_position must be an integer >= 0");
    out->after_position = json_integer_value(pos);
    return CW_OK;
}

static int parse_ping(json_t *msg, struct cw_client_msg *out, struct cw_error *err)
{
    out->type = CW_MSG_PING;
    if (json_array_size(msg) != 2)
        return malformed(err, "ping takes 1 element after its type: the payload");
    out->ping = json_array_get(msg, 1);
    if (has_nul(out->ping, false, 0))
        return malformed(err, "object keys must not contain NUL characters, nor nest deeper"
                              " than 64 levels");
    return CW_OK;
}

/* Zeroes what the decoders read and fill; the scanner's buffers are written before use. */
static void clear(struct cw_client_msg *m)
{
    memset(m, 0, offsetof(struct cw_client_msg, id_buf));
}

int cw_wire_parse(const char *text, size_t len, struct cw_client_msg *out, struct cw_error *err)
{
    clear(out);
    if (cw_envscan_cmd(text, len, out))
        return CW_OK;
    return cw_wire_parse_full(text, len, out, err);
}

int cw_wire_parse_full(const char *text, size_t len, struct cw_client_msg *out,
                       struct cw_error *err)
{
    clear(out);
    if (!text || len == 0)
        return malformed(err, "message is empty");

    json_error_t jerr;
    /* DECODE_ANY: a bare scalar is answered "must be an array", not "not JSON". */
    out->root =
        json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!out->root)
        return not_json(err, &jerr);

    json_t *msg = out->root;
    if (!json_is_array(msg))
        return malformed(err, "message must be a JSON array");
    if (json_array_size(msg) == 0)
        return malformed(err, "message must not be an empty array");
    json_t *type_v = json_array_get(msg, 0);
    const char *type = plain_string(type_v) ? json_string_value(type_v) : NULL;
    if (!type)
        return malformed(err, "the first element must be the message type, a string");
    if (strcmp(type, "cmd") == 0)
        return parse_cmd(msg, out, err);
    if (strcmp(type, "resume") == 0)
        return parse_resume(msg, out, err);
    if (strcmp(type, "ping") == 0)
        return parse_ping(msg, out, err);
    return malformed(err, "unknown message type (expected cmd, resume or ping)");
}

static json_t *take(struct cw_client_msg *m, json_t **v)
{
    json_t *taken = *v;
    if (m->scanned)
        *v = NULL; /* owned: handed over */
    else
        json_incref(taken);
    return taken;
}

json_t *cw_wire_take_data(struct cw_client_msg *m)
{
    return take(m, &m->data);
}

json_t *cw_wire_take_meta(struct cw_client_msg *m)
{
    return take(m, &m->meta);
}

void cw_wire_msg_release(struct cw_client_msg *m)
{
    if (!m)
        return;
    json_decref(m->root);
    if (m->scanned) {
        json_decref(m->data);
        json_decref(m->meta);
    }
    clear(m);
}

/* ---------------------------------------------------------------- encoders */

/*
 * Length of the longest prefix of s[0..n) that is valid UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF).
 */
static size_t utf8_prefix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII, the usual case (ids, UUIDs, codes), 8 bytes a step. */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = p[i];
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return i;
        }
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return i;
        i += len;
    }
    return n;
}

/* Appends s as a JSON string, cut at its first invalid UTF-8 byte; NULL as "". */
static void add_text(struct cw_buf *b, const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;
    cw_json_add_string(b, s ? s : "", utf8_prefix(s ? s : "", n));
}

static void add_head(struct cw_buf *b, const char *type, const char *client_id, bool has_seq,
                     int64_t seq)
{
    cw_buf_addc(b, '[');
    cw_json_add_string(b, type, strlen(type));
    cw_buf_addc(b, ',');
    if (client_id)
        add_text(b, client_id, SIZE_MAX);
    else
        cw_buf_adds(b, "null");
    cw_buf_addc(b, ',');
    if (has_seq)
        cw_buf_add_int(b, seq);
    else
        cw_buf_adds(b, "null");
    cw_buf_addc(b, ',');
}

void cw_wire_ack(struct cw_buf *b, const char *client_id, int64_t seq, const char *command_uuid,
                 bool duplicate)
{
    add_head(b, "cmd-ack", client_id, true, seq);
    cw_buf_adds(b, "{\"command_uuid\":");
    add_text(b, command_uuid, SIZE_MAX);
    cw_buf_adds(b, duplicate ? ",\"duplicate\":true}]" : ",\"duplicate\":false}]");
}

void cw_wire_error(struct cw_buf *b, const char *client_id, bool has_seq, int64_t seq,
                   const struct cw_error *err)
{
    add_head(b, "error", client_id, has_seq, seq);
    cw_buf_adds(b, "{\"code\":");
    add_text(b, err->code, sizeof(err->code));
    cw_buf_adds(b, ",\"message\":");
    add_text(b, err->message, sizeof(err->message));
    cw_buf_adds(b, ",\"details\":");
    cw_json_add(b, err->details);
    cw_buf_adds(b, "}]");
}

void cw_wire_rejected(struct cw_buf *b, const char *client_id, int64_t seq,
                      const char *command_uuid, const char *code, const char *message)
{
    add_head(b, "rejected", client_id, true, seq);
    cw_buf_adds(b, "{\"command_uuid\":");
    add_text(b, command_uuid, SIZE_MAX);
    cw_buf_adds(b, ",\"code\":");
    add_text(b, code, SIZE_MAX);
    cw_buf_adds(b, ",\"message\":");
    add_text(b, message, SIZE_MAX);
    cw_buf_adds(b, "}]");
}

void cw_wire_resumed(struct cw_buf *b, int64_t last_position)
{
    cw_buf_adds(b, "[\"resumed\",");
    cw_buf_add_int(b, last_position);
    cw_buf_addc(b, ']');
}

void cw_wire_pong(struct cw_buf *b, const json_t *payload)
{
    cw_buf_adds(b, "[\"pong\",");
    cw_json_add(b, payload);
    cw_buf_addc(b, ']');
}
