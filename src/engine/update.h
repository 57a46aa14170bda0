/*
 * update.h - committed events as they leave the engine, and the outcome of
 * each command.
 *
 * A struct cw_update is one committed event, serialised once as the whole
 * `["update", CLIENT_ID, CLIENT_SEQ, EVENT]` frame (private fields removed)
 * and shared by reference count by every connection that sends it.
 */
#ifndef CW_UPDATE_H
#define CW_UPDATE_H

#include "calderwood.h"

#include <stdatomic.h>

struct cw_domain;
struct cw_envelope;

struct cw_update {
    atomic_int refs;
    struct cw_event ev; /* strings owned; data and meta kept only for a custom audience */
    const struct cw_event_def *def; /* NULL for an event no longer defined */
    char *frame;                    /* the update frame, NUL-terminated; inside the update */
    size_t frame_len;
};

/*
 * Builds an update from ev (strings copied; data and meta referenced only
 * when the event's audience is custom, NULL otherwise). refs = 1.
 * data_text and meta_text, when not NULL, are ev's data and meta already
 * serialised (compact), so the frame is spliced together without encoding
 * them again.
 */
struct cw_update *cw_update_new(const struct cw_domain *d, const struct cw_event *ev,
                                const char *data_text, const char *meta_text);
/* As cw_update_new for a caller that holds ev's definition (NULL: none). */
struct cw_update *cw_update_of(const struct cw_event_def *def, const struct cw_event *ev,
                               const char *data_text, const char *meta_text);
struct cw_update *cw_update_ref(struct cw_update *u);
void cw_update_unref(struct cw_update *u);

/*
 * The EVENT object of PROTOCOL.md for ev, without its definition's private
 * fields. The result belongs to the caller.
 */
json_t *cw_event_to_json(const struct cw_event_def *def, const struct cw_event *ev);

/* Connections an outcome can name as having resent its command while it was queued. */
#define CW_OUTCOME_RESENT_BY 4

/* The outcome of one command, in the order the processor handled them. */
struct cw_outcome {
    struct cw_envelope *env;            /* owned */
    char command_uuid[CW_UUID_LEN + 1]; /* the original one for a duplicate */
    bool duplicate;
    bool rejected;
    struct cw_error reject;    /* code and message when rejected */
    struct cw_update **events; /* owned references, position order */
    size_t n_events;
    /* Gateway ids of the connections that resent it while in flight (0: none), set by the
     * gateway's bus filter before any gateway thread reads the batch. */
    uint64_t resent_by[CW_OUTCOME_RESENT_BY];
};

/* One committed batch. Events of non-duplicates are new; those of duplicates are resends. */
struct cw_outcome_batch {
    struct cw_outcome *items;
    size_t n;
    int64_t committed_at_us; /* monotonic */
    int64_t last_position;   /* the log's newest position once committed (0: not known) */
};

/*
 * An update from a frame another process made with cw_update_new (the
 * distributed update feed): the frame is kept as it is, not written again;
 * the event's fields are read from it. NULL when it is not such a frame.
 */
struct cw_update *cw_update_from_frame(const struct cw_domain *d, const char *frame, size_t len);
/*
 * The same when the event's fields came beside the frame (ev: strings
 * borrowed, data and meta unset): the frame is parsed only for an event of
 * a custom audience, the one kind whose data is read after commit.
 */
struct cw_update *cw_update_with_frame(const struct cw_domain *d, const struct cw_event *ev,
                                       const char *frame, size_t len);

void cw_outcome_release(struct cw_outcome *o);
void cw_outcome_batch_free(struct cw_outcome_batch *b);

#endif
