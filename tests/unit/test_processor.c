/*
 * test_processor.c - the write side end to end through tests/harness.h: a
 * real SQLite store, queue, processor and update bus, driven with a small
 * test domain defined here.
 *
 * The "gate" command blocks the processor inside its handler until the test
 * opens it, so commands submitted meanwhile are known to form one batch.
 */
#include "core/clock.h"
#include "harness.h"

#include <errno.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

/* ------------------------------------------------------------ the domain */

static atomic_int add_calls, clash_calls;
/* Handler calls for resent commands (keys ending -other or -again): must stay 0. */
static atomic_int resent_calls;
static sem_t gate_entered, gate_release;

/* add {k, secret?, reject?, count?}: emits count "added" events (k, k.2, k.3 ...). */
static int handle_add(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                      struct cw_error *err)
{
    atomic_fetch_add(&add_calls, 1);
    const char *k = json_string_value(json_object_get(cmd->data, "k"));
    if (k && (strstr(k, "-other") || strstr(k, "-again")))
        atomic_fetch_add(&resent_calls, 1);
    if (json_is_true(json_object_get(cmd->data, "reject"))) {
        /* Writes a projection row first: the rejection must undo it. */
        int rc = cw_db_exec(db, err, "INSERT INTO ptest_scratch(k) VALUES (?)", "t", k);
        if (rc)
            return rc;
        return cw_error_set(err, CW_ERR_REJECTED, "no-thanks", "refused %s", k);
    }
    json_t *count = json_object_get(cmd->data, "count");
    int n = json_is_integer(count) ? (int)json_integer_value(count) : 1;
    for (int i = 0; i < n; i++) {
        char key[96];
        if (i == 0)
            snprintf(key, sizeof(key), "%s", k);
        else
            snprintf(key, sizeof(key), "%s.%d", k, i + 1);
        json_t *data = json_pack("{s:s}", "k", key);
        json_t *secret = json_object_get(cmd->data, "secret");
        if (secret)
            json_object_set(data, "secret", secret);
        int rc = cw_emit_take(out, "added", data);
        if (rc)
            return rc;
    }
    return CW_OK;
}

/* clash {k}: emits "added" for k, whose aggregate fails when k is already a row. */
static int handle_clash(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                        struct cw_error *err)
{
    atomic_fetch_add(&clash_calls, 1);
    return cw_emit_take(out, "added", json_pack("{s:O}", "k", json_object_get(cmd->data, "k")));
}

/* claim {k}: the handler itself writes a unique row, then emits "added" for "claim:k". */
static int handle_claim(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                        struct cw_error *err)
{
    const char *k = json_string_value(json_object_get(cmd->data, "k"));
    int rc = cw_db_exec(db, err, "INSERT INTO ptest_claims(k) VALUES (?)", "t", k);
    if (rc)
        return rc;
    char key[96];
    snprintf(key, sizeof(key), "claim:%s", k);
    return cw_emit_take(out, "added", json_pack("{s:s}", "k", key));
}

static int handle_gate(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                       struct cw_error *err)
{
    sem_post(&gate_entered);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    while (sem_timedwait(&gate_release, &ts) == -1 && errno == EINTR)
        ;
    return CW_OK;
}

static int aggregate_added(struct cw_db *db, const struct cw_event *ev, struct cw_error *err)
{
    return cw_db_exec(db, err, "INSERT INTO ptest_rows(k, position) VALUES (?, ?)", "ti",
                      json_string_value(json_object_get(ev->data, "k")), ev->position);
}

static const struct cw_field add_fields[] = {
    {.name = "k", .type = CW_FIELD_STRING, .required = true, .min_length = 1, .max_length = 64},
    {.name = "secret", .type = CW_FIELD_STRING},
    {.name = "reject", .type = CW_FIELD_BOOLEAN},
    {.name = "count", .type = CW_FIELD_INTEGER, .ranged = true, .min = 1, .max = 5},
    {0},
};
static const struct cw_field k_fields[] = {
    {.name = "k", .type = CW_FIELD_STRING, .required = true},
    {0},
};
static const struct cw_command_def add_def = {
    .name = "add", .fields = add_fields, .handle = handle_add};
static const struct cw_command_def clash_def = {
    .name = "clash", .fields = k_fields, .handle = handle_clash};
static const struct cw_command_def claim_def = {
    .name = "claim", .fields = k_fields, .handle = handle_claim};
static const struct cw_command_def gate_def = {.name = "gate", .handle = handle_gate};

/* tally: emits "added" for "tally:N", N the events in the log as its handler sees it. */
static int handle_tally(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                        struct cw_error *err)
{
    int64_t n = -1;
    int rc = cw_db_query_int(db, &n, err, "SELECT COUNT(*) FROM events", "");
    if (rc)
        return rc;
    char key[64];
    snprintf(key, sizeof(key), "tally:%lld", (long long)n);
    return cw_emit_take(out, "added", json_pack("{s:s}", "k", key));
}
static const struct cw_command_def tally_def = {.name = "tally", .handle = handle_tally};
static const char *const added_private[] = {"secret", NULL};
static const struct cw_event_def added_def = {
    .name = "added", .version = 1, .aggregate = aggregate_added, .private_fields = added_private};
