/*
 * test_wire.c - the WebSocket message codec (src/gateway/wire.h): every
 * malformed shape with what is echoed, the boundaries of client_id and
 * client_seq, and each encoder's frame parsed back with jansson.
 */
#include "core/buf.h"
#include "core/error.h"
#include "gateway/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------------- decoding */

static int parse_n(const char *text, size_t len, struct cw_client_msg *m, struct cw_error *err)
{
    memset(err, 0, sizeof(*err));
    return cw_wire_parse(text, len, m, err);
}

static int parse(const char *text, struct cw_client_msg *m, struct cw_error *err)
{
    return parse_n(text, strlen(text), m, err);
}

/*
 * text must be refused as malformed, with client_id / seq echoed as given
 * (id NULL: not echoed; seq < 0: not echoed) and a message containing what.
 */
static void check_malformed_n(const char *text, size_t len, const char *id, int64_t seq,
                              const char *what)
{
    struct cw_client_msg m;
    struct cw_error err;
    int rc = parse_n(text, len, &m, &err);
    if (rc != CW_ERR_MALFORMED)
        fail_msg("accepted or wrong rc %d: %.*s", rc, (int)len, text);
    assert_string_equal(err.code, "malformed");
    assert_string_equal(cw_result_code(rc), "malformed");
    assert_null(err.details);
    if (what && !strstr(err.message, what))
        fail_msg("message \"%s\" lacks \"%s\" for %.*s", err.message, what, (int)len, text);
    if (id) {
        assert_non_null(m.client_id);
        assert_string_equal(m.client_id, id);
    } else {
        assert_null(m.client_id);
    }
    if (seq >= 0) {
        assert_true(m.has_seq);
        assert_int_equal(m.client_seq, seq);
    } else {
        assert_false(m.has_seq);
    }
    cw_wire_msg_release(&m);
    assert_null(m.root);
    cw_error_release(&err);
}

static void check_malformed(const char *text, const char *id, int64_t seq, const char *what)
{
    check_malformed_n(text, strlen(text), id, seq, what);
}

static void test_not_json(void **state)
{
    check_malformed("", NULL, -1, "empty");
    check_malformed_n(NULL, 0, NULL, -1, "empty");
    check_malformed("{", NULL, -1, "not JSON");
    check_malformed("nope", NULL, -1, "not JSON");
    check_malformed("[\"cmd\"", NULL, -1, "not JSON");
    check_malformed("[\"ping\",1,]", NULL, -1, "not JSON");
    check_malformed("[\"ping\",1] x", NULL, -1, "not JSON");
    check_malformed("[\"ping\",1][\"ping\",2]", NULL, -1, "not JSON");
    check_malformed("['ping',1]", NULL, -1, "not JSON");
    check_malformed("[\"ping\",NaN]", NULL, -1, "not JSON");
    /* Numbers jansson cannot hold: the message is not readable at all. */
    check_malformed("[\"cmd\",\"a\",99999999999999999999,{\"name\":\"x\",\"data\":{}}]", NULL, -1,
                    "out of range");
    check_malformed("[\"ping\",1e400]", NULL, -1, "out of range");
    /* Only len bytes are read: a valid message cut short is not JSON. */
    check_malformed_n("[\"ping\",1]", 9, NULL, -1, "not JSON");
}

