// ws.test.mjs - the WebSocket messages of PROTOCOL.md: every message type,
// every error code, the EVENT shape, rejections, idempotent resends, resume
// after a reconnect, and audience routing.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, guard } from './lib/server.mjs';
import { loginAs, login, queryOk, request, WsClient, newClientId, bytes } from './lib/client.mjs';
import { assertEvent, assertUuid, assertWsError, fieldReason, detailFields, cartOf } from './lib/expect.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'Builder' };

let srv;
let aliceCookie;
let bobCookie;
before(async () => {
    srv = await startServer({ users: [ALICE, BOB] });
    aliceCookie = (await loginAs(srv, ALICE.email)).cookie;
    bobCookie = (await loginAs(srv, BOB.email)).cookie;
});
after(() => srv?.stop());

const it = (name, fn) => test(name, guard(() => srv, fn));

/** Opens connections, runs fn, closes them whatever happens. */
async function withConns(specs, fn) {
    const conns = [];
    try {
        for (const s of specs) conns.push(await WsClient.connect(srv, { cookie: s, label: s === aliceCookie ? 'alice' : s === bobCookie ? 'bob' : 'conn' }));
        return await fn(...conns);
    } finally {
        for (const c of conns) c.terminate();
    }
}

/**
 * A page view from `sender`; waits until every receiver got it. Updates
 * reach each connection in position order, so anything a receiver was to
 * get before this position has arrived by then. Returns the position.
 */
async function barrier(sender, receivers) {
    const cid = newClientId('barrier');
    const url = `https://example.org/barrier/${cid}`;
    const { event } = await sender.run(cid, 0, 'visit-page', { url });
    for (const r of receivers) {
        if (r === sender) continue; // run() already took it there
        await r.next((m) => m[0] === 'update' && m[3].name === 'page-view' && m[3].data.url === url, undefined, `barrier ${url}`);
    }
    return event.position;
}

/** Positions of every update a connection received so far. */
function positions(conn) {
    return conn.all((m) => m[0] === 'update').map((m) => m[3].position);
}

// ------------------------------------------------------------- ping/pong

it('ping is answered with pong carrying the same JSON value', async () => {
    await withConns([aliceCookie], async (ws) => {
        const values = [
            null,
            0,
            -17,
            3.25,
            9007199254740991,
            true,
            false,
            '',
            'hello',
            'ünïcødé ✓ 😀 "quoted" \\ back \t\n',
            [],
            [1, 'two', [3, [4]], { five: 5 }],
            {},
            { nested: { deeply: { a: [null, true, { b: 'c' }] } }, 'key with spaces': 1 },
            bytes(20_000),
        ];
        for (const v of values) {
            ws.send(['ping', v]);
            const pong = await ws.nextOf('pong');
            assert.equal(pong.length, 2, `pong has two elements: ${JSON.stringify(pong).slice(0, 200)}`);
            assert.deepEqual(pong[1], v, `pong echoes ${JSON.stringify(v).slice(0, 80)}`);
        }
    });
});

it('ping echoes a string holding an escaped NUL character (\\u0000 is valid JSON)', async () => {
    await withConns([aliceCookie], async (ws) => {
        const v = 'before\u0000after';
        ws.send(['ping', v]);
        const reply = await ws.next((m) => m[0] === 'pong' || m[0] === 'error');
        assert.deepEqual(reply, ['pong', v], `got ${JSON.stringify(reply)}`);
    });
});

// ------------------------------------------------------------- malformed

it('unreadable messages answer ["error", null, null, {code: "malformed"}] and the connection stays open', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cases = [
            'not json at all',
            '',
            '[',
            '["ping", 1',
            '{}',
            '{"type":"ping"}',
            '"a string"',
            '42',
            'null',
            'true',
            '[]',
            '[1, 2, 3]',
            '[null]',
            '[{"name":"visit-page"}]',
            '["no-such-type", 1]',
            '["CMD", "c", 1, {"name":"visit-page","data":{"url":"x"}}]',
            '["cmd"]',
            '["cmd", {"name":"visit-page"}]',
            '["resume"]',
            '["resume", "7"]',
            '["resume", -1]',
            '["resume", 1.5]',
            '["resume", null]',
            '["pong", 1]',
            '["update", "c", 1, {}]',
            '[1, "ping"]',
        ];
        for (const text of cases) {
            ws.send(text);
            const err = await ws.next((m) => m[0] === 'error', undefined, `error for ${text}`);
            assertWsError(err, null, null, 'malformed');
            assert.ok(ws.isOpen, `still open after ${text}`);
        }
        const pong = await ws.roundTrip();
        assert.equal(pong[0], 'pong');
        // Nothing but the errors and the pong came back.
        assert.equal(ws.log.length, cases.length + 1, `one answer per message: ${JSON.stringify(ws.log.slice(-3))}`);
    });
});

