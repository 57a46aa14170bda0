// admin.test.mjs - the CLI's administration commands beside a running
// server: they go through its admin socket (DATA/calderwood.sock), so their
// events reach live connections at once. user add then login; passwd and
// disable end the user's sessions (open WebSockets get `unauthorized` and
// close within a second) and refuse the old password or any login; enable
// restores it; session list and session end (by session, by user); the
// audit trail in `calderwood events`; and bad input, from the CLI and raw on
// the socket.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { startServer, guard, exportEvents, storeArgs, BIN } from './lib/server.mjs';
import { login, WsClient } from './lib/client.mjs';
import { assertWsError } from './lib/expect.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'Builder' };
const CAROL = { email: 'carol@example.org', password: 'carol-password-3', first: 'Carol', last: 'Danvers' };

let srv;
before(async () => {
    srv = await startServer({ users: [ALICE, BOB] });
});
after(() => srv?.stop());

const it = (name, fn) => test(name, guard(() => srv, fn));

/** Runs `calderwood ARGS... --data DIR` with stdin; resolves { code, stdout, stderr, endedAt }. */
function cli(args, input = '') {
    return new Promise((resolve, reject) => {
        const p = spawn(BIN, [...args, ...storeArgs(srv.dataDir)], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c) => (stdout += c));
        p.stderr.on('data', (c) => (stderr += c));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code, stdout, stderr, endedAt: Date.now() }));
        // A subcommand that reads no input may be gone before it is written (EPIPE on a
        // busy machine): its exit status and output are what the test judges.
        p.stdin.on('error', () => {});
        p.stdin.end(input);
    });
}

