/*
 * socket.c - the server's admin socket (see admin.h): a thread accepts on
 * DATA/calderwood.sock and gives each connection a thread of its own, which
 * reads request lines, runs each through cw_admin_run_take on the server's
 * engine and writes the answer. A connection waits on its command's commit,
 * not the gateway: nothing here touches the event loop or its sockets.
 *
 * Bounded: 8 connections at once (the next is answered "busy" and closed),
 * 16 KiB a line (a longer one is answered "too-large" and ends the
 * connection), a minute of silence ends a connection.
 */
#include "address.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CLIENTS  8
#define IDLE_SECONDS 60

struct cw_admin_server {
    int fd;
    int wake[2]; /* written once to stop the acceptor */
    char path[4200];
    struct cw_engine *e;
    const struct cw_domain *d;
    pthread_t acceptor;
    atomic_bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t idle;      /* n_active fell */
    int clients[MAX_CLIENTS]; /* {lock}: descriptors being served, -1 = free */
    int n_active;             /* {lock} */
};

struct client {
    struct cw_admin_server *s;
    int slot;
    int fd;
    struct ucred peer;
};

/*
 * Writes answer and a newline; false when the peer is gone (or, with
 * MSG_DONTWAIT in flags, would make us wait). MSG_NOSIGNAL: a vanished peer
 * is EPIPE, never SIGPIPE, whatever the process does with the signal.
 */
static bool send_line(int fd, json_t *answer, int flags)
{
    char *text = json_dumps(answer, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    bool ok = text != NULL;
    for (size_t off = 0; ok && off < len + 1;) {
        ssize_t n = off < len ? send(fd, text + off, len - off, MSG_NOSIGNAL | flags)
                              : send(fd, "\n", 1, MSG_NOSIGNAL | flags);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        off += n > 0 ? (size_t)n : 0;
    }
    free(text);
    return ok;
}

/* The answer to one request line. */
static json_t *answer_line(struct client *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        char msg[200];
        snprintf(msg, sizeof(msg), "not JSON: %s", jerr.text);
        return cw_admin_refusal("malformed", msg);
    }
    const char *name = json_string_value(json_object_get(req, "command"));
    json_t *data = json_object_get(req, "data");
    json_t *a;
    if (!json_is_object(req) || !name || !json_is_object(data)) {
        a = cw_admin_refusal("malformed", "a request is {\"command\": NAME, \"data\": {...}}");
    } else if (!c->s->e) {
        a = cw_admin_refusal("distributed",
                             "this server is one role of a distributed deployment: send the "
                             "command through its queue (--queue nats://HOST:PORT --store "
                             "postgres://...)");
    } else {
        json_t *meta = json_pack("{s:{s:i,s:i,s:s}}", "admin", "uid", (json_int_t)c->peer.uid,
                                 "pid", (json_int_t)c->peer.pid, "via", "socket");
        a = cw_admin_run_take(c->s->e, c->s->d, name, json_incref(data), meta, &c->s->stopping);
    }
    char safe[80];
    cw_info("admin.command", "command=%s uid=%d pid=%d outcome=%s",
            cw_log_safe(safe, sizeof(safe), name ? name : "?"), (int)c->peer.uid, (int)c->peer.pid,
            json_is_true(json_object_get(a, "ok")) ? "ok"
                                                   : json_string_value(json_object_get(a, "code")));
    json_decref(req);
    return a;
}

/*
 * The peer left (or stopped reading) before its answer: the command may
 * have been applied all the same, so the operator finds it here and in the
 * log's events.
 */
static void unanswered(const struct client *c, json_t *a)
{
    char safe[80];
    const char *name = json_string_value(json_object_get(a, "command_uuid"));
    cw_warn("admin.unanswered", "uid=%d pid=%d outcome=%s command_uuid=%s", (int)c->peer.uid,
            (int)c->peer.pid,
            json_is_true(json_object_get(a, "ok")) ? "ok"
                                                   : json_string_value(json_object_get(a, "code")),
            cw_log_safe(safe, sizeof(safe), name ? name : "-"));
}

