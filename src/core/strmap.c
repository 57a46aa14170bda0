/*
 * strmap.c - string-keyed hash map (see strmap.h). FNV-1a hashing; the table
 * doubles when it is half full, so probes stay short. Deletion shifts later
 * entries of the chain back, so there are no tombstones to clean up.
 */
#include "strmap.h"
#include "alloc.h"
#include "hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s, size_t len)
{
    return cw_hash_add(CW_HASH_INIT, s, len);
}

void cw_strmap_init(struct cw_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void cw_strmap_release(struct cw_strmap *m)
{
    free(m->keys);
    free(m->values);
    cw_strmap_init(m);
}

static size_t slot_of(const struct cw_strmap *m, const char *key, size_t len)
{
    size_t i = hash(key, len) & (m->cap - 1);
    while (m->keys[i] && !(strncmp(m->keys[i], key, len) == 0 && m->keys[i][len] == '\0'))
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *cw_strmap_getn(const struct cw_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key, len);
    return m->keys[i] ? m->values[i] : NULL;
}

void *cw_strmap_get(const struct cw_strmap *m, const char *key)
{
    return cw_strmap_getn(m, key, strlen(key));
}

static void grow(struct cw_strmap *m)
{
    struct cw_strmap bigger = {
        .cap = m->cap ? m->cap * 2 : 16,
    };
    bigger.keys = cw_xcalloc(bigger.cap, sizeof(*bigger.keys));
    bigger.values = cw_xcalloc(bigger.cap, sizeof(*bigger.values));
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            cw_strmap_put(&bigger, m->keys[i], m->values[i]);
    cw_strmap_release(m);
    *m = bigger;
}

int cw_strmap_put(struct cw_strmap *m, const char *key, void *value)
{
    if ((m->len + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot_of(m, key, strlen(key));
    if (m->keys[i])
        return -1;
    m->keys[i] = key;
    m->values[i] = value;
    m->len++;
    return 0;
}

void *cw_strmap_del(struct cw_strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key, strlen(key));
    if (!m->keys[i])
        return NULL;
    void *value = m->values[i];
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        size_t home = hash(m->keys[j], strlen(m->keys[j])) & (m->cap - 1);
        /* Move j into the hole when its home is not in (hole, j] (cyclically). */
        if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
            m->keys[hole] = m->keys[j];
            m->values[hole] = m->values[j];
            hole = j;
        }
    }
    m->keys[hole] = NULL;
    m->values[hole] = NULL;
    m->len--;
    return value;
}
