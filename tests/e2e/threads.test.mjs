// threads.test.mjs - connections on several gateway threads (--gateway-threads):
// sockets are spread over the threads, and everything that crosses them
// keeps its guarantees: a page view reaches every connection on every
// thread once and in order, a resend on another thread is one command,
// logout closes the user's sockets everywhere, resume works on any thread,
// SIGTERM drains every thread, and a private event wakes only the threads
// where its user has a connection.
//
// The server runs with the thread count of the run (the default: one per
// core), or what CW_SERVER_ARGS says ("--gateway-threads 4"); the file reads
// it from /metrics, so it checks the spread for whatever count that is.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, guard } from './lib/server.mjs';
import { loginAs, request, WsClient, newClientId } from './lib/client.mjs';

const ANN = { email: 'ann@example.org', password: 'ann-password-1', first: 'Ann', last: 'Threads' };
const BEN = { email: 'ben@example.org', password: 'ben-password-1', first: 'Ben', last: 'Threads' };
const CAL = { email: 'cal@example.org', password: 'cal-password-1', first: 'Cal', last: 'Threads' };

let srv;
let threads;
const open = [];

/** The gateway's per-thread gauges from /metrics: { threads, conns: [per thread] }. */
async function threadMetrics(server = srv) {
    const res = await request(server, 'GET', '/metrics');
    assert.equal(res.status, 200);
    const n = Number(/^calderwood_gateway_threads (\d+)$/m.exec(res.text)?.[1]);
    assert.ok(n >= 1, `calderwood_gateway_threads in /metrics:\n${res.text.slice(-600)}`);
    const conns = new Array(n).fill(0);
    for (const m of res.text.matchAll(/^calderwood_gateway_thread_connections\{thread="(\d+)"\} (\d+)$/gm)) conns[Number(m[1])] = Number(m[2]);
    return { threads: n, conns };
}

/** Waits until the per-thread WebSocket counts add up to total (closes are seen a little later). */
async function connsSettle(total, server = srv) {
    const until = Date.now() + 20_000;
    for (;;) {
        const m = await threadMetrics(server);
        if (m.conns.reduce((a, b) => a + b, 0) === total || Date.now() > until) return m;
        await new Promise((r) => setTimeout(r, 50));
    }
}

/** Per thread: committed batches routed and skipped (calderwood_gateway_thread_batches*_total). */
async function batchMetrics(server = srv) {
    const res = await request(server, 'GET', '/metrics');
    const routed = [], skipped = [];
    for (const m of res.text.matchAll(/^calderwood_gateway_thread_batches_total\{thread="(\d+)"\} (\d+)$/gm)) routed[Number(m[1])] = Number(m[2]);
    for (const m of res.text.matchAll(/^calderwood_gateway_thread_batches_skipped_total\{thread="(\d+)"\} (\d+)$/gm)) skipped[Number(m[1])] = Number(m[2]);
    return { routed, skipped };
}

/** Waits until every thread has routed or skipped every batch published (the sums agree twice). */
async function batchesSettle(server = srv) {
    const until = Date.now() + 20_000;
    let last = '';
    for (;;) {
        const b = await batchMetrics(server);
        const sums = b.routed.map((r, i) => r + b.skipped[i]);
        const key = JSON.stringify(sums);
        if ((new Set(sums).size === 1 && key === last) || Date.now() > until) return b;
        last = key;
        await new Promise((r) => setTimeout(r, 50));
    }
}

async function connect(server, cookie, label, path) {
    const ws = await WsClient.connect(server, { cookie, label, path });
    open.push(ws);
    return ws;
}

before(async () => {
    srv = await startServer({ users: [ANN, BEN, CAL] });
    threads = (await threadMetrics()).threads;
});
after(async () => {
    for (const ws of open) ws.terminate();
    await srv?.stop();
});

const it = (name, fn) => test(name, guard(() => srv, fn));

it('connections are spread over every gateway thread (/metrics counts them per thread)', async () => {
    const before = (await connsSettle(0)).conns;
    const cookie = (await loginAs(srv, ANN.email)).cookie;
    const n = 4 * threads;
    const conns = [];
    for (let i = 0; i < n; i++) conns.push(await connect(srv, cookie, `spread-${i}`));
    const m = await connsSettle(n);
    assert.equal(m.conns.reduce((a, b) => a + b, 0), n, `every connection counted once: ${m.conns}`);
    for (let t = 0; t < threads; t++) assert.ok(m.conns[t] - before[t] >= 1, `thread ${t} holds some of ${n} connections: ${m.conns}`);
    for (const ws of conns) ws.close();
    await Promise.all(conns.map((ws) => ws.waitClose()));
    assert.deepEqual((await connsSettle(0)).conns, new Array(threads).fill(0), 'closed connections leave their thread');
});

