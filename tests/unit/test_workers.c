/*
 * test_workers.c - the worker pool (src/query/workers.h): run() on worker
 * threads with a usable read connection, done() only inside
 * cw_workers_complete() on the calling thread and in finishing order, the
 * wake hook, the capacity bound, pending counts, and cw_workers_stop
 * completing every job (cancelled for those never run) without leaks.
 *
 * Jobs can be held inside run() behind a gate, so the test decides when
 * each one finishes.
 */
#include "harness.h"
#include "query/workers.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

struct ctx {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int woken;      /* wake hook calls {lock} */
    int started;    /* run() entered {lock} */
    int ran;        /* run() returned {lock} */
    pthread_t loop; /* the test's own thread */
    bool in_complete;
    int done_order[64];
    int n_done;
    int bad_done; /* done() outside complete/stop or on another thread */
};

struct tjob {
    struct cw_job job; /* first: done() casts back */
    struct ctx *c;
    int id;
    bool gated, open; /* {c->lock} */
    /* Written by run() on the worker, read after the pool handed the job back. */
    pthread_t thread;
    int ran;
    int query_rc;
    int64_t value;
    char message[256];
    /* Written by done(). */
    int done_calls;
    bool cancelled;
    bool free_in_done;
};

static void wake(void *arg)
{
    struct ctx *c = arg;
    pthread_mutex_lock(&c->lock);
    c->woken++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void job_run(struct cw_job *job, struct cw_db *db)
{
    struct tjob *t = (struct tjob *)job;
    struct ctx *c = t->c;
    t->thread = pthread_self();
    t->ran++;
    pthread_mutex_lock(&c->lock);
    c->started++;
    pthread_cond_broadcast(&c->cond);
    while (t->gated && !t->open)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);

    /* The connection works: read what the test wrote before starting the pool. */
    struct cw_error err = {0};
    t->query_rc = cw_db_query_int(db, &t->value, &err, "SELECT x + ? FROM t WHERE name = ?", "it",
                                  (int64_t)t->id, "answer");
    snprintf(t->message, sizeof(t->message), "%s", err.message);
    cw_error_release(&err);

    pthread_mutex_lock(&c->lock);
    c->ran++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void job_done(struct cw_job *job, bool cancelled)
{
    struct tjob *t = (struct tjob *)job;
    struct ctx *c = t->c;
    if (!c->in_complete || !pthread_equal(pthread_self(), c->loop))
        c->bad_done++;
    t->done_calls++;
    t->cancelled = cancelled;
    if (c->n_done < 64)
        c->done_order[c->n_done] = t->id;
    c->n_done++;
    if (t->free_in_done)
        free(t);
}

static struct tjob *job_new(struct ctx *c, int id, bool gated)
{
    struct tjob *t = calloc(1, sizeof(*t));
    t->job.run = job_run;
    t->job.done = job_done;
    t->c = c;
    t->id = id;
    t->gated = gated;
    return t;
}

static void job_open(struct tjob *t)
{
    pthread_mutex_lock(&t->c->lock);
    t->open = true;
    pthread_cond_broadcast(&t->c->cond);
    pthread_mutex_unlock(&t->c->lock);
}

/* Waits (at most 10 s) until *field >= n. */
static void wait_for(struct ctx *c, int *field, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (*field < n && rc == 0)
        rc = pthread_cond_timedwait(&c->cond, &c->lock, &until);
    int got = *field;
    pthread_mutex_unlock(&c->lock);
    if (got < n)
        fail_msg("timed out waiting: %d of %d", got, n);
}

static int read_int(struct ctx *c, int *field)
{
    pthread_mutex_lock(&c->lock);
    int v = *field;
    pthread_mutex_unlock(&c->lock);
    return v;
}

static void complete(struct cw_workers *w, struct ctx *c)
{
    c->in_complete = true;
    cw_workers_complete(w);
    c->in_complete = false;
}

static void stop(struct cw_workers *w, struct ctx *c)
{
    c->in_complete = true;
    cw_workers_stop(w);
    c->in_complete = false;
}

/* --------------------------------------------------------------- fixture */

struct fixture {
    struct harness h;
    struct cw_store *s;
    struct ctx c;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    harness_mkdir(&f->h);
    struct cw_error err = {0};
    if (cw_store_open(f->h.db_path, NULL, &f->s, &err) ||
        cw_store_migrate(f->s, NULL, NULL, &err)) {
        fprintf(stderr, "store: %s\n", err.message);
        return -1;
    }
    struct cw_db *wr = cw_store_writer(f->s);
    if (cw_db_exec(wr, &err, "CREATE TABLE t (name TEXT, x INTEGER)", "") ||
        cw_db_exec(wr, &err, "INSERT INTO t VALUES (?, ?)", "ti", "answer", (int64_t)1000)) {
        fprintf(stderr, "store: %s\n", err.message);
        return -1;
    }
    pthread_mutex_init(&f->c.lock, NULL);
    pthread_cond_init(&f->c.cond, NULL);
    f->c.loop = pthread_self();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cw_store_close(f->s);
    pthread_mutex_destroy(&f->c.lock);
    pthread_cond_destroy(&f->c.cond);
    if (!getenv("CW_TEST_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->h.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->h.dir);
    }
    free(f);
    return 0;
}

static struct cw_workers *start(struct fixture *f, int n, size_t capacity)
{
    struct cw_workers *w = NULL;
    struct cw_error err = {0};
    int rc = cw_workers_start(f->s, n, capacity, wake, &f->c, &w, &err);
    if (rc)
        fail_msg("cw_workers_start: %s", err.message);
    assert_non_null(w);
    return w;
}

/* ----------------------------------------------------------------- tests */

static void test_run_on_workers_done_on_loop(void **state)
{
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 3, 100);
    assert_int_equal(cw_workers_pending(w), 0);
    enum { N = 20 };
    struct tjob *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = job_new(c, i, false);
        assert_int_equal(cw_workers_submit(w, &jobs[i]->job), CW_OK);
    }
    wait_for(c, &c->woken, N);
    /* Every job has run, but none is done until the loop asks. */
    assert_int_equal(read_int(c, &c->ran), N);
    assert_int_equal(c->n_done, 0);
    assert_int_equal(cw_workers_pending(w), 0);
    complete(w, c);
    assert_int_equal(c->n_done, N);
    assert_int_equal(c->bad_done, 0);
    for (int i = 0; i < N; i++) {
        struct tjob *t = jobs[i];
        assert_int_equal(t->ran, 1);
        assert_int_equal(t->done_calls, 1);
        assert_false(t->cancelled);
        assert_false(pthread_equal(t->thread, c->loop));
        if (t->query_rc != CW_OK)
            fail_msg("job %d: SELECT failed: %s", i, t->message);
        assert_int_equal(t->value, 1000 + i);
    }
    /* Nothing more to complete: done() is not called again. */
    complete(w, c);
    assert_int_equal(c->n_done, N);
    /* The wake hook ran once per finished job. */
    assert_int_equal(read_int(c, &c->woken), N);
    stop(w, c);
    assert_int_equal(c->n_done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i]->done_calls, 1);
        free(jobs[i]);
    }
}