static void test_bad_utf8_and_nul(void **state)
{
    check_malformed("[\"ping\",\"\xff\"]", NULL, -1, "UTF-8");
    check_malformed("[\"ping\",\"\xc0\xaf\"]", NULL, -1, "UTF-8");     /* overlong '/' */
    check_malformed("[\"ping\",\"\xed\xa0\x80\"]", NULL, -1, "UTF-8"); /* a surrogate */
    check_malformed("[\"ping\",\"\xe2\x82\"]", NULL, -1, "UTF-8");     /* cut short */
    check_malformed("[\"cmd\",\"\xfe\",1,{\"name\":\"x\",\"data\":{}}]", NULL, -1, "UTF-8");
    /* A NUL in a ping's string value is valid JSON and echoed; anywhere else it is refused. */
    check_malformed("[\"ping\",{\"a\\u0000\":1}]", NULL, -1,
                    "\\u0000"); /* jansson: never in keys */
    check_malformed("[\"cmd\",\"c\",1,{\"name\":\"x\",\"data\":{\"a\":\"b\\u0000\"}}]", "c", 1,
                    "NUL");
    check_malformed("[\"cmd\",\"c\",1,{\"name\":\"x\",\"data\":{},\"meta\":{\"m\":[\"\\u0000\"]}}]",
                    "c", 1, "NUL");
    check_malformed("[\"cmd\",\"c\\u0000d\",1,{\"name\":\"x\",\"data\":{}}]", NULL, 1, NULL);
    check_malformed("[\"cmd\",\"c\",1,{\"name\":\"visit-page\\u0000\",\"data\":{}}]", "c", 1, NULL);
    {
        /* ...but a ping may carry one, and gets it back byte for byte. */
        const char ping[] = "[\"ping\",\"a\\u0000b\"]";
        struct cw_client_msg m;
        struct cw_error err = {0};
        assert_int_equal(cw_wire_parse(ping, strlen(ping), &m, &err), CW_OK);
        struct cw_buf b = CW_BUF_INIT;
        cw_wire_pong(&b, m.ping);
        assert_string_equal(b.data, "[\"pong\",\"a\\u0000b\"]");
        cw_buf_release(&b);
        cw_wire_msg_release(&m);
    }
    check_malformed_n("[\"ping\",\"a\0b\"]", 13, NULL, -1, NULL);
    /* A lone surrogate escape is not a character either. */
    check_malformed("[\"ping\",\"\\ud800\"]", NULL, -1, NULL);
}

static void test_duplicate_keys(void **state)
{
    check_malformed("[\"cmd\",\"a\",1,{\"name\":\"x\",\"name\":\"y\",\"data\":{}}]", NULL, -1,
                    "duplicate");
    check_malformed("[\"cmd\",\"a\",1,{\"name\":\"x\",\"data\":{\"k\":1,\"k\":2}}]", NULL, -1,
                    "duplicate");
    check_malformed("[\"ping\",{\"a\":{\"b\":1,\"b\":1}}]", NULL, -1, "duplicate");
}

static void test_not_an_array(void **state)
{
    check_malformed("{}", NULL, -1, "array");
    check_malformed("{\"cmd\":1}", NULL, -1, "array");
    check_malformed("5", NULL, -1, "array");
    check_malformed("\"cmd\"", NULL, -1, "array");
    check_malformed("null", NULL, -1, "array");
    check_malformed("  true  ", NULL, -1, "array");
    check_malformed("[]", NULL, -1, "empty array");
    check_malformed(" [ ] ", NULL, -1, "empty array");
}

static void test_bad_type(void **state)
{
    check_malformed("[1]", NULL, -1, "message type");
    check_malformed("[null,1]", NULL, -1, "message type");
    check_malformed("[[\"cmd\"],\"a\",1,{}]", NULL, -1, "message type");
    check_malformed("[{\"type\":\"ping\"}]", NULL, -1, "message type");
    check_malformed("[\"CMD\",\"a\",1,{\"name\":\"x\",\"data\":{}}]", NULL, -1, "unknown");
    check_malformed("[\"cmd \",\"a\",1,{\"name\":\"x\",\"data\":{}}]", NULL, -1, "unknown");
    check_malformed("[\"\",1]", NULL, -1, "unknown");
    check_malformed("[\"update\",\"a\",1,{}]", NULL, -1, "unknown");
    check_malformed("[\"pong\",1]", NULL, -1, "unknown");
    check_malformed("[\"resumed\",1]", NULL, -1, "unknown");
}

static void test_cmd_counts(void **state)
{
    check_malformed("[\"cmd\"]", NULL, -1, "3 elements");
    check_malformed("[\"cmd\",\"a\"]", "a", -1, "3 elements");
    check_malformed("[\"cmd\",\"a\",7]", "a", 7, "3 elements");
    check_malformed("[\"cmd\",\"a\",7,{\"name\":\"x\",\"data\":{}},null]", "a", 7, "3 elements");
    check_malformed("[\"cmd\",\"a\",7,{\"name\":\"x\",\"data\":{}},{}]", "a", 7, "3 elements");
}

