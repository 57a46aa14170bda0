/*
 * test_domain.c - the built-in domain (src/domain/domain.h) through the real
 * engine: coerce paths and their details, register-user with its password
 * hash kept out of every frame and query, sessions and the login lookups,
 * page views, and the cart with its time travel checked at every position.
 *
 * argon2id is slow on purpose: only test_register hashes for real (four
 * times); the other tests register users with a stand-in hash.
 */
#include "auth/password.h"
#include "domain/domain.h"
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

static int register_all(struct cw_domain *d)
{
    int rc = cw_accounts_register(d);
    return rc ? rc : cw_demo_register(d);
}

static int64_t next_seq;

/* ------------------------------------------------------------ helpers */

/* Submits an envelope as the gateway would after coerce (and prepare). */
static void submit_env(struct harness *h, const struct cw_command_def *def, const char *user,
                       json_t *data)
{
    int64_t seq = ++next_seq;
    struct cw_envelope *env = cw_envelope_new(def, user, "test", seq, data, NULL, (uint64_t)seq);
    assert_int_equal(cw_engine_submit(h->e, env), CW_OK);
}

/* Coerces, prepares and submits one command; takes ownership of data. */
static void submit(struct harness *h, const char *name, const char *user, json_t *data)
{
    struct cw_error err = {0};
    int rc = harness_submit(h, name, user, "test", ++next_seq, data, &err);
    if (rc)
        fail_msg("submit %s: %s %s", name, err.code, err.message);
}

/* Submits one command and waits for its outcome (caller releases it). */
static void run_cmd(struct harness *h, const char *name, const char *user, json_t *data,
                    struct cw_outcome *o)
{
    submit(h, name, user, data);
    assert_int_equal(harness_collect(h, o, 1), 1);
}

static void expect_rejected(struct cw_outcome *o, const char *code)
{
    if (!o->rejected)
        fail_msg("expected rejection %s, got %zu events", code, o->n_events);
    assert_string_equal(o->reject.code, code);
    assert_int_equal(o->n_events, 0);
}

/* The event's data as clients receive it: parsed from the update frame. Caller frees. */
static json_t *frame_data(const struct cw_update *u)
{
    json_t *frame = json_loads(u->frame, 0, NULL);
    assert_non_null(frame);
    json_t *data = json_incref(json_object_get(json_array_get(frame, 3), "data"));
    json_decref(frame);
    return data;
}

/* A string field of the event's data as clients receive it, copied into out. */
static void frame_field(const struct cw_update *u, const char *key, char *out, size_t len)
{
    json_t *data = frame_data(u);
    const char *v = json_string_value(json_object_get(data, key));
    snprintf(out, len, "%s", v ? v : "");
    json_decref(data);
}

/* Expects one event named name; returns its position. */
static int64_t expect_event(struct cw_outcome *o, const char *name)
{
    if (o->rejected)
        fail_msg("expected %s, rejected %s: %s", name, o->reject.code, o->reject.message);
    assert_int_equal(o->n_events, 1);
    assert_string_equal(o->events[0]->ev.name, name);
    return o->events[0]->ev.position;
}

/*
 * Registers a user without argon2 (a stand-in hash, or none when hash is
 * NULL): the command is coerced as the gateway would, prepare is skipped.
 * Returns the outcome's user_uuid in out (when registered).
 */
static void register_fake(struct harness *h, const char *email, const char *hash,
                          struct cw_outcome *o)
{
    json_t *data = json_pack("{s:s,s:s,s:s,s:s}", "email", email, "first_name", "F", "last_name",
                             "L", "password", "not-hashed-here");
    const struct cw_command_def *def = NULL;
    struct cw_error err = {0};
    assert_int_equal(cw_coerce_command(h->d, "register-user", data, false, &def, &err), CW_OK);
    json_object_del(data, "password");
    if (hash)
        json_object_set_new(data, "password_hash", json_string(hash));
    submit_env(h, def, "", data);
    assert_int_equal(harness_collect(h, o, 1), 1);
}

static void fake_user(struct harness *h, const char *email, char user[CW_UUID_LEN + 1])
{
    struct cw_outcome o = {0};
    register_fake(h, email, "stand-in-hash", &o);
    expect_event(&o, "user-registered");
    frame_field(o.events[0], "user_uuid", user, CW_UUID_LEN + 1);
    cw_outcome_release(&o);
}

/*
 * Runs a query on a read connection of its own, as a query worker's would
 * be, so each query sees the state committed before it whatever an earlier
 * query left on a connection. Takes ownership of data.
 */
