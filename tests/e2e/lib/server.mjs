// server.mjs - start and stop a real `calderwood serve` for end-to-end tests.
//
// Each server gets a free loopback port, its own data directory under /tmp,
// the users a test file asks for (created with `calderwood user add` before
// the server starts), and a log file holding its stdout and stderr. The log's
// tail is printed when a test guarded with `guard()` fails. The data
// directory is deleted on stop unless CW_TEST_KEEP=1 is set and a guarded
// test of that server failed.
//
// With CW_TEST_STORE=postgres://... (a maintenance database, as
// tests/pg/cluster.sh prints it), every data directory gets a PostgreSQL
// database of its own, created with psql, and every command is given
// --store with its URL (storeArgs).
//
// CW_SERVER_ARGS="--gateway-threads 1" adds flags to every server started.
//
//   const srv = await startServer({ users: [{ email, password, first, last }], args: [...] });
//   srv.url, srv.port, srv.origin, srv.users.get(email).user_uuid
//   await srv.stop();               // SIGTERM, waits for exit, returns { code, signal }

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUILD = process.env.BUILD || 'build';
export const BIN = isAbsolute(BUILD) ? join(BUILD, 'calderwood') : join(ROOT, BUILD, 'calderwood');
const KEEP = process.env.CW_TEST_KEEP === '1';

/** Every server still running, killed hard if the test process exits without stopping it. */
const running = new Set();
process.on('exit', () => {
    for (const s of running) {
        try {
            s.proc.kill('SIGKILL');
        } catch {
            /* already gone */
        }
    }
});

/** A TCP port nobody listens on right now (listen on 0, close, reuse the number). */
export function freePort() {
    return new Promise((resolveP, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolveP(port));
        });
    });
}

/** CW_SERVER_ARGS split on white space ("--gateway-threads 4"). */
export function serverArgsFromEnv() {
    return (process.env.CW_SERVER_ARGS || '').split(/\s+/).filter(Boolean);
}

let helpText;
/** The text of `calderwood serve --help`, read once. */
export function serveHelp() {
    if (helpText === undefined) {
        const r = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
        if (r.error) throw new Error(`cannot run ${BIN}: ${r.error.message} (build it with make build/calderwood)`);
        helpText = `${r.stdout}${r.stderr}`;
    }
    return helpText;
}

const PG_ADMIN = (process.env.CW_TEST_STORE || '').startsWith('postgres') ? process.env.CW_TEST_STORE : null;

/** The admin URL with its database (the path) replaced by name. */
function pgUrl(name) {
    // Not new URL(): libpq's postgres://user@/db?host=/dir has an empty host.
    const m = /^([a-z]+:\/\/[^/?]*)(\/[^?]*)?(.*)$/.exec(PG_ADMIN);
    return `${m[1]}/${encodeURIComponent(name)}${m[3]}`;
}

/** The database name of a data directory: its base name, as a quoted identifier. */
function pgName(dataDir) {
    return dataDir.split('/').pop();
}

/**
 * The flags that name a data directory's store: ['--data', dir], plus
 * ['--store', URL] under CW_TEST_STORE=postgres://..., the database made
 * on first use (a marker file in the directory remembers it).
 */
export function storeArgs(dataDir) {
    if (!PG_ADMIN) return ['--data', dataDir];
    const marker = join(dataDir, 'pg-database');
    if (!existsSync(marker)) {
        const r = spawnSync('psql', [PG_ADMIN, '-qc', `CREATE DATABASE "${pgName(dataDir)}"`], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`CREATE DATABASE for ${dataDir} failed: ${r.stderr}`);
        writeFileSync(marker, pgName(dataDir));
    }
    return ['--data', dataDir, '--store', pgUrl(pgName(dataDir))];
}

/** Drops a data directory's PostgreSQL database, if it has one. */
function dropStore(dataDir) {
    if (!PG_ADMIN || !existsSync(join(dataDir, 'pg-database'))) return;
    spawnSync('psql', [PG_ADMIN, '-qc', `DROP DATABASE IF EXISTS "${pgName(dataDir)}" WITH (FORCE)`]);
}

