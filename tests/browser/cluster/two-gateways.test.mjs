// two-gateways.test.mjs - the console through nginx in front of the local
// cluster (tools/cluster.sh, started by ./run.sh): two tabs, each logged in
// through nginx, whose WebSockets landed on different gateways (each
// gateway's /metrics says so), see each other's page views live. A page
// view sent through one gateway reaches the other tab by the processor's
// update feed on NATS, so this is the distributed path end to end in a
// real browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, openPage, login, waitLive, sendCommand, commandOutcome } from '../lib/harness.mjs';

const URL = process.env.CW_CLUSTER_URL;
const GATEWAYS = (process.env.CW_CLUSTER_GATEWAYS || '').split(',').filter(Boolean);
if (!URL || GATEWAYS.length !== 2) throw new Error('run through tests/browser/cluster/run.sh');
const DEMO = { email: 'demo@calderwood.local', password: process.env.CW_CLUSTER_PASSWORD };
const srv = { url: URL };

let browser;

before(async () => {
    browser = await launchBrowser();
});

after(async () => {
    await browser?.close();
});

/** Open WebSockets on each gateway, from its /metrics. */
async function connections() {
    return Promise.all(
        GATEWAYS.map(async (port) => {
            const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
            return Number(/^calderwood_connections (\d+)$/m.exec(text)[1]);
        }),
    );
}

/** Polls until fn() is truthy, or fails after timeoutMs. */
async function until(fn, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

const rowOf = (page, url) =>
    page.waitForFunction(
        (u) => [...document.querySelectorAll('#updates-table tbody tr')].find((tr) => tr.cells[2].textContent.includes(`"${u}"`))?.dataset.position,
        url,
        { timeout: 10000 },
    );

test("two tabs through nginx on different gateways see each other's page views live", async () => {
    const a = await openPage(browser);
    const b = await openPage(browser);
    await login(a.page, srv, DEMO);
    await login(b.page, srv, DEMO);
    // nginx balances each request: reload b until the two sockets are on different gateways.
    let counts;
    for (let attempt = 0; ; attempt++) {
        counts = await until(async () => {
            const c = await connections();
            return c[0] + c[1] === 2 && c;
        }, 10_000, 'both tabs connected, the old socket of a reload gone');
        if (counts[0] === 1) break;
        assert.ok(attempt < 20, `every reload landed on the same gateway as the other tab: ${counts}`);
        await b.page.reload();
        await waitLive(b.page);
    }
    console.log(`# one tab's socket on each gateway (${GATEWAYS.join(', ')}): ${counts}`);

    for (const [from, to, url] of [
        [a, b, '/sent-through-one-gateway'],
        [b, a, '/sent-through-the-other'],
    ]) {
        const seq = await sendCommand(from.page, 'visit-page', { url });
        assert.equal((await commandOutcome(from.page, seq)).state, 'processed');
        const pos = await (await rowOf(to.page, url)).jsonValue();
        const cells = await to.page.$$eval(`#updates-table tr[data-position="${pos}"] td`, (tds) => tds.map((t) => t.textContent));
        assert.equal(cells[1], 'page-view');
    }
    a.errors.check();
    b.errors.check();
    await a.context.close();
    await b.context.close();
});