static json_t *query(struct harness *h, const char *name, json_t *data, const char *user)
{
    struct cw_db *db = NULL;
    struct cw_error err = {0};
    json_t *r = NULL;
    if (cw_store_reader_open(cw_engine_store(h->e), &db, &err) ||
        cw_query_run(h->d, db, name, data, user, &r, &err))
        fail_msg("query %s: %s %s", name, err.code, err.message);
    cw_db_close(db);
    json_decref(data);
    return r;
}

static char *dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(s);
    return s;
}

/* The reason given for field in err->details, or fails. */
static const char *detail_reason(const struct cw_error *err, const char *field)
{
    size_t i;
    json_t *d;
    assert_true(json_is_array(err->details));
    json_array_foreach(err->details, i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "field")), field) == 0)
            return json_string_value(json_object_get(d, "reason"));
    }
    fail_msg("no detail for field %s", field);
    return NULL;
}

/*
 * Coerces command name with data (JSON text) as a client would; expects
 * want_rc with code, and when field is given, a detail for it whose reason
 * contains reason.
 */
static void expect_coerce(struct cw_domain *d, const char *name, const char *text, int want_rc,
                          const char *code, const char *field, const char *reason)
{
    json_t *data = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!data)
        fail_msg("bad test JSON: %s", text);
    const struct cw_command_def *def = NULL;
    struct cw_error err = {0};
    int rc = cw_coerce_command(d, name, data, false, &def, &err);
    if (rc != want_rc)
        fail_msg("%s %s: rc %d (%s: %s), want %d", name, text, rc, err.code, err.message, want_rc);
    if (code)
        assert_string_equal(err.code, code);
    if (field) {
        const char *got = detail_reason(&err, field);
        if (!strstr(got, reason))
            fail_msg("%s %s: reason \"%s\" lacks \"%s\"", name, text, got, reason);
    }
    cw_error_release(&err);
    json_decref(data);
}

#define INVALID CW_ERR_INVALID, "command-validation-failed"

/* ------------------------------------------------------------- coerce */

static void test_coerce_register(void **state)
{
    struct cw_domain *d = harness_domain(register_all);
    const char *cmd = "register-user";
    expect_coerce(d, cmd, "{\"first_name\":\"A\",\"last_name\":\"B\",\"password\":\"12345678\"}",
                  INVALID, "email", "is required");
    expect_coerce(
        d, cmd, "{\"email\":7,\"first_name\":\"A\",\"last_name\":\"B\",\"password\":\"12345678\"}",
        INVALID, "email", "must be a string");
    expect_coerce(d, cmd,
                  "{\"email\":\"a@b.co\",\"first_name\":\"\",\"last_name\":\"B\","
                  "\"password\":\"12345678\"}",
                  INVALID, "first_name", "at least 1 bytes");
    expect_coerce(d, cmd, "{\"email\":\"a@b.co\",\"first_name\":\"A\",\"password\":\"12345678\"}",
                  INVALID, "last_name", "is required");
    expect_coerce(d, cmd,
                  "{\"email\":\"a@b.co\",\"first_name\":\"A\",\"last_name\":\"B\","
                  "\"password\":\"1234567\"}",
                  INVALID, "password", "at least 8 bytes");
    expect_coerce(d, cmd,
                  "{\"email\":\"a@b.co\",\"first_name\":\"A\",\"last_name\":\"B\","
                  "\"password\":true}",
                  INVALID, "password", "must be a string");

    /* Too long: 101-byte name, 255-byte email, 1025-byte password. */
    char big[1100], text[1300];
    memset(big, 'x', sizeof(big));
    big[101] = '\0';
    snprintf(text, sizeof(text),
             "{\"email\":\"a@b.co\",\"first_name\":\"%s\",\"last_name\":\"B\","
             "\"password\":\"12345678\"}",
             big);
    expect_coerce(d, cmd, text, INVALID, "first_name", "at most 100 bytes");
    memset(big, 'x', sizeof(big));
    memcpy(big + 250, "@b.co", 6); /* 250 + 5 = 255 bytes */
    snprintf(
        text, sizeof(text),
        "{\"email\":\"%s\",\"first_name\":\"A\",\"last_name\":\"B\",\"password\":\"12345678\"}",
        big);
    expect_coerce(d, cmd, text, INVALID, "email", "at most 254 bytes");
    memset(big, 'x', sizeof(big));
    big[1025] = '\0';
    snprintf(text, sizeof(text),
             "{\"email\":\"a@b.co\",\"first_name\":\"A\",\"last_name\":\"B\",\"password\":\"%s\"}",
             big);
    expect_coerce(d, cmd, text, INVALID, "password", "at most 1024 bytes");

    /* Bad shapes of email, each with its reason. */
    static const char *const bad[][2] = {
        {"no-at.example.com", "exactly one @"},
        {"a@@example.com", "exactly one @"},
        {"a@b@example.com", "exactly one @"},
        {"", "exactly one @"},
        {"   ", "exactly one @"},
        {"@example.com", "non-empty part before the @"},
        {"a@example", "domain containing a dot"},
        {"a@", "domain containing a dot"},
        {"a@.example.com", "empty label"},
        {"a@example.com.", "empty label"},
        {"a@example..com", "empty label"},
        {"a b@example.com", "spaces"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "{\"email\":\"%s\",\"first_name\":\"A\",\"last_name\":\"B\","
                 "\"password\":\"12345678\"}",
                 bad[i][0]);
        expect_coerce(d, cmd, text, INVALID, "email", bad[i][1]);
    }

    /* Every failing field is reported at once. */
    json_t *data = json_pack("{s:i}", "email", 1);
    const struct cw_command_def *def = NULL;
    struct cw_error err = {0};
    assert_int_equal(cw_coerce_command(d, cmd, data, false, &def, &err), CW_ERR_INVALID);
    assert_int_equal(json_array_size(err.details), 4);
    cw_error_release(&err);
    json_decref(data);

    /* A good one is trimmed and lower-cased in place; a client's own hash is dropped. */
    data = json_pack("{s:s,s:s,s:s,s:s,s:s}", "email", " \tAlice@Example.COM \n", "first_name",
                     "Alice", "last_name", "Liddell", "password", "12345678", "password_hash",
                     "$argon2id$chosen-by-client");
    assert_int_equal(cw_coerce_command(d, cmd, data, false, &def, &err), CW_OK);
    assert_string_equal(json_string_value(json_object_get(data, "email")), "alice@example.com");
    assert_null(json_object_get(data, "password_hash"));
    assert_string_equal(def->name, cmd);
    json_decref(data);
    cw_domain_free(d);
}

