// ackorder.test.mjs - a connection's replies stay in command order when
// JetStream answers one publish late, and a publish whose answer never
// comes in time ends in `overloaded` while the command itself still
// commits exactly once: resent by hand (a duplicate), and with
// web/static/calderwood.js, which ends it processed either way.
//
// Real parts only: the gateway reaches run.sh's nats-server through
// natsproxy.mjs, which holds back the JetStream answer to one chosen
// publish (matched by its Nats-Msg-Id: user/seq/client id); the processor
// talks to nats-server directly.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { login, WsClient, newClientId, until } from '../e2e/lib/client.mjs';
import { Cluster, PASSWORD, logOf, psql } from './lib.mjs';
import { startNatsProxy } from './natsproxy.mjs';
import { createRequire } from 'node:module';

// calderwood.js as a page runs it: its fetch and WebSocket carry the session cookie.
const WS = createRequire(new URL('../e2e/package.json', import.meta.url))('ws').WebSocket;

const PUB_WAIT_MS = 5000; // the gateway's publish timeout (queue_nats.c)
const N = 10; // commands sent at once; the third one's answer is held

let cluster, proxy, gw, user, cookie;

before(async () => {
    cluster = new Cluster('ackorder');
    cluster.addUser('o1@ackorder.test');
    const proc = await cluster.start('processor', 'proc');
    await until(() => /processor\.active/.test(logOf(proc)), 20_000, 'processor active');
    proxy = await startNatsProxy(cluster.nats);
    cluster.nats = proxy.url; // the gateway's NATS is the proxy
    gw = await cluster.start('gateway', 'gw');
    const l = await login(gw, 'o1@ackorder.test', PASSWORD);
    user = l.user_uuid;
    cookie = l.cookie;
});

after(async () => {
    try {
        await cluster?.stop();
    } finally {
        await proxy?.close();
    }
});

/** Opens a connection recording every message with its arrival time. */
async function connect() {
    const ws = await WsClient.connect(gw, { cookie });
    const seen = [];
    ws.ws.on('message', (raw) => seen.push({ m: JSON.parse(raw.toString()), at: Date.now() }));
    return { ws, seen };
}

/** Sends seqs 1..N of a new client id at once, the third one's JetStream answer held ms. */
function sendHeld(ws, ms) {
    const cid = newClientId('order');
    proxy.hold((id) => id === `${user}/3/${cid}`, ms);
    const t0 = Date.now();
    for (let seq = 1; seq <= N; seq++) ws.cmd(cid, seq, 'visit-page', { url: `/o/${seq}` });
    return { cid, t0 };
}

const replies = (seen, cid) => seen.filter(({ m }) => (m[0] === 'cmd-ack' || m[0] === 'error') && m[1] === cid);
const updates = (seen, cid) => seen.filter(({ m }) => m[0] === 'update' && m[1] === cid);
const indexOf = (seen, type, cid, seq) => seen.findIndex(({ m }) => m[0] === type && m[1] === cid && m[2] === seq);
const eventsOf = (cid) =>
    psql(cluster.store, `SELECT client_seq, count(*) FROM events WHERE client_id = '${cid}' GROUP BY 1 ORDER BY 1`)
        .split('\n')
        .map((r) => r.split('|').map(Number));
const once = Array.from({ length: N }, (_, i) => [i + 1, 1]);

