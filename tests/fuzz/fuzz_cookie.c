/*
 * fuzz_cookie.c - libFuzzer target for the session cookie (src/auth/cookie.h).
 *
 * Each input is tried as a cookie value (cw_cookie_open under a fixed key)
 * and as a whole Cookie header (cw_cookie_find, then opening what it found).
 * What opens must be a canonical UUID that seals and opens again. Run by
 * `make fuzz`; seeds in tests/fuzz/corpus/cookie/ (the valid ones sealed
 * under the key below: bytes 0, 1, ..., 31).
 */
#include "auth/cookie.h"

#include <stdlib.h>
#include <string.h>

static unsigned char key[32];

static void check_uuid(const char *uuid)
{
    if (strlen(uuid) != CW_UUID_LEN)
        abort();
    for (int i = 0; i < CW_UUID_LEN; i++) {
        char c = uuid[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            abort();
    }
    char value[CW_COOKIE_VALUE_MAX], again[CW_UUID_LEN + 1];
    cw_cookie_seal(key, uuid, value);
    if (cw_cookie_open(key, value, strlen(value), again) != CW_OK || strcmp(again, uuid) != 0)
        abort();
}

static void try_open(const char *value, size_t len)
{
    char uuid[CW_UUID_LEN + 1];
    int rc = cw_cookie_open(key, value, len, uuid);
    if (rc == CW_OK)
        check_uuid(uuid);
    else if (rc != CW_ERR_UNAUTHORIZED || uuid[0] != '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;

    try_open((const char *)data, size);

    /* As a header: NUL-terminated, so it ends at the first NUL byte. */
    char *header = malloc(size + 1);
    if (!header)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    const char *v;
    size_t len;
    if (cw_cookie_find(header, CW_COOKIE_NAME, &v, &len) == CW_OK) {
        if (v < header || v + len > header + strlen(header))
            abort();
        try_open(v, len);
    } else if (strstr(header, CW_COOKIE_NAME "=") == header) {
        abort(); /* a header that starts with the pair must find it */
    }
    free(header);
    return 0;
}
