/*
 * processor.c - the single writer (see processor.h).
 *
 * Loop: take a batch from the queue, run it in one write transaction, commit
 * durably, publish the outcomes. Batches grow with load because everything
 * queued during a commit is taken at once (group commit), so throughput is
 * bounded by CPU rather than by fsync.
 *
 * Positions are assigned here, by the only writer, from MAX(position)+1 at
 * the start of each transaction: a command that is rolled back gives its
 * positions back, so the log stays gap-free on every backend.
 */
#include "processor.h"
#include "bus.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/registry.h"
#include "envelope.h"
#include "queue.h"
#include "retry.h"
#include "store/store.h"
#include "update.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending_event {
    const struct cw_event_def *def;
    json_t *data;
};

/* A command's data and meta, serialised once for the log and the updates. */
struct cw_texts {
    const char *data, *meta;
};

struct cw_emit {
    const struct cw_domain *d;
    struct pending_event *items;
    size_t n, cap;
};

struct cw_processor {
    struct cw_buf cmd_text, meta_text, data_text; /* serialisations, reused */
    struct cw_store *store;
    const struct cw_domain *d;
    struct cw_queue *q;
    struct cw_bus *bus;
    struct cw_processor_config cfg;
    pthread_t thread;
    struct cw_retry retry;
    struct cw_emit emit; /* reused for every command */
    /*
     * Why each command of the running batch failed, kept across its attempts;
     * max_batch entries, empty between batches. Allocated once: zeroing a
     * new array of 300-byte errors per batch was 0.7 % of the processor.
     */
    struct cw_error *failures;
    /* The commands whose handler has been seen writing: they get savepoints. */
    const struct cw_command_def **writers;
    size_t n_writers;
    pthread_mutex_t lock;
    struct cw_processor_stats stats; /* {lock} */
    /* Read by any thread without the lock (health checks, the gateway's intake). */
    atomic_int condition;          /* CW_CONDITION_OK, _DISK_FULL or _FAILING */
    atomic_llong attempt_since_us; /* cw_mono_us() when the running attempt began; 0: none */
    /* Distributed mode (cfg.lead); processor thread only. */
    bool leading;          /* holds the store's lead since it last checked */
    bool lost_lead;        /* a transaction found the lead gone: abandon the batch */
    int64_t last_position; /* the log's newest position after the last commit */
};

/* A store that keeps failing is logged once per this interval, not per attempt. */
#define FAULT_LOG_INTERVAL_US 10000000LL

/* The failures of one batch's attempts, for the log. */
struct fault {
    int condition;
    int64_t since_us, logged_us;
    unsigned retries;
};

int cw_emit_take(struct cw_emit *out, const char *event_name, json_t *data)
{
    const struct cw_event_def *def = cw_domain_event(out->d, event_name);
    if (!def || !json_is_object(data)) {
        json_decref(data);
        return def ? CW_ERR_INVALID : CW_ERR_NOT_FOUND;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 4;
        out->items = cw_xrealloc(out->items, out->cap * sizeof(*out->items));
    }
    out->items[out->n++] = (struct pending_event){.def = def, .data = data};
    return CW_OK;
}

static const char *serialise(struct cw_buf *b, const json_t *v)
{
    cw_buf_reset(b);
    cw_json_add(b, v);
    return cw_buf_cstr(b);
}

static void emit_clear(struct cw_emit *e)
{
    for (size_t i = 0; i < e->n; i++)
        json_decref(e->items[i].data);
    e->n = 0;
}

static void add_update(struct cw_outcome *o, struct cw_update *u)
{
    o->events = cw_xrealloc(o->events, (o->n_events + 1) * sizeof(*o->events));
    o->events[o->n_events++] = u;
}

static int collect_update(const struct cw_event *ev, void *arg)
{
    void **ctx = arg;
    add_update(ctx[0], cw_update_new(ctx[1], ev, NULL, NULL));
    return CW_OK;
}

