// query.test.mjs - POST /query: the built-in queries (describe, events), the
// example domain's queries, and the error answers (400, 401, 413).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, guard } from './lib/server.mjs';
import { request, loginAs, query, queryOk, WsClient, newClientId } from './lib/client.mjs';
import { assertEvent, assertQueryError, assertUnauthorized, assertUuid, fieldReason, cartOf } from './lib/expect.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'Builder' };

let srv;
let alice;
let bob;
let aliceWs;
let bobWs;
before(async () => {
    srv = await startServer({ users: [ALICE, BOB] });
    alice = (await loginAs(srv, ALICE.email)).cookie;
    bob = (await loginAs(srv, BOB.email)).cookie;
    aliceWs = await WsClient.connect(srv, { cookie: alice, label: 'alice' });
    bobWs = await WsClient.connect(srv, { cookie: bob, label: 'bob' });
});
after(async () => {
    aliceWs?.terminate();
    bobWs?.terminate();
    await srv?.stop();
});

const it = (name, fn) => test(name, guard(() => srv, fn));

/** Sends n commands pipelined and waits for every outcome; returns the events. */
async function runMany(ws, cmds) {
    const cid = newClientId();
    cmds.forEach(([name, data], i) => ws.cmd(cid, i, name, data));
    const out = [];
    for (let i = 0; i < cmds.length; i++) {
        const r = await ws.outcome(cid, i, 60_000);
        assert.equal(r[0], 'update', JSON.stringify(r));
        out.push(r[3]);
    }
    return out;
}

function field(list, name) {
    const f = list.find((x) => x.name === name);
    assert.ok(f, `field ${name} in ${JSON.stringify(list)}`);
    return f;
}

// ---------------------------------------------------------------- describe

it('describe lists the commands and queries with their fields and limits', async () => {
    for (const data of [undefined, {}]) {
        const r = await queryOk(srv, alice, 'describe', data);
        assert.deepEqual(Object.keys(r).sort(), ['commands', 'queries']);
        const commands = Object.fromEntries(r.commands.map((c) => [c.name, c.fields]));
        const queries = Object.fromEntries(r.queries.map((q) => [q.name, q.fields]));
        assert.deepEqual(Object.keys(commands).sort(), ['add-to-cart', 'register-user', 'remove-from-cart', 'visit-page'], 'the client-visible commands, no internal ones');
        for (const q of ['describe', 'events', 'list-users', 'list-page-views', 'get-cart', 'cart-history']) {
            assert.ok(queries[q], `query ${q} described`);
        }
        for (const entry of [...r.commands, ...r.queries]) {
            assert.match(entry.name, /^[a-z0-9]+(-[a-z0-9]+)*$/, 'kebab-case names');
            assert.ok(Array.isArray(entry.fields), `${entry.name}: fields is an array`);
            for (const f of entry.fields) {
                assert.equal(typeof f.name, 'string');
                assert.match(f.name, /^[a-z0-9]+(_[a-z0-9]+)*$/, 'snake_case field names');
                assert.ok(['string', 'integer', 'boolean', 'object', 'uuid'].includes(f.type), `${entry.name}.${f.name} type ${f.type}`);
                assert.equal(typeof f.required, 'boolean');
            }
        }
        assert.deepEqual(field(commands['visit-page'], 'url'), { ...field(commands['visit-page'], 'url'), type: 'string', required: true, max_length: 2048 });
        for (const c of ['add-to-cart', 'remove-from-cart']) {
            assert.equal(field(commands[c], 'sku').type, 'string');
            assert.equal(field(commands[c], 'sku').required, true);
            const q = field(commands[c], 'quantity');
            assert.equal(q.type, 'integer');
            assert.equal(q.required, true);
            assert.equal(q.min, 1);
            assert.equal(q.max, 1000);
        }
        const reg = commands['register-user'];
        assert.deepEqual(reg.map((f) => f.name).sort(), ['email', 'first_name', 'last_name', 'password']);
        for (const f of reg) {
            assert.equal(f.type, 'string');
            assert.equal(f.required, true);
        }
        assert.equal(field(reg, 'email').max_length, 254);
        assert.equal(field(reg, 'first_name').max_length, 100);
        assert.equal(field(reg, 'last_name').max_length, 100);
        assert.equal(field(reg, 'password').max_length, 1024);
        const ev = queries.events;
        assert.deepEqual(ev.map((f) => f.name).sort(), ['after_position', 'before_position', 'limit', 'name']);
        assert.ok(ev.every((f) => f.required === false), 'events fields are optional');
        assert.equal(field(ev, 'limit').type, 'integer');
        assert.equal(field(ev, 'limit').min, 1);
        assert.equal(field(ev, 'limit').max, 1000);
        assert.equal(field(queries['get-cart'], 'as_of_position').type, 'integer');
        assert.equal(field(queries['get-cart'], 'as_of_position').required, false);
        assert.deepEqual(queries.describe, []);
    }
});

