// forms.js - a data editor for one command or query: a form generated from
// the fields `describe` declares, and a raw JSON editor kept in step with it.
// Editing a field rewrites the JSON (keeping keys the form does not know);
// editing valid JSON fills the fields. The JSON's validity is checked live:
// a syntax error blocks sending, while a mismatch with the declared fields is
// only a warning, so that the server's own validation can be tried too.

import { h, clear } from './dom.js';

const TYPE_HINT = { string: 'text', integer: 'integer', boolean: 'true or false', object: 'JSON object', uuid: 'UUID' };
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class DataEditor {
    /**
     * fieldset: where the generated inputs go; textarea: the JSON editor;
     * status: the element telling whether the JSON is valid; prefix: for ids;
     * onChange(check): called after every edit with the result of check().
     */
    constructor({ fieldset, textarea, status, prefix, onChange = () => {} }) {
        Object.assign(this, { fieldset, textarea, status, prefix, onChange });
        this.fields = [];
        this.controls = new Map(); // field name -> { input, error, field }
        textarea.addEventListener('input', () => {
            const r = this.check();
            if (r.ok) this.#fillForm(r.value);
            this.#clearServerErrors();
            this.onChange(r);
        });
    }

    /** Shows the form for these declared fields and resets the JSON to {} (or initial). */
    setFields(fields, initial = {}) {
        this.fields = fields || [];
        this.controls.clear();
        const body = clear(this.fieldset.querySelector('.fields') || this.fieldset);
        if (!this.fields.length) {
            body.append(h('p', { class: 'muted', text: 'No fields: the data is an empty object.' }));
        }
        for (const f of this.fields) body.append(this.#control(f));
        this.textarea.value = JSON.stringify(initial, null, 2);
        this.#fillForm(initial);
        const r = this.check();
        this.onChange(r);
    }

    /** The current data: a parsed object, or undefined while the JSON is not a valid object. */
    get value() {
        const r = parse(this.textarea.value);
        return r.ok ? r.value : undefined;
    }

    /** { ok, value, error, problems }: ok is JSON validity; problems are mismatches with the fields. */
    check() {
        const r = parse(this.textarea.value);
        const problems = r.ok ? problemsOf(this.fields, r.value) : [];
        this.#showStatus(r, problems);
        return { ...r, problems };
    }

    /** Marks the inputs a server `details` list names ([{field, reason}]). */
    showServerErrors(details) {
        this.#clearServerErrors();
        for (const d of Array.isArray(details) ? details : []) {
            const c = this.controls.get(d?.field);
            if (!c) continue;
            c.input.setAttribute('aria-invalid', 'true');
            c.error.textContent = `Server: ${d.field} ${d.reason}`;
            c.error.hidden = false;
        }
    }

    #clearServerErrors() {
        for (const c of this.controls.values()) {
            c.input.removeAttribute('aria-invalid');
            c.error.hidden = true;
            c.error.textContent = '';
        }
    }

    #control(f) {
        const id = `${this.prefix}-f-${f.name}`;
        const hintId = `${id}-hint`;
        const errId = `${id}-err`;
        let input;
        const common = { id, name: f.name, 'aria-describedby': `${hintId} ${errId}`, 'data-type': f.type };
        if (f.required) common['aria-required'] = 'true';
        switch (f.type) {
            case 'integer':
                input = h('input', {
                    ...common,
                    type: 'number',
                    step: 1,
                    inputmode: 'numeric',
                    min: safeBound(f.min),
                    max: safeBound(f.max),
                });
                break;
            case 'boolean':
                input = h('input', { ...common, type: 'checkbox' });
                break;
            case 'object':
                input = h('textarea', { ...common, rows: 3, spellcheck: 'false', class: 'code' });
                break;
            default: {
                const secret = /password|secret/.test(f.name);
                input = h('input', {
                    ...common,
                    type: secret ? 'password' : f.name === 'email' ? 'email' : 'text',
                    autocomplete: secret ? 'new-password' : 'off',
                    spellcheck: 'false',
                    maxlength: f.max_length,
                });
            }
        }
        input.addEventListener('input', () => this.#fromForm(f));
        input.addEventListener('change', () => this.#fromForm(f));
        const error = h('p', { id: errId, class: 'field-error', hidden: true });
        this.controls.set(f.name, { input, error, field: f });
        const label = h('label', { for: id }, f.name, f.required ? h('span', { class: 'req', title: 'required' }, ' *') : null);
        const hint = h('span', { id: hintId, class: 'hint' }, hintOf(f));
        const cls = ['field', f.type === 'boolean' && 'field-check', f.type === 'object' && 'field-wide'];
        return f.type === 'boolean'
            ? h('div', { class: cls }, input, label, hint, error)
            : h('div', { class: cls }, label, input, hint, error);
    }

    /** A field changed: write it into the JSON, keeping the rest of the object. */
    #fromForm(f) {
        const c = this.controls.get(f.name);
        if (!c || c.field !== f) return; // a late change event of a form already replaced
        const cur = parse(this.textarea.value);
        const obj = cur.ok ? cur.value : {};
        const v = readControl(c);
        if (v === undefined) delete obj[f.name];
        else obj[f.name] = v;
        this.textarea.value = JSON.stringify(obj, null, 2);
        this.#clearServerErrors();
        this.onChange(this.check());
    }

    #fillForm(obj) {
        for (const { input, field } of this.controls.values()) {
            const v = obj[field.name];
            if (document.activeElement === input) continue; // do not fight the typist
            if (field.type === 'boolean') input.checked = v === true;
            else if (field.type === 'object') input.value = v === undefined ? '' : JSON.stringify(v);
            else input.value = v === undefined || v === null ? '' : String(v);
        }
    }

    #showStatus(r, problems) {
        const s = this.status;
        clear(s);
        s.classList.remove('ok', 'bad', 'warn');
        if (!r.ok) {
            s.classList.add('bad');
            s.append(h('strong', {}, 'Invalid JSON: '), r.error);
        } else if (problems.length) {
            s.classList.add('warn');
            s.append(h('strong', {}, 'Valid JSON; the server will likely refuse it: '), problems.join('; '));
        } else {
            s.classList.add('ok');
            s.append(h('strong', {}, 'Valid JSON'), ' matching the declared fields.');
        }
        this.textarea.setAttribute('aria-invalid', r.ok ? 'false' : 'true');
    }
}

