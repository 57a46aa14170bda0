// todo.test.mjs - the guide's example domain (examples/todo, docs/DOMAIN.md)
// on the installed server: run by tests/examples/run.sh, which installs into
// a scratch DESTDIR, builds todo.so there with pkg-config, and points BUILD
// at the installed bin/ and CW_TODO_MODULE at the module.
//
// Alice drives it through calderwood.js, with examples/todo/client.mjs's
// glue; Bob through the end-to-end tests' raw client. Then the server stops,
// an item-added event as version 1 of the module wrote it joins the log, and
// the export, a replay and a new server on the replayed store read it at
// version 2. Last, every code block of docs/DOMAIN.md marked as quoted from
// a file must appear in that file verbatim.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startServer, guard, exportEvents, BIN, ROOT } from '../e2e/lib/server.mjs';
import { loginAs, queryOk, WsClient, newClientId } from '../e2e/lib/client.mjs';

// Node 18 has neither WebSocket nor CustomEvent as globals (20 has WebSocket
// behind --experimental-websocket, which run.sh passes when node knows it).
const nativeWebSocket = typeof WebSocket !== 'undefined';
if (!nativeWebSocket) {
    globalThis.WebSocket = createRequire(join(ROOT, 'tests/e2e/package.json'))('ws').WebSocket;
}
if (typeof CustomEvent === 'undefined') {
    globalThis.CustomEvent = class extends Event {
        constructor(type, init = {}) {
            super(type, init);
            this.detail = init.detail ?? null;
        }
    };
}
const { connect } = await import('../../examples/todo/client.mjs');

const MODULE = process.env.CW_TODO_MODULE;
const ARGS = ['--no-demo', '--module', MODULE];
const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'A' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'B' };

let srv, cw, bobCookie, bobWs;
const ids = {}; // list and item ids, from the events
before(async () => {
    assert.ok(MODULE, 'CW_TODO_MODULE names the module (run tests/examples/run.sh)');
    srv = await startServer({ users: [ALICE, BOB], args: ARGS });
    bobCookie = (await loginAs(srv, BOB.email)).cookie;
    bobWs = await WsClient.connect(srv, { cookie: bobCookie, label: 'bob' });
    cw = await connect(srv.url, ALICE.email, ALICE.password);
});
after(async () => {
    cw?.close();
    bobWs?.terminate();
    await srv?.stop();
});

/** Sends a command with calderwood.js and waits for its one event. */
async function run(name, data) {
    const cmd = await cw.send(name, data).done;
    assert.equal(cmd.events.length, 1, `${name}: one event`);
    return cmd.events[0];
}

/** Sends a command that must end in state (rejected or error) with code. */
async function refused(name, data, state, code) {
    const cmd = cw.send(name, data);
    await assert.rejects(cmd.done, (e) => e.code === code, `${name} ${JSON.stringify(data)}: ${code}`);
    assert.equal(cmd.state, state);
    return cmd;
}

test(
    'the installed server loads the module: describe lists its commands, fields and query',
    guard(() => srv, async () => {
        const d = await queryOk(srv, bobCookie, 'describe');
        const cmds = Object.fromEntries(d.commands.map((c) => [c.name, c.fields.map((f) => f.name)]));
        assert.deepEqual(cmds['create-list'], ['name', 'private']);
        assert.deepEqual(cmds['add-item'], ['list_id', 'text', 'due']);
        assert.deepEqual(cmds['complete-item'], ['item_id']);
        assert.deepEqual(cmds['rename-item'], ['item_id', 'text']);
        assert.ok(d.queries.some((q) => q.name === 'lists'), 'query lists');
        assert.ok(!cmds['add-to-cart'], '--no-demo: the demo domain is left out');
    }),
);

