/*
 * backup.c - `calderwood backup --into FILE`: a consistent copy of the
 * SQLite database, taken while `serve` runs on it (cw_store_backup). It
 * reads beside the server and so takes no lock of the data directory.
 * Progress goes to stderr: pages copied of the total, then one line with
 * the file's size and the newest position it holds. A PostgreSQL store is
 * refused with a pointer to pg_dump and pg_basebackup.
 */
#include "cli.h"
#include "core/clock.h"
#include "store/store.h"

#include <stdio.h>

struct report {
    const char *path;
    int64_t last_us;
};

static void on_progress(const struct cw_backup_progress *p, bool final, void *arg)
{
    struct report *r = arg;
    int64_t now = cw_mono_us();
    if (final) {
        fprintf(stderr,
                "\rbackup: %lld of %lld pages (100%%)\n"
                "backup: wrote %s: %lld bytes, events up to position %lld\n",
                (long long)p->pages_total, (long long)p->pages_total, r->path, (long long)p->bytes,
                (long long)p->last_position);
        return;
    }
    /* The last step's line is the final call's. */
    if (p->pages_done == p->pages_total || (r->last_us && now - r->last_us < 500000))
        return;
    r->last_us = now;
    fprintf(stderr, "\rbackup: %lld of %lld pages (%d%%)", (long long)p->pages_done,
            (long long)p->pages_total,
            p->pages_total ? (int)(p->pages_done * 100 / p->pages_total) : 100);
}

int cw_cli_backup(int argc, char **argv)
{
    struct cw_cli_common c = {0};
    const char *into = NULL;
    bool force = false;
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&c),
        {"into", CW_OPT_STRING, &into, NULL, 0, 0, "FILE",
         "the copy to write (through FILE.tmp, renamed when whole and synced)"},
        {"force", CW_OPT_BOOL, &force, "no", 0, 0, NULL, "replace FILE if it exists"},
        {0},
    };
    int code;
    if (!cw_cli_parse("usage: calderwood backup --into FILE [--data DIR | --store URL] [--force]\n"
                      "Copies the database while a server may be running on it (SQLite only; "
                      "PostgreSQL: pg_dump or pg_basebackup). To restore: stop the server, copy "
                      "FILE to DIR/calderwood.db, remove DIR/calderwood.db-wal and -shm, start it.",
                      opts, argc, argv, NULL, &code))
        return code;
    if (!into || !*into) {
        fprintf(stderr, "calderwood: backup needs --into FILE\n");
        return 2;
    }
    struct cw_error err = {0};
    struct report r = {.path = into};
    int rc = cw_cli_prepare(&c, false, &err);
    if (!rc)
        rc = cw_store_backup(c.store_url, into, force, on_progress, &r, &err);
    return rc ? cw_cli_fail(&err) : 0;
}
