// timeouts.test.mjs - the time limits of PROTOCOL.md "Limits and timeouts":
// a request head or body that trickles in (slowloris) is cut, an idle
// keep-alive connection is closed, a WebSocket that answers no ping is
// closed with 1001, and one that answers stays. Each server sets the limit
// under test to 1 s and every other to 600 s, so only that limit can end
// the connection; the tests wait for the server's close (or for pings), with
// deadlines far beyond 1 s, never for a fixed time.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { startServer, guard } from './lib/server.mjs';
import { login, loginAs, RawWs, OP, newClientId } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const DEADLINE_MS = 30_000; // for a 1 s limit on a loaded machine

const LONG = '600';
const ALL = ['--idle-timeout', '--header-timeout', '--body-timeout', '--ws-ping-interval', '--ws-pong-timeout'];

/** Server args: the flags named in short at 1 s, every other time limit at 600 s. */
function limits(short) {
    return ALL.flatMap((f) => [f, short.includes(f) ? '1' : LONG]);
}

const servers = [];
after(() => Promise.all(servers.map((s) => s.stop())));

async function serverWith(short, opts = {}) {
    const s = await startServer({ ...opts, args: [...limits(short), ...(opts.args || [])] });
    servers.push(s);
    return s;
}

/**
 * Opens a connection, sends first, then calls trickle() every 100 ms until
 * the server closes. Resolves what was received once it has, or rejects at
 * the deadline (the connection was not cut).
 */
function untilClosed(srv, first, trickle = null) {
    return new Promise((resolveP, reject) => {
        const chunks = [];
        let ticker = null;
        const sock = net.connect(srv.port, srv.host, () => {
            if (first) sock.write(first);
            if (trickle) ticker = setInterval(() => !sock.destroyed && sock.write(trickle()), 100);
        });
        const timer = setTimeout(() => {
            clearInterval(ticker);
            sock.destroy();
            reject(new Error(`the server did not close the connection within ${DEADLINE_MS} ms`));
        }, DEADLINE_MS);
        sock.on('data', (c) => chunks.push(c));
        sock.on('error', () => {});
        sock.on('close', () => {
            clearTimeout(timer);
            clearInterval(ticker);
            resolveP(Buffer.concat(chunks).toString('latin1'));
        });
    });
}

const statusLines = (text) => text.match(/HTTP\/1\.1 \d{3}/g) || [];

/** One byte at a time from s, then spaces in a header value forever: a head that never ends. */
function dripper(s) {
    let i = 0;
    return () => (i < s.length ? s[i++] : ' ');
}

