// client.mjs - clients for end-to-end tests: plain HTTP, login, queries, a
// WebSocket client that collects messages (`ws` package), and a raw TCP
// WebSocket client for protocol edge cases (hand-built frames).

import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DEFAULT_TIMEOUT = Number(process.env.CW_E2E_TIMEOUT_MS || 20_000);

// ------------------------------------------------------------------ HTTP

/**
 * One HTTP request, no redirect following. body: string | Buffer | object
 * (sent as JSON). Resolves { status, headers, text, body (Buffer), json() }.
 * A write error after the response arrived (the server answered early, e.g.
 * 413, and closed) is ignored.
 */
export function request(server, method, path, { headers = {}, body, cookie, timeoutMs = DEFAULT_TIMEOUT, localAddress } = {}) {
    return new Promise((resolveP, reject) => {
        const h = { ...headers };
        let payload;
        if (body !== undefined) {
            if (Buffer.isBuffer(body) || typeof body === 'string') payload = body;
            else {
                payload = JSON.stringify(body);
                if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
            }
            h['Content-Length'] = Buffer.byteLength(payload);
        }
        if (cookie) h.Cookie = cookie;
        let answered = false;
        const req = http.request(
            { host: server.host, port: server.port, method, path, headers: h, agent: false, timeout: timeoutMs, localAddress },
            (res) => {
                answered = true;
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('error', reject);
                res.on('end', () => {
                    req.destroy(); // no keep-alive: an idle socket would hold the test process open
                    const buf = Buffer.concat(chunks);
                    const text = buf.toString('utf8');
                    resolveP({
                        status: res.statusCode,
                        headers: res.headers,
                        body: buf,
                        text,
                        json() {
                            try {
                                return JSON.parse(text);
                            } catch {
                                throw new Error(`${method} ${path}: body is not JSON (status ${res.statusCode}): ${text.slice(0, 300)}`);
                            }
                        },
                    });
                });
            },
        );
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
        req.on('error', (e) => {
            if (!answered) reject(e);
        });
        if (payload !== undefined) req.write(payload);
        req.end();
    });
}

/** Parses Set-Cookie headers into [{ name, value, attrs: {lower-case name: value|true}, raw }]. */
export function parseSetCookies(headers) {
    const list = headers['set-cookie'] || [];
    return list.map((raw) => {
        const [pair, ...rest] = raw.split(';');
        const eq = pair.indexOf('=');
        const attrs = {};
        for (const a of rest) {
            const i = a.indexOf('=');
            const k = (i < 0 ? a : a.slice(0, i)).trim().toLowerCase();
            if (k) attrs[k] = i < 0 ? true : a.slice(i + 1).trim();
        }
        return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs, raw };
    });
}

/** The cw_session Set-Cookie of a response, or undefined. */
export function sessionCookieOf(res) {
    return parseSetCookies(res.headers).find((c) => c.name === 'cw_session');
}

/**
 * JSON login. Resolves { status, cookie ("cw_session=..."), user_uuid,
 * session_uuid, res }; throws unless `expectOk: false` and the login failed.
 * Unless `committed: false`, it also waits for the session-started event to
 * commit (see sessionCommitted).
 */
export async function login(server, email, password, { expectOk = true, headers = {}, localAddress, committed = true } = {}) {
    const res = await request(server, 'POST', '/login', { body: { email, password }, headers, localAddress });
    const c = sessionCookieOf(res);
    if (expectOk && (res.status !== 200 || !c)) {
        throw new Error(`login ${email} failed: ${res.status} ${res.text.slice(0, 300)}`);
    }
    const out = { status: res.status, res, cookie: c ? `cw_session=${c.value}` : null, cookieValue: c?.value };
    if (res.status === 200) {
        Object.assign(out, res.json());
        if (committed) await sessionCommitted(server, out.cookie, out.session_uuid);
    }
    return out;
}

/**
 * A login is answered once its session-started command is queued; the event
 * commits a moment later and then reaches the user's connections as an
 * update. Tests that expect a connection's first message to answer their
 * own wait here, so that update cannot come in between.
 */
async function sessionCommitted(server, cookie, sessionUuid, timeoutMs = DEFAULT_TIMEOUT) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const r = await query(server, cookie, 'events', { name: 'session-started', limit: 20 });
        if (r.status === 200 && r.body[1].some((e) => e.data.session_uuid === sessionUuid)) return;
        if (Date.now() > deadline) throw new Error(`session ${sessionUuid}: session-started not committed in ${timeoutMs} ms`);
        await delay(10);
    }
}

