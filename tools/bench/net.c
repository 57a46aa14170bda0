/*
 * net.c - sockets, the descriptor limit and byte buffers for calderwood-bench.
 * Nothing here knows HTTP or WebSocket; see http.c and ws.c.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "calderwood-bench: out of memory\n");
        abort();
    }
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "calderwood-bench: out of memory\n");
        abort();
    }
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "calderwood-bench: out of memory\n");
        abort();
    }
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

int net_parse_target(const char *s, struct net_target *t)
{
    memset(t, 0, sizeof(*t));
    const char *colon = strrchr(s, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || *end || port < 1 || port > 65535 || (size_t)(colon - s) >= sizeof(t->host)) {
        fprintf(stderr, "calderwood-bench: --server must be HOST:PORT, not '%s'\n", s);
        return -1;
    }
    memcpy(t->host, s, (size_t)(colon - s));
    if (!strcmp(t->host, "localhost"))
        strcpy(t->host, "127.0.0.1");
    t->port = (int)port;
    t->addr.sin_family = AF_INET;
    t->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, t->host, &t->addr.sin_addr) != 1) {
        fprintf(stderr, "calderwood-bench: '%s' is not an IPv4 address\n", t->host);
        return -1;
    }
    return 0;
}

long net_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

static void tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int net_connect_nb(const struct net_target *t, int idx, int nsrc)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    tune(fd);
    if (nsrc > 1) {
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in src = {.sin_family = AF_INET};
        /* 127.0.0.1, 127.0.0.2, ... */
        src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(1 + idx % nsrc));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int net_connect_blocking(const struct net_target *t, int timeout_ms)
{
    int fd = net_connect_nb(t, 0, 1);
    if (fd < 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
        close(fd);
        errno = err ? err : ETIMEDOUT;
        return -1;
    }
    return fd;
}

void bbuf_reserve(struct bbuf *b, size_t more)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + more <= b->cap)
        return;
    if (b->off) { /* reclaim the consumed front first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void bbuf_add(struct bbuf *b, const void *data, size_t n)
{
    bbuf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void bbuf_consume(struct bbuf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void bbuf_free(struct bbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int bbuf_write(struct bbuf *b, int fd)
{
    while (bbuf_pending(b)) {
        ssize_t n = send(fd, b->p + b->off, bbuf_pending(b), MSG_NOSIGNAL);
        if (n > 0) {
            bbuf_consume(b, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    return 0;
}
