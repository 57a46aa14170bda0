/*
 * walbuf.h - a SQLite VFS that gathers a transaction's WAL writes into one.
 *
 * SQLite writes each WAL frame as two system calls (its 24-byte header,
 * then the page): a commit of 10 pages is 20 pwrite(2)s, each costing more
 * here than copying its bytes. This VFS wraps the platform's and keeps
 * appends to a WAL file in memory until SQLite syncs it (every commit, with
 * synchronous=FULL), reads it, truncates it or writes elsewhere in it; then
 * they go out in one write. Nothing becomes durable later than before: the
 * sync is still the point of durability, and other connections see frames
 * only once a commit has indexed them, after its sync.
 */
#ifndef CW_WALBUF_H
#define CW_WALBUF_H

/* The VFS's name for sqlite3_open_v2(), registered on first use; NULL when it cannot be. */
const char *cw_walbuf_vfs(void);

#endif