static void test_parallel(void **state)
{
    /* n workers run n jobs at once, each on its own thread. */
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 3, 10);
    struct tjob *jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = job_new(c, i, true);
        jobs[i]->free_in_done = true;
        assert_int_equal(cw_workers_submit(w, &jobs[i]->job), CW_OK);
    }
    wait_for(c, &c->started, 3); /* all three inside run() together */
    assert_int_equal(cw_workers_pending(w), 3);
    assert_false(pthread_equal(jobs[0]->thread, jobs[1]->thread));
    assert_false(pthread_equal(jobs[0]->thread, jobs[2]->thread));
    assert_false(pthread_equal(jobs[1]->thread, jobs[2]->thread));
    for (int i = 0; i < 3; i++)
        job_open(jobs[i]);
    wait_for(c, &c->woken, 3);
    complete(w, c);
    assert_int_equal(c->n_done, 3);
    stop(w, c);
}

static void test_finishing_order(void **state)
{
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    enum { N = 4 };
    struct cw_workers *w = start(f, N, 10);
    struct tjob *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = job_new(c, i, true);
        jobs[i]->free_in_done = true;
        assert_int_equal(cw_workers_submit(w, &jobs[i]->job), CW_OK);
    }
    wait_for(c, &c->started, N);
    assert_int_equal(cw_workers_pending(w), N);
    /* Finish them in an order unlike the submission order. */
    const int order[N] = {2, 0, 3, 1};
    for (int k = 0; k < N; k++) {
        job_open(jobs[order[k]]);
        wait_for(c, &c->woken, k + 1);
        assert_int_equal(cw_workers_pending(w), (size_t)(N - k - 1));
    }
    assert_int_equal(c->n_done, 0);
    complete(w, c);
    assert_int_equal(c->n_done, N);
    for (int k = 0; k < N; k++)
        assert_int_equal(c->done_order[k], order[k]);
    assert_int_equal(c->bad_done, 0);
    stop(w, c);
}

static void test_complete_in_batches(void **state)
{
    /* complete() hands back what has finished so far, and later the rest. */
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 2, 10);
    struct tjob *a = job_new(c, 1, false), *b = job_new(c, 2, true);
    a->free_in_done = b->free_in_done = true;
    assert_int_equal(cw_workers_submit(w, &a->job), CW_OK);
    assert_int_equal(cw_workers_submit(w, &b->job), CW_OK);
    wait_for(c, &c->woken, 1);
    wait_for(c, &c->started, 2);
    complete(w, c);
    assert_int_equal(c->n_done, 1);
    assert_int_equal(c->done_order[0], 1);
    assert_int_equal(cw_workers_pending(w), 1);
    job_open(b);
    wait_for(c, &c->woken, 2);
    complete(w, c);
    assert_int_equal(c->n_done, 2);
    assert_int_equal(c->done_order[1], 2);
    assert_int_equal(cw_workers_pending(w), 0);
    stop(w, c);
}

