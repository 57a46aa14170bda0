// The server restarts while commands are pending. Twice: once stopped with
// SIGTERM in the middle of a burst of commands, once frozen (SIGSTOP, so the
// commands sent are read by nobody) and then killed with SIGKILL, with more
// commands sent while it is down. Each time it comes back on the same port
// and data directory, and the console reconnects, resumes after the last
// position it saw, and resends what is pending with the same client id and
// sequence. Every command must end processed exactly once: one event each,
// no duplicate row in the updates table, no duplicate event in the log.
//
// While the server is down the browser itself logs each refused connection
// attempt as a console error; those lines, and only in those windows, are
// tolerated (and counted). Any other console error fails the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, sendCommand, commandOutcome, sleep, ALICE } from './lib/harness.mjs';

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

const DOWN = /^(WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws' failed: .*|Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|CONNECTION_CLOSED)|Failed to load resource: the server responded with a status of 503 \(Service Unavailable\)) \(http:\/\/127\.0\.0\.1:\d+\/[^)]*\)$/;

/** Submits one visit-page per url through the command form, all in one go (no waiting between). */
function burst(page, urls) {
    return page.evaluate((list) => {
        const form = document.querySelector('#command-form');
        const picker = document.querySelector('#command-name');
        picker.value = 'visit-page';
        picker.dispatchEvent(new Event('change'));
        const json = document.querySelector('#command-json');
        for (const url of list) {
            json.value = JSON.stringify({ url });
            json.dispatchEvent(new Event('input'));
            form.requestSubmit();
        }
    }, urls);
}

const items = (page) =>
    page.$$eval('#command-list li', (lis) =>
        lis.map((li) => ({ seq: Number(li.dataset.seq), state: li.dataset.state, history: li.dataset.history, text: li.querySelector('.cmd-data').textContent })),
    );

test('commands pending across a server restart end processed exactly once', guard(() => srv, async (t) => {
    const { page, errors } = await openPage(browser);
    await login(page, srv, ALICE);
    const urls = [];
    for (let i = 1; i <= 3; i++) {
        urls.push(`/before/${i}`);
        assert.equal((await commandOutcome(page, await sendCommand(page, 'visit-page', { url: `/before/${i}` }))).state, 'processed');
    }

    // 1. SIGTERM with a burst of commands unread: the server is frozen while they are
    // sent, then gets SIGTERM and SIGCONT together, and stops (whether it reads them first
    // or not is its business: either way each must end processed exactly once).
    errors.expect(DOWN);
    srv.pause();
    const burstA = Array.from({ length: 20 }, (_, i) => `/burst-a/${i + 1}`);
    urls.push(...burstA);
    await burst(page, burstA);
    await sleep(200);
    srv.proc.kill('SIGTERM');
    srv.resume();
    await srv.exited;
    await page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="connecting"])', { timeout: 10000 });
    await srv.start();
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 30000 });
    errors.stopExpecting();

    // 2. Frozen, commands written into its socket, then killed; more sent while it is down.
    await page.waitForFunction(() => document.querySelectorAll('#command-list li[data-final="false"]').length === 0, undefined, { timeout: 20000 });
    errors.expect(DOWN);
    srv.pause();
    const burstB = Array.from({ length: 5 }, (_, i) => `/frozen/${i + 1}`);
    urls.push(...burstB);
    await burst(page, burstB);
    await sleep(300);
    const frozen = (await items(page)).filter((x) => burstB.some((u) => x.text.includes(`"${u}"`)));
    assert.equal(frozen.length, 5);
    for (const x of frozen) assert.equal(x.state, 'sent', `pending while the server is frozen: ${JSON.stringify(x)}`);
    await srv.signal('SIGKILL');
    await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 10000 });
    assert.match(await page.textContent('#conn-text'), /^reconnecting in \d+ s$/);
    const burstC = Array.from({ length: 3 }, (_, i) => `/offline/${i + 1}`);
    urls.push(...burstC);
    await burst(page, burstC);
    const offline = (await items(page)).filter((x) => burstC.some((u) => x.text.includes(`"${u}"`)));
    for (const x of offline) assert.equal(x.state, 'queued', 'queued while there is no connection');
    await sleep(1500); // long enough for a refused attempt or two, and the backoff after them
    await srv.start();
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll('#command-list li[data-final="false"]').length === 0, undefined, { timeout: 20000 });
    errors.stopExpecting();
    t.diagnostic(`browser messages tolerated while the server was down: ${errors.tolerated.length}`);

    // Every command processed, each with exactly one event.
    const all = await items(page);
    const resent = all.filter((x) => x.history.split(' ').filter((s) => s === 'sent').length > 1);
    t.diagnostic(`commands sent more than once: ${resent.length} of ${all.length}; refused as overloaded first: ${all.filter((x) => x.history.includes('overloaded')).length}`);
    assert.equal(all.length, urls.length);
    for (const x of all) assert.equal(x.state, 'processed', JSON.stringify(x));
    for (const x of all.filter((y) => burstB.some((u) => y.text.includes(`"${u}"`)))) {
        assert.ok(x.history.split(' ').filter((s) => s === 'sent').length >= 2, `resent after the kill: ${x.history}`);
    }
    const chips = await page.$$eval('#command-list li', (lis) => lis.map((li) => li.querySelectorAll('.event-chip').length));
    assert.ok(chips.every((n) => n === 1), `one event per command: ${chips}`);

    // No duplicate row in the updates table; each url exactly once.
    const rows = await page.$$eval('#updates-table tbody tr', (trs) => trs.map((tr) => ({ position: Number(tr.dataset.position), name: tr.dataset.name, data: tr.cells[2].textContent })));
    const positions = rows.map((r) => r.position);
    assert.equal(new Set(positions).size, positions.length, `duplicate positions in the updates table: ${positions}`);
    for (let i = 1; i < positions.length; i++) assert.ok(positions[i - 1] > positions[i], 'in position order');
    for (const url of urls) {
        const n = rows.filter((r) => r.name === 'page-view' && JSON.parse(r.data).url === url).length;
        assert.equal(n, 1, `${url} shown ${n} times in the updates table`);
    }

    // No duplicate event in the log.
    await page.fill('#log-name', 'page-view');
    await page.selectOption('#log-limit', '100');
    await page.click('#log-apply');
    await page.waitForFunction((n) => document.querySelectorAll('#log-table tbody tr').length === n, urls.length, { timeout: 10000 });
    const logged = await page.$$eval('#log-table tbody tr', (trs) => trs.map((tr) => JSON.parse(tr.querySelector('pre').textContent).data.url));
    assert.deepEqual([...logged].sort(), [...urls].sort(), 'each url once in the log');

    errors.check();
    await page.context().close();
}));

