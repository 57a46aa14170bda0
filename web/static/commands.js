// commands.js - the Commands panel: a picker of the commands `describe`
// lists, their generated form and JSON editor, and the list of commands sent
// from this tab with the state each one is in (queued, sent, acked, then
// processed, rejected or error with the server's code and details).

import { h, $, clear, compactJson, formatMs, onCtrlEnter } from './dom.js';
import { DataEditor } from './forms.js';

const MAX_ITEMS = 100;
const SECRET = /password|secret|token/i;

export function mountCommands({ cw }) {
    const form = $('#command-form');
    const picker = $('#command-name');
    const send = $('#command-send');
    const list = $('#command-list');
    const empty = $('#command-empty');
    const count = $('#pending-count');
    let commands = [];
    const drafts = new Map(); // command name -> JSON text, kept while switching
    const items = new Map(); // seq -> <li>

    const editor = new DataEditor({
        fieldset: $('#command-fields'),
        textarea: $('#command-json'),
        status: $('#command-json-status'),
        prefix: 'cmd',
        onChange: (r) => {
            send.disabled = !r.ok || !picker.value;
        },
    });

    picker.addEventListener('change', () => select(picker.value));

    function select(name) {
        const prev = picker.dataset.current;
        if (prev) drafts.set(prev, $('#command-json').value);
        picker.dataset.current = name;
        const def = commands.find((c) => c.name === name);
        let initial = {};
        try {
            if (drafts.has(name)) initial = JSON.parse(drafts.get(name));
        } catch {
            /* a draft that was not valid JSON starts again */
        }
        editor.setFields(def ? def.fields : [], initial);
    }

    function submit() {
        const name = picker.value;
        const data = editor.value;
        if (!name) return;
        if (data === undefined) {
            $('#command-json').focus();
            return;
        }
        cw.send(name, data);
    }

    form.addEventListener('submit', (e) => {
        e.preventDefault();
        submit();
    });
    onCtrlEnter(form, submit);

    $('#command-clear').addEventListener('click', () => {
        for (const [seq, li] of items) {
            if (li.dataset.final === 'true') {
                li.remove();
                items.delete(seq);
            }
        }
        renderCount();
    });

    cw.addEventListener('command', (e) => render(e.detail.command));
    cw.addEventListener('error', (e) => {
        const cmd = e.detail.command;
        if (cmd && cmd.name === picker.value) editor.showServerErrors(cmd.details);
    });

    function render(cmd) {
        let li = items.get(cmd.seq);
        const fresh = !li;
        if (fresh) {
            li = h('li', { class: 'cmd', id: `cmd-${cmd.seq}` });
            items.set(cmd.seq, li);
            list.prepend(li);
            while (items.size > MAX_ITEMS) {
                const [oldest, node] = items.entries().next().value;
                node.remove();
                items.delete(oldest);
            }
        }
        li.dataset.seq = cmd.seq;
        li.dataset.state = cmd.state;
        li.dataset.final = String(!cmd.pending);
        li.dataset.history = cmd.history.map((x) => x.state).join(' ');
        li.className = `cmd state-${cmd.state}`;
        clear(li).append(
            h(
                'div',
                { class: 'cmd-head' },
                h('span', { class: 'seq' }, `#${cmd.seq}`),
                h('span', { class: 'cmd-name' }, cmd.name),
                h('span', { class: `badge badge-${cmd.state}` }, cmd.state),
                cmd.sends > 1 ? h('span', { class: 'tag', title: 'sent again after a reconnect' }, `resent ×${cmd.sends - 1}`) : null,
                cmd.duplicate ? h('span', { class: 'tag', title: 'the server already had this command' }, 'duplicate') : null,
                h('span', { class: 'cmd-time' }, total(cmd)),
            ),
            h('div', { class: 'trail' }, trail(cmd)),
            h('code', { class: 'cmd-data' }, compactJson(masked(cmd.data), 120)),
            outcome(cmd),
        );
        empty.hidden = items.size > 0;
        renderCount();
    }

    function renderCount() {
        const n = cw.pending.size;
        count.textContent = n ? `${n} pending` : '';
        empty.hidden = items.size > 0;
    }

    return {
        setCommands(list_) {
            commands = list_;
            clear(picker);
            for (const c of commands) picker.append(h('option', { value: c.name }, c.name));
            const start = commands.find((c) => c.name === 'visit-page') || commands[0];
            if (start) {
                picker.value = start.name;
                select(start.name);
            }
        },
        showProblem(text) {
            $('#command-json-status').textContent = text;
        },
    };
}

/** queued → sent → acked +0.4 ms → processed +1.9 ms (times from the last send). */
function trail(cmd) {
    let t0 = null;
    const parts = [];
    for (const step of cmd.history) {
        if (step.state === 'sent') t0 = step.at;
        const rel = t0 !== null && step.state !== 'sent' && step.state !== 'queued' ? ` +${formatMs(step.at - t0)}` : '';
        parts.push(`${step.state}${rel}`);
    }
    return parts.join(' → ');
}

function total(cmd) {
    if (cmd.pending) return '';
    const first = cmd.history.find((x) => x.state === 'sent') || cmd.history[0];
    return formatMs(cmd.history[cmd.history.length - 1].at - first.at);
}

function outcome(cmd) {
    if (cmd.state === 'processed') {
        return h(
            'div',
            { class: 'cmd-outcome' },
            cmd.events.map((ev) => h('span', { class: 'event-chip' }, `${ev.name} `, h('span', { class: 'pos' }, `#${ev.position}`))),
        );
    }
    if (cmd.state !== 'rejected' && cmd.state !== 'error') return null;
    const details = Array.isArray(cmd.details)
        ? h(
              'ul',
              { class: 'details' },
              cmd.details.map((d) =>
                  d && typeof d === 'object' && 'field' in d
                      ? h('li', {}, h('code', {}, d.field), ` ${d.reason ?? ''}`)
                      : h('li', {}, compactJson(d)),
              ),
          )
        : cmd.details !== null && cmd.details !== undefined
          ? h('pre', { class: 'details' }, JSON.stringify(cmd.details, null, 2))
          : null;
    return h('div', { class: 'cmd-outcome cmd-problem' }, h('code', { class: 'code-name' }, cmd.code), ' ', cmd.message || '', details);
}

function masked(data) {
    const out = {};
    for (const [k, v] of Object.entries(data)) out[k] = SECRET.test(k) && typeof v === 'string' ? '••••••••' : v;
    return out;
}