static void test_capacity(void **state)
{
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 1, 2);
    struct tjob *busy = job_new(c, 0, true);
    assert_int_equal(cw_workers_submit(w, &busy->job), CW_OK);
    wait_for(c, &c->started, 1); /* running: no longer waiting */
    struct tjob *q1 = job_new(c, 1, false), *q2 = job_new(c, 2, false);
    assert_int_equal(cw_workers_submit(w, &q1->job), CW_OK);
    assert_int_equal(cw_workers_submit(w, &q2->job), CW_OK);
    assert_int_equal(cw_workers_pending(w), 3);

    struct tjob *extra = job_new(c, 3, false);
    assert_int_equal(cw_workers_submit(w, &extra->job), CW_ERR_OVERLOADED);
    assert_int_equal(cw_workers_pending(w), 3);

    job_open(busy);
    wait_for(c, &c->woken, 3);
    complete(w, c);
    assert_int_equal(c->n_done, 3);
    /* The refused job stayed ours: never run, never done. */
    assert_int_equal(extra->ran, 0);
    assert_int_equal(extra->done_calls, 0);
    /* There is room again: the same job can be submitted. */
    assert_int_equal(cw_workers_submit(w, &extra->job), CW_OK);
    wait_for(c, &c->woken, 4);
    complete(w, c);
    assert_int_equal(extra->ran, 1);
    assert_int_equal(extra->done_calls, 1);
    assert_int_equal(extra->value, 1003);
    assert_int_equal(c->done_order[3], 3);
    stop(w, c);
    free(busy);
    free(q1);
    free(q2);
    free(extra);
}

struct opener {
    struct tjob *t;
    struct ctx *c;
};

/* Opens the gate once the main thread is inside cw_workers_stop. */
static void *open_later(void *arg)
{
    struct opener *o = arg;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    job_open(o->t);
    return NULL;
}

static void test_stop_cancels_queued(void **state)
{
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 1, 100);
    enum { N = 6 };
    struct tjob *jobs[N];
    jobs[0] = job_new(c, 0, true);
    assert_int_equal(cw_workers_submit(w, &jobs[0]->job), CW_OK);
    wait_for(c, &c->started, 1);
    for (int i = 1; i < N; i++) {
        jobs[i] = job_new(c, i, false);
        assert_int_equal(cw_workers_submit(w, &jobs[i]->job), CW_OK);
    }
    assert_int_equal(cw_workers_pending(w), N);

    /* The running job finishes during stop; the queued ones never run. */
    pthread_t th;
    struct opener o = {jobs[0], c};
    assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
    stop(w, c);
    pthread_join(th, NULL);

    assert_int_equal(c->bad_done, 0);
    assert_int_equal(c->n_done, N);
    assert_int_equal(jobs[0]->ran, 1);
    assert_int_equal(jobs[0]->done_calls, 1);
    assert_false(jobs[0]->cancelled);
    for (int i = 1; i < N; i++) {
        assert_int_equal(jobs[i]->ran, 0);
        assert_int_equal(jobs[i]->done_calls, 1);
        assert_true(jobs[i]->cancelled);
    }
    for (int i = 0; i < N; i++)
        free(jobs[i]);
}

static void test_stop_completes_finished(void **state)
{
    /* Jobs that finished but were never completed get done(false) at stop; done frees them. */
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 2, 100);
    for (int i = 0; i < 10; i++) {
        struct tjob *t = job_new(c, i, false);
        t->free_in_done = true;
        assert_int_equal(cw_workers_submit(w, &t->job), CW_OK);
    }
    wait_for(c, &c->woken, 10);
    assert_int_equal(c->n_done, 0);
    stop(w, c);
    assert_int_equal(c->n_done, 10);
    assert_int_equal(c->bad_done, 0);
}

static void test_stop_many_queued(void **state)
{
    /* A pile of jobs, stop at once: each is done exactly once, all freed (ASan). */
    struct fixture *f = *state;
    struct ctx *c = &f->c;
    struct cw_workers *w = start(f, 2, 1000);
    for (int i = 0; i < 500; i++) {
        struct tjob *t = job_new(c, i, false);
        t->free_in_done = true;
        assert_int_equal(cw_workers_submit(w, &t->job), CW_OK);
    }
    stop(w, c);
    assert_int_equal(c->n_done, 500);
    assert_int_equal(c->bad_done, 0);
    assert_int_equal(read_int(c, &c->ran), read_int(c, &c->woken));
}

static void test_stop_idle(void **state)
{
    struct fixture *f = *state;
    struct cw_workers *w = start(f, 4, 10);
    assert_int_equal(cw_workers_pending(w), 0);
    stop(w, &f->c);
    assert_int_equal(f->c.n_done, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_run_on_workers_done_on_loop), T(test_parallel),         T(test_finishing_order),
        T(test_complete_in_batches),         T(test_capacity),         T(test_stop_cancels_queued),
        T(test_stop_completes_finished),     T(test_stop_many_queued), T(test_stop_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
