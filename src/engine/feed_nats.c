/*
 * feed_nats.c - the update feed on NATS (see feed.h).
 *
 * A batch travels as text lines, serialised once by the processor: per
 * outcome an "o" line (where its answer goes, the command's key, duplicate,
 * how many events; a rejection adds a JSON tail), then per event an "e"
 * line with the event's fields followed by its update frame exactly as
 * cw_update_new wrote it, and an "L" line with the log's last position.
 * Fields are numbers or length-prefixed strings ("36:..."), so a receiver
 * reads them without building a JSON tree, and keeps each frame as it is
 * (cw_update_with_frame). The older format's "O" and "E" lines (JSON head,
 * bare frame) are still read. A large batch is cut into messages under
 * CHUNK_BYTES, only the last carrying the "L" line. docs/ARCHITECTURE.md
 * gives the grammar.
 *
 * Core NATS, not JetStream: the store is the durable record, and a gateway
 * that missed a message reads the missing events from it.
 */
#include "feed.h"
#include "bus.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/registry.h"
#include "envelope.h"
#include "fields.h"
#include "natsconn.h"
#include "store/store.h"
#include "update.h"

#include <stdlib.h>
#include <string.h>

#define SUBJECT     "cw.updates"
#define CHUNK_BYTES (512 * 1024) /* under NATS's default max_payload of 1 MiB */

struct cw_feed {
    struct cw_feed_config cfg;
    natsConnection *nc;
    natsSubscription *sub;
    struct cw_buf out; /* processor thread */
    /* Receiving: libnats' delivery thread only. */
    int64_t last;                        /* the newest position passed on to the bus */
    struct cw_db *db;                    /* a reader for gaps, opened when first needed */
    struct cw_buf head_line, event_line; /* copies of the line being read */
};

/* ------------------------------------------------------------ publishing */

static void send_chunk(struct cw_feed *f)
{
    natsStatus s = natsConnection_Publish(f->nc, SUBJECT, f->out.data, (int)f->out.len);
    if (s != NATS_OK)
        cw_warn("feed.publish", "status=\"%s\" bytes=%zu: receivers fill the gap from the store",
                natsStatus_GetText(s), f->out.len);
    cw_buf_reset(&f->out);
}

static void add_event(struct cw_buf *b, const struct cw_update *u)
{
    const struct cw_event *ev = &u->ev;
    cw_buf_adds(b, "e ");
    cw_fields_add_num(b, ev->position);
    cw_fields_add_num(b, ev->version);
    cw_fields_add_num(b, ev->recorded_at);
    cw_fields_add_num(b, ev->client_seq);
    cw_fields_add_str(b, ev->uuid);
    cw_fields_add_str(b, ev->command_uuid);
    cw_fields_add_str(b, ev->name);
    cw_fields_add_str(b, ev->user_uuid);
    cw_fields_add_str(b, ev->client_id);
    cw_buf_add(b, u->frame, u->frame_len);
    cw_buf_addc(b, '\n');
}

static void add_outcome(struct cw_buf *b, const struct cw_outcome *o)
{
    const struct cw_envelope *env = o->env;
    cw_buf_adds(b, "o ");
    cw_fields_add_num(b, (int64_t)env->node);
    cw_fields_add_num(b, (int64_t)env->origin);
    cw_fields_add_num(b, env->cmd.client_seq);
    cw_fields_add_num(b, o->duplicate);
    cw_fields_add_num(b, (int64_t)o->n_events);
    cw_fields_add_str(b, o->command_uuid);
    cw_fields_add_str(b, env->cmd.name);
    cw_fields_add_str(b, env->cmd.user_uuid);
    cw_fields_add_str(b, env->cmd.client_id);
    if (o->rejected) { /* rare: a JSON tail; a refused login names its session in data */
        json_t *t = json_pack("{s:[s?s?],s:O}", "rej", o->reject.code, o->reject.message, "data",
                              env->cmd.data);
        cw_json_add(b, t);
        json_decref(t);
    }
    cw_buf_addc(b, '\n');
    for (size_t i = 0; i < o->n_events; i++)
        add_event(b, o->events[i]);
}

