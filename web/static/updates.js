// updates.js - the Live updates panel: the newest events as they arrive
// (position, name, data, user, round trip), pausable, and a chart of events
// per second. The round trip is the arrival time here minus the send time
// the issuing client stamped in meta.sent_at (µs); for other users' events it
// is their send time, so it also carries any difference between the clocks.

import { h, $, compactJson, formatMs } from './dom.js';
import { RateChart } from './chart.js';

const MAX_ROWS = 200;

export function mountUpdates({ cw, people }) {
    const tbody = $('#updates-table tbody');
    const empty = $('#updates-empty');
    const pauseBtn = $('#updates-pause');
    const banner = $('#updates-paused');
    const rateText = $('#rate-text');
    const names = $('#event-names');
    const knownNames = new Set();
    let paused = false;
    let held = [];

    const chart = new RateChart($('#rate-chart'), ({ last, avg10, peak }) => {
        const text = `${last} event${last === 1 ? '' : 's'}/s · ${avg10.toFixed(1)} avg (10 s) · peak ${peak}`;
        if (rateText.textContent !== text) {
            rateText.textContent = text;
            $('#rate-chart').setAttribute('aria-label', `Events per second over the last minute: ${text}`);
        }
    });

    cw.addEventListener('update', (e) => {
        const { event, receivedAt, catchUp } = e.detail;
        chart.add(1);
        if (!knownNames.has(event.name)) {
            knownNames.add(event.name);
            names.append(h('option', { value: event.name }));
        }
        if (event.name === 'user-registered' || !people.emails.has(event.user_uuid)) people.miss(event.user_uuid);
        const row = { event, receivedAt, catchUp };
        if (paused) {
            held.push(row);
            renderBanner();
        } else {
            insert(row);
        }
    });

    pauseBtn.addEventListener('click', () => {
        paused = !paused;
        pauseBtn.setAttribute('aria-pressed', String(paused));
        pauseBtn.textContent = paused ? 'Resume' : 'Pause';
        if (!paused) {
            for (const row of held) insert(row);
            held = [];
        }
        renderBanner();
    });

    function renderBanner() {
        banner.hidden = !paused;
        banner.textContent = `Paused: ${held.length} new event${held.length === 1 ? '' : 's'} held back. Resume to show them.`;
    }

    function insert({ event, receivedAt, catchUp }) {
        const sentAt = event.meta?.sent_at;
        const rtt = typeof sentAt === 'number' ? (receivedAt - sentAt) / 1000 : null;
        const own = event.client_id === cw.clientId;
        const tr = h(
            'tr',
            { class: ['fresh', own && 'own'], dataset: { position: event.position, name: event.name, user: event.user_uuid || '' } },
            h('td', { class: 'num pos' }, String(event.position)),
            h('td', {}, h('span', { class: 'ev-name' }, event.name), catchUp ? h('span', { class: 'tag', title: 'sent in the catch-up after a reconnect' }, 'catch-up') : null),
            h('td', { class: 'data' }, h('code', { title: JSON.stringify(event.data) }, compactJson(event.data, 90))),
            h('td', { class: 'user', title: event.user_uuid || '' }, people.label(event.user_uuid)),
            h('td', { class: 'num rtt', title: rtt === null ? 'no meta.sent_at' : 'from the sender\u2019s meta.sent_at to arrival here' }, rtt === null ? '—' : formatMs(rtt)),
        );
        tbody.prepend(tr);
        while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
        empty.hidden = true;
    }

    return {
        /** Emails became known: relabel the user column. */
        refreshUsers() {
            for (const tr of tbody.rows) {
                const cell = tr.querySelector('.user');
                cell.textContent = people.label(tr.dataset.user);
            }
        },
    };
}
