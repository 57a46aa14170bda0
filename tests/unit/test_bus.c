/*
 * test_bus.c - the local update bus (src/engine/bus.h).
 *
 * Batches are told apart by a tag kept in committed_at_us. A batch that
 * carries a referenced update shows, through the update's reference count,
 * whether the bus freed it.
 */
#include "calderwood.h"
#include "core/registry.h"
#include "engine/bus.h"
#include "engine/update.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static struct cw_outcome_batch *batch(int64_t tag)
{
    struct cw_outcome_batch *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->committed_at_us = tag;
    return b;
}

/* A batch holding one reference to u (which the caller keeps its own reference to). */
static struct cw_outcome_batch *batch_with(int64_t tag, struct cw_update *u)
{
    struct cw_outcome_batch *b = batch(tag);
    b->items = calloc(1, sizeof(*b->items));
    b->n = 1;
    b->items[0].events = malloc(sizeof(*b->items[0].events));
    b->items[0].events[0] = cw_update_ref(u);
    b->items[0].n_events = 1;
    return b;
}

static struct cw_update *make_update(struct cw_domain *d)
{
    json_t *data = json_object(), *meta = json_object();
    struct cw_event ev = {.position = 1,
                          .uuid = "0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b",
                          .command_uuid = "0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6c",
                          .name = "x",
                          .version = 1,
                          .data = data,
                          .meta = meta,
                          .client_id = "c",
                          .client_seq = 1};
    struct cw_update *u = cw_update_new(d, &ev, NULL, NULL);
    json_decref(data);
    json_decref(meta);
    return u;
}

static int refs(struct cw_update *u)
{
    return atomic_load(&u->refs);
}

static void test_order(void **state)
{
    struct cw_bus *bus = cw_bus_new(4);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++)
            cw_bus_publish(bus, batch(round * 10 + i));
        for (int i = 0; i < 4; i++) {
            struct cw_outcome_batch *b = cw_bus_take(bus, 0);
            assert_non_null(b);
            assert_int_equal(b->committed_at_us, round * 10 + i);
            cw_outcome_batch_free(b);
        }
    }
    cw_bus_free(bus);
}

static void test_take_empty(void **state)
{
    struct cw_bus *bus = cw_bus_new(2);
    assert_null(cw_bus_take(bus, 0));
    assert_null(cw_bus_take(bus, 20000));
    cw_bus_publish(bus, batch(7));
    struct cw_outcome_batch *b = cw_bus_take(bus, 0);
    assert_non_null(b);
    assert_int_equal(b->committed_at_us, 7);
    cw_outcome_batch_free(b);
    assert_null(cw_bus_take(bus, 0));
    cw_bus_free(bus);
}

struct publisher {
    struct cw_bus *bus;
    int64_t tag;
    atomic_int done;
};

static void *publish_one(void *arg)
{
    struct publisher *p = arg;
    cw_bus_publish(p->bus, batch(p->tag));
    atomic_store(&p->done, 1);
    return NULL;
}

static void test_publish_blocks_when_full(void **state)
{
    struct cw_bus *bus = cw_bus_new(1);
    cw_bus_publish(bus, batch(1));
    struct publisher p = {.bus = bus, .tag = 2};
    atomic_init(&p.done, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, publish_one, &p), 0);
    /* Full: the publisher must still be waiting however long we look. */
    usleep(100000);
    assert_int_equal(atomic_load(&p.done), 0);
    struct cw_outcome_batch *b = cw_bus_take(bus, 0);
    assert_non_null(b);
    assert_int_equal(b->committed_at_us, 1);
    cw_outcome_batch_free(b);
    /* The take made room: the publisher finishes. */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&p.done), 1);
    b = cw_bus_take(bus, 5 * 1000000);
    assert_non_null(b);
    assert_int_equal(b->committed_at_us, 2);
    cw_outcome_batch_free(b);
    cw_bus_free(bus);
}

struct taker {
    struct cw_bus *bus;
    struct cw_outcome_batch *got;
};

static void *take_forever(void *arg)
{
    struct taker *t = arg;
    t->got = cw_bus_take(t->bus, -1);
    return NULL;
}

