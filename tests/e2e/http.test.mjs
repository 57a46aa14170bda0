// http.test.mjs - the HTTP endpoint table of PROTOCOL.md: every row's verb,
// status and content type; 404 and 405 for the rest; /health and /metrics.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { startServer, guard } from './lib/server.mjs';
import { request, loginAs, WsClient, newClientId } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };

let srv;
let cookie;
before(async () => {
    srv = await startServer({ users: [ALICE] });
    cookie = (await loginAs(srv, ALICE.email)).cookie;
});
after(() => srv?.stop());

const it = (name, fn) => test(name, guard(() => srv, fn));

function mediaType(res) {
    return String(res.headers['content-type'] || '')
        .split(';')[0]
        .trim()
        .toLowerCase();
}

function assertNotFound(res, what) {
    assert.equal(res.status, 404, `${what}: status ${res.status} ${res.text.slice(0, 200)}`);
    assert.equal(mediaType(res), 'application/json', `${what}: content type`);
    const body = res.json();
    assert.equal(body?.error?.code, 'not-found', `${what}: ${res.text}`);
    assert.equal(typeof body.error.message, 'string', `${what}: error.message is a string`);
}

function isRedirect(status) {
    return status === 301 || status === 302 || status === 303 || status === 307;
}

/** The path of a Location header (absolute or relative). */
function locationPath(res) {
    const loc = res.headers.location;
    assert.ok(loc, 'redirect has a Location header');
    return new URL(loc, srv.url).pathname + new URL(loc, srv.url).search;
}

/** One asset path the console page refers to under /static/. */
async function someAsset() {
    const res = await request(srv, 'GET', '/console', { cookie });
    const m = /(?:src|href)\s*=\s*["']([^"']*\/static\/[^"']+)["']/i.exec(res.text);
    assert.ok(m, `the console page refers to an asset under /static/: ${res.text.slice(0, 400)}`);
    return new URL(m[1], `${srv.url}/console`).pathname;
}

it('GET /health answers 200 {"status":"ok"} as JSON', async () => {
    const res = await request(srv, 'GET', '/health');
    assert.equal(res.status, 200);
    assert.equal(mediaType(res), 'application/json');
    const body = res.json();
    assert.equal(body.status, 'ok');
});

/** Parses Prometheus text: { types: Map(name -> type), samples: Map("name{labels}" -> number) }. */
function parseMetrics(text) {
    const types = new Map();
    const samples = new Map();
    for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        let m;
        if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
            assert.ok(!types.has(m[1]), `one TYPE line per family: ${m[1]}`);
            types.set(m[1], m[2]);
            continue;
        }
        if (line.startsWith('#')) {
            assert.match(line, /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|.*)$/, `comment line: ${line}`);
            continue;
        }
        m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$/.exec(line);
        assert.ok(m, `sample line is well formed: ${JSON.stringify(line)}`);
        const key = m[1] + (m[2] || '');
        assert.ok(!samples.has(key), `sample ${key} appears once`);
        samples.set(key, Number(m[3]));
        const family = m[1].replace(/_(bucket|sum|count)$/, '');
        assert.ok(types.has(m[1]) || types.has(family), `sample ${m[1]} follows its TYPE line`);
    }
    return { types, samples };
}