it('a command with readable ids but wrong element types is malformed, with those ids', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const cases = [
            [1, ['cmd', cid, 1, 'not an object']],
            [2, ['cmd', cid, 2, null]],
            [3, ['cmd', cid, 3, ['visit-page', { url: 'x' }]]],
            [4, ['cmd', cid, 4, { name: 5, data: {} }]],
            [5, ['cmd', cid, 5, { data: { url: 'x' } }]],
            [6, ['cmd', cid, 6, { name: 'visit-page', data: 'url=x' }]],
            [7, ['cmd', cid, 7, { name: 'visit-page', data: ['x'] }]],
            [8, ['cmd', cid, 8, { name: 'visit-page', data: { url: 'x' }, meta: 'not an object' }]],
            [9, ['cmd', cid, 9, { name: 'visit-page', data: { url: 'x' }, meta: [1] }]],
        ];
        for (const [seq, msg] of cases) {
            ws.send(msg);
            const err = await ws.reply(cid, seq);
            assertWsError(err, cid, seq, 'malformed');
        }
        // data omitted: it is required; malformed or a validation failure both say so.
        ws.send(['cmd', cid, 10, { name: 'visit-page' }]);
        const err = await ws.reply(cid, 10);
        assert.equal(err[0], 'error');
        assert.ok(['malformed', 'command-validation-failed'].includes(err[3].code), JSON.stringify(err));
        // None of them was queued: a later command of the same client is the first outcome.
        const r = await ws.run(cid, 11, 'visit-page', { url: 'https://example.org/after-malformed' });
        assert.equal(r.event.client_seq, 11);
        assert.equal(ws.all((m) => m[0] === 'update' || m[0] === 'rejected' || m[0] === 'cmd-ack').length, 2);
    });
});

it('invalid client ids and sequence numbers are malformed and never queued', async () => {
    await withConns([aliceCookie], async (ws) => {
        const data = { name: 'visit-page', data: { url: 'https://example.org/bad-ids' } };
        const good = newClientId();
        const cases = [
            ['', 1],
            [bytes(129), 1],
            [`${bytes(127)}é`, 1], // 129 bytes in UTF-8
            [5, 1],
            [null, 1],
            [{}, 1],
            [good, -1],
            [good, 1.5],
            [good, 2 ** 53],
            [good, '1'],
            [good, null],
            [good, true],
        ];
        for (const [cid, seq] of cases) {
            ws.send(['cmd', cid, seq, data]);
            const err = await ws.next((m) => m[0] === 'error', undefined, `error for ${JSON.stringify([cid, seq]).slice(0, 60)}`);
            assert.equal(err[3].code, 'malformed', `${JSON.stringify([cid, seq]).slice(0, 60)}: ${JSON.stringify(err).slice(0, 200)}`);
            // An id that cannot be read is null; one that can may be echoed.
            assert.ok(err[1] === null || err[1] === cid, `client id is null or the one sent: ${JSON.stringify(err).slice(0, 200)}`);
            assert.ok(err[2] === null || err[2] === seq, `seq is null or the one sent: ${JSON.stringify(err).slice(0, 200)}`);
        }
        // The limits themselves are accepted: 128 bytes, seq 0 and 2^53 - 1.
        const long = bytes(128, 'k');
        const a = await ws.run(long, 0, 'visit-page', { url: 'https://example.org/long-id' });
        assert.equal(a.event.client_id, long);
        assert.equal(a.event.client_seq, 0);
        const b = await ws.run(good, 2 ** 53 - 1, 'visit-page', { url: 'https://example.org/max-seq' });
        assert.equal(b.update[2], 2 ** 53 - 1);
        assert.equal(b.event.client_seq, 2 ** 53 - 1);
        // Nothing of the refused ones reached the log.
        const events = await queryOk(srv, aliceCookie, 'events', { name: 'page-view', limit: 1000 });
        assert.equal(events.filter((e) => e.data.url === 'https://example.org/bad-ids').length, 0);
    });
});

// --------------------------------------------------------- unknown-command

it('an undefined command answers unknown-command and is never queued', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const names = ['no-such-command', 'Visit-Page', 'visit_page', '', 'start-session', 'end-session'];
        for (let i = 0; i < names.length; i++) {
            ws.cmd(cid, i + 1, names[i], { url: 'x', session_uuid: '0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b', user_uuid: '0190f6d2-8c1e-7a3b-9f00-1c2d3e4f5a6b' });
            const err = await ws.reply(cid, i + 1);
            const body = assertWsError(err, cid, i + 1);
            if (names[i] === '') assert.ok(['unknown-command', 'malformed'].includes(body.code), JSON.stringify(err));
            else assert.equal(body.code, 'unknown-command', `${names[i]}: ${JSON.stringify(err)}`);
        }
        await ws.run(cid, 100, 'visit-page', { url: 'https://example.org/after-unknown' });
        assert.equal(ws.all((m) => m[0] === 'update' || m[0] === 'rejected').length, 1, 'only the valid command had an outcome');
    });
});

// ---------------------------------------------- command-validation-failed

