// limits.test.mjs - backpressure and load: a slow consumer is closed with
// 1008 without slowing the others down, and 200 concurrent clients sending
// 50 commands each get every ack and every update exactly once.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { startServer, guard } from './lib/server.mjs';
import { request, login, loginAs, queryOk, WsClient, RawWs, newClientId, percentile, tcpState, until } from './lib/client.mjs';
import { cartOf } from './lib/expect.mjs';

/** The server process's resident memory in KB (Linux), for failure messages. */
function rssKb(srv) {
    try {
        return readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1];
    } catch {
        return '?';
    }
}

let metricsServer;
async function metricsText() {
    try {
        return (await request(metricsServer, 'GET', '/metrics')).text;
    } catch (e) {
        return e.message;
    }
}

function slowMetric(text) {
    return (text.split('\n').find((l) => l.startsWith('calderwood_connections_closed_slow_total')) || 'no slow-close metric').trim();
}

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'Builder' };
const CAROL = { email: 'carol@example.org', password: 'carol-password-3', first: 'Carol', last: 'Kaye' };

describe('a slow consumer', () => {
    let srv;
    before(async () => {
        // The default --max-output (1 MiB): bursts to fast readers stay far below it.
        srv = await startServer({ users: [ALICE, BOB, CAROL] });
        metricsServer = srv;
    });
    after(() => srv?.stop());

    test(
        'is closed with 1008 while another client keeps a low update latency',
        { timeout: 300_000 },
        guard(
            () => srv,
            async (t) => {
                const slow = await RawWs.connect(srv, { cookie: (await loginAs(srv, BOB.email)).cookie });
                slow.pause(); // reads nothing from now on
                const floodCid = newClientId('flood');
                const probeCid = newClientId('probe');
                const flooder = await WsClient.connect(srv, { cookie: (await loginAs(srv, ALICE.email)).cookie, label: 'flooder' });
                const probe = await WsClient.connect(srv, { cookie: (await loginAs(srv, CAROL.email)).cookie, label: 'probe' });
                flooder.keep = (m) => m[1] === floodCid && m[0] !== 'update';
                let floodSeen = 0;
                flooder.onMessage = (m) => {
                    if (m[0] === 'update' && m[1] === floodCid) floodSeen += 1;
                };
                let probeSawFlood = 0;
                probe.keep = (m) => m[1] === probeCid || m[0] === 'pong';
                probe.onMessage = (m) => {
                    if (m[0] === 'update' && m[1] === floodCid) probeSawFlood += 1;
                };

                // The probe measures its own command -> update latency throughout.
                const latencies = [];
                let flooding = true;
                const probing = (async () => {
                    let seq = 0;
                    while (flooding || latencies.length < 30) {
                        seq += 1;
                        const t0 = performance.now();
                        probe.cmd(probeCid, seq, 'visit-page', { url: `https://example.org/probe/${seq}` });
                        await probe.outcome(probeCid, seq, 60_000);
                        latencies.push(performance.now() - t0);
                        await delay(20);
                    }
                })();
                probing.catch(() => {}); // its failure is awaited (and reported) below, not unhandled

                try {
                    const WINDOW = 100; // 100 x 2 KB in flight: a fifth of the output bound
                    const url = `https://example.org/flood/${'u'.repeat(2000)}`;
                    let seq = 0;
                    let state = 'ESTABLISHED';
                    let rounds = 0;
                    // 2 KB page views in windows of 100 until the server drops the
                    // slow reader (bounded: at most 40 MB of views).
                    let probeFailed = null;
                    probing.catch((e) => {
                        probeFailed = e;
                    });
                    while (state === 'ESTABLISHED' && rounds < 200 && !probeFailed) {
                        rounds += 1;
                        const first = seq;
                        for (let i = 0; i < WINDOW; i++) flooder.cmd(floodCid, seq++, 'visit-page', { url });
                        for (let s = first; s < seq; s++) {
                            const r = await flooder.reply(floodCid, s, 60_000);
                            assert.equal(r[0], 'cmd-ack', JSON.stringify(r));
                        }
                        await until(
                            () => {
                                if (flooder.closeInfo) throw new Error(`the flooder was closed: ${JSON.stringify(flooder.closeInfo)}`);
                                return floodSeen >= seq;
                            },
                            60_000,
                            `flooder's own ${seq} updates`,
                        );
                        // The server's own count says when it gave up on the reader (it then
                        // waits a few seconds for the reader to take the close frame); the
                        // kernel's TCP states say so once the connection is cut.
                        const slowClosed = /\s[1-9][0-9]*$/.test(slowMetric(await metricsText()));
                        const mine = await tcpState(slow.socket);
                        const theirs = await tcpState(slow.socket, { peer: true });
                        if (slowClosed) state = `counted as closed slow (client ${mine}, server ${theirs})`;
                        else if (mine !== 'ESTABLISHED' || theirs !== 'ESTABLISHED') state = `client ${mine}, server ${theirs}`;
                    }
                    if (probeFailed) throw probeFailed;
                    assert.notEqual(
                        state,
                        'ESTABLISHED',
                        `the slow reader is still connected after ${seq} page views of 2 KB (${slowMetric(await metricsText())}; server RSS ${rssKb(srv)} KB)`,
                    );
                    // Read what the server had sent to the slow reader at once: it ends with close 1008.
                    slow.resume();
                    flooding = false;
                    await probing;
                    const close = await slow.closeFrame(60_000);
                    assert.ok(close, `a close frame reached the slow reader before the TCP end (TCP state was ${state}, error ${slow.error?.message ?? 'none'})`);
                    assert.equal(close.code, 1008, `close code ${close.code} "${close.reason}"`);

                    // The others were not held back: still open, everything delivered, latency low.
                    assert.ok(flooder.isOpen && probe.isOpen, 'fast clients stay connected');
                    await until(() => probeSawFlood >= seq, 60_000, `probe received all ${seq} flood views (has ${probeSawFlood})`);
                    const p99 = percentile(latencies, 99);
                    const p50 = percentile(latencies, 50);
                    assert.ok(latencies.length >= 30, `enough latency samples (${latencies.length})`);
                    // Held back behind the reader that does not read, the probe would wait for
                    // its cut: the 2 s grace at least. A busy machine alone (two CPU hogs and a
                    // soak beside make test) took the p99 to 609 ms, so the bound sits between.
                    assert.ok(p99 < 1500, `probe update latency p99 ${p99.toFixed(1)} ms (p50 ${p50.toFixed(1)} ms, ${latencies.length} samples) under 1500 ms`);
                    t.diagnostic(`slow reader cut after ${seq} page views; probe latency p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms over ${latencies.length} samples`);
                } finally {
                    flooding = false;
                    await probing.catch(() => {});
                    slow.destroy();
                    flooder.terminate();
                    probe.terminate();
                }
            },
        ),
    );
});