static void test_coerce_demo(void **state)
{
    struct cw_domain *d = harness_domain(register_all);
    expect_coerce(d, "visit-page", "{}", INVALID, "url", "is required");
    expect_coerce(d, "visit-page", "{\"url\":[]}", INVALID, "url", "must be a string");
    char url[2100], text[2200];
    memset(url, 'u', sizeof(url));
    url[2049] = '\0';
    snprintf(text, sizeof(text), "{\"url\":\"%s\"}", url);
    expect_coerce(d, "visit-page", text, INVALID, "url", "at most 2048 bytes");
    url[2048] = '\0';
    snprintf(text, sizeof(text), "{\"url\":\"%s\"}", url);
    expect_coerce(d, "visit-page", text, CW_OK, NULL, NULL, NULL);

    static const char *const cart[] = {"add-to-cart", "remove-from-cart"};
    for (int i = 0; i < 2; i++) {
        expect_coerce(d, cart[i], "{\"quantity\":1}", INVALID, "sku", "is required");
        expect_coerce(d, cart[i], "{\"sku\":\"\",\"quantity\":1}", INVALID, "sku",
                      "at least 1 bytes");
        memset(url, 's', 129);
        url[129] = '\0';
        snprintf(text, sizeof(text), "{\"sku\":\"%s\",\"quantity\":1}", url);
        expect_coerce(d, cart[i], text, INVALID, "sku", "at most 128 bytes");
        expect_coerce(d, cart[i], "{\"sku\":\"a\"}", INVALID, "quantity", "is required");
        expect_coerce(d, cart[i], "{\"sku\":\"a\",\"quantity\":0}", INVALID, "quantity",
                      "between 1 and 1000");
        expect_coerce(d, cart[i], "{\"sku\":\"a\",\"quantity\":1001}", INVALID, "quantity",
                      "between 1 and 1000");
        expect_coerce(d, cart[i], "{\"sku\":\"a\",\"quantity\":\"3\"}", INVALID, "quantity",
                      "must be an integer");
        expect_coerce(d, cart[i], "{\"sku\":\"a\",\"quantity\":2.5}", INVALID, "quantity",
                      "must be an integer");
        expect_coerce(d, cart[i], "{\"sku\":\"a\",\"quantity\":1000}", CW_OK, NULL, NULL, NULL);
    }

    expect_coerce(d, "no-such-command", "{}", CW_ERR_NOT_FOUND, "unknown-command", NULL, NULL);
    /* Internal commands do not exist for clients. */
    expect_coerce(d, "start-session", "{}", CW_ERR_NOT_FOUND, "unknown-command", NULL, NULL);
    expect_coerce(d, "end-session", "{}", CW_ERR_NOT_FOUND, "unknown-command", NULL, NULL);
    expect_coerce(d, "visit-page", "[\"url\"]", CW_ERR_MALFORMED, "malformed", NULL, NULL);
    expect_coerce(d, "add-to-cart", "\"sku\"", CW_ERR_MALFORMED, "malformed", NULL, NULL);
    expect_coerce(d, "register-user", "null", CW_ERR_MALFORMED, "malformed", NULL, NULL);

    /* The server may issue them; their uuids are checked. */
    json_t *data = json_pack("{s:s,s:s}", "user_uuid", "not-a-uuid", "session_uuid",
                             "0190F6D2-8C1E-7A3B-9F00-1C2D3E4F5A6B");
    const struct cw_command_def *def = NULL;
    struct cw_error err = {0};
    assert_int_equal(cw_coerce_command(d, "start-session", data, true, &def, &err), CW_ERR_INVALID);
    assert_non_null(strstr(detail_reason(&err, "user_uuid"), "UUID"));
    assert_non_null(strstr(detail_reason(&err, "session_uuid"), "UUID"));
    cw_error_release(&err);
    json_decref(data);
    cw_domain_free(d);
}

