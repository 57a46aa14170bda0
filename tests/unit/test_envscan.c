/*
 * test_envscan.c - the command scanner (src/gateway/envscan.h) against the
 * full jansson parse (cw_wire_parse_full): the common shapes are scanned,
 * the unusual ones declined, and whatever the scanner accepts decodes to
 * exactly what the full parse gives (same ids, name, and data and meta
 * written out byte for byte, so also in the same key order). Every input,
 * scanned or not, is then checked through cw_wire_parse(), the gateway's
 * entry, against the full parse: same result, same error, same echo.
 */
#include "core/buf.h"
#include "core/error.h"
#include "gateway/envscan.h"
#include "gateway/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* v written compactly in its own key order; "-" for NULL. */
static char *dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("-");
}

static void check_same_json(const json_t *a, const json_t *b, const char *text, size_t len)
{
    char *da = dump(a), *db = dump(b);
    if (strcmp(da, db) != 0)
        fail_msg("%s != %s for %.*s", da, db, (int)len, text);
    free(da);
    free(db);
}

static void check_same_str(const char *a, const char *b, const char *text, size_t len)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        fail_msg("\"%s\" != \"%s\" for %.*s", a ? a : "(null)", b ? b : "(null)", (int)len, text);
}

/* Two decodings of one text agree in everything a caller reads. */
static void check_same_msg(int rc_a, const struct cw_client_msg *a, const struct cw_error *ea,
                           int rc_b, const struct cw_client_msg *b, const struct cw_error *eb,
                           const char *text, size_t len)
{
    if (rc_a != rc_b)
        fail_msg("rc %d != %d for %.*s", rc_a, rc_b, (int)len, text);
    check_same_str(a->client_id, b->client_id, text, len);
    assert_int_equal(a->has_seq, b->has_seq);
    assert_int_equal(a->client_seq, b->client_seq);
    if (rc_a) {
        assert_string_equal(ea->code, eb->code);
        assert_string_equal(ea->message, eb->message);
        return;
    }
    assert_int_equal(a->type, b->type);
    if (a->type != CW_MSG_CMD)
        return;
    check_same_str(a->name, b->name, text, len);
    check_same_json(a->data, b->data, text, len);
    check_same_json(a->meta, b->meta, text, len);
}

/*
 * Decodes text by the scanner, the full parse and cw_wire_parse(): whatever
 * the scanner takes, the full parse takes alike; cw_wire_parse() always
 * agrees with the full parse. Returns whether the scanner took it.
 */
static bool check_n(const char *text, size_t len)
{
    struct cw_client_msg s = {0}, full, entry;
    struct cw_error err_full = {0}, err_entry = {0};
    bool scanned = cw_envscan_cmd(text, len, &s);
    int rc_full = cw_wire_parse_full(text, len, &full, &err_full);
    if (scanned) {
        assert_true(s.scanned);
        assert_null(s.root);
        check_same_msg(CW_OK, &s, NULL, rc_full, &full, &err_full, text, len);
    } else {
        assert_false(s.scanned);
        assert_null(s.data);
        assert_null(s.meta);
        assert_null(s.client_id);
        assert_false(s.has_seq);
    }
    int rc_entry = cw_wire_parse(text, len, &entry, &err_entry);
    assert_int_equal(entry.scanned, scanned);
    check_same_msg(rc_entry, &entry, &err_entry, rc_full, &full, &err_full, text, len);
    cw_wire_msg_release(&s);
    cw_wire_msg_release(&full);
    cw_wire_msg_release(&entry);
    cw_error_release(&err_full);
    cw_error_release(&err_entry);
    assert_false(s.scanned);
    assert_null(s.data);
    return scanned;
}

static bool check(const char *text)
{
    return check_n(text, strlen(text));
}

static void scanned(const char *text)
{
    if (!check(text))
        fail_msg("declined: %s", text);
}

static void declined(const char *text)
{
    if (check(text))
        fail_msg("scanned: %s", text);
}

static void test_common_shapes(void **state)
{
    (void)state;
    scanned("[\"cmd\",\"c1\",0,{\"name\":\"visit-page\",\"data\":{\"url\":\"/a\"}}]");
    scanned(
        "[\"cmd\",\"c1\",7,{\"name\":\"add-to-cart\",\"data\":{\"sku\":\"x\",\"quantity\":3}}]");
    scanned("[\"cmd\",\"c1\",7,{\"name\":\"a\",\"data\":{},\"meta\":{}}]");
    scanned("[\"cmd\",\"c1\",7,{\"data\":{\"b\":1,\"a\":2},\"name\":\"a\",\"meta\":{\"bt\":123}}]");
    scanned("[\"cmd\",\"c1\",7,{\"meta\":null,\"name\":\"a\",\"data\":{\"k\":null}}]");
    scanned(" \t\r\n[ \"cmd\" , \"c 1\" , 9007199254740991 , { \"name\" : \"a\" , \"data\" : "
            "{ \"t\" : true , \"f\" : false , \"n\" : -12 , \"z\" : -0 , \"e\" : \"\" } } ] \n");
    scanned("[\"cmd\",\"\xc3\xa9t\xc3\xa9\",1,{\"name\":\"\xe2\x82\xac\",\"data\":"
            "{\"\xf0\x9f\x98\x80\":\"\xf0\x9f\x98\x80\"}}]");
    scanned("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"\":\"empty key\"}}]");
    scanned("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"big\":999999999999999999,"
            "\"neg\":-999999999999999999}}]");
    scanned("[\"cmd\",\"c\",1,{\"name\":\"\",\"data\":{}}]"); /* unknown command: not the codec's */
}

