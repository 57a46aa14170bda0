/*
 * queue_nats.c - the command queue on NATS JetStream (see queue.h).
 *
 * A command travels as one line of compact fields (fields.h, grammar in
 * docs/ARCHITECTURE.md): its sequence, received_at, where its outcome goes
 * (node and origin), uuid, name, user, client id, then its data and meta
 * as JSON text; the processor parses only those two. The first version's
 * messages, one JSON object, are still read. The gateway's put is a
 * publish that the client's ack waits for, so an acked command is on disk
 * in JetStream: synchronous (put, for the CLI) or asynchronous (put_async, for the gateway's
 * connections, whose commands stream without a round trip each; the stream's answer comes on
 * libnats's reply thread, is found by its message in the pending map and
 * handed to the caller's callback).
 * The processor pulls batches from one durable consumer shared by every
 * processor (only the one holding the store's lead pulls) and acks them
 * after their batch committed and its outcomes went out; a processor that
 * dies before that leaves them unacked, and JetStream delivers them again
 * after ACK_WAIT to the next one, which answers them from the command log.
 *
 * Not here: publishing outcomes (feed_nats.c), choosing the processor.
 */
#include "calderwood.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/registry.h"
#include "envelope.h"
#include "fields.h"
#include "natsconn.h"
#include "queue.h"

#include "core/idmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM        "CW_COMMANDS"
#define SUBJECT       "cw.commands"
#define DURABLE       "cw-processor"
#define SEC_NS        1000000000LL
#define DUP_NS        (120 * SEC_NS) /* the duplicate window: a resend within it is dropped */
#define ACK_WAIT      (2 * SEC_NS)   /* an unacked batch goes to the next processor after this */
#define FETCH_MAX     512  /* commands per pull at most; also the consumer's unacked bound */
#define PUB_WAIT_MS   5000 /* an asynchronous publish unanswered after this fails (overloaded) */
#define CLOSE_WAIT_MS 5000 /* close waits this long for unanswered publishes */

/* An asynchronous publish the stream has not answered yet. */
struct pending_put {
    cw_queue_put_cb cb;
    void *arg;
    char uuid[CW_UUID_LEN + 1]; /* the suffix of its id when published again as a resend */
    bool resent;
};

struct nats_queue {
    struct cw_queue base; /* first */
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub; /* the pull consumer, made at the first take */
    natsMsgList taken;     /* the batch last taken, until done */
    struct cw_queue_nats_config cfg;
    atomic_bool closed;
    pthread_mutex_t lock;
    struct cw_idmap pending; /* {lock} natsMsg address -> struct pending_put */
    struct cw_buf copy;      /* the consumer's: the message being decoded */
};

static struct nats_queue *nq(struct cw_queue *q)
{
    return (struct nats_queue *)q;
}

/* ----------------------------------------------------------- encoding */

/* The message: "C ", then the fields of docs/ARCHITECTURE.md (data and meta as JSON text). */
static char *encode(const struct cw_envelope *env, uint64_t node)
{
    const struct cw_command *c = &env->cmd;
    if (!c->client_id || !c->name || !c->data || !c->meta)
        return NULL; /* as json_pack refused them */
    struct cw_buf b = CW_BUF_INIT, json = CW_BUF_INIT;
    cw_buf_adds(&b, "C ");
    cw_fields_add_num(&b, c->client_seq);
    cw_fields_add_num(&b, c->received_at);
    cw_fields_add_num(&b, (int64_t)node);
    cw_fields_add_num(&b, (int64_t)env->origin);
    cw_fields_add_str(&b, c->uuid);
    cw_fields_add_str(&b, c->name);
    cw_fields_add_str(&b, c->user_uuid);
    cw_fields_add_str(&b, c->client_id);
    cw_json_add(&json, c->data);
    cw_fields_add_strn(&b, json.data, json.len);
    cw_buf_reset(&json);
    cw_json_add(&json, c->meta);
    cw_fields_add_strn(&b, json.data, json.len);
    cw_buf_release(&json);
    return cw_buf_take(&b);
}

