// pg-restart.test.mjs - PostgreSQL crashed (pg_ctl stop -m immediate) and
// started again under load with resending clients: the processor retries
// (store.unavailable in its log, calderwood_store_retries_total on its
// /metrics), competes for the lead again on its new connection and carries
// on; 0 commands lost, 0 doubled, no gap on any connection. This file runs
// a PostgreSQL cluster of its own (tests/pg/cluster.sh), so the crash
// touches no other test's database.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { request, until } from '../e2e/lib/client.mjs';
import { Cluster, logOf, startLoad, checkLoad, closeLoads } from './lib.mjs';

const PG = join(import.meta.dirname, '../pg/cluster.sh');
let pgDir, cluster, proc, gwA, gwB;

/** tests/pg/cluster.sh ACTION DIR, without blocking the event loop (the load runs meanwhile). */
function pgCtl(action) {
    return new Promise((resolve, reject) => {
        const p = spawn(PG, [action, pgDir], { stdio: ['ignore', 'inherit', 'inherit'] });
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cluster.sh ${action} exited ${code}`))));
    });
}

async function retriesOf(node) {
    const res = await request(node, 'GET', '/metrics');
    const m = res.text.match(/^calderwood_store_retries_total (\d+)$/m);
    assert.ok(m, 'calderwood_store_retries_total on /metrics');
    return Number(m[1]);
}

before(async () => {
    const r = spawnSync(PG, ['start'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cluster.sh start: ${r.stderr}`);
    const env = Object.fromEntries([...r.stdout.matchAll(/export (\w+)='([^']*)'/g)].map((m) => [m[1], m[2]]));
    pgDir = env.CW_PG_DIR;
    cluster = new Cluster('pgrestart', process.env.CW_NATS_URL, env.CW_TEST_STORE);
    for (let i = 1; i <= 2; i++) cluster.addUser(`p${i}@cluster.test`);
    proc = await cluster.start('processor', 'pproc');
    await until(() => /processor\.active/.test(logOf(proc)), 20_000, 'processor active');
    [gwA, gwB] = await Promise.all([cluster.start('gateway', 'pgwA'), cluster.start('gateway', 'pgwB')]);
});

after(async () => {
    closeLoads();
    try {
        if (cluster) await cluster.stop();
    } finally {
        if (pgDir) spawnSync(PG, ['stop', pgDir], { stdio: 'inherit' });
    }
});

describe('PostgreSQL restarted under load', () => {
    it('the processor retries and carries on: 0 lost, 0 doubled, no gap', async () => {
        const specs = [
            { email: 'p1@cluster.test', gw: gwA, watchGw: gwB },
            { email: 'p2@cluster.test', gw: gwB, watchGw: gwA },
        ];
        const load = await startLoad(specs, { N: 100 });
        const retriesBefore = await retriesOf(proc);
        try {
            await until(() => load.done() >= load.N / 2, 30_000, 'load under way');
            const t0 = Date.now();
            await pgCtl('crash');
            // The processor meets the dead connection with a batch in hand, and says so.
            await until(() => /store\.unavailable/.test(logOf(proc)), 20_000, 'the processor retrying');
            await pgCtl('recover');
            const before = load.done();
            await until(() => load.done() > before + 4, 30_000, 'commits after the restart');
            console.log(`# PostgreSQL crashed and started again: commands answered again ${Date.now() - t0} ms after the crash`);
            await until(() => load.done() === 2 * load.N, 60_000, 'every command answered');
        } finally {
            load.stop();
        }
        await checkLoad(cluster, load);
        const log = logOf(proc);
        const retries = (await retriesOf(proc)) - retriesBefore;
        assert.ok(retries > 0, `calderwood_store_retries_total rose by ${retries}`);
        // Its new connection does not hold the old one's advisory lock: it leads again first.
        assert.ok((log.match(/processor\.active/g) || []).length >= 2, 'the processor took the lead again');
        console.log(`# ${2 * load.N} commands, PostgreSQL restarted under load: ${retries} retries, 0 lost, 0 doubled, no gap on 4 connections`);
    });
});
