// disk-stall.test.mjs - a stalled disk: the processor's fsync blocks for 1 s,
// then for 5 s (tests/faults/stall.c, preloaded into the real server; the
// real SQLite does everything else). During the stall other connections'
// pings, queries and logins answer at once, commands are acked until the
// queue's bound and refused as `overloaded` past it, /health says
// "stalled"; afterwards every acked command commits and is answered exactly
// once, and no connection was dropped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, isAbsolute } from 'node:path';
import { startServer, guard, ROOT } from './lib/server.mjs';
import { request, login, loginAs, queryOk, WsClient, newClientId, until } from './lib/client.mjs';

// The faults are injected into this process's own file I/O: a PostgreSQL store writes
// in the server's, so these run on SQLite only.
const ON_PG = (process.env.CW_TEST_STORE || '').startsWith('postgres') && 'the store is PostgreSQL';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-1', first: 'Bob', last: 'Builder' };
const QUEUE = 64;
// "Within milliseconds" on a loaded two-core machine, sanitizers included:
// far below either stall, so an answer that waited for the disk fails it.
const FAST_MS = 400;

const BUILD = process.env.BUILD || 'build';
const SHIM = join(isAbsolute(BUILD) ? BUILD : join(ROOT, BUILD), 'tests', 'stall.so');

/** Milliseconds fn takes, with its result. */
async function timed(fn) {
    const t0 = performance.now();
    const value = await fn();
    return { ms: performance.now() - t0, value };
}

async function health(srv) {
    return (await request(srv, 'GET', '/health')).json();
}

