// auth.test.mjs - login (form and JSON), the cw_session cookie, logout,
// refusals without a valid session, Origin checks on /ws, the login rate
// limit, and that passwords never leak into the log or the event log.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import crypto from 'node:crypto';
import { startServer, guard, exportEvents } from './lib/server.mjs';
import {
    request,
    login,
    loginAs,
    query,
    WsClient,
    RawWs,
    UpgradeRefused,
    sessionCookieOf,
    parseSetCookies,
    newClientId,
    UUID_RE,
} from './lib/client.mjs';
import { assertUnauthorized, assertUuid, assertWsError } from './lib/expect.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };
const BOB = { email: 'bob@example.org', password: 'bob-password-22', first: 'Bob', last: 'Builder' };
const ALLOWED_ORIGIN = 'http://app.example.test';

let srv;
before(async () => {
    srv = await startServer({ users: [ALICE, BOB], args: ['--allowed-origin', ALLOWED_ORIGIN] });
});
after(() => srv?.stop());

const it = (name, fn) => test(name, guard(() => srv, fn));

function form(fields) {
    return new URLSearchParams(fields).toString();
}

function formLogin(server, email, password, opts = {}) {
    return request(server, 'POST', '/login', {
        body: form({ email, password }),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        ...opts,
    });
}

function assertSessionCookieFlags(c) {
    assert.ok(c, 'Set-Cookie cw_session present');
    assert.ok(c.value.length > 0, 'cookie has a value');
    assert.equal(c.attrs.httponly, true, `HttpOnly: ${c.raw}`);
    assert.equal(String(c.attrs.samesite).toLowerCase(), 'lax', `SameSite=Lax: ${c.raw}`);
    assert.equal(c.attrs.path, '/', `Path=/: ${c.raw}`);
    assert.ok(!('secure' in c.attrs), `no Secure flag over plain HTTP: ${c.raw}`);
}

/** True when a Set-Cookie list holds a usable (non-empty, not expired) cw_session. */
function setsLiveSession(res) {
    const c = sessionCookieOf(res);
    if (!c || !c.value) return false;
    if (c.attrs['max-age'] !== undefined && Number(c.attrs['max-age']) <= 0) return false;
    if (c.attrs.expires && Date.parse(c.attrs.expires) < Date.now()) return false;
    return true;
}

/** Asserts that a cookie is refused by /query (401) and by /ws before the upgrade (401). */
async function assertRefused(cookie, what) {
    const q = await query(srv, cookie, 'describe');
    assertUnauthorized(q.status, q.res.text, `${what} /query`);
    await assert.rejects(WsClient.connect(srv, { cookie }), (e) => {
        assert.ok(e instanceof UpgradeRefused, `${what} /ws: ${e.message}`);
        assertUnauthorized(e.status, e.text, `${what} /ws`);
        return true;
    });
}

/** Asserts that a cookie opens /ws and runs queries. */
async function assertAccepted(cookie, what) {
    const q = await query(srv, cookie, 'describe');
    assert.equal(q.status, 200, `${what} /query: ${q.res.text.slice(0, 200)}`);
    const ws = await WsClient.connect(srv, { cookie });
    await ws.roundTrip();
    await ws.close();
}

// ------------------------------------------------------------ form login

it('form login answers 303 to /console with the cw_session cookie', async () => {
    const res = await formLogin(srv, ALICE.email, ALICE.password);
    assert.equal(res.status, 303, res.text.slice(0, 200));
    assert.equal(new URL(res.headers.location, srv.url).pathname, '/console');
    const c = sessionCookieOf(res);
    assertSessionCookieFlags(c);
    const page = await request(srv, 'GET', '/console', { cookie: `cw_session=${c.value}` });
    assert.equal(page.status, 200, 'the new cookie opens the console');
});

it('form login with a wrong password or an unknown email answers 303 to /login?error=1', async () => {
    for (const [email, password] of [
        [ALICE.email, 'wrong-password'],
        ['nobody@example.org', ALICE.password],
        ['', ''],
    ]) {
        const res = await formLogin(srv, email, password);
        assert.equal(res.status, 303, `${email}: ${res.status}`);
        const loc = new URL(res.headers.location, srv.url);
        assert.equal(loc.pathname + loc.search, '/login?error=1', `${email}: Location ${res.headers.location}`);
        assert.ok(!setsLiveSession(res), `${email}: no session cookie on failure`);
    }
});

it('form login trims and lower-cases the email', async () => {
    const res = await formLogin(srv, `  ${ALICE.email.toUpperCase()}\t `, ALICE.password);
    assert.equal(res.status, 303);
    assert.equal(new URL(res.headers.location, srv.url).pathname, '/console');
    assert.ok(setsLiveSession(res));
});

