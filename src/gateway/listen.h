/*
 * listen.h - the gateway's listening socket, bound and accepted by us; each
 * accepted socket goes to a callback (server.c hands it to a gateway thread,
 * which gives it to lws as a raw one).
 *
 * One listener per process, on the loop of gateway thread 0. The socket is bound before
 * lws starts, so a taken address is one clear error and not lws's own log
 * lines; and when accept() runs out of descriptors the listener pauses
 * instead of being woken again at once (see listen.c).
 */
#ifndef CW_LISTEN_H
#define CW_LISTEN_H

#include "calderwood.h"

#include <stdbool.h>

struct ev_loop;

/* An accepted socket (non-blocking, close-on-exec), now the callee's. */
typedef void (*cw_listen_cb)(int fd, void *arg);

/*
 * Binds and listens on host:port (host "" is every address); shown is how
 * the address appears in the error ("cannot listen on 127.0.0.1:8080:
 * address already in use"). CW_OK at once when already listening;
 * CW_ERR_SYSTEM when it cannot.
 */
int cw_listen_open(const char *host, int port, const char *shown, struct cw_error *err);

/* Starts accepting on loop; each socket goes to on_socket(fd, arg), on that loop's thread. */
void cw_listen_start(struct ev_loop *loop, cw_listen_cb on_socket, void *arg);

/* Stops accepting and closes the socket; harmless when not open. */
void cw_listen_close(void);

#endif
