/*
 * sqlite_backup.c - an online copy of a SQLite store (cw_store_backup, see
 * store.h), with SQLite's backup API.
 *
 * The copy reads beside a running server: its own read-only connection,
 * no lock of the data directory. That connection holds one read
 * transaction from the first page to the last, so the copy is the single
 * committed state it began with: in WAL mode a reader never blocks the
 * writer, and since the snapshot never changes under it, the backup API
 * never has to start over because another process committed (which,
 * stepping a few pages at a time under a steady load, it would do for
 * ever). The price is that checkpoints cannot copy back past the snapshot
 * while the backup runs, so the WAL grows for that long.
 *
 * Pages go over a few at a time; SQLITE_BUSY and SQLITE_LOCKED (a
 * checkpoint's brief lock) are retried at once, without sleeping. The copy
 * is written to PATH.tmp with neither journal nor syncs, synced once
 * whole, and renamed to PATH: a crash leaves a stray PATH.tmp, never a
 * half file named PATH.
 */
#include "backend.h"
#include "core/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STEP_PAGES    64             /* pages per step: half a megabyte at 8 KiB */
#define BUSY_LIMIT_US (60 * 1000000) /* a lock held this long is not a checkpoint's */

struct copy {
    const char *src_path, *path;
    char tmp[4200];
    sqlite3 *src, *dst;
    struct cw_backup_progress p;
    cw_store_backup_cb cb;
    void *arg;
    struct cw_error *err;
};

static int sqlite_fail(sqlite3 *conn, int code, struct cw_error *err, const char *what)
{
    return cw_error_set(err, CW_ERR_STORE, NULL, "%s: %s", what,
                        conn ? sqlite3_errmsg(conn) : sqlite3_errstr(code));
}

/* The same file twice (a hard link or another spelling of the path counts). */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Refuses what must not become the copy's name, before anything is written. */
static int check_target(const struct copy *c, bool replace, struct cw_error *err)
{
    struct stat sb;
    if (stat(c->src_path, &sb) != 0)
        return cw_error_set(err, CW_ERR_NOT_FOUND, NULL, "no database at %s", c->src_path);
    if (same_file(c->src_path, c->path))
        return cw_error_set(err, CW_ERR_INVALID, NULL, "%s is the database itself", c->path);
    if (lstat(c->path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return cw_error_set(err, CW_ERR_INVALID, NULL, "%s is a directory", c->path);
        if (!replace)
            return cw_error_set(err, CW_ERR_EXISTS, NULL, "%s exists; give --force to replace it",
                                c->path);
    }
    return CW_OK;
}

/* Opens the source read-only and begins the read transaction the whole copy is taken in. */
static int open_source(struct copy *c)
{
    int rc = sqlite3_open_v2(c->src_path, &c->src, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK)
        return sqlite_fail(c->src, rc, c->err, "cannot open the database");
    sqlite3_busy_timeout(c->src, 5000);
    /* A read transaction starts with the first read, not with BEGIN. */
    rc = sqlite3_exec(c->src, "BEGIN; SELECT COUNT(*) FROM sqlite_master;", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sqlite_fail(c->src, rc, c->err, "cannot read the database");
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(c->src, "SELECT COALESCE(MAX(position), 0) FROM events", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        c->p.last_position = sqlite3_column_int64(st, 0);
    else
        rc = sqlite_fail(c->src, rc, c->err, "cannot read the event log");
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? CW_OK : CW_ERR_STORE;
}

/* The new file: no journal, no syncs (a failed copy is thrown away; one fsync at the end). */
static int open_target(struct copy *c)
{
    remove(c->tmp); /* a stray one from a copy that crashed */
    int rc = sqlite3_open_v2(c->tmp, &c->dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK)
        return cw_error_set(c->err, CW_ERR_SYSTEM, NULL, "cannot create %s: %s", c->tmp,
                            c->dst ? sqlite3_errmsg(c->dst) : sqlite3_errstr(rc));
    rc = sqlite3_exec(c->dst, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;", NULL, NULL, NULL);
    return rc == SQLITE_OK ? CW_OK : sqlite_fail(c->dst, rc, c->err, "cannot set up the copy");
}

static int copy_pages(struct copy *c)
{
    sqlite3_backup *b = sqlite3_backup_init(c->dst, "main", c->src, "main");
    if (!b)
        return sqlite_fail(c->dst, 0, c->err, "cannot start the copy");
    int64_t busy_since = 0;
    int rc;
    for (;;) {
        rc = sqlite3_backup_step(b, STEP_PAGES);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            int64_t now = cw_mono_us();
            if (!busy_since)
                busy_since = now;
            if (now - busy_since > BUSY_LIMIT_US)
                break;
            sched_yield();
            continue;
        }
        busy_since = 0;
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
            break;
        c->p.pages_total = sqlite3_backup_pagecount(b);
        c->p.pages_done = c->p.pages_total - sqlite3_backup_remaining(b);
        if (c->cb)
            c->cb(&c->p, false, c->arg);
        if (rc == SQLITE_DONE)
            break;
    }
    int finished = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE)
        return cw_error_set(c->err, CW_ERR_STORE, NULL, "copying pages failed: %s",
                            sqlite3_errstr(rc));
    return finished == SQLITE_OK ? CW_OK : sqlite_fail(c->dst, finished, c->err, "copy");
}

static int sync_path(const char *path, int flags, struct cw_error *err)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd) == 0 ? CW_OK
                            : cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot sync %s: %s", path,
                                           strerror(errno));
    close(fd);
    return rc;
}