static void test_client_id(void **state)
{
    char id128[129], id129[130], msg[400];
    memset(id128, 'i', 128);
    id128[128] = '\0';
    memset(id129, 'j', 129);
    id129[129] = '\0';

    /* 128 bytes: accepted. */
    struct cw_client_msg m;
    struct cw_error err;
    snprintf(msg, sizeof(msg), "[\"cmd\",\"%s\",1,{\"name\":\"x\",\"data\":{}}]", id128);
    assert_int_equal(parse(msg, &m, &err), CW_OK);
    assert_string_equal(m.client_id, id128);
    cw_wire_msg_release(&m);

    /* 128 bytes counted in bytes, not characters: 64 two-byte characters. */
    char wide[300] = "[\"cmd\",\"";
    for (int i = 0; i < 64; i++)
        strcat(wide, "\xc3\xa9");
    strcat(wide, "\",1,{\"name\":\"x\",\"data\":{}}]");
    assert_int_equal(parse(wide, &m, &err), CW_OK);
    assert_int_equal(strlen(m.client_id), 128);
    cw_wire_msg_release(&m);

    /* 129 bytes: refused, but the sequence is still echoed. */
    snprintf(msg, sizeof(msg), "[\"cmd\",\"%s\",1,{\"name\":\"x\",\"data\":{}}]", id129);
    check_malformed(msg, NULL, 1, "client_id");
    /* An escape counts as the byte it stands for: 128 bytes once decoded. */
    snprintf(msg, sizeof(msg), "[\"cmd\",\"\\u0069%s\",1,{\"name\":\"x\",\"data\":{}}]", id128 + 1);
    assert_int_equal(parse(msg, &m, &err), CW_OK);
    assert_string_equal(m.client_id, id128);
    cw_wire_msg_release(&m);

    check_malformed("[\"cmd\",\"\",1,{\"name\":\"x\",\"data\":{}}]", NULL, 1, "client_id");
    check_malformed("[\"cmd\",null,1,{\"name\":\"x\",\"data\":{}}]", NULL, 1, "client_id");
    check_malformed("[\"cmd\",5,1,{\"name\":\"x\",\"data\":{}}]", NULL, 1, "client_id");
    check_malformed("[\"cmd\",[\"a\"],1,{\"name\":\"x\",\"data\":{}}]", NULL, 1, "client_id");
    check_malformed("[\"cmd\",{},2,{\"name\":\"x\",\"data\":{}}]", NULL, 2, "client_id");
    /* Neither readable: both null. */
    check_malformed("[\"cmd\",1,\"a\",{\"name\":\"x\",\"data\":{}}]", NULL, -1, "client_id");
}

static void test_client_seq(void **state)
{
    struct cw_client_msg m;
    struct cw_error err;
    assert_int_equal(parse("[\"cmd\",\"a\",0,{\"name\":\"x\",\"data\":{}}]", &m, &err), CW_OK);
    assert_true(m.has_seq);
    assert_int_equal(m.client_seq, 0);
    cw_wire_msg_release(&m);
    assert_int_equal(
        parse("[\"cmd\",\"a\",9007199254740991,{\"name\":\"x\",\"data\":{}}]", &m, &err), CW_OK);
    assert_int_equal(m.client_seq, 9007199254740991LL);
    cw_wire_msg_release(&m);
    /* -0 is the integer 0. */
    assert_int_equal(parse("[\"cmd\",\"a\",-0,{\"name\":\"x\",\"data\":{}}]", &m, &err), CW_OK);
    assert_int_equal(m.client_seq, 0);
    cw_wire_msg_release(&m);

    const char *what = "client_seq must be an integer between 0 and 2^53-1";
    check_malformed("[\"cmd\",\"a\",9007199254740992,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",9223372036854775807,{\"name\":\"x\",\"data\":{}}]", "a", -1,
                    what);
    check_malformed("[\"cmd\",\"a\",-1,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",-9223372036854775808,{\"name\":\"x\",\"data\":{}}]", "a", -1,
                    what);
    check_malformed("[\"cmd\",\"a\",1.0,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",1e3,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",0.5,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",\"1\",{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",null,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",true,{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
    check_malformed("[\"cmd\",\"a\",[1],{\"name\":\"x\",\"data\":{}}]", "a", -1, what);
}

static void test_cmd_body(void **state)
{
    check_malformed("[\"cmd\",\"a\",3,null]", "a", 3, "object");
    check_malformed("[\"cmd\",\"a\",3,[]]", "a", 3, "object");
    check_malformed("[\"cmd\",\"a\",3,\"visit-page\"]", "a", 3, "object");
    check_malformed("[\"cmd\",\"a\",3,{}]", "a", 3, "name");
    check_malformed("[\"cmd\",\"a\",3,{\"data\":{}}]", "a", 3, "name");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":1,\"data\":{}}]", "a", 3, "name");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":null,\"data\":{}}]", "a", 3, "name");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":[\"x\"],\"data\":{}}]", "a", 3, "name");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\"}]", "a", 3, "data");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":null}]", "a", 3, "data");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":[]}]", "a", 3, "data");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":\"{}\"}]", "a", 3, "data");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":{},\"meta\":1}]", "a", 3, "meta");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":{},\"meta\":[]}]", "a", 3, "meta");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":{},\"meta\":\"m\"}]", "a", 3,
                    "meta");
    check_malformed("[\"cmd\",\"a\",3,{\"name\":\"x\",\"data\":{},\"meta\":false}]", "a", 3,
                    "meta");
}

