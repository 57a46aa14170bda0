// The Event log panel: newest first, a filter by name and by an inclusive
// position range, paging older and newer, and the rows shown downloaded as
// JSON Lines and as CSV.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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
    for (let i = 1; i <= 12; i++) {
        assert.equal((await commandOutcome(page, await sendCommand(page, 'visit-page', { url: `/page/${i}` }))).state, 'processed');
        if (i % 4 === 0) {
            assert.equal((await commandOutcome(page, await sendCommand(page, 'add-to-cart', { sku: `sku-${i}`, quantity: i }))).state, 'processed');
        }
    }
});

after(async () => {
    await browser?.close();
    await srv?.stop();
});

const shown = () =>
    page.$$eval('#log-table tbody tr', (trs) => trs.map((tr) => ({ position: Number(tr.dataset.position), name: tr.dataset.name })));

async function show() {
    const before_ = await page.textContent('#log-range');
    await page.click('#log-apply');
    await page.waitForFunction(() => !document.querySelector('#log-table').hasAttribute('aria-busy'));
    return before_;
}

async function waitRows(predicate) {
    await page.waitForFunction(predicate, undefined, { timeout: 10000 });
    await page.waitForFunction(() => !document.querySelector('#log-table').hasAttribute('aria-busy'));
    return shown();
}

test('the log lists the events newest first and filters by name', guard(() => srv, async () => {
    await page.fill('#log-name', '');
    await show();
    let rows = await waitRows(() => document.querySelectorAll('#log-table tbody tr').length >= 16);
    assert.equal(rows.length, 16, '12 page views, 3 cart events, 1 session start');
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].position > rows[i].position, 'newest first');
    assert.equal(rows[rows.length - 1].name, 'session-started');

    await page.fill('#log-name', 'item-added-to-cart');
    await page.click('#log-apply');
    rows = await waitRows(() => [...document.querySelectorAll('#log-table tbody tr')].every((tr) => tr.dataset.name === 'item-added-to-cart'));
    assert.equal(rows.length, 3);
    errors.check();
}));

test('a position range and paging: older, newer, and the ends', guard(() => srv, async () => {
    await page.fill('#log-name', 'page-view');
    await page.fill('#log-from', '');
    await page.fill('#log-to', '');
    await page.selectOption('#log-limit', '25');
    await page.click('#log-apply');
    const all = await waitRows(() => document.querySelectorAll('#log-table tbody tr').length === 12);
    const positions = all.map((r) => r.position); // newest first

    // An inclusive range: from the 3rd oldest to the 3rd newest page view.
    const from = positions[positions.length - 3];
    const to = positions[2];
    await page.fill('#log-from', String(from));
    await page.fill('#log-to', String(to));
    await page.click('#log-apply');
    const ranged = await waitRows((n) => document.querySelectorAll('#log-table tbody tr').length === 8);
    assert.deepEqual(ranged.map((r) => r.position), positions.slice(2, 10));

    // Pages of 5 over the whole range: 5, 5, 2 (5 is not one of the page sizes the
    // console offers, so the test adds it to the picker, to get three pages cheaply).
    await page.fill('#log-from', '');
    await page.fill('#log-to', '');
    await page.selectOption('#log-limit', '25');
    await page.$eval('#log-limit', (s) => {
        s.append(new Option('5', '5'));
        s.value = '5';
    });
    await page.click('#log-apply');
    const p1 = await waitRows(() => document.querySelectorAll('#log-table tbody tr').length === 5 && document.querySelector('#log-newer').disabled);
    assert.deepEqual(p1.map((r) => r.position), positions.slice(0, 5));
    assert.equal(await page.isDisabled('#log-older'), false);
    await page.click('#log-older');
    const p2 = await waitRows((first) => Number(document.querySelector('#log-table tbody tr')?.dataset.position) !== first, p1[0].position);
    assert.deepEqual(p2.map((r) => r.position), positions.slice(5, 10));
    await page.click('#log-older');
    const p3 = await waitRows(() => document.querySelectorAll('#log-table tbody tr').length === 2);
    assert.deepEqual(p3.map((r) => r.position), positions.slice(10));
    assert.equal(await page.isDisabled('#log-older'), true, 'no page older than the oldest');
    assert.match(await page.textContent('#log-range'), /page 3/);
    await page.click('#log-newer');
    await page.click('#log-newer');
    const back = await waitRows(() => document.querySelector('#log-newer').disabled);
    assert.deepEqual(back.map((r) => r.position), positions.slice(0, 5));

    // A range the wrong way round is refused in the form.
    await page.fill('#log-from', '9');
    await page.fill('#log-to', '3');
    await page.click('#log-apply');
    await page.waitForSelector('#log-error:not([hidden])');
    assert.match(await page.textContent('#log-error'), /From position is after To position/);
    await page.fill('#log-from', '');
    await page.fill('#log-to', '');
    errors.check();
}));

test('the rows shown download as JSON Lines and as CSV', guard(() => srv, async () => {
    await page.fill('#log-name', '');
    await page.selectOption('#log-limit', '25');
    await page.click('#log-apply');
    const rows = await waitRows(() => document.querySelectorAll('#log-table tbody tr').length >= 16 && !document.querySelector('#log-jsonl').disabled);

    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#log-jsonl')]);
    assert.match(dl.suggestedFilename(), /^calderwood-events-\d+-\d+\.jsonl$/);
    const lines = (await readFile(await dl.path(), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((e) => e.position), rows.map((r) => r.position));
    for (const e of lines) for (const k of ['uuid', 'command_uuid', 'name', 'data', 'meta', 'user_uuid', 'recorded_at']) assert.ok(k in e, `${k} in every line`);
    assert.equal(lines.find((e) => e.name === 'page-view').data.url.startsWith('/page/'), true);

    const [dl2] = await Promise.all([page.waitForEvent('download'), page.click('#log-csv')]);
    assert.match(dl2.suggestedFilename(), /\.csv$/);
    const csv = await readFile(await dl2.path(), 'utf8');
    const records = csv.trimEnd().split('\r\n');
    assert.equal(records[0], 'position,recorded_at,name,version,uuid,command_uuid,user_uuid,client_id,client_seq,data,meta');
    assert.equal(records.length, rows.length + 1);
    assert.deepEqual(records.slice(1).map((r) => Number(r.split(',')[0])), rows.map((r) => r.position));
    // JSON in a cell is quoted, its quotes doubled (RFC 4180).
    const pv = records.find((r) => r.includes(',page-view,'));
    assert.match(pv, /,"\{""url"":""\/page\/\d+""\}",/);
    errors.check();
}));