static void test_normalize_email(void **state)
{
    char e1[] = "  \t Bob.Smith@Example.ORG \r\n";
    cw_accounts_normalize_email(e1);
    assert_string_equal(e1, "bob.smith@example.org");
    char e2[] = "   ";
    cw_accounts_normalize_email(e2);
    assert_string_equal(e2, "");
    char e3[] = "plain@x.io";
    cw_accounts_normalize_email(e3);
    assert_string_equal(e3, "plain@x.io");
    char e4[] = "\xc3\x89T\xc3\xa9@x.io"; /* only ASCII letters change */
    cw_accounts_normalize_email(e4);
    assert_string_equal(e4, "\xc3\x89t\xc3\xa9@x.io");
}

/* ----------------------------------------------------- register-user */

static json_t *registration(const char *email, const char *password)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "email", email, "first_name", "Alice", "last_name",
                     "Liddell", "password", password);
}

static void test_register(void **state)
{
    struct harness h;
    harness_open(&h, register_all);
    struct cw_outcome o[2] = {{0}};
    char issuer[CW_UUID_LEN + 1]; /* the console user who registers the others */
    cw_uuid_v7(issuer);

    run_cmd(&h, "register-user", issuer, registration("  Alice@Example.COM ", "correct horse"), o);
    expect_event(o, "user-registered");
    const struct cw_update *u = o[0].events[0];
    const char *frame = u->frame;
    assert_non_null(strstr(frame, "\"alice@example.com\""));
    assert_null(strstr(frame, "password"));
    assert_null(strstr(frame, "argon2"));
    assert_null(strstr(frame, "correct horse"));
    char alice[CW_UUID_LEN + 1];
    frame_field(u, "user_uuid", alice, sizeof(alice));
    assert_true(cw_uuid_valid(alice));

    /* The login lookup finds the hash the log keeps; it verifies the password only. */
    char found[CW_UUID_LEN + 1], hash[crypto_pwhash_STRBYTES];
    struct cw_error err = {0};
    assert_int_equal(
        cw_accounts_find_login(h.reader, "alice@example.com", found, hash, sizeof(hash), &err),
        CW_OK);
    assert_string_equal(found, alice);
    assert_true(strncmp(hash, "$argon2id$", 10) == 0);
    char cost[64]; /* the interactive limits, as the hash records them */
    snprintf(cost, sizeof(cost), "$m=%zu,t=%llu,",
             (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024,
             (unsigned long long)crypto_pwhash_OPSLIMIT_INTERACTIVE);
    assert_non_null(strstr(hash, cost));
    /* The log keeps the hash (replay rebuilds users from it); clients never see it. */
    json_t *logged = NULL;
    assert_int_equal(cw_db_query_json(h.reader, &logged, &err,
                                      harness_pg()
                                          ? "SELECT CAST(data AS json)->>'password_hash' AS hash"
                                            " FROM events WHERE position = ?"
                                          : "SELECT json_extract(data, '$.password_hash') AS hash"
                                            " FROM events WHERE position = ?",
                                      "i", u->ev.position),
                     CW_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(logged, 0), "hash")),
                        hash);
    json_decref(logged);
    assert_null(strstr(frame, hash));
    assert_true(cw_password_verify(hash, "correct horse"));
    assert_false(cw_password_verify(hash, "correct horsE"));
    assert_false(cw_password_verify(hash, ""));
    assert_false(cw_password_verify("$argon2id$garbage", "correct horse"));
    assert_false(cw_password_verify(NULL, "correct horse"));
    assert_int_equal(
        cw_accounts_find_login(h.reader, "nobody@example.com", found, hash, sizeof(hash), &err),
        CW_ERR_NOT_FOUND);
    assert_int_equal(cw_accounts_find_login(h.reader, "alice@example.com", found, hash, 10, &err),
                     CW_ERR_TOO_LARGE);
    cw_outcome_release(o);

    /* The same email, other case and white space: rejected. */
    run_cmd(&h, "register-user", issuer, registration("\tALICE@example.com ", "another one"), o);
    expect_rejected(o, "email-taken");
    assert_string_equal(o[0].reject.message, "that email is already registered");
    cw_outcome_release(o);

    /* Two registrations of one email submitted together: the second is rejected. */
    submit(&h, "register-user", issuer, registration("bob@example.com", "password-1"));
    submit(&h, "register-user", issuer, registration("BOB@example.com", "password-2"));
    assert_int_equal(harness_collect(&h, o, 2), 2);
    expect_event(&o[0], "user-registered");
    expect_rejected(&o[1], "email-taken");
    cw_outcome_release(&o[0]);
    cw_outcome_release(&o[1]);

    /* Without a prepared hash the handler refuses. */
    register_fake(&h, "carol@example.com", NULL, o);
    expect_rejected(o, "invalid-command");
    cw_outcome_release(o);

    /* list-users: ordered by email, four keys, no hash. */
    json_t *users = query(&h, "list-users", NULL, alice);
    assert_int_equal(json_array_size(users), 2);
    json_t *first = json_array_get(users, 0), *second = json_array_get(users, 1);
    assert_string_equal(json_string_value(json_object_get(first, "email")), "alice@example.com");
    assert_string_equal(json_string_value(json_object_get(first, "user_uuid")), alice);
    assert_string_equal(json_string_value(json_object_get(first, "first_name")), "Alice");
    assert_string_equal(json_string_value(json_object_get(first, "last_name")), "Liddell");
    assert_string_equal(json_string_value(json_object_get(second, "email")), "bob@example.com");
    assert_int_equal(json_object_size(first), 4);
    char *text = dump(users);
    assert_null(strstr(text, "password"));
    assert_null(strstr(text, "argon2"));
    free(text);
    json_decref(users);

    /* whoami: the asking user's own row, without the hash; an unknown user gets nulls. */
    json_t *me = query(&h, "whoami", NULL, alice);
    assert_string_equal(json_string_value(json_object_get(me, "email")), "alice@example.com");
    assert_string_equal(json_string_value(json_object_get(me, "user_uuid")), alice);
    assert_int_equal(json_object_size(me), 4);
    json_decref(me);
    me = query(&h, "whoami", NULL, issuer);
    assert_string_equal(json_string_value(json_object_get(me, "user_uuid")), issuer);
    assert_true(json_is_null(json_object_get(me, "email")));
    json_decref(me);

    /* Nor does the events query show it. */
    json_t *events = query(&h, "events", NULL, issuer);
    assert_true(json_array_size(events) >= 2);
    text = dump(events);
    assert_non_null(strstr(text, "user-registered"));
    assert_null(strstr(text, "password"));
    assert_null(strstr(text, "argon2"));
    free(text);
    json_decref(events);
    harness_close(&h);
}

