/*
 * clock.h - time. cw_now_us() (wall clock) is public in calderwood.h;
 * durations are measured on the monotonic clock.
 */
#ifndef CW_CLOCK_H
#define CW_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Microseconds on CLOCK_MONOTONIC: for durations and deadlines only. */
int64_t cw_mono_us(void);
/*
 * CPU time thread has used, in microseconds; -1 if it cannot be read. Any
 * thread may ask (a thread reading its own clock pays a system call: no vDSO).
 */
int64_t cw_thread_cpu_us(pthread_t thread);
/* Sets *ts to us microseconds from now on CLOCK_MONOTONIC (for timed waits). */
void cw_deadline_after(struct timespec *ts, int64_t us);

#endif