async function metrics() {
    const res = await request(srv, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.equal(mediaType(res), 'text/plain');
    assert.match(String(res.headers['content-type']), /version=0\.0\.4/, 'Prometheus text format version');
    return parseMetrics(res.text);
}

it('GET /metrics answers Prometheus text exposition format with the server\'s metric families', async () => {
    const before = await metrics();
    const expected = {
        calderwood_connections: 'gauge',
        calderwood_connections_total: 'counter',
        calderwood_connections_closed_slow_total: 'counter',
        calderwood_http_requests_total: 'counter',
        calderwood_commands_total: 'counter',
        calderwood_command_queue_depth: 'gauge',
        calderwood_command_queue_capacity: 'gauge',
        calderwood_messages_received_total: 'counter',
        calderwood_updates_sent_total: 'counter',
        calderwood_logins_total: 'counter',
        calderwood_queries_total: 'counter',
        calderwood_batches_total: 'counter',
        calderwood_commit_seconds: 'histogram',
    };
    for (const [name, type] of Object.entries(expected)) {
        assert.equal(before.types.get(name), type, `family ${name} of type ${type}`);
    }
    assert.equal(before.samples.get('calderwood_command_queue_capacity'), 65536, 'the default queue capacity');
    assert.ok(before.samples.get('calderwood_logins_total{result="ok"}') >= 1, 'the login of before() is counted');

    // Activity moves the counters.
    const ws = await WsClient.connect(srv, { cookie });
    const cid = newClientId();
    await ws.run(cid, 1, 'visit-page', { url: 'https://example.org/metrics-test' });
    const during = await metrics();
    assert.ok(during.samples.get('calderwood_connections') >= 1, 'the open connection is counted');
    await ws.close();
    const after = (await metrics()).samples;
    const b = before.samples;
    const grew = (k) => assert.ok(after.get(k) > b.get(k), `${k} grew: ${b.get(k)} -> ${after.get(k)}`);
    grew('calderwood_connections_total');
    grew('calderwood_commands_total{outcome="acked"}');
    grew('calderwood_commands_total{outcome="processed"}');
    grew('calderwood_messages_received_total');
    grew('calderwood_updates_sent_total');
    grew('calderwood_http_requests_total');
    grew('calderwood_commit_seconds_count');
    // The histogram is cumulative and ends with +Inf == count.
    const buckets = [...after.entries()].filter(([k]) => k.startsWith('calderwood_commit_seconds_bucket'));
    assert.ok(buckets.length >= 2);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'cumulative buckets');
    assert.equal(after.get('calderwood_commit_seconds_bucket{le="+Inf"}'), after.get('calderwood_commit_seconds_count'));
});

it('unknown paths answer 404 with {"error":{"code":"not-found"}}', async () => {
    for (const [method, path] of [
        ['GET', '/nope'],
        ['GET', '/'],
        ['POST', '/nope'],
        ['GET', '/health/extra'],
        ['GET', '/querys'],
        ['DELETE', '/api/v1/things'],
        ['GET', '/static/no-such-asset.js'],
    ]) {
        const res = await request(srv, method, path, { cookie });
        if (path === '/' && isRedirect(res.status)) continue; // a root that redirects to the console is fine
        assertNotFound(res, `${method} ${path}`);
    }
});

it('a known path with the wrong verb answers 405 with an Allow header', async () => {
    const asset = await someAsset();
    const table = [
        ['POST', '/health', ['GET']],
        ['DELETE', '/health', ['GET']],
        ['POST', '/metrics', ['GET']],
        ['GET', '/query', ['POST']],
        ['PUT', '/query', ['POST']],
        ['POST', '/ws', ['GET']],
        ['PUT', '/login', ['GET', 'POST']],
        ['DELETE', '/logout', ['GET', 'POST']],
        ['POST', '/console', ['GET']],
        ['POST', asset, ['GET']],
    ];
    // Every row is checked; the failures are reported together.
    const wrong = [];
    for (const [method, path, allowed] of table) {
        const res = await request(srv, method, path, { cookie, body: method === 'GET' ? undefined : '' });
        const allow = String(res.headers.allow || '');
        const verbs = allow.split(',').map((v) => v.trim().toUpperCase());
        if (res.status !== 405) wrong.push(`${method} ${path}: status ${res.status}, expected 405`);
        else if (!allow) wrong.push(`${method} ${path}: no Allow header`);
        else if (!allowed.every((v) => verbs.includes(v)) || verbs.includes(method)) {
            wrong.push(`${method} ${path}: Allow "${allow}", expected ${allowed.join(', ')}`);
        }
    }
    assert.deepEqual(wrong, [], wrong.join('; '));
});

