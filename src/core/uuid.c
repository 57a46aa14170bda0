/*
 * uuid.c - UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random
 * bits from libsodium.
 *
 * Time-ordered keys keep B-tree inserts at the right edge of the index.
 * Within one millisecond a per-thread counter in rand_a keeps the UUIDs a
 * thread makes strictly increasing; other threads differ in the random part.
 */
#include "calderwood.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/random.h>

static _Thread_local uint64_t last_ms;
static _Thread_local uint16_t counter; /* 12 bits used */
/*
 * Random bytes fetched a page at a time: one getrandom(2) per ~400 UUIDs,
 * not per UUID. Asked for directly: libsodium's randombytes_buf() splits a
 * request into 256-byte system calls.
 */
static _Thread_local uint8_t pool[4000];
static _Thread_local size_t pool_left;

static void refill(void)
{
    size_t got = 0;
    while (got < sizeof(pool)) {
        ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno != EINTR) { /* no getrandom here: libsodium knows other ways */
            randombytes_buf(pool + got, sizeof(pool) - got);
            got = sizeof(pool);
        }
    }
    pool_left = sizeof(pool);
}

static void random_bytes(uint8_t *out, size_t n)
{
    if (pool_left < n)
        refill();
    memcpy(out, pool + sizeof(pool) - pool_left, n);
    sodium_memzero(pool + sizeof(pool) - pool_left, n);
    pool_left -= n;
}

void cw_uuid_v7(char out[CW_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t ms = (uint64_t)cw_now_us() / 1000;

    random_bytes(b + 6, 10);
    if (ms <= last_ms) {
        /* Same (or an earlier, after a clock step) millisecond: count on. */
        ms = last_ms;
        if (++counter > 0xfff) {
            ms++;
            counter = (uint16_t)(b[6] & 0x3f);
        }
    } else {
        /* Start low in the counter space so a burst has room to count up. */
        counter = (uint16_t)(b[6] & 0x3f);
    }
    last_ms = ms;

    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (counter >> 8));
    b[7] = (uint8_t)(counter & 0xff);
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));

    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0xf];
    }
    *p = '\0';
}

bool cw_uuid_valid(const char *s)
{
    if (!s || strlen(s) != CW_UUID_LEN)
        return false;
    for (int i = 0; i < CW_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}
