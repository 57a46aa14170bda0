// harness.mjs - what every browser test needs: a real `calderwood serve` on a
// free loopback port with a fresh data directory, Debian's Chromium driven by
// playwright-core, and a watch on every page that fails the test on any
// browser console error or uncaught page error.
//
//   const srv = await startServer({ users: [ALICE] });
//   const browser = await launchBrowser();
//   const { page, errors } = await openPage(browser);   // errors.check() throws on any
//   await login(page, srv, ALICE);
//   ...
//   await browser.close(); await srv.stop();
//
// CW_TEST_KEEP=1 keeps the data directory and server log of a failed test.
// CW_TEST_STORE=postgres://... runs each server on a PostgreSQL database of
// its own, as the e2e harness does (storeArgs in tests/e2e/lib/server.mjs).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { storeArgs } from '../../e2e/lib/server.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUILD = process.env.BUILD || 'build';
export const BIN = isAbsolute(BUILD) ? join(BUILD, 'calderwood') : join(ROOT, BUILD, 'calderwood');
export const CHROMIUM = process.env.CW_CHROMIUM || '/usr/bin/chromium';
export const IMG_DIR = join(ROOT, 'docs', 'img');
const KEEP = process.env.CW_TEST_KEEP === '1';

export const ALICE = { email: 'alice@example.com', password: 'alice-password-1', first: 'Alice', last: 'Archer' };
export const BOB = { email: 'bob@example.com', password: 'bob-password-22', first: 'Bob', last: 'Baker' };

const running = new Set();
process.on('exit', () => {
    for (const p of running) {
        try {
            p.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
});

export function freePort() {
    return new Promise((res, rej) => {
        const s = net.createServer();
        s.unref();
        s.on('error', rej);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => res(port));
        });
    });
}

