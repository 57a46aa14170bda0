// garbage-storm.mjs - a child process that opens COUNT connections to a
// server and sends garbage on each, so the test's own event loop stays free
// to measure a well-behaved client's latency.
//
//   node garbage-storm.mjs PORT COUNT COOKIE
//
// Connection i does one of five things (i % 5):
//   0  1 KiB of random bytes (the server answers 400 and closes)
//   1  a request line and a 4 KiB header line that never ends (held open)
//   2  a WebSocket upgrade, then an unmasked frame of garbage (closed 1002)
//   3  a WebSocket upgrade, then a frame declaring 60,000 bytes and only
//      2,000 of them (held open)
//   4  a header line that never ends, 256 KiB of it (431 and closed at the
//      head limit: a server that buffered it all would hold 256 KiB here)
// Prints {"ready":true,"opened":N,"held":N,"errors":N} once every connection
// has sent its garbage, then waits; on "stop" (or stdin closing) it destroys
// every socket and exits. Connects at most BATCH at a time, so the listen
// backlog is not what is measured.

import net from 'node:net';
import crypto from 'node:crypto';
import readline from 'node:readline';

const [port, count, cookie] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const BATCH = 200;
const sockets = [];
let errors = 0;

function upgradeHead() {
    return (
        'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `Cookie: ${cookie}\r\n\r\n`
    );
}

/** A masked text frame header declaring `declared` bytes, and `sent` bytes of garbage after it. */
function partialFrame(declared, sent) {
    const head = Buffer.from([0x81, 0x80 | 126, declared >> 8, declared & 0xff, ...crypto.randomBytes(4)]);
    return Buffer.concat([head, crypto.randomBytes(sent)]);
}

/** An unmasked text frame of garbage: a protocol error from a client. */
function unmaskedFrame() {
    return Buffer.concat([Buffer.from([0x81, 100]), crypto.randomBytes(100)]);
}

/** Opens connection i, sends its garbage; resolves once sent (or failed). */
function open(i) {
    return new Promise((resolveP) => {
        const s = net.connect(port, '127.0.0.1');
        sockets.push(s);
        s.on('error', () => {
            errors += 1;
            resolveP();
        });
        s.on('close', resolveP);
        s.on('connect', () => {
            const kind = i % 5;
            if (kind === 0) s.write(crypto.randomBytes(1024), resolveP);
            else if (kind === 4) s.write(`GET / HTTP/1.1\r\nX-Long: ${'x'.repeat(256 * 1024)}`, resolveP);
            else if (kind === 1)
                s.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Garbage: ${crypto.randomBytes(2048).toString('hex')}`, resolveP);
            else {
                let head = Buffer.alloc(0);
                const onData = (c) => {
                    head = Buffer.concat([head, c]);
                    if (head.indexOf('\r\n\r\n') < 0) return;
                    s.removeListener('data', onData);
                    s.resume(); // whatever follows (a close frame) is read and dropped
                    if (!head.toString('latin1').startsWith('HTTP/1.1 101')) errors += 1;
                    s.write(kind === 2 ? unmaskedFrame() : partialFrame(60000, 2000), resolveP);
                };
                s.on('data', onData);
                s.write(upgradeHead());
            }
        });
        if (i % 5 < 2 || i % 5 === 4) s.resume(); // read and drop the 400 or 431
    });
}

for (let i = 0; i < count; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + BATCH); j++) batch.push(open(j));
    await Promise.all(batch);
}
const held = sockets.filter((s, i) => !s.destroyed && (i % 5 === 1 || i % 5 === 3)).length;
process.stdout.write(`${JSON.stringify({ ready: true, opened: sockets.length, held, errors })}\n`);

const stop = () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
};
readline.createInterface({ input: process.stdin }).on('line', (l) => l.trim() === 'stop' && stop());
process.stdin.on('end', stop);
