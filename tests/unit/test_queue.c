/*
 * test_queue.c - the bounded MPSC command queue (src/engine/queue.h).
 */
#include "calderwood.h"
#include "engine/envelope.h"
#include "engine/queue.h"

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int noop_handle(struct cw_db *db, const struct cw_command *cmd, struct cw_emit *out,
                       struct cw_error *err)
{
    return CW_OK;
}

static const struct cw_command_def def = {.name = "noop", .handle = noop_handle};

static struct cw_envelope *env(const char *client_id, int64_t seq)
{
    return cw_envelope_new(&def, "", client_id, seq, NULL, NULL, (uint64_t)seq);
}

static void test_fifo(void **state)
{
    struct cw_queue *q = cw_queue_new(8);
    assert_int_equal(cw_queue_capacity(q), 8);
    assert_int_equal(cw_queue_depth(q), 0);
    /* Wrap the ring several times. */
    int64_t next_put = 0, next_take = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 6; i++)
            assert_int_equal(cw_queue_put(q, env("c", next_put++)), CW_OK);
        assert_int_equal(cw_queue_depth(q), 6);
        struct cw_envelope *out[8];
        size_t n = cw_queue_take(q, out, 8, 0);
        assert_int_equal(n, 6);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(out[i]->cmd.client_seq, next_take++);
            cw_envelope_free(out[i]);
        }
        assert_int_equal(cw_queue_depth(q), 0);
    }
    cw_queue_free(q);
}

static void test_full(void **state)
{
    struct cw_queue *q = cw_queue_new(3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cw_queue_put(q, env("c", i)), CW_OK);
    struct cw_envelope *extra = env("c", 99);
    assert_int_equal(cw_queue_put(q, extra), CW_ERR_OVERLOADED);
    assert_int_equal(cw_queue_depth(q), 3);
    /* Ownership stayed with us: the queue holds only the first three. */
    assert_int_equal(extra->cmd.client_seq, 99);
    struct cw_envelope *out[4];
    size_t n = cw_queue_take(q, out, 4, 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_not_equal(out[i], extra);
        assert_int_equal(out[i]->cmd.client_seq, (int64_t)i);
        cw_envelope_free(out[i]);
    }
    /* Room again: the same envelope can now be queued. */
    assert_int_equal(cw_queue_put(q, extra), CW_OK);
    n = cw_queue_take(q, out, 4, 0);
    assert_int_equal(n, 1);
    assert_ptr_equal(out[0], extra);
    cw_envelope_free(extra);
    cw_queue_free(q);
}

static void test_take_max_and_timeout(void **state)
{
    struct cw_queue *q = cw_queue_new(16);
    struct cw_envelope *out[16];
    /* Empty: a timed take returns 0 after waiting. */
    assert_int_equal(cw_queue_take(q, out, 16, 0), 0);
    assert_int_equal(cw_queue_take(q, out, 16, 20000), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cw_queue_put(q, env("c", i)), CW_OK);
    assert_int_equal(cw_queue_take(q, out, 4, 0), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(out[i]->cmd.client_seq, i);
        cw_envelope_free(out[i]);
    }
    assert_int_equal(cw_queue_depth(q), 6);
    assert_int_equal(cw_queue_take(q, out, 1, -1), 1);
    assert_int_equal(out[0]->cmd.client_seq, 4);
    cw_envelope_free(out[0]);
    /* free releases what is still queued (ASan checks the leak). */
    cw_queue_free(q);
    cw_queue_free(NULL);
}