it('page views from a connection on one thread reach the connections on every thread, once and in order', async () => {
    const cookies = [(await loginAs(srv, ANN.email)).cookie, (await loginAs(srv, BEN.email)).cookie];
    const conns = [];
    for (let i = 0; i < 4 * threads; i++) conns.push(await connect(srv, cookies[i % 2], `fan-${i}`));
    const m = await connsSettle(conns.length);
    assert.ok(m.conns.filter((c) => c > 0).length === threads, `connections on every thread: ${m.conns}`);
    const writer = conns[0];
    const cid = newClientId('fan');
    const N = 100;
    for (let s = 1; s <= N; s++) writer.cmd(cid, s, 'visit-page', { url: `https://example.org/fan/${s}` });
    const last = await writer.outcome(cid, N, 60_000);
    for (const ws of conns) {
        if (ws !== writer) await ws.next((x) => x[0] === 'update' && x[3]?.position === last[3].position, 60_000, `the last page view on ${ws.label}`);
        const positions = ws.all((x) => x[0] === 'update' && x[1] === cid).map((x) => x[3].position);
        assert.equal(positions.length, N, `${ws.label}: ${positions.length} of ${N} page views`);
        for (let i = 1; i < positions.length; i++) assert.ok(positions[i] > positions[i - 1], `${ws.label}: in order at ${i}`);
    }
    for (const ws of conns) ws.close();
});

it('a command resent on a new connection (any thread) is one command: acked as a duplicate, heard by both', async () => {
    // As a client does after reconnecting: the resend comes on a connection that has not seen
    // this client id, while the first is still queued, or just committed, or routed by some
    // threads only.
    const cookie = (await loginAs(srv, BEN.email)).cookie;
    const a = await connect(srv, cookie, 'dup-first');
    const cid = newClientId('dup');
    for (let s = 1; s <= 3 * threads; s++) {
        const b = await connect(srv, cookie, `dup-resend-${s}`);
        a.cmd(cid, s, 'add-to-cart', { sku: `dup-${s}`, quantity: 1 });
        const ra = await a.reply(cid, s);
        b.cmd(cid, s, 'add-to-cart', { sku: `dup-${s}`, quantity: 1 });
        const rb = await b.reply(cid, s);
        assert.equal(ra[0], 'cmd-ack', JSON.stringify(ra));
        assert.equal(rb[0], 'cmd-ack', JSON.stringify(rb));
        assert.equal(rb[3].command_uuid, ra[3].command_uuid, `one command: ${JSON.stringify([ra, rb])}`);
        assert.equal(rb[3].duplicate, true, JSON.stringify(rb));
        const [oa, ob] = [await a.outcome(cid, s, 30_000), await b.outcome(cid, s, 30_000)];
        assert.equal(oa[3].position, ob[3].position, 'both hear the same event');
        b.close();
    }
    a.close();
});

it('logout closes the session\'s sockets on every thread', async () => {
    const l = await loginAs(srv, CAL.email);
    const other = await loginAs(srv, CAL.email); // another session of the same user stays
    const conns = [];
    for (let i = 0; i < 2 * threads; i++) conns.push(await connect(srv, l.cookie, `logout-${i}`));
    const keep = await connect(srv, other.cookie, 'other-session');
    const m = await connsSettle(conns.length + 1);
    assert.ok(m.conns.filter((c) => c > 0).length === threads, `the session's connections on every thread: ${m.conns}`);
    const res = await request(srv, 'POST', '/logout', { cookie: l.cookie, body: '' });
    assert.equal(res.status, 303);
    for (const ws of conns) {
        const close = await ws.waitClose(20_000);
        assert.equal(close.code, 1000, `${ws.label}: closed, session ended (${close.reason})`);
        assert.ok(ws.all((x) => x[0] === 'error' && x[3]?.code === 'unauthorized').length === 1, `${ws.label} was told why`);
    }
    await keep.roundTrip();
    assert.ok(keep.isOpen, 'the other session stays open');
    keep.close();
});