static const struct cw_migration ptest_001 = {
    .id = "001-tables",
    .sql = "CREATE TABLE ptest_rows(k TEXT PRIMARY KEY, position INTEGER NOT NULL);"
           "CREATE TABLE ptest_scratch(k TEXT NOT NULL);"
           "CREATE TABLE ptest_claims(k TEXT PRIMARY KEY);"
           /* The log refuses one event: its insert fails, whenever it is made. */
           "CREATE TRIGGER ptest_no_boom BEFORE INSERT ON events"
           " WHEN NEW.data LIKE '%\"boom\"%' BEGIN SELECT RAISE(ABORT, 'boom refused'); END;",
    /* The same tables; the trigger in PostgreSQL's words. */
    .sql_pg = "CREATE TABLE ptest_rows(k TEXT PRIMARY KEY, position INTEGER NOT NULL);"
              "CREATE TABLE ptest_scratch(k TEXT NOT NULL);"
              "CREATE TABLE ptest_claims(k TEXT PRIMARY KEY);"
              "CREATE FUNCTION ptest_refuse() RETURNS trigger LANGUAGE plpgsql AS"
              " $$BEGIN RAISE EXCEPTION 'boom refused'; END$$;"
              "CREATE TRIGGER ptest_no_boom BEFORE INSERT ON events FOR EACH ROW"
              " WHEN (NEW.data LIKE '%\"boom\"%') EXECUTE FUNCTION ptest_refuse();"};

static int reg(struct cw_domain *d)
{
    int rc = cw_domain_add_command(d, &add_def);
    if (!rc)
        rc = cw_domain_add_command(d, &clash_def);
    if (!rc)
        rc = cw_domain_add_command(d, &gate_def);
    if (!rc)
        rc = cw_domain_add_command(d, &claim_def);
    if (!rc)
        rc = cw_domain_add_command(d, &tally_def);
    if (!rc)
        rc = cw_domain_add_event(d, &added_def);
    if (!rc)
        rc = cw_domain_add_migration(d, "ptest", &ptest_001);
    return rc;
}

/* --------------------------------------------------------------- helpers */

static const char *U1 = "0190f6d2-8c1e-7a3b-9f00-000000000001";
static const char *U2 = "0190f6d2-8c1e-7a3b-9f00-000000000002";

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    harness_open(h, reg);
    atomic_store(&add_calls, 0);
    atomic_store(&resent_calls, 0);
    atomic_store(&clash_calls, 0);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    harness_close(h);
    free(h);
    return 0;
}

/* Submits (waiting out a full queue); data is JSON text. */
static void submit(struct harness *h, const char *name, const char *user, const char *client_id,
                   int64_t seq, const char *data_text)
{
    struct cw_error err = {0};
    json_t *data = json_loads(data_text, 0, NULL);
    assert_non_null(data);
    int rc;
    for (;;) {
        json_incref(data);
        rc = harness_submit(h, name, user, client_id, seq, data, &err);
        if (rc != CW_ERR_OVERLOADED)
            break;
        usleep(200);
    }
    json_decref(data);
    if (rc)
        fail_msg("submit %s seq %lld: %d %s", name, (long long)seq, rc, err.message);
    cw_error_release(&err);
}

static void submit_add(struct harness *h, const char *user, const char *client_id, int64_t seq,
                       const char *k)
{
    char data[128];
    snprintf(data, sizeof(data), "{\"k\":\"%s\"}", k);
    submit(h, "add", user, client_id, seq, data);
}

/* Blocks the processor in the gate handler. */
static void close_gate(struct harness *h)
{
    submit(h, "gate", U1, "gate", cw_now_us(), "{}");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    int rc;
    while ((rc = sem_timedwait(&gate_entered, &ts)) == -1 && errno == EINTR)
        ;
    assert_int_equal(rc, 0);
}

/* Lets the processor go on and takes the gate's own batch off the bus. */
static void open_gate(struct harness *h)
{
    sem_post(&gate_release);
    struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(h->e), 10 * 1000000);
    assert_non_null(b);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->items[0].env->cmd.name, "gate");
    cw_outcome_batch_free(b);
}

static struct cw_outcome_batch *take_batch(struct harness *h)
{
    struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(h->e), 10 * 1000000);
    if (!b)
        fail_msg("no batch on the bus within 10 s");
    return b;
}

