/*
 * alloc.c - aborting allocators (see alloc.h).
 */
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "calderwood: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cw_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *cw_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *cw_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *cw_xstrdup(const char *s)
{
    return cw_xstrndup(s, strlen(s));
}

char *cw_xstrndup(const char *s, size_t n)
{
    char *p = cw_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