/** Logs in the server's known user `email` (password from server.users). */
export function loginAs(server, email, opts) {
    return login(server, email, server.user(email).password, opts);
}

/** POST /query; resolves { status, body (parsed JSON or null), res }. */
export async function query(server, cookie, name, data, { rawBody, headers } = {}) {
    const body = rawBody !== undefined ? rawBody : data === undefined ? { name } : { name, data };
    const res = await request(server, 'POST', '/query', {
        cookie,
        body,
        headers: rawBody !== undefined ? { 'Content-Type': 'application/json', ...headers } : headers,
    });
    let parsed = null;
    try {
        parsed = JSON.parse(res.text);
    } catch {
        parsed = null;
    }
    return { status: res.status, body: parsed, res };
}

/** POST /query that must succeed; returns RESULT of ["ok", RESULT]. */
export async function queryOk(server, cookie, name, data) {
    const r = await query(server, cookie, name, data);
    if (r.status !== 200 || !Array.isArray(r.body) || r.body[0] !== 'ok') {
        throw new Error(`query ${name} ${JSON.stringify(data)}: ${r.status} ${r.res.text.slice(0, 500)}`);
    }
    return r.body[1];
}

// ------------------------------------------------------------ WebSocket

/** Error for an HTTP answer instead of a WebSocket upgrade. */
export class UpgradeRefused extends Error {
    constructor(status, headers, text) {
        super(`WebSocket upgrade refused with HTTP ${status}: ${text.slice(0, 300)}`);
        this.status = status;
        this.headers = headers;
        this.text = text;
    }
    json() {
        return JSON.parse(this.text);
    }
}

let clientCounter = 0;
/** A fresh client id, unique in this process and across runs. */
export function newClientId(prefix = 'e2e') {
    clientCounter += 1;
    return `${prefix}-${process.pid}-${clientCounter}-${crypto.randomBytes(4).toString('hex')}`;
}

/**
 * A WebSocket client that parses and keeps every message.
 *
 * `next(pred, timeoutMs)` takes the first message not yet taken that matches
 * pred (waiting for it if needed); messages that no `next` took stay
 * available to later calls, so tests can wait for things in any order.
 * `log` keeps every message received, in order, taken or not.
 */
export class WsClient {
    constructor(ws, label) {
        this.ws = ws;
        this.label = label;
        this.log = []; // every parsed message, in arrival order
        this.inbox = []; // messages not yet taken by next()
        this.waiters = [];
        this.closeInfo = null;
        this.nonJson = [];
        this.keep = null; // optional filter: messages it refuses are counted, not kept
        this.dropped = 0;
        this.onMessage = null; // optional hook called with every parsed message
        this.closed = new Promise((res) => {
            ws.on('close', (code, reason) => {
                this.closeInfo = { code, reason: reason.toString('utf8') };
                for (const w of this.waiters.splice(0)) {
                    clearTimeout(w.timer);
                    w.reject(new Error(`${this.label}: connection closed (${code} ${this.closeInfo.reason}) while waiting for ${w.what}`));
                }
                res(this.closeInfo);
            });
        });
        ws.on('error', () => {
            /* surfaces as close */
        });
        ws.on('message', (data, isBinary) => {
            let msg;
            try {
                msg = JSON.parse(data.toString('utf8'));
            } catch {
                this.nonJson.push({ data, isBinary });
                return;
            }
            if (this.onMessage) this.onMessage(msg);
            if (this.keep && !this.keep(msg)) {
                this.dropped += 1;
                return;
            }
            this.log.push(msg);
            for (let i = 0; i < this.waiters.length; i++) {
                const w = this.waiters[i];
                if (w.pred(msg)) {
                    this.waiters.splice(i, 1);
                    clearTimeout(w.timer);
                    w.resolve(msg);
                    return;
                }
            }
            this.inbox.push(msg);
        });
    }