// ------------------------------------------------------------ JSON login

it('JSON login answers 200 {user_uuid, session_uuid} with the cookie', async () => {
    const res = await request(srv, 'POST', '/login', { body: { email: ALICE.email, password: ALICE.password } });
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = res.json();
    assertUuid(body.user_uuid, 'user_uuid');
    assertUuid(body.session_uuid, 'session_uuid');
    assert.equal(body.user_uuid, srv.user(ALICE.email).user_uuid, 'the user registered with that email');
    assertSessionCookieFlags(sessionCookieOf(res));
    const again = await login(srv, ALICE.email, ALICE.password);
    assert.notEqual(again.session_uuid, body.session_uuid, 'each login starts its own session');
    assert.notEqual(again.cookieValue, sessionCookieOf(res).value);
});

it('JSON login accepts a charset parameter on the content type', async () => {
    const res = await request(srv, 'POST', '/login', {
        body: JSON.stringify({ email: BOB.email, password: BOB.password }),
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().user_uuid, srv.user(BOB.email).user_uuid);
});

it('JSON login failure is 401 invalid-credentials, identical for a wrong password and an unknown email', async () => {
    const wrong = await request(srv, 'POST', '/login', { body: { email: ALICE.email, password: 'not-her-password' } });
    const unknown = await request(srv, 'POST', '/login', { body: { email: 'nobody@example.org', password: 'not-her-password' } });
    for (const res of [wrong, unknown]) {
        assert.equal(res.status, 401);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        const body = res.json();
        assert.equal(body?.error?.code, 'invalid-credentials', res.text);
        assert.equal(typeof body.error.message, 'string');
        assert.ok(!setsLiveSession(res), 'no session cookie on failure');
    }
    assert.equal(wrong.text, unknown.text, 'the same body: failure never says which was wrong');
    assert.equal(wrong.headers['content-type'], unknown.headers['content-type']);
    assert.deepEqual(
        parseSetCookies(wrong.headers).map((c) => c.name),
        parseSetCookies(unknown.headers).map((c) => c.name),
    );
});

it('JSON login trims and lower-cases the email', async () => {
    for (const email of [`  ${ALICE.email.toUpperCase()}  `, 'Alice@Example.Org', `\t${ALICE.email}\n`]) {
        const l = await login(srv, email, ALICE.password, { expectOk: false });
        assert.equal(l.status, 200, `${JSON.stringify(email)}: ${l.res.text}`);
        assert.equal(l.user_uuid, srv.user(ALICE.email).user_uuid);
    }
});

it('the password is compared exactly (no trimming, case-sensitive)', async () => {
    for (const password of [` ${ALICE.password}`, ALICE.password.toUpperCase(), ALICE.password.slice(0, -1)]) {
        const l = await login(srv, ALICE.email, password, { expectOk: false });
        assert.equal(l.status, 401, `${JSON.stringify(password)} must not log in`);
    }
});

it('a login body that is not valid JSON or lacks fields starts no session', async () => {
    for (const body of ['{"email":', '[]', '{"email":"alice@example.org"}', '{"password":"alice-password-1"}', '{"email":1,"password":2}']) {
        const res = await request(srv, 'POST', '/login', { body, headers: { 'Content-Type': 'application/json' } });
        assert.ok(res.status >= 400 && res.status < 500, `${body}: 4xx, got ${res.status}`);
        assert.ok(!setsLiveSession(res), `${body}: no session`);
    }
});

// ------------------------------------------------------ refused sessions

it('/query and /ws without a cookie answer 401 unauthorized (/ws before the upgrade)', async () => {
    await assertRefused(undefined, 'no cookie');
    // The raw client sees a plain HTTP answer, not 101.
    await assert.rejects(RawWs.connect(srv, {}), (e) => e instanceof UpgradeRefused && e.status === 401);
});

it('tampered, truncated, garbage and empty cookies are refused with 401', async () => {
    const good = (await loginAs(srv, ALICE.email)).cookieValue;
    const mid = Math.floor(good.length / 2);
    const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const variants = {
        tampered: flip(good, mid),
        'tampered first char': flip(good, 0),
        truncated: good.slice(0, -4),
        'half of it': good.slice(0, mid),
        'extended': `${good}AAAA`,
        garbage: 'not-a-session',
        'a bare uuid': crypto.randomUUID(),
        empty: '',
    };
    for (const [what, value] of Object.entries(variants)) {
        await assertRefused(`cw_session=${value}`, what);
    }
    await assertRefused(`other=${good}`, 'the value under another cookie name');
    await assertAccepted(`cw_session=${good}`, 'the untampered cookie');
});

test('a cookie sealed under another secret key is refused; the same key keeps sessions across a restart', async (t) => {
    const U = { email: 'carol@example.org', password: 'carol-password-3', first: 'Carol', last: 'Kaye' };
    let s = await startServer({ users: [U] });
    const dataDir = s.dataDir;
    const otherKey = `${dataDir}-other.key`;
    const servers = [s];
    try {
        await guard(() => servers, async () => {
            const l = await login(s, U.email, U.password);
            const cookie = l.cookie;
            assert.equal((await query(s, cookie, 'describe')).status, 200);

            await s.stop({ keepData: true });
            s = await startServer({ dataDir, knownUsers: [s.user(U.email)] });
            servers.push(s);
            assert.equal((await query(s, cookie, 'describe')).status, 200, 'same key, same store: the session lives on');

            await s.stop({ keepData: true });
            writeFileSync(otherKey, crypto.randomBytes(32), { mode: 0o600 });
            s = await startServer({ dataDir, knownUsers: [s.user(U.email)], args: ['--secret-key-file', otherKey] });
            servers.push(s);
            const q = await query(s, cookie, 'describe');
            assertUnauthorized(q.status, q.res.text, 'cookie from another key, /query');
            await assert.rejects(WsClient.connect(s, { cookie }), (e) => e instanceof UpgradeRefused && e.status === 401);
            const fresh = await login(s, U.email, U.password);
            assert.equal((await query(s, fresh.cookie, 'describe')).status, 200, 'a new login works under the new key');
        })(t);
    } finally {
        await s.stop({ keepData: true });
        if (!servers.some((x) => x.failed) || process.env.CW_TEST_KEEP !== '1') {
            rmSync(dataDir, { recursive: true, force: true });
            rmSync(s.logPath, { force: true });
            rmSync(otherKey, { force: true });
        }
    }
});

// ---------------------------------------------------------------- logout

for (const verb of ['POST', 'GET']) {
    it(`${verb} /logout ends the session: cookie cleared, old cookie refused, open WebSocket told or closed`, async () => {
        const l = await loginAs(srv, BOB.email);
        const other = await loginAs(srv, BOB.email); // a second session of the same user
        const ws = await WsClient.connect(srv, { cookie: l.cookie });
        await ws.roundTrip();

        const res = await request(srv, verb, '/logout', { cookie: l.cookie, body: verb === 'POST' ? '' : undefined });
        assert.ok([200, 204, 302, 303].includes(res.status), `logout status ${res.status}`);
        const cleared = sessionCookieOf(res);
        assert.ok(cleared, 'logout sends Set-Cookie cw_session');
        const expired =
            cleared.value === '' ||
            Number(cleared.attrs['max-age']) <= 0 ||
            (cleared.attrs.expires && Date.parse(cleared.attrs.expires) < Date.now());
        assert.ok(expired, `logout clears the cookie: ${cleared.raw}`);

        // The open connection learns that its session ended.
        const got = await Promise.race([
            ws.next((m) => m[0] === 'error', 20_000, 'an unauthorized error').then((m) => ({ msg: m })),
            ws.closed.then((c) => ({ close: c })),
        ]);
        if (got.msg) {
            assertWsError(got.msg, null, null, 'unauthorized');
            // Still open? Then it must not take commands for the ended session.
            if (ws.isOpen) {
                const cid = newClientId();
                ws.cmd(cid, 1, 'visit-page', { url: 'https://example.org/after-logout' });
                // Either an answer, or the close (which also fails the wait for an answer).
                const after = await ws.reply(cid, 1).then(
                    (m) => ({ msg: m }),
                    () => ({ close: ws.closeInfo }),
                );
                if (after.msg) assertWsError(after.msg, cid, 1, 'unauthorized');
                else assert.ok(after.close, 'closed instead of answering');
            }
        } else assert.ok(got.close, 'closed');

        await assertRefused(l.cookie, 'cookie after logout');
        await assertAccepted(other.cookie, 'another session of the same user');
        ws.terminate();
    });
}

it('logins and logouts are events in the event log (session-started, session-ended)', async () => {
    const l = await loginAs(srv, ALICE.email);
    await request(srv, 'POST', '/logout', { cookie: l.cookie, body: '' });
    // The log is written by the server's processor: wait until the export shows both.
    let started;
    let ended;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
        const events = exportEvents(srv.dataDir);
        started = events.find((e) => e.name === 'session-started' && e.data?.session_uuid === l.session_uuid);
        ended = events.find((e) => e.name === 'session-ended' && e.data?.session_uuid === l.session_uuid);
        if (started && ended) break;
        await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(started, `session-started for ${l.session_uuid} in the log`);
    assert.ok(ended, `session-ended for ${l.session_uuid} in the log`);
    assert.ok(ended.position > started.position);
    assert.equal(started.data.user_uuid ?? started.user_uuid, l.user_uuid, 'the session belongs to the user');
});

// ---------------------------------------------------------------- Origin

it('/ws refuses (403) an Origin that is neither its own nor an allowed one', async () => {
    const { cookie } = await loginAs(srv, ALICE.email);
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${srv.port + 1}`, `https://127.0.0.1:${srv.port}`, `${ALLOWED_ORIGIN}.evil.example`]) {
        await assert.rejects(
            WsClient.connect(srv, { cookie, origin }),
            (e) => {
                assert.ok(e instanceof UpgradeRefused, `${origin}: ${e.message}`);
                assert.equal(e.status, 403, `${origin}: status`);
                return true;
            },
            `${origin} must be refused`,
        );
    }
});

