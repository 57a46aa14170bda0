/*
 * notify.c - readiness and stopping for a service manager: sd_notify's
 * datagram protocol (one "KEY=value" datagram to the unix socket named by
 * $NOTIFY_SOCKET, '@' meaning the abstract namespace), written here rather
 * than linking libsystemd for ten lines. serve sends READY=1 once it
 * listens and STOPPING=1 when a stop signal starts the drain.
 */
#include "cli.h"
#include "core/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void cw_cli_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
        cw_warn("notify.failed", "reason=\"NOTIFY_SOCKET is not a unix socket path\"");
        return;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (fd < 0 ||
        sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen) < 0)
        cw_warn("notify.failed", "state=%s error=\"%s\"", state, strerror(errno));
    else
        cw_debug("notify.sent", "state=%s", state);
    if (fd >= 0)
        close(fd);
}