/* Serves request lines until the peer closes, falls silent, or the server stops. */
static void serve_lines(struct client *c)
{
    static const size_t cap = CW_ADMIN_MAX_LINE;
    char *buf = malloc(cap);
    size_t have = 0;
    while (buf && !atomic_load(&c->s->stopping)) {
        char *nl = memchr(buf, '\n', have);
        if (nl) {
            size_t len = (size_t)(nl - buf);
            json_t *a = answer_line(c, buf, len);
            bool sent = send_line(c->fd, a, 0);
            if (!sent)
                unanswered(c, a);
            json_decref(a);
            memmove(buf, nl + 1, have - len - 1);
            have -= len + 1;
            if (!sent)
                break;
            continue;
        }
        if (have == cap) {
            json_t *a = cw_admin_refusal("too-large", "a request line is 16 KiB at most");
            send_line(c->fd, a, 0);
            json_decref(a);
            break;
        }
        ssize_t n = recv(c->fd, buf + have, cap - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed, silent too long (SO_RCVTIMEO), or shut down by stop */
        have += (size_t)n;
    }
    free(buf);
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct cw_admin_server *s = c->s;
    pthread_setname_np(pthread_self(), "cw-admin");
    serve_lines(c);
    pthread_mutex_lock(&s->lock);
    s->clients[c->slot] = -1;
    close(c->fd);
    s->n_active--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    free(c);
    return NULL;
}

/*
 * Refuses fd with one answer line and closes it. On the acceptor's thread,
 * so it never waits: a fresh connection's buffer has room for a line.
 */
static void refuse(int fd, const char *code, const char *message)
{
    json_t *a = cw_admin_refusal(code, message);
    send_line(fd, a, MSG_DONTWAIT);
    json_decref(a);
    close(fd);
}

static void take(struct cw_admin_server *s, int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    socklen_t len = sizeof(c->peer);
    if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) != 0) {
        free(c);
        close(fd);
        return;
    }
    /* The file's mode already keeps others out; this says so to whoever got in anyway. */
    if (c->peer.uid != geteuid() && c->peer.uid != 0) {
        cw_warn("admin.refused", "uid=%d pid=%d", (int)c->peer.uid, (int)c->peer.pid);
        free(c);
        refuse(fd, "forbidden", "only the server's own user or root may administer it");
        return;
    }
    struct timeval idle = {.tv_sec = IDLE_SECONDS}, out = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &out, sizeof(out));
    pthread_mutex_lock(&s->lock);
    int slot = -1;
    for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
        if (s->clients[i] < 0)
            slot = i;
    pthread_t t;
    c->s = s;
    c->fd = fd;
    c->slot = slot;
    if (slot >= 0 && pthread_create(&t, NULL, client_main, c) == 0) {
        pthread_detach(t);
        s->clients[slot] = fd;
        s->n_active++;
        slot = -2;
    }
    pthread_mutex_unlock(&s->lock);
    if (slot != -2) {
        free(c);
        refuse(fd, "busy", "too many admin connections at once: try again");
    }
}

static void *accept_main(void *arg)
{
    struct cw_admin_server *s = arg;
    pthread_setname_np(pthread_self(), "cw-admin-accept");
    struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
    while (!atomic_load(&s->stopping)) {
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cw_error("admin.stopped", "poll: %s: no more admin connections", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        /* The socket is non-blocking: a connection gone before this finds EAGAIN, not a wait. */
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            take(s, fd);
        else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            poll(NULL, 0, 100); /* out of descriptors or memory: let some free up */
    }
    return NULL;
}

static int bind_socket(struct cw_admin_server *s, const char *data_dir, struct cw_error *err)
{
    struct sockaddr_un sa;
    int dirfd;
    int rc = cw_admin_address(data_dir, &sa, &dirfd, err);
    if (rc)
        return rc;
    /* The caller holds the data directory's lock: a file here is a dead server's. */
    unlink(sa.sun_path);
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(sa.sun_path, 0600) != 0 || listen(s->fd, 16) != 0)
        rc = cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot listen on %s: %s", s->path,
                          strerror(errno));
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

int cw_admin_server_start(const char *data_dir, struct cw_engine *e, const struct cw_domain *d,
                          struct cw_admin_server **out, struct cw_error *err)
{
    struct cw_admin_server *s = calloc(1, sizeof(*s));
    if (!s)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "out of memory");
    s->fd = s->wake[0] = s->wake[1] = -1;
    s->e = e;
    s->d = d;
    snprintf(s->path, sizeof(s->path), "%s/" CW_ADMIN_SOCKET, data_dir);
    for (int i = 0; i < MAX_CLIENTS; i++)
        s->clients[i] = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    int rc = bind_socket(s, data_dir, err);
    if (!rc && pipe2(s->wake, O_CLOEXEC) != 0)
        rc = cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot make a pipe: %s", strerror(errno));
    if (!rc && pthread_create(&s->acceptor, NULL, accept_main, s) != 0)
        rc = cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot start the admin thread");
    if (rc) {
        if (s->fd >= 0) {
            close(s->fd);
            unlink(s->path);
        }
        for (int i = 0; i < 2; i++)
            if (s->wake[i] >= 0)
                close(s->wake[i]);
        pthread_cond_destroy(&s->idle);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    cw_info("admin.listening", "path=%s", s->path);
    *out = s;
    return CW_OK;
}

void cw_admin_server_stop(struct cw_admin_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    ssize_t unused = write(s->wake[1], "x", 1);
    (void)unused;
    pthread_join(s->acceptor, NULL);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i] >= 0)
            shutdown(s->clients[i], SHUT_RDWR);
    while (s->n_active)
        pthread_cond_wait(&s->idle, &s->lock);
    pthread_mutex_unlock(&s->lock);
    close(s->fd);
    unlink(s->path);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
