/*
 * hash.h - FNV-1a, the one string hash of the server's in-memory tables
 * (strmap, the gateway's user presence slots, the store's batch keys).
 * Not for anything an attacker picks to collide on at scale: those tables
 * are bounded or probe-limited.
 */
#ifndef CW_HASH_H
#define CW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CW_HASH_INIT 14695981039346656037ull

/* h with the len bytes at s added. */
static inline uint64_t cw_hash_add(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* h with the NUL-terminated s added, its NUL too (so "ab"+"c" and "a"+"bc" differ). */
static inline uint64_t cw_hash_adds(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h * 1099511628211ull;
}

#endif