test(
    'each command becomes its event, with the ids the handler chose',
    guard(() => srv, async () => {
        let ev = await run('create-list', { name: 'Team chores' });
        assert.equal(ev.name, 'list-created');
        assert.deepEqual(ev.data, { list_id: ev.command_uuid, name: 'Team chores', private: false });
        ids.shared = ev.data.list_id;
        ev = await run('create-list', { name: 'Presents', private: true });
        assert.equal(ev.data.private, true);
        ids.private = ev.data.list_id;

        ev = await run('add-item', { list_id: ids.shared, text: 'Buy milk', due: '2027-01-15' });
        assert.equal(ev.name, 'item-added');
        assert.equal(ev.version, 2);
        assert.deepEqual(ev.data, { list_id: ids.shared, item_id: ev.command_uuid, text: 'Buy milk', due: '2027-01-15', private: false });
        ids.milk = ev.data.item_id;
        ev = await run('add-item', { list_id: ids.shared, text: 'Water the plants' });
        assert.equal(ev.data.due, null, 'no due date: null');
        ids.plants = ev.data.item_id;
        ev = await run('add-item', { list_id: ids.private, text: 'A scarf for Bob' });
        assert.equal(ev.data.private, true, 'an item of a private list is private');
        ids.scarf = ev.data.item_id;

        ev = await run('complete-item', { item_id: ids.milk });
        assert.equal(ev.name, 'item-completed');
        assert.deepEqual(ev.data, { list_id: ids.shared, item_id: ids.milk, private: false });
        ev = await run('rename-item', { item_id: ids.plants, text: 'Water the plants and the fern' });
        assert.equal(ev.name, 'item-renamed');
        assert.equal(ev.data.text, 'Water the plants and the fern');

        const { result } = await cw.query('lists');
        assert.deepEqual(
            result.map((l) => [l.name, l.private, l.items.map((i) => [i.text, i.due, i.done])]),
            [
                ['Team chores', false, [['Buy milk', '2027-01-15', true], ['Water the plants and the fern', null, false]]],
                ['Presents', true, [['A scarf for Bob', null, false]]],
            ],
        );
    }),
);

test(
    'the rejection rules, and the coerce of add-item',
    guard(() => srv, async () => {
        let cmd = await refused('complete-item', { item_id: ids.milk }, 'rejected', 'already-done');
        assert.equal(cmd.message, 'that item is already done');
        await refused('complete-item', { item_id: randomUUID() }, 'rejected', 'no-such-item');
        await refused('rename-item', { item_id: randomUUID(), text: 'x' }, 'rejected', 'no-such-item');
        await refused('add-item', { list_id: randomUUID(), text: 'x' }, 'rejected', 'no-such-list');
        cmd = await refused('add-item', { list_id: ids.shared, text: 'x', due: 'tomorrow' }, 'error', 'command-validation-failed');
        assert.deepEqual(cmd.details, [{ field: 'due', reason: 'must be a date: YYYY-MM-DD' }]);
        cmd = await refused('create-list', { name: '' }, 'error', 'command-validation-failed');
        assert.equal(cmd.details[0].field, 'name', 'the declared min_length');
    }),
);

test(
    'audiences: Bob sees the shared list live, never the private one, and may not touch it',
    guard(() => srv, async () => {
        // Bob's own commands, over the raw protocol.
        const cid = newClientId('bob');
        bobWs.cmd(cid, 1, 'add-item', { list_id: ids.private, text: 'peek' });
        let out = await bobWs.outcome(cid, 1);
        assert.deepEqual([out[0], out[3].code], ['rejected', 'no-such-list'], JSON.stringify(out));
        bobWs.cmd(cid, 2, 'complete-item', { item_id: ids.scarf });
        out = await bobWs.outcome(cid, 2);
        assert.deepEqual([out[0], out[3].code], ['rejected', 'no-such-item'], JSON.stringify(out));
        // The team may complete a shared item, and Alice hears of it.
        const heard = new Promise((res) => {
            cw.addEventListener('update', (e) => e.detail.event.data.item_id === ids.plants && res(e.detail));
        });
        const { event } = await bobWs.run(cid, 3, 'complete-item', { item_id: ids.plants });
        assert.equal(event.name, 'item-completed');
        const seen = await heard;
        assert.equal(seen.command, null, "Bob's command, not one of Alice's client");

        // Alice's last shared event marks the end: every earlier one reached Bob first.
        const mark = await run('add-item', { list_id: ids.shared, text: 'Last one' });
        await bobWs.next((m) => m[0] === 'update' && m[3].position === mark.position, undefined, 'the marker');
        const bobSaw = bobWs.all((m) => m[0] === 'update').map((m) => m[3]);
        const names = bobSaw.filter((e) => e.data.list_id).map((e) => `${e.name} ${e.data.text ?? e.data.name ?? ''}`.trim());
        assert.deepEqual(names, [
            'list-created Team chores',
            'item-added Buy milk',
            'item-added Water the plants',
            'item-completed',
            'item-renamed Water the plants and the fern',
            'item-completed',
            'item-added Last one',
        ]);
        assert.ok(!bobSaw.some((e) => e.data.private === true || e.data.list_id === ids.private), 'nothing private');

        const lists = await queryOk(srv, bobCookie, 'lists');
        assert.deepEqual(lists.map((l) => l.name), ['Team chores']);
        const evs = await queryOk(srv, bobCookie, 'events', { limit: 1000 });
        assert.ok(evs.some((e) => e.data.list_id === ids.shared), 'the events query shows the shared list');
        assert.ok(!evs.some((e) => e.data.list_id === ids.private), 'and not the private one');
        const mine = await cw.query('events', { limit: 1000 });
        assert.ok(mine.result.some((e) => e.data.item_id === ids.scarf), "Alice's private events are hers");
    }),
);

