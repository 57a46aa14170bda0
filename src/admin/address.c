/*
 * address.c - where a data directory's admin socket is, for the server and
 * the client alike. A path too long for sun_path (108 bytes) is reached
 * through the directory's descriptor, /proc/self/fd/N/calderwood.sock.
 */
#include "address.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cw_admin_address(const char *data_dir, struct sockaddr_un *sa, int *dirfd, struct cw_error *err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    *dirfd = -1;
    int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/" CW_ADMIN_SOCKET, data_dir);
    if (n > 0 && (size_t)n < sizeof(sa->sun_path))
        return CW_OK;
    *dirfd = open(data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot open %s: %s", data_dir,
                            strerror(errno));
    snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/" CW_ADMIN_SOCKET, *dirfd);
    return CW_OK;
}