static void test_close(void **state)
{
    struct cw_queue *q = cw_queue_new(8);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cw_queue_put(q, env("c", i)), CW_OK);
    assert_false(cw_queue_closed(q));
    cw_queue_close(q);
    assert_true(cw_queue_closed(q));
    struct cw_envelope *late = env("c", 3);
    assert_int_equal(cw_queue_put(q, late), CW_ERR_SHUTDOWN);
    cw_envelope_free(late); /* still ours */
    struct cw_envelope *out[8];
    /* What was queued before close is still taken, in order. */
    assert_int_equal(cw_queue_take(q, out, 2, -1), 2);
    assert_int_equal(out[0]->cmd.client_seq, 0);
    assert_int_equal(out[1]->cmd.client_seq, 1);
    cw_envelope_free(out[0]);
    cw_envelope_free(out[1]);
    assert_int_equal(cw_queue_take(q, out, 8, -1), 1);
    assert_int_equal(out[0]->cmd.client_seq, 2);
    cw_envelope_free(out[0]);
    /* Closed and drained: returns 0 at once, even with an infinite timeout. */
    assert_int_equal(cw_queue_take(q, out, 8, -1), 0);
    cw_queue_free(q);
}

struct waiter {
    struct cw_queue *q;
    size_t got;
};

static void *wait_forever(void *arg)
{
    struct waiter *w = arg;
    struct cw_envelope *out[4];
    w->got = cw_queue_take(w->q, out, 4, -1);
    for (size_t i = 0; i < w->got; i++)
        cw_envelope_free(out[i]);
    return NULL;
}

static void test_close_wakes_consumer(void **state)
{
    struct cw_queue *q = cw_queue_new(4);
    struct waiter w = {.q = q, .got = 99};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_forever, &w), 0);
    cw_queue_close(q);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.got, 0);
    cw_queue_free(q);
}

enum { PRODUCERS = 4, PER_PRODUCER = 50000 };

struct producer {
    struct cw_queue *q;
    int id;
    char client_id[16];
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int64_t i = 0; i < PER_PRODUCER; i++) {
        struct cw_envelope *e = env(p->client_id, (int64_t)p->id * PER_PRODUCER + i);
        int rc;
        while ((rc = cw_queue_put(p->q, e)) == CW_ERR_OVERLOADED)
            sched_yield();
        if (rc != CW_OK) {
            cw_envelope_free(e);
            return (void *)1;
        }
    }
    return NULL;
}

static void test_many_producers(void **state)
{
    struct cw_queue *q = cw_queue_new(1024);
    struct producer ps[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (struct producer){.q = q, .id = i};
        snprintf(ps[i].client_id, sizeof(ps[i].client_id), "p%d", i);
        assert_int_equal(pthread_create(&threads[i], NULL, produce, &ps[i]), 0);
    }
    unsigned char *seen = calloc((size_t)PRODUCERS * PER_PRODUCER, 1);
    int64_t last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    size_t total = 0, timeouts = 0;
    struct cw_envelope *out[256];
    while (total < (size_t)PRODUCERS * PER_PRODUCER) {
        size_t n = cw_queue_take(q, out, 256, 5 * 1000000);
        if (n == 0) {
            if (++timeouts > 2)
                fail_msg("queue starved after %zu items", total);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            int64_t seq = out[i]->cmd.client_seq;
            assert_true(seq >= 0 && seq < (int64_t)PRODUCERS * PER_PRODUCER);
            int pid = (int)(seq / PER_PRODUCER);
            /* The item belongs to the producer its client id names. */
            assert_string_equal(out[i]->cmd.client_id, ps[pid].client_id);
            if (seen[seq])
                fail_msg("item %lld arrived twice", (long long)seq);
            seen[seq] = 1;
            if (seq <= last[pid])
                fail_msg("producer %d: %lld after %lld", pid, (long long)seq, (long long)last[pid]);
            last[pid] = seq;
            cw_envelope_free(out[i]);
        }
        total += n;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        void *res;
        assert_int_equal(pthread_join(threads[i], &res), 0);
        assert_null(res);
        assert_int_equal(last[i], (int64_t)(i + 1) * PER_PRODUCER - 1);
    }
    for (size_t i = 0; i < (size_t)PRODUCERS * PER_PRODUCER; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(cw_queue_depth(q), 0);
    assert_int_equal(cw_queue_take(q, out, 256, 0), 0);
    free(seen);
    cw_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_take_max_and_timeout),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_close_wakes_consumer),
        cmocka_unit_test(test_many_producers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
