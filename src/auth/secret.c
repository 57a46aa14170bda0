/*
 * secret.c - load or create the secret key file (see secret.h).
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes the rename or link of a file in path's directory durable. */
static void sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * The key is written whole to PATH.new, synced, and only then linked as
 * PATH: a process killed while making it (on its first start) leaves no
 * short key file that every later start would refuse. A PATH.new left by
 * such a kill is overwritten. link() fails when PATH appeared meanwhile;
 * the data directory's lock keeps two servers from making keys at once.
 */
static int create(const char *path, unsigned char key[CW_SECRET_LEN], struct cw_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        return cw_error_set(err, CW_ERR_INVALID, NULL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot create %s: %s", tmp, strerror(errno));
    randombytes_buf(key, CW_SECRET_LEN);
    ssize_t n = write(fd, key, CW_SECRET_LEN);
    int failed = n != CW_SECRET_LEN || fchmod(fd, 0600) != 0 || fsync(fd) != 0;
    close(fd);
    if (!failed && link(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot create %s: %s", path, strerror(e));
    }
    unlink(tmp);
    if (failed)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot write %s", tmp);
    sync_dir(path);
    return CW_OK;
}

int cw_secret_load(const char *path, unsigned char key[CW_SECRET_LEN], bool *created,
                   struct cw_error *err)
{
    if (sodium_init() < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "libsodium failed to initialise");
    if (created)
        *created = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int rc = create(path, key, err);
        if (!rc && created)
            *created = true;
        return rc;
    }
    if (fd < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot read %s: %s", path, strerror(errno));
    struct stat sb;
    int rc = CW_OK;
    if (fstat(fd, &sb) != 0 || sb.st_size != CW_SECRET_LEN)
        rc = cw_error_set(err, CW_ERR_INVALID, NULL, "%s must hold exactly %d bytes", path,
                          CW_SECRET_LEN);
    else if (sb.st_mode & 077)
        rc = cw_error_set(err, CW_ERR_INVALID, NULL,
                          "%s is readable by others (mode %03o): chmod 600 it", path,
                          (unsigned)(sb.st_mode & 0777));
    else if (read(fd, key, CW_SECRET_LEN) != CW_SECRET_LEN)
        rc = cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot read %s", path);
    close(fd);
    return rc;
}