describe('200 concurrent clients', () => {
    let srv;
    const USERS = 20;
    const CONNS_PER_USER = 10;
    const COMMANDS = 50;
    const users = Array.from({ length: USERS }, (_, i) => ({
        email: `load${i}@example.org`,
        password: `load-password-${i}`,
        first: 'Load',
        last: `User${i}`,
    }));
    before(async () => {
        srv = await startServer({ users });
    });
    after(() => srv?.stop());

    test(
        'x 50 commands each: every command acked once, its update received exactly once',
        { timeout: 600_000 },
        guard(
            () => srv,
            async () => {
                const cookies = [];
                for (const u of users) cookies.push((await login(srv, u.email, u.password)).cookie);
                const conns = [];
                try {
                    for (let u = 0; u < USERS; u++) {
                        const batch = await Promise.all(
                            Array.from({ length: CONNS_PER_USER }, (_, k) =>
                                WsClient.connect(srv, { cookie: cookies[u], label: `u${u}c${k}`, timeoutMs: 60_000 }),
                            ),
                        );
                        batch.forEach((c) => {
                            c.user = u;
                            c.cid = newClientId(`u${u}`);
                        });
                        conns.push(...batch);
                    }
                    assert.equal(conns.length, USERS * CONNS_PER_USER);

                    // Each connection counts the cart updates it receives, by position.
                    for (const c of conns) {
                        c.seen = new Map();
                        c.keep = (m) => m[1] === c.cid || m[0] === 'error' || m[0] === 'pong';
                        c.onMessage = (m) => {
                            if (m[0] === 'update' && m[3].name === 'item-added-to-cart') c.seen.set(m[3].position, (c.seen.get(m[3].position) || 0) + 1);
                        };
                    }
                    for (const c of conns) {
                        for (let s = 0; s < COMMANDS; s++) c.cmd(c.cid, s, 'add-to-cart', { sku: c.cid, quantity: 1 });
                    }

                    const byUser = Array.from({ length: USERS }, () => new Set());
                    for (const c of conns) {
                        for (let s = 0; s < COMMANDS; s++) {
                            const ack = await c.reply(c.cid, s, 180_000);
                            assert.equal(ack[0], 'cmd-ack', `${c.label} ${s}: ${JSON.stringify(ack)}`);
                            assert.equal(ack[3].duplicate, false);
                            const up = await c.outcome(c.cid, s, 180_000);
                            assert.equal(up[0], 'update', `${c.label} ${s}: ${JSON.stringify(up)}`);
                            assert.equal(up[3].command_uuid, ack[3].command_uuid);
                            byUser[c.user].add(up[3].position);
                        }
                    }
                    const total = byUser.reduce((n, s) => n + s.size, 0);
                    assert.equal(total, USERS * CONNS_PER_USER * COMMANDS, 'one event per command, distinct positions');

                    // Every connection gets every cart event of its user, once.
                    const perUser = CONNS_PER_USER * COMMANDS;
                    await until(
                        () => {
                            const gone = conns.find((c) => c.closeInfo);
                            if (gone) throw new Error(`${gone.label} was closed: ${JSON.stringify(gone.closeInfo)}`);
                            return conns.every((c) => c.seen.size >= perUser);
                        },
                        180_000,
                        "every connection received its user's updates",
                    );
                    for (const c of conns) {
                        await c.roundTrip(60_000); // anything still in flight to it has arrived
                    }
                    for (const c of conns) {
                        assert.equal(c.seen.size, perUser, `${c.label}: ${c.seen.size} distinct updates`);
                        for (const [pos, n] of c.seen) {
                            assert.equal(n, 1, `${c.label}: position ${pos} received ${n} times`);
                            assert.ok(byUser[c.user].has(pos), `${c.label}: position ${pos} is another user's cart event`);
                        }
                        assert.equal(c.all((m) => m[0] === 'cmd-ack').length, COMMANDS, `${c.label}: one ack per command`);
                        assert.equal(c.all((m) => m[0] === 'update').length, COMMANDS, `${c.label}: own updates once each`);
                        assert.equal(c.all((m) => m[0] === 'error' || m[0] === 'rejected').length, 0, `${c.label}: no error`);
                    }

                    // And the state agrees: each connection's sku holds exactly 50.
                    for (let u = 0; u < USERS; u++) {
                        const cart = cartOf(await queryOk(srv, cookies[u], 'get-cart', {}));
                        for (const c of conns.filter((x) => x.user === u)) assert.equal(cart[c.cid], COMMANDS, `${c.label} cart quantity`);
                    }
                } finally {
                    for (const c of conns) c.terminate();
                }
            },
        ),
    );
});
