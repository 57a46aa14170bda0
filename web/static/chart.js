// chart.js - events per second over the last minute, as bars on a canvas.
// Counts are kept per wall-clock second; the chart redraws once a second and
// when an event arrives (at most once per animation frame). Colours come from
// the canvas's CSS custom properties, so the stylesheet owns the look.

const WINDOW = 60; // seconds shown

export class RateChart {
    /** canvas: the element; onSummary({ last, avg10, peak, total }) keeps a text twin up to date. */
    constructor(canvas, onSummary = () => {}) {
        this.canvas = canvas;
        this.onSummary = onSummary;
        this.counts = new Map(); // unix second -> events
        this.total = 0;
        this.frame = 0;
        new ResizeObserver(() => this.schedule()).observe(canvas);
        setInterval(() => this.schedule(), 1000);
        this.schedule();
    }

    /** Counts n events arriving now. */
    add(n = 1) {
        const s = Math.floor(Date.now() / 1000);
        this.counts.set(s, (this.counts.get(s) || 0) + n);
        this.total += n;
        this.schedule();
    }

    schedule() {
        if (this.frame) return;
        this.frame = requestAnimationFrame(() => {
            this.frame = 0;
            this.draw();
        });
    }

    series() {
        const now = Math.floor(Date.now() / 1000);
        for (const k of this.counts.keys()) if (k <= now - WINDOW) this.counts.delete(k);
        const out = [];
        for (let s = now - WINDOW + 1; s <= now; s++) out.push(this.counts.get(s) || 0);
        return out;
    }

    draw() {
        const c = this.canvas;
        const dpr = window.devicePixelRatio || 1;
        const w = Math.max(1, Math.round(c.clientWidth * dpr));
        const hgt = Math.max(1, Math.round(c.clientHeight * dpr));
        if (c.width !== w || c.height !== hgt) {
            c.width = w;
            c.height = hgt;
        }
        const css = getComputedStyle(c);
        const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
        const bar = color('--chart-bar', '#2f6fde');
        const now = color('--chart-now', '#7aa7f0');
        const grid = color('--chart-grid', '#d8dee6');
        const text = color('--chart-text', '#5b6675');
        const ctx = c.getContext('2d');
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        const W = w / dpr;
        const H = hgt / dpr;
        ctx.clearRect(0, 0, W, H);

        const data = this.series();
        const peak = Math.max(...data);
        const top = niceCeil(Math.max(4, peak));
        const left = 34;
        const right = 6;
        const bottom = 16;
        const topPad = 6;
        const plotW = W - left - right;
        const plotH = H - bottom - topPad;

        ctx.font = '11px system-ui, sans-serif';
        ctx.fillStyle = text;
        ctx.strokeStyle = grid;
        ctx.lineWidth = 1;
        ctx.textAlign = 'right';
        ctx.textBaseline = 'middle';
        for (const v of [0, top / 2, top]) {
            const y = Math.round(topPad + plotH - (v / top) * plotH) + 0.5;
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(W - right, y);
            ctx.stroke();
            ctx.fillText(String(v), left - 6, y);
        }
        ctx.textBaseline = 'alphabetic';
        ctx.textAlign = 'left';
        ctx.fillText(`${WINDOW} s ago`, left, H - 3);
        ctx.textAlign = 'right';
        ctx.fillText('now', W - right, H - 3);

        const slot = plotW / data.length;
        const gap = slot > 4 ? 1 : 0;
        data.forEach((v, i) => {
            if (!v) return;
            const bh = Math.max(1, (v / top) * plotH);
            ctx.fillStyle = i === data.length - 1 ? now : bar;
            ctx.fillRect(left + i * slot + gap / 2, topPad + plotH - bh, Math.max(1, slot - gap), bh);
        });

        const last = data[data.length - 2] || 0; // the last complete second
        const avg10 = data.slice(-11, -1).reduce((a, b) => a + b, 0) / 10;
        this.onSummary({ last, avg10, peak, total: this.total });
    }
}

function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 4, 10]) if (v <= m * p) return m * p; // even tops: the middle line is whole
    return 10 * p;
}
