/*
 * inflight.c - commands acked and queued but not yet committed (see gw.h).
 *
 * One table for every gateway thread, under its own lock: a client that
 * reconnects may land on another thread and resend a command still queued;
 * it is acked as a duplicate with the original UUID and hears the outcome.
 *
 * An entry goes when its outcome is published on the bus, before any
 * thread routes it: the bus filter takes the connections that resent it
 * into the outcome, whose threads it then wakes. A resend after that finds
 * no entry, and the log, which has the command by then, answers it. So
 * the lock is taken once per command queued and once per committed batch.
 */
#include "core/alloc.h"
#include "engine/envelope.h"
#include "engine/update.h"
#include "gw.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(CW_INFLIGHT_ALSO == CW_OUTCOME_RESENT_BY, "an entry's resenders fit its outcome");

struct entry {
    char *key; /* user \n client_id \n seq */
    char command_uuid[CW_UUID_LEN + 1];
    uint64_t also[CW_INFLIGHT_ALSO]; /* further connections that resent it; 0 = none */
};

static struct {
    pthread_mutex_t lock;
    struct cw_strmap table; /* {lock} key -> struct entry */
} inflight = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Appends s to out (at *at), keeping the last byte for the NUL. */
static void put(char *out, size_t len, size_t *at, const char *s, size_t n)
{
    if (n > len - 1 - *at)
        n = len - 1 - *at;
    memcpy(out + *at, s, n);
    *at += n;
}

/*
 * user \n client_id \n seq, cut to len - 1 bytes. By hand rather than with
 * snprintf: the bus filter builds one per committed command on the
 * publisher's thread, which is the processor's.
 */
static void make_key(char *out, size_t len, const char *user, const char *client_id, int64_t seq)
{
    char digits[24];
    size_t n = sizeof(digits), at = 0;
    uint64_t v = seq < 0 ? (uint64_t)0 - (uint64_t)seq : (uint64_t)seq;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (seq < 0)
        digits[--n] = '-';
    put(out, len, &at, user, strlen(user));
    put(out, len, &at, "\n", 1);
    put(out, len, &at, client_id, strlen(client_id));
    put(out, len, &at, "\n", 1);
    put(out, len, &at, digits + n, sizeof(digits) - n);
    out[at] = '\0';
}

static void free_entry(struct entry *f)
{
    if (f)
        free(f->key);
    free(f);
}

void cw_inflight_init(void)
{
    cw_strmap_init(&inflight.table);
}

void cw_inflight_release(void)
{
    for (size_t i = 0; i < inflight.table.cap; i++)
        if (inflight.table.keys[i])
            free_entry(inflight.table.values[i]);
    cw_strmap_release(&inflight.table);
}

bool cw_inflight_add(const char *user, const char *client_id, int64_t seq, const char *command_uuid)
{
    char key[256];
    make_key(key, sizeof(key), user, client_id, seq);
    struct entry *f = cw_xcalloc(1, sizeof(*f));
    f->key = cw_xstrdup(key);
    memcpy(f->command_uuid, command_uuid, sizeof(f->command_uuid));
    pthread_mutex_lock(&inflight.lock);
    bool added = cw_strmap_put(&inflight.table, f->key, f) == 0;
    pthread_mutex_unlock(&inflight.lock);
    if (!added)
        free_entry(f); /* already in flight: the first entry stays */
    return added;
}

void cw_inflight_drop(const char *user, const char *client_id, int64_t seq)
{
    char key[256];
    make_key(key, sizeof(key), user, client_id, seq);
    pthread_mutex_lock(&inflight.lock);
    struct entry *f = cw_strmap_del(&inflight.table, key);
    pthread_mutex_unlock(&inflight.lock);
    free_entry(f);
}

bool cw_inflight_join(const char *user, const char *client_id, int64_t seq, uint64_t conn,
                      char *uuid_out)
{
    char key[256];
    make_key(key, sizeof(key), user, client_id, seq);
    pthread_mutex_lock(&inflight.lock);
    struct entry *f = cw_strmap_get(&inflight.table, key);
    bool found = f != NULL;
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

/* {inflight.lock} The entry of o's command goes; the connections that resent it go into o. */
static struct entry *take_resenders(struct cw_outcome *o)
{
    char key[256];
    make_key(key, sizeof(key), o->env->cmd.user_uuid, o->env->cmd.client_id,
             o->env->cmd.client_seq);
    memset(o->resent_by, 0, sizeof(o->resent_by));
    struct entry *f = cw_strmap_del(&inflight.table, key);
    if (f)
        memcpy(o->resent_by, f->also, sizeof(o->resent_by));
    return f;
}

void cw_inflight_committed(struct cw_outcome_batch *b)
{
    struct entry *gone[64];
    size_t i = 0;
    while (i < b->n) {
        /* The entries are freed outside the lock, up to 64 at a time. */
        size_t n = 0;
        pthread_mutex_lock(&inflight.lock);
        for (; i < b->n && n < 64; i++)
            if ((gone[n] = take_resenders(&b->items[i])))
                n++;
        pthread_mutex_unlock(&inflight.lock);
        for (size_t k = 0; k < n; k++)
            free_entry(gone[k]);
    }
}
