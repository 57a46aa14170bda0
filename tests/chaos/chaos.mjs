// chaos.mjs - the crash harness: real `calderwood serve` processes killed with
// SIGKILL at random moments while real WebSocket clients keep sending, then
// restarted on the same data directory; at the end, checks that nothing was
// lost, doubled or reordered (check.mjs) and prints a one-line verdict.
//
//   node tests/chaos/chaos.mjs [--kills N] [--minutes M] [--users U] [--conns C] ...
//   node tests/chaos/chaos.mjs --store postgres://... ...   # the log in PostgreSQL
//
// With --store (a PostgreSQL database of its own, empty: make chaos
// STORE=postgres makes a throwaway cluster for it), every life serves from it
// and the final checks read it with psql, compare the projections with a
// replay by `calderwood check` and check the tables and indexes with
// pg_amcheck (check.mjs).
// It runs until --kills lives have ended by SIGKILL (graceful stops come on top; and
// at least --min-seconds have passed), or --minutes have passed, whichever comes first (a run that
// ends on time with fewer than --min-kills fails). Each life ends one of four ways, drawn at random:
//   startup  SIGKILL a random few ms after spawn, before /health answers
//            (the first life, on an empty directory, dies inside the migrations)
//   burst    every client sends a burst of commands, SIGKILL 0..20 ms later
//   live     SIGKILL after a random time under steady load
//   term     SIGTERM: a graceful stop; every acked command must have ended
//            before its connection closed with 1001
// Kills that land inside a batch commit or a WAL checkpoint are not aimed:
// the server shows neither from outside, so many random kills under load
// (a small --checkpoint-frames is not a flag we have) stand in for that.
//
// The clients (client.mjs) live in this process; the server's RSS is sampled
// from /proc every 200 ms of each life. The servers log at warn level
// (CW_CHAOS_LOG_LEVEL=info for more: every command and connection).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, ROOT, freePort } from '../e2e/lib/server.mjs';
import { ChaosClient } from './client.mjs';
import { checkRun } from './check.mjs';

const opt = parseArgs(process.argv.slice(2), {
    kills: 8, // stop after this many SIGKILLs ...
    minutes: 0.75, // ... or after this long
    'min-kills': 5, // fewer than this (on time) fails the run
    'min-seconds': 15, // ... but not before this, so that a run of quick start-up kills still sees load
    users: 3,
    conns: 2, // logical clients per user
    'tick-ms': 40, // each client may send one command per tick
    window: 12, // pending commands per client at most (steady load; bursts go over)
    burst: 10, // commands per client in a burst
    'live-ms': 2500, // a live life lasts 200 ms + up to this
    'term-share': 0.12, // share of lives that end with SIGTERM
    'startup-share': 0.2,
    'burst-share': 0.35,
    seed: Date.now() % 1_000_000,
    'no-resend': false, // a broken client, to see the checks fail
    soak: false, // print a progress line, judge RSS
    keep: false, // keep the data directory
    store: '', // a postgres:// URL: the store, instead of DIR/calderwood.db
});

const rng = mulberry32(Number(opt.seed));
const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
const stats = { kills: 0, startup: 0, burst: 0, live: 0, terms: 0, termBad: 0, lives: [], crashes: [] };

function parseArgs(argv, defaults) {
    const o = { ...defaults };
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i].replace(/^--/, '');
        if (!(k in defaults)) throw new Error(`unknown option ${argv[i]}`);
        if (typeof defaults[k] === 'boolean') o[k] = true;
        else if (typeof defaults[k] === 'string') o[k] = argv[++i] ?? '';
        else o[k] = Number(argv[++i]);
        if (Number.isNaN(o[k])) throw new Error(`${argv[i - 1]} needs a number`);
    }
    return o;
}

function mulberry32(a) {
    return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

// ------------------------------------------------------------ the server

const dataDir = mkdtempSync(join(tmpdir(), 'cw-chaos-'));
const logPath = `${dataDir}.log`;
// The flags that name the store: the directory (lock, secret key) and, on PostgreSQL, the URL.
const storeArgs = ['--data', dataDir, ...(opt.store ? ['--store', opt.store] : [])];
let port = 0;

/** GET path; resolves { status, body } or rejects (refused, timeout). */
function get(path, { method = 'GET', body, cookie, timeoutMs = 2000 } = {}) {
    return new Promise((resolve, reject) => {
        const headers = {};
        if (body) {
            headers['Content-Type'] = 'application/json';
            headers['Content-Length'] = Buffer.byteLength(body);
        }
        if (cookie) headers.Cookie = cookie;
        const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false, timeout: timeoutMs }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        if (body) req.write(body);
        req.end();
    });
}

