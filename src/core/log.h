/*
 * log.h - structured log lines on stderr.
 *
 * One line per event: `2026-11-29T15:18:29.123456Z info event key=value ...`.
 * Callers pass key=value pairs in the format; values that a client controls
 * go through cw_log_quote-safe %s only after they were validated. Nothing
 * secret (passwords, hashes, cookies, keys) is ever logged.
 */
#ifndef CW_LOG_H
#define CW_LOG_H

#include <stddef.h>

enum cw_log_level { CW_LOG_DEBUG, CW_LOG_INFO, CW_LOG_WARN, CW_LOG_ERROR, CW_LOG_OFF };

/* Sets the lowest level written (default info). Not thread-safe: call at start-up. */
void cw_log_set_level(enum cw_log_level level);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int cw_log_parse_level(const char *name);
/* Writes one line: level, event name, then the formatted key=value text. Thread-safe. */
void cw_log(enum cw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copies text a client controls into out for a log line: printable ASCII
 * only (others become '?'), no spaces or quotes, cut to fit. Returns out.
 */
char *cw_log_safe(char *out, size_t len, const char *in);

#define cw_debug(ev, ...) cw_log(CW_LOG_DEBUG, ev, __VA_ARGS__)
#define cw_info(ev, ...)  cw_log(CW_LOG_INFO, ev, __VA_ARGS__)
#define cw_warn(ev, ...)  cw_log(CW_LOG_WARN, ev, __VA_ARGS__)
#define cw_error(ev, ...) cw_log(CW_LOG_ERROR, ev, __VA_ARGS__)

#endif