static void test_declined_shapes(void **state)
{
    (void)state;
    /* Valid, but not the scanner's: the full parse reads them. */
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":{\"y\":1}}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":[1]}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":1.5}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":1e3}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":1000000000000000000}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":\"a\\\"b\"}}]");
    declined("[\"cmd\",\"c\\u0041\",1,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{},\"extra\":1}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{},\"meta\":{\"m\":{}}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a123456789012345678901234567890123456789012345678901"
             "234567890123\",\"data\":{}}]");
    declined("[\"c\\u006dd\",\"c\",1,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"resume\",0]");
    declined("[\"ping\",{\"a\":1}]");
    /* Errors: the full parse words them. */
    declined("");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":1,\"x\":2}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"name\":\"b\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{},\"data\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{},\"meta\":null,\"meta\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{},\"meta\":{},\"meta\":null}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\"}]");
    declined("[\"cmd\",\"c\",1,{\"data\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":1,\"data\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":null}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{},\"meta\":1}]");
    declined("[\"cmd\",\"\",1,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",-1,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",-0,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",1.0,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",01,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",9007199254740992,{\"name\":\"a\",\"data\":{}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{}},5]");
    declined("[\"cmd\",\"c\",1]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{}}] x");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{}}][]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":tru}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":01}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":-}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":1,}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{,}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\" 1}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":\"\xc3\"}}]"); /* bad UTF-8 */
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":\"\xed\xa0\x80\"}}]");
    declined("[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":\"a\tb\"}}]");
}

static void test_client_id_bounds(void **state)
{
    (void)state;
    char text[400];
    char id[CW_WIRE_CLIENT_ID_MAX + 2];
    memset(id, 'i', sizeof(id));
    id[CW_WIRE_CLIENT_ID_MAX] = '\0';
    snprintf(text, sizeof(text), "[\"cmd\",\"%s\",1,{\"name\":\"a\",\"data\":{}}]", id);
    scanned(text);
    id[CW_WIRE_CLIENT_ID_MAX] = 'i';
    id[CW_WIRE_CLIENT_ID_MAX + 1] = '\0';
    snprintf(text, sizeof(text), "[\"cmd\",\"%s\",1,{\"name\":\"a\",\"data\":{}}]", id);
    declined(text);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    static const char t1[] = "[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{\"x\":\"a\0b\"}}]";
    static const char t2[] = "[\"cmd\",\"c\",1,{\"name\":\"a\",\"data\":{}}]\0";
    assert_false(check_n(t1, sizeof(t1) - 1));
    assert_false(check_n(t2, sizeof(t2) - 1));
}

/*
 * Every prefix of some messages, and every byte of them replaced by each of
 * a set of bytes that matter to JSON: the scanner never takes what the full
 * parse would decode differently, and the gateway's entry always agrees with
 * the full parse.
 */
static void test_mutations(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "[\"cmd\",\"c1\",12,{\"name\":\"add-to-cart\",\"data\":{\"sku\":\"s\",\"quantity\":3},"
        "\"meta\":{\"bt\":-5,\"ok\":true}}]",
        "[ \"cmd\" , \"id\" , 0 , { \"meta\" : null , \"data\" : { \"u\" : \"/\" } , \"name\" : "
        "\"v\" } ]",
        "[\"cmd\",\"\xc3\xa9\",1,{\"name\":\"n\",\"data\":{\"a\":null,\"b\":false}}]",
    };
    static const char subst[] = "\"\\{}[],:0159-.eEtfn \t\x01\x80\xc3\xff";
    size_t scanned_count = 0, total = 0;
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        size_t len = strlen(seeds[s]);
        char buf[256];
        assert_true(check_n(seeds[s], len));
        for (size_t cut = 0; cut < len; cut++)
            assert_false(check_n(seeds[s], cut));
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k < sizeof(subst) - 1; k++) {
                memcpy(buf, seeds[s], len);
                buf[i] = subst[k];
                scanned_count += check_n(buf, len);
                total++;
                /* and the byte inserted, and the byte dropped */
                memcpy(buf, seeds[s], i);
                buf[i] = subst[k];
                memcpy(buf + i + 1, seeds[s] + i, len - i);
                scanned_count += check_n(buf, len + 1);
                total++;
            }
            memcpy(buf, seeds[s], i);
            memcpy(buf + i, seeds[s] + i + 1, len - i - 1);
            scanned_count += check_n(buf, len - 1);
            total++;
        }
    }
    /* Both sides of the line are exercised. */
    assert_true(scanned_count > 100);
    assert_true(scanned_count < total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_shapes),    cmocka_unit_test(test_declined_shapes),
        cmocka_unit_test(test_client_id_bounds), cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
