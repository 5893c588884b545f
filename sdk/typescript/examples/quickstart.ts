// The README's example: npx tsx examples/quickstart.ts (or compile it), against a local server
// whose admin password is in RUSTYDB_ADMIN_PASSWORD.
import WebSocket from "ws";
import { ApiError, RustyDBClient } from "@rustydb/client";

const client = new RustyDBClient({ baseUrl: process.env.RUSTYDB_URL ?? "http://127.0.0.1:8080" });
await client.login({ username: "admin", password: process.env.RUSTYDB_ADMIN_PASSWORD ?? "" });

await client.createDatabase({ name: "shop" }).catch((e: unknown) => {
  if (!(e instanceof ApiError && e.status === 409)) throw e; // exists already
});
await client.createTable("shop", {
  name: "items",
  columns: [
    { name: "id", type: "INTEGER", primary_key: true },
    { name: "title", type: "TEXT", not_null: true },
    { name: "price", type: "REAL" },
  ],
}).catch((e: unknown) => {
  if (!(e instanceof ApiError && e.status === 409)) throw e;
});

const events = client.events({ webSocket: WebSocket }); // browsers and Node 22+: omit webSocket
await events.connect();
await events.subscribe("table_changes", { filter: { table: "items" } });

const row = await client.insertRow("shop", "items", { values: { title: "lamp", price: 25 } });
for await (const message of events) {
  if (message.message_type === "table_modified") {
    console.log(`event #${message.sequence}: ${message.data.operation} ${message.data.table} row ${message.data.row_id}`);
    break;
  }
}
const cheap = await client.listRows("shop", "items", {
  filter: JSON.stringify([{ column: "price", op: "lt", value: 100 }]),
});
console.log(`${cheap.total} item(s) under 100; inserted row ${String(row.row_id)}`);
events.close();