it('GET /login without a session serves the HTML login form', async () => {
    const res = await request(srv, 'GET', '/login');
    assert.equal(res.status, 200);
    assert.equal(mediaType(res), 'text/html');
    assert.match(res.text, /<form[^>]*method\s*=\s*["']?post/i, 'a POST form');
    assert.match(res.text, /<input[^>]*name\s*=\s*["']?email/i, 'an email field');
    assert.match(res.text, /<input[^>]*name\s*=\s*["']?password/i, 'a password field');
    assert.match(res.text, /type\s*=\s*["']?password/i, 'the password field hides its text');
});

it('GET /login with a session redirects to /console', async () => {
    const res = await request(srv, 'GET', '/login', { cookie });
    assert.ok(isRedirect(res.status), `redirect, got ${res.status}`);
    assert.equal(locationPath(res), '/console');
});

it('GET /console without a session redirects to /login', async () => {
    const res = await request(srv, 'GET', '/console');
    assert.ok(isRedirect(res.status), `redirect, got ${res.status}`);
    assert.match(locationPath(res), /^\/login(\?|$)/);
});

it('GET /console with a session serves the console page', async () => {
    const res = await request(srv, 'GET', '/console', { cookie });
    assert.equal(res.status, 200);
    assert.equal(mediaType(res), 'text/html');
    assert.match(res.text, /<html/i);
});

it('GET /static/... serves the console assets without a session, with a fitting content type', async () => {
    const asset = await someAsset();
    const res = await request(srv, 'GET', asset);
    assert.equal(res.status, 200, `${asset}: ${res.status}`);
    assert.ok(res.body.length > 0, 'asset is not empty');
    const type = mediaType(res);
    if (asset.endsWith('.js') || asset.endsWith('.mjs')) assert.match(type, /^(text|application)\/javascript$/);
    else if (asset.endsWith('.css')) assert.equal(type, 'text/css');
    else if (asset.endsWith('.svg')) assert.equal(type, 'image/svg+xml');
    else assert.ok(type, 'has a content type');
});

it('/static/ does not serve files outside its folder (path traversal)', async () => {
    const key = readFileSync(join(srv.dataDir, 'secret.key'));
    for (const path of [
        '/static/../secret.key',
        '/static/%2e%2e/secret.key',
        '/static/..%2fsecret.key',
        '/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
        '/static/../../../../../../etc/passwd',
        '/static/....//....//etc/passwd',
        `/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..${srv.dataDir.replace(/\//g, '%2f')}%2fsecret.key`,
    ]) {
        const res = await request(srv, 'GET', path);
        assert.notEqual(res.status, 200, `${path} must not be served (got ${res.status})`);
        assert.ok(!res.body.includes(key), `${path}: body holds the secret key`);
        assert.ok(!/root:.*:0:0:/.test(res.text), `${path}: body holds /etc/passwd`);
    }
});

it('GET /ws without an Upgrade header is refused with a client error', async () => {
    const res = await request(srv, 'GET', '/ws', { cookie });
    assert.ok(res.status === 400 || res.status === 426, `400 or 426 Upgrade Required, got ${res.status}`);
});

it('every JSON error answer carries Content-Type application/json', async () => {
    const a = await request(srv, 'GET', '/does-not-exist');
    assert.equal(mediaType(a), 'application/json');
    const b = await request(srv, 'POST', '/query', { body: { name: 'describe' } });
    assert.equal(b.status, 401);
    assert.equal(mediaType(b), 'application/json');
});

/** Sends raw bytes on a new TCP connection; resolves everything the server sent until it closed. */
function rawExchange(server, bytes, timeoutMs = 20_000) {
    return new Promise((resolveP, reject) => {
        const chunks = [];
        const sock = net.connect(server.port, server.host, () => sock.write(bytes));
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`the server did not close within ${timeoutMs} ms: ${Buffer.concat(chunks).toString().slice(0, 300)}`));
        }, timeoutMs);
        sock.on('data', (c) => chunks.push(c));
        sock.on('error', () => {});
        sock.on('close', () => {
            clearTimeout(timer);
            resolveP(Buffer.concat(chunks).toString('latin1'));
        });
    });
}

// Responses follow each other directly (a body has no line end), so status lines are found anywhere.
const statusLines = (text) => text.match(/HTTP\/1\.1 \d{3}/g) || [];

it('request headers over the limit (8 KiB by default) answer 431 and end the connection', async () => {
    const big = `GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${'f'.repeat(9000)}\r\n\r\n`;
    const text = await rawExchange(srv, big);
    assert.deepEqual(statusLines(text), ['HTTP/1.1 431'], text.slice(0, 300));
    assert.match(text, /"code":"too-large"/);
    assert.match(text, /\r\nconnection: close\r\n/i);
    // Just under the limit is served.
    const res = await request(srv, 'GET', '/health', { headers: { 'X-Filler': 'f'.repeat(7000) } });
    assert.equal(res.status, 200);
});

it('a head that never ends is not read past the limit: 431, whatever follows', async () => {
    const text = await rawExchange(srv, `GET /health HTTP/1.1\r\nX-Endless: ${'e'.repeat(64 * 1024)}`);
    assert.deepEqual(statusLines(text), ['HTTP/1.1 431']);
});

it('keep-alive: pipelined requests on one connection are answered in order', async () => {
    const text = await rawExchange(
        srv,
        'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /no-such-path HTTP/1.1\r\nHost: x\r\n\r\n' +
            'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statusLines(text), ['HTTP/1.1 200', 'HTTP/1.1 404', 'HTTP/1.1 200']);
});

it('pipelined after a request answered later (a login), the next waits its turn', async () => {
    const body = JSON.stringify({ email: ALICE.email, password: ALICE.password });
    const text = await rawExchange(
        srv,
        `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
            'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statusLines(text), ['HTTP/1.1 200', 'HTTP/1.1 200'], text.slice(0, 600));
    const first = text.slice(0, text.indexOf('HTTP/1.1', 1));
    assert.match(first, /set-cookie: cw_session=/i, 'the login answered first');
});

it('HTTP/1.0 without keep-alive gets one answer and the connection ends', async () => {
    const text = await rawExchange(srv, 'GET /health HTTP/1.0\r\n\r\nGET /health HTTP/1.0\r\n\r\n');
    assert.deepEqual(statusLines(text), ['HTTP/1.1 200']);
});

it('a malformed request line answers 400 and ends the connection', async () => {
    const text = await rawExchange(srv, 'GARBAGE\r\n\r\n');
    assert.deepEqual(statusLines(text), ['HTTP/1.1 400']);
    const chunked = await rawExchange(srv, 'POST /query HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.deepEqual(statusLines(chunked), ['HTTP/1.1 411']);
});

it('Expect: 100-continue gets a 100 Continue before the body is sent', async () => {
    const body = JSON.stringify({ name: 'describe' });
    const sock = net.connect(srv.port, srv.host);
    await new Promise((res, rej) => {
        sock.once('connect', res);
        sock.once('error', rej);
    });
    let got = '';
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.write(`POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
    const deadline = Date.now() + 5000;
    while (!got.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'only the interim answer before the body');
    sock.end(body);
    await new Promise((r) => sock.on('close', r));
    assert.deepEqual(statusLines(got), ['HTTP/1.1 100', 'HTTP/1.1 401'], got.slice(0, 200));
});

it('HEAD answers as GET would, without the body; HEAD /logout changes nothing (405)', async () => {
    const get = await request(srv, 'GET', '/static/calderwood.js');
    const head = await request(srv, 'HEAD', '/static/calderwood.js');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(get.body.length));
    assert.equal(head.body.length, 0, 'no body');
    const health = await request(srv, 'HEAD', '/health');
    assert.equal(health.status, 200);
    const out = await request(srv, 'HEAD', '/logout', { cookie });
    assert.equal(out.status, 405);
    assert.equal((await request(srv, 'GET', '/console', { cookie })).status, 200, 'still logged in');
});

/** Reads one whole response (head, then Content-Length bytes) from a socket's data so far. */
async function readResponse(state, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const text = state.buf.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (end >= 0) {
            const m = /content-length: *(\d+)/i.exec(text.slice(0, end));
            const total = end + 4 + (m ? Number(m[1]) : 0);
            if (state.buf.length >= total) {
                state.buf = state.buf.subarray(total);
                return text.slice(0, total);
            }
        }
        assert.ok(Date.now() < deadline, `no whole response: ${text.slice(0, 200)}`);
        await new Promise((r) => setTimeout(r, 10));
    }
}

it('login then logout on one keep-alive connection: the logout clears the cookie, nothing of the login carries over', async () => {
    const sock = net.connect(srv.port, srv.host);
    await new Promise((res, rej) => {
        sock.once('connect', res);
        sock.once('error', rej);
    });
    const state = { buf: Buffer.alloc(0) };
    sock.on('data', (d) => (state.buf = Buffer.concat([state.buf, d])));
    let value;
    try {
        const body = JSON.stringify({ email: ALICE.email, password: ALICE.password });
        sock.write(`POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        const login = await readResponse(state);
        assert.match(login, /^HTTP\/1\.1 200 /);
        value = /set-cookie: cw_session=([^;\r\n]+)/i.exec(login)?.[1];
        assert.ok(value, 'a session cookie');
        sock.write(`POST /logout HTTP/1.1\r\nHost: x\r\nCookie: cw_session=${value}\r\nContent-Length: 0\r\n\r\n`);
        const logout = await readResponse(state);
        assert.match(logout, /^HTTP\/1\.1 303 /);
        assert.match(logout, /\r\nlocation: \/login\r\n/i);
        assert.match(logout, /set-cookie: cw_session=; [^\r\n]*max-age=0/i, logout);
    } finally {
        sock.destroy();
    }
    const res = await request(srv, 'GET', '/console', { cookie: `cw_session=${value}` });
    assert.equal(res.status, 303, 'the ended session no longer opens the console');
});
