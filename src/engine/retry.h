/*
 * retry.h - backoff for transient store errors, and a sleep that a stop
 * interrupts.
 *
 * Delay for attempt k (0-based): 2^k ms plus a uniform 0-1000 ms of jitter,
 * the sum capped at 60 s. The jitter spreads out processors that failed
 * together (a failover) so they do not retry in lock step.
 */
#ifndef CW_RETRY_H
#define CW_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CW_RETRY_CAP_US    60000000LL
#define CW_RETRY_JITTER_US 1000000LL
/*
 * A full disk is retried at least once a second: space comes back when an
 * operator frees it, not after a failover, and waiting a minute after that
 * would hold every pending command for nothing.
 */
#define CW_RETRY_FULL_CAP_US 1000000LL

struct cw_retry {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool cancelled; /* {lock} */
};

void cw_retry_init(struct cw_retry *r);
void cw_retry_release(struct cw_retry *r);
/* The delay before retry number attempt + 1, in microseconds. */
int64_t cw_retry_delay_us(unsigned attempt);
/* Sleeps us microseconds; returns true at once (or when woken) once cancelled. */
bool cw_retry_sleep(struct cw_retry *r, int64_t us);
/* Cancels the current and every later sleep. Any thread. */
void cw_retry_cancel(struct cw_retry *r);

#endif