/* A command already in the log: its original outcome, events re-read from the log. */
static int replay_duplicate(struct cw_processor *p, struct cw_db *db,
                            const struct cw_command_record *rec, struct cw_outcome *o,
                            struct cw_error *err)
{
    o->duplicate = true;
    memcpy(o->command_uuid, rec->uuid, sizeof(o->command_uuid));
    if (rec->rejected) {
        o->rejected = true;
        cw_error_set(&o->reject, CW_ERR_REJECTED, rec->reject_code, "%s", rec->reject_message);
        return CW_OK;
    }
    if (!rec->first_position)
        return CW_OK;
    void *ctx[2] = {o, (void *)p->d};
    return cw_db_scan_events(db, rec->first_position - 1, rec->last_position, NULL, NULL,
                             collect_update, ctx, err);
}

/*
 * Has def's handler been seen writing? A short list of pointers: few commands
 * write in their handler, and hashing the name twice per command showed.
 */
static bool is_writer(const struct cw_processor *p, const struct cw_command_def *def)
{
    for (size_t i = 0; i < p->n_writers; i++)
        if (p->writers[i] == def)
            return true;
    return false;
}

static void add_writer(struct cw_processor *p, const struct cw_command_def *def)
{
    if (is_writer(p, def))
        return;
    p->writers = cw_xrealloc(p->writers, (p->n_writers + 1) * sizeof(*p->writers));
    p->writers[p->n_writers++] = def;
}

/* Appends and aggregates the emitted events; fills o->events. */
static int apply_events(struct cw_processor *p, struct cw_db *db, const struct cw_command *cmd,
                        const char *meta_text, int64_t *pos, struct cw_outcome *o,
                        struct cw_error *err)
{
    int64_t now = cw_now_us();
    for (size_t i = 0; i < p->emit.n; i++) {
        struct pending_event *pe = &p->emit.items[i];
        char uuid[CW_UUID_LEN + 1];
        cw_uuid_v7(uuid);
        struct cw_event ev = {
            .position = ++*pos,
            .uuid = uuid,
            .command_uuid = cmd->uuid,
            .name = pe->def->name,
            .version = pe->def->version,
            .data = pe->data,
            .meta = cmd->meta,
            .user_uuid = cmd->user_uuid,
            .client_id = cmd->client_id,
            .client_seq = cmd->client_seq,
            .recorded_at = now,
        };
        cw_buf_reset(&p->data_text);
        cw_json_add(&p->data_text, pe->data);
        const char *data_text = cw_buf_cstr(&p->data_text);
        int rc = cw_store_append_event(db, &ev, data_text, meta_text, err);
        if (!rc && pe->def->aggregate)
            rc = pe->def->aggregate(db, &ev, err);
        if (rc)
            return rc;
        add_update(o, cw_update_of(pe->def, &ev, data_text, meta_text));
    }
    return CW_OK;
}

static void drop_events(struct cw_outcome *o)
{
    for (size_t i = 0; i < o->n_events; i++)
        cw_update_unref(o->events[i]);
    o->n_events = 0;
}

/* A failure of domain code or of the store that is not the client's doing. */
static void internal_error(const struct cw_command *cmd, struct cw_error *err)
{
    cw_warn("command.failed", "command=%s name=%s error=\"%s\"", cmd->uuid, cmd->name,
            err->message);
    cw_error_set(err, CW_ERR_REJECTED, "internal-error", "the command could not be applied");
}

static void fill_rejection(struct cw_command_record *rec, const struct cw_error *err)
{
    rec->rejected = true;
    rec->first_position = rec->last_position = 0;
    snprintf(rec->reject_code, sizeof(rec->reject_code), "%s", err->code);
    snprintf(rec->reject_message, sizeof(rec->reject_message), "%s", err->message);
}

