/*
 * update.c - committed events serialised once for every receiver, and
 * command outcomes (see update.h).
 */
#include "update.h"
#include "core/alloc.h"
#include "core/registry.h"
#include "envelope.h"

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
    json_object_set_new(o, "user_uuid", ev->user_uuid && *ev->user_uuid
                                            ? json_string(ev->user_uuid)
                                            : json_null());
    json_object_set_new(o, "client_id", ev->client_id ? json_string(ev->client_id) : json_null());
    json_object_set_new(o, "client_seq", json_integer(ev->client_seq));
    json_object_set_new(o, "recorded_at", json_integer(ev->recorded_at));
    json_object_set_new(o, "version", json_integer(ev->version));
    return o;
}

static const char *dup_or_null(const char *s)
{
    return s ? cw_xstrdup(s) : NULL;
}

struct cw_update *cw_update_new(const struct cw_domain *d, const struct cw_event *ev)
{
    struct cw_update *u = cw_xcalloc(1, sizeof(*u));
    atomic_init(&u->refs, 1);
    u->def = cw_domain_event(d, ev->name);
    u->ev = *ev;
    u->ev.uuid = dup_or_null(ev->uuid);
    u->ev.command_uuid = dup_or_null(ev->command_uuid);
    u->ev.name = dup_or_null(ev->name);
    u->ev.user_uuid = dup_or_null(ev->user_uuid);
    u->ev.client_id = dup_or_null(ev->client_id);
    u->ev.data = json_incref(ev->data);
    u->ev.meta = json_incref(ev->meta);
    json_t *frame = json_pack("[s,s?,I,o]", "update", ev->client_id, (json_int_t)ev->client_seq,
                              cw_event_to_json(u->def, ev));
    u->frame = json_dumps(frame, JSON_COMPACT);
    u->frame_len = strlen(u->frame);
    json_decref(frame);
    return u;
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
    free((char *)u->ev.uuid);
    free((char *)u->ev.command_uuid);
    free((char *)u->ev.name);
    free((char *)u->ev.user_uuid);
    free((char *)u->ev.client_id);
    json_decref(u->ev.data);
    json_decref(u->ev.meta);
    free(u->frame);
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