it('command-validation-failed names each failing field and why', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const cases = [
            ['visit-page', {}, ['url']],
            ['visit-page', { url: 5 }, ['url']],
            ['visit-page', { url: null }, ['url']],
            ['visit-page', { url: bytes(2049) }, ['url']],
            ['add-to-cart', { sku: 'a', quantity: 0 }, ['quantity']],
            ['add-to-cart', { sku: 'a', quantity: 1001 }, ['quantity']],
            ['add-to-cart', { sku: 'a', quantity: '1' }, ['quantity']],
            ['add-to-cart', { sku: 'a', quantity: 1.5 }, ['quantity']],
            ['add-to-cart', { sku: 7, quantity: 1 }, ['sku']],
            ['add-to-cart', {}, ['quantity', 'sku']],
            ['remove-from-cart', { sku: 'a', quantity: -1 }, ['quantity']],
            ['register-user', { email: 'no-at-sign', first_name: 'A', last_name: 'B', password: 'long-enough' }, ['email']],
            ['register-user', { email: 'a@b@example.org', first_name: 'A', last_name: 'B', password: 'long-enough' }, ['email']],
            ['register-user', { email: '@example.org', first_name: 'A', last_name: 'B', password: 'long-enough' }, ['email']],
            ['register-user', { email: 'user@localhost', first_name: 'A', last_name: 'B', password: 'long-enough' }, ['email']],
            ['register-user', { email: `${bytes(250)}@x.org`, first_name: 'A', last_name: 'B', password: 'long-enough' }, ['email']],
            ['register-user', { email: 'ok@example.org', first_name: 'A', last_name: 'B', password: 'seven77' }, ['password']],
            ['register-user', { email: 'ok@example.org', first_name: 'A', last_name: 'B', password: bytes(1025) }, ['password']],
            ['register-user', { email: 'ok@example.org', first_name: '', last_name: 'B', password: 'long-enough' }, ['first_name']],
            ['register-user', { email: 'ok@example.org', first_name: 'A', last_name: bytes(101), password: 'long-enough' }, ['last_name']],
            ['register-user', {}, ['email', 'first_name', 'last_name', 'password']],
        ];
        let seq = 0;
        for (const [name, data, fields] of cases) {
            seq += 1;
            ws.cmd(cid, seq, name, data);
            const err = await ws.reply(cid, seq);
            const what = `${name} ${JSON.stringify(data).slice(0, 80)}`;
            const body = assertWsError(err, cid, seq, 'command-validation-failed');
            assert.ok(body.details !== undefined && body.details !== null, `${what}: details present`);
            for (const f of fields) fieldReason(body.details, f);
            assert.deepEqual(detailFields(body.details), [...fields].sort(), `${what}: exactly the failing fields`);
        }
        // At the limits the same commands pass, and unknown data keys are ignored.
        await ws.run(cid, ++seq, 'visit-page', { url: bytes(2048), ignored: { any: 'thing' } });
        await ws.run(cid, ++seq, 'add-to-cart', { sku: 'limit', quantity: 1000 });
        await ws.run(cid, ++seq, 'add-to-cart', { sku: 'limit', quantity: 1 });
        assert.equal(ws.all((m) => m[0] === 'update').length, 3, 'only the valid commands produced events');
    });
});

// ---------------------------------------------------------------- too-large

it('a message over the soft limit (64 KiB) answers too-large and the connection stays open', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        ws.cmd(cid, 1, 'visit-page', { url: bytes(70 * 1024) });
        const err = await ws.next((m) => m[0] === 'error');
        assert.equal(err[3].code, 'too-large', JSON.stringify(err).slice(0, 300));
        assert.equal(typeof err[3].message, 'string');
        assert.ok(ws.isOpen, 'connection stays open');
        ws.send(['ping', bytes(100 * 1024)]);
        const err2 = await ws.next((m) => m[0] === 'error');
        assert.equal(err2[3].code, 'too-large');
        // Just under the limit is fine.
        const under = bytes(60 * 1024);
        ws.send(['ping', under]);
        const pong = await ws.nextOf('pong');
        assert.equal(pong[1], under);
        // And the connection still runs commands; the refused one never ran.
        await ws.run(cid, 2, 'visit-page', { url: 'https://example.org/after-too-large' });
        assert.equal(ws.all((m) => m[0] === 'update').length, 1);
        assert.equal(ws.all((m) => m[0] === 'cmd-ack' && m[2] === 1).length, 0, 'the oversized command was not acked');
    });
});

// ------------------------------------------------------ cmd-ack and update

