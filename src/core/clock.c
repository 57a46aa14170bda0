/*
 * clock.c - microsecond clocks.
 */
#include "clock.h"
#include "calderwood.h"

#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cw_now_us(void)
{
    return read_clock(CLOCK_REALTIME);
}

int64_t cw_thread_cpu_us(pthread_t thread)
{
    clockid_t id;
    return pthread_getcpuclockid(thread, &id) ? -1 : read_clock(id);
}

int64_t cw_mono_us(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

void cw_deadline_after(struct timespec *ts, int64_t us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += us / 1000000;
    ts->tv_nsec += (us % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}
