// lib.mjs - what the cluster tests share: a database of their own on the
// PostgreSQL that run.sh started, users, nodes of the real binary started
// and stopped by PID, and a load of resending clients with its checks.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BIN, freePort } from '../e2e/lib/server.mjs';
import { login, request, WsClient, newClientId, until } from '../e2e/lib/client.mjs';

export const ADMIN = process.env.CW_TEST_STORE;
export const DIR = process.env.CW_CLUSTER_DIR;
if (!process.env.CW_NATS_URL || !ADMIN || !DIR) throw new Error('run through tests/cluster/run.sh');
export const PASSWORD = 'cluster-password-1';

export function psql(url, sql) {
    const r = spawnSync('psql', [url, '-Atqc', sql], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
    return r.stdout.trim();
}

export function logOf(node) {
    return readFileSync(node.log, 'utf8');
}

/** The time of the first line matching re in node's log, as ms since the epoch (null if none). */
export function loggedAt(node, re) {
    const line = logOf(node).split('\n').find((l) => re.test(l));
    return line ? Date.parse(line.split(' ')[0]) : null;
}

/** Opens /ws on gw once the session (logged in elsewhere) has reached it. */
export async function connectWhenKnown(gw, cookie) {
    let ws = null;
    await until(async () => {
        try {
            ws = await WsClient.connect(gw, { cookie });
            return true;
        } catch {
            return false;
        }
    }, 10_000, 'the session known on the other gateway', 50);
    return ws;
}

/**
 * A database, a secret key and the nodes of one test file, all under DIR/name.
 * admin: the maintenance database of the PostgreSQL to use (default run.sh's).
 */
export class Cluster {
    constructor(name, natsUrl = process.env.CW_NATS_URL, admin = ADMIN) {
        this.dir = join(DIR, name);
        this.nats = natsUrl;
        this.admin = admin;
        this.db = `cw_${name}_${process.pid}`;
        this.store = admin.replace(/\/postgres\?/, `/${this.db}?`);
        this.key = join(this.dir, 'secret.key');
        this.nodes = [];
        mkdirSync(join(this.dir, 'cli'), { recursive: true });
        writeFileSync(this.key, randomBytes(32));
        chmodSync(this.key, 0o600);
        psql(admin, `CREATE DATABASE ${this.db}`);
    }

    /** Before any processor runs: `user add` writes to the store itself. */
    addUser(email) {
        const r = spawnSync(BIN, ['user', 'add', '--data', join(this.dir, 'cli'), '--store', this.store, '--email', email, '--first', 'C', '--last', 'U'], {
            input: `${PASSWORD}\n`,
            encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(`user add: ${r.stderr}`);
    }

    /** Starts `serve --role ROLE` (with extra flags) and waits until its /health answers. */
    async start(role, name, extra = []) {
        const port = await freePort();
        const log = join(this.dir, `${name}.log`);
        const args = ['serve', '--role', role, '--queue', this.nats, '--store', this.store, '--data', join(this.dir, name), '--listen', `127.0.0.1:${port}`, '--secret-key-file', this.key, ...extra];
        const proc = spawn(BIN, args, { stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')] });
        const node = { role, name, port, host: '127.0.0.1', log, proc, exited: new Promise((r) => proc.on('exit', r)) };
        this.nodes.push(node);
        await until(async () => {
            if (proc.exitCode !== null) throw new Error(`${name} exited: ${readFileSync(log, 'utf8').slice(-2000)}`);
            try {
                return (await request(node, 'GET', '/health', { timeoutMs: 1000 })).status === 200;
            } catch {
                return false;
            }
        }, 30_000, `${name} healthy`, 50);
        return node;
    }

    /** SIGTERM to every node still running; each not killed on purpose must exit 0. */
    async stop() {
        for (const n of this.nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGTERM');
        await Promise.all(this.nodes.map((n) => n.exited));
        psql(this.admin, `DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`);
        const bad = this.nodes.filter((n) => n.proc.signalCode !== 'SIGKILL' && n.proc.exitCode !== 0);
        for (const n of bad) console.log(`# ${n.name} exited ${n.proc.exitCode}:\n${logOf(n).slice(-3000)}`);
        assert.deepEqual(bad.map((n) => n.name), [], 'nodes that did not stop cleanly');
    }
}

/**
 * Clients that keep sending: for each {email, gw, watchGw}, one connection
 * sending N commands with up to WINDOW in flight, resending any without an
 * outcome after RESEND_MS (same sequence), and one connection of the same
 * user on watchGw that only watches. A connection that closes opens again
 * (on the same address: a load balancer picks a live gateway), resumes at
 * open after the last position it saw, and the sender resends what is open.
 */
const loads = [];

/** Stops every load and drops its connections, so a failed test leaves nothing open. */
export function closeLoads() {
    for (const l of loads) {
        l.stop();
        for (const c of l.clients) for (const w of [c.ws, c.watch]) if (w) w.terminate();
    }
}

export async function startLoad(specs, { N = 120, WINDOW = 8, RESEND_MS = 3000 } = {}) {
    const clients = [];
    let stopped = false;
    const send = (c, seq) => {
        c.sentAt.set(seq, Date.now());
        if (c.ws.isOpen) c.ws.cmd(c.cid, seq, 'visit-page', { url: `/k/${seq}` });
    };
    // Opens (or reopens) one of c's two connections: 'ws' sends, 'watch' watches.
    const open = async (c, which, gw, cookie) => {
        const seen = which === 'ws' ? c.positions : c.watched;
        for (;;) {
            const last = seen.length ? Math.max(...seen) : 0;
            try {
                const ws = await WsClient.connect(gw, { cookie, path: last ? `/ws?after=${last}` : '/ws' });
                c[which] = ws;
                break;
            } catch {
                if (stopped) return;
                await new Promise((r) => setTimeout(r, 100));
            }
            if (stopped) return;
        }
        c[which].ws.on('message', (raw) => {
            const m = JSON.parse(raw.toString());
            if (m[0] === 'update' && m[3].user_uuid === c.user) seen.push(m[3].position);
            if (which === 'ws' && (m[0] === 'update' || m[0] === 'rejected') && m[1] === c.cid && !c.done.has(m[2])) c.done.set(m[2], Date.now());
        });
        c[which].ws.on('close', async () => {
            if (stopped) return;
            c.reconnects++;
            // A client's back-off: what was in flight commits meanwhile, and must come with the resume.
            await new Promise((r) => setTimeout(r, 250));
            open(c, which, gw, cookie).then(() => {
                if (which === 'ws') for (const s of c.sentAt.keys()) if (!c.done.has(s)) send(c, s);
            });
        });
    };
    for (const s of specs) {
        const l = await login(s.gw, s.email, PASSWORD);
        const c = { user: l.user_uuid, cid: newClientId('load'), next: 1, done: new Map(), sentAt: new Map(), positions: [], watched: [], reconnects: 0 };
        await open(c, 'ws', s.gw, l.cookie);
        await until(async () => {
            try {
                await open(c, 'watch', s.watchGw, l.cookie); // once the session is known there
                return true;
            } catch {
                return false;
            }
        }, 10_000, 'the watcher connected', 50);
        clients.push(c);
    }
    const pump = setInterval(() => {
        for (const c of clients) {
            const pending = [...c.sentAt.keys()].filter((s) => !c.done.has(s));
            for (const s of pending) if (Date.now() - c.sentAt.get(s) > RESEND_MS) send(c, s); // a resend: same seq
            while (c.next <= N && pending.length < WINDOW) {
                pending.push(c.next);
                send(c, c.next++);
            }
        }
    }, 5);
    const load = {
        clients,
        N,
        done: () => clients.reduce((n, c) => n + c.done.size, 0),
        reconnects: () => clients.reduce((n, c) => n + c.reconnects, 0),
        stop: () => {
            stopped = true;
            clearInterval(pump);
        },
    };
    loads.push(load);
    return load;
}

/** Every command once in the log with one event; every connection saw every position of its user once, in order. */
export async function checkLoad(cluster, load) {
    for (const c of load.clients) {
        const rows = psql(cluster.store, `SELECT client_seq, count(*) FROM events WHERE client_id = '${c.cid}' GROUP BY 1 ORDER BY 1`).split('\n');
        assert.equal(rows.length, load.N, `${c.cid}: ${rows.length} of ${load.N} commands have events`);
        assert.deepEqual(rows.filter((r) => r.split('|')[1] !== '1'), [], `${c.cid}: doubled`);
        const expected = psql(cluster.store, `SELECT position FROM events WHERE user_uuid = '${c.user}' AND position >= ${Math.min(...c.positions)} ORDER BY 1`)
            .split('\n')
            .map(Number);
        assert.deepEqual([...new Set(c.positions)], expected, `${c.cid}: the sender's positions`);
        await until(() => c.watched.length >= expected.length, 10_000, 'the watcher caught up');
        assert.deepEqual(c.watched.filter((p) => p >= expected[0]), expected, `${c.cid}: the watcher's positions`);
        c.ws.close();
        c.watch.close();
    }
}
