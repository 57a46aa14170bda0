// How an application built with a bundler uses the client: the package name,
// resolved through web/static/package.json's "exports" (types condition).
// Every export is used; each @ts-expect-error is a misuse the declarations
// must refuse (tsc fails if one is accepted).
import {
    Calderwood,
    CalderwoodError,
    Command,
    COMMAND_STATES,
    STATES,
    nowUs,
    randomUuid,
    type CalderwoodEvent,
    type ConnectionState,
} from 'calderwood-client';

const cw = new Calderwood({ baseUrl: 'https://app.example.org', storage: null, maxDelayMs: 5000 });

cw.addEventListener('state', (e) => {
    const s: ConnectionState = e.detail.state;
    const wait: number = e.detail.retryInMs;
    console.log(s, wait, STATES.indexOf(s));
});
cw.addEventListener('update', (e) => {
    const ev: CalderwoodEvent = e.detail.event;
    const rtt = typeof ev.meta.sent_at === 'number' ? e.detail.receivedAt - ev.meta.sent_at : null;
    console.log(ev.position, ev.name, ev.data, rtt, e.detail.catchUp, e.detail.command?.seq);
});
cw.addEventListener('error', (e) => console.log(e.detail.code, e.detail.details, e.detail.retrying));
cw.addEventListener('rejected', (e) => console.log(e.detail.command.seq, e.detail.code));
cw.addEventListener('resumed', (e) => console.log(e.detail.position));
cw.addEventListener('some-other-event', (e) => console.log(e.type));
cw.connect().send('visit-page', { url: '/' });

export async function example(): Promise<void> {
    const cmd: Command = cw.send('add-to-cart', { sku: 'A-1', quantity: 2 }, { source: 'example' });
    console.log(COMMAND_STATES.includes(cmd.state), cmd.pending, cmd.history.length);
    try {
        const done = await cmd.done;
        console.log(done.events[0]?.position, done.commandUuid);
    } catch (err) {
        if (err instanceof CalderwoodError) console.log(err.code, err.message, err.details, err.command?.seq);
    }
    const { result, ms } = await cw.query<Array<{ position: number; url: string }>>('list-page-views', { limit: 10 });
    console.log(result.map((r) => r.url), ms.toFixed(1));
    const d = await cw.describe();
    console.log(d.commands.map((c) => c.name), d.queries.length);
    console.log(cw.lastPosition ?? 0, cw.pending.size, nowUs(), randomUuid());
    cw.forgetPosition();
    cw.close();

    // @ts-expect-error a command name is a string
    cw.send(42, {});
    // @ts-expect-error command data is an object, not an array
    cw.send('visit-page', ['/']);
    // @ts-expect-error a state event's detail has no `position`
    cw.addEventListener('state', (e) => console.log(e.detail.position));
    // @ts-expect-error no such option
    new Calderwood({ reconnect: false });
    // @ts-expect-error a command's fields are read-only
    cmd.state = 'processed';
    // @ts-expect-error lastPosition may be null
    const p: number = cw.lastPosition;
    console.log(p);
}