/* Looks up the command that holds cmd's idempotency key and answers as it did. */
static int answer_duplicate(struct cw_processor *p, struct cw_db *db, const struct cw_command *cmd,
                            struct cw_outcome *o, struct cw_error *err)
{
    struct cw_command_record rec;
    int rc = cw_store_find_command(db, cmd->user_uuid, cmd->client_id, cmd->client_seq, &rec, err);
    return rc ? rc : replay_duplicate(p, db, &rec, o, err);
}

/*
 * Records cmd as rejected with err (in a state where its row is absent)
 * and fills o. A key already present means a duplicate after all.
 */
static int record_rejection(struct cw_processor *p, struct cw_db *db, const struct cw_command *cmd,
                            struct cw_outcome *o, const struct cw_error *why,
                            const struct cw_texts *t, struct cw_error *err)
{
    struct cw_command_record rec = {0};
    fill_rejection(&rec, why);
    int rc = cw_store_insert_command(db, cmd, &rec, t->data, t->meta, err);
    if (rc == CW_ERR_EXISTS)
        return answer_duplicate(p, db, cmd, o, err);
    if (rc)
        return rc;
    memcpy(o->command_uuid, cmd->uuid, sizeof(o->command_uuid));
    o->rejected = true;
    cw_error_copy(&o->reject, why);
    return CW_OK;
}

/*
 * The steps of one new command after its row is in the log: handle, then
 * append and aggregate its events, then correct the row when the outcome
 * is not the one event it was recorded with. Returns CW_ERR_REJECTED when
 * the handler refused (err says why, nothing of it is written yet).
 */
static int apply_command(struct cw_processor *p, struct cw_db *db, const struct cw_command *cmd,
                         const struct cw_texts *t, int64_t *pos, struct cw_outcome *o,
                         bool *handler_wrote, struct cw_error *err)
{
    int64_t first = *pos + 1, changes = cw_db_total_changes(db);
    emit_clear(&p->emit);
    int rc = o->env->def->handle(db, cmd, &p->emit, err);
    *handler_wrote = cw_db_total_changes(db) != changes;
    if (*handler_wrote)
        add_writer(p, o->env->def);
    if (rc)
        return rc;
    rc = apply_events(p, db, cmd, t->meta, pos, o, err);
    if (!rc && p->emit.n != 1) {
        struct cw_command_record rec = {.first_position = p->emit.n ? first : 0,
                                        .last_position = p->emit.n ? *pos : 0};
        rc = cw_store_update_command(db, cmd, &rec, err);
    }
    return rc;
}

/*
 * Runs one command: dedupe -> handle -> append events -> aggregate.
 * Returns CW_OK with o filled (events, rejection or duplicate); CW_ERR_AGAIN
 * when the whole batch must be retried after a pause; CW_ERR_STORE, in fast
 * mode only, when something written must be undone, so the batch must run
 * again in safe mode, where each command has its own savepoint. *failure
 * keeps why a command failed: on any later attempt of the batch that
 * command is rejected without running its domain code again (application
 * errors are never retried).
 *
 * The command row goes in first: inserting it is the idempotency check (the
 * key is UNIQUE), so a new command costs no extra lookup. It is recorded as
 * producing one event at the next position, the common case, and corrected
 * afterwards only when the outcome differs.
 *
 * Fast mode takes no savepoint, except for commands whose handler has been
 * seen writing: only those can refuse after writing, and after the first
 * time that happens (one safe re-run) they are guarded from the start.
 */
