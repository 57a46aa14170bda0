/*
 * stall.c - an LD_PRELOAD shim for the stalled-disk tests: makes the
 * processor's next fsync(2)/fdatasync(2) block for a while, on request.
 *
 * CW_STALL_FILE names a control file. When the thread named "cw-processor"
 * syncs and that file exists, the shim claims it by renaming it to
 * CW_STALL_FILE.on (so one sync stalls per request), sleeps for the number
 * of milliseconds it holds, removes the .on file, then syncs for real. The
 * test watches .on appear and go. Other threads (the checkpointer, readers)
 * are left alone, so a stall holds exactly the commits, as a slow disk
 * would, and the real SQLite does everything else.
 *
 * Test code only: it is built beside the tests, never into the server.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int fd);

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts))
        ;
}

/* Sleeps the requested stall when this is the processor and one is asked for. */
static void maybe_stall(void)
{
    const char *ctl = getenv("CW_STALL_FILE");
    char name[16] = "";
    if (!ctl || pthread_getname_np(pthread_self(), name, sizeof(name)) ||
        strcmp(name, "cw-processor"))
        return;
    char on[4096];
    snprintf(on, sizeof(on), "%s.on", ctl);
    if (rename(ctl, on))
        return; /* nothing asked for */
    char what[32] = "";
    FILE *f = fopen(on, "r");
    if (f) {
        if (!fgets(what, sizeof(what), f))
            what[0] = 0;
        fclose(f);
    }
    if (!strncmp(what, "hold", 4)) {
        for (int i = 0; i < 60000 && !access(on, F_OK); i++)
            sleep_ms(10);
        unlink(on);
        return;
    }
    sleep_ms(atol(what));
    unlink(on);
}

static sync_fn next_of(const char *name)
{
    sync_fn fn = (sync_fn)dlsym(RTLD_NEXT, name);
    if (!fn)
        abort();
    return fn;
}

int fdatasync(int fd)
{
    static sync_fn real;
    if (!real)
        real = next_of("fdatasync");
    maybe_stall();
    return real(fd);
}

int fsync(int fd)
{
    static sync_fn real;
    if (!real)
        real = next_of("fsync");
    maybe_stall();
    return real(fd);
}
