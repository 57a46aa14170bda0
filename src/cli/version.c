/*
 * version.c - `calderwood --version`: the version and git commit stamped at
 * build time (the Makefile passes CW_VERSION and CW_GIT_COMMIT), then the
 * version each library reports at run time, which is what a bug report
 * needs when the shared libraries were upgraded under the binary.
 */
#include "cli.h"
#include "gateway/gateway.h"
#include "store/store.h"

#include <sodium.h>
#include <stdio.h>

#ifndef CW_VERSION
#define CW_VERSION "unknown"
#endif
#ifndef CW_GIT_COMMIT
#define CW_GIT_COMMIT "unknown"
#endif

int cw_cli_version(void)
{
    printf("calderwood %s (commit %s)\n", CW_VERSION, CW_GIT_COMMIT);
    printf("SQLite %s\n", cw_store_sqlite_version());
    printf("libwebsockets %s\n", cw_gateway_library_version());
    printf("jansson %s\n", jansson_version_str());
    printf("libsodium %s\n", sodium_version_string());
    return fflush(stdout) ? 1 : 0;
}
