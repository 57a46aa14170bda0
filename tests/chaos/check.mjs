// check.mjs - the crash harness's verdict: reads the final database (with
// the sqlite3 CLI, or psql for a PostgreSQL store) and holds it against what
// the clients sent and received.
//
// Commands: every command a client made ended once at the client (its events
// or one rejection), has exactly one row in the command log with the same
// outcome, and has no more events than that row says. Log: positions run
// 1..N with no gap. Streams: each logical client received every position of
// its user's audience after its first resume exactly once and in order.
// Projections: every projection table equals, value for value, the one
// `calderwood replay` builds from the log. Finally PRAGMA integrity_check.
// On PostgreSQL the projections are compared with a replay by `calderwood
// check --store URL` (which checks positions and the command log once more
// on its own), and the pages by pg_amcheck: every table and index, with
// --heapallindexed and --parent-check.

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

/** The same on PostgreSQL: psql, the rows aggregated as JSON by the server. */
function pgSql(url, query) {
    const wrapped = `SELECT coalesce(json_agg(q), '[]'::json) FROM (${query}) q`;
    const out = execFileSync('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', wrapped], { encoding: 'utf8', maxBuffer: 1 << 30 });
    return JSON.parse(out);
}

const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';

/**
 * `calderwood check --store URL`: its projections line says whether every
 * projection table equals a replay of the log, value for value.
 */
