// tls.test.mjs - serving over TLS (--tls-cert/--tls-key): login over HTTPS
// sets a Secure cookie, and a WebSocket over wss:// carries commands, acks,
// updates and pings like the plain one. The certificate is made here with
// openssl, self-signed for 127.0.0.1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startServer, guard } from './lib/server.mjs';
import { parseSetCookies, newClientId, WsClient, buildFrame, parseFrame, OP } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };

let srv;
let certDir;
before(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'cw-e2e-tls-'));
    const made = spawnSync('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'),
    ]);
    assert.equal(made.status, 0, `openssl: ${made.stderr}`);
    srv = await startServer({
        users: [ALICE],
        tls: true,
        args: ['--tls-cert', join(certDir, 'cert.pem'), '--tls-key', join(certDir, 'key.pem')],
    });
});
after(() => {
    srv?.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
});

const it = (name, fn) => test(name, guard(() => srv, fn));

function httpsRequest(method, path, body) {
    return new Promise((resolveP, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = https.request(
            {
                host: srv.host,
                port: srv.port,
                method,
                path,
                agent: false,
                rejectUnauthorized: false,
                headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
            },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolveP({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
            },
        );
        req.on('error', reject);
        req.end(payload);
    });
}

async function loginCookie() {
    const res = await httpsRequest('POST', '/login', { email: ALICE.email, password: ALICE.password });
    assert.equal(res.status, 200, res.text);
    const c = parseSetCookies(res.headers).find((x) => x.name === 'cw_session');
    assert.ok(c, 'a cw_session cookie');
    return c;
}

it('GET /health over HTTPS answers 200', async () => {
    const res = await httpsRequest('GET', '/health');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).status, 'ok');
});

it('login over HTTPS sets a Secure, HttpOnly cookie', async () => {
    const c = await loginCookie();
    assert.ok('secure' in c.attrs, `Secure flag: ${c.raw}`);
    assert.ok('httponly' in c.attrs, `HttpOnly flag: ${c.raw}`);
});

it('a wss:// connection acks a command, delivers its update, and answers pings', async () => {
    const c = await loginCookie();
    const ws = new WebSocket(`wss://${srv.host}:${srv.port}/ws`, {
        headers: { Cookie: `cw_session=${c.value}`, Origin: srv.origin },
        rejectUnauthorized: false,
    });
    await new Promise((res, rej) => {
        ws.once('open', res);
        ws.once('error', rej);
    });
    const client = new WsClient(ws, 'tls');
    try {
        const cid = newClientId('tls');
        const outcome = await client.run(cid, 1, 'visit-page', { url: 'https://example.org/over-tls' });
        assert.equal(outcome.ack[0], 'cmd-ack');
        assert.equal(outcome.update[0], 'update');
        client.send(['ping', 'secure']);
        assert.deepEqual(await client.next((m) => m[0] === 'pong'), ['pong', 'secure']);
    } finally {
        client.close();
    }
});

it('an unmasked frame over TLS closes the connection with 1002', async () => {
    const c = await loginCookie();
    const sock = tls.connect({ host: srv.host, port: srv.port, rejectUnauthorized: false });
    await new Promise((res, rej) => {
        sock.once('secureConnect', res);
        sock.once('error', rej);
    });
    const key = Buffer.from('0123456789abcdef').toString('base64');
    sock.write(
        `GET /ws HTTP/1.1\r\nHost: ${srv.host}:${srv.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nCookie: cw_session=${c.value}\r\n\r\n`,
    );
    let got = Buffer.alloc(0);
    let upgraded;
    const switched = new Promise((res) => (upgraded = res));
    sock.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (got.includes('\r\n\r\n')) upgraded();
    });
    const ended = new Promise((res) => sock.on('close', res));
    const timer = setTimeout(() => sock.destroy(), 10_000);
    await switched;
    sock.write(buildFrame({ opcode: OP.TEXT, payload: '["ping",1]', mask: false }));
    await ended;
    clearTimeout(timer);
    const text = got.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 /);
    /* The login's own session-started update may come first: the login is
     * answered once its command is queued, before it commits. */
    const frames = serverFrames(got.subarray(got.indexOf('\r\n\r\n') + 4));
    const close = frames.find((f) => f.opcode === 0x8);
    assert.ok(close, `a close frame among ${frames.length}: ${frames.map((f) => f.opcode).join(',')}`);
    assert.ok(
        frames.every((f) => f === close || f.opcode === 0x1),
        'only updates before the close',
    );
    assert.equal(close.code, 1002);
});

/* Every whole frame in what a server sent. */
function serverFrames(buf) {
    const frames = [];
    for (let got; (got = parseFrame(buf)); buf = buf.subarray(got.used)) frames.push(got.frame);
    return frames;
}
