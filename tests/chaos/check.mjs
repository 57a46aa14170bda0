// check.mjs - the crash harness's verdict: reads the final database with the
// sqlite3 CLI and holds it against what the clients sent and received.
//
// Commands: every command a client made ended once at the client (its events
// or one rejection), has exactly one row in the command log with the same
// outcome, and has no more events than that row says. Log: positions run
// 1..N with no gap. Streams: each logical client received every position of
// its user's audience after its first resume exactly once and in order.
// Projections: every projection table equals, value for value, the one
// `calderwood replay` builds from the log. Finally PRAGMA integrity_check.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ChaosClient } from './client.mjs';

const LOG_TABLES = new Set(['events', 'commands', 'schema_migrations']);
const EXPECTED_REJECTS = { 'remove-from-cart': 'not-in-cart', 'register-user': 'email-taken' };

/** Rows of a query as objects (sqlite3 -json prints nothing for no rows). */
export function sql(db, query) {
    const out = execFileSync('sqlite3', ['-json', db, query], { encoding: 'utf8', maxBuffer: 1 << 30 });
    return out.trim() ? JSON.parse(out) : [];
}

function keyOf(user, clientId, seq) {
    return `${user}\u0000${clientId}\u0000${seq}`;
}

/** Every projection table of db, each dumped in the order of all its columns. */
function dumpProjections(db) {
    const tables = sql(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map((r) => r.name)
        .filter((t) => !LOG_TABLES.has(t));
    const dumps = new Map();
    for (const t of tables) {
        const n = sql(db, `SELECT count(*) AS n FROM pragma_table_info('${t}')`)[0].n;
        const order = Array.from({ length: n }, (_, i) => i + 1).join(', ');
        dumps.set(t, execFileSync('sqlite3', ['-json', db, `SELECT * FROM "${t}" ORDER BY ${order}`], { encoding: 'utf8', maxBuffer: 1 << 30 }));
    }
    return dumps;
}

/** Compares the projections with a replay of the log; returns { equal, total, differing: [names] }. */
function checkReplay(bin, dataDir, db) {
    const into = join(dataDir, '..', `${dataDir.split('/').pop()}-replay.db`);
    rmSync(into, { force: true });
    const r = spawnSync(bin, ['replay', '--data', dataDir, '--into', into, '--log-level', 'warn'], { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0 || !existsSync(into)) {
        return { equal: 0, total: 0, differing: [`replay failed (exit ${r.status}): ${(r.stderr || '').trim().slice(0, 300)}`] };
    }
    const live = dumpProjections(db);
    const fresh = dumpProjections(into);
    rmSync(into, { force: true });
    const differing = [];
    for (const t of new Set([...live.keys(), ...fresh.keys()])) if (live.get(t) !== fresh.get(t)) differing.push(t);
    return { equal: live.size - differing.filter((t) => live.has(t)).length, total: live.size, differing };
}

/**
 * Checks the run. clients: the ChaosClient list; returns counts and a list
 * of problems (each a short line); an empty list means the run passed.
 */
export function checkRun({ bin, dataDir, clients }) {
    const db = join(dataDir, 'calderwood.db');
    const problems = [];
    const note = (kind, text) => {
        if (problems.filter((p) => p.kind === kind).length < 5) problems.push({ kind, text });
        else problems.push({ kind, text: null });
    };
    const events = sql(db, 'SELECT position, name, user_uuid, client_id, client_seq FROM events ORDER BY position');
    const commands = sql(db, 'SELECT user_uuid, client_id, client_seq, name, outcome, first_position, last_position, reject_code FROM commands');

    // Positions 1..N without a gap.
    let gaps = 0;
    events.forEach((e, i) => {
        if (e.position !== i + 1) {
            gaps++;
            note('log-gap', `event #${i + 1} has position ${e.position}`);
        }
    });

    // Events per idempotency key, and the command log by key.
    const eventsByKey = new Map();
    for (const e of events) {
        if (e.client_id === null) continue;
        const k = keyOf(e.user_uuid, e.client_id, e.client_seq);
        if (!eventsByKey.has(k)) eventsByKey.set(k, []);
        eventsByKey.get(k).push(e.position);
    }
    const logByKey = new Map();
    for (const c of commands) {
        const k = keyOf(c.user_uuid, c.client_id, c.client_seq);
        logByKey.set(k, (logByKey.get(k) || []).concat([c]));
    }

    let sent = 0;
    let lost = 0;
    let doubled = 0;
    let processed = 0;
    let rejected = 0;
    let resends = 0;
    const mine = new Set();
    for (const cl of clients) {
        resends += cl.resends;
        for (const cmd of cl.commands.values()) {
            sent++;
            const k = keyOf(cl.userUuid, cl.clientId, cmd.seq);
            mine.add(k);
            const rows = logByKey.get(k) || [];
            const evs = eventsByKey.get(k) || [];
            const what = `${cl.clientId} seq ${cmd.seq} ${cmd.name}`;
            if (cmd.outcome === null || rows.length === 0) {
                lost++;
                note('lost', `${what}: client outcome ${cmd.outcome}, ${rows.length} log rows (acked ${cmd.acked}, sent ${cmd.sends}x)`);
                continue;
            }
            if (rows.length > 1) {
                doubled++;
                note('doubled', `${what}: ${rows.length} command-log rows`);
                continue;
            }
            const row = rows[0];
            if (cmd.outcome === 'processed') {
                processed++;
                const span = row.first_position === null ? 0 : row.last_position - row.first_position + 1;
                if (row.outcome !== 'ok') note('mismatch', `${what}: client processed, log ${row.outcome}`);
                if (evs.length !== 1 || span !== 1) {
                    doubled++;
                    note('doubled', `${what}: ${evs.length} events [${evs}], log span ${span}`);
                } else if (cmd.positions.length !== 1 || cmd.positions[0] !== evs[0]) {
                    note('mismatch', `${what}: client saw positions [${cmd.positions}], log [${evs}]`);
                }
            } else if (cmd.outcome === 'rejected') {
                rejected++;
                if (row.outcome !== 'rejected' || row.reject_code !== cmd.code) {
                    note('mismatch', `${what}: client rejected ${cmd.code}, log ${row.outcome} ${row.reject_code}`);
                }
                if (EXPECTED_REJECTS[cmd.name] !== cmd.code) note('mismatch', `${what}: unexpected rejection ${cmd.code}`);
                if (evs.length) {
                    doubled++;
                    note('doubled', `${what}: rejected yet ${evs.length} events`);
                }
            } else {
                note('error', `${what}: ended with error ${cmd.code}`);
            }
        }
    }
    // Every other command in the log (logins): no more events than its row says. Events
    // written by the CLI (`user add`) have no command row.
    for (const [k, evs] of eventsByKey) {
        const row = (logByKey.get(k) || [])[0];
        if (!row || mine.has(k)) continue;
        const span = row.first_position === null ? 0 : row.last_position - row.first_position + 1;
        if (evs.length !== span) {
            doubled++;
            note('doubled', `${k.replaceAll('\u0000', ' ')}: ${evs.length} events, command-log span ${span}`);
        }
    }
    const ids = new Set(clients.map((c) => c.clientId));
    for (const [k, rows] of logByKey) {
        if (ids.has(rows[0].client_id) && !mine.has(k)) note('phantom', `command ${k.replaceAll('\u0000', ' ')} in the log, never sent`);
    }

    // Each logical client's stream: its audience after its first resume, once each, in order.
    let missing = 0;
    let dups = 0;
    let disorder = 0;
    let extra = 0;
    // Where each missing position was due: on a connection that died before its
    // `resumed` (an update past it came first), in a catch-up that reached past it,
    // or live after `resumed`.
    const missingWhere = { early: 0, catchup: 0, live: 0, none: 0 };
    for (const cl of clients) {
        const expected = events
            .filter((e) => e.position > cl.firstResume && (e.name === 'page-view' || e.user_uuid === cl.userUuid))
            .map((e) => e.position);
        const want = new Set(expected);
        const miss = expected.filter((p) => !cl.seen.has(p));
        missing += miss.length;
        for (const p of miss) {
            const c = cl.carriers(p)[0];
            if (!c) missingWhere.none++;
            else if (c.resumed === null) missingWhere.early++;
            else if (p <= c.resumed) missingWhere.catchup++;
            else missingWhere.live++;
        }
        if (miss.length) {
            const on = cl.carriers(miss[0]).map(ChaosClient.describe).join('; ') || 'no connection covered it';
            note('missing', `${cl.clientId}: never received ${miss.length} positions: ${miss.slice(0, 10).join(',')}${miss.length > 10 ? ',...' : ''}; ${miss[0]} was due on ${on}`);
        }
        const more = [...cl.seen].filter((p) => !want.has(p));
        extra += more.length;
        if (more.length) note('extra', `${cl.clientId}: received positions outside its audience: ${more.slice(0, 10).join(',')}`);
        for (const a of cl.anomalies) {
            if (a.kind === 'duplicate') dups++;
            else if (a.kind === 'out-of-order') disorder++;
            note(a.kind, `${cl.clientId}: ${a.detail}`);
        }
        for (const c of cl.closes) if (c === 'http-401' || c === 'http-403') note('refused', `${cl.clientId}: upgrade refused ${c}`);
    }

    const replay = checkReplay(bin, dataDir, db);
    for (const d of replay.differing) note('projection', `projection ${d} differs from a replay of the log`);
    const integrity = sql(db, 'PRAGMA integrity_check').map((r) => r.integrity_check).join(' ');
    if (integrity !== 'ok') note('integrity', `integrity_check: ${integrity.slice(0, 300)}`);

    return {
        counts: { sent, processed, rejected, resends, lost, doubled, gaps: gaps + missing + disorder, dups, extra, missing, missingWhere, disorder, positions: events.length, replay, integrity },
        problems,
    };
}