static void test_take_waits_for_publish(void **state)
{
    struct cw_bus *bus = cw_bus_new(2);
    struct taker tk = {.bus = bus};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, take_forever, &tk), 0);
    usleep(20000);
    cw_bus_publish(bus, batch(5));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(tk.got);
    assert_int_equal(tk.got->committed_at_us, 5);
    cw_outcome_batch_free(tk.got);
    cw_bus_free(bus);
}

static atomic_int wakes;
static void *wake_arg_seen;
static void on_wake(void *arg)
{
    atomic_fetch_add(&wakes, 1);
    wake_arg_seen = arg;
}

static void test_wake_hook(void **state)
{
    struct cw_bus *bus = cw_bus_new(8);
    int token;
    atomic_store(&wakes, 0);
    cw_bus_set_wake(bus, on_wake, &token);
    for (int i = 0; i < 5; i++) {
        cw_bus_publish(bus, batch(i));
        assert_int_equal(atomic_load(&wakes), i + 1);
    }
    assert_ptr_equal(wake_arg_seen, &token);
    /* Takes do not wake. */
    for (int i = 0; i < 5; i++)
        cw_outcome_batch_free(cw_bus_take(bus, 0));
    assert_int_equal(atomic_load(&wakes), 5);
    cw_bus_free(bus);
}

static void test_close(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_update *u = make_update(d);
    struct cw_bus *bus = cw_bus_new(1);
    atomic_store(&wakes, 0);
    cw_bus_set_wake(bus, on_wake, NULL);

    /* Closing wakes a taker waiting forever. */
    struct taker tk = {.bus = bus};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, take_forever, &tk), 0);
    usleep(20000);
    cw_bus_close(bus);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_null(tk.got);

    /* After close, publish frees what it is given (and does not wait, though full). */
    cw_bus_publish(bus, batch_with(1, u));
    assert_int_equal(refs(u), 1);
    cw_bus_publish(bus, batch_with(2, u));
    assert_int_equal(refs(u), 1);
    assert_null(cw_bus_take(bus, 0));
    assert_null(cw_bus_take(bus, -1));
    cw_bus_free(bus);
    cw_update_unref(u);
    cw_domain_free(d);
}

static void test_free_releases_pending(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_update *u = make_update(d);
    struct cw_bus *bus = cw_bus_new(4);
    cw_bus_publish(bus, batch_with(1, u));
    cw_bus_publish(bus, batch_with(2, u));
    assert_int_equal(refs(u), 3);
    cw_bus_free(bus);
    assert_int_equal(refs(u), 1);
    cw_update_unref(u);
    cw_bus_free(NULL);
    cw_domain_free(d);
}

/* A batch published before close is still delivered after it. */
static void test_close_keeps_published(void **state)
{
    struct cw_bus *bus = cw_bus_new(2);
    cw_bus_publish(bus, batch(1));
    cw_bus_close(bus);
    struct cw_outcome_batch *b = cw_bus_take(bus, 0);
    assert_non_null(b);
    assert_int_equal(b->committed_at_us, 1);
    cw_outcome_batch_free(b);
    cw_bus_free(bus);
}

