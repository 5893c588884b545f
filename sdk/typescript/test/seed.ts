// The GraphQL documents of the seed's "GraphQL Subscriptions" section: the seed beside the
// project when it is there, else the copy committed with the tests (as tests/graphql.rs reads it).

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { REPO_ROOT } from "./server.js";

export function seedDocuments(): string[] {
  const path = [
    join(REPO_ROOT, "../shared/seed/websocket-integration-guide.md"),
    join(REPO_ROOT, "tests/fixtures/websocket-integration-guide.md"),
  ].find((p) => existsSync(p));
  if (!path) throw new Error("seed guide not found");
  const section = readFileSync(path, "utf8").split("## GraphQL Subscriptions")[1]?.split("\n## ")[0];
  if (!section) throw new Error("no GraphQL Subscriptions section in the seed");
  return section
    .split("```graphql")
    .slice(1)
    .map((block) => block.split("```")[0] ?? "");
}

/** The seed's document whose root field is `field`. */
export function seedDocument(field: string): string {
  const doc = seedDocuments().find((d) => new RegExp(`{\\s*${field}\\b`).test(d));
  if (!doc) throw new Error(`no seed document for ${field}`);
  return doc;
}
