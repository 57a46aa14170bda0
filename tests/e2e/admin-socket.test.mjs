// admin-socket.test.mjs - the admin socket's limits against hostile or
// careless peers (src/admin/socket.c): 8 connections at once (the 9th is
// answered `busy` and closed, a freed slot serves the next), a silent
// connection blocks nobody, a peer of another uid is answered `forbidden`
// and logged, a request split across writes is one request, 16 KiB a line
// (newline included) and not a byte more, and a peer that leaves before its
// answer harms nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { startServer, guard } from './lib/server.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1' };
const NOBODY_LINE = '{"command":"disable-user","data":{"email":"nobody@example.org"}}\n';

let srv;
let sockPath;
before(async () => {
    srv = await startServer({ users: [ALICE] });
    sockPath = join(srv.dataDir, 'calderwood.sock');
});
after(() => srv?.stop());

const it = (name, fn, opts) => test(name, opts ?? {}, guard(() => srv, fn));

/** Resolves when cond() is true, checking every 20 ms; rejects after ms. */
async function until(cond, ms, what) {
    const end = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

/**
 * A connection to the admin socket: c.lines (parsed answers so far),
 * c.line(ms) the next one, c.closed (resolves when the server closed it).
 */
function open() {
    return new Promise((resolve, reject) => {
        const s = net.connect(sockPath);
        const c = { s, lines: [], taken: 0, isClosed: false };
        let buf = '';
        s.on('data', (chunk) => {
            buf += chunk;
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
                c.lines.push(JSON.parse(buf.slice(0, nl)));
                buf = buf.slice(nl + 1);
            }
        });
        c.closed = new Promise((r) => s.on('close', () => r((c.isClosed = true))));
        s.on('error', () => {}); // a reset after the server's last line is a close like another
        c.line = async (ms = 10_000) => {
            await until(() => c.lines.length > c.taken || c.isClosed, ms, 'an answer line');
            assert.ok(c.lines.length > c.taken, `the server closed the connection without answering (${buf})`);
            return c.lines[c.taken++];
        };
        c.ask = async (line, ms) => {
            s.write(line);
            return c.line(ms);
        };
        s.once('connect', () => resolve(c));
        s.once('error', reject);
    });
}

/** Resolves p, or rejects after ms. */
function within(p, ms, what) {
    let t;
    return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms)))]).finally(() =>
        clearTimeout(t),
    );
}

it('8 connections at once: silent ones block nobody, the 9th is refused busy and closed, a freed slot serves the next', async () => {
    const held = [];
    try {
        for (let i = 0; i < 7; i++) held.push(await open());
        // The 8th is served while 7 silent connections are open: each has a thread of its own.
        const eighth = await open();
        held.push(eighth);
        const a = await eighth.ask(NOBODY_LINE);
        assert.equal(a.code, 'unknown-user', 'the 8th connection is served beside 7 silent ones');
        assert.ok(held.every((c) => !c.isClosed && c.lines.length === (c === eighth ? 1 : 0)), 'the 8 were all taken');

        const ninth = await open();
        const busy = await ninth.line();
        assert.deepEqual(busy, { ok: false, code: 'busy', message: 'too many admin connections at once: try again' });
        await within(ninth.closed, 10_000, 'the 9th connection closed');

        held.shift().s.destroy();
        // The server frees the slot on its own thread: retry until it has. A refused
        // connection may also be closed before it reads `busy` (our write meets EPIPE).
        let answer;
        for (const end = Date.now() + 10_000; answer === undefined; ) {
            assert.ok(Date.now() < end, 'a new connection served within 10 s of a slot freed');
            const c = await open();
            const l = await c.ask(NOBODY_LINE).catch(() => null);
            c.s.destroy();
            if (l && l.code !== 'busy') answer = l;
            else await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(answer.code, 'unknown-user', 'a freed slot serves the next connection');
    } finally {
        for (const c of held) c.s.destroy();
    }
});

const setpriv = spawnSync('setpriv', ['--version']).status === 0;
it(
    'a peer of another uid is refused with a clear line, closed and logged',
    async () => {
        // The socket is 0600 in a 0700 directory: open both in this copy to reach the uid check.
        const dirMode = statSync(srv.dataDir).mode & 0o777;
        chmodSync(srv.dataDir, 0o711);
        chmodSync(sockPath, 0o666);
        try {
            // The client sends nothing: the server answers at once, and a reply it never
            // sends would show as TIMEOUT rather than a minute's wait.
            const script = `const s = require('net').connect(process.argv[1]); let b = '';
                s.on('data', (c) => (b += c)); s.on('error', (e) => (b += 'ERROR ' + e.code));
                s.on('close', () => { process.stdout.write(b); process.exit(0); });
                setTimeout(() => { process.stdout.write(b + 'TIMEOUT'); process.exit(0); }, 10000);`;
            const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script, sockPath]);
            let out = '';
            let err = '';
            p.stdout.on('data', (c) => (out += c));
            p.stderr.on('data', (c) => (err += c));
            const code = await within(new Promise((r) => p.on('close', r)), 30_000, 'the client under uid 65534');
            assert.equal(code, 0, `client: ${err}`);
            assert.equal(
                out,
                '{"ok":false,"code":"forbidden","message":"only the server\'s own user or root may administer it"}\n',
                'refused with one line, then closed',
            );
            await until(() => /admin\.refused .*uid=65534 /.test(srv.log()), 10_000, 'admin.refused uid=65534 in the log');
        } finally {
            chmodSync(sockPath, 0o600);
            chmodSync(srv.dataDir, dirMode);
        }
    },
    { skip: process.getuid() !== 0 || !setpriv ? 'needs root and setpriv' : false },
);

it('a request split across writes is one request; a line is 16 KiB with its newline, not a byte more', async () => {
    const c = await open();
    const parts = ['{"command":"disa', 'ble-user","data":{"em', 'ail":"nobody@example.org"}}', '\n'];
    for (const part of parts) {
        await new Promise((r) => c.s.write(part, r));
        await new Promise((r) => setTimeout(r, 30)); // lets the server read each part on its own
    }
    assert.equal((await c.line()).code, 'unknown-user');
    assert.equal(c.lines.length, 1, 'one answer for one request');

    // {"command":"xx...x","data":{}} and its newline: 16384 bytes in all.
    const pad = (total) => `{"command":"${'x'.repeat(total - 1 - '{"command":"","data":{}}'.length)}","data":{}}\n`;
    assert.equal(pad(16384).length, 16384);
    assert.equal((await c.ask(pad(16384))).code, 'unknown-command', 'a 16 KiB line is read');
    assert.equal((await c.ask(pad(16385))).code, 'too-large', 'a byte more is refused');
    await within(c.closed, 10_000, 'the connection closed after too-large');
});

it('a peer that leaves before its answer harms nothing: the command runs, the next peer is served', async () => {
    const c = await open();
    // change-password hashes first, so the peer is gone well before the answer.
    const line = `{"command":"change-password","data":{"email":"${ALICE.email}","password":"alice-password-2"}}\n`;
    await new Promise((r) => c.s.write(line, r));
    c.s.destroy();
    await until(() => /admin\.command command=change-password .*outcome=ok/.test(srv.log()), 20_000, 'the command ran');
    await until(() => /admin\.unanswered uid=\d+ pid=\d+ outcome=ok /.test(srv.log()), 10_000, 'the lost answer logged');
    const next = await open();
    assert.equal((await next.ask(NOBODY_LINE)).code, 'unknown-user', 'the next peer is served');
    next.s.destroy();
});
