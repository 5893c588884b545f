// The README's GraphQL example, typed: a local server whose admin password is in
// RUSTYDB_ADMIN_PASSWORD; prints the next change of table `users`.
import WebSocket from "ws";
import { ApiError, RustyDBClient } from "@rustydb/client";

/** The `data` of the document below (field names as in generated/schema.graphql). */
interface TableChanges {
  tableChanges: {
    table: string;
    changeType: "INSERT" | "UPDATE" | "DELETE";
    row: { id: string; data: string };
    timestamp: string;
  };
}

const client = new RustyDBClient({ baseUrl: process.env.RUSTYDB_URL ?? "http://127.0.0.1:8080" });
await client.login({ username: "admin", password: process.env.RUSTYDB_ADMIN_PASSWORD ?? "" });
await client
  .createTable("default", {
    name: "users",
    columns: [
      { name: "id", type: "INTEGER", primary_key: true },
      { name: "username", type: "TEXT" },
    ],
  })
  .catch((e: unknown) => {
    if (!(e instanceof ApiError && e.status === 409)) throw e; // exists already
  });

const graphql = client.graphql({ webSocket: WebSocket });
const changes = graphql.subscribe<TableChanges>(
  "subscription Changes($table: String!) { tableChanges(table: $table) { table changeType row { id data } timestamp } }",
  { table: "users" },
);
await changes.ready;
await client.insertRow("default", "users", { values: { username: "alice" } });
for await (const { tableChanges: c } of changes) {
  console.log(`${c.changeType} ${c.table} row ${c.row.id}: ${c.row.data}`);
  break;
}
await graphql.close();