/* PATH.tmp, synced, becomes PATH; without replace, never over a file that appeared meanwhile. */
static int publish(struct copy *c, bool replace)
{
    int rc = sync_path(c->tmp, O_RDONLY, c->err);
    if (rc)
        return rc;
    struct stat sb;
    if (stat(c->tmp, &sb) == 0)
        c->p.bytes = sb.st_size;
    if (renameat2(AT_FDCWD, c->tmp, AT_FDCWD, c->path, replace ? 0 : RENAME_NOREPLACE) != 0)
        return cw_error_set(c->err, errno == EEXIST ? CW_ERR_EXISTS : CW_ERR_SYSTEM, NULL,
                            "cannot rename %s to %s: %s", c->tmp, c->path, strerror(errno));
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", c->path);
    return sync_path(dirname(dir), O_RDONLY | O_DIRECTORY, c->err);
}

int cw_store_backup(const char *url, const char *path, bool replace, cw_store_backup_cb cb,
                    void *arg, struct cw_error *err)
{
    const struct cw_store_backend *be;
    const char *target;
    int rc = cw_store_parse_url(url, &be, &target, err);
    if (rc)
        return rc;
    if (be != &cw_store_sqlite)
        return cw_error_set(err, CW_ERR_INVALID, NULL,
                            "backup copies SQLite stores only: back up PostgreSQL with its own "
                            "tools, pg_dump (a logical copy) or pg_basebackup (a physical one); "
                            "see docs/POSTGRES.md, Backups");
    struct copy c = {.src_path = target, .path = path, .cb = cb, .arg = arg, .err = err};
    if ((size_t)snprintf(c.tmp, sizeof(c.tmp), "%s.tmp", path) >= sizeof(c.tmp))
        return cw_error_set(err, CW_ERR_INVALID, NULL, "path too long: %s", path);
    rc = check_target(&c, replace, err);
    if (!rc)
        rc = open_source(&c);
    if (!rc)
        rc = open_target(&c);
    if (!rc)
        rc = copy_pages(&c);
    if (c.src)
        sqlite3_exec(c.src, "COMMIT;", NULL, NULL, NULL); /* ends the snapshot */
    sqlite3_close(c.src);
    if (c.dst && sqlite3_close(c.dst) != SQLITE_OK && !rc)
        rc = cw_error_set(err, CW_ERR_STORE, NULL, "cannot close %s", c.tmp);
    if (!rc)
        rc = publish(&c, replace);
    if (rc && c.dst)
        remove(c.tmp);
    else if (!rc && cb)
        cb(&c.p, true, arg);
    return rc;
}
