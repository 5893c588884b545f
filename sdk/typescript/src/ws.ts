// A WebSocket event stream that survives disconnects: it remembers its subscriptions and the last
// sequence seen on each topic, reconnects with backoff (refreshing the token first), and
// resubscribes with `last_sequence`, so the server replays what was missed (or says `gap`).
// Protocol: docs/websocket.md. Credentials travel as subprotocols, which browsers and Node's `ws`
// package both support.

import {
  WS_ENDPOINTS,
  parseServerMessage,
  type EventMessage,
  type ServerMessage,
  type SubscriptionAckData,
  type Topic,
} from "./generated/events.js";
import type { Transport } from "./transport.js";

/** The part of the WebSocket API the stream uses (browsers' WebSocket and Node's `ws` both fit). */
interface Socket {
  readonly protocol: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: the global `WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

/** Filter values are compared as JSON values (see docs/websocket.md#filters). */
export type Filter = Record<string, string | number | boolean | null>;

export interface SubscribeOptions {
  filter?: Filter;
  /** Resume after this sequence (replay); default: where this stream left off, else live only. */
  lastSequence?: number;
  /**
   * The server run `lastSequence` was counted in (an acknowledgement's `epoch`); after a restart
   * the server then replays everything it holds.
   */
  epoch?: string;
}

export type StreamState = "connecting" | "open" | "reconnecting" | "closed";

export interface EventStreamOptions {
  /** Default: the global `WebSocket` (browsers, Node 22+); on Node 20 pass `WebSocket` from `ws`. */
  webSocket?: WebSocketConstructor;
  /** Default `/api/v1/ws`, the endpoint that takes `subscribe` with replay. */
  path?: string;
  /** Reconnect after an unexpected close (default true). */
  reconnect?: boolean;
  /** First reconnect delay (default 250 ms), doubled per failed attempt up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row (default 10). */
  maxAttempts?: number;
  onStateChange?: (state: StreamState, detail?: { code?: number; reason?: string }) => void;
}

/** Close codes after which reconnecting would be wrong: closed by an administrator. */
const FINAL_CODES = new Set([4009]);
/** The credentials expired: refresh before reconnecting. */
const CREDENTIALS_EXPIRED = 4001;
/** Error codes that answer a `subscribe` (the server does not say which request an error answers). */
const SUBSCRIBE_ERRORS = new Set([
  "MALFORMED_MESSAGE",
  "UNKNOWN_TOPIC",
  "FORBIDDEN_TOPIC",
  "INVALID_FILTER",
  "TOO_MANY_SUBSCRIPTIONS",
]);

/** A `subscribe` the server refused (`code` is the protocol's error code). */
export class SubscriptionError extends Error {
  override readonly name = "SubscriptionError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

interface Pending {
  resolve: (ack: SubscriptionAckData) => void;
  reject: (e: Error) => void;
}

export class EventStream implements AsyncIterable<ServerMessage> {
  private socket?: Socket;
  private state: StreamState = "closed";
  private closedByUser = false;
  private attempts = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private readonly subscriptions = new Map<Topic, { filter?: Filter }>();
  private readonly sequences = new Map<string, number>();
  /** The epoch each topic's sequence was counted in (sequences restart with the server). */
  private readonly epochs = new Map<string, string>();
  private readonly pending = new Map<string, Pending[]>();
  /** Topics of subscribes sent and not answered yet, oldest first. */
  private readonly awaiting: string[] = [];
  private readonly listeners = new Set<(m: ServerMessage) => void>();
  private readonly queue: ServerMessage[] = [];
  private wake?: () => void;
  private opened?: { resolve: () => void; reject: (e: Error) => void };
  private readonly ctor: WebSocketConstructor;

  constructor(
    private readonly transport: Transport,
    private readonly options: EventStreamOptions = {},
  ) {
    const ctor = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) {
      throw new Error("no global WebSocket: pass `webSocket` (e.g. `import WebSocket from \"ws\"`)");
    }
    this.ctor = ctor;
  }

  /** Opens the connection; resolves once it is open. */
  connect(): Promise<void> {
    this.closedByUser = false;
    return new Promise((resolve, reject) => {
      this.opened = { resolve, reject };
      void this.open(false);
    });
  }

  /**
   * Subscribes to a topic (one subscription per topic on this stream; subscribing again replaces
   * the filter). Resolves with the server's acknowledgement; rejects with `SubscriptionError`.
   */
  subscribe(topic: Topic, options: SubscribeOptions = {}): Promise<SubscriptionAckData> {
    this.subscriptions.set(topic, { filter: options.filter });
    if (options.lastSequence !== undefined) this.sequences.set(topic, options.lastSequence);
    if (options.epoch !== undefined) this.epochs.set(topic, options.epoch);
    const answer = new Promise<SubscriptionAckData>((resolve, reject) => {
      const list = this.pending.get(topic) ?? [];
      list.push({ resolve, reject });
      this.pending.set(topic, list);
    });
    if (this.state === "open") this.sendSubscribe(topic);
    return answer;
  }

  /** Ends the topic's subscription; it is not restored on reconnect. */
  unsubscribe(topic: Topic): void {
    this.subscriptions.delete(topic);
    this.sequences.delete(topic);
    this.epochs.delete(topic);
    if (this.state === "open") this.send({ message_type: "unsubscribe", data: { topic } });
  }

  /** The sequence of the last event seen on a topic (what a resume starts after). */
  lastSequence(topic: Topic): number | undefined {
    return this.sequences.get(topic);
  }

  /** The server run that sequence was counted in. */
  epoch(topic: Topic): string | undefined {
    return this.epochs.get(topic);
  }

  /** Calls `handler` with every message; returns a function that removes it. */
  onMessage(handler: (m: ServerMessage) => void): () => void {
    this.listeners.add(handler);
    return () => this.listeners.delete(handler);
  }

  /** Waits for the first message that `match` accepts (e.g. an event for a given row). */
  waitFor<M extends ServerMessage>(match: (m: ServerMessage) => m is M, timeoutMs?: number): Promise<M>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs = 10_000): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onMessage((m) => {
        if (!match(m)) return;
        clearTimeout(timer);
        off();
        resolve(m);
      });
    });
  }

  /** Drops the connection the way a network failure would, then reconnects and resumes. */
  reconnect(): void {
    this.socket?.close(4000 + 999, "client reconnect");
  }

  /** Closes for good; pending iterators end. */
  close(): void {
    this.closedByUser = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "client closed");
    this.finish();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ServerMessage> {
    while (true) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.state === "closed" && this.closedByUser) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private setState(state: StreamState, detail?: { code?: number; reason?: string }): void {
    this.state = state;
    this.options.onStateChange?.(state, detail);
  }

  private async open(forceRefresh: boolean): Promise<void> {
    this.setState(this.attempts === 0 ? "connecting" : "reconnecting");
    let protocols: string[];
    try {
      if (forceRefresh && !this.transport.apiKey) await this.transport.refresh();
      protocols = await this.transport.webSocketProtocols();
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    const url = this.transport.webSocketUrl(this.options.path ?? WS_ENDPOINTS.ws.path);
    const socket = new this.ctor(url, protocols) as Socket;
    this.socket = socket;
    socket.onopen = () => {
      this.attempts = 0;
      this.setState("open");
      this.awaiting.length = 0;
      for (const topic of this.subscriptions.keys()) this.sendSubscribe(topic);
      this.opened?.resolve();
      this.opened = undefined;
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data === "string") this.handle(ev.data);
    };
    socket.onerror = () => {
      // A close follows every error; reconnecting is decided there.
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (this.closedByUser) return;
      if (FINAL_CODES.has(ev.code) || this.options.reconnect === false) {
        this.fail(new Error(`connection closed: ${ev.code} ${ev.reason}`), ev);
        return;
      }
      this.attempts += 1;
      if (this.attempts > (this.options.maxAttempts ?? 10)) {
        this.fail(new Error(`gave up after ${this.attempts - 1} reconnect attempts`), ev);
        return;
      }
      this.setState("reconnecting", { code: ev.code, reason: ev.reason });
      const base = this.options.initialDelayMs ?? 250;
      const delay = Math.min(base * 2 ** (this.attempts - 1), this.options.maxDelayMs ?? 10_000);
      this.timer = setTimeout(() => void this.open(ev.code === CREDENTIALS_EXPIRED), delay);
    };
  }

  private sendSubscribe(topic: Topic): void {
    const sub = this.subscriptions.get(topic);
    const last = this.sequences.get(topic);
    const epoch = this.epochs.get(topic);
    this.awaiting.push(topic);
    this.send({
      message_type: "subscribe",
      data: {
        topic,
        ...(sub?.filter ? { filter: sub.filter } : {}),
        ...(last !== undefined ? { last_sequence: last } : {}),
        ...(last !== undefined && epoch !== undefined ? { epoch } : {}),
      },
    });
  }

  private send(message: { message_type: string; data: unknown }): void {
    this.socket?.send(JSON.stringify(message));
  }

  private handle(frame: string): void {
    const message = parseServerMessage(frame);
    if (!message) return;
    switch (message.message_type) {
      case "subscription_ack":
        this.acknowledged(message.data);
        break;
      case "error":
        if (SUBSCRIBE_ERRORS.has(message.data.code)) {
          const topic = this.awaiting.shift();
          if (topic !== undefined) {
            this.subscriptions.delete(topic as Topic);
            this.settle(topic, (p) => p.reject(new SubscriptionError(message.data.code, message.data.message)));
          }
        }
        break;
      case "gap":
        // The lost range is gone for good; resume after it.
        this.sequences.set(message.data.topic, message.data.to_sequence);
        break;
      default:
        if (isEvent(message)) this.sequences.set(message.topic, message.sequence);
    }
    this.queue.push(message);
    this.wake?.();
    this.wake = undefined;
    for (const listener of this.listeners) listener(message);
  }

  private acknowledged(ack: SubscriptionAckData): void {
    if (!ack.subscribed) return;
    const index = this.awaiting.indexOf(ack.topic);
    if (index >= 0) this.awaiting.splice(index, 1);
    const mine = this.sequences.get(ack.topic);
    // Another epoch, or a newest sequence below ours: the server restarted, numbers began again
    // and it replays everything it holds.
    const known = this.epochs.get(ack.topic);
    const restarted = (known !== undefined && known !== ack.epoch) || (mine !== undefined && ack.last_sequence < mine);
    this.epochs.set(ack.topic, ack.epoch);
    // No sequence yet: resume from here after a reconnect.
    if (mine === undefined || restarted) this.sequences.set(ack.topic, ack.last_sequence);
    this.settle(ack.topic, (p) => p.resolve(ack));
  }

  private settle(topic: string, f: (p: Pending) => void): void {
    const list = this.pending.get(topic) ?? [];
    this.pending.delete(topic);
    list.forEach(f);
  }

  private fail(error: Error, detail?: { code?: number; reason?: string }): void {
    this.opened?.reject(error);
    this.opened = undefined;
    for (const topic of [...this.pending.keys()]) this.settle(topic, (p) => p.reject(error));
    this.closedByUser = true;
    this.setState("closed", detail);
    this.finish();
  }

  private finish(): void {
    if (this.state !== "closed") this.setState("closed");
    this.wake?.();
    this.wake = undefined;
  }
}

function isEvent(m: ServerMessage): m is EventMessage {
  return "sequence" in m && typeof m.sequence === "number";
}
