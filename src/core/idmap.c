/*
 * idmap.c - 64-bit id -> pointer map (see idmap.h): linear probing, growth
 * at half full, backward-shift deletion.
 */
#include "idmap.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static size_t home_of(const struct cw_idmap *m, uint64_t id)
{
    /* Ids are sequential: a multiplicative hash spreads them over the table. */
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
}

void cw_idmap_init(struct cw_idmap *m)
{
    memset(m, 0, sizeof(*m));
}

void cw_idmap_release(struct cw_idmap *m)
{
    free(m->keys);
    free(m->values);
    cw_idmap_init(m);
}

static size_t slot_of(const struct cw_idmap *m, uint64_t id)
{
    size_t i = home_of(m, id);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *cw_idmap_get(const struct cw_idmap *m, uint64_t id)
{
    if (!m->cap || !id)
        return NULL;
    size_t i = slot_of(m, id);
    return m->keys[i] ? m->values[i] : NULL;
}

static void grow(struct cw_idmap *m)
{
    struct cw_idmap bigger = {.cap = m->cap ? m->cap * 2 : 64};
    bigger.keys = cw_xcalloc(bigger.cap, sizeof(*bigger.keys));
    bigger.values = cw_xcalloc(bigger.cap, sizeof(*bigger.values));
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            cw_idmap_put(&bigger, m->keys[i], m->values[i]);
    cw_idmap_release(m);
    *m = bigger;
}

void cw_idmap_put(struct cw_idmap *m, uint64_t id, void *value)
{
    if (!id)
        return; /* 0 is reserved: never a key */
    if ((m->len + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot_of(m, id);
    if (!m->keys[i]) {
        m->keys[i] = id;
        m->len++;
    }
    m->values[i] = value;
}

void *cw_idmap_del(struct cw_idmap *m, uint64_t id)
{
    if (!m->cap || !id)
        return NULL;
    size_t i = slot_of(m, id);
    if (!m->keys[i])
        return NULL;
    void *value = m->values[i];
    size_t hole = i;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        size_t home = home_of(m, m->keys[j]);
        if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
            m->keys[hole] = m->keys[j];
            m->values[hole] = m->values[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->values[hole] = NULL;
    m->len--;
    return value;
}
