// The SDK against a real server: login, databases, tables, rows, the table_modified event over
// the WebSocket (with a reconnect and resume), and typed 401/403 errors.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";

import {
  ForbiddenError,
  RustyDBClient,
  SubscriptionError,
  UnauthorizedError,
  type TableModifiedMessage,
  type ServerMessage,
} from "../src/index.js";
import { ADMIN_PASSWORD, startServer, type LiveServer } from "./server.js";

let server: LiveServer;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

async function admin(): Promise<RustyDBClient> {
  const client = new RustyDBClient({ baseUrl: server.baseUrl });
  await client.login({ username: "admin", password: ADMIN_PASSWORD });
  return client;
}

const isChange =
  (table: string, operation: string) =>
  (m: ServerMessage): m is TableModifiedMessage =>
    m.message_type === "table_modified" && m.data.table === table && m.data.operation === operation;

test("rows round trip with the table_modified event, across a reconnect", async () => {
  const client = await admin();
  await client.createDatabase({ name: "sdk_ts" });
  await client.createTable("sdk_ts", {
    name: "people",
    columns: [
      { name: "id", type: "INTEGER", primary_key: true },
      { name: "name", type: "TEXT", not_null: true },
      { name: "age", type: "INTEGER" },
    ],
  });

  const events = client.events({ webSocket: WebSocket, initialDelayMs: 50 });
  await events.connect();
  const ack = await events.subscribe("table_changes", { filter: { table: "people" } });
  assert.equal(ack.topic, "table_changes");
  assert.equal(ack.subscribed, true);

  const inserted = events.waitFor(isChange("people", "INSERT"));
  const alice = await client.insertRow("sdk_ts", "people", { values: { name: "alice", age: 30 } });
  await client.insertRow("sdk_ts", "people", { values: { name: "bob", age: 17 } });
  const event = await inserted;
  assert.equal(event.topic, "table_changes");
  assert.equal(event.data.row_data.name, "alice");
  assert.equal(event.data.row_id, String(alice.row_id));
  assert.ok(event.sequence >= 1);

  // List with a filter.
  const adults = await client.listRows("sdk_ts", "people", {
    filter: JSON.stringify([{ column: "age", op: "ge", value: 18 }]),
  });
  assert.equal(adults.total, 1);
  assert.equal(adults.rows[0]?.name, "alice");

  // Drop the connection, change a row while reconnecting: the update arrives exactly once,
  // replayed after the last sequence seen or live.
  const seen: ServerMessage[] = [];
  events.onMessage((m) => seen.push(m));
  const updated = events.waitFor(isChange("people", "UPDATE"));
  events.reconnect();
  await client.updateRow("sdk_ts", "people", String(alice.row_id), { values: { age: 31 } });
  const update = await updated;
  assert.equal(update.data.row_data.age, 31);
  assert.equal(update.data.old_row_data?.age, 30);
  assert.ok(update.sequence > event.sequence);

  const deleted = events.waitFor(isChange("people", "DELETE"));
  await client.deleteRow("sdk_ts", "people", String(alice.row_id));
  await deleted;
  const updates = seen.filter(isChange("people", "UPDATE"));
  assert.equal(updates.length, 1, "the update is delivered once");
  const remaining = await client.listRows("sdk_ts", "people");
  assert.equal(remaining.total, 1);
  events.close();
});