test('a connection lost with the server up: catch-up settles what was processed, a resend gets a duplicate ack, replays show once', guard(() => srv, async (t) => {
    const { page, errors } = await openPage(browser);
    // Every /ws connection goes through this relay, which can hold back what the server
    // says (as a network that lost it would), cut the connection, and replay a frame.
    const relay = { deaf: false, current: null, forwarded: [] };
    await page.routeWebSocket(/\/ws$/, (ws) => {
        const server = ws.connectToServer();
        const conn = { ws, server, frames: [] };
        relay.current = conn;
        ws.onMessage((m) => server.send(m));
        server.onMessage((m) => {
            if (relay.deaf && relay.current === conn) return;
            conn.frames.push(m);
            ws.send(m);
        });
        ws.onClose(() => server.close());
        server.onClose(() => ws.close());
    });
    await login(page, srv, ALICE);
    const first = await sendCommand(page, 'visit-page', { url: '/relay/ok' });
    assert.equal((await commandOutcome(page, first)).state, 'processed');

    // The server hears and processes these; the page hears nothing back.
    relay.deaf = true;
    const urls = ['/relay/1', '/relay/2', '/relay/3'];
    await burst(page, urls);
    const rejectSeq = await sendCommand(page, 'register-user', { email: ALICE.email, first_name: 'A', last_name: 'A', password: 'whatever-pass' });
    // A connection's commands are processed in order: once this page view is in the log,
    // the rejection (after its password hash, slow on a busy machine) is in the command log.
    const inOrder = '/relay/4';
    await burst(page, [inOrder]);
    urls.push(inOrder);
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    for (const deadline = Date.now() + 60000; ; await sleep(50)) {
        const r = await fetch(`${srv.url}/query`, { method: 'POST', headers: { cookie }, body: JSON.stringify({ name: 'list-page-views', data: { limit: 10 } }) });
        const [, views] = await r.json();
        if (urls.every((u) => views.some((v) => v.url === u))) break;
        assert.ok(Date.now() < deadline, `the page views ${urls} reach the log within a minute`);
    }
    const held = await items(page);
    for (const x of held.slice(0, 5)) assert.ok(['sent', 'acked'].includes(x.state), `still pending: ${JSON.stringify(x)}`);

    // Cut the connection; the next one is heard again.
    const lost = relay.current;
    relay.deaf = false;
    await lost.ws.close({ code: 4001, reason: 'lost' });
    await page.waitForFunction(() => document.querySelectorAll('#command-list li[data-final="false"]').length === 0, undefined, { timeout: 20000 });
    await page.waitForSelector('#conn[data-state="live"]');
    assert.notEqual(relay.current, lost, 'a new connection');

    // The page views were settled by the catch-up (not resent); the rejection was not in
    // the log, so that command was resent with its client id and sequence: a duplicate.
    const after = await items(page);
    for (const url of urls) {
        const x = after.find((y) => y.text.includes(`"${url}"`));
        assert.equal(x.state, 'processed');
        assert.equal(x.history.split(' ').filter((s) => s === 'sent').length, 1, `settled by the catch-up: ${x.history}`);
    }
    const rej = after.find((y) => y.seq === rejectSeq);
    assert.equal(rej.state, 'rejected');
    assert.equal(rej.history.split(' ').filter((s) => s === 'sent').length, 2, rej.history);
    assert.ok(await page.$(`#command-list li[data-seq="${rejectSeq}"] .tag:text("duplicate")`), 'the server acked the resend as a duplicate');

    // A replay of an update the page has already shown (what a server sends for a resent
    // command) is not shown again.
    const update = relay.current.frames.find((f) => JSON.parse(f)[0] === 'update');
    assert.ok(update, 'the catch-up carried updates');
    const countRows = () => page.$$eval('#updates-table tbody tr', (trs) => trs.length);
    const n = await countRows();
    relay.current.ws.send(update);
    const barrier = await sendCommand(page, 'visit-page', { url: '/relay/after' });
    assert.equal((await commandOutcome(page, barrier)).state, 'processed');
    assert.equal(await countRows(), n + 1, 'only the new event was added');
    const positions = await page.$$eval('#updates-table tbody tr', (trs) => trs.map((tr) => tr.dataset.position));
    assert.equal(new Set(positions).size, positions.length, `no duplicate row: ${positions}`);
    for (const url of [...urls, '/relay/ok', '/relay/after']) {
        const rows = await page.$$eval('#updates-table tbody tr', (trs, u) => trs.filter((tr) => tr.cells[2].textContent.includes(`"${u}"`)).length, url);
        assert.equal(rows, 1, `${url} once`);
    }
    errors.check();
    await page.context().close();
}));