static int run_command(struct cw_processor *p, struct cw_db *db, bool safe, int64_t *pos,
                       struct cw_outcome *o, struct cw_error *failure)
{
    const struct cw_command *cmd = &o->env->cmd;
    struct cw_error err;
    cw_error_init(&err);
    struct cw_texts t = {
        .data = serialise(&p->cmd_text, cmd->data),
        .meta = serialise(&p->meta_text, cmd->meta),
    };
    int64_t first = *pos + 1;
    if (failure->code[0]) {
        cw_error_copy(&err, failure);
        int rc = record_rejection(p, db, cmd, o, &err, &t, &err);
        cw_error_release(&err);
        return rc == CW_ERR_AGAIN || rc == CW_OK ? rc : CW_ERR_AGAIN;
    }
    bool sp = safe || is_writer(p, o->env->def);
    int rc = sp ? cw_db_savepoint(db, &err) : CW_OK;
    /* Only the outcome fields are read while it is not a rejection: no zeroing. */
    struct cw_command_record rec;
    rec.rejected = false;
    rec.first_position = rec.last_position = first;
    if (!rc)
        rc = cw_store_insert_command(db, cmd, &rec, t.data, t.meta, &err);
    if (rc == CW_ERR_EXISTS) {
        if (sp)
            cw_db_rollback_to(db);
        rc = answer_duplicate(p, db, cmd, o, &err);
        goto out;
    }
    if (rc)
        goto out;
    memcpy(o->command_uuid, cmd->uuid, sizeof(o->command_uuid));
    bool wrote = false;
    rc = apply_command(p, db, cmd, &t, pos, o, &wrote, &err);
    if (rc && rc != CW_ERR_AGAIN && cw_db_held_lost(db)) {
        /* Earlier commands' event rows failed to go in: not this one's doing. */
        drop_events(o);
        rc = CW_ERR_STORE;
        goto out;
    }
    if (rc == CW_ERR_REJECTED && !wrote) {
        /* The usual refusal: nothing written but the row, which now says why. */
        fill_rejection(&rec, &err);
        rc = cw_store_update_command(db, cmd, &rec, &err);
        if (!rc) {
            o->rejected = true;
            cw_error_copy(&o->reject, &err);
        }
    }
    if (!rc) {
        rc = sp ? cw_db_release(db, &err) : CW_OK;
        goto out;
    }
    if (rc == CW_ERR_AGAIN)
        goto out;
    /* Domain code failed, or refused after writing: undo everything of this command. */
    if (rc != CW_ERR_REJECTED || !err.code[0])
        internal_error(cmd, &err);
    drop_events(o);
    *pos = first - 1;
    if (!sp) {
        cw_error_copy(failure, &err);
        rc = CW_ERR_STORE;
        goto out;
    }
    cw_db_rollback_to(db);
    rc = record_rejection(p, db, cmd, o, &err, &t, &err);
out:
    emit_clear(&p->emit);
    if (rc && rc != CW_ERR_AGAIN && rc != CW_ERR_STORE)
        cw_error("command.store", "command=%s error=\"%s\"", cmd->uuid, err.message);
    cw_error_release(&err);
    if (rc == CW_ERR_STORE && !safe)
        return CW_ERR_STORE;
    return rc ? CW_ERR_AGAIN : CW_OK;
}

/* Clears outcomes for another attempt, keeping their envelopes. */
static void reset_outcomes(struct cw_outcome *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct cw_envelope *env = items[i].env;
        items[i].env = NULL;
        cw_outcome_release(&items[i]);
        items[i].env = env;
    }
}

/* Tells the store the batch's commands (PostgreSQL looks their keys up at once). */
static int expect_commands(struct cw_db *db, struct cw_outcome *items, size_t n,
                           struct cw_error *err)
{
    const struct cw_command **cmds = cw_xcalloc(n, sizeof(*cmds));
    for (size_t i = 0; i < n; i++)
        cmds[i] = &items[i].env->cmd;
    int rc = cw_store_expect_commands(db, cmds, n, err);
    free(cmds);
    return rc;
}

/*
 * A store that sends writes without awaiting them (PostgreSQL) learns of a
 * failure later than the command that caused it: when it can name that
 * command, the command is failed as it would have been at once, so that
 * the safe run rejects it without running its domain code again.
 */
static void blame_failure(struct cw_db *db, struct cw_outcome *items, struct cw_error *failures)
{
    size_t k;
    struct cw_error why;
    cw_error_init(&why);
    if (cw_db_blamed(db, &k, &why) && !failures[k].code[0]) {
        internal_error(&items[k].env->cmd, &why);
        cw_error_copy(&failures[k], &why);
    }
    cw_error_release(&why);
}

