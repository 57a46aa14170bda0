// client.mjs - the to-do domain from a Node script, through calderwood.js.
//
//   CW_PASSWORD=... node --experimental-websocket client.mjs http://127.0.0.1:8080 alice@example.com
//
// (Node 22 and later have WebSocket without the flag.) It creates a shared
// list, adds two items, completes one, tries to complete it again (the
// domain rejects that: already-done), and prints the `lists` query.
//
// calderwood.js is written for a page: the browser logs in at /login and
// sends the session cookie by itself. A script logs in with POST /login and
// hands the cookie to the fetch and WebSocket that calderwood.js uses; that
// is all `connect` adds. The globals are replaced, so one session per process.
import { Calderwood } from '../../web/static/calderwood.js';

/** POST /login; resolves { cookie: "cw_session=...", user_uuid }. */
export async function login(baseUrl, email, password) {
    const res = await fetch(`${baseUrl}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email, password }),
    });
    if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
    const { user_uuid } = await res.json();
    const cookie = res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .find((c) => c.startsWith('cw_session='));
    return { cookie, user_uuid };
}

/** Logs in as email and resolves a Calderwood client once it is live. */
export async function connect(baseUrl, email, password) {
    if (typeof WebSocket !== 'function') throw new Error('no WebSocket: use Node 22, or node --experimental-websocket');
    const { cookie, user_uuid } = await login(baseUrl, email, password);
    const plainFetch = globalThis.fetch;
    globalThis.fetch = (url, init = {}) => plainFetch(url, { ...init, headers: { ...init.headers, Cookie: cookie } });
    const PlainWebSocket = globalThis.WebSocket;
    globalThis.WebSocket = class extends PlainWebSocket {
        constructor(url) {
            super(url, { headers: { Cookie: cookie } }); // undici's WebSocket takes headers
        }
    };
    const cw = new Calderwood({ baseUrl, storage: null });
    cw.userUuid = user_uuid;
    const live = new Promise((resolve, reject) => {
        cw.addEventListener('state', (e) => {
            if (e.detail.state === 'live') resolve(cw);
            if (e.detail.state === 'unauthorized') reject(new Error('unauthorized'));
        });
    });
    cw.connect();
    return live;
}

async function main([baseUrl, email]) {
    const cw = await connect(baseUrl, email, process.env.CW_PASSWORD);
    cw.addEventListener('update', (e) => console.log('update', e.detail.event.position, e.detail.event.name));

    const created = await cw.send('create-list', { name: 'Team chores' }).done;
    const listId = created.events[0].data.list_id; // the list is named by its command's uuid
    const milk = await cw.send('add-item', { list_id: listId, text: 'Buy milk', due: '2027-01-15' }).done;
    await cw.send('add-item', { list_id: listId, text: 'Water the plants' }).done;
    const itemId = milk.events[0].data.item_id;
    await cw.send('complete-item', { item_id: itemId }).done;
    try {
        await cw.send('complete-item', { item_id: itemId }).done;
    } catch (err) {
        console.log('rejected:', err.code, err.message); // already-done
    }
    const { result } = await cw.query('lists');
    console.log(JSON.stringify(result, null, 2));
    cw.close();
}

if (import.meta.url === `file://${process.argv[1]}`) {
    main(process.argv.slice(2)).catch((e) => {
        console.error(e.message);
        process.exit(1);
    });
}
