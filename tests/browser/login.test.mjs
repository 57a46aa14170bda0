// The login page: the failure message, then success; the redirect of a
// logged-in user; logout, after which the old cookie opens nothing, and which
// also ends the console open in another tab. Writes docs/img/login.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, login, guard, imgPath, watch, ALICE } from './lib/harness.mjs';

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

test('a failed login shows "Invalid email or password.", then the right password opens the console', guard(() => srv, async () => {
    const { context, page, errors } = await openPage(browser);
    await page.goto(`${srv.url}/login`);
    assert.equal(await page.isVisible('#error'), false, 'no error before any attempt');
    await page.screenshot({ path: imgPath('login.png') });

    await page.fill('#email', ALICE.email);
    await page.fill('#password', 'not-the-password');
    await Promise.all([page.waitForURL(`${srv.url}/login?error=1`), page.click('#login-submit')]);
    assert.equal(await page.textContent('#error'), 'Invalid email or password.');
    assert.equal(await page.isVisible('#error'), true);
    assert.equal(await page.inputValue('#email'), ALICE.email, 'the email is kept for the next attempt');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'password');

    await page.fill('#password', ALICE.password);
    await Promise.all([page.waitForURL(`${srv.url}/console`), page.click('#login-submit')]);
    await page.waitForSelector('#conn[data-state="live"]');
    await page.waitForFunction((email) => document.querySelector('#user-email').textContent === email, ALICE.email);

    // Logged in already: /login sends the user on to the console.
    await page.goto(`${srv.url}/login`);
    assert.equal(page.url(), `${srv.url}/console`);
    await page.waitForSelector('#conn[data-state="live"]');
    errors.check();
    await context.close();
}));

test('log out returns to the login page and the old cookie no longer opens /console', guard(() => srv, async () => {
    const { context, page, errors } = await openPage(browser);
    await login(page, srv, ALICE);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'cw_session');
    assert.ok(session, 'the session cookie is set');
    assert.equal(session.httpOnly, true);

    await Promise.all([page.waitForURL(`${srv.url}/login`), page.click('#logout-form button')]);
    assert.equal(await page.isVisible('#email'), true);
    assert.equal((await context.cookies()).some((c) => c.name === 'cw_session' && c.value), false, 'the cookie is cleared');

    // The same browser cannot come back without logging in.
    await page.goto(`${srv.url}/console`);
    assert.equal(page.url(), `${srv.url}/login`);

    // Nor can another browser that kept a copy of the old cookie.
    const { context: other, page: page2, errors: errors2 } = await openPage(browser);
    await other.addCookies([session]);
    await page2.goto(`${srv.url}/console`);
    assert.equal(page2.url(), `${srv.url}/login`, 'the old cookie is refused');

    // And from outside a browser: the old cookie gets a redirect to /login, and 401 from /query.
    const cookie = `cw_session=${session.value}`;
    const res = await fetch(`${srv.url}/console`, { headers: { cookie }, redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/login');
    const q = await fetch(`${srv.url}/query`, { method: 'POST', headers: { cookie }, body: '{"name":"describe"}' });
    assert.equal(q.status, 401, '/query refuses the old cookie');
    errors.check();
    errors2.check();
    await context.close();
    await other.close();
}));

test('a logout in another tab of the same browser sends this tab to the login page', guard(() => srv, async () => {
    const { context, page, errors } = await openPage(browser);
    await login(page, srv, ALICE);
    const other = await context.newPage();
    const otherErrors = watch(other);
    await other.goto(`${srv.url}/console`);
    await other.waitForSelector('#conn[data-state="live"]');
    await Promise.all([page.waitForURL(`${srv.url}/login`), page.click('#logout-form button')]);
    await other.waitForURL(`${srv.url}/login`, { timeout: 10000 });
    errors.check();
    otherErrors.check();
    await context.close();
}));