// ------------------------------------------------------------------ events

it('events: newest first, full EVENTs, default limit 100, limit and name and position windows', async () => {
    const made = await runMany(
        aliceWs,
        Array.from({ length: 105 }, (_, i) => ['visit-page', { url: `https://example.org/events/${i}` }]),
    );
    const all = await queryOk(srv, alice, 'events', {});
    assert.equal(all.length, 100, 'default limit 100');
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].position > all[i].position, 'newest first');
    for (const e of all) assertEvent(e);
    assert.deepEqual(all[0], made[made.length - 1], 'the newest is the last made, identical to its update');

    const three = await queryOk(srv, alice, 'events', { limit: 3 });
    assert.deepEqual(three, all.slice(0, 3));
    const big = await queryOk(srv, alice, 'events', { limit: 1000 });
    assert.ok(big.length >= 105);

    const views = await queryOk(srv, alice, 'events', { name: 'page-view', limit: 1000 });
    assert.ok(views.every((e) => e.name === 'page-view'));
    assert.equal(views.length, big.filter((e) => e.name === 'page-view').length);

    const lo = made[10].position;
    const hi = made[20].position;
    const window = await queryOk(srv, alice, 'events', { after_position: lo, before_position: hi });
    assert.deepEqual(
        window.map((e) => e.position),
        made.slice(11, 20).map((e) => e.position).reverse(),
        'after is exclusive, before is exclusive',
    );
    const none = await queryOk(srv, alice, 'events', { name: 'no-such-event' });
    assert.deepEqual(none, []);
});

it('events respect the audience: page views for everyone, cart events for their owner only', async () => {
    const [view] = await runMany(aliceWs, [['visit-page', { url: 'https://example.org/audience' }]]);
    const [cart] = await runMany(aliceWs, [['add-to-cart', { sku: 'audience', quantity: 1 }]]);
    const [bobCart] = await runMany(bobWs, [['add-to-cart', { sku: 'bob-audience', quantity: 1 }]]);
    const forBob = await queryOk(srv, bob, 'events', { after_position: view.position - 1, limit: 1000 });
    const forAlice = await queryOk(srv, alice, 'events', { after_position: view.position - 1, limit: 1000 });
    const pos = (l) => l.map((e) => e.position);
    assert.ok(pos(forBob).includes(view.position), 'Bob sees her page view');
    assert.ok(!pos(forBob).includes(cart.position), 'Bob does not see her cart');
    assert.ok(pos(forBob).includes(bobCart.position), 'Bob sees his cart');
    assert.ok(pos(forAlice).includes(cart.position), 'she sees her cart');
    assert.ok(!pos(forAlice).includes(bobCart.position), "she does not see Bob's cart");
    // The limit counts visible events: the newest event before Bob's cart is
    // her cart event, which he may not see, so his one event is her page view.
    const one = await queryOk(srv, bob, 'events', { after_position: view.position - 1, before_position: bobCart.position, limit: 1 });
    assert.deepEqual(pos(one), [view.position]);
    const empty = await queryOk(srv, bob, 'events', { after_position: view.position, before_position: bobCart.position, limit: 1 });
    assert.deepEqual(empty, [], 'nothing visible to Bob between her page view and his cart');
});

