// tables.js - any JSON value as HTML: a list of objects becomes a table with
// one column per key, an object a key/value table, and values inside cells
// are rendered the same way, so nested objects show as nested tables.

import { h } from './dom.js';

const MAX_ROWS = 500; // rows drawn per list; the caption says when more were left out
const MAX_DEPTH = 6; // beyond this, plain JSON text

export function renderValue(v, depth = 0) {
    if (v === null || v === undefined) return h('span', { class: 'v-null' }, 'null');
    if (typeof v === 'string') return h('span', { class: ['v-str', v.length > 60 && 'v-long'] }, v);
    if (typeof v === 'number') return h('span', { class: 'v-num', title: timeTitle(v) }, String(v));
    if (typeof v === 'boolean') return h('span', { class: 'v-bool' }, String(v));
    if (depth >= MAX_DEPTH) return h('code', { class: 'v-json' }, JSON.stringify(v));
    if (Array.isArray(v)) return renderArray(v, depth);
    return renderObject(v, depth);
}

/** A number that looks like a protocol time (µs since the epoch, 2001..2286) gets its date as a tooltip. */
function timeTitle(n) {
    if (!Number.isInteger(n) || n < 1e15 || n > 1e16) return null;
    return new Date(n / 1000).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function isRecord(x) {
    return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function renderArray(list, depth) {
    if (!list.length) return h('span', { class: 'v-empty' }, 'empty list');
    const shown = list.slice(0, MAX_ROWS);
    const caption =
        list.length > shown.length ? `${list.length} items, first ${shown.length} shown` : `${list.length} item${list.length === 1 ? '' : 's'}`;
    if (shown.every(isRecord)) {
        const cols = [];
        const seen = new Set();
        for (const row of shown)
            for (const k of Object.keys(row))
                if (!seen.has(k)) {
                    seen.add(k);
                    cols.push(k);
                }
        return h(
            'table',
            { class: ['nested', depth === 0 && 'top'] },
            h('caption', {}, caption),
            h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
            h(
                'tbody',
                {},
                shown.map((row) => h('tr', {}, cols.map((c) => h('td', {}, c in row ? renderValue(row[c], depth + 1) : '')))),
            ),
        );
    }
    return h(
        'table',
        { class: ['nested', 'list', depth === 0 && 'top'] },
        h('caption', {}, caption),
        h('tbody', {}, shown.map((x, i) => h('tr', {}, h('th', { scope: 'row' }, String(i)), h('td', {}, renderValue(x, depth + 1))))),
    );
}

function renderObject(obj, depth) {
    const keys = Object.keys(obj);
    if (!keys.length) return h('span', { class: 'v-empty' }, 'empty object');
    return h(
        'table',
        { class: ['nested', 'kv', depth === 0 && 'top'] },
        h('tbody', {}, keys.map((k) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, renderValue(obj[k], depth + 1))))),
    );
}