test('slowloris head: a head still incomplete after --header-timeout is cut, however steadily it trickles', async (t) => {
    const srv = await serverWith(['--header-timeout']);
    await guard(() => srv, async () => {
        const got = await untilClosed(srv, 'GET /health HTTP/1.1\r\n', dripper('Host: x\r\nX-Slow: '));
        assert.equal(got, '', `cut without an answer, got: ${got.slice(0, 200)}`);
        // A head sent whole is answered by the same server.
        const ok = await untilClosed(srv, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        assert.deepEqual(statusLines(ok), ['HTTP/1.1 200'], ok.slice(0, 300));
    })(t);
});

test('slowloris body: a body still incomplete after --body-timeout is cut, however steadily it trickles', async (t) => {
    const srv = await serverWith(['--body-timeout'], { users: [ALICE] });
    await guard(() => srv, async () => {
        const head = 'POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n';
        const got = await untilClosed(srv, head, () => ' ');
        assert.equal(got, '', `cut without an answer, got: ${got.slice(0, 200)}`);
        // A body sent whole is read and answered (401: no session).
        const body = JSON.stringify({ name: 'describe' });
        const ok = await untilClosed(
            srv,
            `POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
        assert.deepEqual(statusLines(ok), ['HTTP/1.1 401'], ok.slice(0, 300));
    })(t);
});

test('a request answered later (logins queued for one worker) is not cut by the head or body deadline', async (t) => {
    const srv = await serverWith(['--header-timeout', '--body-timeout'], {
        users: [ALICE],
        args: ['--workers', '1', '--login-burst', '1000', '--login-rate', '100000'],
    });
    await guard(() => srv, async () => {
        // Enough password hashes one after another that the last answers some 4 s after
        // its request arrived whole, past both 1 s deadlines, which are the client's to meet.
        let one = Infinity; // the quickest of three: the first may be cold
        for (let i = 0; i < 3; i++) {
            const t0 = performance.now();
            await login(srv, ALICE.email, ALICE.password, { committed: false });
            one = Math.min(one, performance.now() - t0);
        }
        const n = Math.min(200, Math.ceil(4000 / one) + 2);
        const t0 = performance.now();
        const all = await Promise.all(
            Array.from({ length: n }, async () => {
                const l = await login(srv, ALICE.email, ALICE.password, { expectOk: false, committed: false });
                return { status: l.status, ms: performance.now() - t0 };
            }),
        );
        const slowest = Math.max(...all.map((a) => a.ms));
        assert.ok(slowest > 1500, `${n} logins took ${slowest.toFixed(0)} ms: too quick to show anything`);
        assert.deepEqual(
            all.map((a) => a.status),
            Array(n).fill(200),
            `every one of ${n} logins answered (one alone took ${one.toFixed(0)} ms, the slowest ${slowest.toFixed(0)} ms)`,
        );
    })(t);
});

test('idle keep-alive: a connection with no request begun within --idle-timeout is closed', async (t) => {
    const srv = await serverWith(['--idle-timeout']);
    await guard(() => srv, async () => {
        // After an answer, the connection is kept alive, then closed once idle.
        const got = await untilClosed(srv, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.deepEqual(statusLines(got), ['HTTP/1.1 200'], got.slice(0, 300));
        assert.doesNotMatch(got, /connection: close/i, 'the answer itself kept the connection alive');
        // A connection that never sends anything is closed too.
        assert.equal(await untilClosed(srv, null), '');
    })(t);
});

test('a WebSocket that answers no ping is closed with 1001 after --ws-pong-timeout', async (t) => {
    const srv = await serverWith(['--ws-ping-interval', '--ws-pong-timeout'], { users: [ALICE] });
    await guard(() => srv, async () => {
        const { cookie } = await loginAs(srv, ALICE.email);
        const raw = await RawWs.connect(srv, { cookie }); // a raw client: it answers nothing by itself
        try {
            const ping = await raw.nextFrame((f) => f.opcode === OP.PING, DEADLINE_MS, 'a ping');
            assert.ok(ping, 'the server pings a silent connection');
            assert.equal(ping.masked, false);
            const close = await raw.closeFrame(DEADLINE_MS);
            assert.ok(close, `a close frame before the end (error: ${raw.error?.message ?? 'none'})`);
            assert.equal(close.code, 1001, `close ${close.code} "${close.reason}"`);
            assert.ok(await raw.waitEnd(DEADLINE_MS), 'the server ends the TCP connection without waiting for an answer');
            assert.match(srv.log(), /ws\.no_pong/);
        } finally {
            raw.destroy();
        }
    })(t);
});

test('a WebSocket that answers pings stays open: raw pongs, and a standard client answering by itself', async (t) => {
    const srv = await serverWith(['--ws-ping-interval', '--ws-pong-timeout'], { users: [ALICE] });
    await guard(() => srv, async () => {
        const { cookie } = await loginAs(srv, ALICE.email);
        const raw = await RawWs.connect(srv, { cookie });
        // The ws package answers pings itself, as browsers do.
        const std = new WebSocket(`ws://${srv.host}:${srv.port}/ws`, { headers: { cookie } });
        let stdPings = 0;
        let stdClosed = false;
        std.on('ping', () => stdPings++);
        std.on('close', () => (stdClosed = true));
        try {
            await new Promise((res, rej) => {
                std.once('open', res);
                std.once('error', rej);
            });
            // Three pings answered, each at least a pong timeout after the one before it.
            for (let i = 0; i < 3; i++) {
                const ping = await raw.nextFrame((f) => f.opcode === OP.PING || f.opcode === OP.CLOSE, DEADLINE_MS, 'a ping');
                assert.ok(ping && ping.opcode === OP.PING, `ping ${i + 1}: got ${ping ? `close ${ping.code}` : 'the end'}`);
                await raw.sendFrame({ opcode: OP.PONG, payload: ping.payload });
            }
            const token = newClientId('alive');
            await raw.sendJson(['ping', token]);
            assert.deepEqual(await raw.nextMessage(DEADLINE_MS), ['pong', token], 'the raw connection still works');
            const deadline = Date.now() + DEADLINE_MS;
            while (stdPings < 3 && !stdClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
            assert.ok(stdPings >= 3, `the standard client was pinged (${stdPings} pings)`);
            assert.equal(std.readyState, WebSocket.OPEN, 'the standard client is still connected');
            assert.doesNotMatch(srv.log(), /ws\.no_pong/);
        } finally {
            raw.destroy();
            std.terminate();
        }
    })(t);
});