/* Runs sql on a fresh read connection (sees the latest commit). */
static int64_t count(struct harness *h, const char *sql, const char *arg)
{
    struct cw_error err = {0};
    struct cw_db *r;
    if (cw_store_reader_open(cw_engine_store(h->e), &r, &err))
        fail_msg("reader: %s", err.message);
    int64_t v = -1;
    int rc =
        arg ? cw_db_query_int(r, &v, &err, sql, "t", arg) : cw_db_query_int(r, &v, &err, sql, "");
    cw_db_close(r);
    if (rc)
        fail_msg("%s: %s", sql, err.message);
    return v;
}

/* The log is 1..N without a hole. */
static void assert_gap_free(struct harness *h)
{
    int64_t n = count(h, "SELECT COUNT(*) FROM events", NULL);
    assert_int_equal(count(h, "SELECT COALESCE(MAX(position), 0) FROM events", NULL), n);
    if (n)
        assert_int_equal(count(h, "SELECT MIN(position) FROM events", NULL), 1);
}

static void release_all(struct cw_outcome *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cw_outcome_release(&o[i]);
}

static int64_t pos_of(const struct cw_outcome *o, size_t i)
{
    assert_true(i < o->n_events);
    return o->events[i]->ev.position;
}

/* ----------------------------------------------------------------- tests */

static void test_order_and_positions(void **state)
{
    struct harness *h = *state;
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        submit_add(h, U1, "c1", i, k);
    }
    struct cw_outcome *o = calloc(N, sizeof(*o));
    assert_int_equal(harness_collect(h, o, N), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].env->cmd.client_seq, i);
        assert_false(o[i].rejected);
        assert_false(o[i].duplicate);
        assert_string_equal(o[i].command_uuid, o[i].env->cmd.uuid);
        assert_int_equal(o[i].n_events, 1);
        if (pos_of(&o[i], 0) != i + 1)
            fail_msg("command %d got position %lld", i, (long long)pos_of(&o[i], 0));
        assert_string_equal(o[i].events[0]->ev.command_uuid, o[i].command_uuid);
    }
    release_all(o, N);
    free(o);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), N);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands", NULL), N);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), N);
    /* Each projection row remembers the position of its event. */
    assert_int_equal(count(h, "SELECT position FROM ptest_rows WHERE k = ?", "k1234"), 1235);
    assert_gap_free(h);
}

static void test_group_commit(void **state)
{
    struct harness *h = *state;
    enum { N = 500 };
    close_gate(h);
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "g%d", i);
        submit_add(h, U1, "c1", i, k);
    }
    open_gate(h);
    struct cw_outcome *o = calloc(N, sizeof(*o));
    assert_int_equal(harness_collect(h, o, N), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(pos_of(&o[i], 0), i + 1);
    release_all(o, N);
    free(o);
    struct cw_processor_stats st;
    cw_engine_stats(h->e, &st);
    assert_int_equal(st.commands, N + 1);
    assert_true(st.batches < st.commands);
    /* The gate's batch, then everything queued behind it in one transaction. */
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.events, N);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), N);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands", NULL), N + 1);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), N);
}

static void test_reject_mid_batch(void **state)
{
    struct harness *h = *state;
    submit_add(h, U1, "c1", 1, "before");
    struct cw_outcome first;
    assert_int_equal(harness_collect(h, &first, 1), 1);
    assert_int_equal(pos_of(&first, 0), 1);
    cw_outcome_release(&first);

    close_gate(h);
    submit_add(h, U1, "c1", 2, "a1");
    submit(h, "add", U1, "c1", 3, "{\"k\":\"x\",\"reject\":true}");
    submit_add(h, U1, "c1", 4, "a3");
    open_gate(h);
    struct cw_outcome_batch *b = take_batch(h);
    assert_int_equal(b->n, 3); /* one transaction */
    struct cw_outcome *o = b->items;
    assert_false(o[0].rejected);
    assert_int_equal(o[0].n_events, 1);
    assert_int_equal(pos_of(&o[0], 0), 2);
    assert_true(o[1].rejected);
    assert_false(o[1].duplicate);
    assert_string_equal(o[1].reject.code, "no-thanks");
    assert_string_equal(o[1].reject.message, "refused x");
    assert_int_equal(o[1].n_events, 0);
    assert_string_equal(o[1].command_uuid, o[1].env->cmd.uuid);
    assert_false(o[2].rejected);
    assert_int_equal(pos_of(&o[2], 0), 3); /* the rejected command took no position */
    cw_outcome_batch_free(b);

    /* Neighbours are there; nothing of the rejected command but its record. */
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows WHERE k IN ('a1', 'a3')", NULL), 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows WHERE k = 'x'", NULL), 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_scratch", NULL), 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 3);
    assert_int_equal(
        count(h,
              "SELECT COUNT(*) FROM commands WHERE client_seq = 3 AND outcome = 'rejected'"
              " AND reject_code = ? AND first_position IS NULL",
              "no-thanks"),
        1);
    assert_gap_free(h);
    struct cw_processor_stats st;
    cw_engine_stats(h->e, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.retries, 0);
}