/* ----------------------------------------------------------- sessions */

static json_t *session_data(const char *user, const char *session)
{
    return user ? json_pack("{s:s,s:s}", "user_uuid", user, "session_uuid", session)
                : json_pack("{s:s}", "session_uuid", session);
}

static void test_sessions(void **state)
{
    struct harness h;
    harness_open(&h, register_all);
    char user[CW_UUID_LEN + 1], session[CW_UUID_LEN + 1], other[CW_UUID_LEN + 1];
    char got[CW_UUID_LEN + 1];
    fake_user(&h, "dave@example.com", user);
    cw_uuid_v7(session);
    cw_uuid_v7(other);
    struct cw_error err = {0};
    struct cw_outcome o = {0};

    assert_int_equal(cw_accounts_session_user(h.reader, session, got, &err), CW_ERR_UNAUTHORIZED);
    assert_string_equal(err.code, "unauthorized");

    run_cmd(&h, "start-session", user, session_data(user, session), &o);
    expect_event(&o, "session-started");
    char got_session[CW_UUID_LEN + 1];
    frame_field(o.events[0], "session_uuid", got_session, sizeof(got_session));
    assert_string_equal(got_session, session);
    assert_string_equal(o.events[0]->ev.user_uuid, user);
    cw_outcome_release(&o);
    assert_int_equal(cw_accounts_session_user(h.reader, session, got, &err), CW_OK);
    assert_string_equal(got, user);

    run_cmd(&h, "start-session", user, session_data(user, session), &o);
    expect_rejected(&o, "session-exists");
    cw_outcome_release(&o);

    run_cmd(&h, "end-session", user, session_data(NULL, session), &o);
    expect_event(&o, "session-ended");
    cw_outcome_release(&o);
    assert_int_equal(cw_accounts_session_user(h.reader, session, got, &err), CW_ERR_UNAUTHORIZED);

    run_cmd(&h, "end-session", user, session_data(NULL, session), &o);
    expect_rejected(&o, "no-session");
    cw_outcome_release(&o);
    run_cmd(&h, "end-session", user, session_data(NULL, other), &o);
    expect_rejected(&o, "no-session");
    cw_outcome_release(&o);
    harness_close(&h);
}