/*
 * One attempt at the batch in one transaction. CW_OK once committed.
 *
 * The fast mode runs without savepoints: they cost a statement journal
 * copy of every page a command touches. Only a command whose domain code
 * fails after writing needs one, and then the batch runs again in safe
 * mode, each command in its own savepoint.
 */
static int run_batch(struct cw_processor *p, struct cw_outcome *items, struct cw_error *failures,
                     size_t n, bool safe, struct cw_error *err)
{
    struct cw_db *db = cw_store_writer(p->store);
    int64_t t0 = cw_mono_us(), pos = 0;
    int rc = cw_db_begin(db, err);
    /* Event rows go in 64 at a time; safe mode inserts each at once, so blame is exact. */
    cw_db_hold_events(db, !safe);
    cw_db_hold_commands(db, !safe);
    if (!rc && p->cfg.lead && !cw_db_leads(db)) {
        /* Fenced: the connection holding the lock is gone; another may lead now. */
        p->lost_lead = true;
        rc = cw_error_set(err, CW_ERR_AGAIN, NULL, "the processor lost the store's lead");
    }
    if (!rc)
        rc = cw_store_last_position(db, &pos, err);
    if (!rc && !safe)
        rc = expect_commands(db, items, n, err);
    for (size_t i = 0; !rc && i < n; i++) {
        cw_db_blame_next(db, i);
        rc = run_command(p, db, safe, &pos, &items[i], &failures[i]);
    }
    if (!rc)
        rc = cw_db_commit(db, err);
    cw_db_hold_events(db, false);
    cw_db_hold_commands(db, false);
    if (rc) {
        if (rc == CW_ERR_STORE && !safe)
            blame_failure(db, items, failures);
        cw_db_rollback(db);
        reset_outcomes(items, n);
        if (rc == CW_ERR_STORE && !safe)
            return run_batch(p, items, failures, n, true, err);
        return rc;
    }
    int64_t commit_us = cw_mono_us() - t0;
    p->last_position = pos;
    if (p->cfg.observer)
        p->cfg.observer(p->cfg.observer_arg, n, commit_us);
    pthread_mutex_lock(&p->lock);
    p->stats.batches++;
    p->stats.commands += n;
    p->stats.commit_us_total += (uint64_t)commit_us;
    for (size_t i = 0; i < n; i++) {
        p->stats.duplicates += items[i].duplicate;
        p->stats.rejected += items[i].rejected && !items[i].duplicate;
        p->stats.events += items[i].duplicate ? 0 : items[i].n_events;
    }
    pthread_mutex_unlock(&p->lock);
    return CW_OK;
}

/*
 * Notes a failed attempt: the condition others see, the counter, and a log
 * line when the failing starts or changes kind, then once per interval.
 */
static void note_failure(struct cw_processor *p, struct fault *f, size_t n,
                         const struct cw_error *err, int64_t delay)
{
    int condition =
        strcmp(err->code, CW_STORE_DISK_FULL) == 0 ? CW_CONDITION_DISK_FULL : CW_CONDITION_FAILING;
    int64_t now = cw_mono_us();
    if (!f->retries)
        f->since_us = now;
    f->retries++;
    atomic_store(&p->condition, condition);
    pthread_mutex_lock(&p->lock);
    p->stats.retries++;
    pthread_mutex_unlock(&p->lock);
    if (condition == f->condition && now - f->logged_us < FAULT_LOG_INTERVAL_US)
        return;
    f->condition = condition;
    f->logged_us = now;
    cw_warn("store.unavailable",
            "condition=%s for_ms=%lld retries=%u commands=%zu next_retry_ms=%lld error=\"%s\"",
            cw_condition_name(condition), (long long)((now - f->since_us) / 1000), f->retries, n,
            (long long)(delay / 1000), err->message);
}