/** One server process: spawn, RSS samples, health, signal, exit. */
class Life {
    constructor(n) {
        this.n = n;
        this.rss = []; // kB
        this.healthy = false;
        this.signalled = null;
        const fd = openSync(logPath, 'a');
        const argv = ['serve', ...storeArgs, '--listen', `127.0.0.1:${port}`, '--no-demo-user', '--log-level', process.env.CW_CHAOS_LOG_LEVEL || 'warn'];
        argv.push('--login-burst', '100000', '--login-rate', '100000');
        writeFileSync(fd, `# life ${n}: ${BIN} ${argv.join(' ')}\n`);
        this.proc = spawn(BIN, argv, { cwd: ROOT, stdio: ['ignore', fd, fd] });
        closeSync(fd);
        this.spawnedAt = Date.now();
        this.exited = new Promise((res) => this.proc.on('exit', (code, signal) => res({ code, signal })));
        this.exited.then((e) => {
            this.exit = e;
            clearInterval(this.sampler);
        });
        this.sampler = setInterval(() => this.sample(), 200);
    }

    sample() {
        try {
            const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'));
            if (m) this.rss.push(Number(m[1]));
        } catch {
            /* gone */
        }
    }

    /** Resolves once /health answers 200; throws if the process exits first or after 60 s. */
    async ready() {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
            if (this.exit) throw new Error(`life ${this.n}: server exited (${JSON.stringify(this.exit)}) before /health answered`);
            try {
                if ((await get('/health', { timeoutMs: 1000 })).status === 200) {
                    this.healthy = true;
                    this.readyMs = Date.now() - this.spawnedAt;
                    this.readyAt = this.rss.length; // samples from here on: the serving process
                    return;
                }
            } catch {
                /* not yet */
            }
            await sleep(15);
        }
        throw new Error(`life ${this.n}: /health did not answer within 60 s`);
    }

    async signal(sig) {
        this.signalled = sig;
        this.sample();
        this.proc.kill(sig);
        const e = await this.exited;
        if (sig === 'SIGKILL' && e.signal !== 'SIGKILL') stats.crashes.push(`life ${this.n} ended ${JSON.stringify(e)} before the SIGKILL`);
        if (sig === 'SIGTERM' && e.code !== 0) stats.crashes.push(`life ${this.n}: SIGTERM exit ${JSON.stringify(e)}`);
        return e;
    }
}

