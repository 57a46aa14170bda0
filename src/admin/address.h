/*
 * address.h - the admin socket's address (the server's and the client's).
 */
#ifndef CW_ADMIN_ADDRESS_H
#define CW_ADMIN_ADDRESS_H

#include "admin.h"

#include <sys/socket.h>
#include <sys/un.h>

/*
 * Fills sa with DATA/calderwood.sock. When that path does not fit, opens
 * data_dir (*dirfd, which the caller closes when it is not -1) and names
 * the socket through it. CW_ERR_SYSTEM when the directory cannot be opened.
 */
int cw_admin_address(const char *data_dir, struct sockaddr_un *sa, int *dirfd,
                     struct cw_error *err);

#endif
