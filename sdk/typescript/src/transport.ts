// HTTP plumbing shared by every generated method: URL and query building, JSON bodies, error
// mapping, and credentials. Access tokens are refreshed before they expire and once more after a
// 401; refresh tokens rotate and a reused one revokes the whole login, so refreshes are
// single-flight.

import { apiErrorFrom } from "./errors.js";
import type { TokenPair } from "./generated/types.js";

export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface Request {
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined | null> | object;
  body?: unknown;
  /** Sends credentials (every operation that is not public). */
  auth: boolean;
  options?: RequestOptions;
}

export interface TransportOptions {
  /** The server, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An API key (`rustydb_...`); used instead of tokens when set. */
  apiKey?: string;
  /** Tokens from an earlier login, e.g. restored from storage. */
  tokens?: TokenPair;
  /** Called with every new token pair (login and refresh), to persist it. */
  onTokens?: (tokens: TokenPair | undefined) => void;
  /** Refresh this many seconds before the access token expires (default 30). */
  refreshMarginSeconds?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

const REFRESH_PATH = "/api/v1/auth/refresh";

export class Transport {
  readonly baseUrl: string;
  readonly apiKey?: string;
  private tokens?: TokenPair;
  /** Epoch milliseconds after which the access token is refreshed first. */
  private refreshAt = 0;
  private refreshing?: Promise<TokenPair>;
  private readonly fetchImpl: typeof fetch;
  private readonly margin: number;
  private readonly onTokens?: (tokens: TokenPair | undefined) => void;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.margin = (options.refreshMarginSeconds ?? 30) * 1000;
    this.onTokens = options.onTokens;
    if (options.tokens) this.setTokens(options.tokens);
  }

  /** Stores a token pair (after login or refresh). */
  setTokens(tokens: TokenPair): void {
    this.tokens = tokens;
    this.refreshAt = Date.now() + tokens.expires_in * 1000 - this.margin;
    this.onTokens?.(tokens);
  }

  clearTokens(): void {
    this.tokens = undefined;
    this.refreshAt = 0;
    this.onTokens?.(undefined);
  }

  get currentTokens(): TokenPair | undefined {
    return this.tokens;
  }

  /** A valid access token, refreshed first when it is about to expire; undefined without login. */
  async accessToken(): Promise<string | undefined> {
    if (!this.tokens) return undefined;
    if (Date.now() >= this.refreshAt) await this.refresh();
    return this.tokens?.access_token;
  }

  /**
   * Exchanges the refresh token for a new pair. Concurrent callers share one exchange. A refused
   * refresh (expired, revoked, reused) forgets the tokens and throws `UnauthorizedError`.
   */
  refresh(): Promise<TokenPair> {
    this.refreshing ??= this.exchange().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async exchange(): Promise<TokenPair> {
    const refreshToken = this.tokens?.refresh_token;
    if (!refreshToken) throw apiErrorFrom(401, { error: { code: "UNAUTHORIZED", message: "not logged in" } });
    try {
      const pair = await this.send<TokenPair>({
        method: "POST",
        path: REFRESH_PATH,
        body: { refresh_token: refreshToken },
        auth: false,
      });
      this.setTokens(pair);
      return pair;
    } catch (e) {
      this.clearTokens();
      throw e;
    }
  }

  /** The headers carrying the credentials, if any. */
  private async credentialHeaders(): Promise<Record<string, string>> {
    if (this.apiKey) return { "X-API-Key": this.apiKey };
    const token = await this.accessToken();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  /**
   * WebSocket subprotocols carrying the credentials (browsers cannot set headers on a WebSocket):
   * `rustydb.v1` plus `rustydb.bearer.<token>` or `rustydb.apikey.<key>`.
   */
  async webSocketProtocols(): Promise<string[]> {
    if (this.apiKey) return ["rustydb.v1", `rustydb.apikey.${this.apiKey}`];
    const token = await this.accessToken();
    return token ? ["rustydb.v1", `rustydb.bearer.${token}`] : ["rustydb.v1"];
  }

  /** `ws://` or `wss://` URL for a path on the server. */
  webSocketUrl(path: string): string {
    return this.baseUrl.replace(/^http/, "ws") + path;
  }

  /** Sends one operation; a 401 on an authenticated call is retried once after a refresh. */
  async request<R>(req: Request): Promise<R> {
    if (!req.auth || this.apiKey || !this.tokens) return this.send<R>(req);
    const used = this.tokens.access_token;
    try {
      return await this.send<R>(req);
    } catch (e) {
      const status = (e as { status?: unknown }).status;
      if (status !== 401 || !this.tokens) throw e;
      // Another call may have refreshed meanwhile; otherwise refresh now.
      if (this.tokens.access_token === used) await this.refresh();
      return this.send<R>(req);
    }
  }

  private async send<R>(req: Request): Promise<R> {
    const url = new URL(this.baseUrl + req.path);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      Accept: "application/json",
      ...(req.auth ? await this.credentialHeaders() : {}),
      ...req.options?.headers,
    };
    let body: string | undefined;
    if (req.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(req.body);
    }
    const response = await this.fetchImpl(url, {
      method: req.method,
      headers,
      body,
      signal: req.options?.signal,
    });
    const text = await response.text();
    let parsed: unknown = text;
    if (text.length > 0 && (response.headers.get("content-type") ?? "").includes("json")) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!response.ok) throw apiErrorFrom(response.status, parsed, response.headers.get("retry-after"));
    return (text.length === 0 ? undefined : parsed) as R;
  }
}