static void count_wake(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Every reader reads every batch in order; a batch is freed once the last reader is done. */
static void test_readers_fan_out(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_update *u = make_update(d);
    struct cw_bus *bus = cw_bus_new(4);
    atomic_int wakes_a, wakes_b;
    atomic_init(&wakes_a, 0);
    atomic_init(&wakes_b, 0);
    struct cw_bus_reader *a = cw_bus_subscribe(bus, count_wake, &wakes_a);
    struct cw_bus_reader *b = cw_bus_subscribe(bus, count_wake, &wakes_b);
    assert_non_null(a);
    assert_non_null(b);
    cw_bus_publish(bus, batch_with(1, u));
    cw_bus_publish(bus, batch_with(2, u));
    /* Woken once each: a reader reads on until there is nothing more. */
    assert_int_equal(atomic_load(&wakes_a), 1);
    assert_int_equal(atomic_load(&wakes_b), 1);
    assert_int_equal(refs(u), 3);
    for (int64_t tag = 1; tag <= 2; tag++) {
        const struct cw_outcome_batch *got = cw_bus_read(a);
        assert_non_null(got);
        assert_int_equal(got->committed_at_us, tag);
        cw_bus_done(a);
    }
    assert_null(cw_bus_read(a));
    assert_int_equal(refs(u), 3); /* b has not read them: still held */
    const struct cw_outcome_batch *got = cw_bus_read(b);
    assert_int_equal(got->committed_at_us, 1);
    cw_bus_done(b);
    assert_int_equal(refs(u), 2);
    got = cw_bus_read(b);
    assert_int_equal(got->committed_at_us, 2);
    cw_bus_done(b);
    assert_int_equal(refs(u), 1);
    assert_null(cw_bus_read(b));
    cw_bus_free(bus);
    cw_update_unref(u);
    cw_domain_free(d);
}

/* A reader that leaves releases what it had not finished and is never woken again. */
static void test_leave_releases_and_silences(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_update *u = make_update(d);
    struct cw_bus *bus = cw_bus_new(2);
    atomic_int wakes_a, wakes_b;
    atomic_init(&wakes_a, 0);
    atomic_init(&wakes_b, 0);
    struct cw_bus_reader *a = cw_bus_subscribe(bus, count_wake, &wakes_a);
    struct cw_bus_reader *b = cw_bus_subscribe(bus, count_wake, &wakes_b);
    cw_bus_publish(bus, batch_with(1, u));
    cw_bus_publish(bus, batch_with(2, u));
    assert_non_null(cw_bus_read(b)); /* held, not done, when it leaves */
    cw_bus_leave(b);
    assert_int_equal(refs(u), 3); /* a has read neither */
    for (int i = 0; i < 2; i++) {
        assert_non_null(cw_bus_read(a));
        cw_bus_done(a);
    }
    assert_int_equal(refs(u), 1);
    /* The bus holds 2: two more publishes would block if b still counted. */
    assert_null(cw_bus_read(a)); /* it has read everything: the next batch wakes it */
    cw_bus_publish(bus, batch(3));
    cw_bus_publish(bus, batch(4));
    cw_bus_close(bus);
    assert_int_equal(atomic_load(&wakes_b), 1);
    assert_int_equal(atomic_load(&wakes_a), 3); /* 1 and 2, 3 (not 4), the close */
    cw_bus_free(bus);
    cw_update_unref(u);
    cw_domain_free(d);
}

/* The slowest reader holds the publisher back. */
static void test_slow_reader_blocks_publish(void **state)
{
    struct cw_bus *bus = cw_bus_new(1);
    atomic_int w;
    atomic_init(&w, 0);
    struct cw_bus_reader *fast = cw_bus_subscribe(bus, count_wake, &w);
    struct cw_bus_reader *slow = cw_bus_subscribe(bus, count_wake, &w);
    cw_bus_publish(bus, batch(1));
    assert_non_null(cw_bus_read(fast));
    cw_bus_done(fast);
    struct publisher p = {.bus = bus, .tag = 2};
    atomic_init(&p.done, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, publish_one, &p), 0);
    usleep(100000);
    assert_int_equal(atomic_load(&p.done), 0);
    assert_non_null(cw_bus_read(slow));
    cw_bus_done(slow);
    assert_int_equal(pthread_join(t, NULL), 0);
    const struct cw_outcome_batch *got = cw_bus_read(fast);
    assert_non_null(got);
    assert_int_equal(got->committed_at_us, 2);
    cw_bus_done(fast);
    cw_bus_free(bus); /* frees batch 2, which slow never read */
}

/* The test filter: a batch concerns the readers whose tags are in its committed_at_us. */
static uint64_t by_tag(void *arg, struct cw_outcome_batch *b)
{
    (void)arg;
    return (uint64_t)b->committed_at_us;
}

/* A batch at a position (last_position), for the readers of mask. */
static struct cw_outcome_batch *batch_at(uint64_t mask, int64_t position)
{
    struct cw_outcome_batch *b = batch((int64_t)mask);
    b->last_position = position;
    return b;
}

