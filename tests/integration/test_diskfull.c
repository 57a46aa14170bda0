/*
 * test_diskfull.c - the store on a full disk, below the processor: a small
 * tmpfs (mounting needs root; without it the test prints why and is
 * skipped) filled while transactions commit and the background
 * checkpointer copies the WAL back. Each commit the disk refuses is
 * CW_ERR_AGAIN with the code "disk-full" and changes nothing; readers still
 * read; once space is freed the same transaction commits from a fresh
 * BEGIN, and the checkpointer has survived: far more is written than the
 * tmpfs holds, which only fits if the WAL keeps restarting. The database
 * passes PRAGMA integrity_check.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#define TMPFS_SIZE  "64m"
#define FILLER_SIZE (48 << 20)
#define ROWS        4 /* per transaction, 16 KiB each */

/* Writes size bytes to path, or fewer when the disk is full first. */
static void write_filler(const char *path, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char chunk[1 << 16];
    memset(chunk, 0x5a, sizeof(chunk));
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, chunk, sizeof(chunk));
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
}

/*
 * One transaction as the processor runs it: ROWS rows in, all but the
 * newest 8 out, (one kept row when keep), commit, then the checkpoint tail.
 */
static int write_batch(struct cw_store *s, bool keep, struct cw_error *err)
{
    struct cw_db *w = cw_store_writer(s);
    int rc = cw_db_begin(w, err);
    for (int i = 0; !rc && i < ROWS; i++)
        rc = cw_db_exec(w, err, "INSERT INTO blobs(b) VALUES (randomblob(16384))", "");
    if (!rc && keep)
        rc = cw_db_exec(w, err, "INSERT INTO kept(b) VALUES (randomblob(16384))", "");
    if (!rc)
        rc =
            cw_db_exec(w, err, "DELETE FROM blobs WHERE id <= (SELECT MAX(id) FROM blobs) - 8", "");
    if (!rc)
        rc = cw_db_commit(w, err);
    if (rc)
        cw_db_rollback(w);
    else
        cw_store_finish_checkpoint(s);
    return rc;
}

static int64_t rows_seen(struct cw_db *reader, const char *table)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    struct cw_error err = {0};
    int64_t n = -1;
    if (cw_db_query_int(reader, &n, &err, sql, ""))
        fail_msg("reader: %s", err.message);
    return n;
}

struct fixture {
    char dir[64];
    struct cw_store *s;
    struct cw_db *reader;
};

/* Mounts the tmpfs; skips (saying why) when that is not allowed. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cw-diskfull-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (mount("tmpfs", f->dir, "tmpfs", 0, "size=" TMPFS_SIZE ",mode=0700")) {
        printf("skipped: cannot mount tmpfs (%s)\n", strerror(errno));
        rmdir(f->dir);
        f->dir[0] = '\0';
    }
    *state = f;
    return 0;
}

/* Unmounts whatever happened, so a failing run leaves no mount behind. */
static int teardown(void **state)
{
    struct fixture *f = *state;
    cw_db_close(f->reader);
    cw_store_close(f->s);
    int rc = 0;
    if (f->dir[0] && (umount(f->dir) || rmdir(f->dir)))
        rc = -1;
    free(f);
    return rc;
}

static void test_full_then_freed(void **state)
{
    struct fixture *f = *state;
    if (!f->dir[0])
        skip();
    char db_path[300], filler[300];
    snprintf(db_path, sizeof(db_path), "%s/calderwood.db", f->dir);
    snprintf(filler, sizeof(filler), "%s/filler", f->dir);
    struct cw_error err = {0};
    struct cw_store_options opt = {.checkpoint_frames = 16};
    assert_int_equal(cw_store_open(db_path, &opt, &f->s, &err), CW_OK);
    struct cw_store *s = f->s;
    assert_int_equal(cw_store_migrate(s, NULL, NULL, &err), CW_OK);
    assert_int_equal(cw_db_exec(cw_store_writer(s), &err,
                                "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB NOT NULL)", ""),
                     CW_OK);
    assert_int_equal(cw_db_exec(cw_store_writer(s), &err, "CREATE TABLE kept(b BLOB NOT NULL)", ""),
                     CW_OK);
    assert_int_equal(cw_store_reader_open(s, &f->reader, &err), CW_OK);
    write_filler(filler, FILLER_SIZE);

    /* Until the disk refuses; kept rows make the database file itself grow. */
    int rc = CW_OK, failed = 0;
    for (int i = 0; i < 100000 && !rc; i++) {
        cw_error_release(&err);
        rc = write_batch(s, true, &err);
    }
    assert_int_equal(rc, CW_ERR_AGAIN);
    assert_string_equal(err.code, CW_STORE_DISK_FULL);
    /*
     * More attempts: each refused one is disk-full and changes nothing (one
     * may fit, in WAL space a checkpoint freed meanwhile).
     */
    for (int i = 0; i < 20; i++) {
        int64_t kept = rows_seen(f->reader, "kept");
        cw_error_release(&err);
        if (!write_batch(s, true, &err))
            continue;
        failed++;
        assert_string_equal(err.code, CW_STORE_DISK_FULL);
        assert_int_equal(rows_seen(f->reader, "kept"), kept);
    }
    assert_true(failed > 10);

    /*
     * Space returns: the next transaction commits, then more than twice the
     * tmpfs's size, which fits only while the checkpointer keeps copying the
     * WAL back so that it restarts. As in the processor, the writer finishes
     * the checkpoint between batches; on a busy machine the checkpointer can
     * still fall behind and the WAL fill the disk for a moment, so a refused
     * batch is tried again (as the processor would) for up to a minute.
     */
    int64_t kept = rows_seen(f->reader, "kept");
    assert_int_equal(unlink(filler), 0);
    for (int i = 0; i < 2000; i++) {
        int rc_batch = CW_ERR_AGAIN;
        for (int tries = 0; rc_batch == CW_ERR_AGAIN && tries < 600; tries++) {
            if (tries)
                nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
            cw_error_release(&err);
            rc_batch = write_batch(s, false, &err);
            cw_store_finish_checkpoint(s);
        }
        if (rc_batch) {
            struct stat a, b;
            char wal[320];
            snprintf(wal, sizeof(wal), "%s-wal", db_path);
            stat(db_path, &a);
            stat(wal, &b);
            fail_msg("batch %d after space returned: %s (db %lld, wal %lld bytes)", i, err.message,
                     (long long)a.st_size, (long long)b.st_size);
        }
    }
    assert_int_equal(rows_seen(f->reader, "kept"), kept);
    assert_int_equal(rows_seen(f->reader, "blobs"), 8);
    json_t *rows = NULL;
    assert_int_equal(
        cw_db_query_json(cw_store_writer(s), &rows, &err, "PRAGMA integrity_check", ""), CW_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rows, 0), "integrity_check")), "ok");
    json_decref(rows);
    cw_error_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_then_freed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