it('cmd-ack then update carrying an EVENT with every key of PROTOCOL.md', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const meta = { trace_id: 'abc-123', nested: { n: 1 } };
        const url = 'https://example.org/event-shape';
        ws.cmd(cid, 1, 'visit-page', { url }, meta);
        const ack = await ws.reply(cid, 1);
        assert.equal(ack[0], 'cmd-ack', JSON.stringify(ack));
        assert.equal(ack.length, 4);
        assert.deepEqual(Object.keys(ack[3]).sort(), ['command_uuid', 'duplicate']);
        assertUuid(ack[3].command_uuid, 'command_uuid');
        assert.equal(ack[3].duplicate, false);
        const up = await ws.outcome(cid, 1);
        assert.equal(up[0], 'update');
        assert.equal(up.length, 4);
        assert.equal(up[1], cid);
        assert.equal(up[2], 1);
        assertEvent(up[3], {
            name: 'page-view',
            command_uuid: ack[3].command_uuid,
            data: { url },
            meta,
            user_uuid: srv.user(ALICE.email).user_uuid,
            client_id: cid,
            client_seq: 1,
            version: 1,
        });
        assert.ok(ws.log.indexOf(ack) < ws.log.indexOf(up), 'the ack comes before the update');
        assert.notEqual(up[3].uuid, up[3].command_uuid, 'the event has its own uuid');

        // Without meta the event's meta is an empty object; positions grow.
        const second = await ws.run(cid, 2, 'visit-page', { url });
        assert.deepEqual(second.event.meta, {});
        assert.ok(second.event.position > up[3].position, 'positions strictly increase');
        assert.notEqual(second.ack[3].command_uuid, ack[3].command_uuid);
        assert.notEqual(second.event.uuid, up[3].uuid);

        // The same event, as the events query returns it.
        const listed = await queryOk(srv, aliceCookie, 'events', { after_position: up[3].position - 1, before_position: up[3].position + 1 });
        assert.deepEqual(listed, [up[3]], 'the update is the logged event');
    });
});

// With Nagle's algorithm on the server's socket, an update written while its
// ack is still unacknowledged by the client's TCP waits for the client's
// delayed ACK (40 ms or more on Linux) or its next message: an interactive
// user saw every update 40 ms late. The first few segments of a connection are
// acknowledged at once (quick-ack), so warm the connection up first; then the
// quickest of several gaps between ack and update tells.
it('an update follows its ack without waiting for the client to send (no Nagle delay)', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId('nodelay');
        const seen = new Map();
        ws.onMessage = (m) => {
            if ((m[0] === 'cmd-ack' || m[0] === 'update') && m[1] === cid) seen.set(`${m[0]} ${m[2]}`, performance.now());
        };
        let seq = 0;
        for (let i = 0; i < 20; i++) await ws.run(cid, ++seq, 'visit-page', { url: 'https://example.org/warm-up' });
        const gaps = [];
        for (let i = 0; i < 10; i++) {
            await ws.run(cid, ++seq, 'visit-page', { url: 'https://example.org/nodelay' });
            gaps.push(seen.get(`update ${seq}`) - seen.get(`cmd-ack ${seq}`));
        }
        const quickest = Math.min(...gaps);
        assert.ok(quickest < 20, `quickest ack-to-update gap ${quickest.toFixed(1)} ms (all: ${gaps.map((g) => g.toFixed(1)).join(', ')})`);
    });
});

it('register-user: update user-registered without the password, and the new user can log in', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const password = 'erin-password-5';
        const { ack, event } = await ws.run(cid, 1, 'register-user', {
            email: '  Erin.Brockovich@Example.ORG ',
            first_name: 'Erin',
            last_name: 'Brockovich',
            password,
        });
        assertEvent(event, { name: 'user-registered', command_uuid: ack[3].command_uuid });
        assert.deepEqual(Object.keys(event.data).sort(), ['email', 'first_name', 'last_name', 'user_uuid']);
        assert.equal(event.data.email, 'erin.brockovich@example.org', 'email trimmed and lower-cased');
        assert.equal(event.data.first_name, 'Erin');
        assert.equal(event.data.last_name, 'Brockovich');
        assertUuid(event.data.user_uuid, 'data.user_uuid');
        assert.ok(!JSON.stringify(event).includes(password), 'no password in the update');
        const l = await login(srv, 'erin.brockovich@example.org', password);
        assert.equal(l.user_uuid, event.data.user_uuid, 'the registered user logs in');
    });
});

// ---------------------------------------------------------------- rejected

it('register-user with a taken email is acked, then rejected with email-taken and no event', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        ws.cmd(cid, 1, 'register-user', { email: ` ${BOB.email.toUpperCase()} `, first_name: 'Other', last_name: 'Bob', password: 'another-password' });
        const ack = await ws.reply(cid, 1);
        assert.equal(ack[0], 'cmd-ack', JSON.stringify(ack));
        assert.equal(ack[3].duplicate, false);
        const rej = await ws.outcome(cid, 1);
        assert.equal(rej[0], 'rejected', JSON.stringify(rej));
        assert.equal(rej.length, 4);
        assert.equal(rej[1], cid);
        assert.equal(rej[2], 1);
        assert.equal(rej[3].command_uuid, ack[3].command_uuid);
        assert.equal(rej[3].code, 'email-taken');
        assert.equal(typeof rej[3].message, 'string');
        await ws.run(cid, 2, 'visit-page', { url: 'https://example.org/after-rejected' });
        assert.equal(ws.all((m) => m[0] === 'update' && m[2] === 1).length, 0, 'no update for a rejected command');
        const users = await queryOk(srv, aliceCookie, 'list-users');
        assert.equal(users.filter((u) => u.email === BOB.email).length, 1);
    });
});

