// rfc6455.test.mjs - the WebSocket framing layer with hand-built frames:
// fragmentation, control frames between fragments, the close handshake, and
// the close codes for invalid UTF-8 (1007), binary frames (1003), frames
// over the hard limit (1009) and protocol errors (1002).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, guard } from './lib/server.mjs';
import { loginAs, RawWs, OP, buildFrame, closePayload, newClientId } from './lib/client.mjs';

const ALICE = { email: 'alice@example.org', password: 'alice-password-1', first: 'Alice', last: 'Liddell' };

let srv;
let cookie;
before(async () => {
    srv = await startServer({ users: [ALICE] });
    cookie = (await loginAs(srv, ALICE.email)).cookie;
});
after(() => srv?.stop());

/**
 * Each test gets its own raw connection, destroyed afterwards.
 */
const it = (name, fn, opts = {}) =>
    test(
        name,
        opts,
        guard(
            () => srv,
            async () => {
                const raw = await RawWs.connect(srv, { cookie });
                try {
                    await fn(raw);
                } finally {
                    raw.destroy();
                }
            },
        ),
    );

/**
 * Asserts the server sends a close frame with `code`, then (after this
 * client answers with its own close frame, as RFC 6455 section 5.5.1 asks,
 * unless `answer` is false) ends the TCP connection.
 */
async function expectClose(raw, code, what, { answer = true } = {}) {
    // The first close or data frame: a data frame means the message was taken.
    const f = await raw.nextFrame((x) => x.opcode === OP.CLOSE || x.opcode === OP.TEXT || x.opcode === OP.CONT, 20_000, 'a close frame');
    assert.ok(f, `${what}: a close frame before the connection ended (error: ${raw.error?.message ?? 'none'})`);
    assert.equal(f.opcode, OP.CLOSE, `${what}: expected close ${code}, got a message instead: ${String(f.text).slice(0, 200)}`);
    assert.equal(f.code, code, `${what}: close code ${f.code} "${f.reason}", expected ${code}`);
    assert.equal(f.masked, false, 'server frames are not masked');
    if (answer && !raw.ended) await raw.sendFrame({ opcode: OP.CLOSE, payload: closePayload(code) });
    assert.ok(await raw.waitEnd(20_000), `${what}: the server ends the TCP connection after the close handshake`);
}

/**
 * A protocol error _Fails the WebSocket Connection_ (RFC 6455 section 7.1.7):
 * the server SHOULD send close 1002 first, and may also just drop the TCP
 * connection. A close frame with another code, or no end at all, fails.
 */
async function expectProtocolError(raw, what) {
    const f = await raw.closeFrame(20_000);
    if (f) {
        assert.equal(f.code, 1002, `${what}: close code ${f.code} "${f.reason}", expected 1002`);
        if (!raw.ended) await raw.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1002) });
    }
    assert.ok(await raw.waitEnd(20_000), `${what}: the server ends the connection`);
}

/** Asserts the connection still answers a ping message. */
async function expectAlive(raw, what) {
    const token = newClientId('alive');
    await raw.sendJson(['ping', token]);
    const msg = await raw.nextMessage();
    assert.deepEqual(msg, ['pong', token], `${what}: connection still works`);
}

it('answers a single-frame text message with an unmasked, final text frame', async (raw) => {
    await raw.sendJson(['ping', { n: 1 }]);
    const f = await raw.nextFrame((x) => x.opcode === OP.TEXT);
    assert.equal(f.masked, false, 'server-to-client frames are never masked');
    assert.equal(f.rsv, 0);
    assert.equal(f.fin, true);
    assert.deepEqual(JSON.parse(f.text), ['pong', { n: 1 }]);
});