    /**
     * Opens /ws. opts: cookie, origin, headers, path. Rejects with
     * UpgradeRefused when the server answers HTTP instead of upgrading.
     */
    static connect(server, { cookie, origin, headers = {}, path = '/ws', timeoutMs = DEFAULT_TIMEOUT, label } = {}) {
        return new Promise((resolveP, reject) => {
            const h = { ...headers };
            if (cookie) h.Cookie = cookie;
            const wsOpts = { headers: h, perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 64 * 1024 * 1024 };
            if (origin) wsOpts.origin = origin;
            const ws = new WebSocket(`ws://${server.host}:${server.port}${path}`, wsOpts);
            const client = new WsClient(ws, label || newClientId('conn'));
            let settled = false;
            ws.on('unexpected-response', (req, res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => {
                    settled = true;
                    reject(new UpgradeRefused(res.statusCode, res.headers, Buffer.concat(chunks).toString('utf8')));
                    req.destroy();
                });
            });
            ws.on('open', () => {
                settled = true;
                resolveP(client);
            });
            ws.on('error', (e) => {
                if (!settled) {
                    settled = true;
                    reject(e);
                }
            });
        });
    }

    get isOpen() {
        return this.ws.readyState === WebSocket.OPEN;
    }

    send(msg) {
        this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    }

    /** Sends ["cmd", clientId, seq, {name, data, meta?}]. */
    cmd(clientId, seq, name, data, meta) {
        const body = { name, data };
        if (meta !== undefined) body.meta = meta;
        this.send(['cmd', clientId, seq, body]);
    }

    next(pred, timeoutMs = DEFAULT_TIMEOUT, what = String(pred)) {
        const i = this.inbox.findIndex(pred);
        if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
        if (this.closeInfo) {
            return Promise.reject(new Error(`${this.label}: connection closed (${this.closeInfo.code}) before ${what}`));
        }
        return new Promise((resolveP, reject) => {
            const w = { pred, resolve: resolveP, reject, what };
            w.timer = setTimeout(() => {
                const k = this.waiters.indexOf(w);
                if (k >= 0) this.waiters.splice(k, 1);
                const recent = this.inbox.slice(-5).map((m) => JSON.stringify(m).slice(0, 300));
                reject(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}; untaken recent: ${recent.join(' | ')}`));
            }, timeoutMs);
            this.waiters.push(w);
        });
    }

    /** Next message of a type (and ids when given). */
    nextOf(type, clientId, seq, timeoutMs) {
        return this.next(
            (m) => m[0] === type && (clientId === undefined || m[1] === clientId) && (seq === undefined || m[2] === seq),
            timeoutMs,
            `${type} ${clientId ?? ''} ${seq ?? ''}`,
        );
    }

    ack(clientId, seq, timeoutMs) {
        return this.nextOf('cmd-ack', clientId, seq, timeoutMs);
    }

    /** The first reply to (clientId, seq): cmd-ack or error. */
    reply(clientId, seq, timeoutMs) {
        return this.next(
            (m) => (m[0] === 'cmd-ack' || m[0] === 'error') && m[1] === clientId && m[2] === seq,
            timeoutMs,
            `cmd-ack or error for ${clientId} ${seq}`,
        );
    }

    /** The outcome of (clientId, seq): an update or a rejected. */
    outcome(clientId, seq, timeoutMs) {
        return this.next(
            (m) => (m[0] === 'update' || m[0] === 'rejected') && m[1] === clientId && m[2] === seq,
            timeoutMs,
            `update or rejected for ${clientId} ${seq}`,
        );
    }

    /** Sends a command and waits for its ack and its first update; throws on error/rejected. */
    async run(clientId, seq, name, data, meta, timeoutMs) {
        this.cmd(clientId, seq, name, data, meta);
        const reply = await this.reply(clientId, seq, timeoutMs);
        if (reply[0] !== 'cmd-ack') throw new Error(`${name} refused: ${JSON.stringify(reply)}`);
        const out = await this.outcome(clientId, seq, timeoutMs);
        if (out[0] !== 'update') throw new Error(`${name} rejected: ${JSON.stringify(out)}`);
        return { ack: reply, update: out, event: out[3] };
    }

    /** Sends ["ping", token] and waits for the pong: every earlier reply of the server was sent. */
    async roundTrip(timeoutMs) {
        const token = `rt-${crypto.randomBytes(6).toString('hex')}`;
        this.send(['ping', token]);
        return this.next((m) => m[0] === 'pong' && m[1] === token, timeoutMs, `pong ${token}`);
    }

    /** Every logged message matching pred. */
    all(pred) {
        return this.log.filter(pred);
    }

    /** Waits for the connection to close; resolves { code, reason }. */
    waitClose(timeoutMs = DEFAULT_TIMEOUT) {
        if (this.closeInfo) return Promise.resolve(this.closeInfo);
        return Promise.race([
            this.closed,
            delay(timeoutMs).then(() => {
                throw new Error(`${this.label}: not closed within ${timeoutMs} ms`);
            }),
        ]);
    }

    close(code = 1000) {
        if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
        return this.closed;
    }

    terminate() {
        this.ws.terminate();
        return this.closed;
    }
}

/** Logs in and opens a WebSocket for a known user of the server. */
export async function connectAs(server, email, opts = {}) {
    const l = await loginAs(server, email);
    const c = await WsClient.connect(server, { cookie: l.cookie, label: `${email}`, ...opts });
    c.login = l;
    return c;
}

// --------------------------------------------------------- raw WebSocket

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/**
 * Builds one frame. opts: fin (default true), opcode, payload (Buffer|string),
 * mask (default true), rsv (3 bits, default 0), maskKey (Buffer of 4), and
 * declaredLength to lie about the length.
 */
export function buildFrame({ fin = true, opcode = OP.TEXT, payload = Buffer.alloc(0), mask = true, rsv = 0, maskKey, declaredLength } = {}) {
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
    const len = declaredLength ?? data.length;
    let header;
    if (len < 126) {
        header = Buffer.alloc(2);
        header[1] = len;
    } else if (len < 65536) {
        header = Buffer.alloc(4);
        header[1] = 126;
        header.writeUInt16BE(len, 2);
    } else {
        header = Buffer.alloc(10);
        header[1] = 127;
        header.writeBigUInt64BE(BigInt(len), 2);
    }
    header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
    if (!mask) return Buffer.concat([header, data]);
    header[1] |= 0x80;
    const key = maskKey || crypto.randomBytes(4);
    const masked = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
    return Buffer.concat([header, key, masked]);
}

/** A close frame payload: 2-byte code plus reason. */
export function closePayload(code, reason = '') {
    const r = Buffer.from(reason, 'utf8');
    const b = Buffer.alloc(2 + r.length);
    b.writeUInt16BE(code, 0);
    r.copy(b, 2);
    return b;
}

/**
 * A WebSocket client on a bare TCP socket: the handshake by hand, then frames
 * as the test builds them. Server frames are parsed into
 * { fin, rsv, opcode, masked, payload, text?, code?, reason? }.
 */
/**
 * The first whole frame at the start of b (masked or not), as
 * { frame: { fin, rsv, opcode, masked, payload, text?, code?, reason? }, used: bytes },
 * or null while it is incomplete.
 */
export function parseFrame(b) {
    if (b.length < 2) return null;
    const fin = (b[0] & 0x80) !== 0;
    const rsv = (b[0] >> 4) & 7;
    const opcode = b[0] & 0x0f;
    const masked = (b[1] & 0x80) !== 0;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
        if (b.length < 4) return null;
        len = b.readUInt16BE(2);
        off = 4;
    } else if (len === 127) {
        if (b.length < 10) return null;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
    }
    let key = null;
    if (masked) {
        if (b.length < off + 4) return null;
        key = b.subarray(off, off + 4);
        off += 4;
    }
    if (b.length < off + len) return null;
    let payload = Buffer.from(b.subarray(off, off + len));
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    const f = { fin, rsv, opcode, masked, payload };
    if (opcode === OP.TEXT || opcode === OP.CONT) f.text = payload.toString('utf8');
    if (opcode === OP.CLOSE) {
        f.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        f.reason = payload.subarray(2).toString('utf8');
    }
    return { frame: f, used: off + len };
}

export class RawWs {
    constructor(socket) {
        this.socket = socket;
        this.buf = Buffer.alloc(0);
        this.frames = []; // every frame received, in order
        this.unread = []; // frames not yet taken
        this.waiters = [];
        this.ended = false; // the server closed the TCP connection
        this.error = null;
        this.endWaiters = [];
        this.bytesReceived = 0;
    }

    /**
     * Connects and sends the upgrade request. Resolves the client, or rejects
     * with UpgradeRefused carrying the HTTP status and body.
     */
    static connect(server, { cookie, origin, headers = {}, path = '/ws', timeoutMs = DEFAULT_TIMEOUT } = {}) {
        return new Promise((resolveP, reject) => {
            const socket = net.connect(server.port, server.host);
            const key = crypto.randomBytes(16).toString('base64');
            let head = Buffer.alloc(0);
            const timer = setTimeout(() => {
                socket.destroy();
                reject(new Error(`raw handshake: no answer within ${timeoutMs} ms`));
            }, timeoutMs);
            const onData = (chunk) => {
                head = Buffer.concat([head, chunk]);
                const end = head.indexOf('\r\n\r\n');
                if (end < 0) return;
                const lines = head.subarray(0, end).toString('latin1').split('\r\n');
                const status = Number(lines[0].split(' ')[1]);
                const hdrs = {};
                for (const l of lines.slice(1)) {
                    const i = l.indexOf(':');
                    hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
                }
                const rest = head.subarray(end + 4);
                if (status !== 101) {
                    // Read the body (Content-Length) before rejecting.
                    const want = Number(hdrs['content-length'] || 0);
                    let body = rest;
                    const finish = () => {
                        clearTimeout(timer);
                        socket.removeListener('data', more);
                        socket.destroy();
                        reject(new UpgradeRefused(status, hdrs, body.toString('utf8')));
                    };
                    const more = (c) => {
                        body = Buffer.concat([body, c]);
                        if (body.length >= want) finish();
                    };
                    socket.removeListener('data', onData);
                    if (body.length >= want) finish();
                    else {
                        socket.on('data', more);
                        socket.on('end', finish);
                    }
                    return;
                }
                const accept = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
                clearTimeout(timer);
                socket.removeListener('data', onData);
                if (hdrs['sec-websocket-accept'] !== accept) {
                    socket.destroy();
                    reject(new Error(`bad Sec-WebSocket-Accept: ${hdrs['sec-websocket-accept']}`));
                    return;
                }
                const raw = new RawWs(socket);
                raw.handshakeHeaders = hdrs;
                raw.attach();
                if (rest.length) raw.onData(rest);
                resolveP(raw);
            };
            socket.on('data', onData);
            socket.on('error', (e) => {
                clearTimeout(timer);
                reject(e);
            });
            socket.on('connect', () => {
                const lines = [
                    `GET ${path} HTTP/1.1`,
                    `Host: ${server.host}:${server.port}`,
                    'Upgrade: websocket',
                    'Connection: Upgrade',
                    `Sec-WebSocket-Key: ${key}`,
                    'Sec-WebSocket-Version: 13',
                ];
                if (cookie) lines.push(`Cookie: ${cookie}`);
                if (origin) lines.push(`Origin: ${origin}`);
                for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
                socket.write(`${lines.join('\r\n')}\r\n\r\n`);
            });
        });
    }

    attach() {
        this.socket.on('data', (c) => this.onData(c));
        this.socket.on('end', () => this.onEnd());
        this.socket.on('close', () => this.onEnd());
        this.socket.on('error', (e) => {
            this.error = e;
            this.onEnd();
        });
    }

    onEnd() {
        if (this.ended) return;
        this.ended = true;
        for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.resolve(null);
        }
        for (const r of this.endWaiters.splice(0)) r();
    }

    onData(chunk) {
        this.bytesReceived += chunk.length;
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
        for (;;) {
            const f = this.parseOne();
            if (!f) break;
            this.frames.push(f);
            const i = this.waiters.findIndex((w) => w.pred(f));
            if (i >= 0) {
                const [w] = this.waiters.splice(i, 1);
                clearTimeout(w.timer);
                w.resolve(f);
            } else {
                this.unread.push(f);
            }
        }
    }

    parseOne() {
        const got = parseFrame(this.buf);
        if (!got) return null;
        this.buf = this.buf.subarray(got.used);
        return got.frame;
    }

    /** Writes bytes; a write error (server already closed) is swallowed and recorded. */
    write(buf) {
        return new Promise((res) => {
            if (this.socket.destroyed) return res(false);
            this.socket.write(buf, (err) => {
                if (err) this.error = err;
                res(!err);
            });
        });
    }

    sendFrame(opts) {
        return this.write(buildFrame(opts));
    }

    sendText(text, opts = {}) {
        return this.sendFrame({ ...opts, opcode: OP.TEXT, payload: text });
    }

    sendJson(value) {
        return this.sendText(JSON.stringify(value));
    }

    /** The next frame matching pred (default: any), or null when the connection ended first. */
    nextFrame(pred = () => true, timeoutMs = DEFAULT_TIMEOUT, what = 'a frame') {
        const i = this.unread.findIndex(pred);
        if (i >= 0) return Promise.resolve(this.unread.splice(i, 1)[0]);
        if (this.ended) return Promise.resolve(null);
        return new Promise((resolveP, reject) => {
            const w = { pred, resolve: resolveP };
            w.timer = setTimeout(() => {
                const k = this.waiters.indexOf(w);
                if (k >= 0) this.waiters.splice(k, 1);
                reject(new Error(`raw: timed out after ${timeoutMs} ms waiting for ${what}`));
            }, timeoutMs);
            this.waiters.push(w);
        });
    }

    /**
     * Reassembles the next complete text message (data frames only; control
     * frames are left for nextFrame). Returns the parsed JSON, or null when
     * the connection ended first.
     */
    async nextMessage(timeoutMs = DEFAULT_TIMEOUT) {
        const isData = (f) => f.opcode === OP.TEXT || f.opcode === OP.CONT || f.opcode === OP.BINARY;
        const parts = [];
        for (;;) {
            const f = await this.nextFrame(isData, timeoutMs, 'a data frame');
            if (!f) return null;
            parts.push(f.payload);
            if (f.fin) return JSON.parse(Buffer.concat(parts).toString('utf8'));
        }
    }

    /** Waits for the server's close frame; returns it (with .code) or null if TCP ended without one. */
    closeFrame(timeoutMs = DEFAULT_TIMEOUT) {
        return this.nextFrame((f) => f.opcode === OP.CLOSE, timeoutMs, 'a close frame');
    }

    /** Resolves when the TCP connection has ended (or after timeoutMs, with false). */
    waitEnd(timeoutMs = DEFAULT_TIMEOUT) {
        if (this.ended) return Promise.resolve(true);
        return new Promise((res) => {
            const t = setTimeout(() => res(false), timeoutMs);
            this.endWaiters.push(() => {
                clearTimeout(t);
                res(true);
            });
        });
    }

    /** Stops reading from the socket (the kernel buffers fill, then the server's). */
    pause() {
        this.socket.pause();
    }

    resume() {
        this.socket.resume();
    }

    destroy() {
        this.socket.destroy();
    }
}

/**
 * The TCP state of a local client socket as the kernel sees it
 * (/proc/net/tcp): 'ESTABLISHED', 'CLOSE_WAIT' (the peer closed), ... or
 * 'GONE' when no such socket exists any more (reset). Lets a test see that
 * the server closed a connection the test is not reading from. With
 * { peer: true }, the state of the server's end of the same connection
 * (on loopback both ends are in the table): a server that closes while its
 * unsent data waits for a zero window sits in FIN_WAIT1 while the client
 * still sees ESTABLISHED.
 */
export async function tcpState(socket, opts = {}) {
    const { readFile } = await import('node:fs/promises');
    const states = {
        '01': 'ESTABLISHED',
        '02': 'SYN_SENT',
        '03': 'SYN_RECV',
        '04': 'FIN_WAIT1',
        '05': 'FIN_WAIT2',
        '06': 'TIME_WAIT',
        '07': 'CLOSE',
        '08': 'CLOSE_WAIT',
        '09': 'LAST_ACK',
        '0A': 'LISTEN',
        '0B': 'CLOSING',
    };
    const localPort = opts.peer ? socket.remotePort : socket.localPort;
    const remotePort = opts.peer ? socket.localPort : socket.remotePort;
    if (!localPort) return 'GONE';
    const hex = (p) => p.toString(16).toUpperCase().padStart(4, '0');
    let text = '';
    try {
        text = await readFile('/proc/net/tcp', 'utf8');
    } catch {
        return 'UNKNOWN';
    }
    for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 4) continue;
        const [, local, remote, st] = cols;
        if (local.endsWith(`:${hex(localPort)}`) && remote.endsWith(`:${hex(remotePort)}`)) return states[st] || st;
    }
    return 'GONE';
}

// ------------------------------------------------------------- helpers

/** Asserts the shape of an EVENT object as PROTOCOL.md defines it; returns it. */
export const EVENT_KEYS = [
    'position',
    'uuid',
    'command_uuid',
    'name',
    'data',
    'meta',
    'user_uuid',
    'client_id',
    'client_seq',
    'recorded_at',
    'version',
];

/** A string of n bytes (ASCII). */
export function bytes(n, ch = 'x') {
    return ch.repeat(n);
}

/** p-th percentile (0..100) of numbers. */
export function percentile(values, p) {
    if (!values.length) return NaN;
    const s = [...values].sort((a, b) => a - b);
    const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
    return s[i];
}

/** Resolves when cond() is true, polling (for states with no message to wait for). */
export async function until(cond, timeoutMs = DEFAULT_TIMEOUT, what = 'condition', everyMs = 25) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await cond()) return;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await delay(everyMs);
    }
}
