/*
 * listen.h - the gateway's listening socket, bound and accepted by us; each
 * accepted socket is handed to lws as a raw one (lws_adopt_descriptor_vhost).
 *
 * One listener per process, on the loop thread. The socket is bound before
 * lws starts, so a taken address is one clear error and not lws's own log
 * lines; and when accept() runs out of descriptors the listener pauses
 * instead of being woken again at once (see listen.c).
 */
#ifndef CW_LISTEN_H
#define CW_LISTEN_H

#include "calderwood.h"

#include <stdbool.h>

struct ev_loop;
struct lws_vhost;

/*
 * Binds and listens on host:port (host "" is every address); shown is how
 * the address appears in the error ("cannot listen on 127.0.0.1:8080:
 * address already in use"). CW_OK at once when already listening;
 * CW_ERR_SYSTEM when it cannot.
 */
int cw_listen_open(const char *host, int port, const char *shown, struct cw_error *err);

/* Starts accepting on loop; each socket goes to vh's protocol `protocol` (over TLS when tls). */
void cw_listen_start(struct ev_loop *loop, struct lws_vhost *vh, const char *protocol, bool tls);

/* Stops accepting and closes the socket; harmless when not open. */
void cw_listen_close(void);

#endif