void cw_feed_publish(void *feed, struct cw_outcome_batch *b)
{
    struct cw_feed *f = feed;
    cw_buf_reset(&f->out);
    for (size_t i = 0; i < b->n; i++) {
        if (f->out.len > CHUNK_BYTES)
            send_chunk(f);
        add_outcome(&f->out, &b->items[i]);
    }
    /* The last line, in the last message: receivers check for gaps against it. */
    cw_buf_adds(&f->out, "L ");
    cw_buf_add_int(&f->out, b->last_position);
    cw_buf_addc(&f->out, '\n');
    send_chunk(f);
    natsConnection_FlushTimeout(f->nc, 1000);
    cw_outcome_batch_free(b);
}

/* ------------------------------------------------------------- receiving */

/* The batch being put together for the bus. */
struct inbox {
    struct cw_outcome_batch *b;
    size_t cap;
};

static struct cw_outcome *add(struct inbox *in)
{
    if (!in->b) {
        in->b = cw_xcalloc(1, sizeof(*in->b));
        in->b->committed_at_us = cw_mono_us();
    }
    if (in->b->n == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 16;
        in->b->items = cw_xrealloc(in->b->items, in->cap * sizeof(*in->b->items));
    }
    struct cw_outcome *o = &in->b->items[in->b->n++];
    memset(o, 0, sizeof(*o));
    return o;
}

/* An envelope that only routes: name, user, client id and sequence; data when given. */
static struct cw_envelope *route_envelope(const struct cw_domain *d, const char *name,
                                          const char *user, const char *cid, int64_t seq,
                                          json_t *data, uint64_t origin)
{
    const struct cw_command_def *def = name ? cw_domain_command(d, name) : NULL;
    size_t len = cid ? strlen(cid) : 0;
    struct cw_envelope *env = cw_xcalloc(1, sizeof(*env) + len + 1);
    memcpy(env->client_id, cid ? cid : "", len + 1);
    env->def = def;
    env->origin = origin;
    snprintf(env->cmd.user_uuid, sizeof(env->cmd.user_uuid), "%s", user ? user : "");
    env->cmd.name = def ? def->name : "";
    env->cmd.client_id = env->client_id;
    env->cmd.client_seq = seq;
    env->cmd.data = data ? json_incref(data) : json_object();
    env->cmd.meta = json_object();
    return env;
}

static int add_filled(const struct cw_event *ev, void *arg)
{
    void **ctx = arg;
    struct cw_feed *f = ctx[0];
    struct cw_outcome *o = add(ctx[1]);
    o->env = route_envelope(f->cfg.d, NULL, ev->user_uuid, ev->client_id, ev->client_seq, NULL, 0);
    snprintf(o->command_uuid, sizeof(o->command_uuid), "%s", ev->command_uuid);
    o->events = cw_xmalloc(sizeof(*o->events));
    o->events[0] = cw_update_new(f->cfg.d, ev, NULL, NULL);
    o->n_events = 1;
    f->last = ev->position;
    return CW_OK;
}

/* Reads the events after f->last up to upto from the store, as outcomes without a sender. */
static void fill_gap(struct cw_feed *f, struct inbox *in, int64_t upto)
{
    struct cw_error err = {0};
    int64_t from = f->last;
    int rc = f->db ? CW_OK : cw_store_reader_open(f->cfg.store, &f->db, &err);
    void *ctx[2] = {f, in};
    if (!rc)
        rc = cw_db_scan_events(f->db, f->last, upto, NULL, NULL, add_filled, ctx, &err);
    if (rc || f->last < upto) {
        cw_error("feed.gap", "from=%lld to=%lld filled_to=%lld error=\"%s\"", (long long)from,
                 (long long)upto, (long long)f->last, rc ? err.message : "events missing");
        cw_db_close(f->db);
        f->db = NULL;
        f->last = upto; /* not again for each later batch: the log says what was lost */
    } else {
        cw_info("feed.gap", "filled_from=%lld to=%lld", (long long)from, (long long)upto);
    }
    cw_error_release(&err);
}