static void test_cmd_valid(void **state)
{
    struct cw_client_msg m;
    struct cw_error err;
    const char *text = " [ \"cmd\" , \"tab-1\" , 42 , {\"name\": \"visit-page\", \"data\": "
                       "{\"url\": \"/a\"}, \"meta\": {\"trace\": \"t\"}, \"extra\": [1,2]} ] ";
    assert_int_equal(parse(text, &m, &err), CW_OK);
    assert_int_equal(m.type, CW_MSG_CMD);
    assert_non_null(m.root);
    assert_string_equal(m.client_id, "tab-1");
    assert_true(m.has_seq);
    assert_int_equal(m.client_seq, 42);
    assert_string_equal(m.name, "visit-page");
    assert_true(json_is_object(m.data));
    assert_string_equal(json_string_value(json_object_get(m.data, "url")), "/a");
    assert_true(json_is_object(m.meta));
    assert_string_equal(json_string_value(json_object_get(m.meta, "trace")), "t");
    cw_wire_msg_release(&m);
    assert_null(m.root);
    assert_null(m.client_id);
    assert_null(m.data);

    /* meta absent or null: NULL. Keys in any order. */
    assert_int_equal(parse("[\"cmd\",\"a\",1,{\"data\":{},\"name\":\"x\"}]", &m, &err), CW_OK);
    assert_null(m.meta);
    assert_int_equal(json_object_size(m.data), 0);
    cw_wire_msg_release(&m);
    assert_int_equal(
        parse("[\"cmd\",\"a\",1,{\"name\":\"x\",\"data\":{},\"meta\":null}]", &m, &err), CW_OK);
    assert_null(m.meta);
    cw_wire_msg_release(&m);
    /* An empty name is well-formed; the registry calls it unknown. */
    assert_int_equal(parse("[\"cmd\",\"a\",1,{\"name\":\"\",\"data\":{}}]", &m, &err), CW_OK);
    assert_string_equal(m.name, "");
    cw_wire_msg_release(&m);
    /* Not NUL-terminated: only len bytes are read. */
    const char buf[] = "[\"cmd\",\"a\",1,{\"name\":\"x\",\"data\":{}}]garbage";
    assert_int_equal(parse_n(buf, sizeof(buf) - 1 - 7, &m, &err), CW_OK);
    assert_string_equal(m.name, "x");
    cw_wire_msg_release(&m);
    /* Non-ASCII client id and name survive as UTF-8. */
    assert_int_equal(
        parse("[\"cmd\",\"\xe6\x97\xa5\\u00e9\",1,{\"name\":\"caf\xc3\xa9\",\"data\":{}}]", &m,
              &err),
        CW_OK);
    assert_string_equal(m.client_id, "\xe6\x97\xa5\xc3\xa9");
    assert_string_equal(m.name, "caf\xc3\xa9");
    cw_wire_msg_release(&m);
}