it('a private event wakes only the threads where its user has a connection: the others skip it', async () => {
    await connsSettle(0);
    const cookie = (await loginAs(srv, CAL.email)).cookie;
    const ws = await connect(srv, cookie, 'private');
    const home = (await connsSettle(1)).conns.indexOf(1);
    const cid = newClientId('private');
    await ws.run(cid, 1, 'add-to-cart', { sku: 'private-0', quantity: 1 }); // the login's session is routed by now
    const before = await batchesSettle();
    const N = 20;
    for (let s = 2; s <= N; s++) ws.cmd(cid, s, 'add-to-cart', { sku: `private-${s}`, quantity: 1 });
    await ws.outcome(cid, N, 30_000);
    const after = await batchesSettle();
    const routedHome = after.routed[home] - before.routed[home];
    assert.ok(routedHome >= 1, `thread ${home}, with the connection, routed them: ${JSON.stringify([before, after])}`);
    for (let t = 0; t < threads; t++) {
        if (t === home) continue;
        assert.equal(after.routed[t], before.routed[t], `thread ${t} was not woken: ${JSON.stringify([before, after])}`);
        assert.equal(after.skipped[t] - before.skipped[t], routedHome, `thread ${t} skipped what thread ${home} routed`);
    }
    ws.close();
    await ws.waitClose();
});

it('resume works on every thread: each position after the point once, in order, then live', async () => {
    const writerCookie = (await loginAs(srv, ANN.email)).cookie;
    const writer = await connect(srv, writerCookie, 'resume-writer');
    const cid = newClientId('resume');
    const { event } = await writer.run(cid, 1, 'visit-page', { url: 'https://example.org/resume/start' });
    const from = event.position;
    for (let s = 2; s <= 60; s++) writer.cmd(cid, s, 'visit-page', { url: `https://example.org/resume/${s}` });
    await writer.outcome(cid, 60, 60_000);
    const readerCookie = (await loginAs(srv, BEN.email)).cookie;
    const readers = [];
    for (let i = 0; i < 2 * threads; i++) readers.push(await connect(srv, readerCookie, `resume-${i}`, `/ws?after=${from}`));
    const m = await connsSettle(readers.length + 1);
    assert.ok(m.conns.filter((c) => c > 0).length === threads, `resuming connections on every thread: ${m.conns}`);
    // More page views while the catch-ups run: they come live or from the log, never twice.
    for (let s = 61; s <= 100; s++) writer.cmd(cid, s, 'visit-page', { url: `https://example.org/resume/${s}` });
    const last = (await writer.outcome(cid, 100, 60_000))[3].position;
    for (const ws of readers) {
        await ws.nextOf('resumed', undefined, undefined, 60_000);
        await ws.next((x) => x[0] === 'update' && x[3]?.position === last, 60_000, `position ${last} on ${ws.label}`);
        const mine = ws.all((x) => x[0] === 'update' && x[1] === cid).map((x) => x[3].position);
        assert.equal(mine.length, 99, `${ws.label}: every page view after ${from} (got ${mine.length})`);
        for (let i = 1; i < mine.length; i++) assert.ok(mine[i] > mine[i - 1], `${ws.label}: in order, no repeat, at ${i}`);
    }
    for (const ws of [writer, ...readers]) ws.close();
});

test('SIGTERM drains every thread: acked commands delivered on each, 1001 everywhere, exit 0', async (t) => {
    const server = await startServer({ users: [ANN] });
    try {
        await guard(() => server, async () => {
            const n = (await threadMetrics(server)).threads;
            const cookie = (await loginAs(server, ANN.email)).cookie;
            const conns = [];
            for (let i = 0; i < 2 * n; i++) conns.push(await WsClient.connect(server, { cookie, label: `drain-${i}` }));
            const m = await connsSettle(conns.length, server);
            assert.ok(m.conns.filter((c) => c > 0).length === n, `connections on every thread: ${m.conns}`);
            const N = 50;
            const cids = conns.map(() => newClientId('drain'));
            conns.forEach((ws, i) => {
                for (let s = 1; s <= N; s++) ws.cmd(cids[i], s, 'add-to-cart', { sku: `drain-${i}`, quantity: 1 });
            });
            for (let i = 0; i < conns.length; i++) for (let s = 1; s <= N; s++) assert.equal((await conns[i].reply(cids[i], s))[0], 'cmd-ack');
            const exit = server.stop();
            for (let i = 0; i < conns.length; i++) {
                const close = await conns[i].waitClose(30_000);
                assert.equal(close.code, 1001, `${conns[i].label}: going away, got ${close.code} ${close.reason}`);
                const got = new Set(conns[i].all((x) => x[0] === 'update' && x[1] === cids[i]).map((x) => x[2]));
                assert.equal(got.size, N, `${conns[i].label}: every acked command's update before the close`);
            }
            assert.equal((await exit).code, 0);
        })(t);
    } finally {
        await server.stop();
    }
});