/* A reader a batch does not concern is not woken, and skips it taking its position. */
static void test_filter_skips(void **state)
{
    struct cw_bus *bus = cw_bus_new(8);
    cw_bus_set_filter(bus, by_tag, NULL);
    atomic_int wakes_a, wakes_b;
    atomic_init(&wakes_a, 0);
    atomic_init(&wakes_b, 0);
    struct cw_bus_reader *a = cw_bus_subscribe(bus, count_wake, &wakes_a);
    struct cw_bus_reader *b = cw_bus_subscribe(bus, count_wake, &wakes_b);
    cw_bus_reader_tag(a, 1);
    cw_bus_reader_tag(b, 2);
    cw_bus_publish(bus, batch_at(1, 10));
    cw_bus_publish(bus, batch_at(2, 11));
    cw_bus_publish(bus, batch_at(1, 12));
    assert_int_equal(cw_bus_position(bus), 12);
    assert_int_equal(atomic_load(&wakes_a), 1);
    assert_int_equal(atomic_load(&wakes_b), 1);
    /* b: only the batch at 11, having skipped the one at 10. */
    const struct cw_outcome_batch *got = cw_bus_read(b);
    assert_non_null(got);
    assert_int_equal(got->last_position, 11);
    uint64_t skipped = 0;
    assert_int_equal(cw_bus_passed(b, &skipped), 10);
    assert_int_equal(skipped, 1);
    cw_bus_done(b);
    assert_null(cw_bus_read(b));
    assert_int_equal(cw_bus_passed(b, &skipped), 12);
    assert_int_equal(skipped, 2);
    /* a: 10 and 12. */
    for (int64_t want = 10; want <= 12; want += 2) {
        got = cw_bus_read(a);
        assert_non_null(got);
        assert_int_equal(got->last_position, want);
        cw_bus_done(a);
    }
    assert_null(cw_bus_read(a));
    assert_int_equal(cw_bus_passed(a, NULL), 12);
    /* Both asleep now: a batch for a wakes a only. */
    cw_bus_publish(bus, batch_at(1, 13));
    assert_int_equal(atomic_load(&wakes_a), 2);
    assert_int_equal(atomic_load(&wakes_b), 1);
    cw_bus_free(bus);
}

/*
 * A batch no reader wants leaves at once; a reader that was not concerned by
 * a whole run of freed batches jumps over them to the position of the last.
 */
static void test_filter_frees_and_jumps(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_update *u = make_update(d);
    struct cw_bus *bus = cw_bus_new(2);
    cw_bus_set_filter(bus, by_tag, NULL);
    atomic_int w;
    atomic_init(&w, 0);
    struct cw_bus_reader *a = cw_bus_subscribe(bus, count_wake, &w);
    struct cw_bus_reader *b = cw_bus_subscribe(bus, count_wake, &w);
    cw_bus_reader_tag(a, 1);
    cw_bus_reader_tag(b, 2);
    struct cw_outcome_batch *nobody = batch_with(4, u);
    nobody->last_position = 5;
    cw_bus_publish(bus, nobody);
    assert_int_equal(refs(u), 1);
    /* More batches than the bus holds, all for a: b never blocks the publisher. */
    for (int64_t p = 6; p < 16; p++) {
        cw_bus_publish(bus, batch_at(1, p));
        assert_non_null(cw_bus_read(a));
        cw_bus_done(a);
    }
    assert_null(cw_bus_read(b));
    uint64_t skipped = 0;
    assert_int_equal(cw_bus_passed(b, &skipped), 15);
    assert_int_equal(skipped, 11);
    cw_bus_free(bus);
    cw_update_unref(u);
    cw_domain_free(d);
}

/* A reader leaving counts out only of the batches that concerned it. */
static void test_filter_leave(void **state)
{
    struct cw_bus *bus = cw_bus_new(4);
    cw_bus_set_filter(bus, by_tag, NULL);
    atomic_int w;
    atomic_init(&w, 0);
    struct cw_bus_reader *a = cw_bus_subscribe(bus, count_wake, &w);
    struct cw_bus_reader *b = cw_bus_subscribe(bus, count_wake, &w);
    cw_bus_reader_tag(a, 1);
    cw_bus_reader_tag(b, 2);
    cw_bus_publish(bus, batch_at(3, 1));
    cw_bus_publish(bus, batch_at(1, 2));
    cw_bus_leave(b);
    for (int i = 0; i < 2; i++) {
        assert_non_null(cw_bus_read(a));
        cw_bus_done(a);
    }
    /* Had b's leaving counted it out of the batch for a alone, this would block or free early. */
    for (int64_t p = 3; p < 7; p++)
        cw_bus_publish(bus, batch_at(1, p));
    assert_int_equal(cw_bus_position(bus), 6);
    cw_bus_free(bus);
}