/** Creates a user with the CLI; returns its user_uuid (parsed from "registered E as user U"). */
export function addUser(dataDir, { email, password, first = 'Test', last = 'User' }) {
    const r = spawnSync(BIN, ['user', 'add', ...storeArgs(dataDir), '--email', email, '--first', first, '--last', last], {
        input: `${password}\n`,
        encoding: 'utf8',
        timeout: 60_000,
    });
    if (r.status !== 0) {
        throw new Error(`user add ${email} failed (exit ${r.status}): ${r.stderr.trim()}`);
    }
    const m = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(r.stdout);
    return m ? m[1] : null;
}

/** One HTTP GET with a short timeout; resolves { status, body } or rejects. */
function probe(url, timeoutMs) {
    return new Promise((resolveP, reject) => {
        const client = url.startsWith('https:') ? https : http;
        // A TLS test server has a self-signed certificate.
        const req = client.get(url, { timeout: timeoutMs, agent: false, rejectUnauthorized: false }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                req.destroy();
                resolveP({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
            });
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
    });
}

export class Server {
    constructor(opts) {
        this.opts = opts;
        this.dataDir = opts.dataDir;
        this.ownsDataDir = opts.ownsDataDir;
        this.host = '127.0.0.1';
        this.port = 0;
        this.users = new Map(); // email -> { email, password, first, last, user_uuid }
        this.failed = false;
        this.proc = null;
        this.exit = null; // { code, signal } once the process ended
        this.logPath = join(this.dataDir, '..', `${this.dataDir.split('/').pop()}.log`);
    }

    get url() {
        return `${this.opts.tls ? 'https' : 'http'}://${this.host}:${this.port}`;
    }

    get origin() {
        return this.url;
    }

    /** The server's log so far (stdout and stderr). */
    log() {
        try {
            return readFileSync(this.logPath, 'utf8');
        } catch {
            return '';
        }
    }

    /** The last n lines of the log, for failure messages. */
    logTail(n = 60) {
        const lines = this.log().split('\n');
        return lines.slice(-n).join('\n');
    }

    user(email) {
        const u = this.users.get(email);
        if (!u) throw new Error(`no test user ${email} on this server`);
        return u;
    }

    async start() {
        const { args = [], readyTimeoutMs = 30_000, env = {} } = this.opts;
        this.port = this.opts.port || (await freePort());
        const argv = ['serve', ...storeArgs(this.dataDir), '--listen', `${this.host}:${this.port}`];
        const help = serveHelp();
        if (this.opts.demoUser === false && /--no-demo-user/.test(help)) argv.push('--no-demo-user');
        // Many logins come from 127.0.0.1 in a test file: unless a test sets
        // the login rate limit itself, raise it out of the way.
        for (const [flag, value] of [
            ['--login-burst', '100000'],
            ['--login-rate', '100000'],
        ]) {
            if (!args.includes(flag) && help.includes(flag)) argv.push(flag, value);
        }
        // CW_SERVER_ARGS: flags for every server of the run (the suite with
        // --gateway-threads 1, say); a test's own args come after and win.
        argv.push(...serverArgsFromEnv(), ...args);
        this.argv = argv;
        const fd = openSync(this.logPath, 'a');
        writeFileSync(fd, `# ${BIN} ${argv.join(' ')}\n`);
        this.proc = spawn(BIN, argv, { cwd: ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
        closeSync(fd);
        running.add(this);
        this.exited = new Promise((res) => {
            this.proc.on('exit', (code, signal) => {
                this.exit = { code, signal };
                running.delete(this);
                res(this.exit);
            });
        });
        const deadline = Date.now() + readyTimeoutMs;
        let last = 'no answer';
        while (Date.now() < deadline) {
            if (this.exit) {
                throw new Error(
                    `server exited (code ${this.exit.code}, signal ${this.exit.signal}) before /health answered; log:\n${this.logTail()}`,
                );
            }
            let r = null;
            try {
                r = await probe(`${this.url}/health`, 1000);
            } catch (e) {
                last = e.message;
            }
            if (r && r.status === 200) {
                // On CW_TEST_STORE=postgres://..., the server must say it runs there.
                if (PG_ADMIN && !/store\.opened store=postgres/.test(this.log())) {
                    await this.kill();
                    throw new Error(`server is not on PostgreSQL; log:\n${this.logTail()}`);
                }
                return this;
            }
            if (r) last = `status ${r.status}: ${r.body.slice(0, 200)}`;
            await new Promise((r) => setTimeout(r, 50));
        }
        await this.kill();
        throw new Error(`server not healthy after ${readyTimeoutMs} ms (${last}); log:\n${this.logTail()}`);
    }

    /** Ends the process hard (SIGKILL) and waits for it. */
    async kill() {
        if (this.proc && !this.exit) {
            this.proc.kill('SIGKILL');
            await this.exited;
        }
    }

    /**
     * SIGTERM, then waits up to timeoutMs for the exit (SIGKILL after that).
     * Returns { code, signal }. With { keepData: true } the data directory is
     * left for a later server (restart tests); otherwise it is removed unless
     * CW_TEST_KEEP=1 and a guarded test failed.
     */
    async stop({ timeoutMs = 20_000, keepData = false } = {}) {
        let result = this.exit;
        if (this.proc && !this.exit) {
            this.proc.kill('SIGTERM');
            let handle;
            const timer = new Promise((r) => {
                handle = setTimeout(r, timeoutMs, 'timeout');
            });
            const first = await Promise.race([this.exited, timer]);
            clearTimeout(handle);
            if (first === 'timeout') {
                this.proc.kill('SIGKILL');
                await this.exited;
                result = { code: null, signal: 'SIGKILL', timedOut: true };
            } else {
                result = first;
            }
        }
        if (!keepData) this.cleanup();
        return result;
    }

    cleanup() {
        if (KEEP && this.failed) {
            process.stderr.write(`# CW_TEST_KEEP: data kept in ${this.dataDir}, log ${this.logPath}\n`);
            return;
        }
        if (this.ownsDataDir) {
            dropStore(this.dataDir);
            rmSync(this.dataDir, { recursive: true, force: true });
        }
        if (!KEEP || !this.failed) rmSync(this.logPath, { force: true });
    }
}

/**
 * Starts a server. Options:
 *   users: [{ email, password, first, last }] created before the start
 *   args: extra `serve` flags
 *   dataDir: reuse an existing data directory (then users are not re-created
 *            unless listed, and the directory is not deleted on stop)
 *   demoUser: false (default) passes --no-demo-user when the binary knows it
 *   port: a fixed port (default: a free one)
 */
export async function startServer(opts = {}) {
    if (!existsSync(BIN)) throw new Error(`${BIN} does not exist: run make build/calderwood first`);
    let dataDir = opts.dataDir;
    const ownsDataDir = !dataDir;
    if (!dataDir) dataDir = mkdtempSync(join(tmpdir(), 'cw-e2e-'));
    const srv = new Server({ demoUser: false, ...opts, dataDir, ownsDataDir });
    for (const u of opts.users || []) {
        const user = { first: 'Test', last: 'User', ...u };
        user.user_uuid = addUser(dataDir, user);
        srv.users.set(user.email, user);
    }
    for (const u of opts.knownUsers || []) srv.users.set(u.email, u);
    try {
        await srv.start();
    } catch (e) {
        srv.failed = true;
        if (!KEEP) {
            if (ownsDataDir) {
                dropStore(dataDir);
                rmSync(dataDir, { recursive: true, force: true });
            }
            rmSync(srv.logPath, { force: true }); // its tail is in the error message
        }
        throw e;
    }
    return srv;
}

/**
 * Wraps a test body: on failure, marks the server failed (so CW_TEST_KEEP
 * keeps its data) and attaches the tail of its log to the error.
 * getServer returns the server (or an array of servers) at run time.
 */
export function guard(getServer, fn) {
    return async (t) => {
        try {
            return await fn(t);
        } catch (e) {
            const list = [].concat(getServer() || []);
            for (const s of list) {
                if (!s) continue;
                s.failed = true;
                const where = KEEP ? ` (data ${s.dataDir}, log ${s.logPath})` : '';
                const state = s.exit ? `EXITED (code ${s.exit.code}, signal ${s.exit.signal})` : 'running';
                t.diagnostic(`server ${s.url} ${state}${where}, last lines of its log:`);
                for (const line of s.logTail(40).split('\n')) if (line) t.diagnostic(`| ${line}`);
            }
            throw e;
        }
    };
}

/** Runs `calderwood events` on a data directory; returns the parsed JSON lines. */
export function exportEvents(dataDir, extra = []) {
    const r = spawnSync(BIN, ['events', ...storeArgs(dataDir), '--format', 'jsonl', ...extra], {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`events export failed (exit ${r.status}): ${r.stderr}`);
    return r.stdout
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
}
