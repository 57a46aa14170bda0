/*
 * natsconn.c - connecting to NATS (see natsconn.h).
 */
#include "natsconn.h"
#include "core/alloc.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

int cw_nats_fail(struct cw_error *err, int code, natsStatus s, const char *what)
{
    const char *last = nats_GetLastError(NULL);
    return cw_error_set(err, code, NULL, "NATS: %s: %s", what,
                        last && *last ? last : natsStatus_GetText(s));
}

int cw_nats_connect(const char *urls, const char *name, natsConnection **out, struct cw_error *err)
{
    natsOptions *opts = NULL;
    char *copy = cw_xstrdup(urls), *servers[16];
    int n = 0;
    for (char *save = NULL, *u = strtok_r(copy, ",", &save); u && n < 16;
         u = strtok_r(NULL, ",", &save))
        servers[n++] = u;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, (const char **)servers, n);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK)
        s = natsConnection_Connect(out, opts);
    natsOptions_Destroy(opts);
    free(copy);
    if (s != NATS_OK)
        return cw_nats_fail(err, CW_ERR_SYSTEM, s, urls);
    return CW_OK;
}