/*
 * Readers join and leave while another thread publishes: a wake, given
 * outside the bus lock, never reaches a reader after its cw_bus_leave()
 * returned (its thread's loop may be gone by then). Each reader leaves
 * while a wake of it is under way, which its leave must wait out.
 */
#define CHURN_READERS 500
struct churn_reader {
    atomic_int started; /* a wake of it began */
    atomic_int left;    /* its cw_bus_leave() returned */
};
static struct churn_reader churn[CHURN_READERS];
static atomic_int churn_late; /* wakes still running after a leave returned */

/* Dwells a while, as waking a thread's loop takes a while. */
static void churn_wake(void *arg)
{
    struct churn_reader *c = arg;
    atomic_store(&c->started, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 200000);
    if (atomic_load(&c->left))
        atomic_fetch_add(&churn_late, 1);
}

static void noop_wake(void *arg)
{
    (void)arg;
}

struct churn_publisher {
    struct cw_bus *bus;
    atomic_int stop;
};

static void *churn_publish(void *arg)
{
    struct churn_publisher *p = arg;
    for (int64_t i = 1; !atomic_load(&p->stop); i++)
        cw_bus_publish(p->bus, batch(i));
    return NULL;
}

static void drain(struct cw_bus_reader *r)
{
    while (cw_bus_read(r))
        cw_bus_done(r);
}

static void test_leave_while_publishing(void **state)
{
    struct cw_bus *bus = cw_bus_new(4);
    struct cw_bus_reader *keeper = cw_bus_subscribe(bus, noop_wake, NULL);
    struct churn_publisher p = {.bus = bus};
    atomic_init(&p.stop, 0);
    atomic_store(&churn_late, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn_publish, &p), 0);
    for (int i = 0; i < CHURN_READERS; i++) {
        struct churn_reader *c = &churn[i];
        struct cw_bus_reader *r = cw_bus_subscribe(bus, churn_wake, c);
        assert_non_null(r);
        drain(r); /* asleep: the next batch wakes it */
        while (!atomic_load(&c->started))
            drain(keeper); /* so that the publisher is not held by a full ring */
        cw_bus_leave(r);
        atomic_store(&c->left, 1);
    }
    atomic_store(&p.stop, 1);
    drain(keeper);
    cw_bus_close(bus); /* a publisher waiting for room gives up */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&churn_late), 0);
    cw_bus_free(bus);
}

/* The distributed feed's receiving end keeps a frame as it is and reads the event from it. */
static void test_update_from_frame(void **state)
{
    struct cw_domain *d = cw_domain_new();
    struct cw_update *u = make_update(d);
    struct cw_update *v = cw_update_from_frame(d, u->frame, u->frame_len);
    assert_non_null(v);
    assert_string_equal(v->frame, u->frame);
    assert_int_equal(v->frame_len, u->frame_len);
    assert_int_equal(v->ev.position, 1);
    assert_string_equal(v->ev.uuid, u->ev.uuid);
    assert_string_equal(v->ev.command_uuid, u->ev.command_uuid);
    assert_string_equal(v->ev.name, "x");
    assert_string_equal(v->ev.client_id, "c");
    assert_int_equal(v->ev.client_seq, 1);
    assert_string_equal(v->ev.user_uuid, "");
    assert_null(cw_update_from_frame(d, "[\"update\",\"c\",1,{}]", 19));
    assert_null(cw_update_from_frame(d, "not json", 8));
    cw_update_unref(u);
    cw_update_unref(v);
    cw_domain_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_take_empty),
        cmocka_unit_test(test_publish_blocks_when_full),
        cmocka_unit_test(test_take_waits_for_publish),
        cmocka_unit_test(test_wake_hook),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_free_releases_pending),
        cmocka_unit_test(test_close_keeps_published),
        cmocka_unit_test(test_readers_fan_out),
        cmocka_unit_test(test_slow_reader_blocks_publish),
        cmocka_unit_test(test_leave_releases_and_silences),
        cmocka_unit_test(test_update_from_frame),
        cmocka_unit_test(test_filter_skips),
        cmocka_unit_test(test_filter_frees_and_jumps),
        cmocka_unit_test(test_filter_leave),
        cmocka_unit_test(test_leave_while_publishing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