static void test_reject_undoes_handler_writes(void **state)
{
    struct harness *h = *state;
    submit(h, "add", U1, "c1", 1, "{\"k\":\"solo\",\"reject\":true}");
    struct cw_outcome o;
    assert_int_equal(harness_collect(h, &o, 1), 1);
    assert_true(o.rejected);
    assert_string_equal(o.reject.code, "no-thanks");
    cw_outcome_release(&o);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_scratch", NULL), 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 0);
    assert_int_equal(atomic_load(&add_calls), 1);
}

static void test_constraint_is_internal_error(void **state)
{
    struct harness *h = *state;
    submit_add(h, U1, "c1", 1, "taken");
    struct cw_outcome first;
    assert_int_equal(harness_collect(h, &first, 1), 1);
    cw_outcome_release(&first);

    close_gate(h);
    submit_add(h, U1, "c1", 2, "n1");
    submit(h, "clash", U1, "c1", 3, "{\"k\":\"taken\"}");
    submit_add(h, U1, "c1", 4, "n2");
    open_gate(h);
    struct cw_outcome_batch *b = take_batch(h);
    assert_int_equal(b->n, 3);
    assert_false(b->items[0].rejected);
    assert_int_equal(pos_of(&b->items[0], 0), 2);
    assert_true(b->items[1].rejected);
    assert_string_equal(b->items[1].reject.code, "internal-error");
    assert_int_equal(b->items[1].n_events, 0);
    assert_false(b->items[2].rejected);
    assert_int_equal(pos_of(&b->items[2], 0), 3);
    cw_outcome_batch_free(b);

    struct cw_processor_stats st;
    cw_engine_stats(h->e, &st);
    assert_int_equal(st.retries, 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 3);
    assert_int_equal(count(h, "SELECT position FROM ptest_rows WHERE k = ?", "taken"), 1);
    assert_int_equal(count(h,
                           "SELECT COUNT(*) FROM commands WHERE name = 'clash' AND reject_code = ?",
                           "internal-error"),
                     1);
    assert_gap_free(h);
    /* A permanent error is never retried: the handler ran exactly once. */
    assert_int_equal(atomic_load(&clash_calls), 1);
}

static void test_duplicates_in_one_batch(void **state)
{
    struct harness *h = *state;
    close_gate(h);
    submit(h, "add", U1, "c1", 1, "{\"k\":\"d1\",\"count\":2}");
    submit_add(h, U1, "c1", 1, "d1-other");
    submit(h, "add", U1, "c1", 2, "{\"k\":\"r\",\"reject\":true}");
    submit_add(h, U1, "c1", 2, "r-other");
    open_gate(h);
    struct cw_outcome_batch *b = take_batch(h);
    assert_int_equal(b->n, 4);
    struct cw_outcome *o = b->items;

    assert_false(o[0].duplicate);
    assert_int_equal(o[0].n_events, 2);
    assert_true(o[1].duplicate);
    assert_false(o[1].rejected);
    assert_string_equal(o[1].command_uuid, o[0].command_uuid);
    assert_string_not_equal(o[1].env->cmd.uuid, o[0].command_uuid);
    assert_int_equal(o[1].n_events, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(pos_of(&o[1], i), pos_of(&o[0], i));
        assert_string_equal(o[1].events[i]->ev.uuid, o[0].events[i]->ev.uuid);
        assert_string_equal(o[1].events[i]->frame, o[0].events[i]->frame);
    }

    assert_true(o[2].rejected);
    assert_false(o[2].duplicate);
    assert_true(o[3].duplicate);
    assert_true(o[3].rejected);
    assert_string_equal(o[3].reject.code, "no-thanks");
    assert_string_equal(o[3].command_uuid, o[2].command_uuid);
    assert_int_equal(o[3].n_events, 0);
    cw_outcome_batch_free(b);

    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows WHERE k LIKE '%other'", NULL), 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands WHERE client_id = 'c1'", NULL), 2);
    struct cw_processor_stats st;
    cw_engine_stats(h->e, &st);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.events, 2);
    /*
     * Duplicates never reach the handler. (The others may run more than once:
     * the first refusal after a write re-runs the batch with savepoints.)
     */
    assert_int_equal(atomic_load(&resent_calls), 0);
    assert_true(atomic_load(&add_calls) >= 2);
}