/** `calderwood user add` on the run's store; returns the user's uuid. */
function addUser(u) {
    const r = spawnSync(BIN, ['user', 'add', ...storeArgs, '--email', u.email, '--first', 'Chaos', '--last', `User${u.n}`], {
        input: `${u.password}\n`,
        encoding: 'utf8',
        timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`user add ${u.email} failed (exit ${r.status}): ${r.stderr.trim()}`);
    return /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(r.stdout)?.[1] ?? null;
}

// ------------------------------------------------------------ the clients

const clients = [];
const emails = []; // every email a register-user carried, and the users' own: reusing one is email-taken
let emailCounter = 0;
const SKUS = ['apple', 'pear', 'fig', 'plum'];

/** The steady mix: page visits, cart changes (some rejected), registrations (some duplicates). */
function makeCommand(cl) {
    const r = rng();
    if (r < 0.4) return ['visit-page', { url: `https://example.org/${cl.clientId}/${cl.nextSeq}` }];
    if (r < 0.68) return ['add-to-cart', { sku: SKUS[Math.floor(rng() * SKUS.length)], quantity: 1 + Math.floor(rng() * 3) }];
    if (r < 0.97) return ['remove-from-cart', { sku: SKUS[Math.floor(rng() * SKUS.length)], quantity: 1 + Math.floor(rng() * 3) }];
    let email;
    if (rng() < 0.35) email = emails[Math.floor(rng() * emails.length)];
    else {
        email = `r${++emailCounter}-${opt.seed}@example.org`;
        emails.push(email);
    }
    return ['register-user', { email, first_name: 'Chaos', last_name: 'Monkey', password: 'chaos-password' }];
}

function sendOne(cl) {
    const [name, data] = makeCommand(cl);
    cl.send(name, data);
}

let generating = false;
function tick() {
    if (!generating) return;
    for (const cl of clients) if (cl.pending.size < opt.window && rng() < 0.7) sendOne(cl);
}

function burst() {
    for (const cl of clients) for (let i = 0; i < opt.burst; i++) sendOne(cl);
}

/** Logs each user in (sessions outlive the restarts) and starts its clients. */
async function startClients(users) {
    for (const u of users) {
        let cookie = null;
        // A refused login (overloaded while the server starts) is tried again, as a user would, until a deadline.
        const deadline = Date.now() + 60_000;
        while (!cookie) {
            const r = await get('/login', { method: 'POST', body: JSON.stringify({ email: u.email, password: u.password }), timeoutMs: 20_000 });
            const sc = (r.headers['set-cookie'] || []).find((c) => c.startsWith('cw_session='));
            if (r.status === 200 && sc) cookie = sc.split(';')[0];
            else if (Date.now() > deadline) throw new Error(`login ${u.email}: ${r.status} ${r.body}, still after 60 s`);
            else await sleep(100);
        }
        // As calderwood.js does on a tab's first connection: start after the newest
        // event the user may see.
        const q = await get('/query', { method: 'POST', body: JSON.stringify({ name: 'events', data: { limit: 1 } }), cookie, timeoutMs: 20_000 });
        const first = JSON.parse(q.body)[1];
        for (let c = 0; c < opt.conns; c++) {
            const cl = new ChaosClient({
                host: '127.0.0.1',
                port,
                cookie,
                userUuid: u.user_uuid,
                clientId: `chaos-${u.n}-${c}-${opt.seed}`,
                rng,
                minDelayMs: 50,
                maxDelayMs: 1000,
                noResend: opt['no-resend'],
            });
            cl.lastPosition = first.length ? first[0].position : 0;
            clients.push(cl);
            cl.start();
        }
    }
}

// ------------------------------------------------------------ the lives

function pickEnd() {
    const r = rng();
    if (r < opt['startup-share']) return 'startup';
    if (r < opt['startup-share'] + opt['burst-share']) return 'burst';
    if (r < opt['startup-share'] + opt['burst-share'] + opt['term-share']) return 'term';
    return 'live';
}

let startupMs = 150; // a running estimate of spawn-to-healthy time
let lifeNo = 0;

/** One life ended by `how`; returns when the process has exited. */
async function runLife(how) {
    const life = new Life(lifeNo++);
    stats.lives.push(life);
    if (how === 'startup') {
        // Polled meanwhile, so that a kill that came after /health answered is not
        // counted as one during start-up.
        life.ready().catch(() => {});
        await sleep(Math.floor(rng() * startupMs));
        const wasHealthy = life.healthy;
        await life.signal('SIGKILL');
        stats.kills++;
        stats[wasHealthy ? 'live' : 'startup']++;
        return;
    }
    await life.ready();
    startupMs = Math.round(0.8 * startupMs + 0.2 * life.readyMs);
    await sleep(200 + Math.floor(rng() * opt['live-ms']));
    if (how === 'burst') {
        burst();
        await sleep(Math.floor(rng() * 20));
    }
    if (how === 'term') {
        const before = clients.reduce((n, c) => n + c.termChecks.length, 0);
        await life.signal('SIGTERM');
        stats.terms++;
        // Each connection's 1001 close was checked as it came (client.mjs).
        await Promise.all(clients.map((c) => c.until(() => c.ws === null || !c.live, 10_000, 'the close').catch(() => {})));
        const after = clients.flatMap((c) => c.termChecks).slice(before);
        stats.termBad += after.filter((t) => t.pendingAcked > 0).length;
        return;
    }
    await life.signal('SIGKILL');
    stats.kills++;
    stats[how]++;
}

function progress(final = false) {
    const sent = clients.reduce((n, c) => n + c.commands.size, 0);
    const pending = clients.reduce((n, c) => n + c.pending.size, 0);
    const rss = stats.lives.at(-1)?.rss.at(-1) || 0;
    const line = `chaos: ${elapsed().toFixed(0)}s kills=${stats.kills} (startup=${stats.startup} burst=${stats.burst} live=${stats.live}) terms=${stats.terms} sent=${sent} pending=${pending} rss=${(rss / 1024).toFixed(1)}MB`;
    process.stdout.write(final || !process.stdout.isTTY ? `${line}\n` : `\r${line}   `);
}

/**
 * The server's RSS must level off, not climb: within a life (lives that served
 * 5 s or more: the peak of the second half of the samples taken after /health
 * answered against the peak of the first half, or the early lives' peak level
 * when higher) and across lives (the median peak of the last fifth of the
 * lives against that of the first fifth, as the log grows).
 */
function rssVerdict() {
    const mb = (kb) => `${(kb / 1024).toFixed(1)}MB`;
    const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const lives = stats.lives.filter((l) => l.healthy && l.rss.length >= 3);
    const peaks = lives.map((l) => Math.max(...l.rss));
    const fifth = Math.max(2, Math.floor(peaks.length / 5));
    const early = peaks.length < 10 ? 0 : med(peaks.slice(0, fifth));
    let climb = 0;
    for (const l of lives) {
        // Peaks, not medians: within a life the RSS is a sawtooth (about 130 MB
        // taken and given back again and again under load, in steps of about 65 MB,
        // the size of one SQLite connection's page cache), and a leak raises its
        // peaks. A life that first reaches the top step in its second half reaches
        // the level the early lives reached, which is no climb.
        const serving = l.rss.slice(l.readyAt);
        if (serving.length < 25) continue;
        const half = serving.length >> 1;
        l.climb = Math.max(...serving.slice(half)) - Math.max(early, ...serving.slice(0, half));
        climb = Math.max(climb, l.climb);
    }
    const within = `rss-climb-in-life=${mb(climb)}`;
    if (peaks.length < 10) return { ok: climb <= 16 * 1024, text: `rss-peak=${mb(Math.max(0, ...peaks))} ${within}` };
    const late = med(peaks.slice(-fifth));
    const ok = late <= early * 1.25 + 10 * 1024 && climb <= 16 * 1024;
    return { ok, text: `rss-early=${mb(early)} rss-late=${mb(late)} rss-max=${mb(Math.max(...peaks))} ${within}${ok ? '' : ' RSS-CLIMBS'}` };
}

/** Life 0 and life 1: the users, the clients, the first two kills. Returns the load's timers. */
async function begin(users) {
    // Life 0 on an empty directory dies during start-up: inside the migrations
    // or just after. `user add` then opens the same database and must cope.
    await runLife('startup');
    for (const u of users) u.user_uuid = addUser(u);
    const life = new Life(lifeNo++);
    stats.lives.push(life);
    await life.ready();
    await startClients(users);
    generating = true;
    const timers = [setInterval(tick, opt['tick-ms']), setInterval(() => progress(), opt.soak ? 5000 : 1e9)];
    await sleep(300);
    await life.signal('SIGKILL');
    stats.kills++;
    stats.live++;
    return timers;
}

/**
 * The last life: no new commands; every pending one must end. Then a fence:
 * each client visits a page (audience: everyone); once every client has
 * received every fence, each has received everything before it too, or never
 * will. Then a graceful stop. Returns why it did not settle, or null.
 */
async function settle() {
    generating = false;
    const life = new Life(lifeNo++);
    stats.lives.push(life);
    await life.ready();
    let error = null;
    try {
        await Promise.all(clients.map((c) => c.until(() => c.live && c.pending.size === 0, 60_000, 'every pending command ended')));
        const fences = clients.map((c) => c.send('visit-page', { url: `https://example.org/fence/${c.clientId}` }));
        await Promise.all(clients.map((c) => c.until(() => c.pending.size === 0, 30_000, 'its fence')));
        const last = Math.max(...fences.map((f) => f.positions[0] || 0));
        await Promise.all(clients.map((c) => c.until(() => c.maxSeen >= last, 30_000, `position ${last}`)));
    } catch (e) {
        error = e.message;
    }
    await life.signal('SIGTERM');
    stats.terms++;
    for (const c of clients) c.stop();
    return error;
}

/** Prints the problems and the one-line verdict; returns true when the run passed. */
function verdict(counts, problems) {
    for (const p of problems) if (p.text) console.log(`chaos: FAIL ${p.kind}: ${p.text}`);
    const m = counts.missingWhere;
    if (counts.missing) console.log(`chaos: missing positions were due: before that connection's resumed=${m.early} in its catch-up=${m.catchup} live after resumed=${m.live} on no connection=${m.none}`);
    const hidden = problems.filter((p) => !p.text).length;
    if (hidden) console.log(`chaos: ... and ${hidden} more problems`);
    const ok = problems.length === 0;
    const c = counts;
    console.log(
        `chaos: ${ok ? 'PASS' : 'FAIL'} commands=${c.sent} (processed=${c.processed} rejected=${c.rejected}) kills=${stats.kills} ` +
            `(startup=${stats.startup} burst=${stats.burst} live=${stats.live}) terms=${stats.terms} term-unsettled=${stats.termBad} ` +
            `resends=${c.resends} lost=${c.lost} doubled=${c.doubled} gaps=${c.gaps} dups=${c.dups} positions=1..${c.positions} ` +
            `projections==replay=${c.replay.equal}/${c.replay.total} integrity=${c.integrity} ${c.rss} store=${opt.store ? 'postgres' : 'sqlite'} ` +
            `seed=${opt.seed} time=${elapsed().toFixed(0)}s`,
    );
    return ok;
}

/** A failed run keeps its data, with each client's connections and each life's RSS samples. */
function keepEvidence() {
    const traces = clients.map((cl) => ({ client: cl.clientId, user: cl.userUuid, firstResume: cl.firstResume, connections: cl.trace, anomalies: cl.anomalies }));
    writeFileSync(join(dataDir, 'clients.json'), JSON.stringify(traces, null, 1));
    const lives = stats.lives.map((l) => ({ n: l.n, exit: l.exit, signalled: l.signalled, readyMs: l.readyMs, climbKb: l.climb, rssKb: l.rss }));
    writeFileSync(join(dataDir, 'lives.json'), JSON.stringify(lives));
    console.log(`chaos: data kept in ${dataDir} (clients.json: each client's connections; lives.json: RSS samples), server log ${logPath}`);
}

async function main() {
    port = await freePort();
    const users = Array.from({ length: opt.users }, (_, n) => ({ n, email: `chaos${n}@example.org`, password: `chaos-password-${n}` }));
    emails.push(...users.map((u) => u.email));
    const timers = await begin(users);
    const more = () => stats.kills < opt.kills || elapsed() < opt['min-seconds'];
    while (more() && elapsed() < opt.minutes * 60) await runLife(pickEnd());
    const settleError = await settle();
    for (const t of timers) clearInterval(t);
    if (opt.soak) progress(true);

    const { counts, problems } = checkRun({ bin: BIN, dataDir, store: opt.store, clients });
    if (settleError) problems.unshift({ kind: 'settle', text: settleError });
    for (const c of stats.crashes) problems.unshift({ kind: 'crash', text: c });
    if (stats.termBad) problems.push({ kind: 'term', text: `${stats.termBad} connections closed by a graceful stop with acked commands not ended` });
    if (stats.kills < opt['min-kills']) problems.push({ kind: 'kills', text: `only ${stats.kills} kills (want >= ${opt['min-kills']})` });
    const rss = rssVerdict();
    if (opt.soak && !rss.ok) problems.push({ kind: 'rss', text: rss.text });
    counts.rss = rss.text;
    const ok = verdict(counts, problems);
    if (ok && !opt.keep) {
        rmSync(dataDir, { recursive: true, force: true });
        rmSync(logPath, { force: true });
    } else {
        keepEvidence();
    }
    process.exit(ok ? 0 : 1);
}

main().catch((e) => {
    console.log(`chaos: FAIL harness: ${e.stack || e}`);
    console.log(`chaos: data kept in ${dataDir}, server log ${logPath}`);
    for (const l of stats.lives) if (!l.exit) l.proc.kill('SIGKILL');
    process.exit(1);
});

