// GraphQL subscriptions over `/graphql` with the reference graphql-ws client (protocol
// `graphql-transport-ws`, docs/graphql.md). Hand-written and generic: the caller names the result
// type of its document. Credentials travel in `connection_init` as `authorization` (the access
// token, refreshed when due, or the API key). The server closes with 4403 when credentials are
// refused at `connection_init` (fatal: surfaced as `GraphQLConnectionError`) or expire/are revoked
// later (the client refreshes the token and reconnects; graphql-ws then resubscribes).

import type { GraphQLFormattedError } from "graphql";
import { createClient, type Client } from "graphql-ws/client";

import type { Transport } from "./transport.js";
import type { WebSocketConstructor } from "./ws.js";

/** The close code of refused or expired credentials. */
const FORBIDDEN = 4403;
/** The key of the ping payload the client sends after each `subscribe` (see `ready`). */
const READY_KEY = "rustydb_ready";

export interface GraphQLOptions {
  /** Default: the global `WebSocket` (browsers, Node 22+); on Node 20 pass `WebSocket` from `ws`. */
  webSocket?: WebSocketConstructor;
  /** Default `/graphql`. */
  path?: string;
  /** Reconnect attempts after an unexpected close before subscriptions fail (default 5). */
  retryAttempts?: number;
  /** Waits before reconnect attempt `retries` (default: graphql-ws's randomised backoff). */
  retryWait?: (retries: number) => Promise<void>;
  /** Connection states; `closed` carries the close code (4403: credentials refused or expired). */
  onStateChange?: (state: GraphQLState, detail?: { code?: number; reason?: string }) => void;
}

export type GraphQLState = "connecting" | "connected" | "closed";

export interface GraphQLSubscribeOptions {
  /**
   * Called each time the server has received this subscription's `subscribe`: first, and again
   * after every reconnect (events are delivered from then on; nothing is replayed).
   */
  onReady?: () => void;
}

/**
 * The server refused or failed a subscription: an `error` message (e.g. `code` `FORBIDDEN`
 * without the permission, `GRAPHQL_VALIDATION_FAILED` for a bad document) or errors in a result.
 */
export class GraphQLSubscriptionError extends Error {
  override readonly name = "GraphQLSubscriptionError";
  /** `extensions.code` of the first error, when the server gives one. */
  readonly code?: string;
  constructor(readonly errors: readonly GraphQLFormattedError[]) {
    const first = errors[0];
    const code = first?.extensions?.code;
    super(`${typeof code === "string" ? `${code}: ` : ""}${errors.map((e) => e.message).join("; ") || "subscription failed"}`);
    if (typeof code === "string") this.code = code;
  }
}

/**
 * The connection closed and will not be retried: `closeCode` 4403 for refused credentials, the
 * graphql-ws close codes for protocol errors, or the last code once the retries are spent.
 */
export class GraphQLConnectionError extends Error {
  override readonly name = "GraphQLConnectionError";
  constructor(
    readonly closeCode: number | undefined,
    readonly reason: string,
  ) {
    super(closeCode === undefined ? reason : `connection closed: ${closeCode} ${reason}`);
  }
}

/** One running subscription: an async iterable of its results' `data`. */
export interface GraphQLSubscription<TData> extends AsyncIterable<TData> {
  /**
   * Resolves once the server has received the `subscribe` (a ping sent after it was answered):
   * events from then on are delivered. Rejects like the iteration when the subscription fails.
   */
  readonly ready: Promise<void>;
  /** Ends the subscription (sends `complete`). */
  close(): void;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
  onReady?: () => void;
}

/** A graphql-ws connection to `/graphql` using a client's credentials; open lazily. */
export class GraphQLSubscriptions {
  private readonly client: Client;
  private acknowledged = false;
  /** The connection was acknowledged and then closed with 4403: the token expired or was revoked. */
  private refreshFirst = false;
  private refreshError?: Error;
  private readonly ready = new Map<string, Waiter>();
  /** The id graphql-ws generated for the subscription being started. */
  private lastId = "";