describe('a JetStream answer that comes late', () => {
    it('under the timeout: the later acks wait for it and go out in command order', async () => {
        const HOLD = 2500; // long enough for the processor to commit them all meanwhile, even under ASan
        const { ws, seen } = await connect();
        const { cid, t0 } = sendHeld(ws, HOLD);
        await until(() => replies(seen, cid).length >= N && updates(seen, cid).length >= N, 20_000, `${N} replies and updates`, 20);
        assert.equal(proxy.held.at(-1).id, `${user}/3/${cid}`, 'the proxy held the third publish');
        const r = replies(seen, cid);
        assert.deepEqual(r.map(({ m }) => m[0]), Array(N).fill('cmd-ack'), 'every command acked');
        assert.deepEqual(r.map(({ m }) => m[2]), Array.from({ length: N }, (_, i) => i + 1), 'acks in command order');
        assert.ok(r.every(({ m }) => m[3].duplicate === false), 'no ack is a duplicate');
        const ack3 = r[2].at - t0;
        assert.ok(ack3 >= HOLD - 50, `the third ack waited for its answer (${ack3} ms)`);
        // The later commands were answered at once, but their acks waited behind the third.
        assert.ok(r.slice(3).every(({ at }) => at - t0 >= HOLD - 50), 'later acks held behind the third');
        // Updates are not held behind acks (docs/ARCHITECTURE.md): JetStream had the
        // commands, so the processor committed them while the third answer was held.
        assert.deepEqual(eventsOf(cid), once, 'each command once in the log');
        const early = updates(seen, cid)
            .filter(({ m }) => indexOf(seen, 'update', cid, m[2]) < indexOf(seen, 'cmd-ack', cid, m[2]))
            .map(({ m }) => m[2]);
        assert.ok(early.includes(3), `the third update came before its ack (early: ${early})`);
        console.log(`# answer held ${HOLD} ms: acks in order, the third after ${ack3} ms; updates before their ack: ${early}`);
        ws.close();
    });

    it('past the timeout: `overloaded` in its place, later acks in order, a resend ends exactly once', async () => {
        const HOLD = PUB_WAIT_MS + 1500;
        const { ws, seen } = await connect();
        const { cid, t0 } = sendHeld(ws, HOLD);
        await until(() => replies(seen, cid).length >= N, 20_000, `${N} replies`, 20);
        const r = replies(seen, cid);
        assert.deepEqual(r.map(({ m }) => m[2]), Array.from({ length: N }, (_, i) => i + 1), 'replies in command order');
        assert.deepEqual(r.map(({ m }) => m[0]), ['cmd-ack', 'cmd-ack', 'error', ...Array(N - 3).fill('cmd-ack')], 'the third one refused');
        assert.equal(r[2].m[3].code, 'overloaded', 'refused as overloaded');
        assert.match(r[2].m[3].message, /did not answer in time.*may still be processed/, 'says it may have got in');
        const timedOut = r[2].at - t0;
        assert.ok(timedOut >= PUB_WAIT_MS - 100 && timedOut < HOLD, `refused at the publish timeout (${timedOut} ms)`);
        assert.ok(r.slice(3).every(({ at }) => at >= r[2].at), 'later acks after the refusal');
        // JetStream had the third command all along: it committed, and its update came,
        // before the `overloaded` (docs/PROTOCOL.md: `overloaded` after a publish timeout).
        await until(() => updates(seen, cid).length >= N, 20_000, `${N} updates`, 20);
        assert.deepEqual(eventsOf(cid), once, 'each command once in the log');
        const update3 = indexOf(seen, 'update', cid, 3);
        assert.ok(update3 < indexOf(seen, 'error', cid, 3), 'the third update before its refusal');
        // The late answer reaches the gateway after its timeout and changes nothing.
        await until(() => proxy.held.at(-1).sent, HOLD + 5000, 'the held answer let go', 50);
        // The client's resend (calderwood.js resends an `overloaded` command): a duplicate.
        ws.cmd(cid, 3, 'visit-page', { url: '/o/3' });
        await until(() => seen.filter(({ m }) => m[1] === cid && m[2] === 3 && m[0] !== 'update').length >= 2, 20_000, 'the resend answered', 20);
        const last = seen.filter(({ m }) => m[1] === cid && m[2] === 3 && m[0] === 'cmd-ack');
        assert.equal(last.length, 1, 'one ack for the resend');
        assert.equal(last[0].m[3].duplicate, true, 'the resend acked as a duplicate');
        assert.equal(last[0].m[3].command_uuid, seen[update3].m[3].command_uuid, 'the original command');
        // Answered from the command log: its update again, and no second event.
        await until(() => updates(seen, cid).filter(({ m }) => m[2] === 3).length >= 2, 20_000, 'the update sent again', 20);
        assert.deepEqual(eventsOf(cid), once, 'still each command once in the log');
        console.log(`# answer held ${HOLD} ms: overloaded after ${timedOut} ms, later acks in order; the resend a duplicate, one event`);
        ws.close();
    });

    it('past the timeout, with calderwood.js: the command ends processed, once, whichever of update and `overloaded` comes first', async () => {
        const HOLD = PUB_WAIT_MS + 1500;
        const plainFetch = globalThis.fetch;
        const plainWebSocket = globalThis.WebSocket; // none before Node 22
        globalThis.fetch = (url, init = {}) => plainFetch(url, { ...init, headers: { ...init.headers, Cookie: cookie } });
        globalThis.WebSocket = class extends WS {
            constructor(url) {
                super(url, { headers: { Cookie: cookie } });
            }
        };
        const { Calderwood } = await import('../../web/static/calderwood.js');
        const cw = new Calderwood({ baseUrl: `http://${gw.host}:${gw.port}`, storage: null });
        const errors = [];
        cw.addEventListener('error', (e) => errors.push(e.detail));
        try {
            cw.connect();
            await until(() => cw.state === 'live', 20_000, 'calderwood.js live', 20);
            proxy.hold((id) => id === `${user}/3/${cw.clientId}`, HOLD);
            const cmds = Array.from({ length: 5 }, (_, i) => cw.send('visit-page', { url: `/js/${i + 1}` }));
            await until(() => errors.some((e) => e.seq === 3), HOLD + 5000, 'the overloaded for the third', 20);
            await until(() => cmds.every((c) => !c.pending), 20_000, 'every command ended', 20);
            assert.deepEqual(cmds.map((c) => c.state), Array(5).fill('processed'), 'every command processed');
            assert.equal(errors.length, 1, 'one error seen');
            assert.equal(errors[0].code, 'overloaded');
            assert.deepEqual(eventsOf(cw.clientId), once.slice(0, 5), 'each command once in the log');
            const c3 = cmds[2];
            // Update first (the usual case): the error finds the command ended and is only
            // reported. Error first: calderwood.js resends it, answered as a duplicate.
            const path = errors[0].retrying ? `retried (${c3.sends} sends, duplicate ${c3.duplicate})` : 'its update came first; not resent';
            if (!errors[0].retrying) assert.equal(c3.sends, 1, 'not resent');
            console.log(`# calderwood.js, the third answer held ${HOLD} ms: every command processed once; the third ${path}`);
        } finally {
            cw.close();
            globalThis.fetch = plainFetch;
            if (plainWebSocket) globalThis.WebSocket = plainWebSocket;
            else delete globalThis.WebSocket;
        }
    });
});
