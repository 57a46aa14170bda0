// console.js - the console's entry point: one Calderwood client for the tab,
// the header (connection state, who is logged in, log out), and the four
// panels, each in its own module and handed the same small context.

import { Calderwood } from './calderwood.js';
import { $, shortUuid } from './dom.js';
import { mountCommands } from './commands.js';
import { mountUpdates } from './updates.js';
import { mountQueries } from './queries.js';
import { mountEventLog } from './eventlog.js';

const cw = new Calderwood();
globalThis.calderwood = cw; // a handle for the browser's devtools (and the browser tests)

/** Users by UUID (from `list-users` when the server has it), for readable user columns. */
const people = {
    emails: new Map(),
    me: null, // this user's UUID, once known
    canList: false,
    listeners: new Set(),
    label(uuid) {
        if (!uuid) return '';
        return this.emails.get(uuid) || shortUuid(uuid);
    },
    async refresh() {
        if (!this.canList) return;
        try {
            const { result } = await cw.query('list-users');
            for (const u of result) this.emails.set(u.user_uuid, u.email);
            for (const fn of this.listeners) fn();
        } catch {
            /* the column keeps short UUIDs */
        }
    },
    lastMiss: 0,
    /** A UUID with no email: look the users up again (at most every 2 s). */
    miss(uuid) {
        if (!this.canList || this.emails.has(uuid) || Date.now() - this.lastMiss < 2000) return;
        this.lastMiss = Date.now();
        this.refresh();
    },
};

const ctx = { cw, people };

// ------------------------------------------------------------------- header

const conn = $('#conn');
const connText = $('#conn-text');
const connPos = $('#conn-position');
let tick = null;

function renderConnection() {
    const state = cw.state === 'idle' ? 'connecting' : cw.state;
    conn.dataset.state = state;
    const text = {
        connecting: 'connecting…',
        live: 'live',
        reconnecting: `reconnecting in ${Math.ceil(cw.retryInMs / 1000)} s`,
        unauthorized: 'signed out',
        closed: 'closed',
    }[state];
    if (connText.textContent !== text) connText.textContent = text;
    connPos.textContent = cw.lastPosition !== null ? `position ${cw.lastPosition}` : '';
    if (state === 'reconnecting' && !tick) tick = setInterval(renderConnection, 250);
    if (state !== 'reconnecting' && tick) {
        clearInterval(tick);
        tick = null;
    }
}

cw.addEventListener('state', () => {
    renderConnection();
    if (cw.state === 'unauthorized') location.assign('/login'); // the session ended elsewhere
});
cw.addEventListener('update', renderConnection);
cw.addEventListener('resumed', renderConnection);

$('#logout-form').addEventListener('submit', () => {
    // Close first, so no reconnect races the end of the session; the next login starts afresh.
    cw.close();
    cw.forgetPosition();
});

function showMe() {
    const el = $('#user-email');
    if (!people.me) return;
    el.textContent = people.emails.get(people.me) || shortUuid(people.me);
    el.title = `Logged in as ${people.emails.get(people.me) || ''} (user ${people.me})`;
}
people.listeners.add(showMe);

/** Who is logged in: `whoami` when the server has it, else the user of the newest session-started event. */
async function findMe(queries) {
    try {
        if (queries.has('whoami')) {
            const { result } = await cw.query('whoami');
            people.me = result.user_uuid;
            if (result.email) people.emails.set(result.user_uuid, result.email);
        } else {
            const { result } = await cw.query('events', { name: 'session-started', limit: 1 });
            people.me = result[0]?.user_uuid ?? null;
        }
    } catch {
        /* the header stays without a name */
    }
    showMe();
}

// -------------------------------------------------------------------- start

async function start() {
    renderConnection();
    cw.connect();
    const commands = mountCommands(ctx);
    const updates = mountUpdates(ctx);
    const queries = mountQueries(ctx);
    const log = mountEventLog(ctx);
    people.listeners.add(() => updates.refreshUsers());
    let described = false;
    const describe = async () => {
        if (described) return;
        try {
            const d = await cw.describe();
            described = true;
            const names = new Set(d.queries.map((q) => q.name));
            people.canList = names.has('list-users');
            commands.setCommands(d.commands);
            queries.setQueries(d.queries);
            await people.refresh();
            await findMe(names);
            log.load();
        } catch (e) {
            commands.showProblem(`The server's commands could not be read (${e.message}); retrying when the connection is live.`);
        }
    };
    cw.addEventListener('resumed', describe);
    await describe();
}

start();