static void test_duplicates_after_commit(void **state)
{
    struct harness *h = *state;
    submit(h, "add", U1, "c1", 1, "{\"k\":\"e1\",\"count\":2}");
    submit(h, "add", U1, "c1", 2, "{\"k\":\"r\",\"reject\":true}");
    struct cw_outcome orig[2];
    assert_int_equal(harness_collect(h, orig, 2), 2);
    assert_int_equal(orig[0].n_events, 2);
    assert_true(orig[1].rejected);

    /* Resent, with other data: the original outcome comes back. */
    submit_add(h, U1, "c1", 1, "e1-again");
    submit_add(h, U1, "c1", 2, "r-again");
    struct cw_outcome dup[2];
    assert_int_equal(harness_collect(h, dup, 2), 2);
    assert_true(dup[0].duplicate);
    assert_false(dup[0].rejected);
    assert_string_equal(dup[0].command_uuid, orig[0].command_uuid);
    assert_int_equal(dup[0].n_events, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(pos_of(&dup[0], i), pos_of(&orig[0], i));
        assert_string_equal(dup[0].events[i]->ev.uuid, orig[0].events[i]->ev.uuid);
        /* The resent frame carries the original event. */
        assert_string_equal(dup[0].events[i]->frame, orig[0].events[i]->frame);
    }
    assert_true(dup[1].duplicate);
    assert_true(dup[1].rejected);
    assert_string_equal(dup[1].reject.code, "no-thanks");
    assert_string_equal(dup[1].reject.message, "refused r");
    assert_string_equal(dup[1].command_uuid, orig[1].command_uuid);
    assert_int_equal(dup[1].n_events, 0);
    release_all(orig, 2);
    release_all(dup, 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 2);

    /* The same seq from another client or another user is a new command. */
    submit_add(h, U1, "c2", 1, "other-client");
    submit_add(h, U2, "c1", 1, "other-user");
    struct cw_outcome fresh[2];
    assert_int_equal(harness_collect(h, fresh, 2), 2);
    for (int i = 0; i < 2; i++) {
        assert_false(fresh[i].duplicate);
        assert_false(fresh[i].rejected);
        assert_int_equal(fresh[i].n_events, 1);
        assert_int_equal(pos_of(&fresh[i], 0), 3 + i);
        assert_string_equal(fresh[i].command_uuid, fresh[i].env->cmd.uuid);
    }
    release_all(fresh, 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 4);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands", NULL), 4);
    assert_gap_free(h);
    /* The resent commands never reached the handler. */
    assert_int_equal(atomic_load(&resent_calls), 0);
    assert_true(atomic_load(&add_calls) >= 4);
}

/*
 * A resent command whose handler would now fail (its own write meets the row
 * the original run made) is still just a duplicate: answered from the log,
 * never run again, never retried.
 */
static void test_duplicate_of_writing_handler(void **state)
{
    struct harness *h = *state;
    submit(h, "claim", U1, "c1", 1, "{\"k\":\"mine\"}");
    struct cw_outcome orig;
    assert_int_equal(harness_collect(h, &orig, 1), 1);
    assert_false(orig.rejected);
    assert_int_equal(orig.n_events, 1);
    char orig_uuid[CW_UUID_LEN + 1];
    memcpy(orig_uuid, orig.command_uuid, sizeof(orig_uuid));
    int64_t orig_pos = pos_of(&orig, 0);
    cw_outcome_release(&orig);

    /* After commit... */
    submit(h, "claim", U1, "c1", 1, "{\"k\":\"mine\"}");
    struct cw_outcome dup;
    assert_int_equal(harness_collect(h, &dup, 1), 1);
    assert_true(dup.duplicate);
    assert_false(dup.rejected);
    assert_string_equal(dup.command_uuid, orig_uuid);
    assert_int_equal(dup.n_events, 1);
    assert_int_equal(pos_of(&dup, 0), orig_pos);
    cw_outcome_release(&dup);

    /* ...and within one batch. */
    close_gate(h);
    submit(h, "claim", U1, "c1", 2, "{\"k\":\"second\"}");
    submit(h, "claim", U1, "c1", 2, "{\"k\":\"second\"}");
    open_gate(h);
    struct cw_outcome_batch *b = take_batch(h);
    assert_int_equal(b->n, 2);
    assert_false(b->items[0].duplicate);
    assert_false(b->items[0].rejected);
    assert_true(b->items[1].duplicate);
    assert_false(b->items[1].rejected);
    assert_string_equal(b->items[1].command_uuid, b->items[0].command_uuid);
    assert_int_equal(b->items[1].n_events, 1);
    assert_int_equal(pos_of(&b->items[1], 0), pos_of(&b->items[0], 0));
    cw_outcome_batch_free(b);

    struct cw_processor_stats st;
    cw_engine_stats(h->e, &st);
    assert_int_equal(st.retries, 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_claims", NULL), 2);
    assert_gap_free(h);
}

/* Another connection that holds the write lock on the log until unlock_log. */
struct log_lock {
    sqlite3 *lite;
    PGconn *pg;
};

static void lock_log(struct harness *h, struct log_lock *l)
{
    if (harness_pg()) {
        /* Reads go on; the writer's inserts wait, and time out as CW_ERR_AGAIN. */
        l->pg = PQconnectdb(h->db_path);
        PGresult *r = PQexec(l->pg, "BEGIN; LOCK TABLE events IN EXCLUSIVE MODE");
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        return;
    }
    assert_int_equal(sqlite3_open(h->db_path, &l->lite), SQLITE_OK);
    sqlite3_busy_timeout(l->lite, 5000);
    assert_int_equal(sqlite3_exec(l->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
}

static void unlock_log(struct log_lock *l)
{
    if (l->pg) {
        PGresult *r = PQexec(l->pg, "ROLLBACK");
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(l->pg);
        return;
    }
    assert_int_equal(sqlite3_exec(l->lite, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(l->lite);
}

static void test_transient_error_retried(void **state)
{
    struct harness *h = *state;
    enum { N = 50 };
    struct log_lock lock = {0};
    lock_log(h, &lock);
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "t%d", i);
        submit_add(h, U1, "c1", i, k);
    }
    /*
     * The first attempt fails once the lock wait times out (100 ms, more on
     * a loaded machine): waited for, not assumed done after a fixed time.
     */
    int64_t t0 = cw_mono_us();
    while (cw_engine_condition(h->e) != CW_CONDITION_FAILING && cw_mono_us() - t0 < 10000000)
        usleep(5000);
    /* Nothing can have committed while the lock was held. */
    assert_null(cw_bus_take(cw_engine_bus(h->e), 0));
    /* A locked database is not a full disk: any thread sees which it is. */
    assert_int_equal(cw_engine_condition(h->e), CW_CONDITION_FAILING);
    assert_string_equal(cw_condition_name(cw_engine_condition(h->e)), "failing");
    unlock_log(&lock);

    struct cw_outcome o[N];
    assert_int_equal(harness_collect(h, o, N), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].env->cmd.client_seq, i);
        assert_false(o[i].rejected);
        assert_false(o[i].duplicate);
        assert_int_equal(o[i].n_events, 1);
        assert_int_equal(pos_of(&o[i], 0), i + 1);
    }
    release_all(o, N);
    /* Recovered before the outcomes were published. */
    assert_int_equal(cw_engine_condition(h->e), CW_CONDITION_OK);
    struct cw_processor_stats st;
    cw_engine_stats(h->e, &st);
    assert_true(st.retries >= 1);
    assert_int_equal(st.commands, N);
    /* Each committed exactly once, and the handlers' work survived the retry. */
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), N);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands", NULL), N);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), N);
    assert_gap_free(h);
}

