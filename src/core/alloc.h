/*
 * alloc.h - allocation that never returns NULL.
 *
 * Running out of memory is not an error the server can answer usefully, so
 * every allocation goes through these and aborts with a message on failure.
 * Sizes a client controls are capped before they get here.
 */
#ifndef CW_ALLOC_H
#define CW_ALLOC_H

#include <stddef.h>

void *cw_xmalloc(size_t n);
void *cw_xcalloc(size_t count, size_t size);
void *cw_xrealloc(void *p, size_t n);
char *cw_xstrdup(const char *s);
char *cw_xstrndup(const char *s, size_t n);

#endif