/* The first version's message, one JSON object: still read, for commands queued before. */
static struct cw_envelope *decode_json(const struct cw_domain *d, const char *text, int len)
{
    json_t *o = json_loadb(text, (size_t)len, 0, NULL);
    const char *uuid, *name, *user, *cid;
    json_int_t seq, at, node, origin;
    json_t *data, *meta;
    if (!o ||
        json_unpack(o, "{s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:I,s:I,s:I}", "uuid", &uuid, "name", &name,
                    "user", &user, "cid", &cid, "seq", &seq, "data", &data, "meta", &meta, "at",
                    &at, "node", &node, "origin", &origin) ||
        strlen(uuid) != CW_UUID_LEN) {
        json_decref(o);
        return NULL;
    }
    const struct cw_command_def *def = cw_domain_command(d, name);
    struct cw_envelope *env = def ? cw_envelope_new(def, user, cid, seq, json_incref(data),
                                                    json_incref(meta), (uint64_t)origin)
                                  : NULL;
    if (env) {
        memcpy(env->cmd.uuid, uuid, CW_UUID_LEN + 1);
        env->cmd.received_at = at;
        env->node = (uint64_t)node;
    }
    json_decref(o);
    return env;
}

static json_t *load_object(const char *text, size_t len)
{
    json_t *v = text ? json_loadb(text, len, 0, NULL) : NULL;
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* copy: the reader's scratch (the processor's thread only). */
static struct cw_envelope *decode(const struct cw_domain *d, struct cw_buf *copy, const char *text,
                                  int len)
{
    if (len < 2 || text[0] != 'C' || text[1] != ' ')
        return decode_json(d, text, len);
    struct cw_fields r = cw_fields_of(copy, text + 2, (size_t)len - 2);
    int64_t seq = cw_fields_num(&r), at = cw_fields_num(&r);
    uint64_t node = (uint64_t)cw_fields_num(&r), origin = (uint64_t)cw_fields_num(&r);
    size_t uuid_len = 0, data_len = 0, meta_len = 0;
    const char *uuid = cw_fields_str(&r, &uuid_len), *name = cw_fields_str(&r, NULL);
    const char *user = cw_fields_str(&r, NULL), *cid = cw_fields_str(&r, NULL);
    const char *data_text = cw_fields_str(&r, &data_len), *meta_text = cw_fields_str(&r, &meta_len);
    const struct cw_command_def *def = name ? cw_domain_command(d, name) : NULL;
    if (r.bad || uuid_len != CW_UUID_LEN || !def || !user || !cid)
        return NULL;
    json_t *data = load_object(data_text, data_len), *meta = load_object(meta_text, meta_len);
    if (!data || !meta) {
        json_decref(data);
        json_decref(meta);
        return NULL;
    }
    struct cw_envelope *env = cw_envelope_new(def, user, cid, seq, data, meta, origin);
    memcpy(env->cmd.uuid, uuid, CW_UUID_LEN + 1);
    env->cmd.received_at = at;
    env->node = node;
    return env;
}

/* The idempotency key as a header value: no line breaks. */
static void msg_id(char *out, size_t len, const struct cw_command *c, const char *suffix)
{
    snprintf(out, len, "%s/%lld/%s%s", c->user_uuid, (long long)c->client_seq, c->client_id,
             suffix);
    for (char *p = out; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = '?';
}

/* ----------------------------------------------------------- producer */

static int publish(struct nats_queue *q, const char *text, const char *id, bool *dup)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id;
    po.ExpectStream = STREAM;
    po.MaxWait = 2000;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&pa, q->js, SUBJECT, text, (int)strlen(text), &po, &jerr);
    *dup = pa && pa->Duplicate;
    jsPubAck_Destroy(pa);
    if (s == NATS_OK)
        return CW_OK;
    cw_warn("queue.publish", "status=\"%s\" jetstream_error=%d", natsStatus_GetText(s), (int)jerr);
    return CW_ERR_OVERLOADED;
}

static int nats_put(struct cw_queue *q, struct cw_envelope *env)
{
    struct nats_queue *n = nq(q);
    if (atomic_load(&n->closed))
        return CW_ERR_SHUTDOWN;
    /* NATS away: refuse at once rather than hold the caller's loop for the ack wait. */
    if (natsConnection_Status(n->nc) != NATS_CONN_STATUS_CONNECTED)
        return CW_ERR_OVERLOADED;
    char *text = encode(env, n->cfg.node);
    if (!text)
        return CW_ERR_INVALID;
    char id[CW_UUID_LEN + 300];
    bool dup = false;
    msg_id(id, sizeof(id), &env->cmd, "");
    int rc = publish(n, text, id, &dup);
    if (!rc && dup) {
        /*
         * A resend within the window: the stream kept the first. Publish it
         * once more under its own id, so the processor answers this sender
         * from the command log too.
         */
        msg_id(id, sizeof(id), &env->cmd, env->cmd.uuid);
        rc = publish(n, text, id, &dup);
    }
    free(text);
    if (!rc)
        cw_envelope_free(env); /* the queue owns it now: it lives on in the stream */
    return rc;
}