/*
 * The same on PostgreSQL once the statements that send a batch's held rows
 * are prepared: a small batch's rows then go in a pipelined INSERT, whose
 * lock timeout the processor learns of only when it reads the pipeline.
 * The batch must be retried whole, its command neither rejected nor lost.
 */
static void test_transient_error_in_sent_rows(void **state)
{
    struct harness *h = *state;
    submit_add(h, U1, "c1", 0, "w0"); /* prepares the one-row INSERTs */
    struct cw_outcome o;
    assert_int_equal(harness_collect(h, &o, 1), 1);
    release_all(&o, 1);
    struct log_lock lock = {0};
    lock_log(h, &lock);
    submit_add(h, U1, "c1", 1, "w1");
    for (int i = 0; i < 2000 && cw_engine_condition(h->e) != CW_CONDITION_FAILING; i++)
        usleep(5000);
    assert_int_equal(cw_engine_condition(h->e), CW_CONDITION_FAILING);
    assert_null(cw_bus_take(cw_engine_bus(h->e), 0));
    unlock_log(&lock);
    assert_int_equal(harness_collect(h, &o, 1), 1);
    assert_false(o.rejected);
    assert_false(o.duplicate);
    assert_int_equal(o.n_events, 1);
    assert_int_equal(pos_of(&o, 0), 2);
    release_all(&o, 1);
    assert_int_equal(cw_engine_condition(h->e), CW_CONDITION_OK);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands", NULL), 2);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), 2);
    assert_gap_free(h);
}

static void test_restart_continues(void **state)
{
    struct harness *h = *state;
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof(k), "a%d", i);
        submit_add(h, U1, "c1", i, k);
    }
    struct cw_outcome o[10];
    assert_int_equal(harness_collect(h, o, 10), 10);
    char uuid3[CW_UUID_LEN + 1];
    memcpy(uuid3, o[3].command_uuid, sizeof(uuid3));
    release_all(o, 10);

    harness_stop(h);
    struct cw_error err = {0};
    if (harness_start(h, &err))
        fail_msg("restart: %s", err.message);

    for (int i = 10; i < 15; i++) {
        char k[16];
        snprintf(k, sizeof(k), "a%d", i);
        submit_add(h, U1, "c1", i, k);
    }
    submit_add(h, U1, "c1", 3, "a3-again");
    assert_int_equal(harness_collect(h, o, 6), 6);
    for (int i = 0; i < 5; i++) {
        assert_false(o[i].duplicate);
        assert_int_equal(pos_of(&o[i], 0), 11 + i);
    }
    /* The command log survived too. */
    assert_true(o[5].duplicate);
    assert_string_equal(o[5].command_uuid, uuid3);
    assert_int_equal(pos_of(&o[5], 0), 4);
    release_all(o, 6);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), 15);
    assert_gap_free(h);
}

