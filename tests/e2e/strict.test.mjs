// strict.test.mjs - protocol MUSTs a strict client checks, over raw TCP:
// the WebSocket handshake of RFC 6455 4.2.1 (Sec-WebSocket-Key the base64
// of exactly 16 bytes, sent once; HTTP/1.1 or higher) and the request
// framing of RFC 9112 (Host, no blank before a colon, one Content-Length).
// Each refusal is a 400 that ends the connection; each case has a control
// beside it that the server accepts, so a refusal is for the rule alone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startServer, guard } from './lib/server.mjs';
import { loginAs } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };

let srv;
let cookie;
before(async () => {
    srv = await startServer({ users: [ALICE] });
    cookie = (await loginAs(srv, ALICE.email)).cookie;
});
after(() => srv?.stop());

const it = (name, fn) => test(name, guard(() => srv, fn));

/**
 * Sends bytes on a new connection and resolves { status, text, ended }: the
 * status of the first answer, everything received, and whether the server
 * ended the connection. Resolves at the first answer's head when that is a
 * 101 (the connection stays open), else when the server closes.
 */
function exchange(bytes, timeoutMs = 20_000) {
    return new Promise((resolveP, reject) => {
        const chunks = [];
        const sock = net.connect(srv.port, srv.host, () => sock.write(bytes));
        const text = () => Buffer.concat(chunks).toString('latin1');
        const status = () => Number((/^HTTP\/1\.1 (\d{3})/.exec(text()) || [])[1] || 0);
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`no answer and no close within ${timeoutMs} ms: ${text().slice(0, 300)}`));
        }, timeoutMs);
        const done = (ended) => {
            clearTimeout(timer);
            sock.destroy();
            resolveP({ status: status(), text: text(), ended });
        };
        sock.on('data', (c) => {
            chunks.push(c);
            if (status() === 101 && text().includes('\r\n\r\n')) done(false);
        });
        sock.on('error', () => {});
        sock.on('close', () => done(true));
    });
}

const statusLines = (text) => text.match(/HTTP\/1\.1 \d{3}/g) || [];

/** A WebSocket upgrade request: the fields given replace or add to a valid handshake. */
function upgradeRequest({ version = '1.1', key = crypto.randomBytes(16).toString('base64'), extra = [] } = {}) {
    const lines = [
        `GET /ws HTTP/${version}`,
        `Host: ${srv.host}:${srv.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        ...(key === null ? [] : [`Sec-WebSocket-Key: ${key}`]),
        'Sec-WebSocket-Version: 13',
        `Cookie: ${cookie}`,
        ...extra,
    ];
    return `${lines.join('\r\n')}\r\n\r\n`;
}

async function expectRefused(bytes, what) {
    const r = await exchange(bytes);
    assert.equal(r.status, 400, `${what}: status ${r.status}, expected 400: ${r.text.slice(0, 300)}`);
    assert.match(r.text, /"code":"malformed"/, what);
    assert.ok(r.ended, `${what}: the connection ends`);
    assert.deepEqual(statusLines(r.text), ['HTTP/1.1 400'], `${what}: one answer only`);
}

// ------------------------------------------------ RFC 6455 4.2.1: the handshake

it('control: a handshake with a 16-byte key is upgraded (101)', async () => {
    const r = await exchange(upgradeRequest());
    assert.equal(r.status, 101, r.text.slice(0, 300));
});

const badKeys = [
    ['is not base64', '!!!!not*base64*at*all!!='],
    ['is the base64 of 15 bytes', crypto.randomBytes(15).toString('base64')],
    ['is the base64 of 17 bytes (24 characters, like a good key)', crypto.randomBytes(17).toString('base64')],
    ['is empty', ''],
    ['is base64 without its padding', crypto.randomBytes(16).toString('base64').replace(/=+$/, '')],
];
for (const [what, key] of badKeys) {
    it(`Sec-WebSocket-Key that ${what}: 400, never 101`, async () => {
        await expectRefused(upgradeRequest({ key }), `key ${JSON.stringify(key)}`);
    });
}

it('Sec-WebSocket-Key sent twice (each valid alone): 400, never 101', async () => {
    const second = `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}`;
    await expectRefused(upgradeRequest({ extra: [second] }), 'two keys');
});

it('no Sec-WebSocket-Key at all: 400', async () => {
    await expectRefused(upgradeRequest({ key: null }), 'no key');
});

it('an HTTP/1.0 upgrade request is not upgraded: 400', async () => {
    await expectRefused(upgradeRequest({ version: '1.0' }), 'HTTP/1.0 upgrade');
});

// --------------------------------------------------- RFC 9112: request framing

it('RFC 9112 3.2: an HTTP/1.1 request without Host gets 400 (HTTP/1.0 needs none)', async () => {
    await expectRefused('GET /health HTTP/1.1\r\n\r\n', 'no Host');
    const ok = await exchange('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(ok.status, 200, `control with Host: ${ok.text.slice(0, 300)}`);
    const old = await exchange('GET /health HTTP/1.0\r\n\r\n');
    assert.equal(old.status, 200, `HTTP/1.0 without Host: ${old.text.slice(0, 300)}`);
});

it('RFC 9112 3.2: a request with two Host fields gets 400', async () => {
    await expectRefused('GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'two Hosts');
    await expectRefused('GET /health HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n', 'two equal Hosts, HTTP/1.0');
});

it('RFC 9112 5.1: a blank between a field name and its colon gets 400', async () => {
    await expectRefused('GET /health HTTP/1.1\r\nHost: x\r\nX-Test : 1\r\n\r\n', 'space before colon');
    await expectRefused('GET /health HTTP/1.1\r\nHost\t: x\r\n\r\n', 'tab before colon');
    const ok = await exchange('GET /health HTTP/1.1\r\nHost: x\r\nX-Test: 1\r\nConnection: close\r\n\r\n');
    assert.equal(ok.status, 200, `control: ${ok.text.slice(0, 300)}`);
});

// A smuggled request behind the body: answered only if the server took the wrong length.
const SMUGGLED = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';

it('RFC 9112 6.3: conflicting Content-Length fields get 400, and what follows is not read', async () => {
    await expectRefused(
        `POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
        'Content-Length 0 then N',
    );
    await expectRefused(`POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello${SMUGGLED}`, 'a list "5, 6"');
});

it('RFC 9112 6.3: a repeated Content-Length, even of one value, gets 400', async () => {
    await expectRefused(
        `POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}${SMUGGLED}`,
        'two equal fields',
    );
    await expectRefused(`POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}${SMUGGLED}`, 'a list "2, 2"');
    // Control: one Content-Length is read, and the request after the body is answered.
    const ok = await exchange(`POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}${SMUGGLED.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')}`);
    assert.deepEqual(statusLines(ok.text), ['HTTP/1.1 401', 'HTTP/1.1 200'], ok.text.slice(0, 400));
});
