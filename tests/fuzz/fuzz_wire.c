/*
 * fuzz_wire.c - libFuzzer target for the WebSocket codec (src/gateway/wire.h).
 *
 * Each input is one client text message. Whatever cw_wire_parse() answers,
 * the frame the server would send back is encoded, and every frame must
 * parse back as strict JSON (so also as valid UTF-8) with the values that
 * went in. The command scanner (envscan.h) and the full jansson parse are
 * held side by side: what the scanner takes, the full parse must decode to
 * the same values (data and meta written out byte for byte), and
 * cw_wire_parse() must answer as the full parse does, errors included. Run
 * by `make fuzz`; seeds in tests/fuzz/corpus/wire/.
 */
#include "core/buf.h"
#include "core/error.h"
#include "gateway/envscan.h"
#include "gateway/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char UUID[] = "0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b";

static void die(const char *what, struct cw_buf *b)
{
    fprintf(stderr, "fuzz_wire: %s: %.*s\n", what, (int)(b->len > 2000 ? 2000 : b->len),
            cw_buf_cstr(b));
    abort();
}

/* The frame in b: strict JSON, an array of n elements, first the type. */
static json_t *frame(struct cw_buf *b, const char *type, size_t n)
{
    json_t *f = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!f || !json_is_array(f) || json_array_size(f) != n)
        die("not a frame", b);
    if (strcmp(json_string_value(json_array_get(f, 0)), type) != 0)
        die("wrong type", b);
    return f;
}

static void check_head(json_t *f, struct cw_buf *b, const char *client_id, bool has_seq,
                       int64_t seq)
{
    json_t *id = json_array_get(f, 1), *s = json_array_get(f, 2);
    if (client_id ? !json_is_string(id) || strcmp(json_string_value(id), client_id) != 0
                  : !json_is_null(id))
        die("client_id not echoed", b);
    if (has_seq ? !json_is_integer(s) || json_integer_value(s) != seq : !json_is_null(s))
        die("client_seq not echoed", b);
}

static bool same_json(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return a == b;
    char *da = json_dumps(a, JSON_COMPACT), *db = json_dumps(b, JSON_COMPACT);
    bool same = da && db && strcmp(da, db) == 0;
    free(da);
    free(db);
    return same;
}

static bool same_str(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* The echo and, on success, the command that a caller reads. */
static bool same_msg(const struct cw_client_msg *a, const struct cw_client_msg *b, bool ok)
{
    if (!same_str(a->client_id, b->client_id) || a->has_seq != b->has_seq ||
        a->client_seq != b->client_seq)
        return false;
    if (!ok || a->type != b->type)
        return !ok;
    if (a->type != CW_MSG_CMD)
        return true;
    return same_str(a->name, b->name) && same_json(a->data, b->data) && same_json(a->meta, b->meta);
}

/* The scanner against the full parse, and the gateway's entry against both. */
static void cross_check(const char *text, size_t len)
{
    struct cw_client_msg s = {0}, full, entry;
    struct cw_error e_full = {0}, e_entry = {0};
    struct cw_buf b = CW_BUF_INIT;
    bool scanned = cw_envscan_cmd(text, len, &s);
    int rc_full = cw_wire_parse_full(text, len, &full, &e_full);
    int rc_entry = cw_wire_parse(text, len, &entry, &e_entry);
    cw_buf_add(&b, text, len);
    if (scanned && (rc_full != CW_OK || !same_msg(&s, &full, true)))
        die("the scanner took what the full parse decodes otherwise", &b);
    if (!scanned && (s.data || s.meta || s.client_id || s.has_seq || s.scanned))
        die("a declined scan left something behind", &b);
    if (entry.scanned != scanned || rc_entry != rc_full ||
        !same_msg(&entry, &full, rc_full == CW_OK))
        die("cw_wire_parse and the full parse differ", &b);
    if (rc_full != CW_OK && strcmp(e_full.message, e_entry.message) != 0)
        die("cw_wire_parse and the full parse word an error differently", &b);
    cw_wire_msg_release(&s);
    cw_wire_msg_release(&full);
    cw_wire_msg_release(&entry);
    cw_error_release(&e_full);
    cw_error_release(&e_entry);
    cw_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_client_msg m;
    struct cw_error err = {0};
    struct cw_buf b = CW_BUF_INIT;
    json_t *f;

    cross_check((const char *)data, size);
    int rc = cw_wire_parse((const char *)data, size, &m, &err);
    if (rc != CW_OK) {
        if (rc != CW_ERR_MALFORMED || strcmp(err.code, "malformed") != 0 || !err.message[0])
            abort();
        cw_wire_error(&b, m.client_id, m.has_seq, m.client_seq, &err);
        f = frame(&b, "error", 4);
        check_head(f, &b, m.client_id, m.has_seq, m.client_seq);
        json_decref(f);
        goto out;
    }

    switch (m.type) {
    case CW_MSG_CMD:
        if (!m.client_id || !m.has_seq || !m.name || !json_is_object(m.data) ||
            (m.meta && !json_is_object(m.meta)))
            abort();
        cw_wire_ack(&b, m.client_id, m.client_seq, UUID, size & 1);
        f = frame(&b, "cmd-ack", 4);
        check_head(f, &b, m.client_id, true, m.client_seq);
        json_decref(f);
        cw_buf_reset(&b);

        /* Arbitrary client text through every string field of the encoders. */
        cw_wire_rejected(&b, m.client_id, m.client_seq, UUID, m.name, m.name);
        f = frame(&b, "rejected", 4);
        check_head(f, &b, m.client_id, true, m.client_seq);
        if (strcmp(json_string_value(json_object_get(json_array_get(f, 3), "message")), m.name) !=
            0)
            die("rejected message changed", &b);
        json_decref(f);
        cw_buf_reset(&b);

        cw_error_set_details_take(&err, CW_ERR_INVALID, NULL, json_incref(m.data), "%s", m.name);
        cw_wire_error(&b, m.client_id, true, m.client_seq, &err);
        f = frame(&b, "error", 4);
        if (!json_equal(json_object_get(json_array_get(f, 3), "details"), m.data))
            die("details changed", &b);
        json_decref(f);
        break;
    case CW_MSG_RESUME:
        if (m.after_position < 0)
            abort();
        cw_wire_resumed(&b, m.after_position);
        f = frame(&b, "resumed", 2);
        if (json_integer_value(json_array_get(f, 1)) != m.after_position)
            die("position changed", &b);
        json_decref(f);
        break;
    case CW_MSG_PING:
        if (!m.ping)
            abort();
        cw_wire_pong(&b, m.ping);
        f = frame(&b, "pong", 2);
        if (!json_equal(json_array_get(f, 1), m.ping))
            die("pong payload changed", &b);
        json_decref(f);
        break;
    default:
        abort();
    }
out:
    cw_error_release(&err);
    cw_wire_msg_release(&m);
    if (m.root || m.client_id)
        abort();
    cw_buf_release(&b);
    return 0;
}
