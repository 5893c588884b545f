// Starts a real `rustydb serve` (the debug binary, or $RUSTYDB_BIN) on a free port with a temp
// data directory and a known admin password, and stops it afterwards.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

export const ADMIN_PASSWORD = "admin-password-for-sdk-tests";

export interface LiveServer {
  baseUrl: string;
  stop(): Promise<void>;
}

/** The repository's root (tests run from `build-test/test`). */
export const REPO_ROOT = resolve(import.meta.dirname, "../../../..");

/** `config`: the text of a TOML config file for the server (e.g. a short token lifetime). */
export async function startServer(config?: string): Promise<LiveServer> {
  const bin = process.env.RUSTYDB_BIN ?? join(REPO_ROOT, "target/debug/rustydb");
  const dataDir = mkdtempSync(join(tmpdir(), "rustydb-ts-sdk-"));
  const args = ["serve", "--bind", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"];
  if (config !== undefined) {
    const path = join(dataDir, "rustydb.toml");
    writeFileSync(path, config);
    args.push("--config", path);
  }
  const child: ChildProcess = spawn(
    bin,
    args,
    { env: { ...process.env, RUSTYDB_ADMIN_PASSWORD: ADMIN_PASSWORD }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const baseUrl = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("server did not report its address within 60 s")), 60_000);
    child.once("exit", (code) => fail(new Error(`server exited early with ${code}`)));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        if (!line.includes("rustydb listening")) return;
        const address = /"address":"([^"]+)"/.exec(line)?.[1];
        if (address) {
          clearTimeout(timer);
          ok(address);
        }
      });
    }
  });
  return {
    baseUrl,
    stop: async () => {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
