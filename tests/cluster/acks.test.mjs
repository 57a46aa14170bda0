// acks.test.mjs - the gateway's asynchronous JetStream publish, with real
// servers: thousands of commands on one connection are acked (each once
// JetStream has it), in command order, and then every update arrives; a
// stream that is full refuses, and the client hears `overloaded`, in order
// after the acks of the commands that got in.
//
// The first test runs on the nats-server run.sh started; the second on one
// this file starts (and stops by its PID), so that its stream CW_COMMANDS
// can be small (--queue-capacity) without touching the one the others share.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../e2e/lib/server.mjs';
import { login, WsClient, newClientId, until } from '../e2e/lib/client.mjs';
import { Cluster, DIR, PASSWORD, logOf } from './lib.mjs';

const CAPACITY = 300; // the small stream's MaxMsgs: the full-stream test fills it
const N = 3000; // commands sent at once on one connection in the first test

let nats, main, full, gw, fullGw, fullProc;

async function startNats() {
    const port = await freePort();
    const dir = join(DIR, 'acks-nats');
    mkdirSync(dir, { recursive: true });
    const log = join(dir, 'nats.log');
    const p = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')], {
        stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
    });
    await until(() => {
        if (p.exitCode !== null) throw new Error(`nats-server exited: ${readFileSync(log, 'utf8')}`);
        try {
            return /Server is ready/.test(readFileSync(log, 'utf8'));
        } catch {
            return false;
        }
    }, 10_000, 'nats-server ready', 50);
    return { proc: p, url: `nats://127.0.0.1:${port}`, exited: new Promise((r) => p.on('exit', r)) };
}

/** Records every message of ws, in arrival order. */
function record(ws) {
    const all = [];
    ws.ws.on('message', (raw) => all.push(JSON.parse(raw.toString())));
    return all;
}

/** A user, a processor and a gateway on cluster; the processor when it is active. */
async function nodes(cluster, user, extra = []) {
    cluster.addUser(user);
    const proc = await cluster.start('processor', 'proc', extra);
    await until(() => /processor\.active/.test(logOf(proc)), 20_000, 'processor active');
    return [proc, await cluster.start('gateway', 'gw', extra)];
}

before(async () => {
    main = new Cluster('acks'); // the nats-server run.sh started: the default stream
    [, gw] = await nodes(main, 'a1@acks.test');
    nats = await startNats();
    full = new Cluster('acksfull', nats.url); // a small stream: it fills
    [fullProc, fullGw] = await nodes(full, 'a2@acks.test', ['--queue-capacity', String(CAPACITY)]);
});

after(async () => {
    try {
        await Promise.all([main?.stop(), full?.stop()]);
    } finally {
        if (nats) {
            nats.proc.kill('SIGTERM');
            await nats.exited;
        }
    }
});

describe('asynchronous publish', () => {
    it(`${N} commands on one connection: every ack, in order, then every update`, async () => {
        const l = await login(gw, 'a1@acks.test', PASSWORD);
        const ws = await WsClient.connect(gw, { cookie: l.cookie });
        const seen = record(ws);
        const cid = newClientId('acks');
        const t0 = Date.now();
        for (let seq = 1; seq <= N; seq++) ws.cmd(cid, seq, 'visit-page', { url: `/a/${seq}` });
        const mine = () => seen.filter((m) => m[1] === cid);
        await until(() => mine().filter((m) => m[0] === 'update').length >= N || mine().some((m) => m[0] === 'error'), 120_000, `${N} updates`, 50);
        const ms = Date.now() - t0;
        const replies = mine().filter((m) => m[0] === 'cmd-ack' || m[0] === 'error');
        assert.deepEqual(replies.filter((m) => m[0] === 'error'), [], 'no command refused');
        assert.deepEqual(replies.map((m) => m[2]), Array.from({ length: N }, (_, i) => i + 1), 'acks in command order');
        assert.ok(replies.every((m) => m[3].duplicate === false), 'no ack is a duplicate');
        const updates = mine().filter((m) => m[0] === 'update');
        assert.deepEqual(updates.map((m) => m[2]).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i + 1), 'one update per command');
        const positions = updates.map((m) => m[3].position);
        assert.deepEqual(positions, [...positions].sort((a, b) => a - b), 'updates in position order');
        // Each command's ack went before its update.
        const at = new Map(mine().map((m, i) => [`${m[0]}/${m[2]}`, i]));
        const late = updates.filter((u) => at.get(`cmd-ack/${u[2]}`) > at.get(`update/${u[2]}`)).map((u) => u[2]);
        assert.deepEqual(late, [], 'updates before their ack');
        console.log(`# ${N} commands on one connection through the gateway: acked and applied in ${ms} ms (${Math.round((N * 1000) / ms)}/s)`);
        ws.close();
    });

    it('a full stream refuses: `overloaded`, after the acks of the commands that got in', async () => {
        const l = await login(fullGw, 'a2@acks.test', PASSWORD); // while a processor starts the session
        // No processor: nothing leaves the stream, which holds CAPACITY at most.
        fullProc.proc.kill('SIGTERM');
        await fullProc.exited;
        assert.equal(fullProc.proc.exitCode, 0, 'the processor stopped cleanly');
        const ws = await WsClient.connect(fullGw, { cookie: l.cookie });
        const seen = record(ws);
        const cid = newClientId('full');
        const M = CAPACITY + 100;
        for (let seq = 1; seq <= M; seq++) ws.cmd(cid, seq, 'visit-page', { url: `/f/${seq}` });
        const replies = () => seen.filter((m) => (m[0] === 'cmd-ack' || m[0] === 'error') && m[1] === cid);
        await until(() => replies().length >= M, 60_000, `${M} replies`, 50);
        const r = replies();
        assert.deepEqual(r.map((m) => m[2]), Array.from({ length: M }, (_, i) => i + 1), 'replies in command order');
        const acked = r.filter((m) => m[0] === 'cmd-ack').length;
        const refused = r.filter((m) => m[0] === 'error');
        assert.ok(acked > 0 && acked <= CAPACITY, `${acked} acked`);
        assert.ok(refused.length >= M - CAPACITY, `${refused.length} refused`);
        assert.ok(refused.every((m) => m[3].code === 'overloaded'), 'refused as overloaded');
        // The stream takes commands in order: once one is refused, every later one is too.
        const firstRefused = r.findIndex((m) => m[0] === 'error');
        assert.ok(r.slice(firstRefused).every((m) => m[0] === 'error'), 'no ack after the first refusal');
        console.log(`# full stream: ${acked} acked, ${refused.length} refused as overloaded, in order`);
        ws.close();
    });
});
