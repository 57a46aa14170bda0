/*
 * ring.h - a bounded FIFO of pointers shared between threads: a mutex, one
 * condition variable, and a ring. The command queue and the update bus are
 * both this ring, used with different waiting rules.
 *
 * The ring owns nothing it holds: whoever takes a pointer owns it, and
 * cw_ring_release hands what is left to a free function.
 */
#ifndef CW_RING_H
#define CW_RING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cw_ring {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* something was put or taken, or the ring closed */
    void **slots;           /* {lock} */
    size_t cap, head, len;  /* {lock} */
    bool closed;            /* {lock} */
};

void cw_ring_init(struct cw_ring *r, size_t capacity);
/* Destroys the ring; free_fn (may be NULL) gets every pointer still in it. */
void cw_ring_release(struct cw_ring *r, void (*free_fn)(void *));

/*
 * Appends p. When full: CW_ERR_OVERLOADED, or with wait, waits for room.
 * After close: CW_ERR_SHUTDOWN. p stays the caller's unless CW_OK.
 */
int cw_ring_put(struct cw_ring *r, void *p, bool wait);

/*
 * Moves up to max pointers into out, oldest first. While the ring is empty
 * and open it waits up to timeout_us (0: not at all; < 0: forever). Returns
 * how many it took: 0 on timeout or once closed and empty.
 */
size_t cw_ring_take(struct cw_ring *r, void **out, size_t max, int64_t timeout_us);

/* Refuses further puts and wakes every waiter; what is in it can still be taken. */
void cw_ring_close(struct cw_ring *r);
bool cw_ring_closed(struct cw_ring *r);
size_t cw_ring_len(struct cw_ring *r);

#endif
