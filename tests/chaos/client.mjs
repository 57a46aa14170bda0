// client.mjs - one logical client of the crash harness: a client id on a
// user's session that behaves as web/static/calderwood.js does. It keeps every
// command pending until its update or its rejection arrives, reconnects with
// backoff and jitter when the socket goes, resumes after the last position it
// saw, and on `resumed` resends every pending command with its original
// sequence number. Commands made while the connection is down wait, queued,
// for the next `resumed`.
//
// It also records what the checks need: every command with its outcome, and
// every update it received in arrival order, so that the harness can prove
// each position of the user's audience arrived exactly once and in order
// across all the resumes, and that each repeat was the answer to a resend.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

// The e2e suite owns the `ws` package (tests/e2e/package-lock.json); share it.
const WebSocket = createRequire(join(dirname(fileURLToPath(import.meta.url)), '..', 'e2e', 'package.json'))('ws');

const OPEN = 1;

export class ChaosClient {
    /**
     * opts: host, port, cookie, userUuid, clientId, rng (() => [0,1)),
     * makeCommand (rng => {name, data}), minDelayMs, maxDelayMs, noResend
     * (a deliberately broken client, to show the checks can fail).
     */
    constructor(opts) {
        this.o = opts;
        this.clientId = opts.clientId;
        this.userUuid = opts.userUuid;
        this.nextSeq = 0;
        this.commands = new Map(); // seq -> command record (all of them, ended or not)
        this.pending = new Map(); // seq -> command record, not yet ended
        this.firstResume = null; // position of the first resume: the stream starts after it
        this.lastPosition = null; // what the next resume asks after
        this.maxSeen = 0; // highest position received in an update
        this.seen = new Set(); // positions received
        this.stream = []; // positions received fresh, in arrival order
        this.anomalies = []; // { kind, detail }: repeats no resend explains, positions out of order
        this.live = false;
        this.ws = null;
        this.wanted = false;
        this.attempt = 0;
        this.connects = 0;
        this.resends = 0;
        this.overloaded = 0;
        this.closes = []; // close codes seen
        this.termChecks = []; // { pendingAcked } at each 1001 close
        this.timer = null;
        this.waiters = [];
        // Per connection, for the failure messages: resumed from, catch-up and live
        // updates (count, first, last), the `resumed` position, the close code.
        this.trace = [];
        this.conn = null;
    }

    start() {
        this.wanted = true;
        this.open();
    }

    stop() {
        this.wanted = false;
        clearTimeout(this.timer);
        if (this.ws) {
            try {
                this.ws.terminate();
            } catch {
                /* closed */
            }
        }
    }

    /** A new command, pending at once; sent now when live, else on the next `resumed`. */
    send(name, data) {
        const cmd = { seq: this.nextSeq++, name, data, sends: 0, acked: false, dupAcks: 0, outcome: null, positions: [], code: null };
        this.commands.set(cmd.seq, cmd);
        this.pending.set(cmd.seq, cmd);
        if (this.live) this.transmit(cmd);
        return cmd;
    }

    transmit(cmd) {
        if (!this.ws || this.ws.readyState !== OPEN) return;
        this.ws.send(JSON.stringify(['cmd', this.clientId, cmd.seq, { name: cmd.name, data: cmd.data, meta: {} }]));
        if (cmd.sends > 0) this.resends++;
        cmd.sends++;
    }

    open() {
        if (!this.wanted) return;
        if (this.lastPosition === null) throw new Error('first resume position not set');
        // Resumed at open, as calderwood.js does: the catch-up comes before anything live.
        const url = `ws://${this.o.host}:${this.o.port}/ws?after=${this.lastPosition}`;
        const ws = new WebSocket(url, { headers: { Cookie: this.o.cookie }, perMessageDeflate: false, handshakeTimeout: 10_000 });
        this.ws = ws;
        this.connects++;
        this.conn = { n: this.connects, from: null, catchup: [0, null, null], resumed: null, live: [0, null, null], close: null };
        this.trace.push(this.conn);
        const conn = this.conn;
        const from = this.lastPosition;
        ws.on('open', () => {
            if (this.firstResume === null) this.firstResume = from;
            conn.from = from;
        });
        ws.on('message', (data) => this.onMessage(JSON.parse(data.toString('utf8'))));
        ws.on('unexpected-response', (req, res) => {
            this.closes.push(`http-${res.statusCode}`);
            req.destroy();
            ws.emit('close', 0, Buffer.alloc(0));
        });
        ws.on('error', () => {
            /* a close follows */
        });
        let closed = false;
        ws.on('close', (code) => {
            if (closed) return;
            closed = true;
            this.dropped(ws, code);
        });
    }

