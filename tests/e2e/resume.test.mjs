// resume.test.mjs - the hand-off from a resume's catch-up to live updates,
// under the conditions that break it: a catch-up far longer than the output
// bound, read in many chunks, while another user's page views are committed
// all the time, repeated many times. Every position after the resume point
// must reach the resuming connection exactly once, in order.
//
// The server runs with a small --max-output, so a catch-up of a few thousand
// events spans many chunks (each 64 KiB, the least a chunk is, and sixteen
// times this bound: --slow-reader-grace lets the reader take it) and many
// hand-offs between a chunk and the events committed while it was read.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startServer, guard } from './lib/server.mjs';
import { loginAs, WsClient, newClientId } from './lib/client.mjs';

const READER = { email: 'reader@example.org', password: 'reader-password-1', first: 'Rea', last: 'Der' };
const WRITER = { email: 'writer@example.org', password: 'writer-password-1', first: 'Wri', last: 'Ter' };
const BACKLOG = 4000; // events behind the head that each resume asks for
const ROUNDS = 8;

let srv;
let readerCookie;
let writer;
const writerCid = newClientId('writer');
let seq = 0;

before(async () => {
    srv = await startServer({ users: [READER, WRITER], args: ['--max-output', '4096'] });
    readerCookie = (await loginAs(srv, READER.email)).cookie;
    writer = await WsClient.connect(srv, { cookie: (await loginAs(srv, WRITER.email)).cookie, label: 'writer' });
    // The backlog, in steps the writer's own connection can take in.
    while (seq < BACKLOG) {
        for (let i = 0; i < 50; i++) writer.cmd(writerCid, ++seq, 'visit-page', { url: `https://example.org/backlog/${seq}` });
        await writer.outcome(writerCid, seq, 60_000);
        writer.log.length = 0;
    }
});
after(async () => {
    writer?.terminate();
    await srv?.stop();
});

const it = (name, fn) => test(name, guard(() => srv, fn));

/** Page views from the writer every 2 ms until stop() resolves with the last one's position. */
function streamWrites() {
    let running = true;
    const done = (async () => {
        while (running) {
            writer.cmd(writerCid, ++seq, 'visit-page', { url: `https://example.org/live/${seq}` });
            await delay(2);
        }
        const last = await writer.outcome(writerCid, seq, 60_000);
        writer.log.length = 0;
        return last[3].position;
    })();
    return () => {
        running = false;
        return done;
    };
}

/** The head of the log: the position of a fresh page view's update. */
async function head() {
    writer.cmd(writerCid, ++seq, 'visit-page', { url: 'https://example.org/head' });
    const u = await writer.outcome(writerCid, seq, 60_000);
    writer.log.length = 0;
    return u[3].position;
}

it(`a catch-up of ${BACKLOG} events in many chunks while page views commit: every position once, in order (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
        const from = (await head()) - BACKLOG;
        const ws = await WsClient.connect(srv, { cookie: readerCookie, label: `reader-${round}` });
        try {
            const stop = streamWrites();
            // Some writes land before the resume is read, some during the catch-up, some after.
            await delay(round * 3);
            ws.send(['resume', from]);
            const resumed = await ws.nextOf('resumed', undefined, undefined, 60_000);
            await delay(20);
            const last = await stop();
            await ws.next((m) => m[0] === 'update' && m[3].position === last, 60_000, `update ${last}`);

            const got = ws.log.filter((m) => m[0] === 'update').map((m) => m[3].position);
            const seen = new Set(got);
            assert.equal(seen.size, got.length, `round ${round}: a position came twice`);
            const missing = [];
            for (let p = from + 1; p <= last; p++) if (!seen.has(p)) missing.push(p);
            assert.deepEqual(missing, [], `round ${round}: positions never delivered (resumed at ${resumed[1]})`);
            const idx = ws.log.indexOf(resumed);
            const afterResumed = ws.log.slice(idx + 1).filter((m) => m[0] === 'update').map((m) => m[3].position);
            assert.ok(afterResumed.every((p) => p > resumed[1]), `round ${round}: live updates come after ${resumed[1]}`);
            for (let i = 1; i < afterResumed.length; i++) assert.ok(afterResumed[i] > afterResumed[i - 1], 'live in order');
            assert.equal(ws.closeInfo, null, `round ${round}: the connection stays open`);
        } finally {
            ws.terminate();
        }
    }
});

it('a catch-up far longer than the output bound is paced, not closed as a slow reader', async () => {
    const top = await head();
    const ws = await WsClient.connect(srv, { cookie: readerCookie, label: 'reader-all' });
    try {
        ws.send(['resume', 0]);
        const resumed = await ws.nextOf('resumed', undefined, undefined, 60_000);
        assert.ok(resumed[1] >= top, `resumed at ${resumed[1]}, the log reached ${top}`);
        const got = ws.log.filter((m) => m[0] === 'update').map((m) => m[3].position);
        assert.ok(got.length >= BACKLOG, `${got.length} updates replayed`);
        for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], 'the catch-up is in order, each once');
        assert.ok(got[got.length - 1] <= resumed[1]);
        assert.equal(ws.closeInfo, null, 'the connection stays open');
    } finally {
        ws.terminate();
    }
});

it('GET /ws?after=N resumes at open: catch-up, resumed, live, one stream in position order while page views commit', async () => {
    for (let round = 0; round < 4; round++) {
        const from = (await head()) - BACKLOG;
        const stop = streamWrites();
        await delay(10); // live updates are flowing when the connection opens
        const ws = await WsClient.connect(srv, { cookie: readerCookie, path: `/ws?after=${from}`, label: `reader-open-${round}` });
        try {
            const resumed = await ws.nextOf('resumed', undefined, undefined, 60_000);
            const last = await stop();
            await ws.next((m) => m[0] === 'update' && m[3].position === last, 60_000, `update ${last}`);
            const got = ws.log.filter((m) => m[0] === 'update').map((m) => m[3].position);
            const want = Array.from({ length: last - from }, (_, i) => from + 1 + i);
            assert.deepEqual(got, want, `round ${round}: every position after ${from} once, in order`);
            const idx = ws.log.indexOf(resumed);
            assert.ok(ws.log.slice(0, idx).every((m) => m[0] !== 'update' || m[3].position <= resumed[1]), 'nothing live before resumed');
        } finally {
            ws.terminate();
        }
    }
});

it('GET /ws?after= with a value that is not a position is refused with 400 before the upgrade', async () => {
    for (const bad of ['', '-1', 'x', '1.5', '9007199254740992', '12abc']) {
        await assert.rejects(
            WsClient.connect(srv, { cookie: readerCookie, path: `/ws?after=${bad}` }),
            (e) => e.status === 400 && /after=/.test(e.text),
            `after=${bad}`,
        );
    }
    const ws = await WsClient.connect(srv, { cookie: readerCookie, path: '/ws?other=1&after=0' });
    try {
        await ws.nextOf('resumed', undefined, undefined, 60_000);
    } finally {
        ws.terminate();
    }
});
