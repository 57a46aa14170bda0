// calderwood.d.ts - TypeScript declarations of calderwood.js (the client of
// docs/PROTOCOL.md; the guide is docs/CLIENT.md). Checked by
// tests/client-types/run.sh: an example that uses every export compiles with
// tsc --noEmit, misuses marked @ts-expect-error must fail, and the names
// exported here are the names the module exports at run time.

/** Connection states, in the order a healthy client goes through them. */
export type ConnectionState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'unauthorized' | 'closed';

/** Command states: `queued`, `sent` and `acked` are pending; the other three are final. */
export type CommandState = 'queued' | 'sent' | 'acked' | 'processed' | 'rejected' | 'error';

export const STATES: readonly ConnectionState[];
export const COMMAND_STATES: readonly CommandState[];

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A field-level validation detail (`command-validation-failed`, `query-validation-failed`). */
export interface ErrorDetail {
    field?: string;
    reason?: string;
    [key: string]: Json | undefined;
}

/** An event as the protocol's `update` carries it. */
export interface CalderwoodEvent {
    position: number;
    uuid: string;
    command_uuid: string;
    name: string;
    data: JsonObject;
    meta: JsonObject;
    user_uuid: string;
    client_id: string;
    client_seq: number;
    recorded_at: number;
    version: number;
}

/** An error from the server (or the network), with the protocol's code and details. */
export class CalderwoodError extends Error {
    constructor(code: string, message?: string | null, details?: unknown, extra?: object);
    name: 'CalderwoodError';
    /** The protocol's code (`rejected` handlers' own codes too), `unauthorized`, `network` or `http-NNN`. */
    code: string;
    details: ErrorDetail[] | JsonObject | null;
    /** HTTP status, for errors of query(). */
    status?: number;
    /** The query's round trip in ms, for errors of query() that got an answer. */
    ms?: number;
    /** The command, for the rejection of Command.done. */
    command?: Command;
}

/** A random RFC 4122 version 4 UUID. */
export function randomUuid(): string;

/** Microseconds since the Unix epoch (the protocol's unit of time). */
export function nowUs(): number;

/** One command: what was sent, and what became of it. Read its fields; do not change them. */
export class Command {
    private constructor();
    readonly clientId: string;
    readonly seq: number;
    readonly name: string;
    readonly data: JsonObject;
    readonly meta: JsonObject;
    readonly state: CommandState;
    /** Every state it went through with performance.now() times; `overloaded` marks a refusal retried. */
    readonly history: ReadonlyArray<{ state: CommandState | 'overloaded'; at: number }>;
    readonly sends: number;
    readonly overloaded: number;
    readonly commandUuid: string | null;
    readonly duplicate: boolean;
    readonly events: readonly CalderwoodEvent[];
    readonly code: string | null;
    readonly message: string | null;
    readonly details: ErrorDetail[] | JsonObject | null;
    /** Resolves with this command once processed; rejects with a CalderwoodError when rejected or refused. */
    readonly done: Promise<Command>;
    /** True while queued, sent or acked. */
    readonly pending: boolean;
}

export interface CalderwoodOptions {
    /** Where /ws and /query are; default: the page's origin. */
    baseUrl?: string | null;
    /** The protocol's CLIENT_ID; default: a random UUID per instance. */
    clientId?: string | null;
    /** Where the last position is kept; default sessionStorage, null: in memory only. */
    storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null;
    storageKey?: string;
    minDelayMs?: number;
    maxDelayMs?: number;
    pingIntervalMs?: number;
    pongTimeoutMs?: number;
    maxMessageBytes?: number;
    /** The meta key stamped with the send time in µs; null for none. */
    sentAtKey?: string | null;
    overloadedRetries?: number;
}

/** The `detail` of each event a Calderwood client dispatches. */
export interface CalderwoodEventDetails {
    state: { state: ConnectionState; attempt: number; retryAt: number | null; retryInMs: number };
    command: { command: Command };
    ack: { command: Command; duplicate: boolean };
    update: {
        event: CalderwoodEvent;
        command: Command | null;
        clientId: string;
        seq: number;
        receivedAt: number;
        catchUp: boolean;
    };
    rejected: { command: Command; code: string | null; message: string | null };
    error: {
        command: Command | null;
        clientId?: string | null;
        seq?: number | null;
        code: string;
        message: string;
        details: ErrorDetail[] | JsonObject | null;
        retrying?: boolean;
    };
    resumed: { position: number | null };
}

export type CalderwoodEventType = keyof CalderwoodEventDetails;

/** What the built-in `describe` query returns. */
export interface Description {
    commands: Array<{ name: string; fields: JsonObject[] | JsonObject; [key: string]: Json }>;
    queries: Array<{ name: string; fields: JsonObject[] | JsonObject; [key: string]: Json }>;
}

/** The client: an EventTarget dispatching CustomEvents (see CalderwoodEventDetails). */
export class Calderwood extends EventTarget {
    constructor(options?: CalderwoodOptions);
    readonly options: Required<CalderwoodOptions>;
    readonly baseUrl: string;
    readonly wsUrl: string;
    readonly clientId: string;
    readonly state: ConnectionState;
    readonly attempt: number;
    readonly retryAt: number | null;
    /** The highest position seen, null before the first connection. */
    readonly lastPosition: number | null;
    readonly nextSeq: number;
    /** Commands not yet ended, by sequence. */
    readonly pending: ReadonlyMap<number, Command>;
    /** While reconnecting: milliseconds until the next attempt, else 0. */
    readonly retryInMs: number;

    /** Opens the connection and keeps it open until close(). */
    connect(): this;
    /** Closes for good; pending commands stay pending and are not resent. */
    close(): void;
    /** Sends a command; returns its Command at once. */
    send(name: string, data?: JsonObject, meta?: JsonObject): Command;
    /** Runs a query: resolves { result, ms }; rejects with a CalderwoodError. */
    query<T = Json>(name: string, data?: JsonObject): Promise<{ result: T; ms: number }>;
    /** The commands and queries the server knows (the `describe` query). */
    describe(): Promise<Description>;
    /** Forgets the stored position (call it on logout). */
    forgetPosition(): void;

    addEventListener<K extends CalderwoodEventType>(
        type: K,
        listener: (ev: CustomEvent<CalderwoodEventDetails[K]>) => void,
        options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | AddEventListenerOptions,
    ): void;
    removeEventListener<K extends CalderwoodEventType>(
        type: K,
        listener: (ev: CustomEvent<CalderwoodEventDetails[K]>) => void,
        options?: boolean | EventListenerOptions,
    ): void;
    removeEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | EventListenerOptions,
    ): void;
}
