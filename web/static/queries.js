// queries.js - the Queries panel: a picker of the queries `describe` lists,
// their generated form and JSON editor, and the answer as tables (nested
// objects as nested tables) with the time the query took, measured here.

import { h, $, clear, formatMs, onCtrlEnter } from './dom.js';
import { DataEditor } from './forms.js';
import { renderValue } from './tables.js';

export function mountQueries({ cw }) {
    const form = $('#query-form');
    const picker = $('#query-name');
    const run = $('#query-run');
    const meta = $('#query-meta');
    const out = $('#query-result');
    let queries = [];
    let running = false;

    const editor = new DataEditor({
        fieldset: $('#query-fields'),
        textarea: $('#query-json'),
        status: $('#query-json-status'),
        prefix: 'qry',
        onChange: (r) => {
            run.disabled = !r.ok || !picker.value;
        },
    });

    picker.addEventListener('change', () => {
        const def = queries.find((q) => q.name === picker.value);
        editor.setFields(def ? def.fields : []);
    });

    async function submit() {
        const name = picker.value;
        const data = editor.value;
        if (!name || running) return;
        if (data === undefined) {
            $('#query-json').focus();
            return;
        }
        running = true;
        out.setAttribute('aria-busy', 'true');
        meta.className = 'query-meta';
        meta.textContent = `running ${name}…`;
        try {
            const { result, ms } = await cw.query(name, data);
            meta.className = 'query-meta ok';
            meta.dataset.ms = ms.toFixed(3);
            meta.textContent = `${name}: ${summary(result)} in ${formatMs(ms)}`;
            clear(out).append(renderValue(result));
        } catch (e) {
            meta.className = 'query-meta bad';
            meta.textContent = `${name}: ${e.code}${e.ms !== undefined ? ` after ${formatMs(e.ms)}` : ''}`;
            clear(out).append(
                h(
                    'div',
                    { class: 'banner bad', role: 'alert' },
                    h('code', { class: 'code-name' }, e.code),
                    ' ',
                    e.message,
                    e.details !== null && e.details !== undefined ? h('div', { class: 'details' }, renderValue(e.details)) : null,
                ),
            );
            editor.showServerErrors(e.details);
        } finally {
            running = false;
            out.removeAttribute('aria-busy');
        }
    }

    form.addEventListener('submit', (e) => {
        e.preventDefault();
        submit();
    });
    onCtrlEnter(form, submit);

    return {
        setQueries(list) {
            queries = list;
            clear(picker);
            for (const q of queries) picker.append(h('option', { value: q.name }, q.name));
            const start = queries.find((q) => q.name === 'list-page-views') || queries[0];
            if (start) {
                picker.value = start.name;
                editor.setFields(start.fields);
            }
        },
    };
}

function summary(result) {
    if (Array.isArray(result)) return `${result.length} row${result.length === 1 ? '' : 's'}`;
    if (result && typeof result === 'object') return `${Object.keys(result).length} keys`;
    return 'ok';
}
