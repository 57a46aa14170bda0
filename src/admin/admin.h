/*
 * admin.h - administration commands, from the operator to the processor.
 *
 * The CLI's writing subcommands (user add|passwd|disable|enable, session
 * end) are commands of the accounts domain (src/domain/admin.c). Whoever
 * owns the engine runs them: with no server on the data directory, the CLI
 * itself, under the directory's lock, with an engine of its own; with one,
 * the server, which listens for them on DATA/calderwood.sock and runs each
 * on its own engine, so its queue stays the only way to the writer and its
 * gateway sees every event (an ended session's sockets close at once).
 *
 * The socket speaks JSON Lines, one request per line (16 KiB at most,
 * newline included: a longer one is answered "too-large" and ends the
 * connection):
 *   {"command": NAME, "data": {...}}
 * each answered by one line once the command committed or was refused:
 *   {"ok": true, "command_uuid": U, "events": [EVENT...]}
 *   {"ok": false, "code": C, "message": M, "details": D?, "command_uuid": U?}
 * (command_uuid when it was queued and rejected; EVENT as PROTOCOL.md,
 * private fields left out). Only the socket file's owner or root may talk
 * to it: its mode is 0600 in a 0700 directory, and the peer's uid is
 * checked too. The peer's uid and pid go into each command's meta, so the
 * log says who did it: {"admin": {"uid", "pid", "via": "socket"|"local"}}.
 *
 * Ownership: arguments are borrowed unless a name says _take; answers
 * belong to the caller.
 */
#ifndef CW_ADMIN_H
#define CW_ADMIN_H

#include "calderwood.h"

#include <stdatomic.h>

struct cw_engine;
struct cw_domain;
struct cw_admin_server;

/* Longest request line, newline included. */
#define CW_ADMIN_MAX_LINE 16384

/* Longest answer line the client reads: an answer lists its command's events. */
#define CW_ADMIN_MAX_ANSWER (64 * 1024 * 1024)

/* The socket's file name inside the data directory. */
#define CW_ADMIN_SOCKET "calderwood.sock"

/* Is name one of the commands this path accepts? */
bool cw_admin_allowed(const char *name);

/*
 * Runs one administration command on e and returns its answer (never
 * NULL): checks it (cw_admin_allowed, declared fields, coerce), prepares it
 * on this thread (a password's hash), queues it as a system command with
 * meta and waits for its outcome, or until *stop (when stop is not NULL)
 * becomes true. Takes data and meta. Any thread but the processor's; the
 * engine's bus need not be read meanwhile.
 */
json_t *cw_admin_run_take(struct cw_engine *e, const struct cw_domain *d, const char *name,
                          json_t *data, json_t *meta, const atomic_bool *stop);

struct cw_envelope;

/*
 * What cw_admin_run_take does before queueing: checks and prepares the
 * command and makes its envelope (*out, the caller's: a system command
 * with a fresh client id "admin:UUID" and sequence 0). Returns NULL then,
 * or the refusal (and *out NULL). Takes data and meta. For a CLI that
 * queues the envelope itself (on JetStream, src/cli/admin_queue.c).
 */
json_t *cw_admin_envelope_take(const struct cw_domain *d, const char *name, json_t *data,
                               json_t *meta, struct cw_envelope **out);

/* {"ok": false, "code": code, "message": message}: an answer made before anything was queued. */
json_t *cw_admin_refusal(const char *code, const char *message);

/*
 * Listens on DATA/calderwood.sock (a stale file there is replaced: the
 * caller holds the data directory's lock) and serves each connection on a
 * thread of its own (8 at once at most), running its requests on e. e and
 * d are borrowed and must outlive the server. e NULL: a distributed server
 * (--queue nats://), which runs nothing and answers every request with
 * the code "distributed": its commands go through the queue, and the CLI
 * sends them there itself (--queue), waiting on the store for the outcome.
 */
int cw_admin_server_start(const char *data_dir, struct cw_engine *e, const struct cw_domain *d,
                          struct cw_admin_server **out, struct cw_error *err);

/*
 * Stops accepting, ends every connection (a request still waiting for its
 * outcome is answered that the server stopped), removes the socket file.
 * Call it once the engine drained, before closing it. Accepts NULL.
 */
void cw_admin_server_stop(struct cw_admin_server *s);

/*
 * The client's side: sends {"command": name, "data": data} to the server
 * of data_dir and waits for its answer (*answer, the caller's). Returns
 * CW_ERR_NOT_FOUND when no server listens there (no socket, or nobody
 * accepting on it), CW_ERR_SYSTEM when the connection fails after the
 * request was sent (its outcome is then unknown).
 */
int cw_admin_call(const char *data_dir, const char *name, const json_t *data, json_t **answer,
                  struct cw_error *err);

#endif