function parse(text) {
    if (!text.trim()) return { ok: true, value: {} };
    try {
        const v = JSON.parse(text);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) {
            return { ok: false, error: 'the data must be a JSON object, like {"key": "value"}' };
        }
        return { ok: true, value: v };
    } catch (e) {
        return { ok: false, error: e.message };
    }
}

function readControl({ input, field }) {
    switch (field.type) {
        case 'boolean':
            return input.checked ? true : field.required ? false : undefined;
        case 'integer': {
            if (input.value === '') return undefined;
            const n = Number(input.value);
            return Number.isFinite(n) ? n : input.value;
        }
        case 'object': {
            if (!input.value.trim()) return undefined;
            try {
                return JSON.parse(input.value);
            } catch {
                return input.value; // left as text: the JSON check says what is wrong
            }
        }
        default:
            return input.value === '' ? undefined : input.value;
    }
}

function safeBound(n) {
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined;
}

function hintOf(f) {
    const parts = [TYPE_HINT[f.type] || f.type];
    if (f.min_length !== undefined && f.max_length !== undefined) parts.push(`${f.min_length}–${f.max_length} bytes`);
    else if (f.max_length !== undefined) parts.push(`at most ${f.max_length} bytes`);
    else if (f.min_length !== undefined) parts.push(`at least ${f.min_length} bytes`);
    if (safeBound(f.min) !== undefined && safeBound(f.max) !== undefined) parts.push(`${f.min}–${f.max}`);
    else if (safeBound(f.min) !== undefined) parts.push(`≥ ${f.min}`);
    else if (safeBound(f.max) !== undefined) parts.push(`≤ ${f.max}`);
    parts.push(f.required ? 'required' : 'optional');
    return parts.join(' · ');
}

const bytes = (s) => new TextEncoder().encode(s).length;

/** What in value does not match the declared fields, as short sentences. */
export function problemsOf(fields, value) {
    const out = [];
    const known = new Set();
    for (const f of fields) {
        known.add(f.name);
        const v = value[f.name];
        if (v === undefined || v === null) {
            if (f.required) out.push(`${f.name} is required`);
            continue;
        }
        switch (f.type) {
            case 'string':
            case 'uuid':
                if (typeof v !== 'string') {
                    out.push(`${f.name} must be a string`);
                    break;
                }
                if (f.type === 'uuid' && !UUID_RE.test(v)) out.push(`${f.name} must be a lower-case UUID`);
                if (f.max_length !== undefined && bytes(v) > f.max_length) out.push(`${f.name} is over ${f.max_length} bytes`);
                if (f.min_length !== undefined && bytes(v) < f.min_length) out.push(`${f.name} is under ${f.min_length} bytes`);
                break;
            case 'integer':
                if (!Number.isInteger(v)) out.push(`${f.name} must be an integer`);
                else if ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max))
                    out.push(`${f.name} must be between ${f.min ?? '−∞'} and ${f.max ?? '∞'}`);
                break;
            case 'boolean':
                if (typeof v !== 'boolean') out.push(`${f.name} must be true or false`);
                break;
            case 'object':
                if (typeof v !== 'object' || Array.isArray(v)) out.push(`${f.name} must be an object`);
                break;
            default:
                break;
        }
    }
    for (const k of Object.keys(value)) if (!known.has(k)) out.push(`${k} is not a declared field`);
    return out;
}
