/*
 * update.c - committed events serialised once for every receiver, and
 * command outcomes (see update.h).
 */
#include "update.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/registry.h"
#include "envelope.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static json_t *public_data(const struct cw_event_def *def, json_t *data)
{
    if (!def || !def->private_fields || !json_is_object(data))
        return json_incref(data);
    json_t *copy = json_copy(data);
    for (const char *const *f = def->private_fields; *f; f++)
        json_object_del(copy, *f);
    return copy;
}

json_t *cw_event_to_json(const struct cw_event_def *def, const struct cw_event *ev)
{
    json_t *o = json_object();
    json_object_set_new(o, "position", json_integer(ev->position));
    json_object_set_new(o, "uuid", json_string(ev->uuid));
    json_object_set_new(o, "command_uuid", json_string(ev->command_uuid));
    json_object_set_new(o, "name", json_string(ev->name));
    json_object_set_new(o, "data", public_data(def, ev->data));
    json_object_set_new(o, "meta", ev->meta ? json_incref(ev->meta) : json_object());
    json_object_set_new(o, "user_uuid",
                        ev->user_uuid && *ev->user_uuid ? json_string(ev->user_uuid) : json_null());
    json_object_set_new(o, "client_id", ev->client_id ? json_string(ev->client_id) : json_null());
    json_object_set_new(o, "client_seq", json_integer(ev->client_seq));
    json_object_set_new(o, "recorded_at", json_integer(ev->recorded_at));
    json_object_set_new(o, "version", json_integer(ev->version));
    return o;
}

/* Appends s as a JSON string, or null. */
static void add_string_or_null(struct cw_buf *b, const char *s)
{
    if (s)
        cw_json_add_string(b, s, strlen(s));
    else
        cw_buf_adds(b, "null");
}

/*
 * Writes the update frame, key for key as cw_event_to_json orders them, into
 * b. data_text is the public data (private fields already removed).
 */
static void write_frame(struct cw_buf *b, const struct cw_event *ev, const char *data_text,
                        const char *meta_text)
{
    cw_buf_adds(b, "[\"update\",");
    add_string_or_null(b, ev->client_id);
    cw_buf_addc(b, ',');
    cw_buf_add_int(b, ev->client_seq);
    cw_buf_adds(b, ",{\"position\":");
    cw_buf_add_int(b, ev->position);
    cw_buf_adds(b, ",\"uuid\":");
    add_string_or_null(b, ev->uuid);
    cw_buf_adds(b, ",\"command_uuid\":");
    add_string_or_null(b, ev->command_uuid);
    cw_buf_adds(b, ",\"name\":");
    add_string_or_null(b, ev->name);
    cw_buf_adds(b, ",\"data\":");
    cw_buf_adds(b, data_text);
    cw_buf_adds(b, ",\"meta\":");
    cw_buf_adds(b, meta_text);
    cw_buf_adds(b, ",\"user_uuid\":");
    add_string_or_null(b, ev->user_uuid && *ev->user_uuid ? ev->user_uuid : NULL);
    cw_buf_adds(b, ",\"client_id\":");
    add_string_or_null(b, ev->client_id);
    cw_buf_adds(b, ",\"client_seq\":");
    cw_buf_add_int(b, ev->client_seq);
    cw_buf_adds(b, ",\"recorded_at\":");
    cw_buf_add_int(b, ev->recorded_at);
    cw_buf_adds(b, ",\"version\":");
    cw_buf_add_int(b, ev->version);
    cw_buf_adds(b, "}]");
}

/* Copies s to *at and advances it; NULL stays NULL. */
static const char *pack(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*at, s, n);
    *at += n;
    return *at - n;
}

