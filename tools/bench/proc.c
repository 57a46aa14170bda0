/*
 * proc.c - /proc and getrusage readings (see proc.h).
 */
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t proc_cpu_ns(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2; /* field 3, state */
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field < 14 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu %llu", &utime, &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)((utime + stime) * (1000000000ULL / (unsigned long long)hz));
}

long proc_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

int64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t machine_busy_ns(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system [idle] [iowait] irq softirq steal */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)(busy * (1000000000ULL / (unsigned long long)hz));
}

double wait_quiet(int server_pid, double max_pct, double timeout_s, double *waited_s)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double other = -1, waited = 0;
    for (;;) {
        int64_t b0 = machine_busy_ns(), s0 = self_cpu_ns();
        int64_t v0 = server_pid ? proc_cpu_ns(server_pid) : 0;
        struct timespec half = {.tv_sec = 0, .tv_nsec = 500000000};
        nanosleep(&half, NULL);
        int64_t b1 = machine_busy_ns(), s1 = self_cpu_ns();
        int64_t v1 = server_pid ? proc_cpu_ns(server_pid) : 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
        waited = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (b0 < 0 || b1 < 0 || v0 < 0 || v1 < 0)
            break;
        int64_t o = (b1 - b0) - (s1 - s0) - (v1 - v0);
        other = 100.0 * (double)(o > 0 ? o : 0) / 0.5e9;
        if (other < max_pct || waited >= timeout_s)
            break;
    }
    if (waited_s)
        *waited_s = waited;
    return other;
}