static void test_resume(void **state)
{
    struct cw_client_msg m;
    struct cw_error err;
    assert_int_equal(parse("[\"resume\",0]", &m, &err), CW_OK);
    assert_int_equal(m.type, CW_MSG_RESUME);
    assert_int_equal(m.after_position, 0);
    assert_null(m.client_id);
    assert_false(m.has_seq);
    cw_wire_msg_release(&m);
    assert_int_equal(parse("[\"resume\",9223372036854775807]", &m, &err), CW_OK);
    assert_int_equal(m.after_position, INT64_MAX);
    cw_wire_msg_release(&m);

    check_malformed("[\"resume\"]", NULL, -1, "after_position");
    check_malformed("[\"resume\",1,2]", NULL, -1, "after_position");
    check_malformed("[\"resume\",-1]", NULL, -1, "after_position must be an integer >= 0");
    check_malformed("[\"resume\",1.0]", NULL, -1, "after_position must be an integer >= 0");
    check_malformed("[\"resume\",\"5\"]", NULL, -1, "after_position must be an integer >= 0");
    check_malformed("[\"resume\",null]", NULL, -1, "after_position must be an integer >= 0");
    check_malformed("[\"resume\",{}]", NULL, -1, "after_position must be an integer >= 0");
}

static void test_ping(void **state)
{
    const char *payloads[] = {"null", "1", "-2.5", "\"x\"", "[1,{\"a\":null}]", "{}", "true"};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "[\"ping\",%s]", payloads[i]);
        struct cw_client_msg m;
        struct cw_error err;
        assert_int_equal(parse(text, &m, &err), CW_OK);
        assert_int_equal(m.type, CW_MSG_PING);
        assert_non_null(m.ping); /* null is a value, not absence */
        json_t *want = json_loads(payloads[i], JSON_DECODE_ANY, NULL);
        assert_true(json_equal(m.ping, want));
        json_decref(want);
        cw_wire_msg_release(&m);
    }
    check_malformed("[\"ping\"]", NULL, -1, "payload");
    check_malformed("[\"ping\",1,2]", NULL, -1, "payload");
}

static void test_deep_nesting(void **state)
{
    enum { DEPTH = 5000 };
    char *text = malloc(2 * DEPTH + 16);
    assert_non_null(text);
    size_t n = (size_t)sprintf(text, "[\"ping\",");
    memset(text + n, '[', DEPTH);
    n += DEPTH;
    memset(text + n, ']', DEPTH + 1);
    n += DEPTH + 1;
    check_malformed_n(text, n, NULL, -1, "nested");
    free(text);
}

static void test_release_zeroed(void **state)
{
    struct cw_client_msg m;
    memset(&m, 0, sizeof(m));
    cw_wire_msg_release(&m);
    cw_wire_msg_release(&m);
    cw_wire_msg_release(NULL);
    /* err may be NULL. */
    assert_int_equal(cw_wire_parse("[]", 2, &m, NULL), CW_ERR_MALFORMED);
    cw_wire_msg_release(&m);
}

/* ------------------------------------------------------------- encoding */

/* Parses b's text strictly (which also checks it is valid UTF-8); one array. */
static json_t *frame(struct cw_buf *b)
{
    json_error_t jerr;
    json_t *v = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        fail_msg("frame is not JSON (%s): %s", jerr.text, cw_buf_cstr(b));
    assert_true(json_is_array(v));
    return v;
}

