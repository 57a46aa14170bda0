#include "walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PENDING (4 << 20) /* bytes held before they are written anyway */

struct wb_file {
    sqlite3_file base;
    sqlite3_file *real; /* the platform's file, in the memory after this struct */
    bool wal;
    /* appends not yet written: bytes [at, at + len) of the file */
    unsigned char *pending;
    size_t len, cap;
    sqlite3_int64 at;
};

static sqlite3_vfs *parent;
static sqlite3_vfs vfs;
static const char *vfs_name;

#define REAL(f) (((struct wb_file *)(f))->real)

/*
 * Writes what is held; SQLite's error code when that fails. In pieces: the
 * unix VFS masks a write's length to 17 bits (and calls a write of a
 * multiple of 128 KiB a full disk).
 */
#define WRITE_PIECE (124 * 1024)

static int flush(struct wb_file *f)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WRITE_PIECE) {
        size_t n = f->len - done < WRITE_PIECE ? f->len - done : WRITE_PIECE;
        rc = f->real->pMethods->xWrite(f->real, f->pending + done, (int)n,
                                       f->at + (sqlite3_int64)done);
    }
    f->len = 0;
    return rc;
}

static int wb_close(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->pending);
    f->pending = NULL;
    return rc ? rc : rc2;
}

static bool overlaps(const struct wb_file *f, sqlite3_int64 off, int n)
{
    return f->len && off < f->at + (sqlite3_int64)f->len && f->at < off + n;
}

static int wb_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)file;
    if (overlaps(f, off, n)) {
        int rc = flush(f);
        if (rc)
            return rc;
    }
    return f->real->pMethods->xRead(f->real, buf, n, off);
}

static int wb_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)file;
    if (!f->wal)
        return f->real->pMethods->xWrite(f->real, buf, n, off);
    if (f->len && (off != f->at + (sqlite3_int64)f->len || f->len + (size_t)n > MAX_PENDING)) {
        int rc = flush(f);
        if (rc)
            return rc;
    }
    if ((size_t)n > WRITE_PIECE)
        return f->real->pMethods->xWrite(f->real, buf, n, off);
    if (f->len + (size_t)n > f->cap) {
        size_t cap = f->cap ? f->cap : 64 * 1024;
        while (cap < f->len + (size_t)n)
            cap *= 2;
        unsigned char *p = realloc(f->pending, cap);
        if (!p) { /* no memory to gather in: write as SQLite asked */
            int rc = flush(f);
            return rc ? rc : f->real->pMethods->xWrite(f->real, buf, n, off);
        }
        f->pending = p;
        f->cap = cap;
    }
    if (!f->len)
        f->at = off;
    memcpy(f->pending + f->len, buf, (size_t)n);
    f->len += (size_t)n;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    int rc = flush((struct wb_file *)file);
    return rc ? rc : REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int wb_sync(sqlite3_file *file, int flags)
{
    int rc = flush((struct wb_file *)file);
    return rc ? rc : REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    int rc = flush((struct wb_file *)file);
    return rc ? rc : REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int wb_file_control(sqlite3_file *file, int op, void *arg)
{
    int rc = flush((struct wb_file *)file);
    if (rc)
        return rc;
    if (op == SQLITE_FCNTL_VFSNAME) { /* ours, then the platform's */
        rc = REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
        if (rc == SQLITE_OK)
            *(char **)arg = sqlite3_mprintf("%s/%z", vfs_name, *(char **)arg);
        return rc;
    }
    return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

/* The rest pass straight through (the optional ones only when the platform's file has them). */
#define HAS(f, m) (REAL(f)->pMethods->iVersion >= 3 && REAL(f)->pMethods->m)
static int wb_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int wb_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int wb_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int wb_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int wb_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int wb_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p)
{
    return HAS(f, xShmMap) ? REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, p)
                           : SQLITE_IOERR_SHMMAP;
}
static int wb_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return HAS(f, xShmLock) ? REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags)
                            : SQLITE_IOERR_SHMLOCK;
}
static void wb_shm_barrier(sqlite3_file *f)
{
    if (HAS(f, xShmBarrier))
        REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int wb_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return HAS(f, xShmUnmap) ? REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag) : SQLITE_OK;
}
static int wb_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    int rc = flush((struct wb_file *)f);
    *pp = NULL; /* no mapping: SQLite reads instead */
    return rc || !HAS(f, xFetch) ? rc : REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int wb_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return HAS(f, xUnfetch) ? REAL(f)->pMethods->xUnfetch(REAL(f), off, p) : SQLITE_OK;
}

static const sqlite3_io_methods methods = {
    3,
    wb_close,
    wb_read,
    wb_write,
    wb_truncate,
    wb_sync,
    wb_file_size,
    wb_lock,
    wb_unlock,
    wb_check_reserved,
    wb_file_control,
    wb_sector_size,
    wb_device_characteristics,
    wb_shm_map,
    wb_shm_lock,
    wb_shm_barrier,
    wb_shm_unmap,
    wb_fetch,
    wb_unfetch,
};

static int wb_open(sqlite3_vfs *v, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    struct wb_file *f = (struct wb_file *)file;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    f->wal = flags & SQLITE_OPEN_WAL;
    int rc = parent->xOpen(parent, name, f->real, flags, out_flags);
    /* On failure SQLite calls no method of ours; on success every call comes here first. */
    f->base.pMethods = rc == SQLITE_OK ? &methods : NULL;
    return rc;
}

static void setup(void)
{
    parent = sqlite3_vfs_find(NULL);
    if (!parent)
        return;
    vfs = *parent;
    vfs.zName = "cw-walbuf";
    vfs.szOsFile = (int)(sizeof(struct wb_file) + (size_t)parent->szOsFile);
    vfs.xOpen = wb_open;
    vfs.pNext = NULL;
    if (sqlite3_vfs_register(&vfs, 0) == SQLITE_OK)
        vfs_name = vfs.zName;
}

const char *cw_walbuf_vfs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, setup);
    return vfs_name;
}