it('remove-from-cart of what is not in the cart is rejected with not-in-cart', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const sku = `sku-${cid}`;
        ws.cmd(cid, 1, 'remove-from-cart', { sku, quantity: 1 });
        assert.equal((await ws.reply(cid, 1))[0], 'cmd-ack');
        const rej = await ws.outcome(cid, 1);
        assert.equal(rej[0], 'rejected');
        assert.equal(rej[3].code, 'not-in-cart');
        // Holding 2, removing 3 is refused too; removing 2 works.
        await ws.run(cid, 2, 'add-to-cart', { sku, quantity: 2 });
        ws.cmd(cid, 3, 'remove-from-cart', { sku, quantity: 3 });
        assert.equal((await ws.reply(cid, 3))[0], 'cmd-ack');
        const rej2 = await ws.outcome(cid, 3);
        assert.equal(rej2[0], 'rejected', JSON.stringify(rej2));
        assert.equal(rej2[3].code, 'not-in-cart');
        const { event } = await ws.run(cid, 4, 'remove-from-cart', { sku, quantity: 2 });
        assertEvent(event, { name: 'item-removed-from-cart', data: { sku, quantity: 2 } });
        const cart = cartOf(await queryOk(srv, aliceCookie, 'get-cart', {}));
        assert.ok(!cart[sku], `the sku is gone from the cart: ${JSON.stringify(cart)}`);
    });
});

// ------------------------------------------------------------- idempotency

it('resending the same (client id, seq) answers duplicate with the original command_uuid and the same update', async () => {
    await withConns([aliceCookie], async (ws) => {
        const cid = newClientId();
        const url = 'https://example.org/idempotent';
        const first = await ws.run(cid, 1, 'visit-page', { url });
        // Same triple, even with other data: never run twice.
        for (const data of [{ url }, { url: 'https://example.org/something-else' }]) {
            ws.cmd(cid, 1, 'visit-page', data);
            const ack = await ws.reply(cid, 1);
            assert.equal(ack[0], 'cmd-ack');
            assert.deepEqual(ack[3], { command_uuid: first.ack[3].command_uuid, duplicate: true });
            const again = await ws.outcome(cid, 1);
            assert.equal(again[0], 'update');
            assert.deepEqual(again[3], first.event, 'the same event, same position');
        }
        const events = await queryOk(srv, aliceCookie, 'events', { name: 'page-view', limit: 1000 });
        assert.equal(events.filter((e) => e.command_uuid === first.ack[3].command_uuid).length, 1, 'one event in the log');
    });
});

it('a duplicate is recognised after a reconnect, for updates and for rejections alike', async () => {
    const cid = newClientId();
    const sku = `dup-${cid}`;
    const first = await withConns([aliceCookie], async (ws) => {
        const up = await ws.run(cid, 1, 'add-to-cart', { sku, quantity: 3 });
        ws.cmd(cid, 2, 'remove-from-cart', { sku: `${sku}-absent`, quantity: 1 });
        const ack2 = await ws.reply(cid, 2);
        const rej = await ws.outcome(cid, 2);
        assert.equal(rej[0], 'rejected');
        return { up, ack2, rej };
    });
    // A new connection on a new session of the same user.
    const cookie = (await loginAs(srv, ALICE.email)).cookie;
    await withConns([cookie], async (ws) => {
        ws.cmd(cid, 1, 'add-to-cart', { sku, quantity: 3 });
        const ack = await ws.reply(cid, 1);
        assert.deepEqual(ack[3], { command_uuid: first.up.ack[3].command_uuid, duplicate: true });
        const up = await ws.outcome(cid, 1);
        assert.equal(up[0], 'update');
        assert.deepEqual(up[3], first.up.event);

        ws.cmd(cid, 2, 'remove-from-cart', { sku: `${sku}-absent`, quantity: 1 });
        const ack2 = await ws.reply(cid, 2);
        assert.deepEqual(ack2[3], { command_uuid: first.ack2[3].command_uuid, duplicate: true });
        const rej = await ws.outcome(cid, 2);
        assert.deepEqual(rej, first.rej, 'the same rejection again');
    });
    const cart = cartOf(await queryOk(srv, cookie, 'get-cart', {}));
    assert.equal(cart[sku], 3, 'added once, not twice');
});

async function preparedCount() {
    const text = (await request(srv, 'GET', '/metrics')).text;
    const m = text.match(/^calderwood_commands_prepared_total (\d+)$/m);
    assert.ok(m, 'calderwood_commands_prepared_total in /metrics');
    return Number(m[1]);
}