/* ------------------------------------------------- asynchronous producer */

static uint64_t key_of(natsMsg *m)
{
    return (uint64_t)(uintptr_t)m;
}

static void track(struct nats_queue *n, natsMsg *m, struct pending_put *p)
{
    pthread_mutex_lock(&n->lock);
    cw_idmap_put(&n->pending, key_of(m), p);
    pthread_mutex_unlock(&n->lock);
}

/* Before m is destroyed or published again: its address may then name another message. */
static struct pending_put *untrack(struct nats_queue *n, natsMsg *m)
{
    pthread_mutex_lock(&n->lock);
    struct pending_put *p = cw_idmap_del(&n->pending, key_of(m));
    pthread_mutex_unlock(&n->lock);
    return p;
}

static size_t pending_count(struct nats_queue *n)
{
    pthread_mutex_lock(&n->lock);
    size_t len = n->pending.len;
    pthread_mutex_unlock(&n->lock);
    return len;
}

/* Publishes m (tracked as p) under id; false, m still ours and untracked, when libnats refused. */
static bool send_async(struct nats_queue *n, natsMsg **m, struct pending_put *p, const char *id)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id;
    po.ExpectStream = STREAM;
    po.MaxWait = PUB_WAIT_MS;
    natsMsg *sent = *m;
    track(n, sent, p); /* first: the answer may come before the call returns */
    natsStatus s = js_PublishMsgAsync(n->js, m, &po);
    if (s == NATS_OK)
        return true;
    untrack(n, sent);
    cw_warn("queue.publish", "status=\"%s\"", natsStatus_GetText(s));
    return false;
}

/*
 * A resend the stream dropped as a duplicate within its window: published
 * again under an id of its own (as nats_put does), so the processor
 * answers this sender from the command log. False when that failed.
 */
static bool republish(struct nats_queue *n, natsMsg **m, struct pending_put *p)
{
    const char *first = NULL;
    if (natsMsgHeader_Get(*m, "Nats-Msg-Id", &first) != NATS_OK || !first)
        return false;
    char id[CW_UUID_LEN + 400];
    snprintf(id, sizeof(id), "%s%s", first, p->uuid);
    p->resent = true;
    return send_async(n, m, p, id);
}

/* libnats's reply thread: the stream's answer (or the timeout) for one publish. */
static void on_pub_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct nats_queue *n = closure;
    struct pending_put *p = untrack(n, m);
    if (!p) { /* answered already, by close */
        natsMsg_Destroy(m);
        return;
    }
    if (pa && pa->Duplicate && !p->resent && !atomic_load(&n->closed) && republish(n, &m, p))
        return; /* answered again later */
    /* No answer in time is not a refusal: the stream may have the command. */
    int rc = pa ? CW_OK : pae && pae->Err == NATS_TIMEOUT ? CW_ERR_AGAIN : CW_ERR_OVERLOADED;
    if (pae)
        cw_warn("queue.publish", "status=\"%s\" jetstream_error=%d", natsStatus_GetText(pae->Err),
                (int)pae->ErrCode);
    natsMsg_Destroy(m);
    p->cb(p->arg, rc);
    free(p);
}

static int nats_put_async(struct cw_queue *q, struct cw_envelope *env, cw_queue_put_cb cb,
                          void *arg)
{
    struct nats_queue *n = nq(q);
    if (atomic_load(&n->closed))
        return CW_ERR_SHUTDOWN;
    if (natsConnection_Status(n->nc) != NATS_CONN_STATUS_CONNECTED ||
        pending_count(n) >= n->cfg.max_pending)
        return CW_ERR_OVERLOADED;
    char *text = encode(env, n->cfg.node);
    if (!text)
        return CW_ERR_INVALID;
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, SUBJECT, NULL, text, (int)strlen(text));
    free(text);
    if (s != NATS_OK)
        return CW_ERR_OVERLOADED;
    struct pending_put *p = cw_xcalloc(1, sizeof(*p));
    p->cb = cb;
    p->arg = arg;
    memcpy(p->uuid, env->cmd.uuid, sizeof(p->uuid));
    char id[CW_UUID_LEN + 300];
    msg_id(id, sizeof(id), &env->cmd, "");
    if (!send_async(n, &m, p, id)) {
        natsMsg_Destroy(m);
        free(p);
        return CW_ERR_OVERLOADED;
    }
    cw_envelope_free(env); /* it lives on in the message */
    return CW_OK;
}