/* Runs a batch until it commits; NULL when abandoned because of a stop. */
static struct cw_outcome_batch *process(struct cw_processor *p, struct cw_envelope **envs, size_t n)
{
    struct cw_outcome_batch *b = cw_xcalloc(1, sizeof(*b));
    b->items = cw_xcalloc(n, sizeof(*b->items));
    b->n = n;
    for (size_t i = 0; i < n; i++)
        b->items[i].env = envs[i];
    struct cw_error *failures = p->failures;
    struct fault f = {.condition = CW_CONDITION_OK};
    for (unsigned attempt = 0;; attempt++) {
        struct cw_error err = {0};
        atomic_store(&p->attempt_since_us, cw_mono_us());
        int rc = run_batch(p, b->items, failures, n, false, &err);
        atomic_store(&p->attempt_since_us, 0);
        if (!rc) {
            b->committed_at_us = cw_mono_us();
            b->last_position = p->last_position;
            break;
        }
        if (p->lost_lead) {
            cw_warn("processor.standby", "reason=lost-lead commands=%zu", n);
            cw_error_release(&err);
            p->lost_lead = p->leading = false;
            cw_outcome_batch_free(b);
            b = NULL;
            break;
        }
        int64_t delay = cw_retry_delay_us(attempt);
        if (!strcmp(err.code, CW_STORE_DISK_FULL) && delay > CW_RETRY_FULL_CAP_US)
            delay = CW_RETRY_FULL_CAP_US;
        note_failure(p, &f, n, &err, delay);
        cw_error_release(&err);
        if (cw_retry_sleep(&p->retry, delay)) {
            cw_error("batch.abandoned", "commands=%zu reason=shutdown", n);
            cw_outcome_batch_free(b);
            b = NULL;
            break;
        }
    }
    if (b && f.retries) {
        atomic_store(&p->condition, CW_CONDITION_OK);
        cw_info("store.recovered", "condition=%s after_ms=%lld retries=%u commands=%zu",
                cw_condition_name(f.condition), (long long)((cw_mono_us() - f.since_us) / 1000),
                f.retries, n);
    }
    /* Empty for the next batch; almost always nothing to clear. */
    for (size_t i = 0; i < n; i++) {
        if (failures[i].code[0] || failures[i].details) {
            cw_error_release(&failures[i]);
            cw_error_init(&failures[i]);
        }
    }
    return b;
}

/* The envelopes that asked to hear of their outcome themselves (see envelope.h). */
static void notify_submitters(struct cw_outcome_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct cw_envelope *env = b->items[i].env;
        if (env && env->done) {
            env->done(&b->items[i], env->done_arg);
            env->done = NULL;
        }
    }
}

/* Committed outcomes out: to the sink when there is one, else to the bus. */
static void publish(struct cw_processor *p, struct cw_outcome_batch *b)
{
    if (p->cfg.sink)
        p->cfg.sink(p->cfg.sink_arg, b);
    else
        cw_bus_publish(p->bus, b);
}

static void heartbeat(struct cw_processor *p)
{
    struct cw_outcome_batch *b = cw_xcalloc(1, sizeof(*b));
    b->last_position = p->last_position;
    publish(p, b);
}

/*
 * Waits, as a standby, until this processor holds the store's lead; false
 * when stopped first. The holder's lock dies with its connection, so a
 * standby takes over within one poll of the holder's death.
 */
static bool await_lead(struct cw_processor *p)
{
    struct cw_db *db = cw_store_writer(p->store);
    int64_t since = cw_mono_us();
    bool said = false;
    for (;;) {
        struct cw_error err = {0};
        bool held = false;
        int rc = cw_db_try_lead(db, p->cfg.lead_key, &held, &err);
        if (!rc && held)
            rc = cw_store_last_position(db, &p->last_position, &err);
        cw_error_release(&err);
        if (!rc && held)
            break;
        if (!said)
            cw_info("processor.standby", "reason=%s", rc ? "store-unavailable" : "another-leads");
        said = true;
        if (cw_retry_sleep(&p->retry, 100000))
            return false;
    }
    p->leading = true;
    cw_info("processor.active", "waited_ms=%lld last_position=%lld",
            (long long)((cw_mono_us() - since) / 1000), (long long)p->last_position);
    /* Tell the receivers where the log stands: they fill what the last one did not send. */
    heartbeat(p);
    return true;
}

