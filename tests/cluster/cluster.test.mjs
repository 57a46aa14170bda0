// cluster.test.mjs - the distributed deployment with real servers: two
// processors (one active, one standby) and two gateways of the real binary,
// over the nats-server and PostgreSQL that tests/cluster/run.sh started.
//
// One cluster for the file, its tests in order: updates cross gateways;
// a logout on one gateway closes the user's socket on the other; kill -9
// of the active processor under load with resending clients (takeover time
// printed; 0 lost, 0 doubled, no gap on any connection).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BIN, freePort } from '../e2e/lib/server.mjs';
import { login, request, WsClient, newClientId, until } from '../e2e/lib/client.mjs';

const NATS = process.env.CW_NATS_URL;
const ADMIN = process.env.CW_TEST_STORE;
const DIR = process.env.CW_CLUSTER_DIR;
if (!NATS || !ADMIN || !DIR) throw new Error('run through tests/cluster/run.sh');

const DB = `cw_cluster_${process.pid}`;
const STORE = ADMIN.replace(/\/postgres\?/, `/${DB}?`);
const KEY = join(DIR, 'secret.key');
const PASSWORD = 'cluster-password-1';

function psql(url, sql) {
    const r = spawnSync('psql', [url, '-Atqc', sql], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
    return r.stdout.trim();
}

function addUser(email) {
    const r = spawnSync(BIN, ['user', 'add', '--data', join(DIR, 'cli'), '--store', STORE, '--email', email, '--first', 'C', '--last', 'U'], {
        input: `${PASSWORD}\n`,
        encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`user add: ${r.stderr}`);
}

const nodes = [];

/** Starts `serve --role ROLE` and waits until its /health answers. */
async function startNode(role, name) {
    const port = await freePort();
    const log = join(DIR, `${name}.log`);
    const args = ['serve', '--role', role, '--queue', NATS, '--store', STORE, '--data', join(DIR, name), '--listen', `127.0.0.1:${port}`, '--secret-key-file', KEY];
    const proc = spawn(BIN, args, { stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')] });
    const node = { role, name, port, host: '127.0.0.1', log, proc, exited: new Promise((r) => proc.on('exit', r)) };
    nodes.push(node);
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

function logOf(node) {
    return readFileSync(node.log, 'utf8');
}

/** The time of the line matching re in node's log, as ms since the epoch (null if none). */
function loggedAt(node, re) {
    const line = logOf(node).split('\n').find((l) => re.test(l));
    return line ? Date.parse(line.split(' ')[0]) : null;
}

/** Opens /ws on gw once the session (logged in elsewhere) has reached it. */
async function connectWhenKnown(gw, cookie) {
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

let gwA, gwB, procs;

before(async () => {
    writeFileSync(KEY, randomBytes(32));
    chmodSync(KEY, 0o600);
    mkdirSync(join(DIR, 'cli'), { recursive: true });
    psql(ADMIN, `CREATE DATABASE ${DB}`);
    for (let i = 1; i <= 4; i++) addUser(`u${i}@cluster.test`);
    const t0 = Date.now();
    procs = [await startNode('processor', 'proc1')];
    await until(() => /processor\.active/.test(logOf(procs[0])), 20_000, 'proc1 active');
    procs.push(await startNode('processor', 'proc2'));
    await until(() => /processor\.standby/.test(logOf(procs[1])), 20_000, 'proc2 standby');
    [gwA, gwB] = await Promise.all([startNode('gateway', 'gwA'), startNode('gateway', 'gwB')]);
    console.log(`# two processors and two gateways up in ${Date.now() - t0} ms`);
});

after(async () => {
    for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGTERM');
    await Promise.all(nodes.map((n) => n.exited));
    psql(ADMIN, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    // Every node not killed on purpose stopped cleanly (under ASan: no leak, no error report).
    const bad = nodes.filter((n) => n.proc.signalCode !== 'SIGKILL' && n.proc.exitCode !== 0);
    for (const n of bad) console.log(`# ${n.name} exited ${n.proc.exitCode}:\n${logOf(n).slice(-3000)}`);
    assert.deepEqual(bad.map((n) => n.name), [], 'nodes that did not stop cleanly');
});

describe('distributed deployment', () => {
    it('a client on gateway A sees the updates of commands sent through gateway B', async () => {
        const l = await login(gwA, 'u1@cluster.test', PASSWORD, { committed: false });
        // The login is known on B once its session-started event crossed over.
        const onB = await connectWhenKnown(gwB, l.cookie);
        const onA = await WsClient.connect(gwA, { cookie: l.cookie });
        const cid = newClientId('x');
        onB.cmd(cid, 1, 'visit-page', { url: '/from-b' });
        const upB = await onB.outcome(cid, 1);
        assert.equal(upB[0], 'update');
        const upA = await onA.next((m) => m[0] === 'update' && m[1] === cid);
        assert.equal(upA[3].position, upB[3].position);
        assert.equal(upA[3].data.url, '/from-b');
        onA.close();
        onB.close();
    });

    it('a logout through gateway A closes the user\'s socket on gateway B', async () => {
        const l = await login(gwA, 'u2@cluster.test', PASSWORD, { committed: false });
        const onB = await connectWhenKnown(gwB, l.cookie);
        await onB.roundTrip();
        const t0 = Date.now();
        const res = await request(gwA, 'POST', '/logout', { cookie: l.cookie, body: '' });
        assert.ok([200, 204, 302, 303].includes(res.status), `logout status ${res.status}`);
        await onB.waitClose(10_000);
        const ms = Date.now() - t0;
        console.log(`# logout on A closed the socket on B in ${ms} ms`);
        assert.ok(ms < 2000, `closed after ${ms} ms`);
    });

    it('kill -9 of the active processor under load: a standby takes over; 0 lost, 0 doubled, no gap', async () => {
        const N = 120;
        const WINDOW = 8;
        const RESEND_MS = 3000;
        const clients = [];
        for (let i = 1; i <= 4; i++) {
            const gw = i % 2 ? gwA : gwB;
            const l = await login(gw, `u${i}@cluster.test`, PASSWORD);
            const ws = await WsClient.connect(gw, { cookie: l.cookie });
            // The same user watching on the other gateway: what crosses over must have no gap either.
            const watch = await connectWhenKnown(gw === gwA ? gwB : gwA, l.cookie);
            clients.push({ ws, watch, user: l.user_uuid, cid: newClientId(`k${i}`), next: 1, done: new Map(), sentAt: new Map(), positions: [], watched: [] });
        }
        for (const c of clients) {
            c.ws.ws.on('message', (raw) => {
                const m = JSON.parse(raw.toString());
                if (m[0] === 'update' && m[3].user_uuid === c.user) c.positions.push(m[3].position);
                if ((m[0] === 'update' || m[0] === 'rejected') && m[1] === c.cid && !c.done.has(m[2])) c.done.set(m[2], Date.now());
            });
            c.watch.ws.on('message', (raw) => {
                const m = JSON.parse(raw.toString());
                if (m[0] === 'update' && m[3].user_uuid === c.user) c.watched.push(m[3].position);
            });
        }
        const send = (c, seq) => {
            c.sentAt.set(seq, Date.now());
            c.ws.cmd(c.cid, seq, 'visit-page', { url: `/k/${seq}` });
        };
        let killAt = null;
        const pump = setInterval(() => {
            for (const c of clients) {
                const open = [...c.sentAt.keys()].filter((s) => !c.done.has(s));
                for (const s of open) if (Date.now() - c.sentAt.get(s) > RESEND_MS) send(c, s); // a resend: same seq
                while (c.next <= N && open.length < WINDOW) {
                    open.push(c.next);
                    send(c, c.next++);
                }
            }
        }, 5);
        const doneCount = () => clients.reduce((n, c) => n + c.done.size, 0);
        try {
            await until(() => doneCount() >= N, 30_000, 'load under way');
            const active = procs.find((p) => /processor\.active/.test(logOf(p)));
            const standby = procs.find((p) => p !== active);
            killAt = Date.now();
            active.proc.kill('SIGKILL');
            const before = doneCount();
            await until(() => loggedAt(standby, /processor\.active/) !== null, 10_000, 'standby active');
            await until(() => doneCount() > before + 4, 10_000, 'commits after the kill');
            const takeover = loggedAt(standby, /processor\.active/) - killAt;
            console.log(`# takeover: standby active ${takeover} ms after kill -9; commands answered again ${Date.now() - killAt} ms after it`);
            assert.ok(takeover < 3000, `takeover took ${takeover} ms`);
            await until(() => doneCount() === 4 * N, 60_000, 'every command answered');
        } finally {
            clearInterval(pump);
        }
        // Every client's command once in the log, with one event each: none lost, none doubled.
        for (const c of clients) {
            const rows = psql(STORE, `SELECT client_seq, count(*) FROM events WHERE client_id = '${c.cid}' GROUP BY 1 ORDER BY 1`).split('\n');
            assert.equal(rows.length, N, `${c.cid}: ${rows.length} of ${N} commands have events`);
            const doubled = rows.filter((r) => r.split('|')[1] !== '1');
            assert.deepEqual(doubled, [], `${c.cid}: doubled`);
            // Every event of the user from the first one seen reached the connection, in position order.
            const expected = psql(STORE, `SELECT position FROM events WHERE user_uuid = '${c.user}' AND position >= ${Math.min(...c.positions)} ORDER BY 1`)
                .split('\n')
                .map(Number);
            const seen = [...new Set(c.positions)];
            assert.deepEqual(seen, expected, `${c.cid}: the connection's positions`);
            // The watcher on the other gateway: each position once, all of them, in order.
            await until(() => c.watched.length >= expected.length, 10_000, 'the watcher caught up');
            assert.deepEqual(c.watched.filter((p) => p >= expected[0]), expected, `${c.cid}: the watcher's positions`);
            c.ws.close();
            c.watch.close();
        }
        console.log(`# ${4 * N} commands through 2 gateways, kill -9 of the active processor: 0 lost, 0 doubled, no gap on 8 connections`);
    });

    it('a gracefully stopped processor hands over at once', async () => {
        const alive = () => procs.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);
        const active = alive().find((p) => /processor\.active/.test(logOf(p)));
        procs.push(await startNode('processor', 'proc3'));
        await until(() => /processor\.standby/.test(logOf(procs.at(-1))), 20_000, 'proc3 standby');
        const t0 = Date.now();
        active.proc.kill('SIGTERM');
        // The time one of the others logged that it leads, after t0.
        const ledAt = () => {
            for (const p of alive())
                for (const l of logOf(p).split('\n'))
                    if (p !== active && /processor\.active/.test(l) && Date.parse(l.split(' ')[0]) >= t0 - 5) return Date.parse(l.split(' ')[0]);
            return null;
        };
        await until(() => ledAt() !== null, 10_000, 'a standby active');
        const ms = ledAt() - t0;
        console.log(`# SIGTERM to the active processor: a standby led ${ms} ms later`);
        assert.ok(ms < 3000, `handover took ${ms} ms`);
        // and it processes: a command through a gateway is answered
        const l = await login(gwB, 'u3@cluster.test', PASSWORD);
        const ws = await WsClient.connect(gwB, { cookie: l.cookie });
        const cid = newClientId('h');
        ws.cmd(cid, 1, 'visit-page', { url: '/after-handover' });
        assert.equal((await ws.outcome(cid, 1))[0], 'update');
        ws.close();
    });
});
