// Two browser contexts (separate cookies and storage) logged in as two
// users: a page view of one appears live in the other's updates table; a cart
// event, whose audience is its owner only, does not (neither live nor in the
// other's event log). And a tab that leaves the console and comes back
// resumes after the last position it saw, catching up what it missed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, sendCommand, commandOutcome, ALICE, BOB } from './lib/harness.mjs';

let srv;
let browser;

before(async () => {
    srv = await startServer({ users: [ALICE, BOB] });
    browser = await launchBrowser();
});

after(async () => {
    await browser?.close();
    await srv?.stop();
});

const rowOf = (page, url) =>
    page.waitForFunction(
        (u) => [...document.querySelectorAll('#updates-table tbody tr')].find((tr) => tr.cells[2].textContent.includes(`"${u}"`))?.dataset.position,
        url,
        { timeout: 10000 },
    );

test('a page view of one user appears live for the other; a cart event does not', guard(() => srv, async () => {
    const a = await openPage(browser);
    const b = await openPage(browser);
    await login(a.page, srv, ALICE);
    await login(b.page, srv, BOB);
    await b.page.waitForFunction((e) => document.querySelector('#user-email').textContent === e, BOB.email);

    const seq = await sendCommand(a.page, 'visit-page', { url: '/seen-by-bob' });
    assert.equal((await commandOutcome(a.page, seq)).state, 'processed');
    const pos = await (await rowOf(b.page, '/seen-by-bob')).jsonValue();
    const cells = await b.page.$$eval(`#updates-table tr[data-position="${pos}"] td`, (tds) => tds.map((t) => t.textContent));
    assert.equal(cells[1], 'page-view');
    assert.equal(cells[3], ALICE.email, "Bob sees Alice's email in the user column");
    assert.notEqual(cells[4], '—', 'with a round trip from her send time');

    // The cart event, then a page view as a barrier: updates arrive in position order,
    // so once Bob has the barrier he would already have had the cart event.
    const cart = await sendCommand(a.page, 'add-to-cart', { sku: 'secret-sku', quantity: 3 });
    const cartOut = await commandOutcome(a.page, cart);
    assert.equal(cartOut.state, 'processed');
    const cartPos = /item-added-to-cart #(\d+)/.exec(cartOut.text)[1];
    await a.page.waitForSelector(`#updates-table tr[data-position="${cartPos}"][data-name="item-added-to-cart"]`);
    assert.equal((await commandOutcome(a.page, await sendCommand(a.page, 'visit-page', { url: '/barrier' }))).state, 'processed');
    await rowOf(b.page, '/barrier');
    assert.equal(await b.page.$(`#updates-table tr[data-position="${cartPos}"]`), null, 'the cart event is not shown to Bob');
    assert.equal(await b.page.$('#updates-table tr[data-name="item-added-to-cart"]'), null);

    // Bob's event log: the page views, not the cart.
    await b.page.click('#log-apply');
    await b.page.waitForSelector(`#log-table tr[data-position="${pos}"]`);
    assert.equal(await b.page.$(`#log-table tr[data-position="${cartPos}"]`), null, "the cart event is not in Bob's log");
    // Alice's log has it.
    await a.page.click('#log-apply');
    await a.page.waitForSelector(`#log-table tr[data-position="${cartPos}"]`);

    a.errors.check();
    b.errors.check();
    await a.context.close();
    await b.context.close();
}));

test('leaving the console and coming back resumes after the last position seen (sessionStorage)', guard(() => srv, async () => {
    const a = await openPage(browser);
    const b = await openPage(browser);
    await login(a.page, srv, ALICE);
    await login(b.page, srv, BOB);
    assert.equal((await commandOutcome(a.page, await sendCommand(a.page, 'visit-page', { url: '/before-leaving' }))).state, 'processed');
    await rowOf(b.page, '/before-leaving');
    const stored = await b.page.evaluate(() => Number(sessionStorage.getItem('calderwood.last-position')));
    assert.ok(stored > 0, 'the last position is kept in sessionStorage');

    // Bob's tab leaves the console; Alice visits a page meanwhile; Bob's tab comes back.
    await b.page.goto('about:blank');
    assert.equal((await commandOutcome(a.page, await sendCommand(a.page, 'visit-page', { url: '/while-away' }))).state, 'processed');
    await b.page.goto(`${srv.url}/console`);
    await b.page.waitForSelector('#conn[data-state="live"]');
    const pos = await (await rowOf(b.page, '/while-away')).jsonValue();
    assert.ok(Number(pos) > stored);
    assert.match(await b.page.textContent(`#updates-table tr[data-position="${pos}"] td:nth-child(2)`), /catch-up/);
    assert.equal(await b.page.$$eval('#updates-table tbody tr', (trs) => trs.length), 1, 'only what came after the stored position');
    a.errors.check();
    b.errors.check();
    await a.context.close();
    await b.context.close();
}));
