// slow-reader.test.mjs - the slow-reader rule and its grace (--slow-reader-grace):
// a connection whose output stays over --max-output, its socket taking
// nothing more, for longer than the grace is closed with 1008; one that
// stalls for less than the grace and then takes everything (a client
// descheduled on a busy machine, a catch-up chunk bigger than the bound) is
// not. The same stalling reader against a server with no grace is closed,
// which shows the stalls do push it over the bound.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer, guard } from './lib/server.mjs';
import { request, loginAs, WsClient, RawWs, newClientId, until } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'Builder' };
const USERS = [ALICE, BOB];
const BOUND = 128 * 1024; // --max-output
const GRACE_MS = 10_000;
// A reader that stops reading on loopback has about 3.5 MB taken into the
// kernel's buffers (both ends) before the server's writes stop being taken:
// a stall lasts some 2,000 page views of 2 KB before it is over the bound.

const URL_2K = `https://example.org/flood/${'u'.repeat(2000)}`;

async function slowClosedCount(srv) {
    const text = (await request(srv, 'GET', '/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith('calderwood_connections_closed_slow_total'));
    return line ? Number(line.split(/\s+/)[1]) : NaN;
}

/**
 * Bytes of a loopback connection that the kernel holds: the client end's
 * receive queue and the server end's send queue (/proc/net/tcp's
 * tx_queue:rx_queue), so that a test can tell how much of what the server
 * sent is still in the server's own output queue.
 */
async function kernelHeld(socket) {
    const hex = (p) => p.toString(16).toUpperCase().padStart(4, '0');
    let held = 0;
    for (const line of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
        const [, local, remote, , queues] = line.trim().split(/\s+/);
        if (!queues) continue;
        const [tx, rx] = queues.split(':').map((h) => parseInt(h, 16));
        if (local.endsWith(`:${hex(socket.localPort)}`) && remote.endsWith(`:${hex(socket.remotePort)}`)) held += rx;
        if (local.endsWith(`:${hex(socket.remotePort)}`) && remote.endsWith(`:${hex(socket.localPort)}`)) held += tx;
    }
    return held;
}

/** A client of ALICE's that sends 2 KB page views and reads its own updates; every user sees them. */
async function flooder(srv) {
    const cid = newClientId('flood');
    const ws = await WsClient.connect(srv, { cookie: (await loginAs(srv, ALICE.email)).cookie, label: 'flooder' });
    ws.keep = (m) => m[1] === cid && m[0] !== 'update';
    let seen = 0;
    let bytes = 0; // of the update frames: every reader is sent the same ones
    ws.onMessage = (m) => {
        if (m[0] === 'update' && m[1] === cid) seen += 1;
    };
    ws.ws.on('message', (data) => {
        if (data.toString('utf8', 0, 9) === '["update"') bytes += data.length + 4; // + the frame's header
    });
    let seq = 0;
    return {
        ws,
        get sent() {
            return seq;
        },
        get bytes() {
            return bytes;
        },
        /** n page views, acked and back on the flooder's own connection. */
        async views(n) {
            const first = seq;
            for (let i = 0; i < n; i++) ws.cmd(cid, seq++, 'visit-page', { url: URL_2K });
            for (let s = first; s < seq; s++) assert.equal((await ws.reply(cid, s, 60_000))[0], 'cmd-ack');
            await until(() => seen >= seq, 60_000, `the flooder's own ${seq} updates`);
        },
    };
}

/** BOB's raw connection, counting the flood's update frames it has read. */
async function reader(srv) {
    const raw = await RawWs.connect(srv, { cookie: (await loginAs(srv, BOB.email)).cookie });
    return {
        raw,
        updates: () => raw.frames.filter((f) => f.text?.startsWith('["update"') && f.text.includes('/flood/')).length,
        closed: () => raw.frames.find((f) => f.opcode === 0x8) || (raw.ended ? { code: 'TCP end' } : null),
    };
}

/**
 * Cycles of: the reader stops reading while page views of 2 KB are sent
 * until the server holds twice the bound for it (what it was sent less what
 * the kernel and this process hold) or maxStallMs have passed; then it reads
 * everything. Returns the reader's close frame (null when it stayed open
 * through every cycle) and the most the server held for it at a stall's end.
 */
async function stallingReader(t, srv, cycles, maxStallMs) {
    const f = await flooder(srv);
    const r = await reader(srv);
    let most = 0;
    try {
        for (let i = 0; i < cycles && !r.closed(); i++) {
            r.raw.pause();
            const t0 = Date.now();
            const from = f.sent;
            let queued = 0;
            while (queued <= 2 * BOUND && Date.now() - t0 < maxStallMs && !r.closed()) {
                await f.views(250);
                queued = f.bytes - r.raw.bytesReceived - (await kernelHeld(r.raw.socket));
            }
            r.raw.resume();
            most = Math.max(most, queued);
            t.diagnostic(`stall ${i}: ${f.sent - from} page views in ${Date.now() - t0} ms, the server then held ${queued} bytes for the reader`);
            const want = f.sent;
            await until(() => r.updates() >= want || r.closed(), 60_000, `the reader's ${want} updates (has ${r.updates()})`);
        }
        return { close: r.closed(), most };
    } finally {
        f.ws.terminate();
        r.raw.destroy();
    }
}

describe(`with --slow-reader-grace ${GRACE_MS}`, () => {
    let srv;
    before(async () => {
        srv = await startServer({ users: USERS, args: ['--max-output', String(BOUND), '--slow-reader-grace', String(GRACE_MS)] });
    });
    after(() => srv?.stop());

    test(
        'a reader that stalls for less than the grace, then reads everything, is not closed',
        { timeout: 300_000 },
        guard(
            () => srv,
            async (t) => {
                const before = await slowClosedCount(srv);
                // Half the grace at most: the other half is for reading what piled up.
                const { close, most } = await stallingReader(t, srv, 3, GRACE_MS / 2);
                assert.equal(close, null, `the reader was closed: ${JSON.stringify(close)}`);
                assert.ok(most > BOUND, `a stall took the reader over the bound (at most ${most} bytes held for it)`);
                assert.equal(await slowClosedCount(srv), before, 'no connection was closed as slow');
            },
        ),
    );

    test(
        'a reader that stops reading is closed with 1008 once the grace has passed, not before',
        { timeout: 300_000 },
        guard(
            () => srv,
            async (t) => {
                const before = await slowClosedCount(srv);
                const f = await flooder(srv);
                const r = await reader(srv);
                try {
                    r.raw.pause(); // reads nothing from now on
                    // Page views until the server holds twice the bound for the reader (what it was
                    // sent less what the kernel and this process hold), far less than 64 times the
                    // bound, the memory limit that cuts regardless; then nothing more is queued for
                    // it, so it is the liveness sweep that finds its grace over.
                    let queued = 0;
                    while (queued <= 2 * BOUND) {
                        assert.ok(f.sent < 20_000, `${f.sent} page views and the server holds only ${queued} bytes for the reader`);
                        await f.views(250);
                        queued = f.bytes - r.raw.bytesReceived - (await kernelHeld(r.raw.socket));
                    }
                    t.diagnostic(`the server holds ${queued} bytes for the reader after ${f.sent} page views`);
                    const sent = Date.now();
                    await until(async () => (await slowClosedCount(srv)) > before, 60_000, 'the stopped reader closed as slow');
                    t.diagnostic(`closed ${Date.now() - sent} ms after the last of ${f.sent} page views was sent`);
                    const line = srv
                        .log()
                        .split('\n')
                        .find((l) => l.includes('ws.slow_consumer'));
                    const overMs = Number(/over_ms=(\d+)/.exec(line || '')?.[1]);
                    assert.ok(overMs >= GRACE_MS, `closed after ${overMs} ms over the bound (log: ${line}), the grace is ${GRACE_MS}`);
                    r.raw.resume(); // what the server had sent before it gave up ends with the close frame
                    const close = await r.raw.closeFrame(60_000);
                    assert.ok(close, 'a close frame reached the reader');
                    assert.equal(close.code, 1008, `close ${close.code} "${close.reason}"`);
                    assert.ok(f.ws.isOpen, 'the flooder, which reads, stays open');
                } finally {
                    f.ws.terminate();
                    r.raw.destroy();
                }
            },
        ),
    );
});

describe('with --slow-reader-grace 0 (the rule without a grace)', () => {
    let srv;
    before(async () => {
        srv = await startServer({ users: USERS, args: ['--max-output', String(BOUND), '--slow-reader-grace', '0'] });
    });
    after(() => srv?.stop());

    test(
        'the same stalling reader is closed with 1008: its stalls do take it over the bound',
        { timeout: 300_000 },
        guard(
            () => srv,
            async (t) => {
                const { close } = await stallingReader(t, srv, 3, Infinity);
                assert.ok(close, 'the stalling reader was closed');
                assert.equal(close.code, 1008, `close ${close.code} "${close.reason}"`);
            },
        ),
    );
});
