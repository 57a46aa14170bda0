/*
 * idmap.h - a map from 64-bit ids to pointers (open addressing).
 *
 * The gateway names every connection and pending HTTP request by an id
 * that other threads may hold on to; when a result comes back, the id is
 * looked up here, and a connection that has gone away is simply not found.
 * Id 0 is reserved (never a key).
 */
#ifndef CW_IDMAP_H
#define CW_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct cw_idmap {
    uint64_t *keys;
    void **values;
    size_t cap, len;
};

void cw_idmap_init(struct cw_idmap *m);
void cw_idmap_release(struct cw_idmap *m);
void *cw_idmap_get(const struct cw_idmap *m, uint64_t id);
/* Inserts or replaces. */
void cw_idmap_put(struct cw_idmap *m, uint64_t id, void *value);
/* Removes id; returns its value or NULL. */
void *cw_idmap_del(struct cw_idmap *m, uint64_t id);

/* Visits every entry; fn must not change the map. */
#define cw_idmap_foreach(m, idx, val)                                                              \
    for (size_t idx = 0; idx < (m)->cap; idx++)                                                    \
        if ((m)->keys[idx] && ((val) = (m)->values[idx], 1))

#endif
