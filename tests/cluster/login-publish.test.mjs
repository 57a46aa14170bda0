// login-publish.test.mjs - a login's session-started command goes to
// JetStream without holding the gateway's loop: while logins wait for
// JetStream's answer, the other connections of the same gateway thread are
// served (a ping is answered at once), and each login is answered only
// after JetStream acked its command (an answer held back by natsproxy.mjs
// holds the login, and nothing else).
//
// One gateway thread (--gateway-threads 1), so the pinging connection and
// the logins share one loop. A second gateway, straight to nats-server,
// gives the figures at full speed (CW_LOGINS logins, default 12: each
// costs a password hash on one of two workers).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, login, WsClient, UpgradeRefused, percentile, until } from '../e2e/lib/client.mjs';
import { Cluster, PASSWORD, logOf } from './lib.mjs';
import { startNatsProxy } from './natsproxy.mjs';

const EMAIL = 'l1@logins.test';
const HOLD = 1500; // ms each start-session answer is held back
const SLOW = 6; // logins through the slow JetStream
const MANY = Number(process.env.CW_LOGINS || 12); // logins for the figures, JetStream at full speed

let cluster, proxy, gw, direct;

before(async () => {
    cluster = new Cluster('logins');
    cluster.addUser(EMAIL);
    const proc = await cluster.start('processor', 'proc');
    await until(() => /processor\.active/.test(logOf(proc)), 20_000, 'processor active');
    const one = ['--gateway-threads', '1', '--login-burst', '1000', '--login-rate', '100000'];
    direct = await cluster.start('gateway', 'gwd', one); // for the figures: no proxy in the way
    proxy = await startNatsProxy(cluster.nats);
    cluster.nats = proxy.url;
    gw = await cluster.start('gateway', 'gw', one);
});

after(async () => {
    try {
        await cluster?.stop();
    } finally {
        await proxy?.close();
    }
});

/**
 * Pings on a connection of its own, one at a time, until stop(); returns
 * the round trips in ms (a ping waits for the gateway's loop to read it).
 */
async function pinger(node = gw) {
    const l = await login(node, EMAIL, PASSWORD);
    const ws = await WsClient.connect(node, { cookie: l.cookie });
    const rtts = [];
    let stopped = false;
    const done = (async () => {
        for (let i = 0; !stopped; i++) {
            const t = process.hrtime.bigint();
            await ws.roundTrip();
            rtts.push(Number(process.hrtime.bigint() - t) / 1e6);
            await new Promise((r) => setTimeout(r, 5));
        }
    })();
    return {
        async stop() {
            stopped = true;
            await done;
            ws.close();
            return rtts;
        },
    };
}

const fmt = (rtts) => `p50 ${percentile(rtts, 50).toFixed(1)} p99 ${percentile(rtts, 99).toFixed(1)} max ${Math.max(...rtts).toFixed(1)} ms (${rtts.length} pings)`;

/** n logins at once; each login's answer time (ms since the start). */
async function logins(n, node = gw) {
    const t0 = Date.now();
    return Promise.all(
        Array.from({ length: n }, async () => {
            const r = await request(node, 'POST', '/login', { body: { email: EMAIL, password: PASSWORD } });
            assert.equal(r.status, 200, r.text);
            return { at: Date.now() - t0, done: Date.now(), session: r.json().session_uuid };
        }),
    );
}

describe('a login publishes its session without holding the loop', () => {
    it(`${SLOW} logins while JetStream answers each ${HOLD} ms late: pings answered meanwhile, logins only after the answer`, async () => {
        const p = await pinger();
        const before = proxy.held.length;
        for (let i = 0; i < SLOW; i++) proxy.hold((id) => id.includes('/0/start-session:'), HOLD);
        const answered = await logins(SLOW);
        const rtts = await p.stop();
        const held = proxy.held.slice(before);
        assert.equal(held.length, SLOW, 'each login published once, its answer held');
        // A login answers once JetStream acked its command: never before its answer was let go.
        for (const a of answered) {
            const h = held.find((x) => x.body.includes(`"session_uuid":"${a.session}"`)); // in DATA, whatever the framing
            assert.ok(h, `the held publish of session ${a.session}`);
            assert.ok(h.sent && h.sentAt <= a.done, `login answered ${h.sentAt ? a.done - h.sentAt : '-'} ms after JetStream's answer`);
            assert.match(h.answer, /"stream":"CW_COMMANDS"/, 'the answer was a JetStream publish ack');
        }
        // Synchronously, each login held the loop HOLD ms in turn: a ping waited up to that.
        // (Half of it leaves room for a loaded machine's scheduling: 330 ms seen at load 7.)
        assert.ok(Math.max(...rtts) < HOLD / 2, `pings during the logins: ${fmt(rtts)}`);
        console.log(`# ${SLOW} logins, each answer held ${HOLD} ms, answered after ${Math.min(...answered.map((a) => a.at))}-${Math.max(...answered.map((a) => a.at))} ms; pings: ${fmt(rtts)}`);
    });

    it(`a logout while JetStream answers ${HOLD} ms late: pings answered meanwhile, the session ends`, async () => {
        const l = await login(gw, EMAIL, PASSWORD);
        const p = await pinger();
        proxy.hold((id) => id.includes('/0/end-session:'), HOLD);
        const r = await request(gw, 'POST', '/logout', { cookie: l.cookie });
        // Answered once committed, which may be before JetStream's answer comes: ping on until then.
        await until(() => proxy.held.at(-1)?.sent && proxy.held.at(-1).id.includes('/0/end-session:'), HOLD * 4, 'the held answer let go', 20);
        const rtts = await p.stop();
        assert.equal(r.status, 303, r.text);
        assert.match(proxy.held.at(-1).id, /\/0\/end-session:/, 'the end-session answer held');
        assert.ok(Math.max(...rtts) < HOLD / 2, `pings during the logout: ${fmt(rtts)}`);
        await assert.rejects(WsClient.connect(gw, { cookie: l.cookie }), UpgradeRefused, 'the session ended');
        console.log(`# a logout, its answer held ${HOLD} ms: pings ${fmt(rtts)}`);
    });

    it('a login whose publish JetStream does not answer in time: 503 overloaded at the timeout', async () => {
        const PUB_WAIT_MS = 5000; // the gateway's publish timeout (queue_nats.c)
        proxy.hold((id) => id.includes('/0/start-session:'), PUB_WAIT_MS + 1500);
        const t0 = Date.now();
        const r = await request(gw, 'POST', '/login', { body: { email: EMAIL, password: PASSWORD } });
        const ms = Date.now() - t0;
        assert.equal(r.status, 503, r.text);
        assert.equal(r.json().error.code, 'overloaded');
        assert.equal(r.headers['set-cookie'], undefined, 'no cookie');
        assert.ok(ms >= PUB_WAIT_MS - 100, `refused at the timeout (${ms} ms)`);
        console.log(`# a login whose publish was not answered: 503 overloaded after ${ms} ms`);
    });

    it(`${MANY} logins at once, JetStream at full speed: the pings meanwhile`, async () => {
        const p = await pinger(direct);
        const t0 = Date.now();
        await logins(MANY, direct);
        const ms = Date.now() - t0;
        const rtts = await p.stop();
        console.log(`# ${MANY} logins in ${ms} ms through one gateway thread; pings meanwhile: ${fmt(rtts)}`);
    });
});
