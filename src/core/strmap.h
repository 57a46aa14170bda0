/*
 * strmap.h - a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are borrowed: they must outlive the map (definition names in static
 * storage, or strings the caller keeps, such as a field of the value
 * itself). Values are opaque pointers.
 */
#ifndef CW_STRMAP_H
#define CW_STRMAP_H

#include <stddef.h>

struct cw_strmap {
    const char **keys;
    void **values;
    size_t cap; /* a power of two */
    size_t len;
};

void cw_strmap_init(struct cw_strmap *m);
void cw_strmap_release(struct cw_strmap *m);
/* Returns the value for key, or NULL. */
void *cw_strmap_get(const struct cw_strmap *m, const char *key);
/* Like get, for a key that is not NUL-terminated. */
void *cw_strmap_getn(const struct cw_strmap *m, const char *key, size_t len);
/* Inserts key; returns -1 (and changes nothing) when key is already there. */
int cw_strmap_put(struct cw_strmap *m, const char *key, void *value);
/* Removes key; returns its value, or NULL when it was not there. */
void *cw_strmap_del(struct cw_strmap *m, const char *key);

#endif