function pgCheckReplay(bin, url) {
    const r = spawnSync(bin, ['check', '--store', url, '--log-level', 'warn'], { encoding: 'utf8', timeout: 600_000 });
    const out = `${r.stdout || ''}${r.stderr || ''}`;
    const ok = /^projections +ok \((\d+) tables/m.exec(out);
    if (r.status === 0 && ok) return { equal: Number(ok[1]), total: Number(ok[1]), differing: [] };
    const failed = out.split('\n').filter((l) => /FAILED/.test(l));
    return { equal: 0, total: ok ? Number(ok[1]) : 0, differing: failed.length ? failed : [`calderwood check exit ${r.status}: ${out.trim().slice(0, 300)}`] };
}

/** pg_amcheck over every table and index of the database: 'ok' or what it found. */
function pgAmcheck(url) {
    const r = spawnSync(join(PG_BIN, 'pg_amcheck'), ['--install-missing', '--heapallindexed', '--parent-check', '-v', url], {
        encoding: 'utf8',
        timeout: 600_000,
    });
    const checked = (r.stderr.match(/: checking (heap table|btree index) /g) || []).length;
    if (r.status === 0 && checked > 0) return 'ok';
    return `pg_amcheck exit ${r.status} after ${checked} relations: ${`${r.stdout}${r.stderr}`.split('\n').filter((l) => !/: checking /.test(l)).join(' ').slice(0, 300)}`;
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

/** Problems, at most five printed per kind (the rest only counted). */
function problemList() {
    const problems = [];
    problems.note = (kind, text) => {
        const shown = problems.filter((p) => p.kind === kind && p.text).length;
        problems.push({ kind, text: shown < 5 ? text : null });
    };
    return problems;
}

/** Positions 1..N without a gap; returns how many are out of place. */
function checkPositions(r) {
    let gaps = 0;
    r.events.forEach((e, i) => {
        if (e.position !== i + 1) {
            gaps++;
            r.problems.note('log-gap', `event #${i + 1} has position ${e.position}`);
        }
    });
    return gaps;
}

/** One command a client made: ended once at the client, one log row, as many events as that says. */
function checkCommand(r, cl, cmd) {
    const { counts: n, problems } = r;
    const k = keyOf(cl.userUuid, cl.clientId, cmd.seq);
    r.mine.add(k);
    const rows = r.logByKey.get(k) || [];
    const evs = r.eventsByKey.get(k) || [];
    const what = `${cl.clientId} seq ${cmd.seq} ${cmd.name}`;
    n.sent++;
    if (cmd.outcome === null || rows.length === 0) {
        n.lost++;
        problems.note('lost', `${what}: client outcome ${cmd.outcome}, ${rows.length} log rows (acked ${cmd.acked}, sent ${cmd.sends}x)`);
        return;
    }
    if (rows.length > 1) {
        n.doubled++;
        problems.note('doubled', `${what}: ${rows.length} command-log rows`);
        return;
    }
    const row = rows[0];
    if (cmd.outcome === 'processed') {
        n.processed++;
        const span = row.first_position === null ? 0 : row.last_position - row.first_position + 1;
        if (row.outcome !== 'ok') problems.note('mismatch', `${what}: client processed, log ${row.outcome}`);
        if (evs.length !== 1 || span !== 1) {
            n.doubled++;
            problems.note('doubled', `${what}: ${evs.length} events [${evs}], log span ${span}`);
        } else if (cmd.positions.length !== 1 || cmd.positions[0] !== evs[0]) {
            problems.note('mismatch', `${what}: client saw positions [${cmd.positions}], log [${evs}]`);
        }
    } else if (cmd.outcome === 'rejected') {
        n.rejected++;
        if (row.outcome !== 'rejected' || row.reject_code !== cmd.code) {
            problems.note('mismatch', `${what}: client rejected ${cmd.code}, log ${row.outcome} ${row.reject_code}`);
        }
        if (EXPECTED_REJECTS[cmd.name] !== cmd.code) problems.note('mismatch', `${what}: unexpected rejection ${cmd.code}`);
        if (evs.length) {
            n.doubled++;
            problems.note('doubled', `${what}: rejected yet ${evs.length} events`);
        }
    } else {
        problems.note('error', `${what}: ended with error ${cmd.code}`);
    }
}

/**
 * The rest of the log: every other command (logins) has as many events as its
 * row says (events written by `calderwood user add` have no row), and no
 * command of a harness client id is in the log that its client never made.
 */
function checkOtherCommands(r, clients) {
    for (const [k, evs] of r.eventsByKey) {
        const row = (r.logByKey.get(k) || [])[0];
        if (!row || r.mine.has(k)) continue;
        const span = row.first_position === null ? 0 : row.last_position - row.first_position + 1;
        if (evs.length !== span) {
            r.counts.doubled++;
            r.problems.note('doubled', `${k.replaceAll('\u0000', ' ')}: ${evs.length} events, command-log span ${span}`);
        }
    }
    const ids = new Set(clients.map((c) => c.clientId));
    for (const [k, rows] of r.logByKey) {
        if (ids.has(rows[0].client_id) && !r.mine.has(k)) r.problems.note('phantom', `command ${k.replaceAll('\u0000', ' ')} in the log, never sent`);
    }
}

/**
 * One logical client's stream: every position of its audience after its first
 * resume, once, in order. A missing position is put down to where it was
 * due: a connection that died before its `resumed` (an update past it came
 * first), a catch-up that reached past it, or the live stream after `resumed`.
 */
function checkStream(r, cl) {
    const { counts: n, problems } = r;
    const expected = r.events
        .filter((e) => e.position > cl.firstResume && (e.name === 'page-view' || e.user_uuid === cl.userUuid))
        .map((e) => e.position);
    const want = new Set(expected);
    const miss = expected.filter((p) => !cl.seen.has(p));
    n.missing += miss.length;
    for (const p of miss) {
        const c = cl.carriers(p)[0];
        if (!c) n.missingWhere.none++;
        else if (c.resumed === null) n.missingWhere.early++;
        else if (p <= c.resumed) n.missingWhere.catchup++;
        else n.missingWhere.live++;
    }
    if (miss.length) {
        const on = cl.carriers(miss[0]).map(ChaosClient.describe).join('; ') || 'no connection covered it';
        const list = `${miss.slice(0, 10).join(',')}${miss.length > 10 ? ',...' : ''}`;
        problems.note('missing', `${cl.clientId}: never received ${miss.length} positions: ${list}; ${miss[0]} was due on ${on}`);
    }
    const more = [...cl.seen].filter((p) => !want.has(p));
    n.extra += more.length;
    if (more.length) problems.note('extra', `${cl.clientId}: received positions outside its audience: ${more.slice(0, 10).join(',')}`);
    for (const a of cl.anomalies) {
        if (a.kind === 'duplicate') n.dups++;
        else if (a.kind === 'out-of-order') n.disorder++;
        problems.note(a.kind, `${cl.clientId}: ${a.detail}`);
    }
    for (const c of cl.closes) if (c === 'http-401' || c === 'http-403') problems.note('refused', `${cl.clientId}: upgrade refused ${c}`);
}

/**
 * Checks the run. clients: the ChaosClient list; returns counts and a list
 * of problems ({kind, text}, text null past the fifth of a kind); an empty
 * list means the run passed.
 */
export function checkRun({ bin, dataDir, store, clients }) {
    const db = join(dataDir, 'calderwood.db');
    const query = store ? (q) => pgSql(store, q) : (q) => sql(db, q);
    const r = {
        problems: problemList(),
        events: query('SELECT position, name, user_uuid, client_id, client_seq FROM events ORDER BY position'),
        eventsByKey: new Map(), // idempotency key -> positions
        logByKey: new Map(), // idempotency key -> command-log rows
        mine: new Set(), // the keys the clients made
        counts: { sent: 0, processed: 0, rejected: 0, lost: 0, doubled: 0, dups: 0, extra: 0, missing: 0, disorder: 0 },
    };
    r.counts.missingWhere = { early: 0, catchup: 0, live: 0, none: 0 };
    for (const e of r.events) {
        if (e.client_id === null) continue;
        const k = keyOf(e.user_uuid, e.client_id, e.client_seq);
        r.eventsByKey.set(k, (r.eventsByKey.get(k) || []).concat([e.position]));
    }
    const commands = query('SELECT user_uuid, client_id, client_seq, name, outcome, first_position, last_position, reject_code FROM commands');
    for (const c of commands) {
        const k = keyOf(c.user_uuid, c.client_id, c.client_seq);
        r.logByKey.set(k, (r.logByKey.get(k) || []).concat([c]));
    }

    const logGaps = checkPositions(r);
    for (const cl of clients) for (const cmd of cl.commands.values()) checkCommand(r, cl, cmd);
    checkOtherCommands(r, clients);
    for (const cl of clients) checkStream(r, cl);
    const replay = store ? pgCheckReplay(bin, store) : checkReplay(bin, dataDir, db);
    for (const d of replay.differing) r.problems.note('projection', `projection ${d} differs from a replay of the log`);
    const integrity = store
        ? pgAmcheck(store)
        : sql(db, 'PRAGMA integrity_check')
              .map((x) => x.integrity_check)
              .join(' ');
    if (integrity !== 'ok') r.problems.note('integrity', `integrity_check: ${integrity.slice(0, 300)}`);

    const n = r.counts;
    n.resends = clients.reduce((sum, c) => sum + c.resends, 0);
    Object.assign(n, { gaps: logGaps + n.missing + n.disorder, positions: r.events.length, replay, integrity });
    return { counts: n, problems: r.problems };
}