static const char *str_at(json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static const char *member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* Needs escaping: quote, backslash, control characters; and multi-byte UTF-8. */
static const char NASTY[] =
    "q\"b\\s/c\x01\x1f\x7f\n\r\t\b\f \xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80 end";

static void test_ack(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    const char *uuid = "0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b";
    cw_wire_ack(&b, "tab-1", 7, uuid, false);
    assert_string_equal(cw_buf_cstr(&b), "[\"cmd-ack\",\"tab-1\",7,{\"command_uuid\":"
                                         "\"0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b\","
                                         "\"duplicate\":false}]");
    cw_buf_reset(&b);

    cw_wire_ack(&b, NASTY, 9007199254740991LL, uuid, true);
    json_t *f = frame(&b);
    assert_int_equal(json_array_size(f), 4);
    assert_string_equal(str_at(f, 0), "cmd-ack");
    assert_string_equal(str_at(f, 1), NASTY);
    assert_int_equal(json_integer_value(json_array_get(f, 2)), 9007199254740991LL);
    json_t *body = json_array_get(f, 3);
    assert_int_equal(json_object_size(body), 2);
    assert_string_equal(member(body, "command_uuid"), uuid);
    assert_true(json_is_true(json_object_get(body, "duplicate")));
    json_decref(f);
    cw_buf_release(&b);
}

static void test_error(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    struct cw_error err = {0};

    /* Nothing readable: null, null, details null. */
    cw_error_set(&err, CW_ERR_MALFORMED, NULL, "message must be a JSON array");
    cw_wire_error(&b, NULL, false, 0, &err);
    assert_string_equal(cw_buf_cstr(&b), "[\"error\",null,null,{\"code\":\"malformed\",\"message\":"
                                         "\"message must be a JSON array\",\"details\":null}]");
    cw_buf_reset(&b);

    /* Only the sequence readable. */
    cw_wire_error(&b, NULL, true, 0, &err);
    json_t *f = frame(&b);
    assert_true(json_is_null(json_array_get(f, 1)));
    assert_int_equal(json_integer_value(json_array_get(f, 2)), 0);
    json_decref(f);
    cw_buf_reset(&b);

    /* Everything, with details and text needing escapes. */
    json_t *details = json_pack("[{s:s,s:s}]", "field", "url", "reason", NASTY);
    cw_error_set_details_take(&err, CW_ERR_INVALID, NULL, details, "bad: %s", NASTY);
    cw_wire_error(&b, NASTY, true, 12, &err);
    f = frame(&b);
    assert_int_equal(json_array_size(f), 4);
    assert_string_equal(str_at(f, 0), "error");
    assert_string_equal(str_at(f, 1), NASTY);
    assert_int_equal(json_integer_value(json_array_get(f, 2)), 12);
    json_t *body = json_array_get(f, 3);
    assert_int_equal(json_object_size(body), 3);
    assert_string_equal(member(body, "code"), "command-validation-failed");
    char want[128];
    snprintf(want, sizeof(want), "bad: %s", NASTY);
    assert_string_equal(member(body, "message"), want);
    assert_true(json_equal(json_object_get(body, "details"), details));
    json_decref(f);
    cw_buf_reset(&b);
    cw_error_release(&err);

    /* A message cut by its fixed buffer in the middle of a character: still UTF-8. */
    char long_text[300];
    memset(long_text, 'a', 254);
    strcpy(long_text + 254, "\xc3\xa9 tail");
    cw_error_set(&err, CW_ERR_INVALID, NULL, "%s", long_text);
    assert_true(strlen(err.message) >= 250 && strlen(err.message) <= 255);
    cw_wire_error(&b, "c", true, 1, &err);
    f = frame(&b);
    const char *msg = member(json_array_get(f, 3), "message");
    assert_int_equal(strlen(msg), 254);
    assert_int_equal(strspn(msg, "a"), 254);
    json_decref(f);
    cw_buf_release(&b);
}

static void test_rejected(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    const char *uuid = "0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b";
    cw_wire_rejected(&b, "t", 3, uuid, "email-taken", "that email is already registered");
    assert_string_equal(cw_buf_cstr(&b),
                        "[\"rejected\",\"t\",3,{\"command_uuid\":"
                        "\"0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b\",\"code\":\"email-taken\","
                        "\"message\":\"that email is already registered\"}]");
    cw_buf_reset(&b);

    cw_wire_rejected(&b, NASTY, 0, uuid, "not-in-cart", NASTY);
    json_t *f = frame(&b);
    assert_string_equal(str_at(f, 0), "rejected");
    assert_string_equal(str_at(f, 1), NASTY);
    assert_int_equal(json_integer_value(json_array_get(f, 2)), 0);
    json_t *body = json_array_get(f, 3);
    assert_int_equal(json_object_size(body), 3);
    assert_string_equal(member(body, "command_uuid"), uuid);
    assert_string_equal(member(body, "code"), "not-in-cart");
    assert_string_equal(member(body, "message"), NASTY);
    json_decref(f);
    cw_buf_reset(&b);

    /* Invalid UTF-8 from a handler's message is cut, never sent; NULL is "". */
    cw_wire_rejected(&b, "t", 1, uuid, "x", "ok\xff bad");
    f = frame(&b);
    assert_string_equal(member(json_array_get(f, 3), "message"), "ok");
    json_decref(f);
    cw_buf_reset(&b);
    cw_wire_rejected(&b, "t", 1, uuid, "x", NULL);
    f = frame(&b);
    assert_string_equal(member(json_array_get(f, 3), "message"), "");
    json_decref(f);
    cw_buf_release(&b);
}

static void test_resumed_pong(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_wire_resumed(&b, 0);
    assert_string_equal(cw_buf_cstr(&b), "[\"resumed\",0]");
    cw_buf_reset(&b);
    cw_wire_resumed(&b, INT64_MAX);
    assert_string_equal(cw_buf_cstr(&b), "[\"resumed\",9223372036854775807]");
    cw_buf_reset(&b);

    cw_wire_pong(&b, NULL);
    assert_string_equal(cw_buf_cstr(&b), "[\"pong\",null]");
    cw_buf_reset(&b);

    /* Every ping payload comes back equal. */
    const char *payloads[] = {
        "null",
        "0",
        "-9223372036854775808",
        "1.5",
        "1e300",
        "\"\"",
        "[]",
        "{}",
        "false",
        "[1,[2,[3]],{\"a\":{\"b\":null}}]",
        "{\"z\":1,\"a\":2,\"m\":[true]}",
        "\"q\\\"b\\\\c\\u0001\\u0019\\u007f\\n\\u00e9\\u65e5\\ud83d\\ude00\""};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[\"ping\",%s]", payloads[i]);
        struct cw_client_msg m;
        struct cw_error err;
        assert_int_equal(parse(text, &m, &err), CW_OK);
        cw_wire_pong(&b, m.ping);
        json_t *f = frame(&b);
        assert_int_equal(json_array_size(f), 2);
        assert_string_equal(str_at(f, 0), "pong");
        assert_true(json_equal(json_array_get(f, 1), m.ping));
        /* Same text as jansson would write, key order included. (Not for control
         * characters with hex letters: jansson writes \u001F, the writer \u001f.) */
        char *want = json_dumps(m.root, JSON_COMPACT);
        assert_string_equal(cw_buf_cstr(&b) + strlen("[\"pong\""), want + strlen("[\"ping\""));
        free(want);
        json_decref(f);
        cw_wire_msg_release(&m);
        cw_buf_reset(&b);
    }
    cw_buf_release(&b);
}

