/*
 * retry.c - exponential backoff with jitter (see retry.h).
 */
#include "retry.h"
#include "core/clock.h"

#include <sodium.h>
#include <time.h>

void cw_retry_init(struct cw_retry *r)
{
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &attr);
    pthread_condattr_destroy(&attr);
    r->cancelled = false;
}

void cw_retry_release(struct cw_retry *r)
{
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

int64_t cw_retry_delay_us(unsigned attempt)
{
    int64_t base = attempt >= 26 ? CW_RETRY_CAP_US : (int64_t)1000 << attempt;
    int64_t delay = base + (int64_t)randombytes_uniform((uint32_t)CW_RETRY_JITTER_US + 1);
    return delay < CW_RETRY_CAP_US ? delay : CW_RETRY_CAP_US;
}

bool cw_retry_sleep(struct cw_retry *r, int64_t us)
{
    struct timespec deadline;
    cw_deadline_after(&deadline, us);
    pthread_mutex_lock(&r->lock);
    while (!r->cancelled && pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == 0)
        ;
    bool cancelled = r->cancelled;
    pthread_mutex_unlock(&r->lock);
    return cancelled;
}

void cw_retry_cancel(struct cw_retry *r)
{
    pthread_mutex_lock(&r->lock);
    r->cancelled = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}
