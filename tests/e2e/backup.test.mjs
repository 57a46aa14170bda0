// backup.test.mjs - a backup taken while the server is under a steady load
// of commands from WebSocket clients restores to a database that `check`
// passes and that a second server serves.
//
// Six connections keep sending page views (long URLs, so the database
// spans many backup steps) before, during and after `calderwood backup`;
// the copy must hold a prefix of the log that ends before the load does.
// Then `check` passes on the copy, and a server started on a copy of the
// copy lets the user log in and answers a query whose newest event is the
// backup's highest position.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, guard, BIN } from './lib/server.mjs';
import { loginAs, login, queryOk, WsClient, newClientId, until } from './lib/client.mjs';

const USER = { email: 'loader@example.org', password: 'loader-password-1', first: 'Lo', last: 'Ader' };
const CLIENTS = 6;
const BEFORE_BACKUP = 300; // positions committed before the backup starts
const LONG = 'x'.repeat(1800); // page-view URLs of about 2 KB
// `backup` copies SQLite only (a PostgreSQL store has pg_dump; tests/pg/check.sh).
const onPg = (process.env.CW_TEST_STORE || '').startsWith('postgres');

let srv;
let restored;
const work = mkdtempSync(join(tmpdir(), 'cw-backup-'));
let last = 0; // the newest position any outcome reported
let running = true;
const loops = [];

before(async () => {
    if (onPg) return;
    srv = await startServer({ users: [USER] });
    const { cookie } = await loginAs(srv, USER.email);
    for (let c = 0; c < CLIENTS; c++) {
        const ws = await WsClient.connect(srv, { cookie, label: `loader-${c}` });
        const cid = newClientId(`loader-${c}`);
        // Closed loop: each connection sends its next command once the last one is committed.
        loops.push(
            (async () => {
                for (let seq = 1; running; seq++) {
                    ws.cmd(cid, seq, 'visit-page', { url: `https://example.org/${c}/${seq}/${LONG}` });
                    const out = await ws.outcome(cid, seq, 60_000);
                    assert.equal(out[0], 'update', JSON.stringify(out).slice(0, 300));
                    last = Math.max(last, out[3].position);
                    ws.log.length = 0;
                }
                ws.terminate();
            })(),
        );
    }
});

after(async () => {
    running = false;
    await Promise.allSettled(loops);
    await restored?.stop();
    await srv?.stop();
    rmSync(work, { recursive: true, force: true });
});

/** Runs the binary without blocking the event loop (the load goes on); resolves { code, stdout, stderr }. */
function run(args) {
    return new Promise((resolveP, reject) => {
        const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('error', reject);
        p.on('exit', (code) => resolveP({ code, stdout, stderr }));
    });
}

test(
    'a backup under load passes check and serves',
    { skip: onPg && 'backup copies SQLite stores only' },
    guard(
        () => [srv, restored].filter(Boolean),
        async () => {
            const t00 = Date.now();
            await until(() => last >= BEFORE_BACKUP, 120_000, `${BEFORE_BACKUP} positions committed`);
            const t0 = Date.now();
            const file = join(work, 'backup.db');
            const started = last;
            const b = await run(['backup', '--data', srv.dataDir, '--into', file]);
            const during = last - started;
            const t1 = Date.now();
            assert.equal(b.code, 0, b.stderr);
            assert.match(b.stderr, /backup: \d+ of \d+ pages \(100%\)/);
            const m = /backup: wrote .*: (\d+) bytes, events up to position (\d+)/.exec(b.stderr);
            assert.ok(m, b.stderr);
            const copied = Number(m[2]);
            assert.ok(Number(m[1]) > 1024 * 1024, `a database of many steps: ${m[1]} bytes`);
            assert.ok(!existsSync(`${file}.tmp`), 'no .tmp left');
            assert.ok(copied >= started, `the copy holds what was committed before it began: ${copied} < ${started}`);

            // The load goes on after the copy: it must end before the log does.
            await until(() => last >= copied + 30, 60_000, 'commits after the backup');
            running = false;
            await Promise.all(loops);
            assert.ok(copied < last, `the copy (${copied}) is a prefix of the log (${last})`);

            const t2 = Date.now();
            const c = await run(['check', '--store', `sqlite:${file}`]);
            assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
            assert.match(c.stdout, /positions +ok \((\d+) events, 1 to \1 without a gap\)/);
            assert.match(c.stdout, /projections +ok/);
            assert.match(c.stdout, /check: all 5 checks passed/);
            const positions = /positions +ok \((\d+) events/.exec(c.stdout);
            assert.equal(Number(positions[1]), copied);

            const t3 = Date.now();
            // Restore: the copy as a new data directory's database, and serve it.
            const dir = join(work, 'restored');
            mkdirSync(dir, { mode: 0o700 });
            copyFileSync(file, join(dir, 'calderwood.db'));
            restored = await startServer({ dataDir: dir, knownUsers: [USER] });
            const { cookie } = await login(restored, USER.email, USER.password);
            const events = await queryOk(restored, cookie, 'events', { name: 'page-view', limit: 1 });
            assert.equal(events.length, 1);
            assert.equal(events[0].position, copied, 'the newest page view is the backup\'s last position');
            console.log(`# backup: ${m[1]} bytes, position ${copied} of ${last}; ${during} commits while it ran; ms: backup ${t1 - t0}, after ${t2 - t1}, check ${t3 - t2}, restore ${Date.now() - t3}, load ${t0 - t00}`);
        },
    ),
);
