#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the sequence lead byte c starts, 0 when c cannot start one. */
static size_t seq_len(unsigned char c)
{
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

bool cw_utf8_valid(const void *s, size_t n)
{
    if (!n)
        return true; /* s may be NULL then */
    const unsigned char *p = s, *end = p + n;
    while (p < end) {
        /* Messages are mostly ASCII: skip it eight bytes at a time. */
        if (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (!(w & 0x8080808080808080ull)) {
                p += 8;
                continue;
            }
        }
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t len = seq_len(*p);
        if (!len || (size_t)(end - p) < len)
            return false;
        uint32_t cp = *p & (0x7f >> len);
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        p += len;
    }
    return true;
}