it('events query validation: limit 1..1000, integer positions, string name', async () => {
    for (const [data, f] of [
        [{ limit: 0 }, 'limit'],
        [{ limit: 1001 }, 'limit'],
        [{ limit: '5' }, 'limit'],
        [{ after_position: -1 }, 'after_position'],
        [{ after_position: 'x' }, 'after_position'],
        [{ before_position: 1.5 }, 'before_position'],
        [{ name: 5 }, 'name'],
    ]) {
        const r = await query(srv, alice, 'events', data);
        const body = assertQueryError(r, 'query-validation-failed');
        fieldReason(body.details, f);
    }
});

// ------------------------------------------------------------ list-users

it('list-users lists every user with exactly user_uuid, email, first and last name, no password or hash', async () => {
    const r = await query(srv, alice, 'list-users');
    assert.equal(r.status, 200);
    assert.match(String(r.res.headers['content-type']), /^application\/json/);
    const users = r.body[1];
    assert.ok(Array.isArray(users));
    for (const u of users) {
        assert.deepEqual(Object.keys(u).sort(), ['email', 'first_name', 'last_name', 'user_uuid']);
        assertUuid(u.user_uuid);
    }
    const a = users.find((u) => u.email === ALICE.email);
    assert.deepEqual(a, { user_uuid: srv.user(ALICE.email).user_uuid, email: ALICE.email, first_name: ALICE.first, last_name: ALICE.last });
    assert.ok(users.find((u) => u.email === BOB.email));
    const text = r.res.text;
    for (const s of ['password', 'hash', '$argon2', ALICE.password, BOB.password]) assert.ok(!text.includes(s), `no ${s} in list-users`);
});

// -------------------------------------------------------- list-page-views

it('list-page-views: newest first, with the visitor email, limit and after_position', async () => {
    const made = await runMany(bobWs, Array.from({ length: 5 }, (_, i) => ['visit-page', { url: `https://example.org/list/${i}` }]));
    const rows = await queryOk(srv, alice, 'list-page-views', { after_position: made[0].position - 1 });
    assert.deepEqual(rows.map((r) => r.position), made.map((e) => e.position).reverse());
    for (const r of rows) {
        assert.deepEqual(Object.keys(r).sort(), ['email', 'position', 'recorded_at', 'url', 'user_uuid']);
        assert.equal(r.email, BOB.email);
        assert.equal(r.user_uuid, srv.user(BOB.email).user_uuid);
    }
    assert.equal(rows[0].url, 'https://example.org/list/4');
    assert.equal(rows[0].recorded_at, made[4].recorded_at);
    const two = await queryOk(srv, alice, 'list-page-views', { limit: 2 });
    assert.equal(two.length, 2);
    assert.equal(two[0].position, made[4].position);
    assertQueryError(await query(srv, alice, 'list-page-views', { limit: 0 }), 'query-validation-failed');
    assertQueryError(await query(srv, alice, 'list-page-views', { limit: 1001 }), 'query-validation-failed');
});

// --------------------------------------------------------------- the cart

it('get-cart shows the cart now and as of any position; cart-history lists it oldest first', async () => {
    const cid = newClientId();
    const a1 = (await aliceWs.run(cid, 1, 'add-to-cart', { sku: 'apple', quantity: 3 })).event;
    const a2 = (await aliceWs.run(cid, 2, 'add-to-cart', { sku: 'banana', quantity: 1 })).event;
    const r1 = (await aliceWs.run(cid, 3, 'remove-from-cart', { sku: 'apple', quantity: 2 })).event;
    await bobWs.run(newClientId(), 1, 'add-to-cart', { sku: 'apple', quantity: 50 });
    const a3 = (await aliceWs.run(cid, 4, 'remove-from-cart', { sku: 'banana', quantity: 1 })).event;

    const now = cartOf(await queryOk(srv, alice, 'get-cart', {}));
    assert.equal(now.apple, 1);
    assert.ok(!now.banana, 'banana removed');
    const expectAt = [
        [a1.position - 1, {}],
        [a1.position, { apple: 3 }],
        [a2.position, { apple: 3, banana: 1 }],
        [r1.position, { apple: 1, banana: 1 }],
        [a3.position - 1, { apple: 1, banana: 1 }],
        [a3.position, { apple: 1 }],
    ];
    for (const [pos, want] of expectAt) {
        const got = cartOf(await queryOk(srv, alice, 'get-cart', { as_of_position: pos }));
        // Earlier tests of this file left other skus in her cart: look at these two.
        const mine = Object.fromEntries(Object.entries(got).filter(([k]) => k === 'apple' || k === 'banana'));
        assert.deepEqual(mine, want, `as of ${pos}`);
    }
    assert.deepEqual(cartOf(await queryOk(srv, alice, 'get-cart', { as_of_position: 0 })), {}, 'as of position 0 the cart is empty');
    const bobCart = cartOf(await queryOk(srv, bob, 'get-cart', {}));
    assert.equal(bobCart.apple, 50, "Bob's cart is his own");

    const history = await queryOk(srv, alice, 'cart-history');
    const ours = history.filter((h) => [a1, a2, r1, a3].some((e) => e.position === h.position));
    assert.equal(ours.length, 4, JSON.stringify(history));
    for (let i = 1; i < history.length; i++) assert.ok(history[i].position > history[i - 1].position, 'oldest first');
    assert.ok(!JSON.stringify(history).includes('"quantity":50'), "no event of Bob's cart");
    assertQueryError(await query(srv, alice, 'get-cart', { as_of_position: 'x' }), 'query-validation-failed');
    assertQueryError(await query(srv, alice, 'get-cart', { as_of_position: -1 }), 'query-validation-failed');
});

