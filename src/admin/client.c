/*
 * client.c - the CLI's side of the admin socket (see admin.h): one request
 * line out, one answer line back.
 */
#include "address.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sends all of buf; false on failure. */
static bool send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Reads one line (without its newline) into *buf (the caller's, to free);
 * its length, or -1. An answer lists every event its command wrote (one
 * per ended session), so unlike a request it may exceed
 * CW_ADMIN_MAX_LINE: the buffer doubles, up to CW_ADMIN_MAX_ANSWER.
 */
static ssize_t recv_line(int fd, char **buf)
{
    size_t have = 0, cap = 0;
    *buf = NULL;
    for (;;) {
        if (have == cap) {
            size_t bigger = cap ? 2 * cap : CW_ADMIN_MAX_LINE;
            char *more = bigger <= CW_ADMIN_MAX_ANSWER ? realloc(*buf, bigger) : NULL;
            if (!more)
                return -1;
            *buf = more;
            cap = bigger;
        }
        ssize_t n = recv(fd, *buf + have, cap - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        char *nl = memchr(*buf + have, '\n', (size_t)n);
        have += (size_t)n;
        if (nl)
            return nl - *buf;
    }
}

static int connect_to(const char *data_dir, int *out, struct cw_error *err)
{
    struct sockaddr_un sa;
    int dirfd;
    int rc = cw_admin_address(data_dir, &sa, &dirfd, err);
    if (rc)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        *out = fd;
    } else {
        int e = errno;
        rc = e == ENOENT || e == ECONNREFUSED ? CW_ERR_NOT_FOUND : CW_ERR_SYSTEM;
        cw_error_set(err, rc, NULL, "cannot connect to %s/" CW_ADMIN_SOCKET ": %s", data_dir,
                     strerror(e));
        if (fd >= 0)
            close(fd);
    }
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

int cw_admin_call(const char *data_dir, const char *name, const json_t *data, json_t **answer,
                  struct cw_error *err)
{
    int fd;
    int rc = connect_to(data_dir, &fd, err);
    if (rc)
        return rc;
    json_t *req = json_pack("{s:s,s:O}", "command", name, "data", data);
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    char *buf = NULL;
    ssize_t len = -1;
    bool sent = line && send_all(fd, line, strlen(line)) && send_all(fd, "\n", 1);
    if (sent)
        len = recv_line(fd, &buf);
    close(fd);
    free(line);
    json_error_t jerr;
    *answer = len >= 0 ? json_loadb(buf, (size_t)len, 0, &jerr) : NULL;
    free(buf);
    if (!sent)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot send the command to the server");
    if (!*answer)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL,
                            "the server did not answer the command, which may or may not have been "
                            "applied: see `calderwood events`");
    return CW_OK;
}