static void *run(void *arg)
{
    struct cw_processor *p = arg;
    pthread_setname_np(pthread_self(), "cw-processor");
    struct cw_envelope **envs = cw_xmalloc(p->cfg.max_batch * sizeof(*envs));
    p->failures = cw_xcalloc(p->cfg.max_batch, sizeof(*p->failures));
    int64_t wait = p->cfg.heartbeat_us > 0 ? p->cfg.heartbeat_us : -1;
    for (;;) {
        if (p->cfg.lead && !p->leading && !await_lead(p))
            break;
        size_t n = cw_queue_take(p->q, envs, p->cfg.max_batch, wait);
        if (n == 0) {
            if (cw_queue_closed(p->q))
                break;
            if (wait > 0)
                heartbeat(p);
            continue;
        }
        struct cw_outcome_batch *b = process(p, envs, n);
        if (b) {
            notify_submitters(b);
            publish(p, b);
        }
        /* After the outcomes are out, so a queue that redelivers never loses an answer. */
        cw_queue_done(p->q, b != NULL);
        /* After the outcomes are out: a checkpoint's fsyncs then delay nobody's answer. */
        cw_store_finish_checkpoint(p->store);
    }
    free(envs);
    free(p->failures);
    p->failures = NULL;
    return NULL;
}

int cw_processor_start(struct cw_store *store, const struct cw_domain *d, struct cw_queue *q,
                       struct cw_bus *bus, const struct cw_processor_config *cfg,
                       struct cw_processor **out)
{
    struct cw_processor *p = cw_xcalloc(1, sizeof(*p));
    p->store = store;
    p->d = d;
    p->q = q;
    p->bus = bus;
    p->cfg = *cfg;
    if (!p->cfg.max_batch)
        p->cfg.max_batch = 4096;
    p->emit.d = d;
    pthread_mutex_init(&p->lock, NULL);
    cw_retry_init(&p->retry);
    if (pthread_create(&p->thread, NULL, run, p)) {
        cw_retry_release(&p->retry);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return CW_ERR_SYSTEM;
    }
    *out = p;
    return CW_OK;
}

void cw_processor_stop(struct cw_processor *p)
{
    if (!p)
        return;
    cw_retry_cancel(&p->retry);
    pthread_join(p->thread, NULL);
    emit_clear(&p->emit);
    free(p->emit.items);
    free(p->writers);
    cw_buf_release(&p->cmd_text);
    cw_buf_release(&p->meta_text);
    cw_buf_release(&p->data_text);
    cw_retry_release(&p->retry);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

const char *cw_condition_name(int condition)
{
    switch (condition) {
    case CW_CONDITION_OK:
        return "ok";
    case CW_CONDITION_STALLED:
        return "stalled";
    case CW_CONDITION_DISK_FULL:
        return "disk-full";
    default:
        return "failing";
    }
}

int cw_processor_condition(struct cw_processor *p)
{
    int condition = atomic_load(&p->condition);
    if (condition != CW_CONDITION_OK)
        return condition;
    int64_t since = atomic_load(&p->attempt_since_us);
    return since && cw_mono_us() - since > CW_STALL_US ? CW_CONDITION_STALLED : CW_CONDITION_OK;
}

void cw_processor_stats(struct cw_processor *p, struct cw_processor_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
    /* Read here, by the asking thread: the processor reading it cost a system call per batch. */
    int64_t cpu = cw_thread_cpu_us(p->thread);
    out->cpu_us = cpu > 0 ? (uint64_t)cpu : 0;
}