static void test_update_frame(void **state)
{
    struct harness *h = *state;
    submit(h, "add", U1, "tab-1", 42, "{\"k\":\"f1\",\"secret\":\"s3cr3t\"}");
    struct cw_outcome o;
    assert_int_equal(harness_collect(h, &o, 1), 1);
    assert_int_equal(o.n_events, 1);
    struct cw_update *u = o.events[0];
    assert_int_equal(u->frame_len, strlen(u->frame));
    assert_null(strstr(u->frame, "s3cr3t"));
    assert_null(strstr(u->frame, "secret"));

    json_error_t jerr;
    json_t *frame = json_loads(u->frame, 0, &jerr);
    if (!frame)
        fail_msg("frame is not JSON: %s", jerr.text);
    assert_true(json_is_array(frame));
    assert_int_equal(json_array_size(frame), 4);
    assert_string_equal(json_string_value(json_array_get(frame, 0)), "update");
    assert_string_equal(json_string_value(json_array_get(frame, 1)), "tab-1");
    assert_true(json_is_integer(json_array_get(frame, 2)));
    assert_int_equal(json_integer_value(json_array_get(frame, 2)), 42);

    json_t *ev = json_array_get(frame, 3);
    assert_true(json_is_object(ev));
    const char *keys[] = {"position",  "uuid",      "command_uuid", "name",        "data",   "meta",
                          "user_uuid", "client_id", "client_seq",   "recorded_at", "version"};
    assert_int_equal(json_object_size(ev), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!json_object_get(ev, keys[i]))
            fail_msg("EVENT lacks %s: %s", keys[i], u->frame);
    assert_int_equal(json_integer_value(json_object_get(ev, "position")), 1);
    const char *uuid = json_string_value(json_object_get(ev, "uuid"));
    assert_non_null(uuid);
    assert_true(cw_uuid_valid(uuid));
    assert_string_equal(json_string_value(json_object_get(ev, "command_uuid")), o.command_uuid);
    assert_string_equal(json_string_value(json_object_get(ev, "name")), "added");
    json_t *data = json_object_get(ev, "data");
    assert_true(json_is_object(data));
    assert_int_equal(json_object_size(data), 1);
    assert_string_equal(json_string_value(json_object_get(data, "k")), "f1");
    assert_true(json_is_object(json_object_get(ev, "meta")));
    assert_string_equal(json_string_value(json_object_get(ev, "user_uuid")), U1);
    assert_string_equal(json_string_value(json_object_get(ev, "client_id")), "tab-1");
    assert_int_equal(json_integer_value(json_object_get(ev, "client_seq")), 42);
    json_int_t at = json_integer_value(json_object_get(ev, "recorded_at"));
    assert_true(at > cw_now_us() - 600 * 1000000LL && at <= cw_now_us());
    assert_int_equal(json_integer_value(json_object_get(ev, "version")), 1);
    json_decref(frame);

    /* The private field is stored, only never sent. */
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events WHERE data LIKE ?", "%s3cr3t%"), 1);
    cw_outcome_release(&o);

    /* The events query applies the same rule. */
    struct cw_error err = {0};
    struct cw_db *r;
    assert_int_equal(cw_store_reader_open(cw_engine_store(h->e), &r, &err), CW_OK);
    json_t *result = NULL;
    assert_int_equal(cw_query_run(h->d, r, "events", NULL, U1, &result, &err), CW_OK);
    assert_int_equal(json_array_size(result), 1);
    char *text = json_dumps(result, JSON_COMPACT);
    assert_null(strstr(text, "s3cr3t"));
    free(text);
    json_decref(result);
    cw_db_close(r);
}

/*
 * Event rows are inserted many at a time, but domain code that reads the
 * log sees every earlier command of its batch, past a full chunk and
 * short of the next.
 */
static void test_handler_reads_its_batch_in_the_log(void **state)
{
    struct harness *h = *state;
    close_gate(h);
    for (int i = 0; i < 70; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        submit_add(h, U1, "c1", i, k);
    }
    submit(h, "tally", U1, "c1", 70, "{}");
    submit_add(h, U1, "c1", 71, "after");
    open_gate(h);
    struct cw_outcome_batch *b = take_batch(h);
    assert_int_equal(b->n, 72);
    struct cw_outcome *t = &b->items[70];
    assert_int_equal(t->n_events, 1);
    char frame_key[64];
    snprintf(frame_key, sizeof(frame_key), "\"k\":\"tally:70\"");
    if (!strstr(t->events[0]->frame, frame_key))
        fail_msg("the tally saw another count: %s", t->events[0]->frame);
    assert_int_equal(pos_of(t, 0), 71);
    assert_int_equal(pos_of(&b->items[71], 0), 72);
    cw_outcome_batch_free(b);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), 72);
    assert_gap_free(h);
}