it('/ws accepts its own Origin, a configured allowed Origin, and no Origin', async () => {
    const { cookie } = await loginAs(srv, ALICE.email);
    for (const origin of [srv.origin, ALLOWED_ORIGIN, undefined]) {
        const ws = await WsClient.connect(srv, { cookie, origin });
        const pong = await ws.roundTrip();
        assert.equal(pong[0], 'pong', `${origin}: connection works`);
        await ws.close();
    }
});

// ------------------------------------------------------ secrets stay out

it('no password appears in the server log, the event log, or a query result', async () => {
    // A user registered over the WebSocket too, so the command path is covered.
    const DAVE = { email: 'dave@example.org', password: 'dave-secret-pass-44', first_name: 'Dave', last_name: 'Grohl' };
    const ws = await WsClient.connect(srv, { cookie: (await loginAs(srv, ALICE.email)).cookie });
    const cid = newClientId();
    const r = await ws.run(cid, 1, 'register-user', DAVE);
    assert.ok(!('password' in r.event.data) && !('password_hash' in r.event.data), 'no password in the update');
    await ws.close();
    const l = await login(srv, DAVE.email, DAVE.password);
    assert.match(l.user_uuid, UUID_RE, 'the registered user can log in');
    await login(srv, DAVE.email, 'a-wrong-password-55', { expectOk: false });

    const secrets = [ALICE.password, BOB.password, DAVE.password, 'a-wrong-password-55', '$argon2'];
    const logText = srv.log();
    const events = JSON.stringify(exportEvents(srv.dataDir));
    const users = JSON.stringify((await query(srv, l.cookie, 'list-users')).body);
    const evq = JSON.stringify((await query(srv, l.cookie, 'events', { limit: 1000 })).body);
    for (const s of secrets) {
        assert.ok(!logText.includes(s), `server log holds ${s}`);
        assert.ok(!events.includes(s), `event export holds ${s}`);
        assert.ok(!users.includes(s), `list-users holds ${s}`);
        assert.ok(!evq.includes(s), `events query holds ${s}`);
    }
});