test("a sequence counted in another server run (epoch) replays everything held", async () => {
  const client = await admin();
  await client.createDatabase({ name: "sdk_ts_epoch" });
  await client.createTable("sdk_ts_epoch", {
    name: "items",
    columns: [
      { name: "id", type: "INTEGER", primary_key: true },
      { name: "n", type: "INTEGER" },
    ],
  });
  for (const n of [1, 2, 3]) await client.insertRow("sdk_ts_epoch", "items", { values: { n } });

  // Resumes `items` from a position; returns the acknowledgement and the first `count` inserts.
  const resume = async (lastSequence: number, epoch: string | undefined, count: number) => {
    const events = client.events({ webSocket: WebSocket });
    await events.connect();
    const inserts: TableModifiedMessage[] = [];
    const arrived = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${inserts.length} of ${count} inserts`)), 10_000);
      events.onMessage((m) => {
        if (!isChange("items", "INSERT")(m)) return;
        inserts.push(m);
        if (inserts.length === count) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const ack = await events.subscribe("table_changes", { filter: { table: "items" }, lastSequence, epoch });
    await arrived;
    events.close();
    return { ack, ns: inserts.map((m) => m.data.row_data.n), inserts };
  };
  const all = await resume(0, undefined, 3);
  assert.match(all.ack.epoch, /^[0-9a-f]{16}$/);
  assert.deepEqual(all.ns, [1, 2, 3]);
  const second = all.inserts[1]!.sequence;
  // The same epoch: an ordinary resume after the second insert.
  const same = await resume(second, all.ack.epoch, 1);
  assert.equal(same.ack.epoch, all.ack.epoch);
  assert.deepEqual(same.ns, [3]);
  // Another epoch: the server restarted since, so everything held is new to this client.
  const other = await resume(second, "0123456789abcdef", 3);
  assert.deepEqual(other.ns, [1, 2, 3]);
});

test("a wrong password is an UnauthorizedError", async () => {
  const client = new RustyDBClient({ baseUrl: server.baseUrl });
  await assert.rejects(client.login({ username: "admin", password: "wrong-password" }), (e: unknown) => {
    assert.ok(e instanceof UnauthorizedError);
    assert.equal(e.status, 401);
    assert.equal(e.code, "UNAUTHORIZED");
    return true;
  });
});

test("a read-only user gets ForbiddenError on a write and the scrape, and FORBIDDEN_TOPIC on metrics", async () => {
  const root = await admin();
  // GET /metrics is a text route: the SDK hands back the exposition as a string.
  assert.match(await root.getPrometheusMetrics(), /^# TYPE rustydb_http_requests_total counter$/m);
  await root.createDatabase({ name: "sdk_ts_ro" }).catch(() => undefined);
  await root.createUser({ username: "ts_analyst", password: "password-123", roles: ["analyst"] });
  const analyst = new RustyDBClient({ baseUrl: server.baseUrl });
  await analyst.login({ username: "ts_analyst", password: "password-123" });
  const list = await analyst.listDatabases();
  assert.ok(list.databases.some((d) => d.name === "sdk_ts_ro"));
  await assert.rejects(
    analyst.createTable("sdk_ts_ro", { name: "t", columns: [{ name: "a", type: "TEXT" }] }),
    (e: unknown) => e instanceof ForbiddenError && e.status === 403 && e.code === "FORBIDDEN",
  );
  await assert.rejects(
    analyst.getPrometheusMetrics(),
    (e: unknown) => e instanceof ForbiddenError && e.status === 403,
  );
  const events = analyst.events({ webSocket: WebSocket });
  await events.connect();
  await assert.rejects(
    events.subscribe("system_metrics"),
    (e: unknown) => e instanceof SubscriptionError && e.code === "FORBIDDEN_TOPIC",
  );
  events.close();
});

test("an expired access token is refreshed transparently", async () => {
  const client = await admin();
  const before = client.http.currentTokens;
  assert.ok(before);
  // Pretend the token expires now: the next call refreshes first.
  client.http.setTokens({ ...before, expires_in: 0 });
  await client.listDatabases();
  const after = client.http.currentTokens;
  assert.ok(after);
  assert.notEqual(after.refresh_token, before.refresh_token);
  // The old refresh token is spent; reusing it revokes the login (the server's theft rule).
  const stale = new RustyDBClient({ baseUrl: server.baseUrl, tokens: { ...before, expires_in: 0 } });
  await assert.rejects(stale.listDatabases(), (e: unknown) => e instanceof UnauthorizedError);
});