  constructor(
    private readonly transport: Transport,
    options: GraphQLOptions = {},
  ) {
    const ctor = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) {
      throw new Error("no global WebSocket: pass `webSocket` (e.g. `import WebSocket from \"ws\"`)");
    }
    this.client = createClient({
      url: transport.webSocketUrl(options.path ?? "/graphql"),
      webSocketImpl: pingAfterSubscribe(ctor),
      // Called synchronously by `iterate`, so `subscribe` learns its operation id.
      generateID: () => (this.lastId = crypto.randomUUID()),
      retryAttempts: options.retryAttempts ?? 5,
      ...(options.retryWait ? { retryWait: options.retryWait } : {}),
      connectionParams: () => this.connectionParams(),
      // 4403 before the ack: the credentials were refused, retrying cannot help. After an ack:
      // they expired or were revoked; a token is refreshed first, an API key cannot be.
      shouldRetry: (e) => {
        if (!isCloseEvent(e)) return false;
        if (e.code !== FORBIDDEN) return true;
        return this.refreshFirst;
      },
      on: {
        connecting: () => {
          this.acknowledged = false;
          options.onStateChange?.("connecting");
        },
        connected: () => {
          this.acknowledged = true;
          options.onStateChange?.("connected");
        },
        closed: (e) => {
          const close = isCloseEvent(e) ? e : undefined;
          this.refreshFirst = close?.code === FORBIDDEN && this.acknowledged && !this.transport.apiKey;
          options.onStateChange?.("closed", close ? { code: close.code, reason: close.reason } : undefined);
        },
        pong: (received, payload) => {
          const id = received && payload ? payload[READY_KEY] : undefined;
          if (typeof id !== "string") return;
          const waiter = this.ready.get(id);
          waiter?.resolve();
          waiter?.onReady?.();
        },
      },
    });
  }

  /**
   * Starts a subscription. `TData` is the shape of the document's `data`, e.g.
   * `{ tableChanges: { table: string; changeType: string } }`. Iterating yields each result's
   * `data`; it throws `GraphQLSubscriptionError` or `GraphQLConnectionError`.
   */
  subscribe<TData = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    options: GraphQLSubscribeOptions = {},
  ): GraphQLSubscription<TData> {
    // Results wait here until the iterator takes them; `end` is set once by error or completion.
    const queue: TData[] = [];
    let end: { error?: Error } | undefined;
    let wake: (() => void) | undefined;
    const settle = (): void => {
      wake?.();
      wake = undefined;
    };
    let waiter: Waiter | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      waiter = { resolve, reject, ...(options.onReady ? { onReady: options.onReady } : {}) };
    });
    ready.catch(() => undefined);
    const finish = (error?: Error): void => {
      if (end) return;
      end = error ? { error } : {};
      waiter?.reject(error ?? new Error("subscription ended"));
      this.ready.delete(id);
      settle();
    };
    const dispose = this.client.subscribe<TData>(
      { query, ...(variables ? { variables } : {}) },
      {
        next: (result) => {
          if (result.errors?.length) {
            finish(new GraphQLSubscriptionError(result.errors));
            dispose();
          } else if (result.data !== undefined && result.data !== null) {
            queue.push(result.data);
            settle();
          }
        },
        error: (e) => finish(this.typed(e)),
        complete: () => finish(),
      },
    );
    // graphql-ws generates the operation id synchronously inside `subscribe`.
    const id = this.lastId;
    if (waiter && !end) this.ready.set(id, waiter);
    const close = (): void => {
      dispose();
      finish();
    };
    return {
      ready,
      close,
      async *[Symbol.asyncIterator]() {
        try {
          while (true) {
            const next = queue.shift();
            if (next !== undefined) {
              yield next;
              continue;
            }
            if (end) {
              if (end.error) throw end.error;
              return;
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } finally {
          close();
        }
      },
    };
  }

  /** Closes the connection and ends every subscription. */
  async close(): Promise<void> {
    await this.client.dispose();
  }

  private async connectionParams(): Promise<Record<string, unknown>> {
    this.refreshError = undefined;
    try {
      if (this.transport.apiKey) return { authorization: this.transport.apiKey };
      if (this.refreshFirst) await this.transport.refresh();
      this.refreshFirst = false;
      const token = await this.transport.accessToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    } catch (e) {
      // graphql-ws closes with 4500 and the message; keep the typed error (UnauthorizedError).
      this.refreshError = e as Error;
      throw e;
    }
  }

  private typed(e: unknown): Error {
    if (Array.isArray(e)) return new GraphQLSubscriptionError(e as GraphQLFormattedError[]);
    if (this.refreshError) return this.refreshError;
    if (isCloseEvent(e)) return new GraphQLConnectionError(e.code, e.reason);
    if (e instanceof Error) return e;
    return new GraphQLConnectionError(undefined, "connection failed");
  }
}

function isCloseEvent(e: unknown): e is { code: number; reason: string } {
  return typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "number" && "reason" in e;
}

/**
 * The WebSocket class with `send` watched: every `subscribe` is followed by a ping carrying its
 * id. The server answers messages in order, so its pong means the subscription is
 * running (`GraphQLSubscription.ready`).
 */
function pingAfterSubscribe(ctor: WebSocketConstructor): WebSocketConstructor {
  const Base = ctor as unknown as new (...args: unknown[]) => { send(data: unknown, ...rest: unknown[]): void };
  return class extends Base {
    override send(data: unknown, ...rest: unknown[]): void {
      super.send(data, ...rest);
      if (typeof data !== "string" || !data.includes('"subscribe"')) return;
      const message = JSON.parse(data) as { type?: string; id?: string };
      if (message.type !== "subscribe" || typeof message.id !== "string") return;
      super.send(JSON.stringify({ type: "ping", payload: { [READY_KEY]: message.id } }));
    }
  } as unknown as WebSocketConstructor;
}
