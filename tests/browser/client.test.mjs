// The client library's handling of protocol answers a healthy test server
// rarely gives, put on the wire by a relay between the page and the server
// (Playwright's WebSocket routing): a resume refused as `overloaded` (the
// client reconnects after a backoff and resumes again), a command refused as
// `overloaded` (nothing was queued: the client sends it again, same client
// id and sequence, and it ends processed once), and a `malformed` error with
// null ids (reported, no command harmed).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, sendCommand, commandOutcome, ALICE } from './lib/harness.mjs';

let srv;
let browser;

before(async () => {
    srv = await startServer({ users: [ALICE] });
    browser = await launchBrowser();
});

after(async () => {
    await browser?.close();
    await srv?.stop();
});

test('a refused resume and an overloaded command are retried; each command ends processed once', guard(() => srv, async () => {
    const { page, errors } = await openPage(browser);
    const relay = { connections: 0, resumes: 0, refusedSeq: null, sentSeqs: [] };
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        relay.connections++;
        relay.page = ws;
        // The client resumes at open (/ws?after=N); the first time, the relay answers as a
        // server that cannot read the catch-up would: an overloaded error and no resumed.
        if (/[?&]after=\d+/.test(ws.url()) && relay.resumes++ === 0) {
            ws.send(JSON.stringify(['error', null, null, { code: 'overloaded', message: 'the catch-up could not be read; resume again', details: null }]));
            return;
        }
        const server = ws.connectToServer();
        ws.onMessage((m) => {
            const msg = JSON.parse(m);
            if (msg[0] === 'cmd') {
                relay.sentSeqs.push(msg[2]);
                if (msg[3].data.url === '/busy' && relay.refusedSeq === null) {
                    relay.refusedSeq = msg[2];
                    ws.send(JSON.stringify(['error', msg[1], msg[2], { code: 'overloaded', message: 'the command queue is full; retry later', details: null }]));
                    return;
                }
            }
            server.send(m);
        });
        ws.onClose(() => server.close());
        server.onClose(() => ws.close());
    });
    await login(page, srv, ALICE);
    assert.equal(relay.resumes, 2, 'resumed on a second connection after the refusal');
    assert.equal(relay.connections, 2);

    const seq = await sendCommand(page, 'visit-page', { url: '/busy' });
    const out = await commandOutcome(page, seq);
    assert.equal(out.state, 'processed');
    assert.deepEqual(out.history.split(' '), ['queued', 'sent', 'overloaded', 'queued', 'sent', 'acked', 'processed']);
    assert.equal(relay.refusedSeq, seq);
    assert.deepEqual(relay.sentSeqs.filter((s) => s === seq).length, 2, 'the same sequence, sent twice');
    const rows = await page.$$eval('#updates-table tbody tr', (trs) => trs.filter((tr) => tr.cells[2].textContent.includes('"/busy"')).length);
    assert.equal(rows, 1);

    // An error about no command at all (what a server says to a frame it cannot read)
    // is reported, and changes no command.
    await page.evaluate(() => {
        window.__errors = [];
        window.calderwood.addEventListener('error', (e) => window.__errors.push({ code: e.detail.code, command: e.detail.command }));
    });
    const before_ = await page.$$eval('#command-list li', (lis) => lis.map((li) => li.dataset.history));
    relay.page.send(JSON.stringify(['error', null, null, { code: 'malformed', message: 'not JSON', details: null }]));
    await page.waitForFunction(() => window.__errors.length === 1);
    assert.deepEqual(await page.evaluate(() => window.__errors), [{ code: 'malformed', command: null }]);
    assert.deepEqual(await page.$$eval('#command-list li', (lis) => lis.map((li) => li.dataset.history)), before_);
    assert.equal(await page.getAttribute('#conn', 'data-state'), 'live');
    errors.check();
    await page.context().close();
}));