static void test_encoders_append(void **state)
{
    struct cw_buf b = CW_BUF_INIT;
    cw_buf_adds(&b, "X");
    cw_wire_resumed(&b, 5);
    cw_wire_pong(&b, json_null());
    assert_string_equal(cw_buf_cstr(&b), "X[\"resumed\",5][\"pong\",null]");
    cw_buf_release(&b);
}

/* The gateway's error path: parse fails, the frame echoes what was read. */
static void test_error_echo_round_trip(void **state)
{
    struct cw_client_msg m;
    struct cw_error err;
    struct cw_buf b = CW_BUF_INIT;
    assert_int_equal(parse("[\"cmd\",\"tab\\\"1\",5,{\"name\":\"x\"}]", &m, &err),
                     CW_ERR_MALFORMED);
    cw_wire_error(&b, m.client_id, m.has_seq, m.client_seq, &err);
    json_t *f = frame(&b);
    assert_string_equal(str_at(f, 1), "tab\"1");
    assert_int_equal(json_integer_value(json_array_get(f, 2)), 5);
    assert_string_equal(member(json_array_get(f, 3), "code"), "malformed");
    assert_true(json_is_null(json_object_get(json_array_get(f, 3), "details")));
    json_decref(f);
    cw_wire_msg_release(&m);
    cw_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_bad_utf8_and_nul),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_not_an_array),
        cmocka_unit_test(test_bad_type),
        cmocka_unit_test(test_cmd_counts),
        cmocka_unit_test(test_client_id),
        cmocka_unit_test(test_client_seq),
        cmocka_unit_test(test_cmd_body),
        cmocka_unit_test(test_cmd_valid),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_release_zeroed),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_resumed_pong),
        cmocka_unit_test(test_encoders_append),
        cmocka_unit_test(test_error_echo_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