// ------------------------------------------------------------ rate limit

describe('login rate limit', () => {
    let rl;
    before(async () => {
        rl = await startServer({ users: [ALICE], args: ['--login-burst', '3', '--login-rate', '1'] });
    });
    after(() => rl?.stop());

    test(
        'answers 429 once a remote address used its burst, and limits per address',
        guard(
            () => rl,
            async () => {
                const statuses = [];
                for (let i = 0; i < 3; i++) {
                    statuses.push((await login(rl, ALICE.email, 'wrong-password', { expectOk: false })).status);
                }
                assert.deepEqual(statuses, [401, 401, 401], 'the burst is allowed');
                const burst = await Promise.all(
                    Array.from({ length: 8 }, () => login(rl, ALICE.email, ALICE.password, { expectOk: false })),
                );
                const limited = burst.filter((l) => l.status === 429);
                assert.ok(limited.length >= 1, `some of 8 quick attempts answered 429: ${burst.map((l) => l.status)}`);
                for (const l of limited) assert.ok(!setsLiveSession(l.res), 'a refused attempt starts no session');
                assert.ok(
                    burst.every((l) => l.status === 429 || l.status === 200),
                    `only 200 or 429: ${burst.map((l) => l.status)}`,
                );
                // Another remote address has its own budget.
                const elsewhere = await login(rl, ALICE.email, ALICE.password, { expectOk: false, localAddress: '127.0.0.2' });
                assert.equal(elsewhere.status, 200, 'a different remote address is not limited');
            },
        ),
    );
});
