/*
 * cookie.c - sealing and opening the session cookie, and finding it in a
 * Cookie header (see cookie.h).
 *
 * Called by the gateway: seal at login, find + open on every request that
 * needs a session. Opening only proves the value was made with our key; it
 * does not say whether the session still exists or has ended: the caller
 * asks the session table for that.
 */
#include "cookie.h"
#include "secret.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#define UUID_BYTES  16
#define SEALED_LEN  (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + UUID_BYTES)
#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

_Static_assert(CW_SECRET_LEN == crypto_secretbox_KEYBYTES, "secret key is a secretbox key");
_Static_assert(sodium_base64_ENCODED_LEN(SEALED_LEN, B64_VARIANT) == CW_COOKIE_VALUE_LEN + 1,
               "CW_COOKIE_VALUE_LEN matches the sealed size");
_Static_assert(CW_COOKIE_VALUE_LEN < CW_COOKIE_VALUE_MAX, "a value fits its buffer");

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Canonical 8-4-4-4-12 text (either case) to 16 bytes; false if it is not that. */
static bool uuid_to_bytes(const char *s, unsigned char out[UUID_BYTES])
{
    size_t j = 0;
    for (int i = 0; i < CW_UUID_LEN; i += 2) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
        }
        int hi = hexval(s[i]), lo = hi < 0 ? -1 : hexval(s[i + 1]);
        if (lo < 0)
            return false;
        out[j++] = (unsigned char)(hi << 4 | lo);
    }
    return j == UUID_BYTES && s[CW_UUID_LEN] == '\0';
}

static void uuid_to_text(const unsigned char b[UUID_BYTES], char out[CW_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < UUID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0xf];
    }
    *p = '\0';
}

void cw_cookie_seal(const unsigned char key[32], const char session_uuid[CW_UUID_LEN + 1],
                    char out[CW_COOKIE_VALUE_MAX])
{
    unsigned char plain[UUID_BYTES], sealed[SEALED_LEN];

    out[0] = '\0';
    bool ok = uuid_to_bytes(session_uuid, plain);
    assert(ok && "cw_cookie_seal: session_uuid must be a canonical UUID");
    if (!ok || sodium_init() < 0)
        return;
    randombytes_buf(sealed, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(sealed + crypto_secretbox_NONCEBYTES, plain, UUID_BYTES, sealed, key);
    sodium_bin2base64(out, CW_COOKIE_VALUE_MAX, sealed, SEALED_LEN, B64_VARIANT);
}

/*
 * Is every byte of s[0..n) in the url-safe base64 alphabet? Checked before
 * sodium_base642bin: libsodium 1.0.18 decodes some bytes >= 0x80 (it passes a
 * signed char to its constant-time table) as alphabet characters, which
 * would let a changed value open.
 */
static bool b64url_alphabet(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int cw_cookie_open(const unsigned char key[32], const char *value, size_t len,
                   char session_uuid[CW_UUID_LEN + 1])
{
    unsigned char sealed[SEALED_LEN], plain[UUID_BYTES];
    size_t bin_len = 0;
    const char *end = NULL;

    session_uuid[0] = '\0';
    /* The length check comes first: nothing longer is ever decoded. */
    if (!value || len != CW_COOKIE_VALUE_LEN || !b64url_alphabet(value, len) || sodium_init() < 0)
        return CW_ERR_UNAUTHORIZED;
    int rc =
        sodium_base642bin(sealed, sizeof(sealed), value, len, NULL, &bin_len, &end, B64_VARIANT);
    if (rc != 0 || end != value + len || bin_len != SEALED_LEN)
        return CW_ERR_UNAUTHORIZED;
    if (crypto_secretbox_open_easy(plain, sealed + crypto_secretbox_NONCEBYTES,
                                   SEALED_LEN - crypto_secretbox_NONCEBYTES, sealed, key) != 0)
        return CW_ERR_UNAUTHORIZED;
    uuid_to_text(plain, session_uuid);
    return CW_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

int cw_cookie_find(const char *header, const char *name, const char **value, size_t *len)
{
    if (!header || !name)
        return CW_ERR_NOT_FOUND;
    size_t name_len = strlen(name);
    const char *p = header;
    while (*p) {
        /* One pair: p .. semicolon (or the end). */
        const char *pair_end = strchr(p, ';');
        if (!pair_end)
            pair_end = p + strlen(p);
        while (p < pair_end && is_space(*p))
            p++;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        if (eq) {
            const char *name_end = eq;
            while (name_end > p && is_space(name_end[-1]))
                name_end--;
            if ((size_t)(name_end - p) == name_len && memcmp(p, name, name_len) == 0) {
                const char *v = eq + 1, *v_end = pair_end;
                while (v < v_end && is_space(*v))
                    v++;
                while (v_end > v && is_space(v_end[-1]))
                    v_end--;
                *value = v;
                *len = (size_t)(v_end - v);
                return CW_OK;
            }
        }
        p = *pair_end ? pair_end + 1 : pair_end;
    }
    return CW_ERR_NOT_FOUND;
}