test(
    'examples/todo/client.mjs runs as the guide shows',
    { skip: !nativeWebSocket && 'this node has no WebSocket of its own' },
    guard(() => srv, async () => {
        const r = spawnSync(process.execPath, [...process.execArgv.filter((a) => !a.startsWith('--test')), join(ROOT, 'examples/todo/client.mjs'), srv.url, ALICE.email], {
            encoding: 'utf8',
            env: { ...process.env, CW_PASSWORD: ALICE.password },
            timeout: 60_000,
        });
        assert.equal(r.status, 0, `client.mjs: exit ${r.status}: ${r.stderr}`);
        assert.match(r.stdout, /^update \d+ list-created$/m);
        assert.match(r.stdout, /^update \d+ item-completed$/m);
        assert.match(r.stdout, /^rejected: already-done that item is already done$/m);
        const lists = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n[') + 1));
        const chores = lists.find((l) => l.name === 'Team chores' && l.list_id !== ids.shared);
        assert.deepEqual(chores.items.map((i) => [i.text, i.done]), [['Buy milk', true], ['Water the plants', false]]);
    }),
);

/** Runs the installed calderwood; returns stdout, or throws with stderr. */
function calderwood(...args) {
    const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`calderwood ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
}

test(
    'an item-added of version 1 reads as version 2 (due: null): export, replay, query',
    guard(() => srv, async () => {
        assert.equal((await srv.stop({ keepData: true })).code, 0, 'clean stop');
        // The event as version 1 of the module wrote it: no due date.
        const db = join(srv.dataDir, 'calderwood.db');
        const v1 = { list_id: ids.shared, item_id: randomUUID(), text: 'Fix the bike', private: false };
        const sql =
            'INSERT INTO events(position, uuid, command_uuid, name, version, data, meta, user_uuid,' +
            ' client_id, client_seq, recorded_at) SELECT max(position) + 1, ' +
            `'${randomUUID()}', '${v1.item_id}', 'item-added', 1, '${JSON.stringify(v1)}', '{}',` +
            ` '${cw.userUuid}', 'todo-v1', 1, ${Date.now() * 1000} FROM events;` +
            'SELECT version FROM events WHERE name = \'item-added\' ORDER BY position DESC LIMIT 1;';
        const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
        assert.equal(r.stdout.trim(), '1', `the fixture is stored at version 1: ${r.stderr}`);

        const exported = exportEvents(srv.dataDir, ['--no-demo', '--module', MODULE, '--name', 'item-added']);
        const old = exported.find((e) => e.data.item_id === v1.item_id);
        assert.ok(old, 'calderwood events lists it');
        assert.equal(old.version, 2, 'upcast on export');
        assert.deepEqual(old.data, { ...v1, due: null });

        // A replay runs the aggregate on the upcast event; a server on the new store serves it.
        const dir2 = mkdtempSync(join(tmpdir(), 'cw-todo-replay-'));
        try {
            calderwood('replay', '--data', srv.dataDir, ...ARGS, '--into', join(dir2, 'calderwood.db'));
            const srv2 = await startServer({ dataDir: dir2, knownUsers: [ALICE], args: ARGS });
            try {
                const cookie = (await loginAs(srv2, ALICE.email)).cookie;
                const lists = await queryOk(srv2, cookie, 'lists');
                const bike = lists[0].items.find((i) => i.item_id === v1.item_id);
                assert.deepEqual(bike, { item_id: v1.item_id, text: 'Fix the bike', due: null, done: false });
                const evs = await queryOk(srv2, cookie, 'events', { name: 'item-added', limit: 1 });
                assert.equal(evs[0].version, 2, 'the events query upcasts too');
                assert.deepEqual(evs[0].data, { ...v1, due: null });
                assert.equal((await srv2.stop()).code, 0, 'clean stop (and no leak under ASan)');
            } finally {
                await srv2.stop();
            }
        } finally {
            rmSync(dir2, { recursive: true, force: true });
        }
    }),
);

test('docs/DOMAIN.md quotes examples/ verbatim', () => {
    const doc = readFileSync(join(ROOT, 'docs/DOMAIN.md'), 'utf8');
    const re = /^<!-- from (\S+) -->\n```[a-z]*\n([\s\S]*?)^```$/gm;
    let n = 0;
    for (const [, file, block] of doc.matchAll(re)) {
        const text = readFileSync(join(ROOT, file), 'utf8');
        assert.ok(text.includes(block), `a block marked from ${file} is not in it verbatim:\n${block}`);
        n += 1;
    }
    const markers = (doc.match(/^<!-- from /gm) || []).length;
    assert.equal(n, markers, 'every marker is followed by a code block');
    assert.ok(n >= 12, `at least 12 quoted blocks (found ${n})`);
});
