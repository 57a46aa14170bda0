// eventlog.js - the Event log panel: the events this user may see (the
// built-in `events` query applies the audience rules), newest first,
// filtered by name and an inclusive position range, a page at a time, and
// the page shown downloadable as JSON Lines or CSV.
//
// Paging walks positions: "Older" asks for events before the last row shown,
// "Newer" goes back to the page before (a stack of page starts), so pages do
// not shift when new events arrive. One more row than the page size is asked
// for, to know whether an older page exists.

import { h, $, clear, compactJson, formatTimeUs, download } from './dom.js';

const CSV_COLUMNS = ['position', 'recorded_at', 'name', 'version', 'uuid', 'command_uuid', 'user_uuid', 'client_id', 'client_seq', 'data', 'meta'];

export function mountEventLog({ cw, people }) {
    const form = $('#log-filter');
    const tbody = $('#log-table tbody');
    const empty = $('#log-empty');
    const range = $('#log-range');
    const errorBox = $('#log-error');
    const newer = $('#log-newer');
    const older = $('#log-older');
    const jsonl = $('#log-jsonl');
    const csv = $('#log-csv');
    const names = $('#event-names');

    let filter = {};
    let before = null; // before_position of the page shown (null: the newest)
    const stack = []; // before values of the newer pages
    let rows = [];
    let hasOlder = false;
    let seq = 0;

    function readFilter() {
        const num = (id) => {
            const v = $(id).value.trim();
            return v === '' ? null : Number(v);
        };
        const f = { name: $('#log-name').value.trim() || null, from: num('#log-from'), to: num('#log-to'), limit: Number($('#log-limit').value) };
        for (const [k, id] of [
            ['from', '#log-from'],
            ['to', '#log-to'],
        ]) {
            const input = $(id);
            const bad = f[k] !== null && !(Number.isSafeInteger(f[k]) && f[k] >= 1);
            input.setAttribute('aria-invalid', String(bad));
            if (bad) throw new Error(`${k === 'from' ? 'From' : 'To'} position must be a whole number of 1 or more`);
        }
        if (f.from !== null && f.to !== null && f.from > f.to) throw new Error('From position is after To position');
        return f;
    }

    async function load() {
        const mine = ++seq;
        const data = { limit: filter.limit + 1 };
        if (filter.name) data.name = filter.name;
        if (filter.from !== null) data.after_position = filter.from - 1;
        const b = before ?? (filter.to !== null ? filter.to + 1 : null);
        if (b !== null) data.before_position = b;
        tbody.parentElement.setAttribute('aria-busy', 'true');
        try {
            const { result } = await cw.query('events', data);
            if (mine !== seq) return; // a later load won
            hasOlder = result.length > filter.limit;
            rows = result.slice(0, filter.limit);
            errorBox.hidden = true;
            render();
        } catch (e) {
            if (mine !== seq) return;
            errorBox.hidden = false;
            errorBox.textContent = `The log could not be read: ${e.code} ${e.message}`;
        } finally {
            tbody.parentElement.removeAttribute('aria-busy');
        }
    }

    function render() {
        clear(tbody);
        for (const ev of rows) {
            tbody.append(
                h(
                    'tr',
                    { dataset: { position: ev.position, name: ev.name } },
                    h('td', { class: 'num pos' }, String(ev.position)),
                    h('td', { class: 'time', title: formatTimeUs(ev.recorded_at) }, shortTime(ev.recorded_at)),
                    h('td', {}, h('span', { class: 'ev-name' }, ev.name)),
                    h('td', { class: 'user', title: ev.user_uuid || '' }, people.label(ev.user_uuid)),
                    h(
                        'td',
                        { class: 'data' },
                        h('details', {}, h('summary', {}, h('code', {}, compactJson(ev.data, 70))), h('pre', { class: 'event-json' }, JSON.stringify(ev, null, 2))),
                    ),
                ),
            );
            if (![...names.options].some((o) => o.value === ev.name)) names.append(h('option', { value: ev.name }));
        }
        empty.hidden = rows.length > 0;
        newer.disabled = stack.length === 0;
        older.disabled = !hasOlder;
        jsonl.disabled = csv.disabled = rows.length === 0;
        range.textContent = rows.length
            ? `positions ${rows[0].position}–${rows[rows.length - 1].position} · ${rows.length} event${rows.length === 1 ? '' : 's'}${stack.length ? ` · page ${stack.length + 1}` : ''}`
            : '';
    }

    form.addEventListener('submit', (e) => {
        e.preventDefault();
        try {
            filter = readFilter();
        } catch (err) {
            errorBox.hidden = false;
            errorBox.textContent = err.message;
            return;
        }
        before = null;
        stack.length = 0;
        load();
    });

    older.addEventListener('click', () => {
        if (!rows.length) return;
        stack.push(before);
        before = rows[rows.length - 1].position;
        load();
    });

    newer.addEventListener('click', () => {
        if (!stack.length) return;
        before = stack.pop();
        load();
    });

    const fileBase = () => (rows.length ? `calderwood-events-${rows[rows.length - 1].position}-${rows[0].position}` : 'calderwood-events');
    jsonl.addEventListener('click', () => download(`${fileBase()}.jsonl`, toJsonLines(rows), 'application/x-ndjson'));
    csv.addEventListener('click', () => download(`${fileBase()}.csv`, toCsv(rows), 'text/csv'));

    people.listeners.add(() => {
        for (const tr of tbody.rows) {
            const cell = tr.querySelector('.user');
            cell.textContent = people.label(cell.title);
        }
    });

    return {
        /** Reads the page again with the current filter (the first one on start). */
        load() {
            if (!filter.limit) filter = readFilter();
            return load();
        },
    };
}

/** The time of day for today's events, the date and time for older ones. */
function shortTime(us) {
    const full = formatTimeUs(us);
    const today = formatTimeUs(Date.now() * 1000).slice(0, 10);
    return full.startsWith(today) ? full.slice(11) : full.slice(0, 16);
}

export function toJsonLines(events) {
    return events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
}

/** RFC 4180: a header line, CRLF line ends, fields with , " CR or LF quoted; data and meta as JSON. */
export function toCsv(events) {
    const cell = (v) => {
        const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
        return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    const lines = [CSV_COLUMNS.join(',')];
    for (const e of events) lines.push(CSV_COLUMNS.map((c) => cell(e[c])).join(','));
    return `${lines.join('\r\n')}\r\n`;
}
