// Contract test with the legacy subprotocol's standard client, subscriptions-transport-ws, over a
// real `rustydb serve` (the debug binary, or $RUSTYDB_BIN). That client counts a connection dead
// when no `ka` arrives within its `timeout` and reconnects, losing what was published meanwhile:
// the server must send `ka` periodically, not once. Here the client waits 2.5 s for a `ka` and
// the server sends one every second; over 8 s the connection must stay up and every change of a
// table arrive, in order.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";

import { SubscriptionClient } from "subscriptions-transport-ws";
import WebSocket from "ws";

const ROOT = resolve(import.meta.dirname, "../..");
const PASSWORD = "legacy-graphql-ws-test-password";

async function startServer(config) {
  const bin = process.env.RUSTYDB_BIN ?? join(ROOT, "target/debug/rustydb");
  const dataDir = mkdtempSync(join(tmpdir(), "rustydb-legacy-gql-"));
  const path = join(dataDir, "rustydb.toml");
  writeFileSync(path, config);
  const child = spawn(
    bin,
    ["serve", "--bind", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json", "--config", path],
    { env: { ...process.env, RUSTYDB_ADMIN_PASSWORD: PASSWORD }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const address = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("server did not report its address within 60 s")), 60_000);
    child.once("exit", (code) => fail(new Error(`server exited early with ${code}`)));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        const found = line.includes("rustydb listening") && /"address":"([^"]+)"/.exec(line)?.[1];
        if (found) {
          clearTimeout(timer);
          ok(found.replace(/^https?:\/\//, ""));
        }
      });
    }
  });
  return {
    address,
    stop: async () => {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function rest(address, method, path, token, body) {
  const response = await fetch(`http://${address}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.equal(response.status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

test("subscriptions-transport-ws stays connected on periodic ka and receives every change", async () => {
  const server = await startServer("[graphql]\nlegacy_keep_alive_secs = 1\n");
  let client;
  try {
    const login = await rest(server.address, "POST", "/api/v1/auth/login", null, {
      username: "admin",
      password: PASSWORD,
    });
    const token = login.access_token ?? login.data?.access_token;
    assert.ok(token, `a token in ${JSON.stringify(login)}`);
    const sql = (statement) =>
      rest(server.address, "POST", "/api/v1/sql/execute", token, { sql: statement });
    await sql("CREATE TABLE ticks (id INTEGER PRIMARY KEY)");

    const events = { connected: 0, reconnected: 0, disconnected: 0, errors: [] };
    client = new SubscriptionClient(
      `ws://${server.address}/graphql`,
      { reconnect: true, timeout: 2500, connectionParams: { authorization: `Bearer ${token}` } },
      WebSocket,
    );
    client.onConnected(() => events.connected++);
    client.onReconnected(() => events.reconnected++);
    client.onDisconnected(() => events.disconnected++);
    client.onError((e) => events.errors.push(String(e?.message ?? e)));

    const rows = [];
    const subscribed = client
      .request({ query: 'subscription { tableModifications(tables: ["ticks"]) { rowId changeType } }' })
      .subscribe({
        next: (result) => {
          if (result.errors) events.errors.push(JSON.stringify(result.errors));
          else rows.push(result.data.tableModifications.rowId);
        },
        error: (e) => events.errors.push(String(e?.message ?? e)),
      });
    // The subscription is live once the first change arrives: insert until one does.
    let next = 1;
    while (rows.length === 0) {
      assert.ok(next < 100, "the subscription never delivered");
      await sql(`INSERT INTO ticks (id) VALUES (${next++})`);
      await sleep(100);
    }
    const first = Number(rows[0]);
    // 8 s: three times the client's ka timeout, one insert every 500 ms.
    for (let i = 0; i < 16; i++) {
      await sleep(500);
      await sql(`INSERT INTO ticks (id) VALUES (${next++})`);
    }
    const deadline = Date.now() + 10_000;
    while (Number(rows.at(-1)) < next - 1 && Date.now() < deadline) await sleep(50);
    subscribed.unsubscribe();

    assert.deepEqual(events.errors, []);
    assert.equal(events.connected, 1, "connected once");
    assert.equal(events.disconnected, 0, "never counted dead for want of a ka");
    assert.equal(events.reconnected, 0);
    const expected = Array.from({ length: next - first }, (_, i) => String(first + i));
    assert.deepEqual(rows, expected, "every change after the first, in order");
  } finally {
    client?.close();
    await server.stop();
  }
});
