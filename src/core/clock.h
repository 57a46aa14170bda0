/*
 * clock.h - time. cw_now_us() (wall clock) is public in calderwood.h;
 * durations are measured on the monotonic clock.
 */
#ifndef CW_CLOCK_H
#define CW_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds on CLOCK_MONOTONIC: for durations and deadlines only. */
int64_t cw_mono_us(void);
/* CPU time the calling thread has used, in microseconds. */
int64_t cw_thread_cpu_us(void);
/* Sets *ts to us microseconds from now on CLOCK_MONOTONIC (for timed waits). */
void cw_deadline_after(struct timespec *ts, int64_t us);

#endif