it('reassembles a fragmented text message, split inside a multi-byte character', async (raw) => {
    const text = JSON.stringify(['ping', 'fragmented ü € 😀 message']);
    const bytes = Buffer.from(text, 'utf8');
    const cut1 = bytes.indexOf(Buffer.from('ü')) + 1; // inside "ü"
    const cut2 = bytes.indexOf(Buffer.from('😀')) + 2; // inside the emoji
    await raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: bytes.subarray(0, cut1) });
    await raw.sendFrame({ fin: false, opcode: OP.CONT, payload: bytes.subarray(cut1, cut2) });
    await raw.sendFrame({ fin: true, opcode: OP.CONT, payload: bytes.subarray(cut2) });
    assert.deepEqual(await raw.nextMessage(), ['pong', 'fragmented ü € 😀 message']);
});


it('answers pings interleaved between fragments with pongs, then the message', async (raw) => {
    const bytes = Buffer.from(JSON.stringify(['ping', 'around the pings']));
    await raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: bytes.subarray(0, 5) });
    await raw.sendFrame({ opcode: OP.PING, payload: 'first' });
    await raw.sendFrame({ fin: false, opcode: OP.CONT, payload: bytes.subarray(5, 12) });
    await raw.sendFrame({ opcode: OP.PING, payload: '' });
    await raw.sendFrame({ opcode: OP.PONG, payload: 'unsolicited pong is ignored' });
    await raw.sendFrame({ fin: true, opcode: OP.CONT, payload: bytes.subarray(12) });
    assert.deepEqual(await raw.nextMessage(), ['pong', 'around the pings']);
    // RFC 6455 section 5.5.3: a pong for every ping, or at least for the most
    // recent one when earlier ones were not answered yet.
    const last = await raw.nextFrame((f) => f.opcode === OP.PONG && f.payload.length === 0, 20_000, 'the pong of the last ping (empty payload)');
    assert.equal(last.fin, true);
    const pongs = raw.frames.filter((f) => f.opcode === OP.PONG).map((f) => f.payload.toString());
    assert.deepEqual(pongs, ['first', ''], 'one pong per ping, in order, echoing each payload');
});

it('answers every ping of a single TCP write, in order', async (raw) => {
    const names = ['p1', 'p2', 'p3', 'p4'];
    raw.write(Buffer.concat(names.map((n) => buildFrame({ opcode: OP.PING, payload: n }))));
    await raw.nextFrame((f) => f.opcode === OP.PONG && f.payload.toString() === 'p4', 20_000, 'the pong of the last ping');
    const pongs = raw.frames.filter((f) => f.opcode === OP.PONG).map((f) => f.payload.toString());
    assert.deepEqual(pongs, names);
    await expectAlive(raw, 'after the pings');
});

it('answers a ping control frame with a pong carrying the same payload (up to 125 bytes)', async (raw) => {
    const payload = Buffer.from(Array.from({ length: 125 }, (_, i) => i));
    await raw.sendFrame({ opcode: OP.PING, payload });
    const f = await raw.nextFrame((x) => x.opcode === OP.PONG);
    assert.ok(f.payload.equals(payload));
    assert.equal(f.fin, true);
});

it('a fragmented message over the soft limit answers too-large and keeps the connection', async (raw) => {
    const text = JSON.stringify(['ping', 'y'.repeat(80 * 1024)]);
    const b = Buffer.from(text);
    const step = 16 * 1024;
    for (let off = 0; off < b.length; off += step) {
        const last = off + step >= b.length;
        await raw.sendFrame({ fin: last, opcode: off === 0 ? OP.TEXT : OP.CONT, payload: b.subarray(off, off + step) });
    }
    const msg = await raw.nextMessage();
    assert.equal(msg[0], 'error', JSON.stringify(msg).slice(0, 200));
    assert.equal(msg[3].code, 'too-large');
    await expectAlive(raw, 'after too-large');
});

it('closes the handshake: a client close 1000 is answered with a close frame and the TCP end', async (raw) => {
    await raw.sendFrame({ opcode: OP.CLOSE, payload: closePayload(1000, 'bye') });
    await expectClose(raw, 1000, 'client close', { answer: false });
});

it('closes with 1007 on invalid UTF-8 in a text frame', async (raw) => {
    await raw.sendFrame({ opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('["ping","'), Buffer.from([0xff, 0xfe]), Buffer.from('"]')]) });
    await expectClose(raw, 1007, 'invalid UTF-8');
});