async function cliOk(args, input) {
    const r = await cli(args, input);
    assert.equal(r.code, 0, `calderwood ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return r;
}

/** A logged-in user with an open WebSocket. */
async function connect(user, password = user.password) {
    const l = await login(srv, user.email, password);
    const ws = await WsClient.connect(srv, { cookie: l.cookie, label: user.email });
    return { ...l, ws };
}

/** The connection hears `unauthorized` and is closed, both within 1 s of since. */
async function assertEndedWithin1s(ws, since, what) {
    const msg = await ws.next((m) => m[0] === 'error', 5_000, `${what}: unauthorized`);
    assertWsError(msg, null, null, 'unauthorized');
    await ws.waitClose(5_000);
    const took = Date.now() - since;
    assert.ok(took <= 1000, `${what}: the socket closed ${took} ms after the command returned`);
}

async function assertLoginRefused(email, password, what) {
    const r = await login(srv, email, password, { expectOk: false });
    assert.equal(r.status, 401, `${what}: status`);
    assert.equal(r.res.json().error.code, 'invalid-credentials', `${what}: the generic refusal`);
}

/** One raw request line on the admin socket; resolves the parsed answers, one per line. */
function socketLines(payload, answers = 1) {
    return new Promise((resolve, reject) => {
        const s = net.connect(join(srv.dataDir, 'calderwood.sock'));
        let buf = '';
        s.on('data', (c) => {
            buf += c;
            const lines = buf.split('\n').filter(Boolean);
            if (buf.endsWith('\n') && lines.length >= answers) {
                s.destroy();
                resolve(lines.map((l) => JSON.parse(l)));
            }
        });
        s.on('error', reject);
        s.on('close', () => resolve(buf.split('\n').filter(Boolean).map((l) => JSON.parse(l))));
        s.write(payload);
    });
}

it('passwd ends the sessions (unauthorized within 1 s); the old password fails, the new one works', async () => {
    const a = await connect(ALICE);
    const r = await cliOk(['user', 'passwd', '--email', ALICE.email], 'alice-new-password\n');
    assert.match(r.stdout, /changed the password of alice@example\.org; ended 1 session/);
    await assertEndedWithin1s(a.ws, r.endedAt, 'passwd');
    await assertLoginRefused(ALICE.email, ALICE.password, 'old password');
    await login(srv, ALICE.email, 'alice-new-password');
});

it('disable closes the open WebSocket within 1 s and refuses logins; enable restores them', async () => {
    const b = await connect(BOB);
    const r = await cliOk(['user', 'disable', '--email', BOB.email]);
    assert.match(r.stdout, /disabled bob@example\.org; ended 1 session/);
    await assertEndedWithin1s(b.ws, r.endedAt, 'disable');
    await assertLoginRefused(BOB.email, BOB.password, 'disabled user');
    const list = await cliOk(['user', 'list', '--format', 'jsonl']);
    const bob = list.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((u) => u.email === BOB.email);
    assert.equal(bob.disabled, true, 'user list shows bob disabled');
    await cliOk(['user', 'enable', '--email', BOB.email]);
    const again = await connect(BOB);
    again.ws.close();
});

it('user add beside the server goes through it; the new user logs in; session list and end (by session, by user)', async () => {
    const r = await cliOk(['user', 'add', '--email', CAROL.email, '--first', CAROL.first, '--last', CAROL.last], `${CAROL.password}\n`);
    assert.match(r.stdout, /^registered carol@example\.org as user [0-9a-f-]{36}$/m);
    const one = await connect(CAROL);
    const two = await connect(CAROL);
    const list = await cliOk(['session', 'list', '--user', CAROL.email, '--format', 'jsonl']);
    const live = list.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(live.map((s) => s.session_uuid).sort(), [one.session_uuid, two.session_uuid].sort());
    assert.ok(live.every((s) => s.email === CAROL.email && s.user_uuid === one.user_uuid));
    const table = await cliOk(['session', 'list']);
    assert.match(table.stdout, new RegExp(`^${one.session_uuid}  carol@example\\.org `, 'm'));

    const r1 = await cliOk(['session', 'end', '--session', one.session_uuid]);
    assert.equal(r1.stdout, `ended session ${one.session_uuid}\n`);
    await assertEndedWithin1s(one.ws, r1.endedAt, 'session end --session');
    assert.ok(two.ws.isOpen, 'the other session stays');

    const r2 = await cliOk(['session', 'end', '--user', CAROL.email]);
    assert.equal(r2.stdout, `ended 1 session of ${CAROL.email}\n`);
    await assertEndedWithin1s(two.ws, r2.endedAt, 'session end --user');
    const after = await cliOk(['session', 'list', '--user', CAROL.email, '--format', 'jsonl']);
    assert.equal(after.stdout, '', 'no session of carol left');
});

it('the commands are events in the log, marked as coming through the socket', async () => {
    const events = exportEvents(srv.dataDir);
    for (const name of ['user-registered', 'user-password-changed', 'user-disabled', 'user-enabled']) {
        const ev = events.find((e) => e.name === name && e.meta?.admin?.via === 'socket');
        assert.ok(ev, `${name} through the socket in the log`);
        assert.equal(typeof ev.meta.admin.uid, 'number');
        assert.equal(ev.data.password_hash, undefined, `${name}: no hash exported`);
    }
    const ended = events.filter((e) => e.name === 'session-ended' && e.meta?.admin?.via === 'socket');
    assert.ok(ended.length >= 4, `every ended session is an event (${ended.length})`);
});

it('bad input from the CLI: unknown user, empty password; nothing is written', async () => {
    const before = exportEvents(srv.dataDir).length;
    const unknown = await cli(['user', 'disable', '--email', 'nobody@example.org']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'calderwood: no user with that email (unknown-user)\n');
    const empty = await cli(['user', 'passwd', '--email', ALICE.email], '\n');
    assert.equal(empty.code, 1);
    assert.equal(empty.stderr, 'calderwood: password must be at least 8 bytes\n');
    assert.equal(exportEvents(srv.dataDir).length, before, 'refusals write nothing');
});

it('bad input on the socket: each line gets a clear refusal, a hostile one ends the connection', async () => {
    const [notJson, noData, internal, unknown] = await socketLines(
        'not json\n{"command":"disable-user"}\n{"command":"start-session","data":{}}\n{"command":"disable-user","data":{"email":"nobody@example.org"}}\n',
        4,
    );
    assert.equal(notJson.ok, false);
    assert.equal(notJson.code, 'malformed');
    assert.match(notJson.message, /^not JSON/);
    assert.equal(noData.code, 'malformed');
    assert.equal(internal.code, 'unknown-command', 'only the administration commands are taken');
    assert.equal(unknown.code, 'unknown-user');
    assert.match(unknown.command_uuid, /^[0-9a-f-]{36}$/, 'a rejected command was queued');
    const [big] = await socketLines(`{"command":"${'x'.repeat(20000)}"}\n`);
    assert.equal(big.code, 'too-large');
});
