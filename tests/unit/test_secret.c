/*
 * test_secret.c - the server's secret key file (src/auth/secret.h): made
 * on first load (0600, 32 random bytes; whole or not at all), read back
 * afterwards, and refused when its size is wrong or others may read it.
 */
#include "auth/secret.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

struct fixture {
    char dir[256];
    char path[320];
    struct cw_error err;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/cw-secret-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/secret.key", f->dir);
    umask(022);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!getenv("CW_TEST_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->dir);
    }
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void assert_message_has(struct fixture *f, const char *part)
{
    if (!strstr(f->err.message, part))
        fail_msg("message '%s' does not mention '%s'", f->err.message, part);
}

static void test_create_then_load(void **state)
{
    struct fixture *f = *state;
    unsigned char key[CW_SECRET_LEN], again[CW_SECRET_LEN];
    bool created = false;
    assert_int_equal(cw_secret_load(f->path, key, &created, &f->err), CW_OK);
    assert_true(created);

    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, CW_SECRET_LEN);

    /* The file holds exactly the key handed back. */
    unsigned char disk[CW_SECRET_LEN + 1];
    int fd = open(f->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, disk, sizeof(disk)), CW_SECRET_LEN);
    close(fd);
    assert_memory_equal(disk, key, CW_SECRET_LEN);

    /* Random, not a constant: not all one byte value. */
    bool varied = false;
    for (int i = 1; i < CW_SECRET_LEN; i++)
        varied |= key[i] != key[0];
    assert_true(varied);

    /* Second load: the same key, not created. */
    created = true;
    memset(again, 0, sizeof(again));
    assert_int_equal(cw_secret_load(f->path, again, &created, &f->err), CW_OK);
    assert_false(created);
    assert_memory_equal(again, key, CW_SECRET_LEN);

    /* created may be NULL. */
    memset(again, 0, sizeof(again));
    assert_int_equal(cw_secret_load(f->path, again, NULL, &f->err), CW_OK);
    assert_memory_equal(again, key, CW_SECRET_LEN);
}

static void test_keys_differ(void **state)
{
    struct fixture *f = *state;
    unsigned char a[CW_SECRET_LEN], b[CW_SECRET_LEN];
    char other[340];
    snprintf(other, sizeof(other), "%s/other.key", f->dir);
    assert_int_equal(cw_secret_load(f->path, a, NULL, &f->err), CW_OK);
    assert_int_equal(cw_secret_load(other, b, NULL, &f->err), CW_OK);
    assert_memory_not_equal(a, b, CW_SECRET_LEN);
}

static void test_create_ignores_permissive_umask(void **state)
{
    struct fixture *f = *state;
    umask(0);
    unsigned char key[CW_SECRET_LEN];
    bool created = false;
    int rc = cw_secret_load(f->path, key, &created, &f->err);
    umask(022);
    assert_int_equal(rc, CW_OK);
    assert_true(created);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_existing_key_is_read(void **state)
{
    struct fixture *f = *state;
    unsigned char want[CW_SECRET_LEN], key[CW_SECRET_LEN];
    for (int i = 0; i < CW_SECRET_LEN; i++)
        want[i] = (unsigned char)(i * 7 + 1);
    write_file(f->path, want, CW_SECRET_LEN, 0600);
    bool created = true;
    assert_int_equal(cw_secret_load(f->path, key, &created, &f->err), CW_OK);
    assert_false(created);
    assert_memory_equal(key, want, CW_SECRET_LEN);

    /* Owner-only modes other than 0600 are fine too. */
    write_file(f->path, want, CW_SECRET_LEN, 0400);
    memset(key, 0, sizeof(key));
    assert_int_equal(cw_secret_load(f->path, key, NULL, &f->err), CW_OK);
    assert_memory_equal(key, want, CW_SECRET_LEN);
}

static void test_wrong_size(void **state)
{
    struct fixture *f = *state;
    unsigned char data[64] = {1};
    unsigned char key[CW_SECRET_LEN];
    const size_t sizes[] = {0, 1, CW_SECRET_LEN - 1, CW_SECRET_LEN + 1, 64};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        write_file(f->path, data, sizes[i], 0600);
        memset(&f->err, 0, sizeof(f->err));
        bool created = true;
        assert_int_equal(cw_secret_load(f->path, key, &created, &f->err), CW_ERR_INVALID);
        assert_false(created);
        assert_message_has(f, f->path);
        assert_message_has(f, "exactly 32 bytes");
        /* Refused, not replaced. */
        struct stat sb;
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal(sb.st_size, (off_t)sizes[i]);
    }
}

static void test_readable_by_others(void **state)
{
    struct fixture *f = *state;
    unsigned char data[CW_SECRET_LEN] = {9};
    unsigned char key[CW_SECRET_LEN];
    const struct {
        mode_t mode;
        const char *shown;
    } modes[] = {
        {0640, "mode 640"}, {0604, "mode 604"}, {0644, "mode 644"},
        {0660, "mode 660"}, {0666, "mode 666"}, {0444, "mode 444"},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        write_file(f->path, data, sizeof(data), modes[i].mode);
        memset(&f->err, 0, sizeof(f->err));
        assert_int_equal(cw_secret_load(f->path, key, NULL, &f->err), CW_ERR_INVALID);
        assert_message_has(f, f->path);
        assert_message_has(f, "readable by others");
        assert_message_has(f, modes[i].shown);
        assert_message_has(f, "chmod 600");
        /* The file is left as it was. */
        struct stat sb;
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, modes[i].mode);
    }
}

/*
 * A first start killed while making the key left PATH.new, perhaps short;
 * PATH itself never exists in part. The next start makes a whole key and
 * leaves no PATH.new behind.
 */
static void test_stale_partial_new_file(void **state)
{
    struct fixture *f = *state;
    char tmp[400];
    snprintf(tmp, sizeof(tmp), "%s.new", f->path);
    write_file(tmp, "short", 5, 0644);
    unsigned char key[CW_SECRET_LEN], again[CW_SECRET_LEN];
    bool created = false;
    assert_int_equal(cw_secret_load(f->path, key, &created, &f->err), CW_OK);
    assert_true(created);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_size, CW_SECRET_LEN);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_not_equal(stat(tmp, &sb), 0);
    assert_int_equal(cw_secret_load(f->path, again, &created, &f->err), CW_OK);
    assert_false(created);
    assert_memory_equal(key, again, CW_SECRET_LEN);
}

static void test_missing_directory(void **state)
{
    struct fixture *f = *state;
    char path[400];
    snprintf(path, sizeof(path), "%s/no-such-dir/secret.key", f->dir);
    unsigned char key[CW_SECRET_LEN];
    bool created = true;
    int rc = cw_secret_load(path, key, &created, &f->err);
    assert_int_not_equal(rc, CW_OK);
    assert_false(created);
    assert_message_has(f, path);
    /* Nothing was made on the way. */
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/no-such-dir", f->dir);
    struct stat sb;
    assert_int_not_equal(stat(dir, &sb), 0);
}

static void test_path_is_directory(void **state)
{
    struct fixture *f = *state;
    unsigned char key[CW_SECRET_LEN];
    assert_int_not_equal(cw_secret_load(f->dir, key, NULL, &f->err), CW_OK);
    assert_message_has(f, f->dir);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_then_load),
        T(test_keys_differ),
        T(test_create_ignores_permissive_umask),
        T(test_existing_key_is_read),
        T(test_wrong_size),
        T(test_readable_by_others),
        T(test_stale_partial_new_file),
        T(test_missing_directory),
        T(test_path_is_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
