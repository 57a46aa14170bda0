/*
 * inflight.c - commands acked and queued but not yet committed (see gw.h).
 *
 * One table for every gateway thread, under its own lock: a client that
 * reconnects may land on another thread and resend a command still queued;
 * it is acked as a duplicate with the original UUID and hears the outcome.
 * Every thread routes every outcome, so each entry carries a bit per thread
 * that has routed it; a resend on a thread whose bit is set is no longer in
 * flight there (the log has it), and the entry goes when every bit is set.
 */
#include "core/alloc.h"
#include "gw.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    char command_uuid[CW_UUID_LEN + 1];
    uint64_t also[CW_INFLIGHT_ALSO]; /* further connections that resent it; 0 = none */
    uint64_t routed;                 /* a bit per thread that has routed its outcome */
    char key[];                      /* user \n client_id \n seq: one allocation with the entry */
};

static struct {
    pthread_mutex_t lock;
    struct cw_strmap table; /* {lock} key -> struct entry */
} inflight = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * Three keys are made per command (added, joined, routed): written by hand,
 * not by snprintf, whose format interpretation was most of their cost. The
 * caller's buffer holds any key the decoder lets through (a UUID, at most
 * CW_WIRE_CLIENT_ID_MAX bytes of client id, 20 of sequence); a longer one is
 * cut, as snprintf cut it. Returns the key's length.
 */
static size_t make_key(char *out, size_t len, const char *user, const char *client_id, int64_t seq)
{
    char digits[24], *d = digits + sizeof(digits);
    uint64_t u = seq < 0 ? 0 - (uint64_t)seq : (uint64_t)seq;
    do {
        *--d = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (seq < 0)
        *--d = '-';
    const char *parts[] = {user, "\n", client_id, "\n"};
    size_t at = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t n = strnlen(parts[i], len - 1 - at);
        memcpy(out + at, parts[i], n);
        at += n;
    }
    size_t n = (size_t)(digits + sizeof(digits) - d);
    if (n > len - 1 - at)
        n = len - 1 - at;
    memcpy(out + at, d, n);
    out[at + n] = '\0';
    return at + n;
}

static uint64_t all_threads(void)
{
    return cw_gws->n_threads >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << cw_gws->n_threads) - 1;
}

void cw_inflight_init(void)
{
    cw_strmap_init(&inflight.table);
}

void cw_inflight_release(void)
{
    for (size_t i = 0; i < inflight.table.cap; i++)
        if (inflight.table.keys[i])
            free(inflight.table.values[i]);
    cw_strmap_release(&inflight.table);
}

bool cw_inflight_add(const char *user, const char *client_id, int64_t seq, const char *command_uuid)
{
    char key[256];
    size_t key_len = make_key(key, sizeof(key), user, client_id, seq) + 1;
    struct entry *f = cw_xcalloc(1, sizeof(*f) + key_len);
    memcpy(f->key, key, key_len);
    memcpy(f->command_uuid, command_uuid, sizeof(f->command_uuid));
    pthread_mutex_lock(&inflight.lock);
    bool added = cw_strmap_put(&inflight.table, f->key, f) == 0;
    pthread_mutex_unlock(&inflight.lock);
    if (!added)
        free(f); /* already in flight: the first entry stays */
    return added;
}

void cw_inflight_drop(const char *user, const char *client_id, int64_t seq)
{
    char key[256];
    make_key(key, sizeof(key), user, client_id, seq);
    pthread_mutex_lock(&inflight.lock);
    struct entry *f = cw_strmap_del(&inflight.table, key);
    pthread_mutex_unlock(&inflight.lock);
    free(f);
}

bool cw_inflight_join(const char *user, const char *client_id, int64_t seq, uint64_t conn,
                      char *uuid_out)
{
    char key[256];
    make_key(key, sizeof(key), user, client_id, seq);
    uint64_t me = (uint64_t)1 << cw_gw->index;
    pthread_mutex_lock(&inflight.lock);
    struct entry *f = cw_strmap_get(&inflight.table, key);
    bool found = f && !(f->routed & me);
    for (size_t i = 0; found && i < CW_INFLIGHT_ALSO; i++) {
        if (!f->also[i] || f->also[i] == conn) {
            f->also[i] = conn;
            break;
        }
    }
    if (found)
        memcpy(uuid_out, f->command_uuid, CW_UUID_LEN + 1);
    pthread_mutex_unlock(&inflight.lock);
    return found;
}

size_t cw_inflight_routed(const char *user, const char *client_id, int64_t seq,
                          uint64_t also[CW_INFLIGHT_ALSO])
{
    char key[256];
    make_key(key, sizeof(key), user, client_id, seq);
    size_t n = 0;
    struct entry *gone = NULL;
    pthread_mutex_lock(&inflight.lock);
    struct entry *f = cw_strmap_get(&inflight.table, key);
    if (f) {
        f->routed |= (uint64_t)1 << cw_gw->index;
        for (size_t i = 0; i < CW_INFLIGHT_ALSO; i++)
            if (f->also[i])
                also[n++] = f->also[i];
        if (f->routed == all_threads())
            gone = cw_strmap_del(&inflight.table, key);
    }
    pthread_mutex_unlock(&inflight.lock);
    free(gone);
    return n;
}