static size_t size_of(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void free_scratch(void *b)
{
    cw_buf_release(b);
    free(b);
}

static void make_scratch_key(void)
{
    if (pthread_key_create(&scratch_key, free_scratch))
        abort();
}

/*
 * The calling thread's frame buffer, kept between calls: a frame is written
 * there and copied out at its size, instead of into a buffer allocated,
 * grown and trimmed for each event.
 */
static struct cw_buf *scratch(void)
{
    pthread_once(&scratch_once, make_scratch_key);
    struct cw_buf *b = pthread_getspecific(scratch_key);
    if (!b) {
        b = cw_xcalloc(1, sizeof(*b));
        pthread_setspecific(scratch_key, b);
    }
    return b;
}

static struct cw_update *assemble(const struct cw_event_def *def, const struct cw_event *ev,
                                  const char *frame, size_t frame_len);

struct cw_update *cw_update_new(const struct cw_domain *d, const struct cw_event *ev,
                                const char *data_text, const char *meta_text)
{
    return cw_update_of(cw_domain_event(d, ev->name), ev, data_text, meta_text);
}

struct cw_update *cw_update_of(const struct cw_event_def *def, const struct cw_event *ev,
                               const char *data_text, const char *meta_text)
{
    struct cw_buf data_buf = CW_BUF_INIT, meta_buf = CW_BUF_INIT;
    if (!data_text || (def && def->private_fields)) {
        json_t *pub = public_data(def, ev->data);
        cw_json_add(&data_buf, pub);
        json_decref(pub);
        data_text = cw_buf_cstr(&data_buf);
    }
    if (!meta_text) {
        if (ev->meta)
            cw_json_add(&meta_buf, ev->meta);
        else
            cw_buf_adds(&meta_buf, "{}");
        meta_text = cw_buf_cstr(&meta_buf);
    }
    struct cw_buf *frame = scratch();
    cw_buf_reset(frame);
    write_frame(frame, ev, data_text, meta_text);
    cw_buf_release(&data_buf);
    cw_buf_release(&meta_buf);
    return assemble(def, ev, frame->data, frame->len);
}

/*
 * One allocation holds the update, its copies of ev's strings and the
 * frame: the receiving thread frees it with one free().
 */
static struct cw_update *assemble(const struct cw_event_def *def, const struct cw_event *ev,
                                  const char *frame, size_t frame_len)
{
    size_t strings = size_of(ev->uuid) + size_of(ev->command_uuid) + size_of(ev->name) +
                     size_of(ev->user_uuid) + size_of(ev->client_id);
    struct cw_update *u = cw_xmalloc(sizeof(*u) + strings + frame_len + 1);
    char *at = (char *)(u + 1);
    atomic_init(&u->refs, 1);
    u->def = def;
    u->ev = *ev;
    u->ev.uuid = pack(&at, ev->uuid);
    u->ev.command_uuid = pack(&at, ev->command_uuid);
    u->ev.name = pack(&at, ev->name);
    u->ev.user_uuid = pack(&at, ev->user_uuid);
    u->ev.client_id = pack(&at, ev->client_id);
    /* Only a custom audience reads the data after commit; others let it go now. */
    bool keep = def && def->audience == CW_AUDIENCE_CUSTOM;
    u->ev.data = keep ? json_incref(ev->data) : NULL;
    u->ev.meta = keep ? json_incref(ev->meta) : NULL;
    u->frame = at;
    u->frame_len = frame_len;
    memcpy(u->frame, frame, frame_len);
    u->frame[frame_len] = '\0';
    return u;
}

struct cw_update *cw_update_from_frame(const struct cw_domain *d, const char *frame, size_t len)
{
    json_t *f = json_loadb(frame, len, 0, NULL);
    json_t *e = json_array_get(f, 3);
    struct cw_event ev = {0};
    json_int_t pos = 0, seq = 0, at = 0, version = 0;
    const char *user = NULL, *cid = NULL;
    /* user_uuid and client_id may be null: read apart, as unpack has no nullable string. */
    if (!e ||
        json_unpack(e, "{s:I,s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I}", "position", &pos, "uuid", &ev.uuid,
                    "command_uuid", &ev.command_uuid, "name", &ev.name, "data", &ev.data, "meta",
                    &ev.meta, "client_seq", &seq, "recorded_at", &at, "version", &version)) {
        json_decref(f);
        return NULL;
    }
    user = json_string_value(json_object_get(e, "user_uuid"));
    cid = json_string_value(json_object_get(e, "client_id"));
    ev.position = pos;
    ev.user_uuid = user ? user : "";
    ev.client_id = cid;
    ev.client_seq = seq;
    ev.recorded_at = at;
    ev.version = (int)version;
    struct cw_update *u = assemble(cw_domain_event(d, ev.name), &ev, frame, len);
    json_decref(f);
    return u;
}

struct cw_update *cw_update_with_frame(const struct cw_domain *d, const struct cw_event *ev,
                                       const char *frame, size_t len)
{
    const struct cw_event_def *def = cw_domain_event(d, ev->name);
    if (def && def->audience == CW_AUDIENCE_CUSTOM)
        return cw_update_from_frame(d, frame, len);
    struct cw_event copy = *ev;
    copy.data = NULL;
    copy.meta = NULL;
    return assemble(def, &copy, frame, len);
}

struct cw_update *cw_update_ref(struct cw_update *u)
{
    atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
    return u;
}

void cw_update_unref(struct cw_update *u)
{
    if (!u || atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) != 1)
        return;
    json_decref(u->ev.data);
    json_decref(u->ev.meta);
    free(u);
}

void cw_outcome_release(struct cw_outcome *o)
{
    cw_envelope_free(o->env);
    cw_error_release(&o->reject);
    for (size_t i = 0; i < o->n_events; i++)
        cw_update_unref(o->events[i]);
    free(o->events);
    memset(o, 0, sizeof(*o));
}

void cw_outcome_batch_free(struct cw_outcome_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        cw_outcome_release(&b->items[i]);
    free(b->items);
    free(b);
}
