// @rustydb/client: the generated REST client plus login with automatic token refresh, a
// WebSocket event stream with reconnect and resume, and GraphQL subscriptions (graphql-ws).

import { RestClient } from "./generated/client.js";
import type { LoginRequest, TokenPair } from "./generated/types.js";
import { Transport, type RequestOptions, type TransportOptions } from "./transport.js";
import { EventStream, type EventStreamOptions } from "./ws.js";
import { GraphQLSubscriptions, type GraphQLOptions } from "./graphql.js";

export * from "./errors.js";
export type * from "./generated/types.js";
export * from "./generated/events.js";
export { RestClient } from "./generated/client.js";
export { Transport, type RequestOptions, type TransportOptions } from "./transport.js";
export * from "./ws.js";
export * from "./graphql.js";

export type ClientOptions = TransportOptions;

/**
 * The client: every REST operation as a method (see `RestClient`), plus `login` that keeps the
 * tokens and refreshes them before they expire, `events()` for WebSocket streams and `graphql()`
 * for GraphQL subscriptions.
 */
export class RustyDBClient extends RestClient {
  constructor(options: ClientOptions) {
    super(new Transport(options));
  }

  /** Logs in and keeps the tokens; later calls send and refresh them. */
  override async login(body: LoginRequest, options?: RequestOptions): Promise<TokenPair> {
    const tokens = await super.login(body, options);
    this.transport.setTokens(tokens);
    return tokens;
  }

  /** Revokes this login's tokens on the server and forgets them. */
  override async logout(options?: RequestOptions): Promise<void> {
    try {
      await super.logout(options);
    } finally {
      this.transport.clearTokens();
    }
  }

  /** The HTTP transport (tokens, refresh, URLs). */
  get http(): Transport {
    return this.transport;
  }

  /** A WebSocket event stream using this client's credentials; call `connect()` on it. */
  events(options?: EventStreamOptions): EventStream {
    return new EventStream(this.transport, options);
  }

  /** GraphQL subscriptions on `/graphql` using this client's credentials (connects lazily). */
  graphql(options?: GraphQLOptions): GraphQLSubscriptions {
    return new GraphQLSubscriptions(this.transport, options);
  }
}
