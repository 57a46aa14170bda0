/*
 * ratelimit.h - login attempts per remote address: one token bucket per key.
 *
 * Each key (the address text) has a bucket of at most `burst` tokens that
 * refills at `per_second` tokens a second; an attempt takes one token, or is
 * refused with the time until a token will be there. A key never seen
 * starts with a full bucket, so a full bucket and a forgotten key behave
 * the same; that is what makes the memory bound cheap:
 *
 * At most max_keys buckets are kept (about 120 bytes each, allocated up
 * front by cw_ratelimit_new; nothing is allocated afterwards).
 * When a new key arrives and the table is full, the bucket that became full
 * earliest is evicted, or, if none is full yet, the one that will be full
 * soonest. Evicting a full bucket forgets nothing; otherwise the bucket
 * nearest to full is forgotten, which hands out the fewest extra attempts.
 * Unlike least recently used, this keeps an address that is being refused
 * even while a flood of new addresses goes by. (Callers that key by IPv6 address should
 * key by prefix, say the /64, or one host holds many keys.)
 *
 * Time is passed in, in microseconds from any monotonic clock; a time
 * earlier than a key's last one counts as no time passed.
 *
 * Ownership: keys are copied. Thread: one thread (the gateway's); no locks.
 */
#ifndef CW_RATELIMIT_H
#define CW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_RATELIMIT_KEY_MAX 64 /* bytes; longer keys are cut to this */

struct cw_ratelimit;

/*
 * A limiter allowing `burst` attempts at once and `per_second` attempts a
 * second after that, remembering at most max_keys keys. NULL when the
 * parameters make no sense: per_second not > 0, burst not >= 1 (both finite),
 * max_keys 0 or over 2^24.
 */
struct cw_ratelimit *cw_ratelimit_new(double per_second, double burst, size_t max_keys);

/* Frees rl; accepts NULL. */
void cw_ratelimit_free(struct cw_ratelimit *rl);

/*
 * May key (NUL-terminated, not NULL) make an attempt at now_us? true takes one token (and sets
 * *retry_after_us to 0); false takes nothing and sets *retry_after_us to the
 * wait until one token is there (at least 1). retry_after_us may be NULL.
 */
bool cw_ratelimit_allow(struct cw_ratelimit *rl, const char *key, int64_t now_us,
                        int64_t *retry_after_us);

/* Number of keys remembered now (at most max_keys). */
size_t cw_ratelimit_count(const struct cw_ratelimit *rl);

#endif
