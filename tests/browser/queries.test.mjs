// The Queries panel: a query's answer as a table with the time it took,
// nested objects as nested tables, and a refused query's code and details.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, sendCommand, commandOutcome, ALICE } from './lib/harness.mjs';

let srv;
let browser;
let page;
let errors;

before(async () => {
    srv = await startServer({ users: [ALICE] });
    browser = await launchBrowser();
    ({ page, errors } = await openPage(browser));
    await login(page, srv, ALICE);
});

after(async () => {
    await browser?.close();
    await srv?.stop();
});

test('a query shows its result table and the time it took', guard(() => srv, async () => {
    for (const url of ['/one', '/two', '/three']) {
        assert.equal((await commandOutcome(page, await sendCommand(page, 'visit-page', { url }))).state, 'processed');
    }
    await page.selectOption('#query-name', 'list-page-views');
    await page.fill('#qry-f-limit', '2');
    assert.deepEqual(JSON.parse(await page.inputValue('#query-json')), { limit: 2 });
    await page.press('#qry-f-limit', 'Control+Enter');
    await page.waitForSelector('#query-meta.ok');
    assert.match(await page.textContent('#query-meta'), /^list-page-views: 2 rows in [\d.]+ (µs|ms|s)$/);
    const ms = Number(await page.getAttribute('#query-meta', 'data-ms'));
    assert.ok(ms > 0 && ms < 10000, `query time ${ms}`);

    const headers = await page.$$eval('#query-result table.top > thead th', (ths) => ths.map((t) => t.textContent));
    for (const col of ['position', 'url', 'user_uuid', 'email', 'recorded_at']) assert.ok(headers.includes(col), `column ${col} in ${headers}`);
    const rows = await page.$$eval('#query-result table.top > tbody > tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.equal(rows.length, 2);
    const urlCol = headers.indexOf('url');
    assert.deepEqual(rows.map((r) => r[urlCol]), ['/three', '/two'], 'newest first, limit applied');
    assert.equal(rows[0][headers.indexOf('email')], ALICE.email);
    errors.check();
}));

test('nested objects in a result show as nested tables', guard(() => srv, async () => {
    assert.equal((await commandOutcome(page, await sendCommand(page, 'add-to-cart', { sku: 'tea', quantity: 2 }))).state, 'processed');
    assert.equal((await commandOutcome(page, await sendCommand(page, 'add-to-cart', { sku: 'cups', quantity: 6 }))).state, 'processed');
    await page.selectOption('#query-name', 'get-cart');
    await page.click('#query-run');
    await page.waitForSelector('#query-meta.ok');
    // {"items": [{sku, quantity}...], "position": N}: a key/value table holding a table of items.
    const keys = await page.$$eval('#query-result table.top.kv > tbody > tr > th', (ths) => ths.map((t) => t.textContent));
    assert.deepEqual(keys.sort(), ['items', 'position']);
    const inner = await page.$$eval('#query-result table.top.kv table.nested tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(inner.map((r) => r.join(':')).sort(), ['cups:6', 'tea:2']);
    errors.check();
}));

test('a query the server refuses shows its code and details', guard(() => srv, async () => {
    // The refusal is a 400, and Chromium logs every 4xx fetch as a console error:
    // that one line, and only it, is expected here.
    errors.expect(/^Failed to load resource: the server responded with a status of 400 \(Bad Request\) \(http:\/\/127\.0\.0\.1:\d+\/query\)$/);
    await page.selectOption('#query-name', 'list-page-views');
    await page.fill('#query-json', '{"limit": 0}');
    await page.press('#query-json', 'Control+Enter');
    await page.waitForSelector('#query-meta.bad');
    assert.match(await page.textContent('#query-meta'), /query-validation-failed/);
    assert.match(await page.textContent('#query-result .banner'), /query-validation-failed/);
    assert.match(await page.textContent('#query-result .banner'), /limit/);
    errors.stopExpecting();
    assert.equal(errors.tolerated.length, 1, errors.tolerated.join('\n'));
    errors.check();
}));
