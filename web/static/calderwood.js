// calderwood.js - the Calderwood client library (an ES module, no dependencies).
//
// Commands go over one WebSocket (/ws), queries over POST /query; both use the
// session cookie the login page set. The client keeps every command it sent
// as pending until the server ends it (update(s), rejected or error), and
// survives lost connections: it reconnects with exponential backoff and
// jitter, opens each connection resuming after the last position it saw
// (/ws?after=N; kept in sessionStorage, so a reload resumes too), and once the
// server says `resumed` it resends the pending commands with their original
// client id and sequence. The server's idempotency makes the resend safe;
// updates the client has already seen (same position) are not reported
// twice. The wire protocol is docs/PROTOCOL.md; the guide is docs/CLIENT.md.
//
// A command refused as `overloaded` (nothing was queued; the server is busy
// or stopping) is sent again after a backoff, a few times. What it
// deliberately does not do: retry any other refusal (`error`) or a
// `rejected` command; that is the application's choice. Commands still
// pending when the page is closed are lost.

/** Connection states, in the order a healthy client goes through them. */
export const STATES = Object.freeze(['idle', 'connecting', 'live', 'reconnecting', 'unauthorized', 'closed']);

/** Command states. `queued`, `sent` and `acked` are pending; the other three are final. */
export const COMMAND_STATES = Object.freeze(['queued', 'sent', 'acked', 'processed', 'rejected', 'error']);

const FINAL = new Set(['processed', 'rejected', 'error']);

/** An error from the server (or the network), with the protocol's code and details. */
export class CalderwoodError extends Error {
    constructor(code, message, details = null, extra = {}) {
        super(message || code);
        this.name = 'CalderwoodError';
        this.code = code;
        this.details = details;
        Object.assign(this, extra);
    }
}

