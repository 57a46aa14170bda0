// exhaustion.test.mjs - hostile load: the server at its descriptor limit
// neither spins nor stays stuck, and a storm of connections sending garbage
// leaves its memory bounded and a well-behaved client's latency near idle.
//
// CW_GARBAGE_CONNECTIONS sets the storm's size (default 2,000; the issue's
// 10,000 is `CW_GARBAGE_CONNECTIONS=10000 tests/e2e/run.sh tests/e2e/exhaustion.test.mjs`).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { startServer, guard, ROOT } from './lib/server.mjs';
import { request, loginAs, WsClient, percentile, until } from './lib/client.mjs';

const TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const SANITIZED = /san/.test(process.env.BUILD || '');

/** The process's user + system CPU time so far, in seconds (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

function openDescriptors(pid) {
    return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKb(pid) {
    return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
}

/** A client that sends one keep-alive GET /health and holds its socket; .answered once a 200 came. */
function healthClient(srv) {
    const c = { answered: false, socket: net.connect(srv.port, srv.host) };
    c.socket.on('error', () => {});
    c.socket.on('data', (d) => {
        if (d.toString('latin1').startsWith('HTTP/1.1 200')) c.answered = true;
    });
    c.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    return c;
}

describe('at the descriptor limit', () => {
    let srv;
    before(async () => {
        srv = await startServer();
    });
    after(() => srv?.stop());

    test(
        'accepting pauses without spinning a core, logs once, and resumes when descriptors free up',
        { timeout: 240_000 },
        guard(
            () => srv,
            async (t) => {
                const pid = srv.proc.pid;
                const limit = openDescriptors(pid) + 30;
                const set = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`], { encoding: 'utf8' });
                assert.equal(set.status, 0, `prlimit failed: ${set.stderr}`);
                const started = Date.now();

                const clients = Array.from({ length: 60 }, () => healthClient(srv));
                const answered = () => clients.filter((c) => c.answered).length;
                // Over the limit: every descriptor the server may have is open, and answers stopped coming.
                let seen = -1;
                let stableSince = Date.now();
                await until(
                    () => {
                        const n = answered();
                        if (n !== seen) [seen, stableSince] = [n, Date.now()];
                        return n > 0 && n < clients.length && Date.now() - stableSince > 1000 && openDescriptors(pid) >= limit - 2;
                    },
                    120_000,
                    'the server to reach its descriptor limit',
                    50,
                );

                const cpu0 = cpuSeconds(pid);
                const wall0 = performance.now();
                await delay(3000);
                const share = (cpuSeconds(pid) - cpu0) / ((performance.now() - wall0) / 1000);
                const waiting = clients.length - answered();
                t.diagnostic(`limit ${limit} descriptors: ${clients.length - waiting} served, ${waiting} waiting, CPU ${(share * 100).toFixed(1)} % of a core over 3 s`);
                assert.ok(waiting > 0, 'the server was still over its limit while its CPU was measured');
                assert.ok(share < 0.2, `the server used ${(share * 100).toFixed(1)} % of a core while over its descriptor limit (limit 20 %)`);

                // Descriptors free up: the clients that waited are served, and new ones too.
                for (const c of clients.filter((x) => x.answered)) c.socket.destroy();
                await until(() => answered() === clients.length, 60_000, 'every waiting client to be served', 50);
                // The clients just served hold the freed descriptors again; let go of them so a new one fits.
                for (const c of clients) c.socket.destroy();
                assert.equal((await request(srv, 'GET', '/health')).status, 200);

                const lines = srv.log().split('\n').filter((l) => l.includes('gateway.accept_paused')).length;
                const intervals = Math.ceil((Date.now() - started) / 10_000);
                t.diagnostic(`${lines} gateway.accept_paused log lines over ${intervals} ten-second intervals`);
                assert.ok(lines >= 1 && lines <= intervals + 1, `${lines} accept_paused lines: wanted one per 10 s at most`);
            },
        ),
    );
});

describe('a garbage storm', () => {
    const COUNT = Number(process.env.CW_GARBAGE_CONNECTIONS || 2000);
    const ALICE = { email: 'alice@example.org', password: 'alice-password-1' };
    let srv;
    before(async () => {
        srv = await startServer({ users: [ALICE] });
    });
    after(() => srv?.stop());

    test(
        `${COUNT} connections sending garbage leave memory bounded and a ping's p99 near idle`,
        { timeout: 600_000 },
        guard(
            () => srv,
            async (t) => {
                const pid = srv.proc.pid;
                const { cookie } = await loginAs(srv, ALICE.email);
                const pinger = await WsClient.connect(srv, { cookie, label: 'pinger' });
                const pingFor = async (ms) => {
                    const rtts = [];
                    const end = performance.now() + ms;
                    while (performance.now() < end) {
                        const t0 = performance.now();
                        await pinger.roundTrip(60_000);
                        rtts.push(performance.now() - t0);
                        await delay(5);
                    }
                    return rtts;
                };
                await pingFor(1000); // warm-up
                const idle = await pingFor(3000);
                const baseKb = rssKb(pid);

                const storm = spawn(process.execPath, [join(ROOT, 'tests/e2e/lib/garbage-storm.mjs'), String(srv.port), String(COUNT), cookie], {
                    stdio: ['pipe', 'pipe', 'inherit'],
                });
                let peakKb = baseKb;
                const during = [];
                let done = false;
                const sampler = setInterval(() => {
                    peakKb = Math.max(peakKb, rssKb(pid));
                }, 50);
                try {
                    const ready = new Promise((resolveP, reject) => {
                        readline.createInterface({ input: storm.stdout }).once('line', (l) => resolveP(JSON.parse(l)));
                        storm.on('exit', (code) => reject(new Error(`the storm process exited (${code}) before it was ready`)));
                    });
                    const pinging = (async () => {
                        while (!done) during.push(...(await pingFor(500)));
                    })();
                    const report = await ready;
                    during.push(...(await pingFor(3000))); // every held connection still open
                    done = true;
                    await pinging;
                    peakKb = Math.max(peakKb, rssKb(pid));

                    const idleP99 = percentile(idle, 99);
                    const stormP99 = percentile(during, 99);
                    // 8 KiB a connection (measured: 5) for lws's record, ours and the held head or
                    // frame; ASan's quarantine keeps what the closed ones freed, hence its allowance.
                    const boundKb = baseKb + (SANITIZED ? 300 * 1024 : 16 * 1024) + COUNT * (SANITIZED ? 64 : 8);
                    t.diagnostic(
                        `${report.opened} opened, ${report.held} held, ${report.errors} errors; RSS ${baseKb} KiB idle, ` +
                            `${peakKb} KiB peak (bound ${boundKb}); ping p99 ${idleP99.toFixed(1)} ms idle, ` +
                            `${stormP99.toFixed(1)} ms during (${during.length} pings), max ${Math.max(...during).toFixed(1)} ms`,
                    );
                    assert.equal(report.opened, COUNT);
                    // Two kinds in five are held open; on a slow machine the server may end some first.
                    assert.ok(report.held >= COUNT / 5, `only ${report.held} garbage connections were held open`);
                    assert.ok(peakKb <= boundKb, `RSS peaked at ${peakKb} KiB, over ${boundKb} KiB`);
                    // The storm's own process shares the machine's cores: the bound allows for that.
                    const latencyBound = Math.max(idleP99 * 5, idleP99 + (SANITIZED ? 750 : 250));
                    assert.ok(stormP99 <= latencyBound, `ping p99 ${stormP99.toFixed(1)} ms during the storm, over ${latencyBound.toFixed(1)} ms`);
                } finally {
                    done = true;
                    clearInterval(sampler);
                    storm.stdin.end('stop\n');
                }
                await until(() => storm.exitCode !== null, 60_000, 'the storm process to exit');
                await pinger.roundTrip(60_000);
                pinger.close();
            },
        ),
    );
});