/*
 * At close: waits for the stream's last answers, then answers whatever is
 * still unanswered itself (CW_ERR_SHUTDOWN), so no caller waits for ever.
 */
static void settle_pending(struct nats_queue *n)
{
    if (!n->js)
        return;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = CLOSE_WAIT_MS;
    if (pending_count(n))
        js_PublishAsyncComplete(n->js, &po);
    pthread_mutex_lock(&n->lock);
    struct cw_idmap left = n->pending;
    cw_idmap_init(&n->pending);
    pthread_mutex_unlock(&n->lock);
    struct pending_put *p;
    cw_idmap_foreach(&left, i, p)
    {
        p->cb(p->arg, CW_ERR_SHUTDOWN);
        free(p);
    }
    cw_idmap_release(&left);
}

/* ----------------------------------------------------------- consumer */

/*
 * Called once this processor leads. The consumer is made anew: what the
 * last leader fetched and never acked is then delivered at once, in stream
 * order, ahead of newer commands, instead of after its ack wait (work-queue
 * retention keeps every unacked command in the stream meanwhile). Safe as
 * only the leader does this, and a fenced predecessor can commit nothing.
 */
static int subscribe(struct nats_queue *q)
{
    jsErrCode derr = 0;
    natsStatus ds = js_DeleteConsumer(q->js, STREAM, DURABLE, NULL, &derr);
    if (ds != NATS_OK && ds != NATS_NOT_FOUND && derr != JSConsumerNotFoundErr)
        cw_warn("queue.consumer", "delete status=\"%s\" jetstream_error=%d", natsStatus_GetText(ds),
                (int)derr);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = STREAM;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = ACK_WAIT;
    so.Config.MaxAckPending = FETCH_MAX; /* after a takeover, redeliveries first: order kept */
    so.Config.MaxDeliver = -1;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&q->sub, q->js, SUBJECT, DURABLE, NULL, &so, &jerr);
    if (s != NATS_OK) {
        cw_warn("queue.subscribe", "status=\"%s\" jetstream_error=%d", natsStatus_GetText(s),
                (int)jerr);
        return CW_ERR_AGAIN;
    }
    return CW_OK;
}

/* Decodes the fetched messages into out; one that does not decode is terminated, logged. */
static size_t unpack(struct nats_queue *q, struct cw_envelope **out)
{
    size_t n = 0;
    for (int i = 0; i < q->taken.Count; i++) {
        natsMsg *m = q->taken.Msgs[i];
        struct cw_envelope *env =
            decode(q->cfg.d, &q->copy, natsMsg_GetData(m), natsMsg_GetDataLength(m));
        if (env) {
            out[n++] = env;
            continue;
        }
        cw_error("queue.undecodable", "bytes=%d", natsMsg_GetDataLength(m));
        natsMsg_Term(m, NULL);
    }
    return n;
}

static size_t nats_take(struct cw_queue *q, struct cw_envelope **out, size_t max,
                        int64_t timeout_us)
{
    struct nats_queue *n = nq(q);
    if (max > FETCH_MAX)
        max = FETCH_MAX;
    int64_t waited_us = 0;
    while (!atomic_load(&n->closed)) {
        if (!n->sub && subscribe(n)) {
            /* NATS away: the wait counts toward the timeout. */
            nats_Sleep(250);
            waited_us += 250000;
        } else {
            /* Short pulls, so a close is noticed within one. */
            int64_t ms = 250;
            if (timeout_us >= 0 && timeout_us - waited_us < ms * 1000)
                ms = (timeout_us - waited_us) / 1000 > 0 ? (timeout_us - waited_us) / 1000 : 1;
            natsStatus s = natsSubscription_Fetch(&n->taken, n->sub, (int)max, ms, NULL);
            if (s == NATS_OK && n->taken.Count > 0) {
                size_t got = unpack(n, out);
                if (got)
                    return got;
                natsMsgList_Destroy(&n->taken);
            } else if (s != NATS_TIMEOUT && s != NATS_OK) {
                nats_Sleep(100); /* a lost connection: libnats reconnects meanwhile */
            }
            waited_us += ms * 1000;
        }
        if (timeout_us >= 0 && waited_us >= timeout_us)
            break;
    }
    return 0;
}

