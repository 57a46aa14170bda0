// expect.mjs - assertions on the shapes PROTOCOL.md defines.

import assert from 'node:assert/strict';
import { UUID_RE, EVENT_KEYS } from './client.mjs';

/** Asserts a lower-case canonical UUID. */
export function assertUuid(v, what = 'uuid') {
    assert.equal(typeof v, 'string', `${what} must be a string, got ${JSON.stringify(v)}`);
    assert.match(v, UUID_RE, `${what} must be a lower-case canonical UUID`);
}

/**
 * Asserts that ev is an EVENT with exactly the keys of PROTOCOL.md and the
 * right types; `want` pins any of the keys to a value (data and meta are
 * compared deeply).
 */
export function assertEvent(ev, want = {}) {
    assert.equal(typeof ev, 'object', 'EVENT must be an object');
    assert.ok(ev && !Array.isArray(ev), 'EVENT must be an object');
    assert.deepEqual(Object.keys(ev).sort(), [...EVENT_KEYS].sort(), `EVENT keys: ${JSON.stringify(ev)}`);
    assert.ok(Number.isSafeInteger(ev.position) && ev.position >= 1, `position must be an integer >= 1: ${ev.position}`);
    assertUuid(ev.uuid, 'event uuid');
    assertUuid(ev.command_uuid, 'command_uuid');
    assert.equal(typeof ev.name, 'string');
    assert.match(ev.name, /^[a-z0-9]+(-[a-z0-9]+)*$/, 'event names are kebab-case');
    assert.ok(ev.data && typeof ev.data === 'object' && !Array.isArray(ev.data), 'data must be an object');
    assert.ok(ev.meta && typeof ev.meta === 'object' && !Array.isArray(ev.meta), 'meta must be an object');
    if (ev.user_uuid !== null) assertUuid(ev.user_uuid, 'user_uuid');
    assert.ok(ev.client_id === null || typeof ev.client_id === 'string', 'client_id must be a string (or null)');
    assert.ok(Number.isSafeInteger(ev.client_seq) && ev.client_seq >= 0, 'client_seq must be an integer >= 0');
    assert.ok(Number.isSafeInteger(ev.recorded_at), 'recorded_at must be an integer');
    // Microseconds since the epoch: within a day of now (a bound no clock
    // drift on this machine reaches, and far from milliseconds or seconds).
    const nowUs = Date.now() * 1000;
    assert.ok(Math.abs(ev.recorded_at - nowUs) < 86_400e6, `recorded_at ${ev.recorded_at} is not microseconds near now (${nowUs})`);
    assert.ok(Number.isSafeInteger(ev.version) && ev.version >= 1, 'version must be an integer >= 1');
    for (const [k, v] of Object.entries(want)) {
        assert.deepEqual(ev[k], v, `EVENT.${k}`);
    }
    return ev;
}

/** Asserts ["error", cid, seq, {code, message, ...}]; returns the body. */
export function assertWsError(msg, cid, seq, code) {
    assert.ok(Array.isArray(msg), `not an array: ${JSON.stringify(msg)}`);
    assert.equal(msg.length, 4, `error message has 4 elements: ${JSON.stringify(msg)}`);
    assert.equal(msg[0], 'error', `expected an error, got ${JSON.stringify(msg)}`);
    if (cid !== undefined) assert.equal(msg[1], cid, `error client id: ${JSON.stringify(msg)}`);
    if (seq !== undefined) assert.equal(msg[2], seq, `error client seq: ${JSON.stringify(msg)}`);
    const body = msg[3];
    assert.ok(body && typeof body === 'object', 'error body is an object');
    if (code !== undefined) assert.equal(body.code, code, `error code: ${JSON.stringify(msg)}`);
    assert.equal(typeof body.message, 'string', 'error message is a string');
    assert.ok(body.message.length > 0, 'error message is not empty');
    return body;
}

/**
 * The reason given for `field` in validation details: details name the
 * field and say why. Accepts [{field, reason}...] (or a message/why key) and
 * {field: reason} objects.
 */
export function fieldReason(details, field) {
    if (Array.isArray(details)) {
        const d = details.find((x) => x && x.field === field);
        assert.ok(d, `details do not name field ${field}: ${JSON.stringify(details)}`);
        const reason = d.reason ?? d.message ?? d.why;
        assert.equal(typeof reason, 'string', `details for ${field} say why: ${JSON.stringify(d)}`);
        assert.ok(reason.length > 0);
        return reason;
    }
    assert.ok(details && typeof details === 'object', `details must name the field: ${JSON.stringify(details)}`);
    if (details.field === field) {
        const reason = details.reason ?? details.message;
        assert.equal(typeof reason, 'string', `details say why: ${JSON.stringify(details)}`);
        return reason;
    }
    const reason = details[field];
    assert.ok(reason !== undefined, `details do not name field ${field}: ${JSON.stringify(details)}`);
    return typeof reason === 'string' ? reason : JSON.stringify(reason);
}

/** The fields named by validation details. */
export function detailFields(details) {
    if (Array.isArray(details)) return details.map((d) => d && d.field).filter(Boolean).sort();
    if (details && typeof details === 'object') return details.field ? [details.field] : Object.keys(details).sort();
    return [];
}

/** A get-cart result as a plain {sku: quantity} object. */
export function cartOf(result) {
    const items = Array.isArray(result) ? result : result && Array.isArray(result.items) ? result.items : null;
    if (items) {
        const out = {};
        for (const it of items) out[it.sku] = it.quantity;
        return out;
    }
    assert.ok(result && typeof result === 'object', `get-cart result: ${JSON.stringify(result)}`);
    return { ...result };
}

/** Asserts a query error answer 400 ["error", {code, message, details}]; returns the body. */
export function assertQueryError(r, code) {
    assert.equal(r.status, 400, `status: ${r.res.text.slice(0, 300)}`);
    assert.ok(Array.isArray(r.body), `400 body is ["error", {...}]: ${r.res.text.slice(0, 300)}`);
    assert.equal(r.body[0], 'error');
    assert.equal(r.body.length, 2);
    assert.equal(r.body[1].code, code, `code: ${r.res.text.slice(0, 300)}`);
    assert.equal(typeof r.body[1].message, 'string');
    return r.body[1];
}

/** Asserts 401 {"error":{"code":"unauthorized",...}} on an HTTP answer {status, text}. */
export function assertUnauthorized(status, text, what = '') {
    assert.equal(status, 401, `${what}: expected 401, got ${status} ${String(text).slice(0, 200)}`);
    let body;
    try {
        body = JSON.parse(text);
    } catch {
        assert.fail(`${what}: 401 body is not JSON: ${String(text).slice(0, 200)}`);
    }
    assert.equal(body?.error?.code, 'unauthorized', `${what}: body ${text}`);
    assert.equal(typeof body.error.message, 'string');
}