/* --------------------------------------------------------- page views */

static const char *str_at(json_t *rows, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(rows, i), key));
}

static int64_t int_at(json_t *rows, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(rows, i), key));
}

static void expect_query_invalid(struct harness *h, const char *name, const char *text,
                                 const char *field)
{
    json_t *data = json_loads(text, 0, NULL), *r = NULL;
    struct cw_error err = {0};
    assert_int_equal(cw_query_run(h->d, h->reader, name, data, "", &r, &err), CW_ERR_INVALID);
    assert_null(r);
    assert_string_equal(err.code, "query-validation-failed");
    detail_reason(&err, field);
    cw_error_release(&err);
    json_decref(data);
}

static void test_page_views(void **state)
{
    struct harness h;
    harness_open(&h, register_all);
    char alice[CW_UUID_LEN + 1], bob[CW_UUID_LEN + 1], anon[CW_UUID_LEN + 1];
    fake_user(&h, "alice@example.com", alice);
    fake_user(&h, "bob@example.com", bob);
    cw_uuid_v7(anon);
    const char *who[] = {alice, bob, anon, alice};
    const char *urls[] = {"/a", "/b?x=1", "/c", "/d"};
    int64_t pos[4];
    for (int i = 0; i < 4; i++) {
        struct cw_outcome o = {0};
        run_cmd(&h, "visit-page", who[i], json_pack("{s:s}", "url", urls[i]), &o);
        pos[i] = expect_event(&o, "page-view");
        /* Every logged-in user receives it. */
        const struct cw_update *u = o.events[0];
        assert_non_null(u->def);
        assert_true(cw_domain_audience_allows(u->def, &u->ev, bob));
        cw_outcome_release(&o);
    }

    json_t *rows = query(&h, "list-page-views", NULL, bob);
    assert_int_equal(json_array_size(rows), 4);
    const char *emails[] = {"alice@example.com", "bob@example.com", NULL, "alice@example.com"};
    for (int i = 0; i < 4; i++) {
        size_t r = 3 - (size_t)i; /* newest first */
        assert_int_equal(int_at(rows, r, "position"), pos[i]);
        assert_string_equal(str_at(rows, r, "url"), urls[i]);
        assert_string_equal(str_at(rows, r, "user_uuid"), who[i]);
        if (emails[i])
            assert_string_equal(str_at(rows, r, "email"), emails[i]);
        else
            assert_true(json_is_null(json_object_get(json_array_get(rows, r), "email")));
        assert_true(int_at(rows, r, "recorded_at") > 0);
        assert_int_equal(json_object_size(json_array_get(rows, r)), 5);
    }
    json_decref(rows);

    rows = query(&h, "list-page-views", json_pack("{s:i}", "limit", 2), bob);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(str_at(rows, 0, "url"), "/d");
    assert_string_equal(str_at(rows, 1, "url"), "/c");
    json_decref(rows);
    rows =
        query(&h, "list-page-views", json_pack("{s:I}", "after_position", (json_int_t)pos[1]), bob);
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(int_at(rows, 0, "position"), pos[3]);
    assert_int_equal(int_at(rows, 1, "position"), pos[2]);
    json_decref(rows);

    expect_query_invalid(&h, "list-page-views", "{\"limit\":0}", "limit");
    expect_query_invalid(&h, "list-page-views", "{\"limit\":1001}", "limit");
    expect_query_invalid(&h, "list-page-views", "{\"limit\":\"5\"}", "limit");
    expect_query_invalid(&h, "list-page-views", "{\"after_position\":-1}", "after_position");
    expect_query_invalid(&h, "get-cart", "{\"as_of_position\":-1}", "as_of_position");
    harness_close(&h);
}