static void nats_done(struct cw_queue *q, bool committed)
{
    struct nats_queue *n = nq(q);
    for (int i = 0; i < n->taken.Count; i++) {
        natsMsg *m = n->taken.Msgs[i];
        if (committed)
            natsMsg_Ack(m, NULL);
        else
            natsMsg_Nak(m, NULL);
    }
    natsMsgList_Destroy(&n->taken);
    memset(&n->taken, 0, sizeof(n->taken));
    /* Acks go out now: the next processor must not see this batch again. */
    natsConnection_FlushTimeout(n->nc, 2000);
    if (!committed && n->sub) {
        /* The lead was lost (or the processor stops): pull again only after leading again. */
        natsSubscription_Destroy(n->sub);
        n->sub = NULL;
    }
}

/* ---------------------------------------------------------- the rest */

static void nats_close(struct cw_queue *q)
{
    if (!atomic_exchange(&nq(q)->closed, true))
        settle_pending(nq(q));
}

static bool nats_closed(struct cw_queue *q)
{
    return atomic_load(&nq(q)->closed);
}

static size_t nats_depth(struct cw_queue *q)
{
    (void)q;
    return 0; /* the stream's depth is the server's: JetStream refuses when it is full */
}

static size_t nats_capacity(struct cw_queue *q)
{
    return nq(q)->cfg.capacity;
}

static void nats_free(struct cw_queue *q)
{
    struct nats_queue *n = nq(q);
    natsMsgList_Destroy(&n->taken); /* unacked: JetStream delivers them again */
    nats_close(q);
    if (n->sub)
        natsSubscription_Destroy(n->sub);
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    cw_idmap_release(&n->pending);
    cw_buf_release(&n->copy);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

static const struct cw_queue_ops nats_ops = {
    .put = nats_put,
    .put_async = nats_put_async,
    .take = nats_take,
    .done = nats_done,
    .close = nats_close,
    .closed = nats_closed,
    .depth = nats_depth,
    .capacity = nats_capacity,
    .free = nats_free,
};

/* Creates the stream, or checks that the one there keeps the promises above. */
static int ensure_stream(struct nats_queue *q, struct cw_error *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, q->js, STREAM, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamConfig *c = si->Config;
        bool ok = c->Storage == js_FileStorage && c->Discard == js_DiscardNew &&
                  c->Retention == js_WorkQueuePolicy;
        jsStreamInfo_Destroy(si);
        if (!ok)
            return cw_error_set(err, CW_ERR_INVALID, NULL,
                                "NATS: the stream " STREAM " exists with other settings (file "
                                "storage, work-queue retention and discard-new are needed)");
        return CW_OK;
    }
    if (jerr != JSStreamNotFoundErr && s != NATS_NOT_FOUND)
        return cw_nats_fail(err, CW_ERR_SYSTEM, s, "stream info " STREAM);
    jsStreamConfig c;
    jsStreamConfig_Init(&c);
    const char *subjects[] = {SUBJECT};
    c.Name = STREAM;
    c.Subjects = subjects;
    c.SubjectsLen = 1;
    c.Storage = js_FileStorage;
    c.Retention = js_WorkQueuePolicy;
    c.Discard = js_DiscardNew;
    c.MaxMsgs = (int64_t)q->cfg.capacity;
    c.Duplicates = DUP_NS;
    s = js_AddStream(&si, q->js, &c, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        return cw_nats_fail(err, CW_ERR_SYSTEM, s, "create stream " STREAM);
    cw_info("queue.stream", "created=" STREAM " max_msgs=%zu", q->cfg.capacity);
    return CW_OK;
}

int cw_queue_nats_open(const struct cw_queue_nats_config *cfg, struct cw_queue **out,
                       struct cw_error *err)
{
    struct nats_queue *q = cw_xcalloc(1, sizeof(*q));
    q->base.ops = &nats_ops;
    q->cfg = *cfg;
    if (!q->cfg.capacity)
        q->cfg.capacity = 65536;
    if (!q->cfg.max_pending)
        q->cfg.max_pending = 4096;
    pthread_mutex_init(&q->lock, NULL);
    cw_idmap_init(&q->pending);
    int rc = cw_nats_connect(cfg->urls, cfg->consume ? "calderwood-processor" : "calderwood",
                             &q->nc, err);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = q;
    /* Above ours, so libnats never stalls a caller (or a resend on its own reply thread). */
    jo.PublishAsync.MaxPending = (int64_t)q->cfg.max_pending * 2 + 64;
    if (!rc && natsConnection_JetStream(&q->js, q->nc, &jo) != NATS_OK)
        rc = cw_error_set(err, CW_ERR_SYSTEM, NULL, "NATS: no JetStream context");
    if (!rc)
        rc = ensure_stream(q, err);
    if (rc) {
        nats_free(&q->base);
        return rc;
    }
    *out = &q->base;
    return CW_OK;
}
