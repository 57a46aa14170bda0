/*
 * secret.c - load or create the secret key file (see secret.h).
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int create(const char *path, unsigned char key[CW_SECRET_LEN], struct cw_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot create %s: %s", path,
                            strerror(errno));
    randombytes_buf(key, CW_SECRET_LEN);
    ssize_t n = write(fd, key, CW_SECRET_LEN);
    int failed = n != CW_SECRET_LEN || fsync(fd) != 0;
    close(fd);
    if (failed) {
        unlink(path);
        return cw_error_set(err, CW_ERR_SYSTEM, NULL, "cannot write %s", path);
    }
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