it('a resend of a command the log has is answered from the log, without running its prepare again', async () => {
    const cid = newClientId();
    const user = { email: `resent-${cid}@example.org`, first_name: 'Re', last_name: 'Sent', password: 'resent-password-1' };
    const before = await preparedCount();
    const first = await withConns([aliceCookie], (ws) => ws.run(cid, 1, 'register-user', user));
    assert.equal(await preparedCount(), before + 1, 'the first send is prepared (its password hashed) once');
    // After a reconnect nothing is in flight: the resends are found in the log.
    const cookie = (await loginAs(srv, ALICE.email)).cookie;
    await withConns([cookie], async (ws) => {
        for (let i = 0; i < 3; i++) {
            ws.cmd(cid, 1, 'register-user', user);
            const ack = await ws.reply(cid, 1);
            assert.deepEqual(ack[3], { command_uuid: first.ack[3].command_uuid, duplicate: true });
            const up = await ws.outcome(cid, 1);
            assert.equal(up[0], 'update');
            assert.deepEqual(up[3], first.event, 'the same event again');
        }
    });
    assert.equal(await preparedCount(), before + 1, 'no resend was prepared again');
});

it('the idempotency key includes the user: another user may use the same client id and seq', async () => {
    const cid = newClientId();
    const a = await withConns([aliceCookie], (ws) => ws.run(cid, 1, 'visit-page', { url: 'https://example.org/alice-key' }));
    const b = await withConns([bobCookie], async (ws) => {
        ws.cmd(cid, 1, 'visit-page', { url: 'https://example.org/bob-key' });
        const ack = await ws.reply(cid, 1);
        assert.equal(ack[3].duplicate, false, JSON.stringify(ack));
        const up = await ws.outcome(cid, 1);
        return { ack, event: up[3] };
    });
    assert.notEqual(b.ack[3].command_uuid, a.ack[3].command_uuid);
    assert.equal(b.event.data.url, 'https://example.org/bob-key');
    assert.equal(b.event.user_uuid, srv.user(BOB.email).user_uuid);
});

// ------------------------------------------------------------------ resume

/**
 * Alice sees a page view (p0) and goes away; while she is away Bob makes
 * page views (she may see them), she adds to her cart from another
 * connection (she may see it), Bob fills his cart (she may not). She
 * reconnects and resumes from p0 while Bob streams page views. With
 * liveFirst, Bob's live views already reach her new connection before she
 * sends resume; otherwise she sends resume first.
 */
async function resumeScenario({ liveFirst }) {
    const aliceCid = newClientId('alice');
    const bobCid = newClientId('bob');
    const p0 = await withConns([aliceCookie], async (ws) => (await ws.run(aliceCid, 1, 'visit-page', { url: 'https://example.org/before' })).event.position);

    await withConns([bobCookie, aliceCookie], async (bob, alice2) => {
        for (let i = 1; i <= 5; i++) await bob.run(bobCid, i, 'visit-page', { url: `https://example.org/missed/${i}` });
        const otherCid = newClientId('alice-other');
        await alice2.run(otherCid, 1, 'add-to-cart', { sku: 'missed', quantity: 1 });
        await alice2.run(otherCid, 2, 'add-to-cart', { sku: 'missed', quantity: 2 });
        await bob.run(bobCid, 6, 'add-to-cart', { sku: 'bob-only', quantity: 1 });
        await bob.run(bobCid, 7, 'add-to-cart', { sku: 'bob-only', quantity: 1 });

        const ws = await WsClient.connect(srv, { cookie: aliceCookie, label: 'alice-resumed' });
        try {
            const LIVE = 150;
            const stream = () => {
                for (let i = 0; i < LIVE; i++) bob.cmd(bobCid, 100 + i, 'visit-page', { url: `https://example.org/live/${i}` });
            };
            let sentAt;
            if (liveFirst) {
                stream();
                await ws.next((m) => m[0] === 'update' && m[1] === bobCid && m[2] >= 100, undefined, 'a live update before resuming');
                sentAt = ws.log.length;
                ws.send(['resume', p0]);
            } else {
                sentAt = ws.log.length;
                ws.send(['resume', p0]);
                stream();
            }
            const resumed = await ws.nextOf('resumed');
            assert.equal(resumed.length, 2);
            assert.ok(Number.isSafeInteger(resumed[1]), `resumed position: ${JSON.stringify(resumed)}`);
            const lastBob = await bob.outcome(bobCid, 100 + LIVE - 1, 60_000);
            const lastPos = lastBob[3].position;
            await ws.next((m) => m[0] === 'update' && m[3].position === lastPos, 60_000, `update ${lastPos}`);

            const pos = (list) => list.filter((m) => m[0] === 'update').map((m) => m[3].position);
            const increasing = (list, what) => {
                for (let i = 1; i < list.length; i++) assert.ok(list[i] > list[i - 1], `${what}: ${list[i - 1]} then ${list[i]}`);
            };
            const idx = ws.log.indexOf(resumed);
            const earlyLive = pos(ws.log.slice(0, sentAt));
            const catchUp = pos(ws.log.slice(sentAt, idx));
            const live = pos(ws.log.slice(idx + 1));
            const got = pos(ws.log);
            const updates = ws.all((m) => m[0] === 'update');

            assert.equal(new Set(got).size, got.length, `no position twice: ${JSON.stringify(got)}`);
            if (liveFirst) {
                // Live updates in flight while the resume travels may come before
                // the replay; the replayed ones are those older than the first live one.
                const firstLive = Math.min(...earlyLive);
                increasing(catchUp.filter((p) => p < firstLive), 'the replay is in position order');
                increasing(catchUp.filter((p) => p >= firstLive), 'live updates are in position order');
            } else {
                increasing(catchUp, 'the catch-up is in position order');
            }
            increasing(live, 'live updates after resumed are in position order');
            assert.ok(catchUp.every((p) => p > p0 && p <= resumed[1]), `catch-up within (${p0}, ${resumed[1]}]: ${catchUp}`);
            assert.ok(live.every((p) => p > resumed[1]), `live updates come after the resumed position ${resumed[1]}`);
            assert.ok(earlyLive.every((p) => p <= resumed[1]), 'the resumed position covers what was already sent');
            if (!liveFirst) {
                assert.deepEqual(earlyLive, [], 'nothing before the resume');
                increasing(got, 'the whole stream is in position order');
                assert.ok(catchUp.length >= 7, `at least the 7 missed events she may see were replayed (${catchUp.length})`);
            }

            // Exactly what she may see after p0, as the events query says: no gap, nothing foreign.
            const visible = (await queryOk(srv, aliceCookie, 'events', { after_position: p0, before_position: lastPos + 1, limit: 1000 }))
                .map((e) => e.position)
                .reverse();
            assert.deepEqual([...got].sort((a, b) => a - b), visible, 'every visible event after p0 once, none she may not see');
            const missed = updates.find((m) => m[3].data.url === 'https://example.org/missed/3');
            assert.ok(missed, 'missed page view replayed');
            assert.equal(missed[1], bobCid, "replayed with the issuer's client id");
            assert.equal(missed[2], 3);
            assertEvent(missed[3], { name: 'page-view', client_id: bobCid, client_seq: 3 });
            assert.ok(!updates.some((m) => m[3].data.sku === 'bob-only'), "Bob's cart is not replayed to Alice");
            assert.equal(updates.filter((m) => m[3].data.sku === 'missed').length, 2, 'her own cart events replayed');
        } finally {
            ws.terminate();
        }
    });
}

