// GraphQL subscriptions through the npm graphql-ws client against a real server: the seed's
// `tableChanges` document sees an insert made with the REST client; a subscription without its
// permission is a typed error; refused credentials surface as 4403; an expiring token is refreshed
// on reconnect and the subscription resumes.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";

import {
  GraphQLConnectionError,
  GraphQLSubscriptionError,
  RustyDBClient,
  type GraphQLState,
} from "../src/index.js";
import { seedDocument } from "./seed.js";
import { ADMIN_PASSWORD, startServer, type LiveServer } from "./server.js";

/** The seed's `tableChanges` selection (`row.data` is the row as JSON text). */
interface TableChanges {
  tableChanges: {
    table: string;
    changeType: "INSERT" | "UPDATE" | "DELETE";
    row: { id: string; data: string };
    oldRow: { id: string; data: string } | null;
    timestamp: string;
  };
}

let server: LiveServer;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

async function login(baseUrl: string, username = "admin", password = ADMIN_PASSWORD): Promise<RustyDBClient> {
  const client = new RustyDBClient({ baseUrl });
  await client.login({ username, password });
  return client;
}

async function createUsersTable(client: RustyDBClient): Promise<void> {
  await client.createTable("default", {
    name: "users",
    columns: [
      { name: "id", type: "INTEGER", primary_key: true },
      { name: "username", type: "TEXT", not_null: true },
    ],
  });
}

/** Fails after `ms` unless `promise` settles first (the server answers in milliseconds). */
function within<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function first<T>(iterable: AsyncIterable<T>): Promise<T> {
  for await (const item of iterable) return item;
  throw new Error("the subscription ended without a result");
}

test("the seed's tableChanges document receives an insert made through the REST client", async () => {
  const client = await login(server.baseUrl);
  await createUsersTable(client);
  const graphql = client.graphql({ webSocket: WebSocket });
  const changes = graphql.subscribe<TableChanges>(seedDocument("tableChanges"));
  await within(changes.ready);
  const inserted = await client.insertRow("default", "users", { values: { id: 1234, username: "alice" } });
  const { tableChanges: change } = await within(first(changes));
  // Exactly the seed's fields.
  assert.deepEqual(Object.keys(change).sort(), ["changeType", "oldRow", "row", "table", "timestamp"]);
  assert.equal(change.table, "users");
  assert.equal(change.changeType, "INSERT");
  assert.equal(change.row.id, String(inserted.row_id));
  assert.deepEqual(JSON.parse(change.row.data), { id: 1234, username: "alice" });
  assert.equal(change.oldRow, null);
  assert.ok(!Number.isNaN(Date.parse(change.timestamp)), change.timestamp);
  await graphql.close();
});

test("a subscription without its permission is a GraphQLSubscriptionError FORBIDDEN", async () => {
  const root = await login(server.baseUrl);
  await root.createUser({ username: "gql_analyst", password: "password-123", roles: ["analyst"] });
  const analyst = await login(server.baseUrl, "gql_analyst", "password-123");
  const graphql = analyst.graphql({ webSocket: WebSocket });
  const metrics = graphql.subscribe("subscription { systemMetrics { cpuUsage } }");
  await assert.rejects(within(first(metrics)), (e: unknown) => {
    assert.ok(e instanceof GraphQLSubscriptionError, String(e));
    assert.equal(e.code, "FORBIDDEN");
    return true;
  });
  // The connection stays open: a permitted subscription on it still runs.
  const beats = graphql.subscribe<{ heartbeat: { sequence: number } }>(
    "subscription { heartbeat(intervalSeconds: 1) { sequence } }",
  );
  const beat = await within(first(beats));
  assert.equal(typeof beat.heartbeat.sequence, "number");
  await graphql.close();
});

test("refused credentials close with 4403, surfaced without retrying", { timeout: 20_000 }, async () => {
  // A bad API key and a bad token; the graphql-ws backoff would take over 30 s if either retried.
  const badKey = new RustyDBClient({ baseUrl: server.baseUrl, apiKey: "rustydb_not_a_key" });
  const badToken = new RustyDBClient({
    baseUrl: server.baseUrl,
    tokens: { access_token: "not-a-token", refresh_token: "x", token_type: "Bearer", expires_in: 3600, refresh_expires_in: 3600 },
  });
  for (const client of [badKey, badToken]) {
    const states: GraphQLState[] = [];
    const graphql = client.graphql({ webSocket: WebSocket, onStateChange: (s) => states.push(s) });
    const sub = graphql.subscribe("subscription { heartbeat { sequence } }");
    await assert.rejects(within(sub.ready), (e: unknown) => {
      assert.ok(e instanceof GraphQLConnectionError, String(e));
      assert.equal(e.closeCode, 4403);
      return true;
    });
    await assert.rejects(first(sub), GraphQLConnectionError);
    assert.deepEqual(states, ["connecting", "closed"], "one attempt, never acknowledged");
    await graphql.close();
  }
});

test("an expired token closes with 4403; the client refreshes it, reconnects and resubscribes", async () => {
  const shortLived = await startServer("[security]\naccess_token_ttl_secs = 8\ntoken_leeway_secs = 0\n");
  try {
    const client = new RustyDBClient({ baseUrl: shortLived.baseUrl, refreshMarginSeconds: 0 });
    await client.login({ username: "admin", password: ADMIN_PASSWORD });
    const firstRefresh = client.http.currentTokens?.refresh_token;
    await createUsersTable(client);
    const closes: (number | undefined)[] = [];
    const graphql = client.graphql({
      webSocket: WebSocket,
      retryWait: () => Promise.resolve(),
      onStateChange: (state, detail) => {
        if (state === "closed") closes.push(detail?.code);
      },
    });
    let readies = 0;
    let resubscribed!: () => void;
    const again = new Promise<void>((resolve) => (resubscribed = resolve));
    const changes = graphql.subscribe<TableChanges>(seedDocument("tableChanges"), undefined, {
      onReady: () => {
        readies += 1;
        if (readies === 2) resubscribed();
      },
    });
    // The server closes at the token's expiry (8 s); the client reconnects with a fresh one.
    await within(again, 20_000);
    assert.equal(closes[0], 4403);
    assert.notEqual(client.http.currentTokens?.refresh_token, firstRefresh, "refreshed");
    await client.insertRow("default", "users", { values: { id: 7, username: "after-refresh" } });
    const { tableChanges: change } = await within(first(changes));
    assert.deepEqual(JSON.parse(change.row.data), { id: 7, username: "after-refresh" });
    await graphql.close();
  } finally {
    await shortLived.stop();
  }
});
