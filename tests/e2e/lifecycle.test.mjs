// lifecycle.test.mjs - the server's life: SIGTERM drains the command queue,
// delivers the last outcomes, closes WebSockets with 1001 and exits 0; a
// restart keeps the log and carries on from the next position.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, guard, exportEvents } from './lib/server.mjs';
import { loginAs, WsClient, newClientId } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };

test('SIGTERM drains: every acked command is processed and delivered, sockets close 1001, exit 0', async (t) => {
    let srv = await startServer({ users: [ALICE] });
    const dataDir = srv.dataDir;
    const servers = [srv];
    try {
        await guard(() => servers, async () => {
            const ws = await WsClient.connect(srv, { cookie: (await loginAs(srv, ALICE.email)).cookie });
            const cid = newClientId();
            const N = 500;
            for (let s = 0; s < N; s++) ws.cmd(cid, s, 'add-to-cart', { sku: 'drain', quantity: 1 });
            // Registrations hash a password first (slow on purpose): some are surely still
            // in flight when the signal comes.
            const REG = 4;
            for (let i = 0; i < REG; i++) {
                ws.cmd(cid, N + i, 'register-user', { email: `drain${i}@example.org`, first_name: 'D', last_name: 'R', password: 'drain-password' });
            }
            const acked = [];
            for (let s = 0; s < N + REG; s++) {
                const r = await ws.reply(cid, s);
                assert.equal(r[0], 'cmd-ack', JSON.stringify(r));
                acked.push(s);
            }
            // Stop right after the last ack, with commands still queued or in flight.
            const exit = srv.stop({ keepData: true });
            const close = await ws.waitClose(30_000);
            assert.equal(close.code, 1001, `going away, got ${close.code} ${close.reason}`);
            const got = new Set(ws.all((m) => m[0] === 'update' && m[1] === cid).map((m) => m[2]));
            for (const s of acked) assert.ok(got.has(s), `update for acked command ${s} delivered before the close`);
            const result = await exit;
            assert.equal(result.code, 0, `exit code ${result.code} (signal ${result.signal})`);

            const events = exportEvents(dataDir);
            assert.equal(events.filter((e) => e.client_id === cid && e.name === 'item-added-to-cart').length, N, 'all acked cart commands are in the log, once');
            assert.equal(events.filter((e) => e.client_id === cid && e.name === 'user-registered').length, REG, 'all acked registrations are in the log');
            const last = Math.max(...events.map((e) => e.position));

            // A restart continues the log.
            srv = await startServer({ dataDir, knownUsers: [srv.user(ALICE.email)] });
            servers.push(srv);
            const ws2 = await WsClient.connect(srv, { cookie: (await loginAs(srv, ALICE.email)).cookie });
            const { event } = await ws2.run(cid, N + REG, 'visit-page', { url: 'https://example.org/after-restart' });
            assert.ok(event.position > last, `position ${event.position} follows ${last}`);
            // Idempotency survives the restart.
            ws2.cmd(cid, 0, 'add-to-cart', { sku: 'drain', quantity: 1 });
            const dup = await ws2.reply(cid, 0);
            assert.equal(dup[3].duplicate, true, JSON.stringify(dup));
            ws2.terminate();
            const r2 = await srv.stop({ keepData: true });
            assert.equal(r2.code, 0);
        })(t);
    } finally {
        await srv.stop({ keepData: true });
        if (process.env.CW_TEST_KEEP !== '1' || !servers.some((s) => s.failed)) {
            rmSync(dataDir, { recursive: true, force: true });
            rmSync(srv.logPath, { force: true });
        }
    }
});
