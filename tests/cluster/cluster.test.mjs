// cluster.test.mjs - the distributed deployment with real servers: two
// processors (one active, one standby) and two gateways of the real binary,
// over the nats-server and PostgreSQL that tests/cluster/run.sh started.
//
// One cluster for the file, its tests in order: updates cross gateways;
// a rejection crosses the feed whole (code, message, a tricky client id);
// a logout on one gateway closes the user's socket on the other; kill -9
// of the active processor under load with resending clients (takeover time
// printed; 0 lost, 0 doubled, no gap on any connection); a graceful stop
// hands over at once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { login, request, WsClient, newClientId, until } from '../e2e/lib/client.mjs';
import { Cluster, PASSWORD, logOf, loggedAt, connectWhenKnown, startLoad, checkLoad, closeLoads } from './lib.mjs';

let cluster, gwA, gwB;
const procs = [];
const alive = () => procs.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);

before(async () => {
    cluster = new Cluster('main');
    for (let i = 1; i <= 5; i++) cluster.addUser(`u${i}@cluster.test`);
    const t0 = Date.now();
    procs.push(await cluster.start('processor', 'proc1'));
    await until(() => /processor\.active/.test(logOf(procs[0])), 20_000, 'proc1 active');
    procs.push(await cluster.start('processor', 'proc2'));
    await until(() => /processor\.standby/.test(logOf(procs[1])), 20_000, 'proc2 standby');
    [gwA, gwB] = await Promise.all([cluster.start('gateway', 'gwA'), cluster.start('gateway', 'gwB')]);
    console.log(`# two processors and two gateways up in ${Date.now() - t0} ms`);
});

after(() => {
    closeLoads();
    return cluster.stop();
});

describe('distributed deployment', () => {
    it('a client on gateway A sees the updates of commands sent through gateway B', async () => {
        const l = await login(gwA, 'u1@cluster.test', PASSWORD, { committed: false });
        const onB = await connectWhenKnown(gwB, l.cookie); // the login, known on B
        const onA = await WsClient.connect(gwA, { cookie: l.cookie });
        const cid = newClientId('x');
        onB.cmd(cid, 1, 'visit-page', { url: '/from-b' });
        const upB = await onB.outcome(cid, 1);
        assert.equal(upB[0], 'update');
        const upA = await onA.next((m) => m[0] === 'update' && m[1] === cid);
        assert.equal(upA[3].position, upB[3].position);
        assert.equal(upA[3].data.url, '/from-b');
        onA.close();
        onB.close();
    });

    it('a rejection crosses the feed whole; a client id with spaces, colons and UTF-8 too', async () => {
        const l = await login(gwA, 'u5@cluster.test', PASSWORD, { committed: false });
        const onB = await connectWhenKnown(gwB, l.cookie);
        const onA = await WsClient.connect(gwA, { cookie: l.cookie });
        // The feed's lines carry strings length-prefixed: these must not cut a field short.
        const cid = `${newClientId('x')} 12:ab "é" -`;
        onB.cmd(cid, 1, 'remove-from-cart', { sku: 'not-there', quantity: 1 });
        const ack = await onB.reply(cid, 1);
        assert.equal(ack[0], 'cmd-ack', JSON.stringify(ack));
        const rej = await onB.outcome(cid, 1);
        assert.equal(rej[0], 'rejected', JSON.stringify(rej));
        assert.equal(rej[1], cid);
        assert.equal(rej[3].code, 'not-in-cart');
        assert.equal(typeof rej[3].message, 'string');
        assert.equal(rej[3].command_uuid, ack[3].command_uuid);
        onB.cmd(cid, 2, 'visit-page', { url: '/after-rejected' });
        const up = await onB.outcome(cid, 2);
        assert.equal(up[0], 'update');
        assert.equal(up[1], cid);
        const upA = await onA.next((m) => m[0] === 'update' && m[1] === cid);
        assert.equal(upA[2], 2);
        assert.equal(upA[3].client_id, cid);
        assert.equal(upA[3].position, up[3].position);
        onA.close();
        onB.close();
    });

    it("a logout through gateway A closes the user's socket on gateway B", async () => {
        const l = await login(gwA, 'u2@cluster.test', PASSWORD, { committed: false });
        const onB = await connectWhenKnown(gwB, l.cookie);
        await onB.roundTrip();
        const t0 = Date.now();
        const res = await request(gwA, 'POST', '/logout', { cookie: l.cookie, body: '' });
        assert.ok([200, 204, 302, 303].includes(res.status), `logout status ${res.status}`);
        await onB.waitClose(10_000);
        const ms = Date.now() - t0;
        console.log(`# logout on A closed the socket on B in ${ms} ms`);
        assert.ok(ms < 2000, `closed after ${ms} ms`);
    });

    it('kill -9 of the active processor under load: a standby takes over; 0 lost, 0 doubled, no gap', async () => {
        const specs = [1, 2, 3, 4].map((i) => ({ email: `u${i}@cluster.test`, gw: i % 2 ? gwA : gwB, watchGw: i % 2 ? gwB : gwA }));
        const load = await startLoad(specs, { N: 120 });
        try {
            await until(() => load.done() >= load.N, 30_000, 'load under way');
            const active = alive().find((p) => /processor\.active/.test(logOf(p)));
            const standby = alive().find((p) => p !== active);
            const killAt = Date.now();
            active.proc.kill('SIGKILL');
            const before = load.done();
            await until(() => loggedAt(standby, /processor\.active/) !== null, 10_000, 'standby active');
            await until(() => load.done() > before + 4, 10_000, 'commits after the kill');
            const takeover = loggedAt(standby, /processor\.active/) - killAt;
            console.log(`# takeover: standby active ${takeover} ms after kill -9; commands answered again ${Date.now() - killAt} ms after it`);
            assert.ok(takeover < 3000, `takeover took ${takeover} ms`);
            await until(() => load.done() === 4 * load.N, 60_000, 'every command answered');
        } finally {
            load.stop();
        }
        await checkLoad(cluster, load);
        console.log(`# ${4 * load.N} commands through 2 gateways, kill -9 of the active processor: 0 lost, 0 doubled, no gap on 8 connections`);
    });

    it('a gracefully stopped processor hands over at once', async () => {
        const active = alive().find((p) => /processor\.active/.test(logOf(p)));
        procs.push(await cluster.start('processor', 'proc3'));
        await until(() => /processor\.standby/.test(logOf(procs.at(-1))), 20_000, 'proc3 standby');
        const t0 = Date.now();
        active.proc.kill('SIGTERM');
        // When one of the others logged that it leads, after t0.
        const ledAt = () => {
            for (const p of alive()) {
                if (p === active) continue;
                for (const l of logOf(p).split('\n')) {
                    const at = Date.parse(l.split(' ')[0]);
                    if (/processor\.active/.test(l) && at >= t0 - 5) return at;
                }
            }
            return null;
        };
        await until(() => ledAt() !== null, 10_000, 'a standby active');
        const ms = ledAt() - t0;
        console.log(`# SIGTERM to the active processor: a standby led ${ms} ms later`);
        assert.ok(ms < 3000, `handover took ${ms} ms`);
        const l = await login(gwB, 'u3@cluster.test', PASSWORD);
        const ws = await WsClient.connect(gwB, { cookie: l.cookie });
        const cid = newClientId('h');
        ws.cmd(cid, 1, 'visit-page', { url: '/after-handover' });
        assert.equal((await ws.outcome(cid, 1))[0], 'update');
        ws.close();
    });
});
