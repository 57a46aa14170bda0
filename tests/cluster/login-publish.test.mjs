// login-publish.test.mjs - a login's session-started command goes to
// JetStream without holding the gateway's loop: while logins wait for
// JetStream's answer, the other connections of the same gateway thread are
// served (a ping is answered at once), and each login is answered only
// after JetStream acked its command (an answer held back by natsproxy.mjs
// holds the login, and nothing else).
//
// A logout whose publish JetStream does not answer within the gateway's
// timeout: held answer or held publish, it is answered once (303 when the
// commit came first, else 503 overloaded at the timeout), and a late commit
// still ends the session on every gateway.
//
// One gateway thread (--gateway-threads 1), so the pinging connection and
// the logins share one loop. A second gateway, straight to nats-server,
// gives the figures at full speed (CW_LOGINS logins, default 12: each
// costs a password hash on one of two workers).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request, login, WsClient, UpgradeRefused, percentile, until } from '../e2e/lib/client.mjs';
import { Cluster, PASSWORD, logOf, connectWhenKnown, psql } from './lib.mjs';
import { startNatsProxy } from './natsproxy.mjs';

const EMAIL = 'l1@logins.test';
const HOLD = 1500; // ms each start-session answer is held back
const PUB_WAIT_MS = 5000; // the gateway's publish timeout (queue_nats.c)
const LATE = 2000; // ms past that timeout a held logout publish, or its answer, comes
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

/**
 * One keep-alive HTTP connection to node: send() writes a request, answers
 * collects each whole response as it comes ({status, head, body, at}), so
 * a stray second answer to one request shows as an answer too many.
 */
