// Contract test with the GraphQL ecosystem's own tools: @graphql-codegen/cli (graphql-js
// validation) generates TypeScript types from generated/schema.graphql and every subscription
// document of the seed, and tsc --strict compiles them. Seed subscriptions not declared yet are
// skipped by name, read from the PENDING list of tests/graphql.rs (the one list; it shrinks as
// they land). Any other document that does not validate fails the test.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";

import { generate } from "@graphql-codegen/cli";

const ROOT = resolve(import.meta.dirname, "../..");
const SCHEMA = join(ROOT, "generated/schema.graphql");
const work = mkdtempSync(join(tmpdir(), "rustydb-graphql-codegen-"));

after(() => rmSync(work, { recursive: true, force: true }));

/** The `graphql` blocks of the seed's "GraphQL Subscriptions" section (as tests/graphql.rs). */
function seedDocuments() {
  const path = [
    join(ROOT, "../shared/seed/websocket-integration-guide.md"),
    join(ROOT, "tests/fixtures/websocket-integration-guide.md"),
  ].find((p) => existsSync(p));
  assert.ok(path, "seed guide");
  const section = readFileSync(path, "utf8").split("## GraphQL Subscriptions")[1]?.split("\n## ")[0];
  assert.ok(section, "GraphQL Subscriptions section");
  return section
    .split("```graphql")
    .slice(1)
    .map((block) => block.split("```")[0]);
}

/** The names in `const PENDING: &[&str] = &[...];` of tests/graphql.rs. */
function pendingNames() {
  const source = readFileSync(join(ROOT, "tests/graphql.rs"), "utf8");
  const list = /const PENDING: &\[&str\] = &\[([^\]]*)\];/.exec(source);
  assert.ok(list, "tests/graphql.rs declares `const PENDING: &[&str] = &[...];`");
  return new Set([...list[1].matchAll(/"([A-Za-z0-9_]+)"/g)].map((m) => m[1]));
}

function rootField(document) {
  const field = /{\s*([A-Za-z0-9_]+)/.exec(document)?.[1];
  assert.ok(field, `root field of ${document}`);
  return field;
}

/**
 * Runs graphql-codegen on `documents` (field -> text): the schema's types into `schema.ts`, the
 * operations' result and variable types into `operations.ts` (typescript-operations 6 emits the
 * enums and inputs it uses itself, so the two plugins go to separate files). Returns both paths.
 */
async function codegen(name, documents) {
  const dir = mkdtempSync(join(work, `${name}-`));
  for (const [field, text] of documents) writeFileSync(join(dir, `${field}.graphql`), text);
  const schemaTypes = join(dir, "schema.ts");
  const operations = join(dir, "operations.ts");
  await generate(
    {
      schema: SCHEMA,
      documents: join(dir, "*.graphql"),
      silent: true,
      errorsOnly: true,
      generates: {
        [schemaTypes]: { plugins: ["typescript"] },
        [operations]: { plugins: ["typescript-operations"] },
      },
    },
    true,
  );
  return { schemaTypes, operations };
}

const documents = seedDocuments().map((text) => [rootField(text), text]);
const pending = pendingNames();
const declared = documents.filter(([field]) => !pending.has(field));

test("the seed's documents and the pending list are consistent", () => {
  const fields = new Set(documents.map(([field]) => field));
  for (const name of pending) assert.ok(fields.has(name), `pending ${name} is a seed subscription`);
  assert.ok(declared.length > 0, "documents left to validate");
});

test("graphql-codegen generates types for every declared seed subscription, and tsc compiles them", async () => {
  const { schemaTypes, operations } = await codegen("seed", declared);
  const generated = readFileSync(operations, "utf8");
  assert.match(readFileSync(schemaTypes, "utf8"), /export type Subscription = /);
  for (const [field] of declared) {
    // typescript-operations names each operation's result type `<OperationName>Subscription`.
    const operation = /subscription\s+([A-Za-z0-9_]+)/.exec(declared.find(([f]) => f === field)[1])?.[1];
    assert.ok(operation, `${field} has an operation name`);
    assert.match(generated, new RegExp(`export type ${operation}Subscription = `), field);
  }
  const tsc = join(import.meta.dirname, "node_modules/typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "--strict", "--noEmit", "--skipLibCheck", "--target", "ES2022", schemaTypes, operations], {
    stdio: "inherit",
  });
});

test("a document that does not validate makes graphql-codegen fail", async () => {
  const [field, text] = declared[0];
  const broken = text.replace(/{\s*[A-Za-z0-9_]+[^{]*{/, (head) => `${head}\n    noSuchField`);
  assert.notEqual(broken, text);
  await assert.rejects(codegen("broken", [[field, broken]]), /noSuchField/);
});
