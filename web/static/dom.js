// dom.js - the console's small DOM helpers. Text goes in with textContent,
// never innerHTML, so nothing a server or a user sends can become markup.

/**
 * h('td', { class: 'num', title: 'x', on: { click } }, child, ...) -> element.
 * Children: strings, numbers, nodes, arrays of those; null/false are skipped.
 * Props: class, text, on, dataset, and any attribute or boolean property.
 */
export function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'on') for (const [type, fn] of Object.entries(v)) el.addEventListener(type, fn);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (v === true) el.setAttribute(k, '');
        else el.setAttribute(k, String(v));
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        if (Array.isArray(c)) append(el, c);
        else el.append(c instanceof Node ? c : String(c));
    }
}

export function $(selector, root = document) {
    return root.querySelector(selector);
}

export function clear(el) {
    el.replaceChildren();
    return el;
}

/** JSON on one line, cut to max characters with an ellipsis. */
export function compactJson(value, max = 160) {
    const s = JSON.stringify(value);
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** 12.3 ms, 1.20 s, 850 µs: a duration given in milliseconds, to a readable precision. */
export function formatMs(ms) {
    if (!Number.isFinite(ms)) return '';
    if (ms < 1) return `${Math.round(ms * 1000)} µs`;
    if (ms < 100) return `${ms.toFixed(1)} ms`;
    if (ms < 10000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(1)} s`;
}

/** A protocol time (µs since the epoch) as local "YYYY-MM-DD HH:MM:SS.mmm". */
export function formatTimeUs(us) {
    if (typeof us !== 'number') return '';
    const d = new Date(us / 1000);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return (
        `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
        `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
    );
}

/** The first 8 characters of a UUID, for tight columns (the full one goes in a title). */
export function shortUuid(uuid) {
    return typeof uuid === 'string' ? uuid.slice(0, 8) : '';
}

/** Makes the browser save text as a file (a Blob behind a temporary object URL). */
export function download(filename, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h('a', { href: url, download: filename, class: 'visually-hidden' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Calls fn when Ctrl+Enter (Cmd+Enter on a Mac) is pressed inside root. */
export function onCtrlEnter(root, fn) {
    root.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            fn();
        }
    });
}
