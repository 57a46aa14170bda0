/*
 * log.c - one structured line per event on stderr (see log.h).
 *
 * The line is formatted into a stack buffer and written with one write(2),
 * so lines from different threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum cw_log_level min_level = CW_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void cw_log_set_level(enum cw_log_level level)
{
    min_level = level;
}

int cw_log_parse_level(const char *name)
{
    for (int i = 0; i <= CW_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void cw_log(enum cw_log_level level, const char *event, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000, level_names[level], event);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line, (size_t)n);
    (void)unused;
}

char *cw_log_safe(char *out, size_t len, const char *in)
{
    size_t i = 0;
    for (; in && in[i] && i + 1 < len; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = c > 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
    }
    if (len)
        out[i] = '\0';
    return out;
}
