/*
 * notify_listen.c - the service manager's side of sd_notify for
 * tests/install/run.sh: binds a unix datagram socket at argv[1] and prints
 * each datagram received as one line, until one holds STOPPING=1 or
 * argv[2] seconds pass (exit 1 then).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: notify_listen SOCKET_PATH SECONDS\n");
        return 2;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "notify_listen: path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        perror("notify_listen: bind");
        return 2;
    }
    time_t deadline = time(NULL) + atoi(argv[2]);
    while (time(NULL) < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        printf("%s\n", buf);
        fflush(stdout);
        if (strstr(buf, "STOPPING=1"))
            return 0;
    }
    fprintf(stderr, "notify_listen: no STOPPING=1 within %s s\n", argv[2]);
    return 1;
}
