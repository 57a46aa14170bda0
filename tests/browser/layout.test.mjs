// The console as a person meets it: a label on every input, usable at a
// 1280x800 window and at a phone's width (no sideways scrolling of the page),
// usable from the keyboard alone, and the screenshot of a short session
// (docs/img/console.png).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, sendCommand, commandOutcome, imgPath, sleep, ALICE, BOB } from './lib/harness.mjs';

let srv;
let shot;
let browser;

before(async () => {
    srv = await startServer({ users: [ALICE, BOB] });
    browser = await launchBrowser();
});

after(async () => {
    await browser?.close();
    await srv?.stop();
    await shot?.stop();
});

/** Every input, select and textarea without a label (or aria-label), as "tag#id" strings. */
const unlabelled = (page) =>
    page.$$eval('input:not([type=hidden]), select, textarea', (els) =>
        els.filter((el) => !(el.labels?.length || el.getAttribute('aria-label'))).map((el) => `${el.tagName.toLowerCase()}#${el.id}`),
    );

async function visitEveryForm(page) {
    // Each command and query form in turn, so every generated input is checked.
    const missing = [];
    for (const sel of ['#command-name', '#query-name']) {
        const names = await page.$$eval(`${sel} option`, (os) => os.map((o) => o.value));
        for (const name of names) {
            await page.selectOption(sel, name);
            missing.push(...(await unlabelled(page)).map((m) => `${m} (${name})`));
        }
    }
    return missing;
}

for (const [label, viewport] of [
    ['a 1280x800 window', { width: 1280, height: 800 }],
    ['a phone (390x844)', { width: 390, height: 844 }],
]) {
    test(`at ${label}: every input has a label, nothing overflows sideways, the panels are there`, guard(() => srv, async () => {
        const { page, errors, context } = await openPage(browser, { viewport });
        await page.goto(`${srv.url}/login`);
        assert.deepEqual(await unlabelled(page), []);
        assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'login fits');
        await login(page, srv, ALICE);
        assert.deepEqual(await visitEveryForm(page), []);
        assert.deepEqual(await unlabelled(page), []);
        const seq = await sendCommand(page, 'visit-page', { url: '/layout' });
        assert.equal((await commandOutcome(page, seq)).state, 'processed');
        await page.click('#log-apply');
        await page.waitForSelector('#log-table tbody tr');
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
        for (const id of ['commands', 'updates', 'queries', 'log']) {
            const box = await page.locator(`#${id}`).boundingBox();
            assert.ok(box && box.width > 300 && box.width <= viewport.width, `#${id} is laid out (${JSON.stringify(box)})`);
        }
        for (const id of ['#conn', '#user-email', '#logout-form button']) assert.ok(await page.isVisible(id), `${id} visible`);
        if (viewport.width < 700) {
            // One column: the panels are stacked in order.
            const ys = [];
            for (const id of ['commands', 'updates', 'queries', 'log']) ys.push((await page.locator(`#${id}`).boundingBox()).y);
            assert.deepEqual([...ys].sort((a, b) => a - b), ys);
        } else {
            // Two columns: commands beside live updates, both starting in the first screenful.
            const c = await page.locator('#commands').boundingBox();
            const u = await page.locator('#updates').boundingBox();
            assert.ok(u.x > c.x + c.width - 1 && Math.abs(u.y - c.y) < 2 && c.y < 100);
        }
        errors.check();
        await context.close();
    }));
}

test('the keyboard alone: skip link, pick a command, fill it, Ctrl+Enter, pause the updates', guard(() => srv, async () => {
    const { page, errors, context } = await openPage(browser);
    await login(page, srv, ALICE);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'command-name');
    // Type-ahead on the focused picker: "a" then "d" lands on add-to-cart.
    await page.keyboard.type('add');
    assert.equal(await page.inputValue('#command-name'), 'add-to-cart');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'cmd-f-sku');
    await page.keyboard.type('kbd-sku');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'cmd-f-quantity');
    await page.keyboard.type('4');
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('#command-list li[data-final="true"]');
    const out = await commandOutcome(page, Number(await page.getAttribute('#command-list li', 'data-seq')));
    assert.equal(out.state, 'processed');
    assert.match(out.text, /"sku":"kbd-sku","quantity":4/);

    await page.focus('#updates-pause');
    await page.keyboard.press('Space');
    assert.equal(await page.getAttribute('#updates-pause', 'aria-pressed'), 'true');
    const rows = await page.$$eval('#updates-table tbody tr', (r) => r.length);
    await page.focus('#cmd-f-quantity');
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('#updates-paused:not([hidden])');
    await page.waitForFunction(() => /1 new event/.test(document.querySelector('#updates-paused').textContent));
    assert.equal(await page.$$eval('#updates-table tbody tr', (r) => r.length), rows, 'held back while paused');
    await page.focus('#updates-pause');
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => document.querySelectorAll('#updates-table tbody tr').length === n + 1, rows);
    assert.equal(await page.isHidden('#updates-paused'), true);
    errors.check();
    await context.close();
}));

test('a short session, for docs/img/console.png', guard(() => shot, async () => {
    shot = await startServer({ users: [ALICE, BOB] }); // a fresh log, so the picture shows only this session
    const srv = shot;
    const a = await openPage(browser);
    const b = await openPage(browser);
    await login(a.page, srv, ALICE);
    await login(b.page, srv, BOB);
    const pages = ['/', '/pricing', '/docs/getting-started', '/blog/event-sourcing-in-c', '/pricing', '/signup'];
    for (const [i, url] of pages.entries()) {
        const who = i % 3 === 2 ? b.page : a.page;
        assert.equal((await commandOutcome(who, await sendCommand(who, 'visit-page', { url }))).state, 'processed');
        await sleep(120);
    }
    for (const [sku, quantity] of [['tea-earl-grey', 2], ['mug-stoneware', 1]]) {
        assert.equal((await commandOutcome(a.page, await sendCommand(a.page, 'add-to-cart', { sku, quantity }))).state, 'processed');
    }
    assert.equal((await commandOutcome(a.page, await sendCommand(a.page, 'add-to-cart', { sku: 'mug-stoneware', quantity: 0 }))).state, 'error');
    assert.equal(
        (await commandOutcome(a.page, await sendCommand(a.page, 'register-user', { email: BOB.email, first_name: 'Bob', last_name: 'Baker', password: 'bob-password-22' }))).state,
        'rejected',
    );
    await sendCommand(a.page, 'visit-page', { url: '/checkout' });
    await a.page.selectOption('#query-name', 'get-cart');
    await a.page.click('#query-run');
    await a.page.waitForSelector('#query-meta.ok');
    await a.page.click('#log-apply');
    await a.page.waitForSelector('#log-table tbody tr');
    await a.page.selectOption('#command-name', 'visit-page');
    await a.page.fill('#cmd-f-url', '/thank-you');
    await a.page.evaluate(() => {
        document.activeElement?.blur();
        window.scrollTo(0, 0);
    });
    await sleep(1700); // the highlight of new rows fades
    await a.page.screenshot({ path: imgPath('console.png'), fullPage: true });
    a.errors.check();
    b.errors.check();
    await a.context.close();
    await b.context.close();
}));