it('resume after a reconnect: every missed event once, in order, then resumed, then live with no gap or duplicate', () =>
    resumeScenario({ liveFirst: false }));

it('resume while live updates already flow: no gap, no duplicate, catch-up in order', () => resumeScenario({ liveFirst: true }));

it('resume from the head of the log replays nothing and answers resumed', async () => {
    await withConns([aliceCookie], async (ws) => {
        const { event } = await ws.run(newClientId(), 1, 'visit-page', { url: 'https://example.org/head' });
        const head = (await queryOk(srv, aliceCookie, 'events', { limit: 1 }))[0].position;
        assert.ok(head >= event.position);
        const before = ws.all((m) => m[0] === 'update').length;
        ws.send(['resume', head]);
        const resumed = await ws.nextOf('resumed');
        assert.ok(resumed[1] >= head, `resumed ${resumed[1]} >= ${head}`);
        assert.equal(ws.all((m) => m[0] === 'update').length, before, 'nothing replayed');
    });
});

// ---------------------------------------------------------------- audience

it("audience: Alice's page view reaches Bob with Alice's ids; her cart and registrations do not", async () => {
    await withConns([aliceCookie, bobCookie], async (alice, bob) => {
        const cid = newClientId('alice');
        const view = await alice.run(cid, 1, 'visit-page', { url: 'https://example.org/seen-by-all' });
        const seen = await bob.next((m) => m[0] === 'update' && m[3].uuid === view.event.uuid);
        assert.equal(seen[1], cid, "Bob receives Alice's client id");
        assert.equal(seen[2], 1, "Bob receives Alice's seq");
        assert.deepEqual(seen[3], view.event, 'the same EVENT');
        assert.equal(bob.all((m) => m[0] === 'cmd-ack').length, 0, 'acks go to the issuer only');

        const cart = await alice.run(cid, 2, 'add-to-cart', { sku: 'private', quantity: 1 });
        const reg = await alice.run(cid, 3, 'register-user', { email: 'frank@example.org', first_name: 'Frank', last_name: 'Zappa', password: 'frank-password' });
        const barrierPos = await barrier(alice, [bob]);
        assert.ok(barrierPos > reg.event.position && reg.event.position > cart.event.position);
        const bobPositions = positions(bob);
        assert.ok(!bobPositions.includes(cart.event.position), "Bob did not get Alice's cart event");
        assert.ok(!bobPositions.includes(reg.event.position), "Bob did not get Alice's registration");
        assert.ok(!bob.all((m) => m[0] === 'update').some((m) => m[3].name === 'item-added-to-cart'));
        // And the events query agrees with the updates.
        const bobEvents = await queryOk(srv, bobCookie, 'events', { after_position: view.event.position - 1, limit: 1000 });
        assert.ok(!bobEvents.some((e) => e.position === cart.event.position || e.position === reg.event.position));
        assert.ok(bobEvents.some((e) => e.position === view.event.position));
    });
});