    dropped(ws, code) {
        if (ws !== this.ws) return;
        if (code === 1001) {
            // A graceful stop: every command acked on this connection must have ended
            // before the close (one acked on an earlier one may not be resent yet).
            const pendingAcked = [...this.pending.values()].filter((c) => c.ackedOn === this.connects).length;
            this.termChecks.push({ pendingAcked });
        }
        this.closes.push(code);
        this.conn.close = code;
        this.ws = null;
        this.live = false;
        this.wake();
        if (!this.wanted) return;
        const base = Math.min(this.o.maxDelayMs, this.o.minDelayMs * 2 ** this.attempt);
        this.attempt++;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.open(), Math.round(base / 2 + this.o.rng() * (base / 2)));
    }

    onMessage(msg) {
        const [type, clientId, seq, body] = msg;
        const own = clientId === this.clientId ? this.commands.get(seq) : undefined;
        switch (type) {
            case 'cmd-ack':
                if (own) {
                    own.acked = true;
                    own.ackedOn = this.connects;
                    if (body.duplicate) own.dupAcks++;
                    own.commandUuid = body.command_uuid;
                }
                break;
            case 'error':
                if (own && body.code === 'overloaded') {
                    // Not queued (queue full or the server stopping): the protocol says try
                    // again; the next `resumed` resends it, or a short timer does.
                    this.overloaded++;
                    setTimeout(() => {
                        if (this.live && this.pending.has(own.seq)) this.transmit(own);
                    }, 200 + Math.round(this.o.rng() * 300));
                } else if (clientId === null && body.code === 'overloaded' && !this.live) {
                    // The resume itself was refused (workers busy, catch-up unreadable): as
                    // calderwood.js does, drop this connection and resume on a new one.
                    this.overloaded++;
                    this.ws.close(4001, 'resume refused');
                } else {
                    this.anomalies.push({ kind: 'error', detail: JSON.stringify(msg).slice(0, 300) });
                    if (own) this.end(own, 'error', body.code);
                }
                break;
            case 'update':
                this.onUpdate(own, body);
                break;
            case 'rejected':
                if (!own) {
                    this.anomalies.push({ kind: 'foreign-rejected', detail: JSON.stringify(msg).slice(0, 300) });
                } else if (this.pending.has(own.seq)) {
                    this.end(own, 'rejected', body.code);
                } else if (own.outcome !== 'rejected' || own.sends < 2) {
                    this.anomalies.push({ kind: 'ended-twice', detail: `seq ${seq} ${own.outcome} then rejected` });
                }
                break;
            case 'resumed':
                if (typeof clientId === 'number' && clientId > this.lastPosition) this.lastPosition = clientId;
                this.conn.resumed = clientId;
                this.live = true;
                this.attempt = 0;
                for (const cmd of [...this.pending.values()].sort((a, b) => a.seq - b.seq)) {
                    // noResend: a broken client that sends what it queued but never resends.
                    if (!this.o.noResend || cmd.sends === 0) this.transmit(cmd);
                }
                break;
            default:
                break;
        }
        this.wake();
    }

    onUpdate(own, ev) {
        const p = ev.position;
        const t = this.live ? this.conn.live : this.conn.catchup;
        t[0]++;
        if (t[1] === null) t[1] = p;
        t[2] = p;
        const where = `on connection ${this.conn.n} ${this.live ? 'live' : 'in catch-up'}`;
        if (p > this.maxSeen) {
            this.maxSeen = p;
            this.seen.add(p);
            this.stream.push(p);
            if (p > this.lastPosition) this.lastPosition = p;
        } else if (this.seen.has(p)) {
            // A repeat is fine only as the answer to a resend of this client's own command.
            if (!(own && own.sends > 1)) this.anomalies.push({ kind: 'duplicate', detail: `position ${p} again ${where}` });
        } else {
            // Below what was already seen and never seen: it was skipped and came late
            // (a lost update a resend happened to recover still counts as a gap).
            this.seen.add(p);
            this.anomalies.push({ kind: 'out-of-order', detail: `position ${p} after ${this.maxSeen} ${where}` });
        }
        if (!own) return;
        if (this.pending.has(own.seq)) {
            own.positions.push(p);
            this.end(own, 'processed', null);
        } else if (own.outcome === 'processed') {
            if (!own.positions.includes(p)) own.positions.push(p);
        } else {
            this.anomalies.push({ kind: 'ended-twice', detail: `seq ${own.seq} ${own.outcome} then update ${p}` });
        }
    }

    /** The connections that should have carried position p: resumed before it, and open past it. */
    carriers(p) {
        return this.trace.filter((c) => c.from !== null && c.from < p && Math.max(c.resumed ?? 0, c.catchup[2] ?? 0, c.live[2] ?? 0) >= p);
    }

    /** One connection's trace as a short text. */
    static describe(c) {
        const r = (t) => `${t[0]}${t[0] ? ` (${t[1]}..${t[2]})` : ''}`;
        return `#${c.n} resume ${c.from} catch-up ${r(c.catchup)} resumed ${c.resumed} live ${r(c.live)} close ${c.close}`;
    }

    end(cmd, outcome, code) {
        cmd.outcome = outcome;
        cmd.code = code;
        this.pending.delete(cmd.seq);
    }

    /** Resolves when cond() holds (checked after each message) or rejects after timeoutMs. */
    until(cond, timeoutMs, what) {
        if (cond()) return Promise.resolve();
        return new Promise((resolve, reject) => {
            const w = { cond, resolve };
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`${this.clientId}: ${what} not within ${timeoutMs} ms`));
            }, timeoutMs);
            this.waiters.push(w);
        });
    }

    wake() {
        for (const w of [...this.waiters]) {
            if (w.cond()) {
                clearTimeout(w.timer);
                this.waiters.splice(this.waiters.indexOf(w), 1);
                w.resolve();
            }
        }
    }
}