/** A random RFC 4122 version 4 UUID (crypto.randomUUID needs a secure context; this does not). */
export function randomUuid() {
    if (globalThis.crypto?.randomUUID && globalThis.isSecureContext) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Microseconds since the Unix epoch, with sub-millisecond resolution (the protocol's unit of time). */
export function nowUs() {
    return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** One command: what was sent, and what became of it. Read its fields; do not change them. */
export class Command {
    constructor(client, seq, name, data, meta) {
        this.clientId = client.clientId;
        this.seq = seq;
        this.name = name;
        this.data = data;
        this.meta = meta;
        this.state = 'queued';
        /** Every state this command went through, with performance.now() times: [{state, at}]. */
        this.history = [{ state: 'queued', at: performance.now() }];
        this.sends = 0; // how many times it was written to a socket (more than 1 after a reconnect)
        this.overloaded = 0; // how many times the server answered `overloaded` (then it was sent again)
        this.commandUuid = null;
        this.duplicate = false; // the server had seen this (client id, seq) before
        this.events = []; // the events it produced, in position order
        this.code = null; // for rejected and error
        this.message = null;
        this.details = null;
        /** Resolves with this command once processed; rejects with a CalderwoodError when rejected or refused. */
        this.done = new Promise((resolve, reject) => {
            this._resolve = resolve;
            this._reject = reject;
        });
        this.done.catch(() => {}); // an application that ignores `done` leaves no unhandled rejection
    }

    get pending() {
        return !FINAL.has(this.state);
    }

    _to(state) {
        this.state = state;
        this.history.push({ state, at: performance.now() });
    }
}

const DEFAULTS = {
    baseUrl: null, // default: the page's origin
    clientId: null, // default: a random UUID per Calderwood instance (one per tab)
    storage: undefined, // default: sessionStorage; null keeps the position in memory only
    storageKey: 'calderwood.last-position',
    minDelayMs: 500, // first reconnect delay (before jitter)
    maxDelayMs: 15000, // reconnect delay cap
    pingIntervalMs: 20000, // a ping this often while live ...
    pongTimeoutMs: 10000, // ... and a connection without a pong this long after it is dropped
    maxMessageBytes: 65536, // the server's default --max-message; larger commands fail locally
    sentAtKey: 'sent_at', // meta key stamped with the send time in µs (null: no stamp)
    overloadedRetries: 8, // times a command refused as `overloaded` is sent again before it ends in error
};

/**
 * The client. An EventTarget; every event is a CustomEvent whose `detail` is
 * described in docs/CLIENT.md: state, ack, error, update, rejected, resumed,
 * command (any change of a command's state).
 */
export class Calderwood extends EventTarget {
    constructor(options = {}) {
        super();
        this.options = { ...DEFAULTS, ...options };
        const base = this.options.baseUrl || globalThis.location.origin;
        this.baseUrl = base.replace(/\/$/, '');
        this.wsUrl = `${this.baseUrl.replace(/^http/, 'ws')}/ws`;
        this.clientId = this.options.clientId || randomUuid();
        this.storage = this.options.storage === undefined ? safeSessionStorage() : this.options.storage;
        this.state = 'idle';
        this.attempt = 0; // failed connections in a row
        this.retryAt = null; // Date.now() of the next attempt while reconnecting
        this.lastPosition = this.#loadPosition(); // null until known
        this.nextSeq = 1;
        /** Pending commands by sequence, in the order they were sent. */
        this.pending = new Map();
        this.#recent = new Map(); // the last finished commands, for extra events of a multi-event command
        this.#ws = null;
        this.#live = false;
        this.#timers = { retry: null, ping: null, pong: null };
        this.#pingSeq = 0;
        this.#onOnline = () => {
            if (this.state === 'reconnecting') this.#retryNow();
        };
    }

    #recent;
    #ws;
    #live;
    #timers;
    #pingSeq;
    #onOnline;
    #wanted = false;

    // ------------------------------------------------------------ public API

    /** Opens the connection (and keeps it open, reconnecting, until close()). */
    connect() {
        if (this.#wanted) return this;
        this.#wanted = true;
        globalThis.addEventListener?.('online', this.#onOnline);
        this.#open();
        return this;
    }

    /** Closes the connection for good. Pending commands stay pending (and are not resent). */
    close() {
        globalThis.removeEventListener?.('online', this.#onOnline);
        this.#stop('client closed');
        this.#setState('closed');
    }

    /**
     * Sends a command; returns its Command at once (state `queued`, or `sent`
     * when the connection is live). meta is copied and stamped with the send
     * time (meta.sent_at, µs since the epoch) unless it has one.
     */
    send(name, data = {}, meta = {}) {
        if (typeof name !== 'string' || !name) throw new TypeError('a command name is a non-empty string');
        if (!isPlainObject(data)) throw new TypeError('command data is an object');
        if (!isPlainObject(meta)) throw new TypeError('command meta is an object');
        const stamped = { ...meta };
        const key = this.options.sentAtKey;
        if (key && stamped[key] === undefined) stamped[key] = nowUs();
        const cmd = new Command(this, this.nextSeq++, name, data, stamped);
        const bytes = new TextEncoder().encode(this.#frame(cmd)).length;
        if (bytes > this.options.maxMessageBytes) {
            this.#finish(cmd, 'error', {
                code: 'too-large',
                message: `the command is ${bytes} bytes; the limit is ${this.options.maxMessageBytes}`,
                details: { bytes, limit: this.options.maxMessageBytes },
            });
            this.#emit('error', { command: cmd, code: cmd.code, message: cmd.message, details: cmd.details });
            return cmd;
        }
        this.pending.set(cmd.seq, cmd);
        this.#emit('command', { command: cmd });
        if (this.#live) this.#transmit(cmd);
        return cmd;
    }

    /**
     * Runs a query. Resolves { result, ms } (ms: the round trip measured here);
     * rejects with a CalderwoodError (code from the server, `unauthorized`,
     * or `network` when the server could not be reached).
     */
    async query(name, data = {}) {
        const started = performance.now();
        let res;
        try {
            res = await fetch(`${this.baseUrl}/query`, {
                method: 'POST',
                credentials: 'same-origin',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ name, data }),
            });
        } catch (e) {
            throw new CalderwoodError('network', `the server could not be reached (${e.message})`, null, { status: 0 });
        }
        const ms = performance.now() - started;
        let body = null;
        try {
            body = await res.json();
        } catch {
            /* a body that is not JSON (413 from a proxy, ...) */
        }
        if (res.status === 401) {
            this.#unauthorized();
            throw new CalderwoodError('unauthorized', body?.error?.message || 'no valid session', null, { status: 401, ms });
        }
        if (Array.isArray(body) && body[0] === 'ok') return { result: body[1], ms };
        const err = Array.isArray(body) ? body[1] : body?.error;
        throw new CalderwoodError(err?.code || `http-${res.status}`, err?.message || res.statusText, err?.details ?? null, {
            status: res.status,
            ms,
        });
    }

    /** The commands and queries the server knows, with their fields (the built-in `describe` query). */
    async describe() {
        return (await this.query('describe')).result;
    }

    /** Milliseconds until the next connection attempt while reconnecting, else 0. */
    get retryInMs() {
        return this.retryAt ? Math.max(0, this.retryAt - Date.now()) : 0;
    }

    // ------------------------------------------------------------ connection

    async #open() {
        if (!this.#wanted) return;
        this.retryAt = null;
        this.#setState('connecting');
        if (this.lastPosition === null) {
            // First connection of this tab: start after the newest event the user may see,
            // so the first resume is a short one and nothing after it is missed.
            try {
                const { result } = await this.query('events', { limit: 1 });
                if (this.lastPosition === null) this.#setPosition(result.length ? result[0].position : 0);
            } catch (e) {
                if (e.code !== 'unauthorized') this.#scheduleRetry();
                return;
            }
            if (!this.#wanted) return;
        }
        let ws;
        try {
            // Resuming in the URL starts the catch-up before any live update can come in
            // front of it, so what arrives is one stream in position order.
            ws = new WebSocket(`${this.wsUrl}?after=${this.lastPosition}`);
        } catch (e) {
            this.#scheduleRetry();
            return;
        }
        this.#ws = ws;
        let opened = false;
        ws.onopen = () => {
            opened = true;
        };
        ws.onmessage = (ev) => this.#onMessage(ev.data);
        ws.onclose = () => {
            if (ws !== this.#ws) return;
            this.#dropped(opened);
        };
        ws.onerror = () => {
            /* a close event follows */
        };
    }

    /** The socket is gone: pending commands wait for the next connection. */
    async #dropped(opened) {
        const ws = this.#ws;
        if (ws) detach(ws);
        this.#ws = null;
        this.#live = false;
        this.#clearTimers();
        if (!this.#wanted) return;
        if (!opened) {
            // The upgrade was refused or the server is down; a refused upgrade (401) looks the
            // same as a network failure to a page, so ask /query whether the session still holds.
            try {
                await this.query('describe');
            } catch (e) {
                if (e.code === 'unauthorized') return;
            }
        }
        this.#scheduleRetry();
    }

    #scheduleRetry() {
        if (!this.#wanted || this.state === 'unauthorized') return;
        const base = Math.min(this.options.maxDelayMs, this.options.minDelayMs * 2 ** this.attempt);
        const delay = Math.round(base / 2 + Math.random() * (base / 2)); // "equal jitter"
        this.attempt++;
        this.retryAt = Date.now() + delay;
        clearTimeout(this.#timers.retry);
        this.#timers.retry = setTimeout(() => this.#open(), delay);
        this.#setState('reconnecting');
    }

    #retryNow() {
        clearTimeout(this.#timers.retry);
        this.#open();
    }

    #unauthorized() {
        if (this.state === 'unauthorized') return;
        this.#stop('session ended');
        this.retryAt = null;
        this.#setState('unauthorized');
    }

    /** Stops for good: no reconnection, no timers, the socket closed with reason. */
    #stop(reason) {
        this.#wanted = false;
        this.#clearTimers();
        const ws = this.#ws;
        this.#ws = null;
        this.#live = false;
        if (ws) {
            detach(ws);
            try {
                ws.close(1000, reason);
            } catch {
                /* already closed */
            }
        }
    }

    #clearTimers() {
        clearTimeout(this.#timers.retry);
        clearInterval(this.#timers.ping);
        clearTimeout(this.#timers.pong);
        this.#timers.retry = this.#timers.ping = this.#timers.pong = null;
    }

    #startPings() {
        clearInterval(this.#timers.ping);
        this.#timers.ping = setInterval(() => {
            if (!this.#live) return;
            this.#rawSend(['ping', ++this.#pingSeq]);
            clearTimeout(this.#timers.pong);
            this.#timers.pong = setTimeout(() => {
                // No pong: the connection is dead even if the socket does not know it yet.
                try {
                    this.#ws?.close(4000, 'no pong');
                } catch {
                    /* closed */
                }
                this.#dropped(true);
            }, this.options.pongTimeoutMs);
        }, this.options.pingIntervalMs);
    }

    // -------------------------------------------------------------- messages

    #onMessage(text) {
        const receivedAt = nowUs();
        let msg;
        try {
            msg = JSON.parse(text);
        } catch {
            return; // the server sends JSON only; ignore anything else
        }
        if (!Array.isArray(msg)) return;
        const [type, clientId, seq, body] = msg;
        const own = clientId === this.clientId ? this.pending.get(seq) || this.#recent.get(seq) || null : null;
        switch (type) {
            case 'cmd-ack':
                if (own && own.pending) {
                    own.commandUuid = body?.command_uuid ?? null;
                    own.duplicate = Boolean(body?.duplicate);
                    if (own.state !== 'acked') own._to('acked');
                    this.#emit('ack', { command: own, duplicate: own.duplicate });
                    this.#emit('command', { command: own });
                }
                break;
            case 'error': {
                const code = body?.code ?? 'error';
                let retrying = false;
                if (own && own.pending) {
                    if (code === 'overloaded' && own.overloaded < this.options.overloadedRetries) {
                        retrying = true; // nothing was queued: the protocol says try again later
                        this.#retryLater(own);
                    } else {
                        this.#finish(own, 'error', body || {});
                    }
                }
                this.#emit('error', {
                    command: own,
                    clientId,
                    seq,
                    code,
                    message: body?.message ?? '',
                    details: body?.details ?? null,
                    retrying,
                });
                if (code === 'unauthorized') {
                    this.#unauthorized(); // the session ended: no reconnecting
                } else if (clientId === null && code === 'overloaded' && !this.#live && this.#ws) {
                    // The resume itself was refused (the server is busy): try again on a new
                    // connection after the usual backoff.
                    const ws = this.#ws;
                    this.#dropped(true);
                    try {
                        ws.close(4001, 'resume refused');
                    } catch {
                        /* closed */
                    }
                }
                break;
            }
            case 'update':
                this.#onUpdate(own, clientId, seq, body, receivedAt);
                break;
            case 'rejected':
                if (own && own.pending) {
                    own.commandUuid = body?.command_uuid ?? own.commandUuid;
                    this.#finish(own, 'rejected', body || {});
                    this.#emit('rejected', { command: own, code: own.code, message: own.message });
                }
                break;
            case 'resumed':
                this.#onResumed(clientId);
                break;
            case 'pong':
                clearTimeout(this.#timers.pong);
                this.#timers.pong = null;
                break;
            default:
                break;
        }
    }

    #onUpdate(own, clientId, seq, event, receivedAt) {
        if (!event || typeof event.position !== 'number') return;
        const fresh = this.lastPosition === null || event.position > this.lastPosition;
        if (fresh) this.#setPosition(event.position);
        if (own) {
            if (own.pending) {
                own.events.push(event);
                this.#finish(own, 'processed', {});
            } else if (fresh && own.state === 'processed') {
                own.events.push(event); // a further event of the same command
                this.#emit('command', { command: own });
            }
        }
        // A position seen before is a replay (the catch-up of a resume, or the updates of a
        // resent command): it settled the command above but is not news.
        if (fresh) {
            this.#emit('update', { event, command: own, clientId, seq, receivedAt, catchUp: !this.#live });
        }
    }

    #onResumed(position) {
        if (typeof position === 'number' && (this.lastPosition === null || position > this.lastPosition)) {
            this.#setPosition(position);
        }
        this.#live = true;
        this.attempt = 0;
        this.#setState('live');
        this.#emit('resumed', { position: this.lastPosition });
        // Everything not yet ended goes (again) in sequence order: the server answers a
        // command it already has with a duplicate ack and its outcome.
        for (const cmd of [...this.pending.values()].sort((a, b) => a.seq - b.seq)) {
            if (cmd.pending) this.#transmit(cmd);
        }
        this.#startPings();
    }

    // --------------------------------------------------------------- helpers

    #frame(cmd) {
        return JSON.stringify(['cmd', this.clientId, cmd.seq, { name: cmd.name, data: cmd.data, meta: cmd.meta }]);
    }

    /** An `overloaded` command goes back to queued and is sent again after a jittered backoff. */
    #retryLater(cmd) {
        const base = Math.min(5000, 250 * 2 ** cmd.overloaded);
        cmd.overloaded++;
        cmd.history.push({ state: 'overloaded', at: performance.now() });
        cmd._to('queued');
        this.#emit('command', { command: cmd });
        setTimeout(() => {
            // Still waiting (a reconnect in between may have resent it already).
            if (this.#live && cmd.state === 'queued') this.#transmit(cmd);
        }, Math.round(base / 2 + Math.random() * (base / 2)));
    }

    #transmit(cmd) {
        if (!this.#rawSendText(this.#frame(cmd))) return;
        cmd.sends++;
        cmd._to('sent');
        this.#emit('command', { command: cmd });
    }

    #rawSend(msg) {
        return this.#rawSendText(JSON.stringify(msg));
    }

    #rawSendText(text) {
        const ws = this.#ws;
        if (!ws || ws.readyState !== 1) return false;
        try {
            ws.send(text);
            return true;
        } catch {
            return false;
        }
    }

    #finish(cmd, state, body) {
        cmd.code = body.code ?? null;
        cmd.message = body.message ?? null;
        cmd.details = body.details ?? null;
        cmd._to(state);
        this.pending.delete(cmd.seq);
        this.#recent.set(cmd.seq, cmd);
        if (this.#recent.size > 256) this.#recent.delete(this.#recent.keys().next().value);
        if (state === 'processed') cmd._resolve(cmd);
        else cmd._reject(new CalderwoodError(cmd.code, cmd.message, cmd.details, { command: cmd }));
        this.#emit('command', { command: cmd });
    }

    #setState(state) {
        if (this.state === state && state !== 'reconnecting') return;
        this.state = state;
        this.#emit('state', { state, attempt: this.attempt, retryAt: this.retryAt, retryInMs: this.retryInMs });
    }

    #setPosition(position) {
        this.lastPosition = position;
        try {
            this.storage?.setItem(this.options.storageKey, String(position));
        } catch {
            /* storage full or disabled: the position lives in memory */
        }
    }

    #loadPosition() {
        try {
            const v = this.storage?.getItem(this.options.storageKey);
            const n = v === null || v === undefined ? NaN : Number(v);
            return Number.isSafeInteger(n) && n >= 0 ? n : null;
        } catch {
            return null;
        }
    }

    /** Forgets the stored position (call it on logout, so the next user starts afresh). */
    forgetPosition() {
        try {
            this.storage?.removeItem(this.options.storageKey);
        } catch {
            /* nothing stored */
        }
    }

    #emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }
}

function detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}

function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function safeSessionStorage() {
    try {
        return globalThis.sessionStorage ?? null;
    } catch {
        return null;
    }
}
