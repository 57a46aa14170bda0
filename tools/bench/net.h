/*
 * net.h - sockets for calderwood-bench: the target address, non-blocking
 * connects (optionally from one of several 127.0.0.x source addresses, so
 * that tens of thousands of connections do not share one source port
 * range), the descriptor limit, and a small growable byte buffer.
 *
 * Loopback only by design: the target must be a literal IPv4 address.
 */
#ifndef CW_BENCH_NET_H
#define CW_BENCH_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_target {
    char host[64]; /* as given, for the Host header */
    int port;
    struct sockaddr_in addr;
};

/* Parses "HOST:PORT" (IPv4 literal). Returns 0, or -1 with a message on stderr. */
int net_parse_target(const char *s, struct net_target *t);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
long net_raise_nofile(void);

/* Starts a non-blocking TCP connect to t. With nsrc > 1 the socket is bound
 * first to source address 127.0.0.(1 + idx % nsrc) (port chosen at connect,
 * IP_BIND_ADDRESS_NO_PORT). Returns the descriptor (connect in progress or
 * done), or -1 with errno set. */
int net_connect_nb(const struct net_target *t, int idx, int nsrc);

/* Blocking connect with a timeout, for the few setup requests (login). */
int net_connect_blocking(const struct net_target *t, int timeout_ms);

/* A growable byte buffer: data in [off, len). */
struct bbuf {
    char *p;
    size_t off, len, cap;
};

void bbuf_reserve(struct bbuf *b, size_t more); /* room for `more` bytes at p + len */
void bbuf_add(struct bbuf *b, const void *data, size_t n);
void bbuf_consume(struct bbuf *b, size_t n); /* drops n bytes from the front */
void bbuf_free(struct bbuf *b);
static inline size_t bbuf_pending(const struct bbuf *b)
{
    return b->len - b->off;
}

/* Writes as much of b as the socket takes. Returns 0 (all written or
 * EAGAIN), or -1 on a socket error. */
int bbuf_write(struct bbuf *b, int fd);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
