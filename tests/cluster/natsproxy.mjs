// natsproxy.mjs - a TCP proxy between calderwood and a real nats-server that
// can hold back one JetStream publish answer, so a test can make JetStream
// answer a publish late (or never, as far as the publisher's timeout goes)
// while every other frame flows through at once; or hold back the publish
// itself, so JetStream stores the command late (and answers late because of
// it), as a stream that is slow to store would.
//
// It reads just enough of the NATS text protocol for that. From the client:
// PUB/HPUB frames (the JetStream publish is an HPUB to cw.commands whose
// reply subject is the publisher's inbox and whose headers carry
// Nats-Msg-Id); from the server: MSG/HMSG frames, each matched by its
// subject against the reply subjects seen. Both directions are forwarded
// frame by frame, so a held frame goes out later between two whole frames.
import net from 'node:net';

const CRLF = Buffer.from('\r\n');

/**
 * Splits a NATS byte stream into frames: a control line, plus for
 * (H)PUB/(H)MSG its payload and CRLF. push(chunk) returns the whole frames
 * now complete, each {line, op, args, payload, raw}.
 */
class Framer {
    #buf = Buffer.alloc(0);

    push(chunk) {
        this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
        const frames = [];
        for (;;) {
            const eol = this.#buf.indexOf(CRLF);
            if (eol < 0) break;
            const line = this.#buf.subarray(0, eol).toString('latin1');
            const args = line.split(/[ \t]+/);
            const op = args[0].toUpperCase();
            let end = eol + 2;
            let payload = null;
            if (op === 'PUB' || op === 'HPUB' || op === 'MSG' || op === 'HMSG') {
                const size = Number(args[args.length - 1]); // total bytes (headers and body)
                if (this.#buf.length < end + size + 2) break; // the payload is not all here yet
                payload = this.#buf.subarray(end, end + size);
                end += size + 2;
            }
            frames.push({ line, op, args, payload, raw: this.#buf.subarray(0, end) });
            this.#buf = this.#buf.subarray(end);
        }
        return frames;
    }
}

/** The value of header name in an HPUB/HMSG payload's header block (null if none). */
function header(payload, hdrLen, name) {
    const block = payload.subarray(0, hdrLen).toString('latin1');
    const re = new RegExp(`^${name}:\\s*(.*)$`, 'im');
    const m = block.match(re);
    return m ? m[1].trim() : null;
}

/**
 * Listens on a free loopback port and forwards every connection to
 * upstream (nats://HOST:PORT). url is what calderwood is given instead.
 *   hold(match, ms): the answer to the next publish to cw.commands whose
 *     Nats-Msg-Id satisfies match(id) reaches the client ms later (once).
 *   delayPublish(match, ms): the next such publish itself reaches
 *     nats-server ms later (once); the frames after it do not wait.
 *   publishes: every Nats-Msg-Id published to cw.commands, in order.
 *   held: [{id, body, heldMs, answer, sent, sentAt}] the answers held (body:
 *     the publish's, answer: JetStream's), sent at sentAt once let go.
 *   delayed: [{id, body, heldMs, sent, sentAt}] the publishes held, sent
 *     upstream at sentAt once let go.
 */
export async function startNatsProxy(upstream) {
    const { hostname, port } = new URL(upstream);
    const rules = [];
    const pubRules = [];
    const replies = new Map(); // reply subject -> the Nats-Msg-Id of its publish
    const sockets = new Set();
    const proxy = {
        publishes: [],
        held: [],
        delayed: [],
        url: null,
        hold(match, ms) {
            rules.push({ match, ms });
        },
        delayPublish(match, ms) {
            pubRules.push({ match, ms });
        },
        close() {
            for (const s of sockets) s.destroy();
            return new Promise((r) => server.close(r));
        },
    };

    // A client's frame: note which reply inbox answers which publish; how long
    // to hold the frame back (0: not at all).
    const sniffClient = (f) => {
        if (f.op !== 'HPUB' || f.args[1] !== 'cw.commands' || f.args.length !== 5) return 0;
        const id = header(f.payload, Number(f.args[3]), 'Nats-Msg-Id');
        if (id === null) return 0;
        const body = f.payload.subarray(Number(f.args[3])).toString('utf8');
        replies.set(f.args[2], { id, body });
        proxy.publishes.push(id);
        const i = pubRules.findIndex((r) => r.match(id));
        if (i < 0) return 0;
        const [rule] = pubRules.splice(i, 1);
        const entry = { id, body, heldMs: rule.ms, sent: false, sentAt: null };
        proxy.delayed.push(entry);
        return entry;
    };

    // Writes frame f to socket to, at once or (held) once its time is up.
    const forward = (to, f, held) => {
        if (!held) {
            to.write(f.raw);
            return;
        }
        const raw = Buffer.from(f.raw); // the chunk's buffer is not ours to keep
        setTimeout(() => {
            if (!to.destroyed) to.write(raw);
            held.sent = true;
            held.sentAt = Date.now();
        }, held.heldMs);
    };

    // A server's frame: how long to hold it back (0: not at all).
    const delayOf = (f) => {
        if (f.op !== 'MSG' && f.op !== 'HMSG') return 0;
        const pub = replies.get(f.args[1]);
        if (pub === undefined) return 0;
        replies.delete(f.args[1]);
        const i = rules.findIndex((r) => r.match(pub.id));
        if (i < 0) return 0;
        const [rule] = rules.splice(i, 1);
        const entry = { id: pub.id, body: pub.body, heldMs: rule.ms, sent: false, sentAt: null, answer: f.payload.toString('latin1') };
        proxy.held.push(entry);
        return entry;
    };

    const server = net.createServer((client) => {
        const up = net.connect(Number(port), hostname);
        sockets.add(client).add(up);
        const fromClient = new Framer();
        const fromServer = new Framer();
        client.on('data', (chunk) => {
            for (const f of fromClient.push(chunk)) forward(up, f, sniffClient(f));
        });
        up.on('data', (chunk) => {
            for (const f of fromServer.push(chunk)) forward(client, f, delayOf(f));
        });
        const end = () => {
            client.destroy();
            up.destroy();
            sockets.delete(client);
            sockets.delete(up);
        };
        client.on('close', end).on('error', end);
        up.on('close', end).on('error', end);
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    proxy.url = `nats://127.0.0.1:${server.address().port}`;
    return proxy;
}
