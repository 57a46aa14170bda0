/*
 * ratelimit.c - token buckets per key with a fixed memory bound (see
 * ratelimit.h).
 *
 * Asked by the gateway before it verifies a password, so that guessing
 * costs time per address. Layout: a dense array of max_keys entries; an
 * open-addressing table (linear probing, backward-shift deletion, SipHash
 * under a random key so a client cannot pick colliding addresses) from key
 * to entry; and a binary min-heap of the entries ordered by the time their
 * bucket is full, whose root is the one to evict. Every operation is
 * O(log max_keys); nothing is allocated after cw_ratelimit_new().
 *
 * It does not read the clock or know what a key means.
 */
#include "ratelimit.h"
#include "core/alloc.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS_LIMIT ((size_t)1 << 24)
/* Slack for rounding in the token arithmetic: 0.999999999999 tokens is one. */
#define EPSILON 1e-9

struct entry {
    double tokens;
    double full_at; /* microseconds: when the bucket is (or was) full again */
    int64_t last_us;
    uint64_t hash;
    uint32_t heap_pos;
    uint8_t key_len;
    char key[CW_RATELIMIT_KEY_MAX];
};

struct cw_ratelimit {
    double per_second, burst;
    size_t max_keys, count;
    struct entry *entries; /* [max_keys], the first count in use */
    uint32_t *heap;        /* [max_keys] entry indices, min full_at at 0 */
    uint32_t *table;       /* [mask + 1] entry index + 1; 0 is empty */
    size_t mask;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

struct cw_ratelimit *cw_ratelimit_new(double per_second, double burst, size_t max_keys)
{
    if (!(per_second > 0) || !isfinite(per_second) || !(burst >= 1) || !isfinite(burst) ||
        max_keys == 0 || max_keys > MAX_KEYS_LIMIT || sodium_init() < 0)
        return NULL;
    struct cw_ratelimit *rl = cw_xcalloc(1, sizeof(*rl));
    rl->per_second = per_second;
    rl->burst = burst;
    rl->max_keys = max_keys;
    size_t slots = 2;
    while (slots < 2 * max_keys) /* load factor at most 1/2 */
        slots *= 2;
    rl->mask = slots - 1;
    rl->entries = cw_xcalloc(max_keys, sizeof(*rl->entries));
    rl->heap = cw_xcalloc(max_keys, sizeof(*rl->heap));
    rl->table = cw_xcalloc(slots, sizeof(*rl->table));
    randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
    return rl;
}

void cw_ratelimit_free(struct cw_ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->entries);
    free(rl->heap);
    free(rl->table);
    sodium_memzero(rl, sizeof(*rl));
    free(rl);
}

size_t cw_ratelimit_count(const struct cw_ratelimit *rl)
{
    return rl->count;
}

/* ------------------------------------------------------------------- heap */

static bool earlier(const struct cw_ratelimit *rl, uint32_t a, uint32_t b)
{
    return rl->entries[rl->heap[a]].full_at < rl->entries[rl->heap[b]].full_at;
}

static void heap_swap(struct cw_ratelimit *rl, uint32_t a, uint32_t b)
{
    uint32_t t = rl->heap[a];
    rl->heap[a] = rl->heap[b];
    rl->heap[b] = t;
    rl->entries[rl->heap[a]].heap_pos = a;
    rl->entries[rl->heap[b]].heap_pos = b;
}

/* Restores the heap order around pos after its entry's full_at changed. */
static void heap_fix(struct cw_ratelimit *rl, uint32_t pos)
{
    while (pos > 0 && earlier(rl, pos, (pos - 1) / 2)) {
        heap_swap(rl, pos, (pos - 1) / 2);
        pos = (pos - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * (size_t)pos + 1, r = l + 1, min = pos;
        if (l < rl->count && earlier(rl, (uint32_t)l, (uint32_t)min))
            min = l;
        if (r < rl->count && earlier(rl, (uint32_t)r, (uint32_t)min))
            min = r;
        if (min == pos)
            return;
        heap_swap(rl, pos, (uint32_t)min);
        pos = (uint32_t)min;
    }
}

/* ------------------------------------------------------------------ table */

static uint64_t hash_key(const struct cw_ratelimit *rl, const char *key, size_t n)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, n, rl->hash_key);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