test('fsync stalls of 1 s and 5 s hold commits only', { skip: ON_PG }, async (t) => {
    assert.ok(existsSync(SHIM), `${SHIM} is missing: make ${BUILD}/tests/stall.so`);
    const ctlDir = mkdtempSync(join(tmpdir(), 'cw-stall-'));
    const ctl = join(ctlDir, 'stall');
    const asan = process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : '';
    const srv = await startServer({
        users: [ALICE, BOB],
        args: ['--queue-capacity', String(QUEUE)],
        // The shim comes before the sanitizer's runtime, which would refuse to start otherwise.
        env: { LD_PRELOAD: SHIM, CW_STALL_FILE: ctl, ASAN_OPTIONS: `${asan}verify_asan_link_order=0` },
    });
    t.after(async () => {
        await srv.stop();
        rmSync(ctlDir, { recursive: true, force: true });
    });
    const bobLogin = await loginAs(srv, BOB.email);
    const conns = [];
    for (const who of [ALICE, ALICE, BOB, BOB]) {
        const l = await loginAs(srv, who.email);
        const c = await WsClient.connect(srv, { cookie: l.cookie, label: `${who.email}#${conns.length}` });
        c.cid = newClientId('stall');
        c.seq = 0;
        c.acked = [];
        conns.push(c);
    }
    for (const c of conns) await c.roundTrip();

    const stall = (ms) =>
        guard(() => srv, async (st) => {
            writeFileSync(`${ctl}.tmp`, String(ms));
            renameSync(`${ctl}.tmp`, ctl);
            // A command to commit: its fsync is the one that stalls.
            const [first] = conns;
            first.cmd(first.cid, ++first.seq, 'visit-page', { url: `/stall/${ms}/trigger` });
            for (const c of conns) c.pending = [];
            const ack = (c, seq) => {
                c.acked.push(seq);
                c.pending.push(seq);
            };
            ack(first, first.seq);
            await until(() => existsSync(`${ctl}.on`), 30_000, 'the stall to begin', 2);
            const began = performance.now();

            // Pings, a query and a new WebSocket on an open session, all at once; and, in
            // the long stall, a login (it costs a password hash, argon2id, 0.2 to 1.3 s on
            // a loaded machine, but waits for no commit) and a WebSocket on its cookie.
            const quick = await Promise.all([
                ...conns.slice(1).map((c) => timed(() => c.roundTrip())),
                timed(() => queryOk(srv, bobLogin.cookie, 'list-users')),
                timed(async () => {
                    const c = await WsClient.connect(srv, { cookie: bobLogin.cookie, label: 'open-session' });
                    await c.roundTrip();
                    await c.close();
                }),
            ]);
            let fresh = null;
            let loginMs = 0;
            if (ms >= 5000) {
                const l = await timed(() => loginAs(srv, ALICE.email, { committed: false }));
                loginMs = l.ms;
                const ws = await timed(async () => {
                    const c = await WsClient.connect(srv, { cookie: l.value.cookie, label: 'fresh' });
                    await c.roundTrip();
                    return c;
                });
                quick.push(ws);
                fresh = ws.value;
            }
            const during = existsSync(`${ctl}.on`);
            st.diagnostic(
                `stall ${ms} ms: pings/query/ws answered in ${quick.map((p) => p.ms.toFixed(1)).join(', ')} ms, ` +
                    `${fresh ? `login in ${loginMs.toFixed(1)} ms` : 'no login'} (still stalled: ${during}, ${(performance.now() - began).toFixed(0)} ms in)`,
            );
            const slowest = Math.max(...quick.map((p) => p.ms));
            assert.ok(during, `the probes outlasted the ${ms} ms stall: they prove nothing`);
            assert.ok(slowest < FAST_MS, `an answer took ${slowest.toFixed(1)} ms during the stall`);

            // Every connection has commands pending across the stall.
            for (const c of conns) {
                for (let i = 0; i < 2; i++) c.cmd(c.cid, ++c.seq, 'visit-page', { url: `/stall/${ms}/${c.label}/${c.seq}` });
            }
            for (const c of conns) {
                for (let s = c.seq - 1; s <= c.seq; s++) {
                    const r = await c.reply(c.cid, s);
                    assert.equal(r[0], 'cmd-ack', JSON.stringify(r));
                    ack(c, s);
                }
            }
            // /health says so (after CW_STALL_US, 250 ms, of one commit), while it lasts.
            let h;
            await until(async () => (h = await health(srv)).store === 'stalled' || !existsSync(`${ctl}.on`), 30_000, '/health to say stalled');
            if (ms >= 5000 || h.store === 'stalled') {
                assert.equal(h.store, 'stalled', JSON.stringify(h));
                assert.equal(h.status, 'degraded', JSON.stringify(h));
            }

            if (ms >= 5000) {
                // Acks until the queue's bound, then overloaded; nothing past it was queued.
                const [c] = conns;
                const N = QUEUE + 16;
                const from = c.seq + 1;
                for (let i = 0; i < N; i++) c.cmd(c.cid, ++c.seq, 'visit-page', { url: `/stall/flood/${i}` });
                let overloaded = 0;
                for (let s = from; s <= c.seq; s++) {
                    const r = await c.reply(c.cid, s);
                    if (r[0] === 'cmd-ack') ack(c, s);
                    else {
                        assert.equal(r[3].code, 'overloaded', JSON.stringify(r));
                        overloaded += 1;
                    }
                }
                assert.ok(existsSync(`${ctl}.on`), 'the flood outlasted the stall');
                const acked = N - overloaded;
                st.diagnostic(`flood of ${N} during the stall: ${acked} acked, ${overloaded} overloaded`);
                assert.ok(overloaded > 0, 'past the queue bound commands are refused');
                assert.ok(acked <= QUEUE, `${acked} acked: more than the queue holds`);
                // A query's answer wakes the gateway, which then looks at the queue's length:
                // a full queue on a stuck store must not stop it reading (pings would go unanswered).
                const q = await timed(() => queryOk(srv, bobLogin.cookie, 'list-users'));
                const ping = await timed(() => conns[1].roundTrip());
                st.diagnostic(`queue full: query ${q.ms.toFixed(1)} ms, then ping ${ping.ms.toFixed(1)} ms`);
                assert.ok(q.ms < FAST_MS && ping.ms < FAST_MS, `with the queue full a query took ${q.ms.toFixed(1)} ms, a ping ${ping.ms.toFixed(1)} ms`);
            }

            await until(() => !existsSync(`${ctl}.on`), 60_000, 'the stall to end');
            // Everything pending commits and is answered once, on connections still open.
            for (const c of fresh ? [...conns, fresh] : conns) {
                for (const s of c.pending || []) await c.outcome(c.cid, s, 60_000);
                await c.roundTrip();
                assert.ok(c.isOpen, `${c.label} still open`);
            }
            for (const c of conns) {
                const updates = c.all((m) => m[0] === 'update' && m[1] === c.cid).map((m) => m[2]);
                assert.deepEqual([...updates].sort((a, b) => a - b), [...c.acked].sort((a, b) => a - b), `${c.label}: each acked command answered once`);
                assert.equal(c.all((m) => m[0] === 'rejected').length, 0);
            }
            await until(async () => (await health(srv)).store === 'ok', 30_000, '/health back to ok');
            if (fresh) await fresh.close();
        });

    await t.test('a 1 s stall', stall(1000));
    await t.test('a 5 s stall', stall(5000));
    for (const c of conns) assert.equal(c.closeInfo, null, `${c.label} was not dropped`);
    for (const c of conns) await c.close();
});