/* Keeps the events past f->last; fills the gap before them first. */
static void take_events(struct cw_feed *f, struct inbox *in, struct cw_update **ev, size_t n,
                        bool *dup, struct cw_outcome *o)
{
    if (n && *dup && ev[0]->ev.position > f->last)
        *dup = false; /* committed by a processor that died before it published them */
    for (size_t i = 0; i < n; i++) {
        int64_t pos = ev[i]->ev.position;
        if (!*dup && pos <= f->last) {
            cw_update_unref(ev[i]); /* passed on already (a gap filled from the store) */
            continue;
        }
        if (!*dup && pos > f->last + 1)
            fill_gap(f, in, pos - 1);
        if (!*dup)
            f->last = pos;
        o->events[o->n_events++] = ev[i];
    }
}

/* An outcome's head line, in either format. */
struct head {
    json_int_t node, origin, seq, ne;
    int dup;
    const char *cu, *name, *user, *cid; /* borrowed from the line's copy or from json */
    json_t *json; /* owned: the old format's head, or the compact line's tail */
};

/* The old format: one JSON object. */
static int read_head_json(const char *line, size_t len, struct head *h)
{
    h->json = json_loadb(line, len, 0, NULL);
    return !h->json || json_unpack(h->json, "{s:I,s:I,s:s,s:s,s:s,s:s,s:I,s:b,s:I}", "node",
                                   &h->node, "origin", &h->origin, "cu", &h->cu, "name", &h->name,
                                   "user", &h->user, "cid", &h->cid, "seq", &h->seq, "dup", &h->dup,
                                   "ne", &h->ne)
               ? CW_ERR_INVALID
               : CW_OK;
}

static int read_head(struct cw_feed *f, const char *line, const char *nl, struct head *h)
{
    struct cw_fields r = cw_fields_of(&f->head_line, line, (size_t)(nl - line));
    h->node = cw_fields_num(&r);
    h->origin = cw_fields_num(&r);
    h->seq = cw_fields_num(&r);
    h->dup = cw_fields_num(&r) != 0;
    h->ne = cw_fields_num(&r);
    h->cu = cw_fields_str(&r, NULL);
    h->name = cw_fields_str(&r, NULL);
    h->user = cw_fields_str(&r, NULL);
    h->cid = cw_fields_str(&r, NULL);
    if (!r.bad && r.p < r.end && !(h->json = json_loadb(r.p, (size_t)(r.end - r.p), 0, NULL)))
        r.bad = true;
    return r.bad || !h->cu ? CW_ERR_INVALID : CW_OK;
}

static struct cw_update *read_event(struct cw_feed *f, const char *line, const char *nl)
{
    struct cw_fields r = cw_fields_of(&f->event_line, line, (size_t)(nl - line));
    struct cw_event ev = {0};
    ev.position = cw_fields_num(&r);
    ev.version = (int)cw_fields_num(&r);
    ev.recorded_at = cw_fields_num(&r);
    ev.client_seq = cw_fields_num(&r);
    ev.uuid = cw_fields_str(&r, NULL);
    ev.command_uuid = cw_fields_str(&r, NULL);
    ev.name = cw_fields_str(&r, NULL);
    ev.user_uuid = cw_fields_str(&r, NULL);
    ev.client_id = cw_fields_str(&r, NULL);
    if (r.bad || !ev.uuid || !ev.command_uuid || !ev.name || r.p >= r.end)
        return NULL;
    if (!ev.user_uuid)
        ev.user_uuid = "";
    return cw_update_with_frame(f->cfg.d, &ev, r.p, (size_t)(r.end - r.p));
}

/* The event lines after a head: up to ne of them, in either format. Advances *p. */
static size_t read_events(struct cw_feed *f, struct cw_update **ev, size_t ne, const char **p,
                          const char *end)
{
    size_t n = 0;
    while (n < ne && *p < end && ((*p)[0] == 'E' || (*p)[0] == 'e')) {
        const char *nl = memchr(*p, '\n', (size_t)(end - *p));
        if (!nl || nl - *p < 2)
            break;
        ev[n] = (*p)[0] == 'e' ? read_event(f, *p + 2, nl)
                               : cw_update_from_frame(f->cfg.d, *p + 2, (size_t)(nl - *p - 2));
        *p = nl + 1;
        if (ev[n])
            n++;
    }
    return n;
}

