/*
 * envscan.h - a fast decoder for the common shape of a "cmd" message
 * (PROTOCOL.md, "WebSocket messages"):
 *
 *   ["cmd", CLIENT_ID, CLIENT_SEQ, {"name": NAME, "data": {...}, "meta": {...}|null}]
 *
 * It reads the text in one pass and builds jansson values only for data and
 * meta, and only when they are flat: members whose values are strings,
 * integers, true, false or null. Everything else is declined, not refused:
 * escapes in strings, non-integer or out-of-range numbers, nested values,
 * other keys in the command object, duplicate keys, a name longer than
 * CW_WIRE_NAME_SCAN_MAX, a CLIENT_ID or CLIENT_SEQ out of bounds, anything that is
 * not JSON. The caller then decodes the message with the full jansson parse,
 * which says exactly what is wrong, so every error stays as documented.
 *
 * What it accepts, the full parse accepts too, with the same values (keys in
 * the same order): tests/unit/test_envscan.c and tests/fuzz/fuzz_wire.c hold
 * the two side by side.
 *
 * Pure: no I/O, no globals. Thread: any.
 */
#ifndef CW_ENVSCAN_H
#define CW_ENVSCAN_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Scans len bytes of text. true: *out is filled as cw_wire_parse() fills it
 * for a command (type, client_id and name in its own buffers, has_seq,
 * client_seq, data, meta) with out->scanned set: out owns data and meta, and
 * cw_wire_msg_release() frees them. false: declined; *out holds nothing to
 * release and no field but the buffers changed (from a zeroed *out it is
 * still zeroed where the full parse looks), and the caller parses the text
 * the full way.
 */
bool cw_envscan_cmd(const char *text, size_t len, struct cw_client_msg *out);

#endif
