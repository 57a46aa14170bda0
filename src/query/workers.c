/*
 * workers.c - a fixed pool of threads with one job queue in and one
 * completion list out (see workers.h).
 */
#include "workers.h"
#include "core/alloc.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct cw_workers {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct cw_job *todo, **todo_tail;  /* {lock} */
    struct cw_job *done, **done_tail;  /* {lock} */
    size_t waiting, running, capacity; /* {lock} */
    bool stopping;                     /* {lock} */
    cw_workers_wake_cb wake;
    void *wake_arg;
    struct cw_store *store;
    pthread_t *threads;
    struct cw_db **readers; /* one per thread asked for; NULL where none was opened */
    int n, n_asked;         /* threads started, threads asked for */
};

static void push(struct cw_job ***tail, struct cw_job *job)
{
    job->next = NULL;
    **tail = job;
    *tail = &job->next;
}

struct worker_arg {
    struct cw_workers *w;
    int index;
};

static void *run(void *arg)
{
    struct worker_arg *a = arg;
    struct cw_workers *w = a->w;
    struct cw_db *db = w->readers[a->index];
    free(a);
    pthread_setname_np(pthread_self(), "cw-worker");
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->todo && !w->stopping)
            pthread_cond_wait(&w->work, &w->lock);
        if (!w->todo)
            break;
        struct cw_job *job = w->todo;
        w->todo = job->next;
        if (!w->todo)
            w->todo_tail = &w->todo;
        w->waiting--;
        w->running++;
        pthread_mutex_unlock(&w->lock);
        job->run(job, db);
        pthread_mutex_lock(&w->lock);
        w->running--;
        push(&w->done_tail, job);
        pthread_mutex_unlock(&w->lock);
        w->wake(w->wake_arg);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int cw_workers_start(struct cw_store *store, int n, size_t capacity, cw_workers_wake_cb wake,
                     void *wake_arg, struct cw_workers **out, struct cw_error *err)
{
    struct cw_workers *w = cw_xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->work, NULL);
    w->todo_tail = &w->todo;
    w->done_tail = &w->done;
    w->capacity = capacity;
    w->wake = wake;
    w->wake_arg = wake_arg;
    w->store = store;
    w->threads = cw_xcalloc((size_t)n, sizeof(*w->threads));
    w->readers = cw_xcalloc((size_t)n, sizeof(*w->readers));
    w->n_asked = n;
    for (int i = 0; i < n; i++) {
        int rc = cw_store_reader_open(store, &w->readers[i], err);
        if (rc) {
            cw_workers_stop(w);
            return rc;
        }
        struct worker_arg *a = cw_xmalloc(sizeof(*a));
        *a = (struct worker_arg){.w = w, .index = i};
        if (pthread_create(&w->threads[i], NULL, run, a)) {
            free(a);
            cw_workers_stop(w);
            return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot start worker threads");
        }
        w->n = i + 1;
    }
    *out = w;
    return CW_OK;
}

int cw_workers_submit(struct cw_workers *w, struct cw_job *job)
{
    pthread_mutex_lock(&w->lock);
    int rc = CW_OK;
    if (w->stopping)
        rc = CW_ERR_SHUTDOWN;
    else if (w->waiting >= w->capacity)
        rc = CW_ERR_OVERLOADED;
    else {
        push(&w->todo_tail, job);
        w->waiting++;
        pthread_cond_signal(&w->work);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void cw_workers_complete(struct cw_workers *w)
{
    pthread_mutex_lock(&w->lock);
    struct cw_job *list = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    pthread_mutex_unlock(&w->lock);
    while (list) {
        struct cw_job *next = list->next;
        list->done(list, false);
        list = next;
    }
}

size_t cw_workers_pending(struct cw_workers *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->waiting + w->running;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void cw_workers_stop(struct cw_workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    struct cw_job *unrun = w->todo;
    w->todo = NULL;
    w->todo_tail = &w->todo;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    cw_workers_complete(w);
    while (unrun) {
        struct cw_job *next = unrun->next;
        unrun->done(unrun, true);
        unrun = next;
    }
    for (int i = 0; i < w->n_asked; i++)
        cw_db_close(w->readers[i]);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->work);
    free(w->threads);
    free(w->readers);
    free(w);
}