/* The table slot holding entry idx, or of the key, or the empty slot where it would go. */
static size_t table_find(const struct cw_ratelimit *rl, uint64_t h, const char *key, size_t n)
{
    for (size_t i = h & rl->mask;; i = (i + 1) & rl->mask) {
        uint32_t v = rl->table[i];
        if (!v)
            return i;
        const struct entry *e = &rl->entries[v - 1];
        if (e->hash == h && e->key_len == n && memcmp(e->key, key, n) == 0)
            return i;
    }
}

/* Empties slot i, shifting back the entries of its probe run (no tombstones). */
static void table_remove(struct cw_ratelimit *rl, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & rl->mask;
        uint32_t v = rl->table[j];
        if (!v)
            break;
        size_t home = rl->entries[v - 1].hash & rl->mask;
        /* Entry at j may move to i only if its home is not in (i, j], cyclically. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        rl->table[i] = v;
        i = j;
    }
    rl->table[i] = 0;
}

/* ---------------------------------------------------------------- buckets */

static void refill(const struct cw_ratelimit *rl, struct entry *e, int64_t now_us)
{
    if (now_us <= e->last_us)
        return;
    /* elapsed * rate / 1e6 rather than elapsed * (rate / 1e6): whole seconds stay exact. */
    double gained = (double)(now_us - e->last_us) * rl->per_second / 1e6;
    e->tokens = fmin(rl->burst, e->tokens + gained);
    e->last_us = now_us;
}

static void set_full_at(const struct cw_ratelimit *rl, struct entry *e)
{
    e->full_at = (double)e->last_us + (rl->burst - e->tokens) * 1e6 / rl->per_second;
}

/* A new entry for key: a fresh one while there is room, else the evicted root's. */
static struct entry *add(struct cw_ratelimit *rl, size_t slot, uint64_t h, const char *key,
                         size_t n, int64_t now_us)
{
    uint32_t idx;
    if (rl->count < rl->max_keys) {
        idx = (uint32_t)rl->count;
        rl->heap[rl->count] = idx;
        rl->entries[idx].heap_pos = (uint32_t)rl->count;
        rl->count++;
    } else {
        idx = rl->heap[0];
        struct entry *old = &rl->entries[idx];
        table_remove(rl, table_find(rl, old->hash, old->key, old->key_len));
        /* The removal may have shifted the empty slot the new key was going to. */
        slot = table_find(rl, h, key, n);
    }
    struct entry *e = &rl->entries[idx];
    memcpy(e->key, key, n);
    e->key_len = (uint8_t)n;
    e->hash = h;
    e->tokens = rl->burst;
    e->last_us = now_us;
    rl->table[slot] = idx + 1;
    return e;
}

bool cw_ratelimit_allow(struct cw_ratelimit *rl, const char *key, int64_t now_us,
                        int64_t *retry_after_us)
{
    size_t n = strnlen(key, CW_RATELIMIT_KEY_MAX);
    uint64_t h = hash_key(rl, key, n);
    size_t slot = table_find(rl, h, key, n);
    struct entry *e;
    if (rl->table[slot]) {
        e = &rl->entries[rl->table[slot] - 1];
        refill(rl, e, now_us);
    } else {
        e = add(rl, slot, h, key, n, now_us);
    }

    bool allowed = e->tokens >= 1 - EPSILON;
    int64_t retry = 0;
    if (allowed) {
        e->tokens -= 1;
    } else {
        /* Aim a little past the threshold, so that waiting this long is enough
         * despite rounding, and a little short of 1, so that 0.999999 tokens
         * at one per second wait 1 us, not 2. */
        double wait = ceil((1 - EPSILON / 2 - e->tokens) * 1e6 / rl->per_second);
        retry = wait < 1 ? 1 : wait > (double)(INT64_MAX / 2) ? INT64_MAX / 2 : (int64_t)wait;
    }
    set_full_at(rl, e);
    heap_fix(rl, e->heap_pos);
    if (retry_after_us)
        *retry_after_us = retry;
    return allowed;
}