async function keepAlive(node) {
    const sock = net.connect(node.port, node.host);
    await new Promise((res, rej) => sock.once('connect', res).once('error', rej));
    sock.on('error', () => {}); // a reset shows as a missing answer
    const answers = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const head = buf.subarray(0, end).toString('latin1');
            const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
            if (buf.length < end + 4 + len) return;
            answers.push({ status: Number(head.split(' ')[1]), head, body: buf.subarray(end + 4, end + 4 + len).toString('utf8'), at: Date.now() });
            buf = buf.subarray(end + 4 + len);
        }
    });
    return {
        answers,
        send(method, path, cookie) {
            sock.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}Content-Length: 0\r\n\r\n`);
        },
        /** The n-th answer (from 1), once it came. */
        async answer(n, ms = 20_000) {
            await until(() => answers.length >= n, ms, `answer ${n} on the kept-alive connection`, 10);
            return answers[n - 1];
        },
        close: () => sock.destroy(),
    };
}

/** A session of EMAIL logged in on gw, with a WebSocket on gw and one on the direct gateway. */
async function sessionOnBoth() {
    const l = await login(gw, EMAIL, PASSWORD);
    const here = await WsClient.connect(gw, { cookie: l.cookie, label: 'here' });
    const there = await connectWhenKnown(direct, l.cookie);
    there.label = 'there';
    return { l, here, there };
}

/**
 * The session ended everywhere, once: each WebSocket heard `unauthorized`
 * and closed 1000, the cookie opens no WebSocket and its logout gets 401 on
 * either gateway, and the log has one session-ended for it.
 */
async function assertEnded({ l, here, there }) {
    for (const ws of [here, there]) {
        const m = await ws.next((x) => x[0] === 'error' && x[3]?.code === 'unauthorized', 20_000, `${ws.label}: the session ended`);
        assert.deepEqual(m.slice(1, 3), [null, null]);
        assert.equal((await ws.waitClose(20_000)).code, 1000, `${ws.label}: closed normally`);
    }
    for (const node of [gw, direct]) {
        await assert.rejects(WsClient.connect(node, { cookie: l.cookie }), (e) => e instanceof UpgradeRefused && e.status === 401, `${node.name}: the cookie opens no WebSocket`);
        const again = await request(node, 'POST', '/logout', { cookie: l.cookie });
        assert.equal(again.status, 401, `${node.name}: a second logout: ${again.text}`);
        assert.equal(again.json().error.code, 'unauthorized');
    }
    const ended = psql(cluster.store, `SELECT count(*) FROM events WHERE name = 'session-ended' AND data LIKE '%${l.session_uuid}%'`);
    assert.equal(ended, '1', 'one session-ended event');
}

/** The gateway's publish timeouts logged so far (queue_nats.c's warning). */
const timeoutsLogged = () => (logOf(gw).match(/queue\.publish status="Timeout"/g) || []).length;

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

    it(`a logout whose publish JetStream answers ${LATE} ms after the timeout: answered at the commit, once`, async () => {
        const s = await sessionOnBoth();
        const http = await keepAlive(gw);
        const timeouts = timeoutsLogged();
        proxy.hold((id) => id.includes('/0/end-session:'), PUB_WAIT_MS + LATE);
        const t0 = Date.now();
        http.send('POST', '/logout', s.l.cookie);
        const r = await http.answer(1);
        // JetStream stored the command at once and the processor committed it: the answer need not wait.
        assert.equal(r.status, 303, r.head);
        assert.match(r.head, /\r\nset-cookie: cw_session=; [^\r\n]*max-age=0/i, 'the cookie cleared');
        assert.ok(r.at - t0 < PUB_WAIT_MS, `answered before the timeout (${r.at - t0} ms)`);
        await assertEnded(s);
        // The publish then times out, and its answer comes later still: neither says a word more.
        await until(() => timeoutsLogged() > timeouts, PUB_WAIT_MS + 20_000, 'the publish timed out');
        await until(() => proxy.held.at(-1)?.sent, LATE + 20_000, 'the held answer let go');
        assert.match(proxy.held.at(-1).id, /\/0\/end-session:/);
        http.send('GET', '/health');
        assert.equal((await http.answer(2)).status, 200);
        assert.equal(http.answers.length, 2, 'one answer per request');
        http.close();
        console.log(`# a logout whose publish answer came ${LATE} ms after the timeout: 303 after ${r.at - t0} ms`);
    });

    it(`a logout whose publish JetStream stores ${LATE} ms after the timeout: 503 overloaded, then the session ends everywhere`, async () => {
        const s = await sessionOnBoth();
        const p = await pinger();
        const http = await keepAlive(gw);
        proxy.delayPublish((id) => id.includes('/0/end-session:'), PUB_WAIT_MS + LATE);
        const t0 = Date.now();
        http.send('POST', '/logout', s.l.cookie);
        const r = await http.answer(1, PUB_WAIT_MS + 20_000);
        const late = proxy.delayed.at(-1);
        assert.match(late.id, /\/0\/end-session:/, 'the logout publish held');
        assert.ok(!late.sent, 'answered before JetStream had the command');
        assert.equal(r.status, 503, r.head);
        assert.equal(JSON.parse(r.body).error.code, 'overloaded');
        assert.doesNotMatch(r.head, /\r\nset-cookie:/i, 'no cookie cleared: the session may go on');
        assert.ok(r.at - t0 >= PUB_WAIT_MS - 100, `refused at the timeout (${r.at - t0} ms)`);
        assert.ok(s.here.isOpen && s.there.isOpen, 'the session not ended yet');
        // JetStream stores the command late; the processor commits it: the session ends after all.
        await assertEnded(s);
        assert.ok(late.sent, 'ended once JetStream had the command');
        const rtts = await p.stop();
        assert.ok(Math.max(...rtts) < HOLD / 2, `pings during the logout: ${fmt(rtts)}`);
        // The late commit finds no request to answer: the connection's next request gets the next answer.
        http.send('GET', '/health');
        assert.equal((await http.answer(2)).status, 200);
        assert.equal(http.answers.length, 2, 'one answer per request');
        http.close();
        console.log(`# a logout whose publish JetStream stored ${LATE} ms after the timeout: 503 after ${r.at - t0} ms; pings ${fmt(rtts)}`);
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