it('closes with 1007 on an overlong UTF-8 encoding split across fragments', async (raw) => {
    await raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('["ping","'), Buffer.from([0xc0])]) });
    await raw.sendFrame({ fin: true, opcode: OP.CONT, payload: Buffer.concat([Buffer.from([0x80]), Buffer.from('"]')]) });
    await expectClose(raw, 1007, 'overlong UTF-8');
});

it('closes with 1007 on a UTF-16 surrogate encoded in UTF-8', async (raw) => {
    await raw.sendFrame({ opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('["ping","'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"]')]) });
    await expectClose(raw, 1007, 'surrogate');
});

it('closes with 1003 on a binary frame', async (raw) => {
    await raw.sendFrame({ opcode: OP.BINARY, payload: Buffer.from(JSON.stringify(['ping', 1])) });
    await expectClose(raw, 1003, 'binary frame');
});

it('closes with 1009 on a frame over the hard limit (1 MiB)', async (raw) => {
    const big = JSON.stringify(['ping', 'z'.repeat(1024 * 1024 + 4096)]);
    await raw.sendText(big);
    await expectClose(raw, 1009, 'frame over the hard limit');
});

it('closes with 1009 on a fragmented message whose total passes the hard limit', async (raw) => {
    const chunk = Buffer.alloc(256 * 1024, 'q');
    await raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: Buffer.from('["ping","') });
    for (let i = 0; i < 5 && !raw.ended; i++) await raw.sendFrame({ fin: false, opcode: OP.CONT, payload: chunk });
    await raw.sendFrame({ fin: true, opcode: OP.CONT, payload: Buffer.from('"]') });
    await expectClose(raw, 1009, 'fragments over the hard limit');
});

it('closes with 1002 on an unmasked client frame', async (raw) => {
    await raw.sendFrame({ opcode: OP.TEXT, payload: JSON.stringify(['ping', 1]), mask: false });
    await expectClose(raw, 1002, 'unmasked frame');
});

it('closes with 1002 on a reserved opcode', async (raw) => {
    await raw.sendFrame({ opcode: 0x3, payload: 'x' });
    await expectProtocolError(raw, 'opcode 3');
});

it('closes with 1002 on RSV bits without a negotiated extension', async (raw) => {
    await raw.sendFrame({ opcode: OP.TEXT, payload: JSON.stringify(['ping', 1]), rsv: 4 });
    await expectProtocolError(raw, 'RSV1');
});

it('closes with 1002 on a control frame with more than 125 bytes of payload', async (raw) => {
    await raw.sendFrame({ opcode: OP.PING, payload: Buffer.alloc(126, 1) });
    await expectProtocolError(raw, 'long ping');
});

it('closes with 1002 on a fragmented control frame', async (raw) => {
    await raw.sendFrame({ fin: false, opcode: OP.PING, payload: 'half' });
    await expectProtocolError(raw, 'fragmented ping');
});

it('closes with 1002 on a continuation frame with no message started', async (raw) => {
    await raw.sendFrame({ fin: true, opcode: OP.CONT, payload: JSON.stringify(['ping', 1]) });
    await expectProtocolError(raw, 'orphan continuation');
});

it('closes with 1002 on a new text frame while a fragmented message is open', async (raw) => {
    await raw.sendFrame({ fin: false, opcode: OP.TEXT, payload: '["ping",' });
    await raw.sendFrame({ fin: true, opcode: OP.TEXT, payload: JSON.stringify(['ping', 2]) });
    await expectProtocolError(raw, 'text inside a fragmented message');
});

it('closes with 1002 on a close frame with an invalid code or a 1-byte payload', async () => {
    for (const payload of [closePayload(1005), closePayload(999), closePayload(1015), Buffer.from([0x03])]) {
        const raw = await RawWs.connect(srv, { cookie });
        try {
            await raw.sendFrame({ opcode: OP.CLOSE, payload });
            await expectProtocolError(raw, `close payload ${payload.toString('hex')}`);
        } finally {
            raw.destroy();
        }
    }
});