function get(url, timeoutMs) {
    return new Promise((res, rej) => {
        const req = http.get(url, { timeout: timeoutMs, agent: false }, (r) => {
            r.resume();
            r.on('end', () => res(r.statusCode));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', rej);
    });
}

function addUser(dataDir, u) {
    const r = spawnSync(BIN, ['user', 'add', ...storeArgs(dataDir), '--email', u.email, '--first', u.first, '--last', u.last], {
        input: `${u.password}\n`,
        encoding: 'utf8',
        timeout: 60000,
    });
    if (r.status !== 0) throw new Error(`user add ${u.email} failed (${r.status}): ${r.stderr}`);
}

/** One `calderwood serve`; start() again after a stop or kill restarts it on the same port and data. */
export class Server {
    constructor({ dataDir, port, args = [] }) {
        this.dataDir = dataDir;
        this.port = port;
        this.args = args;
        this.logPath = `${dataDir}.log`;
        this.proc = null;
        this.failed = false;
    }

    get url() {
        return `http://127.0.0.1:${this.port}`;
    }

    log() {
        try {
            return readFileSync(this.logPath, 'utf8');
        } catch {
            return '';
        }
    }

    async start() {
        const argv = ['serve', ...storeArgs(this.dataDir), '--listen', `127.0.0.1:${this.port}`, '--no-demo-user', '--login-burst', '100000', '--login-rate', '100000', ...this.args];
        const fd = openSync(this.logPath, 'a');
        writeFileSync(fd, `# ${BIN} ${argv.join(' ')}\n`);
        const proc = spawn(BIN, argv, { cwd: ROOT, stdio: ['ignore', fd, fd] });
        closeSync(fd);
        this.proc = proc;
        running.add(proc);
        this.exited = new Promise((res) =>
            proc.on('exit', (code, signal) => {
                running.delete(proc);
                res({ code, signal });
            }),
        );
        let done = false;
        this.exited.then(() => (done = true));
        const deadline = Date.now() + 30000;
        while (Date.now() < deadline) {
            if (done) throw new Error(`server exited before it was healthy; log:\n${this.log().slice(-3000)}`);
            try {
                if ((await get(`${this.url}/health`, 1000)) === 200) return this;
            } catch {
                /* not yet */
            }
            await sleep(50);
        }
        throw new Error(`server not healthy in 30 s; log:\n${this.log().slice(-3000)}`);
    }

    /** Sends a signal and waits for the exit (SIGKILL after timeoutMs). */
    async signal(sig = 'SIGTERM', timeoutMs = 20000) {
        if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return null;
        this.proc.kill(sig);
        const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
        const r = await this.exited;
        clearTimeout(t);
        return r;
    }

    /** SIGSTOP / SIGCONT: the process holds its sockets but answers nothing. */
    pause() {
        this.proc.kill('SIGSTOP');
    }

    resume() {
        this.proc.kill('SIGCONT');
    }

    async stop() {
        const r = await this.signal('SIGTERM');
        if (KEEP && this.failed) {
            process.stderr.write(`# CW_TEST_KEEP: data in ${this.dataDir}, log ${this.logPath}\n`);
        } else {
            rmSync(this.dataDir, { recursive: true, force: true });
            rmSync(this.logPath, { force: true });
        }
        return r;
    }
}

/** A server on a free port with a fresh data directory and these users. */
export async function startServer({ users = [], args = [] } = {}) {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: make build/calderwood first`);
    const dataDir = mkdtempSync(join(tmpdir(), 'cw-browser-'));
    for (const u of users) addUser(dataDir, u);
    const srv = new Server({ dataDir, port: await freePort(), args });
    await srv.start();
    return srv;
}

/**
 * Headless Chromium from Debian. playwright-core's launch() gives the browser
 * a fresh --user-data-dir of its own (a new temporary profile, removed on
 * close); each newContext() inside it is isolated from the others (cookies,
 * storage), which is how two users share one browser.
 */
export async function launchBrowser() {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    return chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
        ],
    });
}

/**
 * A new context and page whose console errors and page errors are collected.
 * errors.check() throws when there is any; errors.expect(re) lets messages
 * matching re pass while it is in force (used only around a server restart,
 * when the browser itself reports the refused reconnection attempts).
 */
export async function openPage(browser, { viewport = { width: 1280, height: 800 }, ...opts } = {}) {
    const context = await browser.newContext({ viewport, acceptDownloads: true, ...opts });
    const page = await context.newPage();
    const errors = watch(page);
    return { context, page, errors };
}

export function watch(page) {
    const list = [];
    const tolerated = [];
    let allow = null;
    const note = (kind, text) => {
        if (allow && allow.test(text)) tolerated.push(text);
        else list.push(`${kind}: ${text}`);
    };
    page.on('console', (m) => {
        if (m.type() === 'error') note('console error', `${m.text()} (${m.location()?.url || 'no url'})`);
    });
    page.on('pageerror', (e) => note('page error', `${e.message}\n${e.stack || ''}`));
    page.on('crash', () => list.push('page crashed'));
    return {
        list,
        tolerated,
        expect(re) {
            allow = re;
        },
        stopExpecting() {
            allow = null;
        },
        check() {
            assert.deepEqual(list, [], `the browser reported errors:\n${list.join('\n')}`);
        },
    };
}

/** Logs in through the form and waits for the live console. */
export async function login(page, srv, user) {
    await page.goto(`${srv.url}/login`);
    await page.fill('#email', user.email);
    await page.fill('#password', user.password);
    await Promise.all([page.waitForURL(`${srv.url}/console`), page.click('#login-submit')]);
    await waitLive(page);
    await page.waitForSelector('#command-name option[value="visit-page"]', { state: 'attached' });
}

export async function waitLive(page, timeout = 15000) {
    await page.waitForSelector('#conn[data-state="live"]', { timeout });
}

/** Picks a command, writes its data as JSON, and sends it with Ctrl+Enter. Returns its sequence. */
export async function sendCommand(page, name, data) {
    await page.selectOption('#command-name', name);
    await page.fill('#command-json', JSON.stringify(data));
    const before = await page.$$eval('#command-list li', (l) => l.map((x) => Number(x.dataset.seq)));
    await page.press('#command-json', 'Control+Enter');
    const handle = await page.waitForFunction(
        (seen) => {
            const li = [...document.querySelectorAll('#command-list li')].find((x) => !seen.includes(Number(x.dataset.seq)));
            return li ? Number(li.dataset.seq) : null;
        },
        before,
        { timeout: 5000 },
    );
    return handle.jsonValue();
}

/** Waits until the command item of seq is in a final state; returns its dataset. */
export async function commandOutcome(page, seq, timeout = 15000) {
    const sel = `#command-list li[data-seq="${seq}"][data-final="true"]`;
    await page.waitForSelector(sel, { timeout });
    return page.$eval(sel, (li) => ({ ...li.dataset, text: li.innerText }));
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

export function imgPath(name) {
    mkdirSync(IMG_DIR, { recursive: true });
    return join(IMG_DIR, name);
}

/** Wraps a test body: on failure marks the servers failed (CW_TEST_KEEP) and prints their log tails. */
export function guard(getServers, fn) {
    return async (t) => {
        try {
            return await fn(t);
        } catch (e) {
            for (const s of [].concat(getServers() || [])) {
                if (!s) continue;
                s.failed = true;
                t.diagnostic(`server ${s.url} log tail:\n${s.log().split('\n').slice(-30).join('\n')}`);
            }
            throw e;
        }
    };
}