/* --------------------------------------------------------------- cart */

struct step {
    int who; /* 0: the user under test, 1: another user */
    const char *name;
    const char *sku;
    int quantity;
    const char *rejected; /* expected rejection code, or NULL */
};

static const struct step steps[] = {
    {0, "add-to-cart", "apple", 2, NULL},
    {1, "add-to-cart", "apple", 5, NULL},
    {0, "add-to-cart", "Banana", 1, NULL},
    {0, "visit-page", NULL, 0, NULL},
    {0, "add-to-cart", "apple", 3, NULL},
    {0, "remove-from-cart", "apple", 4, NULL},
    {0, "remove-from-cart", "Banana", 2, "not-in-cart"},
    {0, "remove-from-cart", "cherry", 1, "not-in-cart"},
    {1, "remove-from-cart", "apple", 5, NULL},
    {0, "remove-from-cart", "Banana", 1, NULL},
    {0, "add-to-cart", "cherry", 5, NULL},
    {0, "add-to-cart", "a\xc3\xa9", 7, NULL},
    {0, "remove-from-cart", "apple", 1, NULL},
    {0, "remove-from-cart", "apple", 1, "not-in-cart"},
    {1, "add-to-cart", "zucchini", 1, NULL},
    {0, "add-to-cart", "Banana", 1000, NULL},
};
#define N_STEPS (sizeof(steps) / sizeof(steps[0]))

static json_t *step_data(const struct step *s)
{
    if (!s->sku)
        return json_pack("{s:s}", "url", "/shop");
    return json_pack("{s:s,s:i}", "sku", s->sku, "quantity", s->quantity);
}

static json_t *cart_at(struct harness *h, const char *user, int64_t as_of)
{
    json_t *data = as_of < 0 ? NULL : json_pack("{s:I}", "as_of_position", (json_int_t)as_of);
    return query(h, "get-cart", data, user);
}

/* The items of cart, failing unless its position is want_position. */
static json_t *items_at(json_t *cart, int64_t want_position)
{
    assert_int_equal(json_integer_value(json_object_get(cart, "position")), want_position);
    return json_object_get(cart, "items");
}

static void check_history(struct harness *h, const char *user, const int64_t *pos, bool mine)
{
    json_t *hist = query(h, "cart-history", NULL, user);
    size_t n = 0;
    for (size_t i = 0; i < N_STEPS; i++) {
        const struct step *s = &steps[i];
        if ((s->who == 0) != mine || !s->sku || s->rejected)
            continue;
        json_t *e = json_array_get(hist, n++);
        assert_non_null(e);
        assert_int_equal(json_integer_value(json_object_get(e, "position")), pos[i]);
        const char *name = json_string_value(json_object_get(e, "name"));
        assert_string_equal(name, strcmp(s->name, "add-to-cart") == 0 ? "item-added-to-cart"
                                                                      : "item-removed-from-cart");
        assert_string_equal(json_string_value(json_object_get(e, "sku")), s->sku);
        assert_int_equal(json_integer_value(json_object_get(e, "quantity")), s->quantity);
        assert_true(json_integer_value(json_object_get(e, "recorded_at")) > 0);
        assert_int_equal(json_object_size(e), 5);
    }
    assert_int_equal(json_array_size(hist), n);
    json_decref(hist);
}

/*
 * demo:002 turns an existing page_views table (BIGINT PRIMARY KEY, a second
 * B-tree) into one keyed by its rowid, keeping every row.
 */