test('a login is answered before its session commits; a logout after', { skip: ON_PG }, async (t) => {
    const ctlDir = mkdtempSync(join(tmpdir(), 'cw-stall-'));
    const ctl = join(ctlDir, 'stall');
    const asan = process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : '';
    const srv = await startServer({
        users: [ALICE],
        env: { LD_PRELOAD: SHIM, CW_STALL_FILE: ctl, ASAN_OPTIONS: `${asan}verify_asan_link_order=0` },
    });
    t.after(async () => {
        await srv.stop();
        rmSync(ctlDir, { recursive: true, force: true });
    });
    await guard(() => srv, async () => {
        const before = await loginAs(srv, ALICE.email);
        // The login's own commit stalls until the test lets it go: whatever the
        // machine's load, a login that waited for its commit could not answer.
        writeFileSync(`${ctl}.tmp`, 'hold');
        renameSync(`${ctl}.tmp`, ctl);
        const release = () => rmSync(`${ctl}.on`, { force: true });
        t.after(release);
        const logging = timed(() => login(srv, ALICE.email, ALICE.password, { committed: false }));
        await until(() => existsSync(`${ctl}.on`), 30_000, 'the stall to begin', 2);
        const l = await Promise.race([logging, new Promise((r) => setTimeout(r, 60_000, null))]);
        assert.ok(l, 'the login answered within 60 s while its commit was held');
        // The session works at once: its commands queue behind its start.
        const ws = await WsClient.connect(srv, { cookie: l.value.cookie });
        const cid = newClientId('login');
        ws.cmd(cid, 1, 'visit-page', { url: '/after-login' });
        assert.equal((await ws.reply(cid, 1))[0], 'cmd-ack');
        // A logout waits for its commit: still waiting while the disk is held.
        let answered = false;
        const out = timed(() => request(srv, 'POST', '/logout', { cookie: before.cookie, body: '' }));
        out.then(() => (answered = true));
        await new Promise((r) => setTimeout(r, 500));
        t.diagnostic(`login answered in ${l.ms.toFixed(1)} ms, with its commit held`);
        assert.ok(existsSync(`${ctl}.on`), 'the commit was still held when the login and the WebSocket answered');
        assert.equal(answered, false, 'a logout is answered only once committed');
        release();
        const done = await out;
        assert.equal(done.value.status, 303);
        assert.equal((await ws.outcome(cid, 1, 60_000))[0], 'update');
        await ws.close();
    })(t);
});