it("one user, two connections: both receive the user's own cart update", async () => {
    const second = (await loginAs(srv, ALICE.email)).cookie;
    await withConns([aliceCookie, second, bobCookie], async (a1, a2, bob) => {
        const cid = newClientId('alice');
        const { event, ack } = await a1.run(cid, 1, 'add-to-cart', { sku: 'shared', quantity: 2 });
        const other = await a2.next((m) => m[0] === 'update' && m[3].uuid === event.uuid);
        assert.equal(other[1], cid);
        assert.equal(other[2], 1);
        assert.deepEqual(other[3], event);
        assert.equal(a2.all((m) => m[0] === 'cmd-ack').length, 0, 'the ack goes to the issuing connection only');
        assert.equal(event.command_uuid, ack[3].command_uuid);
        await barrier(a1, [a2, bob]);
        assert.equal(a1.all((m) => m[0] === 'update' && m[3].uuid === event.uuid).length, 1, 'exactly once on the issuing connection');
        assert.equal(a2.all((m) => m[0] === 'update' && m[3].uuid === event.uuid).length, 1, 'exactly once on the other');
        assert.ok(!positions(bob).includes(event.position));
    });
});

// -------------------------------------------------------------- overloaded

describe('a full command queue', () => {
    let small;
    let cookie;
    before(async () => {
        small = await startServer({ users: [ALICE], args: ['--queue-capacity', '1'] });
        cookie = (await loginAs(small, ALICE.email)).cookie;
    });
    after(() => small?.stop());

    test(
        'answers overloaded, queues nothing for it, and takes the retry later',
        guard(
            () => small,
            async () => {
                const conns = [];
                for (let i = 0; i < 3; i++) conns.push(await WsClient.connect(small, { cookie, label: `burst-${i}` }));
                try {
                    const N = 400;
                    const cids = conns.map(() => newClientId('burst'));
                    let overloaded = [];
                    const acked = [];
                    for (let round = 0; round < 5 && overloaded.length === 0; round++) {
                        const base = round * N;
                        conns.forEach((c, k) => {
                            for (let s = base; s < base + N; s++) c.cmd(cids[k], s, 'visit-page', { url: `https://example.org/burst/${k}/${s}` });
                        });
                        for (let k = 0; k < conns.length; k++) {
                            for (let s = base; s < base + N; s++) {
                                const r = await conns[k].reply(cids[k], s, 60_000);
                                if (r[0] === 'cmd-ack') {
                                    assert.equal(r[3].duplicate, false);
                                    acked.push([k, s]);
                                } else {
                                    assertWsError(r, cids[k], s, 'overloaded');
                                    overloaded.push([k, s]);
                                }
                            }
                        }
                    }
                    assert.ok(overloaded.length > 0, 'a burst against a queue of 1 meets overloaded');
                    assert.ok(acked.length > 0, 'some commands were queued');
                    // Every acked command gets its update; no overloaded one does.
                    for (const [k, s] of acked) await conns[k].outcome(cids[k], s, 60_000);
                    await barrier(conns[0], conns);
                    for (const [k, s] of overloaded) {
                        assert.equal(conns[k].all((m) => (m[0] === 'update' || m[0] === 'rejected') && m[1] === cids[k] && m[2] === s).length, 0, `overloaded ${s} had no outcome`);
                        assert.equal(conns[k].all((m) => m[0] === 'cmd-ack' && m[1] === cids[k] && m[2] === s).length, 0, `overloaded ${s} was not acked`);
                    }
                    // The client may retry later: the same triple is new to the server.
                    const [k, s] = overloaded[0];
                    let ack;
                    for (let attempt = 0; attempt < 50; attempt++) {
                        conns[k].cmd(cids[k], s, 'visit-page', { url: 'https://example.org/retry' });
                        ack = await conns[k].reply(cids[k], s, 30_000);
                        if (ack[0] === 'cmd-ack') break;
                        assertWsError(ack, cids[k], s, 'overloaded');
                        await new Promise((r) => setTimeout(r, 100)); // "the client may retry later"
                    }
                    assert.equal(ack[0], 'cmd-ack', `the retry is queued: ${JSON.stringify(ack)}`);
                    assert.equal(ack[3].duplicate, false, 'never queued before, so not a duplicate');
                    const up = await conns[k].outcome(cids[k], s, 30_000);
                    assert.equal(up[3].data.url, 'https://example.org/retry');
                } finally {
                    for (const c of conns) c.terminate();
                }
            },
        ),
    );
});