static void test_page_views_upgrade(void **state)
{
    if (harness_pg())
        skip(); /* an upgrade of a SQLite file */
    struct harness h;
    memset(&h, 0, sizeof(h));
    harness_mkdir(&h);
    struct cw_store *s = NULL;
    struct cw_error err = {0};
    assert_int_equal(cw_store_open(h.db_path, NULL, &s, &err), CW_OK);
    assert_int_equal(cw_store_migrate(s, NULL, NULL, &err), CW_OK);
    cw_store_close(s);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(h.db_path, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(raw,
                     "CREATE TABLE page_views (position BIGINT PRIMARY KEY,"
                     " url TEXT NOT NULL, user_uuid TEXT, recorded_at BIGINT NOT NULL);"
                     "INSERT INTO page_views VALUES (7, '/old', NULL, 70), (3, '/older',"
                     " 'u', 30);"
                     "INSERT INTO schema_migrations VALUES ('demo:001-page-views', 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);

    h.d = harness_domain(register_all);
    assert_int_equal(harness_start(&h, &err), CW_OK);
    json_t *n = NULL;
    assert_int_equal(
        cw_db_query_json(h.reader, &n, &err,
                         "SELECT (SELECT COUNT(*) FROM pragma_index_list('page_views'))"
                         " AS indexes, group_concat(position || url || recorded_at)"
                         " AS rows FROM (SELECT * FROM page_views ORDER BY position)",
                         ""),
        CW_OK);
    json_t *row = json_array_get(n, 0);
    assert_int_equal(json_integer_value(json_object_get(row, "indexes")), 0);
    assert_string_equal(json_string_value(json_object_get(row, "rows")), "3/older30,7/old70");
    json_decref(n);
    json_t *rows = query(&h, "list-page-views", NULL, NULL);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "url")), "/old");
    json_decref(rows);
    harness_close(&h);
}

static void test_cart(void **state)
{
    struct harness h;
    harness_open(&h, register_all);
    char users[2][CW_UUID_LEN + 1];
    cw_uuid_v7(users[0]);
    cw_uuid_v7(users[1]);
    const char *me = users[0];

    json_t *empty = cart_at(&h, me, -1);
    assert_int_equal(json_array_size(items_at(empty, 0)), 0);
    json_decref(empty);

    /* After each step: the current cart, and the position it claims. */
    json_t *after[N_STEPS];
    int64_t pos[N_STEPS] = {0}, cart_pos = 0, last = 0;
    for (size_t i = 0; i < N_STEPS; i++) {
        const struct step *s = &steps[i];
        struct cw_outcome o = {0};
        run_cmd(&h, s->name, users[s->who], step_data(s), &o);
        if (s->rejected) {
            expect_rejected(&o, s->rejected);
        } else {
            pos[i] = o.events[0]->ev.position;
            assert_true(pos[i] > last);
            last = pos[i];
            if (s->who == 0 && s->sku)
                cart_pos = pos[i];
        }
        cw_outcome_release(&o);
        after[i] = cart_at(&h, me, -1);
        items_at(after[i], cart_pos);
    }

    /* The final state, by hand: sorted in byte order ("B" < "a" < "c"). */
    json_t *want = json_loads("[{\"sku\":\"Banana\",\"quantity\":1000},"
                              "{\"sku\":\"a\\u00e9\",\"quantity\":7},"
                              "{\"sku\":\"cherry\",\"quantity\":5}]",
                              0, NULL);
    assert_true(json_equal(items_at(after[N_STEPS - 1], cart_pos), want));
    json_decref(want);

    /* As of every position, the fold of the log equals the cart recorded then. */
    for (int64_t p = 0; p <= last + 1; p++) {
        json_t *expected = NULL;
        for (size_t i = 0; i < N_STEPS; i++)
            if (pos[i] && pos[i] <= p)
                expected = json_object_get(after[i], "items");
        json_t *as_of = cart_at(&h, me, p);
        json_t *items = items_at(as_of, p);
        if (expected ? !json_equal(items, expected) : json_array_size(items) != 0) {
            char *a = dump(items), *b = expected ? dump(expected) : strdup("[]");
            fail_msg("as of %lld: %s, want %s", (long long)p, a, b);
        }
        json_decref(as_of);
    }

    /* A cart needs a user: a system command (no user) is refused. */
    struct cw_outcome o = {0};
    run_cmd(&h, "add-to-cart", "", json_pack("{s:s,s:i}", "sku", "x", "quantity", 1), &o);
    expect_rejected(&o, "invalid-command");
    cw_outcome_release(&o);

    /* The other user's cart is theirs alone. */
    json_t *theirs = cart_at(&h, users[1], -1);
    assert_int_equal(json_array_size(json_object_get(theirs, "items")), 1);
    json_decref(theirs);

    check_history(&h, me, pos, true);
    check_history(&h, users[1], pos, false);
    for (size_t i = 0; i < N_STEPS; i++)
        json_decref(after[i]);
    harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coerce_register),    cmocka_unit_test(test_coerce_demo),
        cmocka_unit_test(test_normalize_email),    cmocka_unit_test(test_register),
        cmocka_unit_test(test_sessions),           cmocka_unit_test(test_page_views),
        cmocka_unit_test(test_page_views_upgrade), cmocka_unit_test(test_cart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
