// The Commands panel: a valid command goes sent -> acked -> processed and its
// update shows with a round-trip time; a command the server refuses shows
// the error code and the field details; a rejected one shows `rejected`; the
// JSON editor says live whether its text is valid, and Ctrl+Enter sends.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, sendCommand, commandOutcome, ALICE, BOB } from './lib/harness.mjs';

let srv;
let browser;
let page;
let errors;

before(async () => {
    srv = await startServer({ users: [ALICE, BOB] });
    browser = await launchBrowser();
    ({ page, errors } = await openPage(browser));
    await login(page, srv, ALICE);
});

after(async () => {
    await browser?.close();
    await srv?.stop();
});

/** Parses "12.3 ms" / "850 µs" / "1.2 s" into milliseconds. */
function parseMs(text) {
    const m = /^([\d.]+) (µs|ms|s)$/.exec(text.trim());
    assert.ok(m, `a duration, not ${JSON.stringify(text)}`);
    return Number(m[1]) * { µs: 0.001, ms: 1, s: 1000 }[m[2]];
}

test('a valid command from the generated form shows ack, then its update with a round-trip time', guard(() => srv, async () => {
    await page.selectOption('#command-name', 'visit-page');
    await page.fill('#cmd-f-url', '/pricing');
    // The form writes the JSON editor.
    assert.deepEqual(JSON.parse(await page.inputValue('#command-json')), { url: '/pricing' });
    await page.press('#cmd-f-url', 'Control+Enter');
    await page.waitForSelector('#command-list li');
    const seq = Number(await page.getAttribute('#command-list li', 'data-seq'));
    const out = await commandOutcome(page, seq);
    assert.equal(out.state, 'processed');
    assert.deepEqual(out.history.split(' '), ['queued', 'sent', 'acked', 'processed'], 'ack came before the update');
    const m = /page-view #(\d+)/.exec(out.text);
    assert.ok(m, `the item names the event: ${out.text}`);
    const position = m[1];

    const row = `#updates-table tr[data-position="${position}"]`;
    await page.waitForSelector(row);
    const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[0], position);
    assert.equal(cells[1], 'page-view');
    assert.equal(JSON.parse(cells[2]).url, '/pricing');
    assert.equal(cells[3], ALICE.email);
    const rtt = parseMs(cells[4]);
    assert.ok(rtt > 0 && rtt < 10000, `a plausible round trip: ${cells[4]}`);
    errors.check();
}));

test('an invalid command shows the error code and the field details', guard(() => srv, async () => {
    await page.selectOption('#command-name', 'add-to-cart');
    await page.fill('#cmd-f-sku', 'tea-42');
    await page.fill('#cmd-f-quantity', '0');
    // The editor warns before sending; sending is still allowed, so the server decides.
    await page.waitForSelector('#command-json-status.warn');
    assert.match(await page.textContent('#command-json-status'), /quantity must be between 1 and 1000/);
    const seq = await sendCommand(page, 'add-to-cart', { sku: 'tea-42', quantity: 0 });
    const out = await commandOutcome(page, seq);
    assert.equal(out.state, 'error');
    assert.deepEqual(out.history.split(' '), ['queued', 'sent', 'error'], 'never acked');
    const problem = await page.textContent(`#command-list li[data-seq="${seq}"] .cmd-problem`);
    assert.match(problem, /command-validation-failed/);
    assert.match(await page.textContent(`#command-list li[data-seq="${seq}"] .details li`), /quantity\s+must be between 1 and 1000/);
    // The field the server named is marked in the form.
    assert.equal(await page.getAttribute('#cmd-f-quantity', 'aria-invalid'), 'true');
    assert.match(await page.textContent('#cmd-f-quantity-err'), /must be between 1 and 1000/);

    const seq2 = await sendCommand(page, 'visit-page', {});
    const out2 = await commandOutcome(page, seq2);
    assert.equal(out2.state, 'error');
    assert.match(out2.text, /command-validation-failed/);
    assert.match(out2.text, /url\s+is required/);
    errors.check();
}));

test('register-user with an email already taken shows rejected', guard(() => srv, async () => {
    const rowsBefore = await page.$$eval('#updates-table tbody tr', (r) => r.length);
    const seq = await sendCommand(page, 'register-user', {
        email: BOB.email.toUpperCase(),
        first_name: 'Bob',
        last_name: 'Again',
        password: 'another-password',
    });
    const out = await commandOutcome(page, seq);
    assert.equal(out.state, 'rejected');
    assert.deepEqual(out.history.split(' '), ['queued', 'sent', 'acked', 'rejected']);
    assert.match(out.text, /email-taken/);
    assert.doesNotMatch(out.text, /another-password/, 'the password is masked in the list');
    assert.equal(await page.$$eval('#updates-table tbody tr', (r) => r.length), rowsBefore, 'no event');

    // A fresh email is accepted, and its event (audience: the issuer) arrives.
    const seq2 = await sendCommand(page, 'register-user', { email: 'carol@example.com', first_name: 'Carol', last_name: 'Cole', password: 'carol-password' });
    const out2 = await commandOutcome(page, seq2);
    assert.equal(out2.state, 'processed');
    assert.match(out2.text, /user-registered #\d+/);
    errors.check();
}));

test('the JSON editor shows its validity live, and Ctrl+Enter sends only valid JSON', guard(() => srv, async () => {
    await page.selectOption('#command-name', 'visit-page');
    const count = () => page.$$eval('#command-list li', (l) => l.length);
    const n = await count();
    await page.fill('#command-json', '{"url": "/a",');
    await page.waitForSelector('#command-json-status.bad');
    assert.match(await page.textContent('#command-json-status'), /Invalid JSON/);
    assert.equal(await page.getAttribute('#command-json', 'aria-invalid'), 'true');
    assert.equal(await page.isDisabled('#command-send'), true);
    await page.press('#command-json', 'Control+Enter');
    await page.waitForTimeout(200);
    assert.equal(await count(), n, 'invalid JSON is not sent');

    await page.fill('#command-json', '[1, 2]');
    assert.match(await page.textContent('#command-json-status'), /must be a JSON object/);

    await page.fill('#command-json', '{"url": "/from-json", "extra": 1}');
    await page.waitForSelector('#command-json-status.warn');
    assert.match(await page.textContent('#command-json-status'), /extra is not a declared field/);
    assert.equal(await page.inputValue('#cmd-f-url'), '/from-json', 'valid JSON fills the form');

    await page.fill('#command-json', '{"url": "/from-json"}');
    await page.waitForSelector('#command-json-status.ok');
    assert.equal(await page.isDisabled('#command-send'), false);
    await page.press('#command-json', 'Control+Enter');
    await page.waitForFunction((k) => document.querySelectorAll('#command-list li').length === k + 1, n);
    const seq = Number(await page.getAttribute('#command-list li', 'data-seq'));
    assert.equal((await commandOutcome(page, seq)).state, 'processed');
    errors.check();
}));