// --------------------------------------------------------------- errors

it('a malformed body answers 400 ["error", {code: "malformed"}]', async () => {
    for (const raw of ['not json', '[]', '"describe"', '42', 'null', '{"name":5}', '{"name":["describe"]}', '{"name":"describe","data":"x"}', '{"name":"describe","data":[]}', '{"name":"describe"']) {
        const r = await query(srv, alice, undefined, undefined, { rawBody: raw });
        const body = assertQueryError(r, 'malformed');
        assert.match(String(r.res.headers['content-type']), /^application\/json/, raw);
        assert.equal(typeof body.message, 'string');
    }
    // No name at all: malformed (or, read as a name nobody defined, unknown-query).
    const r = await query(srv, alice, undefined, undefined, { rawBody: '{}' });
    assert.equal(r.status, 400);
    assert.ok(['malformed', 'unknown-query'].includes(r.body?.[1]?.code), r.res.text);
});

it('an undefined query answers 400 unknown-query', async () => {
    for (const name of ['no-such-query', 'Describe', 'list_users', 'start-session']) {
        const r = await query(srv, alice, name, {});
        assertQueryError(r, 'unknown-query');
    }
    const empty = await query(srv, alice, '', {});
    assert.equal(empty.status, 400);
    assert.ok(['malformed', 'unknown-query'].includes(empty.body?.[1]?.code), empty.res.text);
});

it('query-validation-failed says which field and why', async () => {
    const r = await query(srv, alice, 'get-cart', { as_of_position: 'yesterday' });
    const body = assertQueryError(r, 'query-validation-failed');
    const why = fieldReason(body.details, 'as_of_position');
    assert.ok(why.length > 0);
});

it('without a valid session /query answers 401 unauthorized', async () => {
    for (const cookie of [undefined, 'cw_session=', 'cw_session=garbage', `cw_session=${alice.split('=')[1].slice(0, -3)}`]) {
        const r = await query(srv, cookie, 'describe');
        assertUnauthorized(r.status, r.res.text, String(cookie));
    }
});

it('a body over the limit (1 MiB by default) answers 413; under it is served', async () => {
    const pad = (n) => JSON.stringify({ name: 'describe', data: {}, padding: 'p'.repeat(n) });
    const over = await request(srv, 'POST', '/query', { cookie: alice, body: pad(1024 * 1024 + 1024), headers: { 'Content-Type': 'application/json' } });
    assert.equal(over.status, 413, `status ${over.status}`);
    const under = await request(srv, 'POST', '/query', { cookie: alice, body: pad(900 * 1024), headers: { 'Content-Type': 'application/json' } });
    assert.equal(under.status, 200, `900 KiB is under the limit: ${under.status} ${under.text.slice(0, 200)}`);
    // The server is still fine afterwards.
    assert.equal((await query(srv, alice, 'describe')).status, 200);
});
