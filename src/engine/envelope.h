/*
 * envelope.h - a command on its way through the engine: the public
 * struct cw_command plus what the engine needs to route its outcome.
 *
 * An envelope is created by whoever submits the command (the gateway, the
 * CLI, a test), owned by the queue while queued, by the processor while
 * processed, and then by the outcome that carries it to the update bus.
 */
#ifndef CW_ENVELOPE_H
#define CW_ENVELOPE_H

#include "calderwood.h"

struct cw_outcome;

/*
 * A submitter's own notice of the outcome, for one that is not the update
 * bus's subscriber (the admin socket). Runs exactly once per envelope that
 * has it: on the processor thread with the committed outcome (borrowed),
 * before the outcome goes to the bus; or with NULL when the envelope is
 * freed without one (refused by the queue, or abandoned at shutdown). Must
 * not block.
 */
typedef void (*cw_envelope_done_cb)(const struct cw_outcome *o, void *arg);

struct cw_envelope {
    struct cw_command cmd; /* name is def's; client_id points at the copy below */
    const struct cw_command_def *def;
    uint64_t origin;          /* opaque to the engine: the submitter's connection id */
    uint64_t node;            /* the process that holds origin, in distributed mode; 0: this one */
    cw_envelope_done_cb done; /* optional: set by the submitter after cw_envelope_new */
    void *done_arg;
    char client_id[]; /* allocated with the envelope */
};

/*
 * Makes an envelope with a new UUIDv7 and received_at = now. Copies the
 * strings; takes ownership of data and meta (meta may be NULL: an empty
 * object is used). user_uuid may be "" for system commands.
 */
struct cw_envelope *cw_envelope_new(const struct cw_command_def *def, const char *user_uuid,
                                    const char *client_id, int64_t client_seq, json_t *data,
                                    json_t *meta, uint64_t origin);
void cw_envelope_free(struct cw_envelope *env);

#endif