/* One outcome: its head line at *p, then its event lines. Advances *p. */
static int read_outcome(struct cw_feed *f, struct inbox *in, const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    struct head h = {0};
    int rc = !nl || nl - *p < 2 ? CW_ERR_INVALID
             : (*p)[0] == 'O'   ? read_head_json(*p + 2, (size_t)(nl - *p - 2), &h)
                                : read_head(f, *p + 2, nl, &h);
    if (rc || h.ne < 0 || h.ne > 1000000) {
        json_decref(h.json);
        return CW_ERR_INVALID;
    }
    *p = nl + 1;
    struct cw_update **ev = cw_xcalloc((size_t)h.ne + 1, sizeof(*ev));
    size_t n = read_events(f, ev, (size_t)h.ne, p, end);
    bool duplicate = h.dup;
    /* The gap before this outcome's events goes in ahead of it: find its slot after. */
    struct cw_outcome tmp = {0};
    tmp.events = cw_xcalloc((size_t)h.ne + 1, sizeof(*tmp.events));
    take_events(f, in, ev, n, &duplicate, &tmp);
    free(ev);
    struct cw_outcome *o = add(in);
    *o = tmp;
    json_t *data = json_object_get(h.json, "data");
    o->env = route_envelope(f->cfg.d, h.name, h.user, h.cid, h.seq, data,
                            (uint64_t)h.node == f->cfg.node ? (uint64_t)h.origin : 0);
    o->env->node = (uint64_t)h.node;
    snprintf(o->command_uuid, sizeof(o->command_uuid), "%s", h.cu);
    o->duplicate = duplicate;
    json_t *rej = json_object_get(h.json, "rej");
    if (rej) {
        o->rejected = true;
        cw_error_set(&o->reject, CW_ERR_REJECTED, json_string_value(json_array_get(rej, 0)), "%s",
                     json_string_value(json_array_get(rej, 1)));
    }
    json_decref(h.json);
    return CW_OK;
}

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct cw_feed *f = closure;
    const char *p = natsMsg_GetData(msg), *end = p + natsMsg_GetDataLength(msg);
    struct inbox in = {0};
    while (p < end) {
        if ((p[0] == 'O' || p[0] == 'o') && read_outcome(f, &in, &p, end) == CW_OK)
            continue;
        if (p[0] == 'L') {
            int64_t last = strtoll(p + 2, NULL, 10);
            if (last > f->last)
                fill_gap(f, &in, last);
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    natsMsg_Destroy(msg);
    if (in.b)
        cw_bus_publish(f->cfg.bus, in.b);
}

/* ------------------------------------------------------------------ life */

static int start_receiving(struct cw_feed *f, struct cw_error *err)
{
    struct cw_db *db = NULL;
    int rc = cw_store_reader_open(f->cfg.store, &db, err);
    if (!rc)
        rc = cw_store_last_position(db, &f->last, err);
    cw_db_close(db);
    if (rc)
        return rc;
    natsStatus s = natsConnection_Subscribe(&f->sub, f->nc, SUBJECT, on_message, f);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(f->sub, 1 << 20, 1 << 30);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(f->nc, 5000);
    return s == NATS_OK ? CW_OK : cw_nats_fail(err, CW_ERR_SYSTEM, s, "subscribe " SUBJECT);
}

int cw_feed_open(const struct cw_feed_config *cfg, struct cw_feed **out, struct cw_error *err)
{
    struct cw_feed *f = cw_xcalloc(1, sizeof(*f));
    f->cfg = *cfg;
    int rc = cw_nats_connect(cfg->urls, cfg->bus ? "calderwood-feed-in" : "calderwood-feed-out",
                             &f->nc, err);
    if (!rc && cfg->bus)
        rc = start_receiving(f, err);
    if (rc) {
        cw_feed_free(f);
        return rc;
    }
    *out = f;
    return CW_OK;
}

void cw_feed_free(struct cw_feed *f)
{
    if (!f)
        return;
    if (f->sub) {
        natsSubscription_Unsubscribe(f->sub);
        natsSubscription_Destroy(f->sub);
    }
    /* Closing waits for a running delivery callback; the reader is then free to go. */
    if (f->nc)
        natsConnection_Close(f->nc);
    natsConnection_Destroy(f->nc);
    cw_db_close(f->db);
    cw_buf_release(&f->out);
    cw_buf_release(&f->head_line);
    cw_buf_release(&f->event_line);
    free(f);
}
