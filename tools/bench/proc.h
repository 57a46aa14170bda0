/*
 * proc.h - what calderwood-bench reads about processes: CPU time of the
 * server (all its threads, /proc/PID/stat utime + stime, clock-tick
 * resolution) and of the bench itself (getrusage, microseconds), and the
 * server's resident set (/proc/PID/status VmRSS).
 */
#ifndef CW_BENCH_PROC_H
#define CW_BENCH_PROC_H

#include <stdint.h>

/* CPU time of every thread of pid, in ns; -1 when it cannot be read. */
int64_t proc_cpu_ns(int pid);

/* VmRSS of pid in KiB; -1 when it cannot be read. */
long proc_rss_kib(int pid);

/* CPU time of this process (user + system), in ns. */
int64_t self_cpu_ns(void);

/* CPU time of the calling thread, in ns. */
int64_t thread_cpu_ns(void);

/* CPU time all processes of the machine spent busy (/proc/stat: user, nice,
 * system, irq, softirq, steal), in ns; -1 when it cannot be read. What is
 * left after the server and the bench is other load, which the summaries
 * show so that a noisy run can be told from a slow server. */
int64_t machine_busy_ns(void);

/* Waits until the CPU used by processes other than this one and server_pid
 * (0: none) stays under max_pct % of one core for one 500 ms window, or
 * timeout_s pass. Returns the last window's figure (-1 if unreadable). */
double wait_quiet(int server_pid, double max_pct, double timeout_s, double *waited_s);

#endif