/*
 * An event row the log refuses fails when its held rows go in, together
 * with other commands' rows, at a full chunk or at commit: only the
 * command that made it is rejected, the others commit with their events.
 */
static void test_refused_event_row_rejects_its_command_only(void **state)
{
    struct harness *h = *state;
    int n_before[] = {1, 1}, n_after[] = {70, 1}; /* fails at a full chunk, then at commit */
    int64_t seq = 0, events = 0;
    for (int round = 0; round < 2; round++) {
        close_gate(h);
        int total = n_before[round] + 1 + n_after[round];
        for (int i = 0; i < total; i++) {
            char k[32];
            snprintf(k, sizeof(k), "r%d-%d", round, i);
            submit_add(h, U1, "c1", seq++, i == n_before[round] ? "boom" : k);
        }
        open_gate(h);
        struct cw_outcome_batch *b = take_batch(h);
        assert_int_equal(b->n, (size_t)total);
        for (int i = 0; i < total; i++) {
            struct cw_outcome *o = &b->items[i];
            if (i == n_before[round]) {
                assert_true(o->rejected);
                assert_string_equal(o->reject.code, "internal-error");
                assert_int_equal(o->n_events, 0);
                continue;
            }
            if (o->rejected)
                fail_msg("round %d: command %d rejected: %s", round, i, o->reject.message);
            assert_int_equal(pos_of(o, 0), ++events);
        }
        cw_outcome_batch_free(b);
    }
    assert_int_equal(count(h, "SELECT COUNT(*) FROM events", NULL), events);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows", NULL), events);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM ptest_rows WHERE k = 'boom'", NULL), 0);
    assert_int_equal(count(h, "SELECT COUNT(*) FROM commands WHERE outcome = 'rejected'", NULL), 2);
    assert_gap_free(h);
}

/* What an envelope's done hook saw. */
struct done_record {
    atomic_int calls;
    bool with_outcome;
    size_t n_events;
};

static void record_done(const struct cw_outcome *o, void *arg)
{
    struct done_record *r = arg;
    r->with_outcome = o != NULL;
    r->n_events = o ? o->n_events : 0;
    atomic_fetch_add(&r->calls, 1);
}

static struct cw_envelope *hooked(struct harness *h, int64_t seq, struct done_record *r)
{
    const struct cw_command_def *def = cw_domain_command(h->d, "add");
    struct cw_envelope *env =
        cw_envelope_new(def, U1, "hooked", seq, json_pack("{s:s}", "k", "hooked"), NULL, 0);
    env->done = record_done;
    env->done_arg = r;
    return env;
}

/* The done hook runs exactly once: with the outcome before it reaches the bus, or with NULL. */
static void test_done_hook(void **state)
{
    struct harness *h = *state;
    struct done_record committed = {0}, dropped = {0};
    assert_int_equal(cw_engine_submit(h->e, hooked(h, 1, &committed)), CW_OK);
    struct cw_outcome_batch *b = take_batch(h);
    assert_int_equal(atomic_load(&committed.calls), 1);
    assert_true(committed.with_outcome);
    assert_int_equal(committed.n_events, 1);
    cw_outcome_batch_free(b);
    assert_int_equal(atomic_load(&committed.calls), 1); /* not again when the outcome goes */
    cw_envelope_free(hooked(h, 2, &dropped));           /* never queued */
    assert_int_equal(atomic_load(&dropped.calls), 1);
    assert_false(dropped.with_outcome);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    sem_init(&gate_entered, 0, 0);
    sem_init(&gate_release, 0, 0);
    const struct CMUnitTest tests[] = {
        T(test_order_and_positions),
        T(test_group_commit),
        T(test_reject_mid_batch),
        T(test_reject_undoes_handler_writes),
        T(test_constraint_is_internal_error),
        T(test_duplicates_in_one_batch),
        T(test_duplicates_after_commit),
        T(test_duplicate_of_writing_handler),
        T(test_transient_error_retried),
        T(test_transient_error_in_sent_rows),
        T(test_restart_continues),
        T(test_update_frame),
        T(test_handler_reads_its_batch_in_the_log),
        T(test_refused_event_row_rejects_its_command_only),
        T(test_done_hook),
    };
    /* CW_TEST_ONLY=name runs the tests whose names match (cmocka's filter; * allowed). */
    if (getenv("CW_TEST_ONLY"))
        cmocka_set_test_filter(getenv("CW_TEST_ONLY"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sem_destroy(&gate_entered);
    sem_destroy(&gate_release);
    return rc;
}
