// gateway-kill.test.mjs - kill -9 of a gateway behind nginx under load: its
// clients reconnect through nginx to the other gateway, resume at open
// (/ws?after=N) and resend what was not answered; 0 lost, 0 doubled, no
// gap on any connection. nginx is started by this file (free port, its
// configuration and logs in the test directory) and stopped by its PID.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../e2e/lib/server.mjs';
import { request, until } from '../e2e/lib/client.mjs';
import { Cluster, logOf, startLoad, checkLoad, closeLoads } from './lib.mjs';

let cluster, gwA, gwB, lb, nginxDir;

function nginx(...args) {
    const r = spawnSync('nginx', ['-c', join(nginxDir, 'nginx.conf'), '-p', nginxDir, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nginx ${args.join(' ')}: ${r.stderr}`);
}

before(async () => {
    cluster = new Cluster('gwkill');
    for (let i = 1; i <= 2; i++) cluster.addUser(`g${i}@cluster.test`);
    await cluster.start('processor', 'kproc');
    await until(() => /processor\.active/.test(logOf(cluster.nodes[0])), 20_000, 'processor active');
    [gwA, gwB] = await Promise.all([cluster.start('gateway', 'kgwA'), cluster.start('gateway', 'kgwB')]);
    nginxDir = join(cluster.dir, 'nginx');
    mkdirSync(join(nginxDir, 'tmp'), { recursive: true });
    const port = await freePort();
    writeFileSync(
        join(nginxDir, 'nginx.conf'),
        `worker_processes 1;
pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${nginxDir}/tmp;
    proxy_temp_path ${nginxDir}/tmp;
    upstream gateways { server 127.0.0.1:${gwA.port}; server 127.0.0.1:${gwB.port}; }
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:${port};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 1h;
        location / { proxy_pass http://gateways; }
    }
}
`,
    );
    nginx();
    lb = { host: '127.0.0.1', port };
    await until(async () => {
        try {
            return (await request(lb, 'GET', '/health', { timeoutMs: 1000 })).status === 200;
        } catch {
            return false;
        }
    }, 20_000, 'nginx answers');
});

after(async () => {
    closeLoads();
    if (nginxDir) {
        const pid = Number(readFileSync(join(nginxDir, 'nginx.pid'), 'utf8'));
        process.kill(pid, 'SIGQUIT');
        await until(() => {
            try {
                process.kill(pid, 0);
                return false;
            } catch {
                return true;
            }
        }, 10_000, 'nginx stopped');
    }
    await cluster.stop();
});

describe('a gateway killed behind nginx', () => {
    it('its clients reconnect through nginx, resume and resend: 0 lost, 0 doubled, no gap', async () => {
        // Every connection through nginx: round robin puts them on both gateways.
        const specs = [1, 2].map((i) => ({ email: `g${i}@cluster.test`, gw: lb, watchGw: lb }));
        const load = await startLoad(specs, { N: 120 });
        try {
            await until(() => load.done() >= load.N / 2, 30_000, 'load under way');
            const t0 = Date.now();
            gwA.proc.kill('SIGKILL');
            await until(() => load.reconnects() > 0, 10_000, 'a client reconnected');
            const before = load.done();
            await until(() => load.done() > before + 4, 20_000, 'commands answered after the kill');
            console.log(`# gateway killed: ${load.reconnects()} connections reopened through nginx; commands answered again ${Date.now() - t0} ms after the kill`);
            await until(() => load.done() === 2 * load.N, 60_000, 'every command answered');
        } finally {
            load.stop();
        }
        assert.ok(load.reconnects() > 0, 'no connection was on the killed gateway');
        await checkLoad(cluster, load);
        console.log(`# ${2 * load.N} commands, a gateway killed behind nginx: 0 lost, 0 doubled, no gap on 4 connections`);
    });
});
