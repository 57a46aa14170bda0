/*
 * utf8.h - strict UTF-8 validation (RFC 3629): no overlong forms, no
 * surrogates, nothing past U+10FFFF. WebSocket text (RFC 6455 8.1) must pass.
 */
#ifndef CW_UTF8_H
#define CW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool cw_utf8_valid(const void *s, size_t n);

#endif
