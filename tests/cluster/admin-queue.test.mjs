// admin-queue.test.mjs - the CLI's writing subcommands in a distributed
// deployment: with --queue they go through JetStream and wait for their
// outcome in the store; without it, a store an active processor leads is
// refused, and a distributed server's admin socket says to use the queue.
//
// One processor and two gateways for the file, its tests in order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN } from '../e2e/lib/server.mjs';
import { login, WsClient, until } from '../e2e/lib/client.mjs';
import { Cluster, PASSWORD, logOf } from './lib.mjs';

let cluster, gwA, gwB;
const EMAIL = 'queued@cluster.test';

/** Runs the CLI (asynchronously: the test's own event loop stays free) and collects its output. */
function cli(args, input = '') {
    return new Promise((resolve) => {
        const p = spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('exit', (status) => resolve({ status, stdout, stderr }));
        // A subcommand that reads no input may be gone before it is written (EPIPE on a
        // busy machine): its exit status and output are what the test judges.
        p.stdin.on('error', () => {});
        p.stdin.end(input);
    });
}

const viaQueue = (...args) => [...args, '--queue', cluster.nats, '--store', cluster.store, '--data', join(cluster.dir, 'cli')];

before(async () => {
    cluster = new Cluster('adminq');
    cluster.addUser('early@cluster.test'); // no processor yet: the CLI writes, holding the lead
    const proc = await cluster.start('processor', 'proc1');
    await until(() => /processor\.active/.test(logOf(proc)), 20_000, 'proc1 active');
    [gwA, gwB] = await Promise.all([cluster.start('gateway', 'gwA'), cluster.start('gateway', 'gwB')]);
});

after(() => cluster.stop());

describe('administration commands in a distributed deployment', () => {
    it('without --queue, a store an active processor leads is refused', async () => {
        const r = await cli(['user', 'add', '--email', 'direct@cluster.test', '--first', 'D', '--last', 'U', '--store', cluster.store, '--data', join(cluster.dir, 'cli')], `${PASSWORD}\n`);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /active processor leads .*--queue nats:/);
    });

    it("a distributed server's admin socket refuses, pointing at the queue", async () => {
        const r = await cli(['user', 'add', '--email', 'socket@cluster.test', '--first', 'S', '--last', 'U', '--store', cluster.store, '--data', join(cluster.dir, 'gwA')], `${PASSWORD}\n`);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /distributed deployment.*--queue nats:.*\(distributed\)/);
    });

    it('user add through the queue: the user logs in on both gateways', async () => {
        const t0 = Date.now();
        const r = await cli(['user', 'add', '--email', EMAIL, '--first', 'Q', '--last', 'U', ...viaQueue()], `${PASSWORD}\n`);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^registered ${EMAIL} as user [0-9a-f-]{36}\n$`));
        console.log(`# user add through the queue answered in ${Date.now() - t0} ms`);
        for (const gw of [gwA, gwB]) {
            const l = await login(gw, EMAIL, PASSWORD, { committed: false });
            assert.equal(l.status, 200);
        }
        const again = await cli(['user', 'add', '--email', EMAIL, '--first', 'Q', '--last', 'U', ...viaQueue()], `${PASSWORD}\n`);
        assert.equal(again.status, 1, 'a second add is rejected');
        assert.match(again.stderr, /email/);
    });

    it("user disable through the queue ends the user's sessions on both gateways", async () => {
        const sockets = [];
        for (const gw of [gwA, gwB]) {
            const l = await login(gw, EMAIL, PASSWORD);
            const ws = await WsClient.connect(gw, { cookie: l.cookie });
            await ws.roundTrip();
            sockets.push(ws);
        }
        const r = await cli(['user', 'disable', '--email', EMAIL, ...viaQueue()]);
        assert.equal(r.status, 0, r.stderr);
        // the two sessions of this test, and the logins of the one before
        const ended = r.stdout.match(new RegExp(`^disabled ${EMAIL}; ended (\\d+) sessions\n$`));
        assert.ok(ended && Number(ended[1]) >= 2, r.stdout);
        await Promise.all(sockets.map((ws) => ws.waitClose(10_000)));
        for (const gw of [gwA, gwB]) assert.notEqual((await login(gw, EMAIL, PASSWORD, { expectOk: false })).status, 200, 'a disabled user cannot log in');
        const en = await cli(['user', 'enable', '--email', EMAIL, ...viaQueue()]);
        assert.equal(en.status, 0, en.stderr);
        assert.equal(en.stdout, `enabled ${EMAIL}\n`);
        await login(gwB, EMAIL, PASSWORD);
        const end = await cli(['session', 'end', '--user', EMAIL, ...viaQueue()]);
        assert.equal(end.status, 0, end.stderr);
        assert.match(end.stdout, new RegExp(`^ended 1 session of ${EMAIL}\n$`));
    });

    it('user passwd through the queue: the new password works on both gateways, the old on neither', async () => {
        const r = await cli(['user', 'passwd', '--email', EMAIL, ...viaQueue()], 'another-password-2\n');
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^changed the password of ${EMAIL}; ended \\d+ sessions?\n$`));
        for (const gw of [gwA, gwB]) {
            assert.notEqual((await login(gw, EMAIL, PASSWORD, { expectOk: false })).status, 200, 'the old password');
            assert.equal((await login(gw, EMAIL, 'another-password-2', { committed: false })).status, 200);
        }
    });
});
